"""Every error a call raises says why it made no further attempt (``stop_reason``)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
import trio
import trio.testing

from trestfly import TrioAPISession, errors
from trestfly.errors import StopReason

URL = "http://api.test"


class API(TrioAPISession):
    _url = URL


async def test_a_status_not_retried_says_so() -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/x").respond(404, text="no")
        async with API() as api:
            with pytest.raises(errors.NotFoundError) as info:
                await api.get("x")
    assert info.value.stop_reason is StopReason.NOT_RETRYABLE
    assert info.value.retries == 0


async def test_a_run_of_503s_is_exhausted(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/x").respond(503)
        async with API(retries=2, backoff=0.1) as api:
            with pytest.raises(errors.ServiceUnavailableError) as info:
                await api.get("x")
    assert info.value.stop_reason is StopReason.EXHAUSTED
    assert info.value.stop_reason == "retries exhausted"  # a str, as documented
    assert info.value.retries == 2


async def test_a_hint_past_max_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/x").respond(429, headers={"Retry-After": "120"})
        async with API(max_retry_after=60) as api:
            with pytest.raises(errors.TooManyRequestsError) as info:
                await api.get("x")
    assert route.call_count == 1
    assert info.value.stop_reason is StopReason.WAIT_TOO_LONG


async def test_a_backoff_past_the_callers_deadline(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/x").respond(503)
        async with API(retries=3, backoff=1000.0, max_backoff=1000.0) as api:
            with trio.fail_after(0.001), pytest.raises(errors.ServiceUnavailableError) as info:
                await api.get("x")
    assert info.value.stop_reason is StopReason.PAST_DEADLINE


async def test_the_calls_own_deadline_passing(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(10)
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(slow)) as api:
        with pytest.raises(errors.TimeoutError) as info:
            await api.get("x", deadline=1.0)
    assert info.value.stop_reason is StopReason.DEADLINE_PASSED


async def test_a_connection_failing_every_time_is_exhausted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with API(transport=httpx.MockTransport(refuse), retries=1, backoff=0.1) as api:
        with pytest.raises(errors.ConnectionError) as info:
            await api.get("x")
    assert info.value.stop_reason is StopReason.EXHAUSTED
    assert "(retries exhausted)" in str(info.value)


async def test_a_streamed_body_is_not_sent_again() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    with respx.mock as mock:
        route = mock.post(f"{URL}/x").respond(503)
        async with API(retries=3) as api:
            with pytest.raises(errors.ServiceUnavailableError) as info:
                await api.post("x", content=body())
    assert route.call_count == 1
    assert info.value.stop_reason is StopReason.STREAMED_BODY


async def test_a_call_refused_at_a_closed_gate_names_the_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Refused at the gate another call's 429 closed: by the caller's deadline, or by
    ``max_retry_after`` (the error quotes that 429)."""
    with respx.mock as mock:
        route = mock.get(f"{URL}/x").respond(429, headers={"Retry-After": "30"})
        async with API(retries=0, max_retry_after=40) as api:
            with pytest.raises(errors.TooManyRequestsError) as first:
                await api.get("x")
            assert first.value.stop_reason is StopReason.EXHAUSTED
            with trio.fail_after(5), pytest.raises(errors.TooManyRequestsError) as by_deadline:
                await api.get("x")
        async with API(retries=1, max_retry_after=10) as api:
            with pytest.raises(errors.TooManyRequestsError) as hint_too_long:
                await api.get("x")
            sent = route.call_count
            with pytest.raises(errors.TooManyRequestsError) as by_bound:
                await api.get("x")
            assert route.call_count == sent  # refused at the gate, unsent
    assert hint_too_long.value.stop_reason is StopReason.WAIT_TOO_LONG
    assert by_deadline.value.stop_reason is StopReason.PAST_DEADLINE
    assert by_bound.value.stop_reason is StopReason.WAIT_TOO_LONG


async def test_the_budget_says_so(autojump_clock: trio.testing.MockClock) -> None:
    """Many calls failing together: some stop because the budget refused their retry."""
    reasons: list[StopReason | None] = []

    async def one(api: TrioAPISession) -> None:
        with pytest.raises(errors.ServiceUnavailableError) as info:
            await api.get("x")
        reasons.append(info.value.stop_reason)

    with respx.mock as mock:
        mock.get(f"{URL}/x").respond(503)
        async with API(retries=5, backoff=0.025) as api, trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(one, api)
    assert len(reasons) == 100
    assert StopReason.BUDGET in reasons
    assert set(reasons) <= {StopReason.BUDGET, StopReason.EXHAUSTED}


async def test_stop_reason_survives_copies_and_pickles(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/x").respond(503)
        async with API(retries=1, backoff=0.1) as api:
            with pytest.raises(errors.ServiceUnavailableError) as info:
                await api.get("x")
    for again in (pickle.loads(pickle.dumps(info.value)), copy.copy(info.value)):
        assert again.stop_reason is StopReason.EXHAUSTED


def test_an_error_built_by_hand_has_no_stop_reason() -> None:
    request = httpx.Request("GET", f"{URL}/x")
    built = errors.APIError(httpx.Response(418, request=request))
    assert built.stop_reason is None
    assert errors.TimeoutError("late").stop_reason is None
    assert errors.ConnectionError("down").stop_reason is None


async def test_a_pacer_slot_past_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    """The client's own rate_limit: the next slot is 10 s away, the deadline 1 s."""
    with respx.mock as mock:
        route = mock.get(f"{URL}/x").respond(200)
        async with API(rate_limit=0.1) as api:
            await api.get("x")
            with trio.fail_after(1), pytest.raises(errors.TimeoutError) as info:
                await api.get("x")
    assert route.call_count == 1
    assert info.value.stop_reason is StopReason.PAST_DEADLINE
    assert "caller's deadline" in str(info.value)
