"""TrioAPISession against respx mocks: retries, hooks, options, errors, lifecycle.

Timing assertions use pytest-trio's ``autojump_clock`` (a MockClock), never wall time.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import email.utils
import functools
import importlib.util
import io
import logging
import pickle
import platform
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import suppress
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpcore
import httpx
import pytest
import respx
import trio
import trio.lowlevel
from box import Box

import trestfly
import trestfly._call_log
from trestfly import APIEndpoint, TrioAPISession, errors
from trestfly._admission import OriginGate
from trestfly._client import ssl_setting

URL = "http://api.test"


class API(TrioAPISession):
    _url = URL
    _base_path = "v1"


def statuses(*codes: int, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    return [httpx.Response(code, json={"code": code}, headers=headers) for code in codes]


# ------------------------------------------------------------------ requests


@pytest.mark.parametrize("verb", ["get", "post", "put", "patch", "delete", "head"])
async def test_every_verb_sends_to_url_base_path_and_path(verb: str) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.route(method=verb.upper(), url=f"{URL}/v1/items/1")
        route.return_value = httpx.Response(200)
        async with API() as api:
            resp = await getattr(api, verb)("/items/1")
    assert isinstance(resp, httpx.Response) and resp.status_code == 200


@pytest.mark.parametrize("path", ["x\x00", "items/\n1", "a\tb", "x\x7f"])
async def test_a_relative_path_with_a_control_character_is_refused_as_a_bad_argument(
    path: str,
) -> None:
    # Its origin known, the path was never parsed before httpx built the request: a
    # bare httpx.InvalidURL came out of the call.
    with respx.mock as mock:
        route = mock.route().respond(200)
        async with API() as api:
            with pytest.raises(errors.UnexpectedValueError, match="path is not a valid URL"):
                await api.get(path)
            with pytest.raises(errors.UnexpectedValueError, match="path is not a valid URL"):
                await APIEndpoint(api)._get(path)
    assert not route.called


@pytest.mark.parametrize("path", ["https://xn--/x", "https://xn--a.com/x"])
async def test_an_absolute_path_whose_host_does_not_decode_is_a_bad_argument(path: str) -> None:
    # A bare idna error came out of the call (a UnicodeError, not a trestfly error).
    with respx.mock as mock:
        route = mock.route().respond(200)
        async with API() as api:
            with pytest.raises(errors.UnexpectedValueError, match="a host IDNA cannot decode"):
                await api.get(path)
    assert not route.called


async def test_user_agent_names_sdk_library_and_platform() -> None:
    class Sdk(API):
        _vendor, _product, _build = "Acme", "Widgets", "7"
        _lib_name, _lib_version = "acme-sdk", "2.0"

    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(200)
        async with Sdk() as api:
            await api.get("x")
    agent = route.calls.last.request.headers["user-agent"]
    assert agent == (
        f"Integration/1.0 (Acme; Widgets; Build/7) acme-sdk/2.0 (Trestfly/{trestfly.__version__}; "
        f"Python/{platform.python_version()}; {platform.system()}/{platform.machine()})"
    )


async def test_constructor_keywords_override_class_attributes() -> None:
    with respx.mock as mock:
        route = mock.get("http://other.test/base/x").respond(200, json={"a": 1})
        async with API(url="http://other.test", base_path="/base/", box=True, vendor="V") as api:
            result = await api.get("x")
    assert isinstance(result, Box) and result.a == 1
    assert "(V; unknown; Build/unknown)" in route.calls.last.request.headers["user-agent"]


async def test_use_base_false_and_absolute_urls() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{URL}/login").respond(200)
        mock.get("http://elsewhere.test/full").respond(200)
        async with API() as api:
            await api.get("/login", use_base=False)
            await api.get("http://elsewhere.test/full")


async def test_box_conv_json_and_call_overrides() -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/v1/obj").respond(200, json={"items": [1, 2], "n": {"m": 1}})
        mock.get(f"{URL}/v1/empty").respond(200, headers={"content-type": "application/json"})
        mock.get(f"{URL}/v1/text").respond(200, text="plain")
        async with API(box=True) as api:
            boxed = await api.get("obj")
            assert boxed["items"] == [1, 2] and boxed.n.m == 1
            assert await api.get("empty") is None
            assert isinstance(await api.get("text"), httpx.Response)
            plain = await api.get("obj", box=False, conv_json=True)
            assert type(plain) is dict
            raw = await api.get("obj", box=False)
            assert isinstance(raw, httpx.Response)


async def test_unknown_request_keyword_is_a_typed_error() -> None:
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.UnexpectedValueError, match="'verify'"):
            await api.get("x", verify=False)


async def test_requests_outside_the_context_are_refused() -> None:
    api = API()
    with pytest.raises(errors.TrestflyError, match="async with"):
        await api.get("x")


# ------------------------------------------------------------------- retries


def waits(history: tuple[trestfly.RetryRecord, ...]) -> list[float]:
    return [record.delay for record in history]


async def test_503_503_200_backs_off_exponentially_with_full_jitter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = statuses(503, 503, 200)
        async with API(backoff=1.5) as api:
            start = trio.current_time()
            resp = await api.get("x")
            elapsed = trio.current_time() - start
    assert resp.status_code == 200
    assert route.call_count == 3
    first, second = waits(resp.extensions["trestfly.retry_history"])
    # Retry n waits a random share of backoff * 2**(n-1): up to 1.5 s, then up to 3 s.
    assert 0 <= first < 1.5 and 0 <= second < 3.0 and first != second
    assert elapsed == pytest.approx(first + second)


async def test_backoff_waits_are_spread_over_the_whole_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").side_effect = statuses(*[503] * 40, 200)
        async with API(retries=40, backoff=1, max_backoff=1) as api:
            resp = await api.get("x")
    delays = waits(resp.extensions["trestfly.retry_history"])
    assert len(delays) == 40 and all(0 <= delay < 1 for delay in delays)
    # Full jitter, not a fixed wait: 40 uniform draws all in one half has odds of 2**-39.
    assert min(delays) < 0.5 < max(delays)


async def test_run_of_503s_gets_retries_plus_one_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(503, text="down")
        async with API(retries=3, backoff=1.0) as api:
            start = trio.current_time()
            with pytest.raises(errors.ServiceUnavailableError) as info:
                await api.get("x")
            elapsed = trio.current_time() - start
    assert route.call_count == 4
    assert info.value.retries == 3 and info.value.code == 503
    delays = waits(info.value.history)
    assert [delay < bound for delay, bound in zip(delays, (1, 2, 4), strict=True)] == [True] * 3
    assert elapsed == pytest.approx(sum(delays))  # no sleep after the last attempt


async def test_retry_after_seconds_and_http_date(autojump_clock: trio.testing.MockClock) -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = [
            httpx.Response(429, headers={"Retry-After": "2.5"}),
            httpx.Response(503, headers={"Retry-After": when}),
            httpx.Response(200),
        ]
        async with API(backoff=100) as api:
            start = trio.current_time()
            await api.get("x")
            elapsed = trio.current_time() - start
    # Never before the announced instants; the shared gate adds at most 10% jitter after.
    # The date is whole seconds of the real clock, 9-10 s ahead when made, less the real
    # time the test takes to reach it (the mock clock does not see that): 8 s is room.
    assert 2.5 + 8.0 <= elapsed <= (2.5 + 10.0) * 1.1


async def test_a_retry_after_not_understood_is_said_once_per_origin(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A server's "30 seconds" is no Retry-After: the calls back off on their own, and a
    WARNING says so once per origin (it was ignored without a word)."""
    caplog.set_level(logging.WARNING, logger="trestfly")
    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").respond(503, headers={"Retry-After": "30 seconds"})
        mock.get("http://other.test/y").respond(429, headers={"Retry-After": "soon" * 50})
        mock.get(f"{URL}/v1/fine").respond(503, headers={"Retry-After": "1"})
        async with API(retries=2, backoff=0.1) as api:
            for path in ("x", "x", "fine", "http://other.test/y"):
                with pytest.raises(errors.APIError):
                    await api.get(path)
    told = [r for r in caplog.records if "neither delay-seconds" in r.getMessage()]
    assert [r.trestfly_origin for r in told] == ["http://api.test", "http://other.test"]
    assert [r.levelno for r in told] == [logging.WARNING] * 2
    assert told[0].getMessage() == (
        "Retry-After '30 seconds' of a 503 from http://api.test is neither delay-seconds nor "
        "an HTTP-date: ignored, the client backs off on its own (said once per origin)"
    )
    assert told[1].trestfly_retry_after_fields == (("soon" * 50)[:40],)


async def test_a_spent_quota_beside_a_shorter_retry_after_is_waited_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Retry-After: 1 beside a quota spent for 10 s: the probe went every second into the
    # spent window, and the call failed with its retries spent before the reset.
    sent: list[float] = []
    start = trio.current_time()
    reset = str(int(time.time()) + 11)

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time() - start)
        if len(sent) == 1:
            headers = {"Retry-After": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
            return httpx.Response(429, headers=headers)
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(server)) as api:
        response = await api.get("x")
    assert response.status_code == 200
    assert len(sent) == 2 and sent[1] >= 10.0  # once, after the reset


async def test_an_hourly_quota_with_much_left_does_not_slow_the_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # GitHub's 5,000 an hour, 4,999 left: 100 calls over 10 tasks took 72 s of pacing at
    # "what is left over the hour" (1.4/s), though the server refused none.
    used = 0
    reset = str(int(time.time()) + 3600)

    def server(request: httpx.Request) -> httpx.Response:
        nonlocal used
        used += 1
        headers = {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(5000 - used),
            "X-RateLimit-Reset": reset,
        }
        return httpx.Response(200, headers=headers)

    async def ten(api: API) -> None:
        for _ in range(10):
            await api.get("x")

    async with API(transport=httpx.MockTransport(server)) as api:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(ten, api)
        took = trio.current_time() - start
    assert used == 100 and took < 1.0


async def test_a_long_queue_never_spends_past_an_hourly_quota(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Slots are reserved at the quota's pace, what is left over ten seconds: 800 tasks
    # reserved slots past the 300 left, and those that came after the last of it went
    # all the same (100 into the spent window, answered 4 s late).
    remaining, refused = 300, 0
    reset = str(int(time.time()) + 3600)

    async def server(request: httpx.Request) -> httpx.Response:
        nonlocal remaining, refused
        await trio.sleep(4.0)
        headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Reset": reset}
        if remaining <= 0:
            refused += 1
            return httpx.Response(403, headers={**headers, "X-RateLimit-Remaining": "0"})
        remaining -= 1
        return httpx.Response(200, headers={**headers, "X-RateLimit-Remaining": str(remaining)})

    async def one(api: API) -> None:
        with suppress(errors.TrestflyError):  # refused at the closed gate: its hour
            await api.get("x")

    async with API(transport=httpx.MockTransport(server), retries=0) as api:
        await api.get("x")  # the quota is known
        with trio.move_on_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(800):
                    nursery.start_soon(one, api)
    assert remaining == 0 and refused == 0


async def test_xs_spent_window_is_waited_out_not_hammered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # X (Twitter) answers a spent window with a 429, X-Rate-Limit-* and no Retry-After:
    # its headers were not read, and each call retried on its own backoff into the
    # window (300 requests from 50 calls), then failed.
    sent: list[float] = []
    start = trio.current_time()
    reset = str(int(time.time()) + 11)

    def server(request: httpx.Request) -> httpx.Response:
        now = trio.current_time() - start
        sent.append(now)
        if now < 10.0:
            headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
            return httpx.Response(429, headers=headers)
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(server)) as api, trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(api.get, "x")
    assert len([at for at in sent if at < 10.0]) == 1
    assert len(sent) == 21


async def test_a_quota_spent_while_the_gate_is_closed_holds_the_reopening(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A 429 (Retry-After: 1) closes the gate; a success still out then says the quota is
    # spent for 10 s: the probe went at the 1 s reopening all the same (and got a 403).
    sent: list[tuple[str, float]] = []
    start = trio.current_time()
    reset = str(int(time.time()) + 11)

    async def server(request: httpx.Request) -> httpx.Response:
        now = trio.current_time() - start
        sent.append((request.url.path, now))
        if request.url.path == "/v1/slow":
            await trio.sleep(0.3)
            headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
            return httpx.Response(200, headers=headers)
        if now < 0.05:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(server)) as api, trio.open_nursery() as nursery:
        nursery.start_soon(api.get, "slow")
        await trio.sleep(0.001)
        nursery.start_soon(api.get, "x")
    later = [when for path, when in sent if path == "/v1/x"][1:]
    assert later and all(when >= 10.0 for when in later), sent


@pytest.mark.parametrize("fields", [("30", "1"), ("1", "30")])
async def test_of_two_retry_after_fields_the_longer_is_waited(
    autojump_clock: trio.testing.MockClock, fields: tuple[str, str]
) -> None:
    # An origin's Retry-After and a gateway's: the last field read alone decided, so
    # "30" then "1" was retried after a second, 29 s before the origin's instant.
    sent: list[float] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        if len(sent) == 1:
            return httpx.Response(429, headers=[("Retry-After", value) for value in fields])
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(server)) as api:
        await api.get("x")
    assert 30.0 <= sent[1] - sent[0] <= 33.0  # and the gate's jitter (10%, at most 1 s)


async def test_a_hint_on_a_status_that_leaves_the_gate_open_is_slept_in_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 502's Retry-After: 10 is not cut short by another call's 429 of one second
    (the retry waited only for the gate it had closed)."""
    sent: dict[str, list[float]] = {"slow": [], "throttled": []}

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.rsplit("/", 1)[-1]
        sent[path].append(trio.current_time())
        if path == "slow" and len(sent["slow"]) == 1:
            await trio.sleep(0.05)  # answered after the 429 closed the gate
            return httpx.Response(502, headers={"Retry-After": "10"})
        if path == "throttled" and len(sent["throttled"]) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(handler)) as api, trio.open_nursery() as nursery:
        nursery.start_soon(api.get, "slow")
        await trio.sleep(0.001)
        nursery.start_soon(api.get, "throttled")
    first, again = sent["slow"]
    assert again - first >= 10.05  # the 502 came 0.05 s after its send
    assert 1.0 <= sent["throttled"][1] - sent["throttled"][0] <= 1.1 + 0.001


async def test_invalid_retry_after_falls_back_to_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").side_effect = [
            httpx.Response(429, headers={"Retry-After": "-5"}),
            httpx.Response(429, headers={"Retry-After": "Someday, 99 Foo"}),
            httpx.Response(200),
        ]
        async with API(backoff=2) as api:
            start = trio.current_time()
            resp = await api.get("x")
    history = resp.extensions["trestfly.retry_history"]
    assert [record.retry_after for record in history] == [None, None]
    first, second = waits(history)
    assert first < 2 and second < 4
    assert trio.current_time() - start == pytest.approx(first + second)


async def test_hint_above_max_retry_after_fails_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(429, headers={"Retry-After": "3600"})
        async with API() as api:
            start = trio.current_time()
            with pytest.raises(errors.TooManyRequestsError) as info:
                await api.get("x")
    assert trio.current_time() == start
    assert route.call_count == 1
    assert info.value.retry_after == 3600.0 and info.value.retries == 0


async def test_delay_past_the_callers_deadline_fails_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(503, headers={"Retry-After": "30"})
        async with API() as api:
            start = trio.current_time()
            with trio.fail_after(10), pytest.raises(errors.ServiceUnavailableError) as info:
                await api.get("x")
    assert trio.current_time() == start
    assert route.call_count == 1 and info.value.retry_after == 30.0


async def test_hint_equal_to_max_retry_after_is_waited_despite_the_gate_jitter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The gate adds up to a second of jitter to the announced instant; that jitter must
    # not push an allowed wait past max_retry_after and turn it into a refusal.
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = [httpx.Response(429, headers={"Retry-After": "60"})] * 3 + [
            httpx.Response(200)
        ]
        async with API(max_retry_after=60) as api:
            start = trio.current_time()
            resp = await api.get("x")
    assert resp.status_code == 200 and route.call_count == 4
    assert trio.current_time() - start == pytest.approx(180.0, abs=0.1)


async def test_spent_quota_past_max_retry_after_fails_at_once_with_its_reset(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # GitHub's primary limit: a 403 with X-RateLimit-Remaining: 0 and no Retry-After.
    # Its reset is the announced delay: no phantom retry, and retry_after says it.
    headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0"}
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(
            403, headers={**headers, "X-RateLimit-Reset": str(int(time.time()) + 3000)}
        )
        throttled = mock.get(f"{URL}/v1/y").respond(
            429,
            headers={"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "30"},
        )
        start = trio.current_time()
        async with API(max_retry_after=20) as api:
            with pytest.raises(errors.ForbiddenError) as forbidden:
                await api.get("x")
        async with API(max_retry_after=20) as api:
            with pytest.raises(errors.TooManyRequestsError) as too_many:
                await api.get("y")
    assert trio.current_time() == start
    assert route.call_count == 1 and throttled.call_count == 1
    assert forbidden.value.retries == 0 and forbidden.value.history == ()
    assert forbidden.value.retry_after == pytest.approx(3000, abs=2)
    assert too_many.value.retries == 0 and too_many.value.retry_after == 30.0


async def test_deadline_keyword_bounds_the_whole_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(503)
        async with API(retries=10, backoff=1) as api:
            # Every wait at the top of its bound: 1, 2 and 4 s fit in 8 s; 8 more would not.
            api._rng.random = lambda: 1.0  # type: ignore[method-assign]
            start = trio.current_time()
            with pytest.raises(errors.ServiceUnavailableError):
                await api.get("x", deadline=8)
    assert route.call_count == 4
    assert trio.current_time() - start == pytest.approx(7)


async def test_deadline_expiring_in_flight_raises_timeout_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(60)
        return httpx.Response(200)

    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").mock(side_effect=slow)
        async with API() as api:
            with pytest.raises(errors.TimeoutError, match=r"deadline of 5\.0 s") as info:
                await api.get("x", deadline=5)
    assert isinstance(info.value, TimeoutError)


async def cancel_after(seconds: float, scope: trio.CancelScope) -> None:
    await trio.sleep(seconds)
    scope.cancel()


async def test_cancelling_the_caller_ends_a_backoff_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(503, headers={"Retry-After": "100"})
        async with API() as api, trio.open_nursery() as nursery:
            start = trio.current_time()
            with trio.CancelScope() as scope:
                # Cancelled from outside: the request cannot know this deadline in advance.
                nursery.start_soon(cancel_after, 5, scope)
                await api.get("x")
    assert scope.cancelled_caught
    assert route.call_count == 1
    assert trio.current_time() - start == pytest.approx(5)


async def test_every_call_is_a_schedule_point_even_through_an_in_process_transport(
    mock_clock: trio.testing.MockClock,
) -> None:
    # httpx.MockTransport and respx answer without waiting: a call had no schedule
    # point, so a poll loop starved every other task and its deadline never fired
    # (Trio delivers a deadline passed only when the scheduler runs).  Each poll moves
    # the mock clock on by 10 ms: the deadline of a second passes at the 100th.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    with respx.mock as mock:
        mock.get(f"{URL}/v1/ok").respond(200)
        mock.get(f"{URL}/v1/gone").respond(404)
        async with API() as api, trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.lowlevel.checkpoint()
            polls: dict[str, int] = {"ok": 0, "gone": 0}
            for path in polls:
                ticks = 0
                with trio.move_on_after(1) as scope:
                    while polls[path] < 10_000:
                        mock_clock.jump(0.01)
                        with contextlib.suppress(errors.NotFoundError):
                            await api.get(path)
                        polls[path] += 1
                # The other task ran beside the polls (the scheduler picks the order
                # within a batch at random: not at every call, but far more than once).
                assert scope.cancelled_caught and polls[path] < 110 and ticks > 10, path
            nursery.cancel_scope.cancel()


async def test_501_and_unmapped_statuses_are_not_retried() -> None:
    with respx.mock as mock:
        r501 = mock.get(f"{URL}/v1/a").respond(501)
        r500 = mock.get(f"{URL}/v1/b").respond(500)
        r499 = mock.get(f"{URL}/v1/c").respond(499)
        async with API() as api:
            with pytest.raises(errors.MethodNotImplementedError):
                await api.get("a")
            with pytest.raises(errors.ServerError):
                await api.get("b")
            with pytest.raises(errors.APIError) as info:
                await api.get("c")
    assert type(info.value) is errors.APIError
    assert r501.call_count == r500.call_count == r499.call_count == 1


async def test_retry_on_adds_statuses_per_call(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = statuses(500, 404, 200)
        async with API() as api:
            resp = await api.get("x", retry_on=[500, 404])
    assert resp.status_code == 200 and route.call_count == 3


DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_knobs_table_states_the_numeric_defaults() -> None:
    """docs/howto/throttling.md's table of knobs is what users read; it must not drift."""
    table = (DOCS / "howto" / "throttling.md").read_text(encoding="utf-8")
    stated = dict(re.findall(r"^\| `(\w+)` \| `([\d.]+|None)` \|", table, flags=re.M))
    for name in ("retries", "backoff", "max_backoff", "max_retry_after", "max_concurrency"):
        assert stated[name] == repr(getattr(TrioAPISession, f"_{name}")), name


# --------------------------------------------------------- transport failures


async def test_connect_errors_are_retried_even_for_post(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.post(f"{URL}/v1/x")
        route.side_effect = [httpx.ConnectError("refused"), httpx.Response(201)]
        async with API() as api:
            resp = await api.post("x", json={"a": 1})
    assert resp.status_code == 201 and route.call_count == 2


async def test_read_errors_are_not_retried_for_post(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        route = mock.post(f"{URL}/v1/x").mock(side_effect=httpx.ReadError("reset"))
        async with API() as api:
            with pytest.raises(errors.ConnectionError) as info:
                await api.post("x")
    assert route.call_count == 1
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert isinstance(info.value, ConnectionError)


@pytest.mark.parametrize("injected", [False, True])
@pytest.mark.parametrize(
    ("status", "location"),
    [
        (303, "http://api.test/v1/orders/1"),  # Post/Redirect/Get: the order was made
        (303, "http://files.other.test/orders/1"),
        (307, "http://mirror.api.test/v1/orders"),  # the same POST, sent elsewhere
    ],
)
async def test_a_post_answered_with_a_redirect_is_not_sent_again_when_the_redirect_fails(
    autojump_clock: trio.testing.MockClock, injected: bool, status: int, location: str
) -> None:
    # A connect error on the redirect's request read as "the request never reached the
    # server", and the POST the server had answered was sent again on every retry.
    sent: list[tuple[str, str]] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, str(request.url)))
        if request.url.path == "/v1/orders" and request.url.host == "api.test":
            return httpx.Response(status, headers={"Location": location})
        raise httpx.ConnectError("connection refused")

    transport = httpx.MockTransport(server)
    client = httpx.AsyncClient(transport=transport, follow_redirects=True)
    options: dict[str, Any] = {"session": client} if injected else {"transport": transport}
    async with client, API(retries=3, **options) as api:
        with pytest.raises(errors.ConnectionError) as info:
            await api.post("orders", json={"item": "book"})
    assert sent[0] == ("POST", "http://api.test/v1/orders")
    assert len(sent) == 2, sent  # the POST once, its redirect once
    assert isinstance(info.value.__cause__, httpx.ConnectError)


class TokenFromAuthServer(httpx.Auth):
    """An auth flow that fetches a token from an auth server before the call's request."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = yield httpx.Request("POST", "http://auth.test/token", json={"grant": "x"})
        request.headers["Authorization"] = "Bearer " + token.json()["token"]
        yield request


@pytest.mark.parametrize("injected", [False, True])
async def test_a_post_whose_token_fetch_is_refused_is_retried(
    autojump_clock: trio.testing.MockClock, injected: bool
) -> None:
    # The auth flow's own request failed to connect: compared with the call's URL it
    # read as a redirect the server had answered, and the POST, which never left, was
    # not retried ("not retryable").
    sent: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.host}{request.url.path}")
        if request.url.host == "auth.test":
            if len(sent) == 1:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(200, json={"token": "t"})
        return httpx.Response(201, json={"ok": True})

    transport = httpx.MockTransport(server)
    client = httpx.AsyncClient(transport=transport)
    options: dict[str, Any] = {"session": client} if injected else {"transport": transport}
    async with client, API(retries=3, **options) as api:
        response = await api.post("orders", json={"item": "book"}, auth=TokenFromAuthServer())
    assert response.status_code == 201
    assert sent == ["POST auth.test/token", "POST auth.test/token", "POST api.test/v1/orders"]


async def test_transport_and_timeout_errors_carry_their_retries_and_history(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Every retry is attached to the final error (docs/explanation/retries.md): the
    # ConnectionError and TimeoutError of a call had neither retries nor history, so
    # the 503s before the connection broke were only in the logs.
    answers = iter([httpx.Response(503, headers={"Retry-After": "1"})] * 2)

    def server(request: httpx.Request) -> httpx.Response:
        answer = next(answers, None)
        if answer is None:
            raise httpx.ConnectError("connection refused")
        return answer

    async with API(retries=2, transport=httpx.MockTransport(server)) as api:
        with pytest.raises(errors.ConnectionError) as info:
            await api.get("x")
    error = info.value
    assert error.retries == 2
    assert [(record.retry, record.status, record.retry_after) for record in error.history] == [
        (1, 503, 1.0),
        (2, 503, 1.0),
    ]
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.retries, copied.history) == (2, error.history)

    slow_answers = iter([httpx.Response(503, headers={"Retry-After": "1"})])

    async def slow(request: httpx.Request) -> httpx.Response:
        answer = next(slow_answers, None)
        if answer is None:
            await trio.sleep(10)  # the deadline passes while this attempt is out
            answer = httpx.Response(200)
        return answer

    async with API(transport=httpx.MockTransport(slow)) as api:
        with pytest.raises(errors.TimeoutError, match=r"deadline of 5\.0 s passed") as deadline:
            await api.get("x", deadline=5)
    assert deadline.value.retries == 1
    assert [record.status for record in deadline.value.history] == [503]


async def test_a_post_redirected_to_its_own_path_is_not_sent_again_when_that_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Only the query changed: the failed request looks like the call's own, and the
    # headers hook (on the client trestfly builds) is what says it was answered.
    sent: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        if len(sent) == 1:
            return httpx.Response(307, headers={"Location": "/v1/orders?attempt=2"})
        raise httpx.ConnectError("connection refused")

    async with API(transport=httpx.MockTransport(server), retries=3) as api:
        with pytest.raises(errors.ConnectionError):
            await api.post("orders", content=b"one order")
    assert sent == ["http://api.test/v1/orders", "http://api.test/v1/orders?attempt=2"]


async def test_a_get_answered_with_a_redirect_is_retried_when_the_redirect_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Idempotent: sending it again is harmless, so the whole call is retried.
    sent: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        if len(sent) < 4 and request.url.path == "/v1/x":
            return httpx.Response(302, headers={"Location": "http://cdn.test/x"})
        if request.url.host == "cdn.test" and len(sent) < 4:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"ok": True})

    async with API(transport=httpx.MockTransport(server), retries=3) as api:
        resp = await api.get("x")
    assert resp.status_code == 200
    assert sent[:4] == ["http://api.test/v1/x", "http://cdn.test/x"] * 2


async def test_exhausted_timeouts_raise_the_timeout_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").mock(side_effect=httpx.ReadTimeout("slow"))
        async with API(retries=2) as api:
            with pytest.raises(errors.TimeoutError) as info:
                await api.get("x")
    assert route.call_count == 3
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert not isinstance(info.value, errors.APIError)


async def test_unsupported_protocol_is_never_retried() -> None:
    # url= is checked when the session is built: a redirect is how ftp:// reaches httpx.
    sent: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.scheme == "ftp":  # as httpx's own transports refuse it
            raise httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'.")
        return httpx.Response(302, headers={"Location": "ftp://h/file"})

    # The server's redirect is at fault, not the caller's input (it was an
    # UnexpectedValueError, "cannot send GET ...").
    async with API(transport=httpx.MockTransport(redirect), retries=3) as api:
        with pytest.raises(
            errors.BadResponseError, match=r"GET http://api\.test/v1/x: .*redirects.*ftp://"
        ):
            await api.get("x")
    assert [str(request.url) for request in sent] == ["http://api.test/v1/x", "ftp://h/file"]


# ---------------------------------------------------------------------- hooks


async def test_retry_request_hook_sees_every_retry_and_changes_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[int | None, int, dict[str, Any]]] = []

    class Refreshing(API):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: Any
        ) -> dict[str, Any]:
            seen.append((response.status_code if response else None, retries, dict(kwargs)))
            kwargs["headers"] = {"Authorization": f"token-{retries}"}
            return kwargs

    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = [httpx.Response(401), httpx.ConnectError("x"), httpx.Response(200)]
        async with Refreshing() as api:
            await api.get("x", retry_on=[401], box=True, headers={"Authorization": "old"})
    assert [(s, n) for s, n, _ in seen] == [(401, 1), (None, 2)]
    assert seen[0][2]["box"] is True and seen[0][2]["retry_on"] == [401]
    sent = [call.request.headers["authorization"] for call in route.calls]
    assert sent == ["old", "token-1", "token-2"]


async def test_a_retry_hooks_none_fields_are_left_out_as_the_first_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first attempt left offset=None out; the hook's keywords sent offset= empty.
    class Signing(API):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: Any
        ) -> dict[str, Any]:
            return {**kwargs, "params": {"q": "trio", "offset": None, "sig": f"s{retries}"}}

    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/search")
        route.side_effect = [httpx.Response(503), httpx.Response(200)]
        async with Signing() as api:
            await api.get("search", params={"q": "trio", "offset": None, "sig": "s0"})
    sent = [str(call.request.url.params) for call in route.calls]
    assert sent == ["q=trio&sig=s0", "q=trio&sig=s1"]


async def test_follow_redirects_is_read_like_the_other_settings() -> None:
    # The keyword's default (True) overwrote a class's `_follow_redirects = False` and
    # one set before super().__init__(), silently: the redirect was followed.
    class NoRedirects(API):
        _follow_redirects = False

    class SetFirst(API):
        def __init__(self, **kwargs: Any) -> None:
            self._follow_redirects = False
            super().__init__(**kwargs)

    with respx.mock as mock:
        mock.get(f"{URL}/v1/old").respond(302, headers={"location": f"{URL}/v1/new"})
        mock.get(f"{URL}/v1/new").respond(200, json={})
        for session in (NoRedirects(retries=0), SetFirst(retries=0)):
            async with session as api:
                with pytest.raises(errors.APIError) as caught:
                    await api.get("old")
            assert caught.value.response.status_code == 302
        async with NoRedirects(follow_redirects=True) as api:
            assert (await api.get("old")).status_code == 200


async def test_resp_error_check_runs_on_every_2xx() -> None:
    class Strict(API):
        async def _resp_error_check(
            self, response: httpx.Response, **kwargs: Any
        ) -> httpx.Response:
            if response.json().get("error"):
                raise errors.BadRequestError(response)
            return response

    with respx.mock as mock:
        mock.get(f"{URL}/v1/bad").respond(200, json={"error": "nope"})
        mock.get(f"{URL}/v1/good").respond(200, json={"error": None, "v": 1})
        async with Strict() as api:
            with pytest.raises(errors.BadRequestError):
                await api.get("bad")
            assert (await api.get("good", conv_json=True))["v"] == 1


async def test_authenticate_gets_unknown_keywords_and_deauthenticate_runs() -> None:
    calls: list[Any] = []

    class Auth(API):
        async def _authenticate(self, api_key: str | None = None, **kwargs: Any) -> None:
            calls.append(("auth", api_key, kwargs))

        async def _deauthenticate(self) -> None:
            calls.append("deauth")

    async with Auth(api_key="k", region="eu"):
        pass
    assert calls == [("auth", "k", {"region": "eu"}), "deauth"]


async def test_only_the_opening_task_sends_while_authenticate_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A worker beside the `async with` called while the login was still out, and its
    # request went out without the credentials _authenticate was about to set.
    sent: list[str | None] = []
    login_sent = trio.Event()
    worker_failed: list[BaseException] = []

    class Login(API):
        async def _authenticate(self, **kwargs: Any) -> None:
            token = (await self.post("login", conv_json=True))["token"]
            # Calls from tasks the opening starts are part of it.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.get, "scopes")
            login_sent.set()
            await trio.sleep(1)  # the login round trip, for the worker to race
            self._session.headers["X-Token"] = token

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("X-Token"))
        return httpx.Response(200, json={"token": "t0ken"})

    async def worker(api: Login) -> None:
        await login_sent.wait()
        try:
            await api.get("items")
        except errors.SessionNotOpenError as exc:
            worker_failed.append(exc)

    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(side_effect=record)
        api = Login()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, api)
            async with api:
                assert await api.get("after", conv_json=True)
    assert sent == [None, None, "t0ken"]  # login, scopes, then the body's call
    assert len(worker_failed) == 1
    assert "still opening" in str(worker_failed[0])


async def test_a_setting_read_at_construction_and_assigned_later_is_refused() -> None:
    # RESTfly's `self._box = True` after super().__init__() was ignored silently: the
    # calls returned Responses and the error map was never applied.
    class Late(API):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._box = True
            self._url = "http://other.test"  # the URL may change later
            self._retries = 0

    with pytest.raises(errors.UnexpectedValueError, match=r"Late: _box changed after __init__"):
        async with Late():
            pass

    class InLogin(API):
        async def _authenticate(self, **kwargs: Any) -> None:
            self._error_map = {404: errors.NoLongerExistsError}

    with pytest.raises(errors.UnexpectedValueError, match=r"_error_map changed in _build_session"):
        async with InLogin():
            pass

    class Same(API):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._box = False  # the value it had: nothing changes
            self._url = "http://other.test"

    async with Same() as api:
        assert api._url == "http://other.test"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda api: api._error_map.__setitem__(418, errors.NoLongerExistsError), "_error_map"),
        (lambda api: api._box_attrs.__setitem__("default_box", True), "_box_attrs"),
        (lambda api: setattr(api, "_error_on_unexpected_input", True), "_error_on_unexpected_"),
    ],
    ids=["error_map", "box_attrs", "error_on_unexpected_input"],
)
async def test_a_setting_read_at_construction_and_changed_in_place_is_refused(
    change: Callable[[Any], None], named: str
) -> None:
    # `self._error_map[418] = Teapot` after super().__init__(): the session had read the
    # very object, which still equalled itself, and the change was ignored silently.
    class Late(API):
        _error_map = {404: errors.NotFoundError}  # noqa: RUF012 (an SDK's, as in RESTfly)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            change(self)

    with pytest.raises(errors.UnexpectedValueError, match=f"Late: {named}.* changed after"):
        async with Late():
            pass
    assert Late._error_map == {404: errors.NotFoundError}  # the class is untouched


async def test_retry_on_is_the_sessions_own_not_the_classs_list() -> None:
    # `_retry_on` alone was left on the class: a hook reading self._retry_on saw the
    # class's list, not the keyword's, and an SDK appending to it changed the class for
    # every later session.
    class SDK(API):
        _retry_on = [500]  # noqa: RUF012 (an SDK's, as in RESTfly)

    assert SDK(retry_on=[503])._retry_on == frozenset({503})
    first = SDK()
    assert first._retry_on == frozenset({500})
    with pytest.raises(AttributeError):
        first._retry_on.append(502)  # type: ignore[attr-defined]
    assert SDK._retry_on == [500]

    class Again(SDK):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._retry_on = tuple(self._retry_on)  # the same statuses: nothing changes

    assert Again()._check_settings_unchanged("after __init__()") is None


def test_a_session_is_not_copied_or_pickled() -> None:
    # A copy shared the original's clients, gates and budget: leaving the copy's block
    # closed the original's client; deepcopy and pickle failed with a bare TypeError.
    api = API()
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(errors.TrestflyError, match="cannot be copied or pickled"):
            attempt(api)


async def test_http2_assigned_after_construction_is_checked_on_entering() -> None:
    class Late(API):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._http2 = "yes"  # type: ignore[assignment]

    with pytest.raises(errors.UnexpectedValueError, match="http2 must be True or False"):
        async with Late():
            pass


async def test_idle_origins_are_forgotten_once_there_are_many(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every origin's gate stayed for the life of the session: a crawl of 20,000 hosts
    # held 123 MiB.  Idle ones are now dropped, their counts kept in the totals.
    monkeypatch.setattr(trestfly._session, "GATE_SWEEP_MIN", 8)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "closed.test":
            return httpx.Response(429, headers={"Retry-After": "3600"})
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(answer), retries=0) as api:
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("http://closed.test/x")  # its gate stays closed for an hour
        for host in range(15):
            await api.get(f"http://old{host}.test/x")
        assert len(api._gates) == 16  # swept at 8: none idle long enough, next at 16
        await trio.sleep(trestfly._session.FORGET_IDLE_ORIGIN_AFTER)
        await api.get("http://new.test/x")  # the 17th: a sweep
        assert set(api._gates) == {"http://closed.test", "http://new.test"}
        stats = api.stats
        assert (stats.throttled, stats.gate_trips, stats.successes) == (1, 1, 16)
        await api.get("http://old0.test/x")  # a forgotten origin is made again
        assert "http://old0.test" in api._gates


async def test_an_origin_left_at_a_throttle_is_forgotten_once_long_open(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its gate's probe was due for ever (nobody called again), and such an origin was
    # never forgotten: a crawl leaving each host at its first 429 kept them all.
    monkeypatch.setattr(trestfly._session, "GATE_SWEEP_MIN", 8)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith("refused"):
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(answer), retries=0) as api:
        for host in range(8):
            with pytest.raises(errors.TooManyRequestsError):
                await api.get(f"http://refused{host}.test/x")
        await trio.sleep(trestfly._session.FORGET_IDLE_ORIGIN_AFTER + 1)
        await api.get("http://new.test/x")  # the 9th: a sweep
        assert set(api._gates) == {"http://new.test"}
        assert (api.stats.throttled, api.stats.gate_trips) == (8, 8)


async def test_an_origin_idle_ten_minutes_is_learned_afresh(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The limits a storm taught stayed on an origin for as long as the session lived,
    # unless it knew 256 origins or more (then the idle ones were forgotten).
    storm = True

    async def answer(request: httpx.Request) -> httpx.Response:
        await trio.sleep(0.01)
        if storm:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(answer), retries=0) as api:
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(partial(_ignore_api_errors, api.get, "x"))
        learned = api.stats.origins["http://api.test"]
        assert learned.gate_trips >= 1
        storm = False
        await trio.sleep(trestfly._session.FORGET_IDLE_ORIGIN_AFTER - 2)
        await api.get("x")  # not idle long enough: the same origin's state
        assert api.stats.origins["http://api.test"].gate_trips == learned.gate_trips
        await trio.sleep(trestfly._session.FORGET_IDLE_ORIGIN_AFTER)
        await api.get("x")
        fresh = api.stats.origins["http://api.test"]
        assert (fresh.gate_trips, fresh.throttle_episodes, fresh.learned_rate) == (0, 0, None)
        assert api.stats.gate_trips == learned.gate_trips  # the totals keep its counts


async def test_a_first_wave_queued_for_the_session_shares_one_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The origin is forgotten at a call once idle ten minutes: never while its first
    # wave queues for the session's slot, nothing sent yet (each task of it made a gate
    # of its own when a new gate counted as idle since -inf and unused).
    async def answer(request: httpx.Request) -> httpx.Response:
        await trio.sleep(1.0 if request.url.host == "slow.test" else 0.1)
        return httpx.Response(200)

    gates: set[int] = set()
    async with API(transport=httpx.MockTransport(answer), max_concurrency=1) as api:
        gate_for = api._gate_for

        def recorded(origin: str) -> OriginGate:
            gate = gate_for(origin)
            if origin == "http://api.test":
                gates.add(id(gate))
            return gate

        api._gate_for = recorded  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(api.get, "http://slow.test/x")
            await trio.sleep(0.01)
            for _ in range(5):
                nursery.start_soon(api.get, "x")
        assert len(gates) == 1 and api.stats.successes == 6


async def test_a_gate_a_call_holds_a_slot_of_is_not_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A call holding its origin's slot while it queued for the session's was invisible
    # to the forgetting: a call 651 s later made a new gate, and the first one's 429
    # was counted nowhere.
    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.test":
            await trio.sleep(700)
            return httpx.Response(200)
        if request.url.path == "/v1/first":
            return httpx.Response(429)
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(answer), retries=0, max_concurrency=1) as api:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(api.get, "http://slow.test/x")
            await trio.sleep(1)
            nursery.start_soon(partial(_ignore_api_errors, api.get, "first"))
            await trio.sleep(650)
            nursery.start_soon(api.get, "second")
        assert api.stats.throttled == 1
        assert api.stats.origins["http://api.test"].throttle_episodes == 1


async def _ignore_api_errors(call: Callable[[str], Awaitable[Any]], path: str) -> None:
    with suppress(errors.APIError):
        await call(path)


async def test_error_on_unexpected_input_checks_authenticates_signature() -> None:
    class Strict(API):
        _error_on_unexpected_input = True

        async def _authenticate(self, username: str = "", password: str = "") -> None:
            pass

    Strict(username="u", password="p")
    with pytest.raises(errors.UnexpectedValueError, match="usernme"):
        Strict(usernme="u")

    class Open(Strict):
        async def _authenticate(self, **kwargs: Any) -> None:
            pass

    Open(anything=1)


def test_a_keyword_an_overridden_hook_cannot_take_is_refused_at_construction() -> None:
    # Without error_on_unexpected_input, a misspelt api_kye= reached _authenticate on
    # entering, as a bare TypeError far from the constructor.
    class SDK(API):
        async def _authenticate(self, api_key: str = "") -> None:
            pass

    with pytest.raises(errors.UnexpectedValueError, match=r"_authenticate\(\) .* api_kye"):
        SDK(api_kye="k")
    SDK(api_key="k")
    API(anything=1)  # no override takes it, none is called with it: ignored, as RESTfly


async def test_exceptions_in_the_body_are_never_swallowed() -> None:
    # v1/v2 regression: RESTfly 2's __aexit__ returned a truthy coroutine.
    class Deauth(API):
        async def _deauthenticate(self) -> None:
            return None

    with pytest.raises(KeyError):
        async with Deauth():
            raise KeyError("boom")


async def test_owned_client_closed_injected_client_left_open() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    api = API(transport=transport)
    async with api:
        owned = api._session
        assert owned is not None
    assert owned.is_closed

    injected = httpx.AsyncClient(transport=transport)
    async with API(session=injected) as api2:
        resp = await api2.get("x")
        assert resp.request.headers["user-agent"].startswith("Integration/1.0")
    assert not injected.is_closed
    await injected.aclose()


async def test_a_raw_data_body_is_sent_without_httpxs_deprecation_warning() -> None:
    # RESTfly's data=json_text: httpx warned ("Use 'content=<...>'"), at trestfly's line.
    import warnings

    with respx.mock as mock:
        route = mock.post(f"{URL}/v1/x").respond(200)
        async with API() as api:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                await api.post("x", data='{"a": 1}')
    assert route.calls.last.request.content == b'{"a": 1}'


async def test_attempts_count_only_requests_sent() -> None:
    # A request httpx could not build (params=5, a json= body it cannot serialise, a
    # header it cannot encode) was counted as an attempt sent, or a transport error.
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    async with API(transport=transport) as api:
        await api.get("x")
        for bad in ({"params": 5}, {"json": object()}, {"headers": {"X-Name": "é\n"}}):
            with pytest.raises(errors.UnexpectedValueError):
                await api.get("x", **bad)
        stats = api.stats
    assert (stats.attempts, stats.transport_errors, sum(stats.by_status.values())) == (1, 0, 1)


async def test_a_client_closed_under_an_open_session_is_named() -> None:
    # httpx's bare RuntimeError ("Cannot send a request, as the client has been
    # closed") came out of the call.
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    injected = httpx.AsyncClient(transport=transport)
    async with API(session=injected) as api:
        await injected.aclose()
        with pytest.raises(errors.TrestflyError, match="session= client was closed") as info:
            await api.get("x")
        assert api.stats.failures == 1 and api.stats.attempts == 0
    assert type(info.value) is errors.TrestflyError
    async with API(transport=transport) as api:
        await api._session.aclose()
        with pytest.raises(errors.TrestflyError, match="by code other than trestfly's"):
            await api.get("x")


async def test_a_client_an_override_sets_is_closed_on_leaving() -> None:
    # RESTfly-style overrides build self._session themselves: only the base method
    # marked the client as owned, so theirs stayed open (a socket leaked until GC), and
    # one set after super() built another left that other open too.
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    made: list[httpx.AsyncClient] = []

    class OwnClient(API):
        def _build_session(self, **kwargs: Any) -> None:
            self._session = httpx.AsyncClient(transport=transport)
            made.append(self._session)

    class Replacing(API):
        def _build_session(self, **kwargs: Any) -> None:
            super()._build_session(**kwargs)
            made.append(self._session)
            self._session = httpx.AsyncClient(transport=transport)
            made.append(self._session)

    for cls in (OwnClient, Replacing):
        async with cls() as api:
            assert (await api.get("x")).status_code == 200
            assert not any(client.is_closed for client in made)
        assert made and all(client.is_closed for client in made)
        made.clear()
    with pytest.raises(errors.UnexpectedValueError, match=r"must be an httpx\.AsyncClient"):
        API()._session = "http://api.test"  # type: ignore[assignment]
    with pytest.raises(errors.TrestflyError, match="is not open"):
        API()._session.headers["X-Key"] = "k"


async def test_the_session_property_behaves_as_an_attribute_for_introspection() -> None:
    # Raising a plain TrestflyError broke hasattr(), inspect.getmembers() and
    # mock.create_autospec() on a session outside its block.
    import inspect
    from unittest import mock

    api = API(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert not hasattr(api, "_session")
    with pytest.raises(errors.SessionNotOpenError, match="is not open"):
        await api.get("x")
    assert issubclass(errors.SessionNotOpenError, AttributeError)
    assert inspect.getmembers(api)
    mock.create_autospec(api, instance=True)

    class Restfly(API):  # RESTfly-style declarations keep working
        _session = None

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._session = None

    async with Restfly(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as old:
        assert (await old.get("x")).status_code == 200
    with pytest.raises(errors.UnexpectedValueError, match=r"_session cannot be set on the class"):

        class Wrong(API):
            _session = httpx.AsyncClient()


async def test_a_session_none_declared_on_a_mixin_keeps_the_session_usable() -> None:
    # Only the subclass's own `_session = None` was removed: declared on a RESTfly-style
    # attributes mixin before TrioAPISession, it hid the property, the client landed in
    # the instance dict, and entering raised "_build_session() did not set self._session".
    class RestflyAttrs:
        _url = URL
        _session = None

    class Mixed(RestflyAttrs, TrioAPISession):
        pass

    class Deeper(Mixed):
        pass

    for cls in (Mixed, Deeper):
        async with cls(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
            assert (await api.get("x")).status_code == 200
        assert not hasattr(api, "_session")
    assert RestflyAttrs._session is None  # the mixin itself is left as it was

    class Holder:
        _session = "http://api.test"

    with pytest.raises(errors.UnexpectedValueError, match=r"Holder\._session cannot be set"):

        class Wrong(Holder, TrioAPISession):
            pass


async def test_a_client_kept_across_blocks_is_named_when_found_closed() -> None:
    class Keeps(API):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._kept = httpx.AsyncClient(
                transport=httpx.MockTransport(lambda r: httpx.Response(200))
            )

        def _build_session(self, **kwargs: Any) -> None:
            self._session = self._kept

    api = Keeps()
    async with api:
        assert (await api.get("x")).status_code == 200
    with pytest.raises(errors.TrestflyError, match=r"set as self\._session is closed.*session="):
        async with api:
            pass  # pragma: no cover


async def test_every_client_is_closed_even_when_one_fails_to_close() -> None:
    class Stubborn(httpx.AsyncClient):
        async def aclose(self) -> None:
            raise OSError("the socket would not close")

    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    second = httpx.AsyncClient(transport=transport)

    class Two(API):
        def _build_session(self, **kwargs: Any) -> None:
            self._session = Stubborn(transport=transport)
            self._session = second

    with pytest.raises(OSError, match="would not close"):
        async with Two():
            pass
    assert second.is_closed


async def test_a_closed_session_client_and_a_transport_beside_it_are_refused() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    closed = httpx.AsyncClient(transport=transport)
    await closed.aclose()
    with pytest.raises(errors.TrestflyError, match="the session= client is closed"):
        async with API(session=closed):
            pass  # pragma: no cover
    # The client's own transport sends: the other one was silently ignored.
    with pytest.raises(errors.UnexpectedValueError, match="session= or transport=, not both"):
        API(session=httpx.AsyncClient(transport=transport), transport=transport)


@pytest.mark.parametrize("reopen", [True, False])
async def test_a_retry_after_the_block_closed_uses_the_client_open_now(reopen: bool) -> None:
    # The call read the client once and retried through it after the block closed:
    # httpx's bare RuntimeError, even when the session had been entered again.
    answers = iter([503, 200])
    transport = httpx.MockTransport(lambda r: httpx.Response(next(answers)))

    class Reopening(API):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: Any
        ) -> dict[str, Any]:
            await self.__aexit__(None, None, None)
            if reopen:
                await self.__aenter__()
            return kwargs

    api = Reopening(transport=transport, retries=1, backoff=0)
    await api.__aenter__()
    try:
        if reopen:
            assert (await api.get("x")).status_code == 200
        else:
            with pytest.raises(errors.TrestflyError, match="is not open"):
                await api.get("x")
    finally:
        await api.__aexit__(None, None, None)


def test_a_session_entered_in_another_trio_run_starts_its_throttling_afresh() -> None:
    # Its gates hold instants of the first run's clock: a 429 of that run came back in
    # the next as a TooManyRequestsError with a wait of hours, no request sent.
    answers = iter([httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200)])
    api = API(transport=httpx.MockTransport(lambda r: next(answers)), retries=0)

    async def use() -> int:
        with trio.fail_after(1):  # a gate left closed fails, never hangs
            async with api:
                return (await api.get("x")).status_code

    # A MockClock in each run: both clocks start at 0, so the last run's gate is
    # certainly still closed by its clock (Trio's own clock starts at a random offset).
    with pytest.raises(errors.TooManyRequestsError):
        trio.run(use, clock=trio.testing.MockClock(autojump_threshold=0))
    assert trio.run(use, clock=trio.testing.MockClock(autojump_threshold=0)) == 200
    # The stats start afresh with it: this run's one attempt, not both runs'.
    assert (api.stats.attempts, api.stats.successes, api.stats.throttled) == (1, 1, 0)


def test_throttle_settings_follow_keyword_over_class_and_subclass_over_parent() -> None:
    throttle = trestfly.ThrottleSettings

    class Sdk(API):
        _rate_limit, _burst, _adaptive = 2.0, 5, False

    def fields(api: TrioAPISession) -> tuple[object, ...]:
        settings = api._throttle
        return settings.rate_limit, settings.burst, settings.adaptive, settings.decrease

    assert fields(Sdk()) == (2.0, 5, False, 0.9)
    # A throttle= keyword beats the class shortcuts (they replaced three of its fields).
    given = throttle(rate_limit=50.0, burst=20, adaptive=True, decrease=0.5)
    assert fields(Sdk(throttle=given)) == (50.0, 20, True, 0.5)
    assert fields(Sdk(throttle=given, rate_limit=7.0)) == (7.0, 20, True, 0.5)

    class Child(Sdk):  # a subclass's _throttle beats its parent's shortcuts
        _throttle = throttle(rate_limit=10.0, burst=3)

    assert fields(Child()) == (10.0, 3, True, 0.9)

    class Both(API):  # in one class, the shortcut wins (as with keywords)
        _throttle = throttle(rate_limit=10.0)
        _rate_limit = 3.0

    class Grandchild(Child):  # a shortcut set deeper than the _throttle applies
        _burst = 1

    assert fields(Both())[0] == 3.0
    assert fields(Grandchild()) == (10.0, 1, True, 0.9)

    class Unset(API):  # None is "unset", as for the keywords: the rate stays
        _throttle = throttle(rate_limit=10.0, burst=5)
        _rate_limit = None

    assert fields(Unset()) == (10.0, 5, True, 0.9)


def test_a_sharded_transport_smaller_than_max_concurrency_is_refused() -> None:
    # 37 of 40 requests waited inside httpcore's pool, where cancellation leaks slots.
    small = trestfly.ShardedTransport(max_connections=3)
    with pytest.raises(errors.UnexpectedValueError, match="max_concurrency=10 is more than"):
        API(transport=small, max_concurrency=10)
    with pytest.raises(errors.UnexpectedValueError, match="set max_concurrency=3"):
        API(transport=small)  # the default of 100
    assert API(transport=small, max_concurrency=3)._max_concurrency == 3


@pytest.mark.parametrize(("api", "named"), [(None, "a NoneType"), (API, "the class API")])
def test_an_endpoint_is_built_on_a_session_instance(api: Any, named: str) -> None:
    # Else its first call failed far from here: a bare AttributeError for None, and a
    # TypeError about `path` for the session class.
    class Users(APIEndpoint):
        _path = "users"

    with pytest.raises(errors.UnexpectedValueError, match=f"TrioAPISession instance.*got {named}"):
        Users(api)


async def test_none_fields_of_params_and_data_are_not_sent() -> None:
    # RESTfly (requests) leaves them out; httpx sent ?offset=&filter= and a=1&b=.
    with respx.mock as mock:
        route = mock.post(url__startswith=f"{URL}/v1/users").respond(200)
        async with API() as api:
            await api.post(
                "users?q=x", params={"limit": 10, "offset": None}, data={"a": "1", "b": None}
            )
    request = route.calls.last.request
    assert request.url.query == b"q=x&limit=10"
    assert request.content == b"a=1"


async def test_a_param_given_no_value_keeps_the_paths_own_beside_client_params() -> None:
    # With default params on the client the query goes through httpx's merge, where
    # q=[] replaced the path's q=trio with nothing.
    seen: list[httpx.URL] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200)

    client = httpx.AsyncClient(params={"key": "k"}, transport=httpx.MockTransport(server))
    async with client, API(session=client) as api:
        await api.get("search?q=trio", params={"q": []})
    assert dict(seen[0].params) == {"q": "trio", "key": "k"}


async def test_a_query_written_in_the_path_is_sent_as_written_beside_params() -> None:
    # Merged by httpx it was encoded again: ?expand= and a=1%3Bb%3D2 (one value, not two).
    with respx.mock as mock:
        route = mock.get(url__startswith=f"{URL}/v1/search").respond(200)
        async with API() as api:
            await api.get("search?expand&a=1;b=2&page=1", params={"page": 2})
    assert route.calls.last.request.url.query == b"expand&a=1;b=2&page=2"


async def test_an_endpoint_path_with_a_query_takes_no_path_after_it() -> None:
    # "users?active=1" + "42" went to GET /users with active=1/42: another resource.
    class Active(APIEndpoint):
        _path = "users?active=1"

    with respx.mock as mock:
        route = mock.get(url__startswith=f"{URL}/v1/users").respond(200)
        async with API() as api:
            endpoint = Active(api)
            assert (await endpoint._get()).status_code == 200  # the path itself is fine
            with pytest.raises(errors.UnexpectedValueError, match=r"Active\._path has a query"):
                await endpoint._get("42")
    assert route.call_count == 1


async def test_an_endpoint_refuses_a_path_of_another_scheme_as_the_session_does() -> None:
    # Joined after _path first, the session's check never saw the scheme: the call went
    # to http://api.test/v1/files/ftp://host/x.
    class Files(APIEndpoint):
        _path = "files"

    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(200)
        async with API() as api:
            with pytest.raises(errors.UnexpectedValueError, match="scheme 'ftp'"):
                await api.get("ftp://host/x")
            for path in ("ftp://host/x", "wss://host/x"):
                with pytest.raises(errors.UnexpectedValueError, match="path is a URL of the"):
                    await Files(api)._get(path)
    assert route.calls == []


@pytest.mark.parametrize("path", ["", "?page=2"])
async def test_an_endpoint_path_keeps_its_trailing_slash_under_a_call_without_a_path(
    path: str,
) -> None:
    # "" or a query alone was joined as a segment: /v1/items/ became /v1/items.
    class Items(APIEndpoint):
        _path = "items/"

    with respx.mock as mock:
        route = mock.route().respond(200)
        async with API() as api:
            await Items(api)._get()
            await Items(api)._get(path)
            await Items(api)._get(params={"page": 2})
    assert [str(call.request.url) for call in route.calls] == [
        f"{URL}/v1/items/",
        f"{URL}/v1/items/{path}",
        f"{URL}/v1/items/?page=2",
    ]


async def test_an_endpoint_path_with_a_query_takes_an_empty_path_but_no_second_query() -> None:
    class Active(APIEndpoint):
        _path = "users?active=1"

    with respx.mock as mock:
        route = mock.route().respond(200)
        async with API() as api:
            await Active(api)._get("")  # refused as a path joined after the query
            with pytest.raises(errors.UnexpectedValueError, match="query per call"):
                await Active(api)._get("?page=2")  # "users?active=1?page=2"
    assert [str(call.request.url) for call in route.calls] == [f"{URL}/v1/users?active=1"]


@pytest.mark.parametrize("headers", [{"Retry-After": "0"}, {}])
async def test_a_lone_call_under_a_mock_clock_makes_retries_plus_one_attempts(
    headers: dict[str, str], autojump_clock: trio.testing.MockClock
) -> None:
    # Each retry went out in the very tick of the 429 it retried, was taken for sent
    # before that throttle (stale) and not counted: 7 attempts for retries=3.
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(429, headers=headers)
        async with API(retries=3, backoff=0) as api:
            with pytest.raises(errors.TooManyRequestsError) as caught:
                await api.get("x")
    assert route.call_count == 4 and caught.value.retries == 3
    assert all(record.counted for record in caught.value.history)


async def test_calls_ended_by_their_deadline_or_retry_hook_count_as_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Both vanished from the counters: "failures" is every call given up on.
    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(10)
        return httpx.Response(200)

    class GivesUp(API):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: Any
        ) -> dict[str, Any]:
            assert response is not None
            raise errors.UnauthorizedError(response)

    with respx.mock as mock:
        mock.get(f"{URL}/v1/slow").mock(side_effect=slow)
        mock.get(f"{URL}/v1/down").respond(503)
        async with GivesUp(retries=2) as api:
            with pytest.raises(errors.TimeoutError, match=f"GET {URL}/v1/slow: deadline"):
                await api.get("slow", deadline=2)
            with pytest.raises(errors.UnauthorizedError):
                await api.get("down")
            stats = api.stats
    assert (stats.attempts, stats.successes, stats.failures) == (2, 0, 2)


async def test_sessions_and_iterators_have_reprs_without_secrets() -> None:
    class Keyed(TrioAPISession):
        _url = "https://user:S3CRET@api.test/v1"

    api = Keyed(transport=httpx.MockTransport(lambda r: httpx.Response(200)), max_concurrency=4)
    assert repr(api) == "<Keyed url='https://api.test/v1' closed max_concurrency=4>"
    async with api:
        assert " open " in repr(api)
    link = trestfly.Position("https://api.test/v1/items?api_key=S3CRET")
    walk = trestfly.LinkIterator(api, path="items", position=link)
    assert repr(walk).startswith("<LinkIterator path='items' count=0 position=Position(")
    assert "S3CRET" not in repr(api) + repr(walk)
    keyed_path = trestfly.OffsetIterator(api, path="items?api_key=S3CRET")
    assert "S3CRET" not in repr(keyed_path)

    class Unready(TrioAPISession):
        def __init__(self) -> None:  # never calls super().__init__()
            pass

    assert repr(Unready()).startswith("<Unready url=None closed")


@pytest.mark.parametrize("outcome", ["cancelled", "reset"])
async def test_a_crowd_cancelled_by_its_caller_keeps_the_cut_one_reset_does_not(
    outcome: str, autojump_clock: trio.testing.MockClock
) -> None:
    # 20 at once, one bare 429, 2 served.  The other 17 reset by the server are refused
    # (the limit goes to the 2 served); cancelled by their caller, they say nothing, and
    # they left the limit at 2 as well, for a minute (the first failure of a map
    # cancels the rest).
    sent = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        number = sent
        if number == 1:
            await trio.sleep(0.05)
            return httpx.Response(429)  # no Retry-After: too many at once
        await trio.sleep(0.1 if number <= 3 else 1.0)
        if number > 3 and outcome == "reset":
            raise httpx.ReadError("connection reset by peer")
        return httpx.Response(200)

    api = API(transport=httpx.MockTransport(handler), max_concurrency=20, retries=0)
    async with api:
        with trio.move_on_after(0.5 if outcome == "cancelled" else 5):
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(_quietly, api.get("x"))
        limit = api.stats.concurrency_limit
    if outcome == "reset":
        assert limit == 2
    else:
        assert limit == 9  # the cut (0.9 of the 10 in flight when the 429 was sent) stands


async def _quietly(call: Awaitable[Any]) -> None:
    with contextlib.suppress(errors.TrestflyError):
        await call


def hide_package(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``importlib.util.find_spec`` say ``package`` is not installed."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == package else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_http2_without_the_h2_package_is_refused_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide_package(monkeypatch, "h2")
    with pytest.raises(errors.UnexpectedValueError, match="h2 package"):
        API(http2=True)
    API(http2=False)
    # A client or transport of the caller's is its own: http2= cannot reach it, and is
    # refused for that (see the test below), not for the missing package.
    with pytest.raises(errors.UnexpectedValueError, match="http2= cannot reach"):
        API(http2=True, session=httpx.AsyncClient())
    with pytest.raises(errors.UnexpectedValueError, match="http2= cannot reach"):
        API(http2=True, transport=httpx.MockTransport(lambda r: httpx.Response(200)))


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("ssl_verify", False),
        ("cert", "CERT"),
        ("proxies", "http://127.0.0.1:3128"),
        ("timeout", 0.05),
        ("timeout", None),
        ("http2", True),
    ],
)
def test_settings_a_given_client_or_transport_cannot_take_are_refused(
    tmp_path: Path, keyword: str, value: object
) -> None:
    # They were accepted and dropped: the requests went round the proxy, without the
    # certificate, with the client's own timeout and TLS settings.
    if value == "CERT":
        value = str(tmp_path / "client.pem")
        Path(value).write_text("not read before entering")
    with pytest.raises(errors.UnexpectedValueError, match=f"{keyword}= cannot reach the session="):
        API(session=httpx.AsyncClient(), **{keyword: value})
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    if keyword == "timeout":
        API(transport=transport, **{keyword: value})  # the client built around it takes it
    else:
        refused = f"{keyword}= cannot reach the transport="
        with pytest.raises(errors.UnexpectedValueError, match=refused):
            API(transport=transport, **{keyword: value})


def test_an_sdks_class_settings_give_way_to_a_given_client() -> None:
    # An SDK's defaults, not the caller's words: the caller's client decides.
    class Strict(API):
        _timeout = 5.0
        _ssl_verify = True
        _proxies = "http://127.0.0.1:3128"

    Strict(session=httpx.AsyncClient())
    Strict(transport=httpx.MockTransport(lambda r: httpx.Response(200)))


async def test_retry_statuses_is_a_session_keyword_like_every_class_attribute(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # It went to _authenticate, silently, and 503 was still retried.
    answers = iter([503, 200])
    transport = httpx.MockTransport(lambda r: httpx.Response(next(answers)))
    async with API(transport=transport, retry_statuses=[429]) as api:
        with pytest.raises(errors.ServiceUnavailableError):
            await api.get("x")  # 503 is no longer retried
        assert api._retry_statuses == frozenset({429})
    with pytest.raises(errors.UnexpectedValueError, match=r"retry_statuses cannot .*\[200\]"):
        API(retry_statuses=[429, 200])


def test_a_subclass_retry_statuses_are_checked_like_retry_on() -> None:
    class Polling(API):
        _retry_statuses = frozenset({503, 202})

    with pytest.raises(errors.UnexpectedValueError, match=r"_retry_statuses cannot .*\[202\]"):
        Polling()


async def test_a_session_can_be_entered_again_after_leaving() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    api = API(transport=transport)
    for _ in range(2):
        async with api:
            assert (await api.get("x")).status_code == 200


async def test_follow_redirects_applies_to_an_injected_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/old":
            return httpx.Response(302, headers={"Location": f"{URL}/v1/new"})
        return httpx.Response(200, text="new")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # follow_redirects=False
    async with API(session=client) as api:
        assert (await api.get("old")).text == "new"
    async with API(session=client, follow_redirects=False) as api:
        with pytest.raises(errors.APIError) as info:
            await api.get("old")
        assert info.value.code == 302
    await client.aclose()


# ---------------------------------------------------- errors and their message


async def test_api_error_message_and_body_cut() -> None:
    body = "x" * 5000
    with respx.mock as mock:
        mock.delete(f"{URL}/v1/x").respond(404, text=body)
        async with API() as api:
            with pytest.raises(errors.NotFoundError) as info:
                await api.delete("x")
    message = str(info.value)
    assert message.startswith(f"[404: DELETE] {URL}/v1/x body=xxx")
    assert len(message) < 1100 and message.endswith("...")
    assert info.value.response.status_code == 404


async def test_error_map_overrides_per_session() -> None:
    class Gone(errors.APIError):
        pass

    class Custom(API):
        _error_map = {404: Gone}  # noqa: RUF012 - a subclass may set a plain dict

    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").respond(404)
        async with Custom() as api:
            with pytest.raises(Gone):
                await api.get("x")
        async with API() as plain:
            with pytest.raises(errors.NotFoundError):
                await plain.get("x")


# ------------------------------------------------------------ v1 regressions


async def test_redaction_is_kept_on_every_retry(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # RESTfly 1.5.1 dropped redact options after the first attempt and logged a password.
    caplog.set_level(logging.DEBUG, logger="trestfly")
    with respx.mock as mock:
        route = mock.post(f"{URL}/v1/session")
        route.side_effect = statuses(503, 503, 200)
        async with API() as api:
            await api.post(
                "session",
                json={"username": "u", "password": "hunter2"},
                redact_fields=["password"],
                headers={"Authorization": "Bearer tok"},
            )
    attempts = [r for r in caplog.records if r.name == "trestfly.request"]
    assert len(attempts) == 3
    for record in attempts:
        assert record.trestfly_body == {"username": "u", "password": "REDACTED"}  # type: ignore[attr-defined]
        assert record.trestfly_headers["Authorization"] == "REDACTED"  # type: ignore[attr-defined]
    assert "hunter2" not in caplog.text and "Bearer tok" not in caplog.text
    retries = [r for r in caplog.records if r.name == "trestfly.retry"]
    assert [r.trestfly_retry for r in retries] == [1, 2]  # type: ignore[attr-defined]


async def test_iterators_of_headers_params_and_files_are_read_once_per_call(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The attempt's DEBUG line read a generator of header pairs first (and each attempt
    built its request from it again): the request went out without them, silently."""
    caplog.set_level(logging.DEBUG, logger="trestfly")
    seen: list[tuple[str | None, str, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers.get("X-Api-Key"), str(request.url), request.read()))
        return httpx.Response(503 if len(seen) == 1 else 200)

    async with API(transport=httpx.MockTransport(answer)) as api:
        await api.post(
            "upload",
            headers=((name, value) for name, value in {"X-Api-Key": "k123"}.items()),
            params=iter([("page", "2")]),
            files=iter([("part", ("a.txt", b"CONTENT"))]),
        )
    assert len(seen) == 2  # the 503 and its retry: both with every argument
    for key, url, body in seen:
        assert key == "k123" and url.endswith("/v1/upload?page=2") and b"CONTENT" in body
    attempts = [r for r in caplog.records if r.name == "trestfly.request"]
    assert attempts[0].trestfly_body == "<files ['part']>"  # type: ignore[attr-defined]
    assert attempts[0].trestfly_headers["X-Api-Key"] == "REDACTED"  # type: ignore[attr-defined]


async def test_files_in_every_form_httpx_sends_are_accepted() -> None:
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.read())
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(answer)) as api:
        for files in (
            {"f": b"ONE"}.items(),  # a view, not a list
            [["f", b"TWO"]],  # pairs as lists (from JSON)
            (("f", ("a.txt", io.BytesIO(b"THREE"), "text/plain")),),
        ):
            await api.post("upload", files=files)
    assert [b"ONE" in sent[0], b"TWO" in sent[1], b"THREE" in sent[2]] == [True] * 3


async def test_a_retry_request_hook_that_returns_no_keywords_is_named(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Forgetful(API):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: Any
        ) -> dict[str, Any]:
            return None  # type: ignore[return-value]

    async with Forgetful(transport=httpx.MockTransport(lambda r: httpx.Response(503))) as api:
        with pytest.raises(errors.UnexpectedValueError, match=r"Forgetful._retry_request\(\) must"):
            await api.get("x")


async def test_an_absolute_path_without_a_host_is_named() -> None:
    # httpx raised a bare ValueError for it (from its cookie handling) on some transports.
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.UnexpectedValueError, match="URL without a host"):
            await api.get("http:///x")


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("http://127.0.0.1:0/x", "path has port 0, outside 1-65535"),
        ("https://api.test:70000/x", "path has port 70000"),
        ("http://a b/x", "path has a host with a space"),
    ],
)
async def test_an_absolute_path_with_a_port_or_host_no_request_can_use_is_refused(
    path: str, needle: str
) -> None:
    # The session's url was checked, but an absolute path was not: port 0 went out to
    # port 80, and a host with a space was sent percent-encoded, silently.
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async with API(transport=httpx.MockTransport(answer), retries=0) as api:
        for _ in range(2):  # refused again, not cached as a good path
            with pytest.raises(errors.UnexpectedValueError, match=needle):
                await api.get(path)
        assert (await api.get("http://127.0.0.1:8080/x")).status_code == 200
    assert [str(request.url) for request in sent] == ["http://127.0.0.1:8080/x"]


async def test_a_bad_box_attrs_value_for_one_call_is_refused_before_sending() -> None:
    # Checked by name only: the request went out, then the 2xx answer failed in
    # python-box with a bare TypeError.
    class Items(APIEndpoint):
        _path = "items"
        _box_attrs = MappingProxyType({"box_intact_types": 5})

    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/items").respond(200, json={"a": {"b": 1}})
        async with API() as api:
            with pytest.raises(errors.UnexpectedValueError, match="option box_recast"):
                await api.get("items", box=True, box_attrs={"box_recast": 5})
            with pytest.raises(errors.UnexpectedValueError, match="option box_intact_types"):
                await Items(api)._get(box=True)
            assert route.call_count == 0
            # Values python-box takes still pass, once checked.
            for _ in range(2):
                boxed = await api.get("items", box=True, box_attrs={"box_intact_types": (list,)})
                assert boxed.a.b == 1


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        (5, "box_attrs must be a mapping"),
        ({"bx_dots": True}, "unknown python-box options"),
        ({"box_intact_types": 5}, "option box_intact_types"),
    ],
)
async def test_an_endpoints_bad_box_attrs_are_named_as_its_own(attrs: Any, problem: str) -> None:
    # Checked as the call's own, the message blamed a box_attrs the call never passed.
    class Items(APIEndpoint):
        _path = "items"
        _box_attrs = attrs

    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/items").respond(200, json={})
        async with API() as api:
            with pytest.raises(errors.UnexpectedValueError, match=f"Items._box_attrs: .*{problem}"):
                await Items(api)._get(box=True)
    assert route.call_count == 0


async def test_a_success_the_box_options_cannot_convert_is_a_decode_error() -> None:
    # box_recast={"id": int} is valid, but an object under "id" made python-box raise a
    # bare TypeError after the 2xx answer, and the response was lost.
    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").respond(200, json={"id": {"nested": 1}})
        async with API(box=True, box_attrs={"box_recast": {"id": int}}) as api:
            with pytest.raises(errors.ResponseDecodeError, match="does not make a Box") as info:
                await api.get("x")
    assert info.value.response is not None and info.value.response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"access_token": "S3CRET", "scope": "read",}',  # a trailing comma
        b'{"token_type": "bearer", "access_token": "S3CRET',  # cut off inside the value
        b'{"access_token": "S3CRET", "scope.read": true}',  # box_dots and a dotted key
    ],
)
async def test_a_token_answer_that_does_not_convert_is_not_quoted(body: bytes) -> None:
    # The decode error quoted the body's first 64 bytes: a token endpoint's token.
    answer = httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    with respx.mock as mock:
        mock.post(f"{URL}/v1/oauth/token").respond(200, content=body, headers=answer.headers)
        mock.post(f"{URL}/v1/other").respond(200, content=body, headers=answer.headers)
        options = {"box": True, "box_attrs": {"box_dots": True}}
        async with API(restricted_paths=["oauth/token"], **options) as api:
            with pytest.raises(errors.ResponseDecodeError) as other:
                await api.post("other")
            with pytest.raises(errors.ResponseDecodeError) as restricted:
                await api.post("oauth/token")
    # Elsewhere the head is quoted, a credential's value hidden; on a restricted path,
    # none of it.
    assert "S3CRET" not in str(other.value)
    assert "access_token" in str(other.value) and "REDACTED" in str(other.value)
    assert "S3CRET" not in str(restricted.value)
    assert "body not shown (a restricted path)" in str(restricted.value)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b"{'access_token': 'S3CRET'}", b"{'access_token': '***'}"),  # a dict's repr
        (b'{"password": 12345678,}', b'{"password": ***,}'),  # not a string
        (b'{"x_sess": "S3CRET", "a": 1,}', b'{"x_sess": "***", "a": 1,}'),  # the call's field
        # A list or an object hid only its bracket; an escaped key was not read.
        (b'{"tokens": ["tok_A", "tok_B"], "a": 1,}', b'{"tokens": ***, "a": 1,}'),
        (b'{"token": {"id": "tok_D", "n": [1]}, "a": 1,}', b'{"token": ***, "a": 1,}'),
        (b'{"key": [("S3CRET",)],}', b'{"key": ***,}'),
        (b'{"api_keys": ["' + b"k" * 80 + b'"],}', b'{"api_keys": ***'),  # the head cut short
        (b'{"\\u0074oken": "S3CRET",}', b'{"\\u0074oken": "***",}'),
        # Unquoted names: a token endpoint answering a form, or a JavaScript object.
        (b"access_token=S3CRET&token_type=bearer", b"access_token=***&token_type=bearer"),
        (b"{access_token: 'S3CRET', expires_in: 3600", b"{access_token: '***', expires_in: 3600"),
        # A header line echoed back: the scheme and the credential after it, as one.
        (b"Authorization: Bearer S3CRET\nHost: x", b"Authorization: ***\nHost: x"),
    ],
)
async def test_a_decode_error_hides_every_credential_value_it_quotes(
    body: bytes, shown: bytes
) -> None:
    # Only double-quoted string values of credential names were hidden: a dict's repr,
    # a number and the call's own redact_fields were quoted as they were.
    headers = {"Content-Type": "application/json"}
    with respx.mock as mock:
        mock.get(f"{URL}/v1/x").respond(200, content=body, headers=headers)
        async with API(box=True) as api:
            with pytest.raises(errors.ResponseDecodeError) as info:
                await api.get("x", redact_fields=["X_Sess"], redact_value="***")
    assert str(info.value).endswith(f"body starts {shown!r}")


async def test_a_stats_snapshot_exports_with_asdict_and_pickles() -> None:
    # Its mappings were MappingProxyType: dataclasses.asdict, pickle and deepcopy failed.
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        await api.get("x")
        stats = api.stats
    exported = dataclasses.asdict(stats)
    assert exported["by_status"] == {200: 1}
    assert exported["origins"]["http://api.test"]["in_flight"] == 0
    assert pickle.loads(pickle.dumps(stats)) == stats


def test_stats_read_after_trio_run_returned_show_the_last_state_seen_inside() -> None:
    # Outside a run the gates were compared with 0.0, while they hold instants of the
    # run's clock: a gate open when the run ended was reported closed afterwards.
    def session(*answers: httpx.Response, **kwargs: Any) -> API:
        replies = iter(answers)
        return API(transport=httpx.MockTransport(lambda r: next(replies)), **kwargs)

    reopened = session(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200))
    closed = session(httpx.Response(429, headers={"Retry-After": "60"}), retries=0)
    inside: dict[str, trestfly.SessionStats] = {}

    async def use() -> None:
        with trio.fail_after(10):
            async with reopened:
                await reopened.get("x")  # retried once the gate opened again
            inside["reopened"] = reopened.stats
            with pytest.raises(errors.TooManyRequestsError):
                async with closed:
                    await closed.get("x")
            inside["closed"] = closed.stats

    trio.run(use, clock=trio.testing.MockClock(autojump_threshold=0))
    assert inside["reopened"].origins["http://api.test"].gate_open
    assert not inside["closed"].origins["http://api.test"].gate_open
    # Nothing happened since: the same gates, and the budget as it was left.
    assert reopened.stats == inside["reopened"]
    assert closed.stats == inside["closed"]


def test_stats_in_a_later_trio_run_never_mix_two_clocks() -> None:
    # Read in a later run before the session was entered there, the last run's gates
    # were compared with this run's clock (a closed gate read open or closed at
    # random); entered, the last run's budget showed until the first call.
    closed = API(transport=httpx.MockTransport(lambda r: httpx.Response(503)), retries=5)
    seen: list[tuple[bool, float, int]] = []

    async def fail_together() -> None:
        async def one() -> None:
            with pytest.raises(errors.ServiceUnavailableError):
                await closed.get("x")

        async with closed, trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)
        gate = closed._gate_for("http://api.test")
        gate.throttle.close_early(trio.current_time(), trio.current_time() + 60)

    async def peek(entered: bool, clock: trio.testing.MockClock | None = None) -> None:
        if clock is not None:
            clock.jump(1e6)  # this run's clock, far past the last run's instants
        if entered:
            async with closed:
                stats = closed.stats
        else:
            stats = closed.stats
        origin = stats.origins.get("http://api.test")
        seen.append((origin.gate_open if origin else True, stats.budget_level, stats.budget_denied))

    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(fail_together, clock=clock)
    left = closed.stats
    assert left.budget_denied > 0 and not left.origins["http://api.test"].gate_open
    later = trio.testing.MockClock()
    trio.run(peek, False, later, clock=later)
    assert seen[-1] == (False, left.budget_level, left.budget_denied)
    fresh = API().stats
    trio.run(peek, True)
    assert seen[-1] == (True, fresh.budget_level, 0)


async def test_debug_logging_never_fails_a_request(caplog: pytest.LogCaptureFixture) -> None:
    # A JSON body nested past the redaction's recursion raised RecursionError from the
    # log line, and header triples a bare ValueError, where without logging the first
    # is sent and the second is named by UnexpectedValueError.
    caplog.set_level(logging.DEBUG, logger="trestfly")
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(250):  # 500 levels: httpx encodes them, the redaction recursed past
        node["a"] = [{}]
        node = node["a"][0]
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        assert (await api.post("x", content=b"{}", headers={"X-Key": "v"})).status_code == 200
        assert (await api.post("x", json=deep)).status_code == 200
        with pytest.raises(errors.UnexpectedValueError, match="headers= cannot be sent"):
            await api.get("x", headers=[("a", "b", "c")])
    bodies = [r.trestfly_body for r in caplog.records if r.name == "trestfly.request"]  # type: ignore[attr-defined]
    assert bodies[1] == "<not described: RecursionError>"
    headers = [r.trestfly_headers for r in caplog.records if r.name == "trestfly.request"]  # type: ignore[attr-defined]
    assert headers[2] == "<unreadable headers>"


async def test_restricted_paths_never_log_params_or_body(caplog: pytest.LogCaptureFixture) -> None:
    class Secret(API):
        _restricted_paths = ("login",)

    caplog.set_level(logging.DEBUG, logger="trestfly")
    with respx.mock as mock:
        mock.post(f"{URL}/v1/login/").respond(200)
        async with Secret() as api:
            await api.post("/login/", json={"password": "hunter2"}, params={"otp": "123456"})
    assert "hunter2" not in caplog.text and "123456" not in caplog.text
    # A query written into the path is the path's params: it showed in clear.
    caplog.clear()
    with respx.mock as mock:
        mock.post(url__startswith=f"{URL}/v1/login").respond(200)
        async with Secret() as api:
            await api.post("login?username=alice&otp=654321#state=s3")
    assert "alice" not in caplog.text and "654321" not in caplog.text
    [record] = [r for r in caplog.records if r.name == "trestfly.request"]
    assert record.trestfly_url == f"{URL}/v1/login?REDACTED#REDACTED"  # type: ignore[attr-defined]


async def test_restricted_paths_hide_their_query_in_retry_logs_and_errors(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    # Only the DEBUG line hid a restricted path's query: the INFO retry line (the one
    # the docs say to turn on in production) and every error message showed the OTP.
    class Secret(API):
        _restricted_paths = ("auth/login",)

    caplog.set_level(logging.INFO, logger="trestfly")
    shown = f"{URL}/v1/auth/login?REDACTED"

    with respx.mock as mock:
        route = mock.post(url__startswith=f"{URL}/v1/auth/login")
        async with Secret(retries=1) as api:
            route.side_effect = statuses(503, 503)
            with pytest.raises(errors.ServiceUnavailableError) as unavailable:
                await api.post("auth/login?username=alice&otp=111111")
            assert str(unavailable.value).startswith(f"[503: POST] {shown} ")
            route.side_effect = statuses(503, 503)  # params= are in the response's URL
            with pytest.raises(errors.ServiceUnavailableError) as unavailable:
                await api.post("auth/login", params={"otp": "222222"})
            assert str(unavailable.value).startswith(f"[503: POST] {shown} ")
            route.side_effect = [httpx.ConnectError("refused")] * 2
            with pytest.raises(errors.ConnectionError) as refused:
                await api.post("auth/login?otp=555555")
            assert str(refused.value).startswith(f"POST {shown} failed after 1 retries")
            bad_json = httpx.Response(200, text="{", headers={"Content-Type": "application/json"})
            route.side_effect = [bad_json]
            with pytest.raises(errors.ResponseDecodeError) as decode:
                await api.post("auth/login?otp=333333", box=True)
            assert f"{shown} claims JSON" in str(decode.value)

            async def slow(request: httpx.Request) -> httpx.Response:
                await trio.sleep(10)
                return httpx.Response(200)

            route.side_effect = slow
            with pytest.raises(errors.TimeoutError) as late:
                await api.post("auth/login?otp=444444", deadline=1)
            assert str(late.value).startswith(f"POST {shown}: deadline of 1.0 s")
    retries = [r for r in caplog.records if r.name == "trestfly.retry"]
    bare = f"{URL}/v1/auth/login"  # params= are not in the call's URL
    assert [r.trestfly_url for r in retries] == [shown, bare, shown]  # type: ignore[attr-defined]
    # "otp" is a secret name anyway: "alice" is what only the restricted rule hides.
    assert "alice" not in caplog.text


async def test_nothing_is_serialised_when_debug_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # Recorded, not raised: log_attempt swallows what describing an attempt raises (a
    # log line never fails a request), so raising here proved nothing.
    described: list[dict[str, Any]] = []
    describe = trestfly._call_log.describe_attempt

    def record(**kwargs: Any) -> dict[str, Any]:
        described.append(kwargs)
        return describe(**kwargs)

    monkeypatch.setattr("trestfly._call_log.describe_attempt", record)
    logging.getLogger("trestfly").setLevel(logging.INFO)
    try:
        with respx.mock as mock:
            mock.get(f"{URL}/v1/x").respond(200)
            async with API() as api:
                await api.get("x", params={"when": object()})
            assert described == []
            logging.getLogger("trestfly").setLevel(logging.DEBUG)  # the control
            async with API() as api:
                await api.get("x")
            assert len(described) == 1
    finally:
        logging.getLogger("trestfly").setLevel(logging.NOTSET)


async def test_unserialisable_params_do_not_break_debug_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import datetime

    caplog.set_level(logging.DEBUG, logger="trestfly")
    with respx.mock as mock:
        mock.post(f"{URL}/v1/x").respond(200)
        async with API() as api:
            await api.post(
                "x", data={"when": "t"}, params={"since": datetime.date(2026, 1, 1)}, content=None
            )
    assert "datetime.date(2026, 1, 1)" in caplog.text


def test_class_level_defaults_are_never_shared() -> None:
    a, b = API(), API()
    a._box_attrs["frozen_box"] = True  # type: ignore[index]
    assert "frozen_box" not in b._box_attrs
    assert "frozen_box" not in API._box_attrs
    a._error_map[404] = errors.ServerError  # type: ignore[index]
    assert 404 not in b._error_map and 404 not in API._error_map


async def test_retry_on_is_per_session_not_per_class(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # RESTfly 1.x's set_retryable() changed a class for every session in the process.
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x").respond(500)
        async with API(retry_on=[500], retries=1) as retrying, API(retries=1) as plain:
            with pytest.raises(errors.ServerError):
                await retrying.get("x")
            assert route.call_count == 2
            with pytest.raises(errors.ServerError):
                await plain.get("x")
            assert route.call_count == 3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"backoff": float("inf")}, "backoff"),
        ({"max_backoff": -1}, "max_backoff"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"retry_on": ["x"]}, "retry_on"),
        ({"retry_on": "429"}, "retry_on"),
        ({"restricted_paths": "auth/login"}, "restricted_paths must be a collection"),
        ({"restricted_paths": [b"auth/login"]}, "restricted_paths must hold"),
        # Entries that can never match the path of the URL sent: the login was logged.
        ({"restricted_paths": ["https://api.test/auth/login"]}, r"\[0\] can never match"),
        ({"restricted_paths": ["login", "auth/login?step=2"]}, r"\[1\] can never match"),
        ({"restricted_paths": ["auth/login#"]}, "can never match"),
        ({"restricted_paths": ["/"]}, "can never match"),
        ({"restricted_paths": [""]}, "can never match"),
        ({"error_map": {404: "x"}}, r"error_map\[404\]"),
        ({"error_map": {"418": errors.NotFoundError}}, "error_map keys"),
        ({"error_map": {404: ValueError}}, r"error_map\[404\]"),
        ({"base_error_map": [404]}, "base_error_map must be a mapping"),
        ({"throttle": {"rate_limit": 1}}, "throttle must be a ThrottleSettings"),
        ({"retry_budget": 5}, "retry_budget must be a BudgetSettings"),
        ({"box_attrs": 5}, "box_attrs must be a mapping"),
        ({"box_attrs": {"frozen": True}}, "unknown python-box options"),
        # Values python-box cannot use: accepted, then every JSON success failed with
        # python-box's bare TypeError.
        ({"box_attrs": {"box_class": 5}}, "box_attrs option box_class has a value"),
        ({"box_attrs": {"box_intact_types": 5}}, "box_attrs option box_intact_types"),
        ({"box_attrs": {"box_recast": 5}}, "box_attrs option box_recast"),
        ({"box_attrs": {"box_namespace": 5}}, "box_attrs option box_namespace"),
        ({"box_attrs": {"frozen_box": True, "box_class": 5}}, "option box_class has"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"proxies": "proxy.internal:3128"}, "proxies must be a URL with a host"),
        ({"proxies": {"ftp": "http://p:1"}}, "proxies keys"),
        ({"proxies": {"https": 3128}}, r"proxies\['https'\] must be a URL string"),
        ({"proxies": ["http://p:1"]}, "proxies must be a proxy URL or a mapping"),
        ({"rate_limit": "5"}, "rate_limit must be a number"),
        ({"burst": 2.5}, "burst must be an integer"),
        ({"adaptive": "no"}, "adaptive must be True or False"),
        ({"box": "false"}, "box must be True or False"),
        ({"conv_json": "no"}, "conv_json must be True or False"),
        ({"error_on_unexpected_input": "no"}, "error_on_unexpected_input must be True"),
        ({"http2": "no"}, "http2 must be True or False"),
        ({"follow_redirects": "no"}, "follow_redirects must be True or False"),
        ({"url": "api.example.com"}, "url must be an http:// or https:// URL"),
        ({"url": "ftp://api.example.com"}, "url must be an http:// or https:// URL"),
        ({"url": "http://[::1"}, "url is not a valid URL"),
        ({"url": "https://api.example.com/?tenant=7"}, "url cannot have a query string"),
        ({"base_path": 5}, "base_path must be a string"),
        ({"base_path": ["v1"]}, "base_path must be a string"),
        # Joined after the URL's path: every call went to /https://api.example.com/v1/...
        ({"base_path": "https://api.example.com/v1"}, "base_path is a path, not a URL"),
        # "admin" read as the proxy's host, 2024 as its port, silently (url= is refused).
        ({"proxies": "http://admin:2024/Pa55@proxy.internal:3128"}, "proxies reads as a host"),
        ({"proxies": {"https": "http://p:70000"}}, "outside 1-65535"),
        ({"ssl_verify": 123}, "ssl_verify must be True, False"),
        ({"ssl_verify": [1]}, "ssl_verify must be True, False"),
        ({"ssl_verify": "false"}, "ssl_verify 'false' names no CA bundle.*pass False"),
        ({"ssl_verify": "/nonexistent/ca.pem"}, "ssl_verify '/nonexistent/ca.pem' names no"),
        ({"cert": "/nonexistent/client.pem"}, "cert's certificate file '/nonexistent/client"),
        ({"cert": 123}, "cert must be a certificate file path"),
        ({"cert": ("client.pem",)}, "cert must be .* got a tuple of 1 items"),
        ({"cert": ()}, "cert must be .* got a tuple of 0 items"),
        ({"timeout": httpx.Timeout(-1)}, "timeout's connect must be a positive number"),
        ({"timeout": httpx.Timeout(5, read=float("nan"))}, "timeout's read"),
        ({"session": "x"}, "session must be an httpx.AsyncClient"),
        ({"session": httpx.Client()}, "session must be an httpx.AsyncClient"),
        ({"transport": "x"}, "transport must be an httpx.AsyncBaseTransport"),
        ({"retry_on": [[429]]}, "retry_on must hold HTTP status codes"),
        ({"error_map": {200: errors.NotFoundError}}, "error_map cannot map the success 200"),
    ],
)
def test_bad_constructor_values_are_typed_errors(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(errors.UnexpectedValueError, match=needle):
        API(**kwargs)


def test_tls_files_that_exist_and_3xx_error_map_entries_are_kept(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("checked on entering")
    api = API(ssl_verify=str(tmp_path), cert=(str(pem), str(pem), "password"))
    assert api._cert == (str(pem), str(pem), "password")
    # A 3xx raises when redirects are not followed, so it may be mapped.
    assert API(error_map={304: errors.APIError})._status_errors[304] is errors.APIError
    with pytest.raises(errors.UnexpectedValueError, match="cert's key file"):
        API(cert=(str(pem), str(tmp_path / "missing.key")))


def test_a_timeout_too_large_for_a_float_is_named() -> None:
    # math.isfinite raised a bare OverflowError on an int like this one.
    with pytest.raises(errors.UnexpectedValueError, match="timeout"):
        API(timeout=10**400)


async def test_tls_files_that_do_not_load_are_named_never_quoted(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("FILE_CONTENT_S3CRET, not PEM")
    for kwargs, needle in (
        ({"ssl_verify": str(garbage)}, "ssl_verify: cannot load the CA bundle"),
        ({"cert": str(garbage)}, "cert: cannot load the client certificate"),
        ({"cert": (str(garbage), str(garbage), "PASSWORD_S3CRET")}, "cert: cannot load"),
    ):
        with pytest.raises(errors.UnexpectedValueError, match=needle) as caught:
            async with API(**kwargs):
                pass  # pragma: no cover
        assert str(garbage) in str(caught.value)
        assert "S3CRET" not in "".join(chain_texts(caught.value))


@pytest.mark.parametrize(
    "proxies",
    ["socks5://p:1080", {"all": "socks5h://p:1080"}, httpx.Proxy("socks5://p:1080")],
)
def test_a_socks_proxy_without_socksio_is_named_at_construction(
    proxies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_package(monkeypatch, "socksio")
    with pytest.raises(errors.UnexpectedValueError, match="socksio"):
        API(proxies=proxies)


def test_a_client_certificate_is_never_loaded_into_the_callers_context(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("not read: refused before")
    context = ssl.create_default_context()
    with pytest.raises(errors.UnexpectedValueError, match="load the certificate into it yourself"):
        ssl_setting(context, str(pem))
    # Refused at construction, as the other TLS settings are (it was on entering).
    with pytest.raises(errors.UnexpectedValueError, match="load the certificate into it yourself"):
        API(cert=str(pem), ssl_verify=context)


async def test_a_build_session_override_that_fails_leaves_nothing_open() -> None:
    built: list[httpx.AsyncClient] = []

    class Failing(API):
        def _build_session(self, **kwargs: Any) -> None:
            super()._build_session(**kwargs)
            assert self._session is not None
            built.append(self._session)
            raise KeyError("tenant")

    api = Failing(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    with pytest.raises(KeyError):
        async with api:
            pass  # pragma: no cover
    assert built[0].is_closed
    with pytest.raises(errors.TrestflyError, match="not open"):
        await api.get("x")


def test_a_single_status_in_retry_on_is_one_status() -> None:
    # As a call's retry_on=429 is.
    assert 429 in API(retry_on=429)._defaults.retry_statuses


def test_known_box_options_and_good_proxies_pass() -> None:
    API(box_attrs={"frozen_box": True, "default_box": True})
    API(proxies={"https": "http://user:pw@proxy.internal:3128", "all": "http://p:1080"})
    API(proxies="https://proxy.internal")
    API(proxies=httpx.Proxy("http://proxy.internal:3128", auth=("u", "p")))
    API(proxies={"https": httpx.URL("http://proxy.internal:3128")})


def test_a_bad_proxy_url_is_never_repeated_in_the_error() -> None:
    with pytest.raises(errors.UnexpectedValueError) as caught:
        API(proxies={"https": "proxy.internal:3128/?user=u&password=HUNTER2"})
    assert "HUNTER2" not in str(caught.value)


def test_misspelt_keywords_are_refused_when_nothing_could_use_them() -> None:
    class Strict(API):
        _error_on_unexpected_input = True

    with pytest.raises(errors.UnexpectedValueError, match="max_retries"):
        Strict(max_retries=3)
    API(max_retries=3)  # RESTfly's default: handed to _authenticate, which ignores it


async def test_misspelt_keywords_are_refused_when_build_session_is_overridden() -> None:
    # The documented override (call super(), then customise the client) switched the
    # check off: its **kwargs counted as using anything, so max_retries=3 was accepted
    # and ignored; and an override naming its keywords let regoin="us" through to a
    # bare TypeError on entering.
    transport = httpx.MockTransport(lambda r: httpx.Response(200))

    class Strict(API):
        _error_on_unexpected_input = True

    class Tenant(Strict):
        def _build_session(self, **kwargs: Any) -> None:
            super()._build_session(**kwargs)
            self._session.headers["X-Tenant"] = "acme"

    class Regional(Strict):
        def _build_session(self, region: str = "eu", **kwargs: Any) -> None:
            super()._build_session(**kwargs)
            self._session.headers["X-Region"] = region

    class Both(Regional):
        async def _authenticate(self, api_key: str = "") -> None:
            self._session.headers["X-Api-Key"] = api_key

    with pytest.raises(errors.UnexpectedValueError, match="max_retries"):
        Tenant(max_retries=3)
    with pytest.raises(errors.UnexpectedValueError, match="regoin"):
        Regional(regoin="us")
    async with Regional(region="us", transport=transport) as api:
        assert (await api.get("x")).request.headers["X-Region"] == "us"
    # Each hook receives every keyword: one the other cannot take is named here too.
    with pytest.raises(errors.UnexpectedValueError, match=r"_authenticate\(\).*region"):
        Both(api_key="k", region="us")

    class Open(Regional):
        async def _authenticate(self, **kwargs: Any) -> None:
            pass

    Open(anything=1)  # an _authenticate taking **kwargs still accepts anything


async def test_map_refuses_a_limit_of_zero() -> None:
    async def echo(item: int) -> int:
        return item

    api = API()
    with pytest.raises(errors.UnexpectedValueError, match="limit"):
        await api.map(echo, [1], limit=0)
    with pytest.raises(errors.UnexpectedValueError, match="limit"):
        async with api.map_as_completed(echo, [1], limit=0):
            pass  # pragma: no cover


# ------------------------------------------------------------------ endpoints


class Users(APIEndpoint):
    _path = "/users/"
    _box = True


async def test_endpoint_joins_paths_and_inherits_options() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{URL}/v1/users/1").respond(200, json={"id": 1})
        mock.get(f"{URL}/v1/users/").respond(200, json=[{"id": 1}])  # _path keeps its slash
        mock.post(f"{URL}/v1/users/1/keys/").respond(200, json={"ok": True})
        async with API() as api:
            users = Users(api)
            assert (await users._get("/1")).id == 1
            assert (await users._get())[0].id == 1
            plain = await users._post("1/keys/", box=False)
            assert isinstance(plain, httpx.Response)
            # None passed through by an SDK method means "not given": the endpoint's.
            assert (await users._get("/1", box=None)).id == 1


async def test_endpoint_paths_and_switches_of_the_wrong_kind_are_named() -> None:
    class NumberedPath(APIEndpoint):
        _path = 5  # type: ignore[assignment]

    class TextBox(APIEndpoint):
        _path = "users"
        _box = "no"  # type: ignore[assignment]

    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.UnexpectedValueError, match="path must be a string"):
            await Users(api)._get(5)  # type: ignore[arg-type]
        with pytest.raises(errors.UnexpectedValueError, match=r"NumberedPath\._path must be"):
            await NumberedPath(api)._get()
        with pytest.raises(errors.UnexpectedValueError, match=r"TextBox\._box must be True"):
            await TextBox(api)._get()


async def test_endpoint_without_path_needs_one() -> None:
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.RequiredParameterError):
            await APIEndpoint(api)._get()


async def test_head_returns_the_response_even_with_box() -> None:
    with respx.mock as mock:
        mock.head(f"{URL}/v1/x").respond(
            200, headers={"content-type": "application/json", "x-n": "5"}
        )
        async with API(box=True) as api:
            resp = await api.head("x")
    assert isinstance(resp, httpx.Response) and resp.headers["x-n"] == "5"


async def test_githubs_throttling_403s_are_retried_like_429s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = [
            httpx.Response(403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"}),
            httpx.Response(403, headers={"Retry-After": "2"}),
            httpx.Response(200),
        ]
        forbidden = mock.get(f"{URL}/v1/private").respond(403)
        async with API() as api:
            assert (await api.get("x")).status_code == 200
            with pytest.raises(errors.ForbiddenError):
                await api.get("private")  # a plain 403 is not a throttle
    assert route.call_count == 3 and forbidden.call_count == 1


async def test_error_messages_and_logs_never_show_url_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.url.path.endswith("/x") else 503, text="nope")

    caplog.set_level(logging.DEBUG, logger="trestfly")
    async with API(
        url="http://user:S3CRET@api.test",
        transport=httpx.MockTransport(answer),
        retries=1,
        backoff=0,
    ) as api:
        with pytest.raises(errors.NotFoundError) as not_found:
            await api.get(
                "x",
                params={"api_key": "S3CRET", "mine": "S3CRET", "page": 2},
                redact_fields=["mine"],
            )
        with pytest.raises(errors.ServiceUnavailableError) as failing:
            await api.get("y?access_token=S3CRET")
    message = str(not_found.value)
    assert message.startswith(
        "[404: GET] http://api.test/v1/x?api_key=REDACTED&mine=REDACTED&page=2 body=nope"
    )
    texts = [message, repr(not_found.value), str(failing.value), caplog.text]
    texts += [repr(record.__dict__) for record in caplog.records]
    assert all("S3CRET" not in text for text in texts)
    # The response itself is untouched, for code that needs the real URL.
    assert not_found.value.response.request.url.params["api_key"] == "S3CRET"


async def test_errors_of_one_call_hide_what_the_call_asked_to_hide(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/people":
            return httpx.Response(429, headers={"Retry-After": "600"})
        if request.url.path == "/v1/slow":
            await trio.sleep(5)
        return httpx.Response(200, headers={"Content-Type": "application/json"}, text="{oops")

    secret = {"params": {"ssn": "123-45-6789"}, "redact_fields": ["ssn"]}
    async with API(transport=httpx.MockTransport(answer)) as api:
        with pytest.raises(errors.ResponseDecodeError) as bad_json:
            await api.get("json", box=True, **secret)
        with pytest.raises(errors.TimeoutError) as late:
            await api.get("slow?ssn=123-45-6789", deadline=1.0, redact_fields=["ssn"])
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("people", **secret)
        # Another call meets the gate that call closed: its error quotes that response.
        with pytest.raises(errors.TooManyRequestsError) as other:
            await api.get("status")
    for error in (bad_json, late, other):
        assert "123-45-6789" not in str(error.value)
        assert "ssn=REDACTED" in str(error.value)


class HeaderRefusingTransport(httpx.AsyncBaseTransport):
    """What h11 raises for a token read from a file with its trailing newline."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError("Illegal header value b'sk_live_SECRET\\n'")


async def test_unusable_answers_and_invalid_headers_raise_typed_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/loop":
            return httpx.Response(302, headers={"Location": "/v1/loop"})
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    async with API(transport=httpx.MockTransport(answer)) as api:
        with pytest.raises(
            errors.BadResponseError, match=re.escape("GET http://api.test/v1/loop")
        ) as loop:
            await api.get("loop")
        with pytest.raises(errors.BadResponseError) as undecodable:
            await api.get("gzip")
        with pytest.raises(errors.UnexpectedValueError) as non_ascii:
            await api.get("x", headers={"Authorization": "Bearer sk_\u00e9_SECRET"})
    assert isinstance(loop.value.__cause__, httpx.TooManyRedirects)
    assert isinstance(undecodable.value.__cause__, httpx.DecodingError)
    assert "SECRET" not in str(non_ascii.value) and "not valid HTTP" in str(non_ascii.value)

    async with API(transport=HeaderRefusingTransport()) as api:
        with pytest.raises(errors.UnexpectedValueError) as illegal:
            await api.get("x")
    assert "SECRET" not in str(illegal.value) and "LocalProtocolError" in str(illegal.value)


async def test_a_streamed_body_is_sent_once_never_retried_empty(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bodies: list[bytes] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(await request.aread())
        return httpx.Response(503)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"important-"
        yield b"payload"

    async with API(transport=httpx.MockTransport(answer), retries=2) as api:
        with pytest.raises(errors.ServiceUnavailableError) as streamed:
            await api.put("upload", content=chunks())
        assert bodies == [b"important-payload"] and streamed.value.retries == 0
        bodies.clear()
        with pytest.raises(errors.ServiceUnavailableError):
            await api.put("upload", content=b"important-payload")
    assert bodies == [b"important-payload"] * 3  # bytes can be sent again


async def test_a_streamed_body_is_retried_when_the_failure_came_before_sending() -> None:
    attempts: list[bytes] = []

    class RefusesOnce(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not attempts:
                attempts.append(b"")
                raise httpx.ConnectError("refused")  # the body was never read
            attempts.append(await request.aread())
            return httpx.Response(200)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async with API(transport=RefusesOnce(), backoff=0) as api:
        assert (await api.put("upload", content=chunks())).status_code == 200
    assert attempts == [b"", b"hello world"]


def _sync_chunks() -> Iterator[bytes]:
    yield b"S3CRET-"
    yield b"payload"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_sync_chunks, id="generator"),
        pytest.param(lambda: [b"S3CRET-", b"payload"], id="list-of-chunks"),
        pytest.param(lambda: io.BytesIO(b"S3CRET-payload"), id="binary-file"),
        pytest.param(lambda: {"S3CRET": "payload"}, id="mapping"),
    ],
)
async def test_a_sync_iterable_content_is_refused_before_sending_naming_only_its_kind(
    content: Any,
) -> None:
    # httpx takes it as a sync stream, which an AsyncClient refused only while sending,
    # with a bare RuntimeError -- after the data= refusal had said "use content=".
    with respx.mock as mock:
        route = mock.post(f"{URL}/v1/upload").respond(200)
        async with API() as api:
            with pytest.raises(errors.UnexpectedValueError, match="async iterable") as refused:
                await api.post("upload", content=content())
    assert route.call_count == 0
    assert "S3CRET" not in str(refused.value)


@pytest.mark.parametrize("content", [bytearray(b"payload"), memoryview(b"payload")])
async def test_a_bytearray_or_memoryview_content_is_sent_as_its_bytes(
    autojump_clock: trio.testing.MockClock, content: Any
) -> None:
    # httpx streams any iterable but bytes and str: these failed with a RuntimeError.
    bodies: list[bytes] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(await request.aread())
        return httpx.Response(503 if len(bodies) == 1 else 200)

    async with API(transport=httpx.MockTransport(answer)) as api:
        assert (await api.post("upload", content=content)).status_code == 200
    assert bodies == [b"payload"] * 2  # and sent again on a retry


class Unrewindable(io.RawIOBase):
    """A pipe's or a socket's reader: its bytes can be read once, it cannot seek."""

    def __init__(self, data: bytes) -> None:
        self._rest = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


async def test_a_file_part_that_cannot_be_rewound_is_sent_once_never_retried_empty(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bodies: list[bytes] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(await request.aread())
        return httpx.Response(503)

    payload = b"PAYLOAD" * 100
    async with API(transport=httpx.MockTransport(answer), retries=2) as api:
        with pytest.raises(errors.ServiceUnavailableError) as piped:
            await api.put("upload", files={"f": ("a.bin", Unrewindable(payload))})
        assert [body.count(b"PAYLOAD") for body in bodies] == [100]
        assert piped.value.retries == 0
        bodies.clear()
        with pytest.raises(errors.ServiceUnavailableError):
            await api.put("upload", files=[("f", ("a.bin", io.BytesIO(payload)))])
    assert [body.count(b"PAYLOAD") for body in bodies] == [100] * 3  # httpx rewinds it


class StreamingTransport(httpx.AsyncBaseTransport):
    """Reads a request's body as a network transport does, by iterating its stream
    (httpx's MockTransport reads it into memory first, which makes it replayable)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])
        if request.url.path == "/v1/old":
            return httpx.Response(307, headers={"Location": "/v1/new"})
        return httpx.Response(200, content=body)


async def test_a_redirected_streamed_body_raises_a_bad_response_error() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"payload"

    async with API(transport=StreamingTransport()) as api:
        with pytest.raises(errors.BadResponseError, match="307 or 308") as redirected:
            await api.post("old", content=chunks())
        # The same redirect of bytes is followed.
        assert (await api.post("old", content=b"payload")).content == b"payload"
    assert isinstance(redirected.value.__cause__, httpx.StreamConsumed)
    assert "POST http://api.test/v1/old" in str(redirected.value)


async def test_a_spent_quota_reset_already_due_backs_off_as_usual(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Clocks a few seconds apart make a spent quota's reset 0: that is no delay to keep.
    spent = {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "0"}
    with respx.mock as mock:
        route = mock.get(f"{URL}/v1/x")
        route.side_effect = [httpx.Response(429, headers=spent)] * 3 + [httpx.Response(200)]
        async with API(backoff=1) as api:
            resp = await api.get("x")
    history = resp.extensions["trestfly.retry_history"]
    assert [record.retry_after for record in history] == [None, None, None]
    assert all(record.delay > 0 for record in history)


async def test_invalid_header_values_never_reach_a_traceback() -> None:
    async with API(transport=HeaderRefusingTransport()) as api:
        with pytest.raises(errors.UnexpectedValueError) as illegal:
            await api.get("x")
    assert illegal.value.__cause__ is None and illegal.value.__suppress_context__
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    async with API(session=client) as api:  # its User-Agent is merged per request
        with pytest.raises(errors.UnexpectedValueError, match="not valid HTTP") as encoded:
            await api.get("x", headers={"Authorization": "Bearer sk_\u00e9_SECRET"})
    await client.aclose()
    assert "SECRET" not in str(encoded.value) and encoded.value.__suppress_context__


async def test_a_session_builds_its_client_with_proxy_objects() -> None:
    # Built only (nothing is sent): the proxies reach the sharded transports.  (It
    # asserted only that a client was built: every proxy could be dropped unseen.)
    async with API(proxies=httpx.Proxy("http://proxy.internal:3128", auth=("u", "p"))) as api:
        transport = api._session._transport
        assert isinstance(transport, trestfly.ShardedTransport)
        assert all(isinstance(s._pool, httpcore.AsyncHTTPProxy) for s in transport.shards)  # type: ignore[attr-defined]
    mapping = {"https": httpx.URL("http://proxy.internal:3128"), "all": "http://p:8080"}
    async with API(proxies=mapping) as api:
        mounts = {str(key.pattern): mounted for key, mounted in api._session._mounts.items()}
        assert set(mounts) == {"https://", "all://"}
        for mounted in mounts.values():
            assert isinstance(mounted, trestfly.ShardedTransport)
            assert all(isinstance(s._pool, httpcore.AsyncHTTPProxy) for s in mounted.shards)  # type: ignore[attr-defined]


def chain_texts(exc: BaseException) -> list[str]:
    """The str, repr and args of an exception and of everything in its cause/context
    chain: what a traceback, an error tracker or ``logger.exception`` can show."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        if isinstance(current, UnicodeError):
            texts.append(repr(getattr(current, "object", "")))
        pending += [current.__cause__, current.__context__]
    return texts


async def test_a_secret_header_value_is_not_in_the_errors_context() -> None:
    # `raise ... from None` hides the original from tracebacks but keeps it as
    # __context__, where error trackers and debuggers still find it.
    async with API(transport=HeaderRefusingTransport()) as api:
        with pytest.raises(errors.UnexpectedValueError) as refused:
            await api.get("x")
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.UnexpectedValueError) as unencodable:
            await api.get("x", headers={"X-ApiKeys": "secretKey=sk_\u20ac_SECRET"})
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    async with API(session=client) as api:  # its User-Agent is merged per request
        with pytest.raises(errors.UnexpectedValueError) as merged:
            await api.get("x", headers={"Authorization": "Bearer sk_\u00e9_SECRET"})
    await client.aclose()
    for caught in (refused, unencodable, merged):
        assert "not valid HTTP" in str(caught.value)
        assert caught.value.__context__ is None and caught.value.__cause__ is None
        assert not any("SECRET" in text for text in chain_texts(caught.value))


class BuggyTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/buggy":
            raise TypeError("a bug in the transport")
        return httpx.Response(200)


class BuggyAuth(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Any:
        raise ValueError("a bug in the auth flow")
        yield request  # pragma: no cover


@pytest.mark.filterwarnings("ignore:Setting per-request cookies")
@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"params": 5}, r"GET http://api.test/v1/x: params= cannot be sent \(AttributeError"),
        ({"headers": 5}, r"GET http://api.test/v1/x: headers= cannot be sent \(TypeError"),
        ({"headers": {"X-A": 5}}, "headers= cannot be sent"),
        ({"headers": {1: "a"}}, "headers= cannot be sent"),
        ({"cookies": 5}, "cookies= cannot be sent"),
        ({"extensions": 5}, "extensions= cannot be sent"),
        ({"json": object()}, "json= cannot be sent .*not JSON serializable"),
        ({"auth": 5}, "auth must be a .* got a int"),
        ({"auth": ("user",)}, "auth must be a .* got a tuple of 1 items"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"timeout": "5"}, "timeout must be a positive number"),
        ({"follow_redirects": "no"}, "follow_redirects must be True or False"),
        # httpx reads a file part only while sending: a bare AttributeError from there.
        ({"files": {"upload": 5}}, "files part 'upload' must be bytes, .* got a int"),
        ({"files": {"f": ("name.txt",)}}, "files part 'f' .* got a tuple"),
        ({"files": [("f", ("a.txt", 5))]}, "files part 'f' .* got a tuple holding a int"),
        ({"files": 5}, r"files must be a mapping or a list of \(name, file\) pairs, got a int"),
        ({"files": ["f"]}, "files must be .* got a list holding a str"),
    ],
)
async def test_request_arguments_of_the_wrong_kind_are_named(
    kwargs: dict[str, Any], needle: str
) -> None:
    async with API(transport=BuggyTransport()) as api:
        with pytest.raises(errors.UnexpectedValueError, match=needle):
            await api.get("x", **kwargs)
        # What the transport or an auth flow raises is theirs, not the caller's input.
        with pytest.raises(TypeError, match="a bug in the transport") as transport_bug:
            await api.get("buggy", params={"a": 1})
        with pytest.raises(ValueError, match="a bug in the auth flow") as auth_bug:
            await api.get("x", auth=BuggyAuth())
    assert not isinstance(transport_bug.value, errors.TrestflyError)
    assert not isinstance(auth_bug.value, errors.TrestflyError)


async def test_a_per_call_auth_none_is_refused_not_read_one_way() -> None:
    # requests (RESTfly) sent the session's credentials for auth=None, httpx sends none:
    # an SDK method forwarding auth=None lost the client's credentials silently.
    sent: list[str | None] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Authorization"))
        return httpx.Response(200)

    client = httpx.AsyncClient(auth=("user", "pass"), transport=httpx.MockTransport(server))
    async with client, API(session=client) as api:
        with pytest.raises(errors.UnexpectedValueError, match=r"auth=None is ambiguous"):
            await api.get("x", auth=None)
        assert sent == []  # refused before anything was sent
        await api.get("x")
        await api.get("x", auth=httpx.USE_CLIENT_DEFAULT)
        await api.get("x", auth=httpx.Auth())  # what the message offers for none
    assert [header is not None for header in sent] == [True, True, False]


async def test_a_wrong_auth_or_header_is_never_quoted() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    async with API(session=client) as api:
        with pytest.raises(errors.UnexpectedValueError, match="auth must be") as auth:
            await api.get("x", auth="user:PASSWORD_SECRET")
        with pytest.raises(errors.UnexpectedValueError, match="headers= cannot be sent") as bad:
            await api.get("x", headers="Authorization: Bearer SECRET")
    await client.aclose()
    for caught in (auth, bad):
        assert not any("SECRET" in text for text in chain_texts(caught.value))


@pytest.mark.parametrize("path", [None, 5, b"users", ["users"]])
async def test_a_path_that_is_not_a_string_is_named(path: Any) -> None:
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.UnexpectedValueError, match="path must be a string"):
            await api.get(path)


async def test_an_absolute_path_httpx_cannot_parse_is_named() -> None:
    async with API(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as api:
        with pytest.raises(errors.UnexpectedValueError, match="path is not a valid URL"):
            await api.get("http://[::1")
        with pytest.raises(errors.UnexpectedValueError, match="path is not a valid URL") as port:
            await api.get("https://user:S3CRET")  # no host: the password parses as a port
    assert not any("S3CRET" in text for text in chain_texts(port.value))


class _KeyedAPI(TrioAPISession):
    _url = "https://api.example.test/v1"

    async def _authenticate(self, **kwargs: Any) -> None:
        self._session.headers["X-Api-Key"] = "SECRET-KEY"
        self._session.headers["X-Trace"] = "visible"
        # Dropped as connections.md says (any name with token, secret or password);
        # they went along to the other origin.
        for name in ("X-Token-Id", "X-Secret-Value", "X-Password-Hash"):
            self._session.headers[name] = "SECRET"


@pytest.mark.parametrize(
    ("location", "keeps_key"),
    [
        ("https://cdn.other.test/file", False),  # another host
        ("http://api.example.test/v1/file", False),  # https to http
        ("https://api.example.test:8443/file", False),  # another port
        ("https://api.example.test/v2/file", True),  # the same origin
    ],
)
async def test_a_redirect_to_another_origin_drops_credential_headers(
    location: str, keeps_key: bool
) -> None:
    # httpx drops only Authorization across origins: an X-Api-Key set on the client
    # went to whatever host the Location named.
    seen: list[httpx.Headers] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={})

    with respx.mock:
        respx.get("https://api.example.test/v1/file").respond(302, headers={"Location": location})
        respx.get(location).mock(side_effect=record)
        async with _KeyedAPI() as api:
            extensions: dict[str, Any] = {}
            response = await api.get("file", extensions=extensions)
    assert response.status_code == 200 and len(seen) == 1
    for name in ("x-api-key", "x-token-id", "x-secret-value", "x-password-hash"):
        assert (name in seen[0]) is keeps_key, name
    assert seen[0]["x-trace"] == "visible"
    assert extensions == {}  # the caller's dict is not written to


async def test_a_redirect_to_another_origin_drops_the_headers_the_call_redacts() -> None:
    # The docs promised it; the hook read the session's defaults, where the call's
    # redact_fields never are.
    seen: list[httpx.Headers] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={})

    with respx.mock:
        respx.get("https://api.example.test/v1/file").respond(
            302, headers={"Location": "https://cdn.other.test/file"}
        )
        respx.get("https://cdn.other.test/file").mock(side_effect=record)
        async with _KeyedAPI() as api:
            headers = {"X-Tenant": "TENANT-SECRET", "X-Request": "visible"}
            await api.get("file", headers=headers, redact_fields=["x-tenant"])
            await api.get("file", headers=headers)  # not named: it goes along
    assert "x-tenant" not in seen[0] and seen[0]["x-request"] == "visible"
    assert seen[1]["x-tenant"] == "TENANT-SECRET"


async def test_a_redirect_from_http_to_https_on_the_same_host_keeps_credentials() -> None:
    seen: list[httpx.Headers] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={})

    class PlainAPI(_KeyedAPI):
        _url = "http://api.example.test/v1"

    with respx.mock:
        respx.get("http://api.example.test/v1/file").respond(
            301, headers={"Location": "https://api.example.test/v1/file"}
        )
        respx.get("https://api.example.test/v1/file").mock(side_effect=record)
        async with PlainAPI() as api:
            await api.get("file")
    assert seen[0]["x-api-key"] == "SECRET-KEY"


class _StubbornClient(httpx.AsyncClient):
    async def aclose(self) -> None:
        await super().aclose()
        raise OSError("the socket would not close")


class _FailingClose(TrioAPISession):
    _url = "https://api.example.test/v1"

    def _build_session(self, **kwargs: Any) -> None:
        self._session = _StubbornClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )


async def test_a_failing_close_does_not_replace_the_bodys_exception_nor_a_cancellation() -> None:
    # The close ran in a bare finally: its OSError replaced the body's error, and
    # escaped a cancelled scope, which then never caught its cancellation.
    with pytest.raises(ValueError, match="body failed") as info:
        async with _FailingClose():
            raise ValueError("body failed")
    assert any("closing it raised OSError" in note for note in info.value.__notes__)
    with trio.move_on_after(0) as scope:
        async with _FailingClose():
            await trio.sleep(1)
    assert scope.cancelled_caught
    with pytest.raises(OSError, match="would not close"):  # the body succeeded
        async with _FailingClose():
            pass

    class FailingLogin(_FailingClose):
        async def _authenticate(self, **kwargs: Any) -> None:
            raise PermissionError("bad key")

    with pytest.raises(PermissionError, match="bad key") as login:
        async with FailingLogin():
            pass
    assert any("closing it raised OSError" in note for note in login.value.__notes__)


async def test_a_failing_close_does_not_replace_what_leaving_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A deadline passing during the logout (the case the embedding guide describes):
    # the close's OSError then replaced the Cancelled and escaped the move_on_after
    # that had delivered it.  And a logout's own error is kept, with the close's noted.
    class SlowLogout(_FailingClose):
        async def _deauthenticate(self) -> None:
            await trio.sleep(10)

    with trio.move_on_after(1) as scope:
        async with SlowLogout():
            pass
    assert scope.cancelled_caught

    class FailingLogout(_FailingClose):
        async def _deauthenticate(self) -> None:
            raise RuntimeError("logout failed")

    with pytest.raises(RuntimeError, match="logout failed") as info:
        async with FailingLogout():
            pass
    assert any("closing it raised OSError" in note for note in info.value.__notes__)


class _FailingLogout(TrioAPISession):
    _url = "https://api.example.test/v1"

    async def _deauthenticate(self) -> None:
        raise RuntimeError("logout failed")


async def test_a_failing_logout_does_not_replace_the_bodys_exception() -> None:
    with pytest.raises(ValueError, match="body failed") as info:
        async with _FailingLogout():
            raise ValueError("body failed")
    assert any(
        "_deauthenticate() raised RuntimeError: logout failed" in note
        for note in info.value.__notes__
    )
    with pytest.raises(RuntimeError, match="logout failed"):  # the body succeeded
        async with _FailingLogout():
            pass
    with trio.move_on_after(0) as scope:  # cancellation is never hidden behind a note
        async with _FailingLogout():
            await trio.sleep(1)
    assert scope.cancelled_caught


class RegionalAPI(TrioAPISession):
    """RESTfly's idiom: instance attributes set before ``super().__init__()``."""

    _url = "https://api.acme.test"

    def __init__(self, region: str = "us", **kwargs: Any) -> None:
        self._url = f"https://{region}.acme.test"
        self._retries = 1
        self._box = True
        super().__init__(**kwargs)


async def test_attributes_set_on_the_instance_before_super_init_are_kept() -> None:
    with respx.mock(assert_all_called=False) as mock:
        regional = mock.get("https://eu.acme.test/ping").respond(200, json={"ok": 1})
        default = mock.get("https://api.acme.test/ping").respond(200, json={"ok": 1})
        async with RegionalAPI(region="eu") as api:
            answer = await api.get("ping")
        assert api._retries == 1
        assert isinstance(answer, Box)
        assert regional.called and not default.called
        # A constructor argument still wins over the instance's value.
        async with RegionalAPI(region="eu", url="https://api.acme.test", retries=2) as api:
            await api.get("ping")
        assert default.called and api._retries == 2


def test_a_bad_value_set_on_the_instance_before_super_init_is_named() -> None:
    class Bad(RegionalAPI):
        def __init__(self) -> None:
            self._retries = -1
            TrioAPISession.__init__(self)

    with pytest.raises(errors.UnexpectedValueError, match="retries"):
        Bad()


class DiscoveringAPI(TrioAPISession):
    """Logs in on a global host, which names the account's regional URL (as an OAuth
    token response's ``instance_url`` does)."""

    _url = "https://login.acme.test"

    async def _authenticate(self, **kwargs: Any) -> None:
        info = await self.get("whoami", conv_json=True)
        self._url = info["region_url"]


async def test_a_url_changed_once_open_is_used_for_every_path() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.get("https://login.acme.test/whoami").respond(
            200, json={"region_url": "https://eu.acme.test"}
        )
        regional = mock.get("https://eu.acme.test/whoami").respond(200, json={"user": "ann"})
        async with DiscoveringAPI() as api:
            # The path the login used is joined to the new URL too (it was cached).
            assert await api.get("whoami", conv_json=True) == {"user": "ann"}
            assert set(api.stats.origins) == {"https://login.acme.test", "https://eu.acme.test"}
            api._url = "ftp://nowhere"
            with pytest.raises(errors.UnexpectedValueError, match="url must be an http"):
                await api.get("whoami")
        assert regional.call_count == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_retries", "3"),
        ("_retries", None),
        ("_backoff", "0.1"),
        ("_max_backoff", None),
        ("_max_retry_after", -1),
        ("_url", 5),
        ("_base_path", b"v1"),
    ],
)
async def test_a_live_setting_assigned_invalid_after_init_is_refused_on_entering(
    name: str, value: object
) -> None:
    # Read by the calls as they are now (RESTfly's `self._retries = ...` after
    # super().__init__() is taken), they were never checked again: a 503 then failed
    # with a bare TypeError from the retry's arithmetic, after the first attempt.
    with respx.mock as mock:
        route = mock.route().respond(503)
        api = API()
        setattr(api, name, value)
        with pytest.raises(errors.UnexpectedValueError, match="assigned after __init__"):
            async with api:
                await api.get("x")
    assert not route.called


async def test_a_live_setting_made_invalid_in_authenticate_is_refused() -> None:
    class Misconfigured(API):
        async def _authenticate(self, **kwargs: Any) -> None:
            self._backoff = "fast"

    with respx.mock as mock:
        route = mock.route().respond(503)
        with pytest.raises(errors.UnexpectedValueError, match=r"in _build_session\(\) or"):
            async with Misconfigured() as api:
                await api.get("x")
    assert not route.called


class RefreshingAPI(TrioAPISession):
    _url = URL
    _retry_on = (401,)

    async def _retry_request(
        self, response: httpx.Response | None, retries: int, **kwargs: Any
    ) -> dict[str, Any]:
        with trio.fail_after(1):  # the login's own bound
            await self.post("oauth/token")
        return kwargs


async def test_a_hooks_own_timeout_is_not_told_as_the_calls_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep(1000)
        return httpx.Response(200)

    # The hung login never returns, and respx counts a call only once it does.
    with respx.mock(base_url=URL, assert_all_called=False) as mock:
        mock.get("/me").respond(401)
        mock.post("/oauth/token").mock(side_effect=hang)
        async with RefreshingAPI(timeout=None) as api:
            with pytest.raises(trio.TooSlowError):
                await api.get("me", deadline=600)  # as without deadline=
            with pytest.raises(errors.TimeoutError, match=r"deadline of 0\.5 s passed"):
                await api.get("me", deadline=0.5)


class ForgetfulAPI(TrioAPISession):
    """An error check that only raises, and forgets `return response`."""

    _url = URL

    async def _resp_error_check(self, response: httpx.Response, **kwargs: Any) -> httpx.Response:
        if response.headers.get("x-error"):
            raise errors.APIError(response)
        return None  # type: ignore[return-value]


@pytest.mark.parametrize("options", [{}, {"box": True}, {"method": "HEAD"}])
async def test_an_error_check_returning_nothing_is_named(options: dict[str, Any]) -> None:
    method = options.pop("method", "GET")
    with respx.mock(base_url=URL) as mock:
        mock.route(method=method, path="/users/1").respond(200, json={"id": 1})
        async with ForgetfulAPI() as api:
            with pytest.raises(errors.UnexpectedValueError, match=r"_resp_error_check\(\) must"):
                await api._request(method, "users/1", **options)


def test_an_error_class_the_session_cannot_build_is_refused_at_construction() -> None:
    class DetailError(errors.APIError):
        def __init__(self, response: httpx.Response) -> None:
            super().__init__(response)

    class Flexible(errors.APIError):
        def __init__(self, response: httpx.Response, **kwargs: Any) -> None:
            super().__init__(response, **kwargs)

    with pytest.raises(errors.UnexpectedValueError, match=r"error_map\[409\] DetailError"):
        TrioAPISession(url=URL, error_map={409: DetailError})
    TrioAPISession(url=URL, error_map={409: Flexible})


def test_a_hook_keyword_without_a_default_must_be_given() -> None:
    class KeyAPI(TrioAPISession):
        _url = URL

        async def _authenticate(self, api_key: str, **kwargs: Any) -> None:
            self._session.headers["X-Key"] = api_key

    with pytest.raises(errors.RequiredParameterError, match=r"_authenticate\(\) requires api_key"):
        KeyAPI()
    KeyAPI(api_key="k")


@pytest.mark.parametrize("final", [503, 429])
async def test_a_post_processed_then_redirected_is_not_sent_again_on_a_retryable_status(
    autojump_clock: trio.testing.MockClock, final: int
) -> None:
    """A 303 says the server processed the POST (RFC 9110 15.4.4): a 503 or 429 of the
    redirect's GET must not send the POST again (it was, on every retry)."""
    posts: list[httpx.Request] = []
    gets: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            return httpx.Response(303, headers={"Location": "/orders/1"})
        gets.append(request)
        return httpx.Response(final, headers={"Retry-After": "1"})

    async with TrioAPISession(url=URL, transport=httpx.MockTransport(handler), retries=3) as api:
        with pytest.raises(errors.APIError) as caught:
            await api.post("orders", json={"item": 1})
        assert caught.value.code == final
        # A PUT is idempotent: sent again whole, as before.
        with pytest.raises(errors.APIError):
            await api.put("orders", json={"item": 1})
    assert len(posts) == 1 and len(gets) == 1 + 4


@pytest.mark.parametrize("params", [{"page": 2}, {}, {"q": "asyncio", "page": 2}])
async def test_a_query_in_the_path_is_kept_beside_params(params: dict[str, Any]) -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200)

    async with TrioAPISession(url=URL, transport=httpx.MockTransport(handler)) as api:
        await api.get("search?q=trio&tag=a&tag=b", params=params)
    query = seen[0].params
    assert query.get("q") == params.get("q", "trio")  # a name in both: params' value
    assert query.get_list("tag") == ["a", "b"]
    assert query.get("page") == ("2" if "page" in params else None)


@pytest.mark.parametrize("retry_after", ["0", "Thu, 01 Jan 1970 00:00:00 GMT"])
async def test_a_zero_retry_after_in_an_outage_is_backed_off_and_budgeted(
    autojump_clock: trio.testing.MockClock, retry_after: str
) -> None:
    """`Retry-After: 0` (or a date already past, a skewed clock) says nothing about
    pacing: taken as "now", 100 calls made all 600 attempts in the same instant."""
    attempts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(trio.current_time())
        return httpx.Response(503, headers={"Retry-After": retry_after})

    async def one(api: TrioAPISession) -> None:
        with pytest.raises(errors.ServiceUnavailableError):
            await api.get("x")

    transport = httpx.MockTransport(handler)
    api = TrioAPISession(url=URL, transport=transport, retries=5, backoff=0.025)
    async with api, trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(one, api)
    assert len(attempts) < 300  # the budget bites, as without the header
    assert max(attempts) > 0.05  # and the retries waited their backoff


async def test_a_304_not_modified_is_returned_not_raised() -> None:
    """The answer to a conditional request (RFC 9110 15.4.5) is no error; box=True has
    no body to convert.  An error map naming 304 still raises it."""

    class NotModified(errors.APIError):
        pass

    with respx.mock(base_url=URL) as mock:
        mock.get("/repos").respond(304, headers={"ETag": '"v1"'})
        async with TrioAPISession(url=URL, box=True) as api:
            answer = await api.get("repos", headers={"If-None-Match": '"v1"'})
            assert isinstance(answer, httpx.Response) and answer.status_code == 304
            assert api.stats.successes == 1 and api.stats.failures == 0
        async with TrioAPISession(url=URL, error_map={304: NotModified}) as api:
            with pytest.raises(NotModified):
                await api.get("repos")


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def test_a_missing_authenticate_keyword_is_named_before_build_session_is_read() -> None:
    # Both hooks' signatures were read first: one inspect cannot read (a builtin) hid
    # the missing keyword behind a bare ValueError.
    class Sdk(TrioAPISession):
        _url = URL

        async def _authenticate(self, api_key: str) -> None:
            pass

        _build_session = next  # type: ignore[assignment]

    with pytest.raises(errors.RequiredParameterError, match="requires api_key"):
        Sdk()


async def test_a_session_clients_own_failure_after_the_block_ends_stays_itself() -> None:
    """A session= client is never closed by trestfly: a request of it still out when
    the block ends is not cut off, and its real failure (a reset) is reported as one."""
    release = trio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        raise httpx.ReadError("connection reset by peer", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    api = API(session=client)
    caught: list[Exception] = []

    async def call() -> None:
        try:
            await api.post("orders", json={"n": 1})
        except Exception as exc:
            caught.append(exc)

    async with trio.open_nursery() as nursery:
        async with api:
            nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert not client.is_closed
    await client.aclose()
    assert [type(exc) for exc in caught] == [errors.ConnectionError]
    assert isinstance(caught[0].__cause__, httpx.ReadError)


async def test_a_call_waiting_for_its_slot_when_the_block_ends_is_told_not_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Paced to t=1 by rate_limit=1, the block ends at t=0.5: the call went on through
    the closed client, and got httpx's bare RuntimeError."""
    api = TrioAPISession(
        url=URL,
        transport=httpx.MockTransport(_ok),
        throttle=trestfly.ThrottleSettings(rate_limit=1.0),
    )
    caught: list[Exception] = []

    async def call() -> None:
        try:
            await api.get("x")
        except Exception as exc:
            caught.append(exc)

    async with trio.open_nursery() as nursery, api:
        await api.get("first")
        nursery.start_soon(call)
        await trio.sleep(0.5)
    assert len(caught) == 1 and isinstance(caught[0], errors.SessionNotOpenError)
    assert api.stats.in_flight == 0


class _AnswersLate(httpx.AsyncBaseTransport):
    """Answers after time passed without a checkpoint (a busy machine): Trio has not yet
    delivered the cancellation of a deadline passed meanwhile."""

    def __init__(self, clock: trio.testing.MockClock, response: httpx.Response) -> None:
        self.clock, self.response = clock, response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await trio.lowlevel.checkpoint()
        self.clock.jump(0.2)
        return httpx.Response(self.response.status_code, headers=self.response.headers)


@pytest.mark.parametrize(
    "response",
    [httpx.Response(503), httpx.Response(429, headers={"Retry-After": "1"})],
    ids=["503", "429"],
)
async def test_a_deadline_passed_but_not_yet_delivered_cancels_rather_than_fails(
    autojump_clock: trio.testing.MockClock, response: httpx.Response
) -> None:
    api = TrioAPISession(url=URL, transport=_AnswersLate(autojump_clock, response), retries=3)
    async with api:
        with trio.move_on_after(0.1) as scope:
            await api.get("x")  # the answer comes at 0.2, the retry decided then
        assert scope.cancelled_caught  # Cancelled, not ServiceUnavailable/TooManyRequests
    # The call's own deadline= is still a TimeoutError.
    api = TrioAPISession(url=URL, transport=_AnswersLate(autojump_clock, response), retries=3)
    async with api:
        with pytest.raises(errors.TimeoutError):
            await api.get("x", deadline=0.1)


@pytest.mark.parametrize("status", [502, 504])
async def test_a_post_is_not_retried_on_a_gateway_status_unless_retry_on_names_it(
    autojump_clock: trio.testing.MockClock, status: int
) -> None:
    """Behind a gateway, a 504 or 502 says nothing of whether the origin processed the
    POST: retried by default, an order was created up to retries + 1 times."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return httpx.Response(503 if request.url.path == "/busy" else status)

    transport = httpx.MockTransport(handler)
    async with TrioAPISession(url=URL, transport=transport, retries=2) as api:
        with pytest.raises(errors.APIError):
            await api.post("orders")
        with pytest.raises(errors.APIError):
            await api.put("orders")  # idempotent: retried as before
        with pytest.raises(errors.APIError):
            await api.post("named", retry_on=(status,))  # named: the user's word
        with pytest.raises(errors.ServiceUnavailableError):
            await api.post("busy")  # a 503 (not processed) is retried for a POST
    async with TrioAPISession(url=URL, transport=transport, retries=2, retry_on=(status,)) as api:
        with pytest.raises(errors.APIError):
            await api.post("session")  # the session's retry_on names it too
    assert [
        sent.count(f"{call}")
        for call in ("POST /orders", "PUT /orders", "POST /named", "POST /busy", "POST /session")
    ] == [1, 3, 3, 3, 3]


async def test_a_quota_spent_on_a_success_refuses_the_next_call_with_the_quota_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 200 saying nothing remains until a reset an hour away closes the origin at the
    next call, past max_retry_after: that call is refused with the answer that spent
    the quota (TooManyRequestsError, retry_after the reset), not a bare timeout."""
    reset = int(time.time()) + 3600
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"}
    with respx.mock(base_url=URL) as mock:
        route = mock.get("/x").respond(200, headers={**headers, "X-RateLimit-Reset": str(reset)})
        async with TrioAPISession(url=URL) as api:
            await api.get("x")
            with pytest.raises(errors.TooManyRequestsError) as refused:
                await api.get("x")
        assert route.call_count == 1
    assert refused.value.retry_after is not None and 3500 < refused.value.retry_after <= 3600


async def test_bad_params_beside_a_query_in_the_path_are_named() -> None:
    with respx.mock(base_url=URL, assert_all_called=False):
        async with TrioAPISession(url=URL) as api:
            with pytest.raises(errors.UnexpectedValueError, match="params"):
                await api.get("search?q=trio", params=5)


async def test_a_304_is_not_handed_to_the_2xx_error_check() -> None:
    class Checking(TrioAPISession):
        _url = URL

        async def _resp_error_check(
            self, response: httpx.Response, **kwargs: Any
        ) -> httpx.Response:
            if response.json().get("error"):  # no body to read on a 304
                raise errors.APIError(response)
            return response

    with respx.mock(base_url=URL) as mock:
        mock.get("/repos").respond(304)
        async with Checking() as api:
            assert (await api.get("repos")).status_code == 304


def test_timeout_and_throttle_shortcuts_set_before_super_init_are_kept() -> None:
    class Tuned(TrioAPISession):
        def __init__(self, **kwargs: Any) -> None:
            self._timeout = 5.0
            self._rate_limit = 5.0
            self._burst = 2
            self._adaptive = False
            super().__init__(**kwargs)

    tuned = Tuned(url=URL)
    assert tuned._timeout == 5.0
    assert (tuned._rate_limit, tuned._burst, tuned._adaptive) == (5.0, 2, False)
    # The keywords still win, and throttle= takes no shortcut (as for class attributes).
    assert Tuned(url=URL, timeout=1.0, rate_limit=9.0)._throttle.rate_limit == 9.0
    assert Tuned(url=URL, throttle=trestfly.ThrottleSettings())._throttle.rate_limit is None


async def test_a_429_with_a_zero_retry_after_is_one_without_a_hint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`Retry-After: 0` says "too many" and nothing of when: the concurrency limit is cut
    as for a bare 429, and no gate of no time is counted."""
    limits = {}
    for headers in ({}, {"Retry-After": "0"}):
        transport = httpx.MockTransport(lambda request, h=headers: httpx.Response(429, headers=h))
        api = TrioAPISession(url=URL, transport=transport, retries=2, backoff=0.025)

        async def one(api: TrioAPISession = api) -> None:
            with pytest.raises(errors.TooManyRequestsError):
                await api.get("x")

        async with api, trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)
        limits[bool(headers)] = (api.stats.concurrency_limit, api.stats.gate_trips)
    assert limits[True] == limits[False] and limits[True][0] < 50 and limits[True][1] == 0


async def test_a_base_path_changed_once_open_is_used_and_checked() -> None:
    with respx.mock(base_url=URL) as mock:
        v1 = mock.get("/v1/users").respond(200)
        v2 = mock.get("/v2/users").respond(200)
        async with TrioAPISession(url=URL, base_path="v1") as api:
            await api.get("users")
            api._base_path = "v2"
            await api.get("users")
            api._base_path = "v3?api_key=secret"
            with pytest.raises(errors.UnexpectedValueError, match="base_path cannot") as bad:
                await api.get("users")
        assert v1.call_count == 1 and v2.call_count == 1
    assert "secret" not in str(bad.value)


async def test_a_passed_undelivered_deadline_at_a_closed_gate_cancels(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock(base_url=URL) as mock:
        mock.get("/x").respond(429, headers={"Retry-After": "5"})
        async with TrioAPISession(url=URL, retries=0) as api:
            with pytest.raises(errors.TooManyRequestsError):
                await api.get("x")  # the gate is closed for 5 s
            with trio.move_on_after(0.1) as scope:
                autojump_clock.jump(0.2)  # past the deadline, no checkpoint since
                await api.get("x")  # refused at the gate, or cancelled?
            assert scope.cancelled_caught


async def test_a_403_with_a_zero_retry_after_is_still_a_throttle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Retry-After makes a 403 GitHub's throttle, a zero one too: retried and counted
    in `throttled` (the zero only paces nothing)."""
    answers = iter([httpx.Response(403, headers={"Retry-After": "0"}), httpx.Response(200)])
    transport = httpx.MockTransport(lambda request: next(answers))
    async with TrioAPISession(url=URL, transport=transport, retries=3) as api:
        await api.get("x")
        assert (api.stats.throttled, api.stats.retries, api.stats.gate_trips) == (1, 1, 0)


async def test_calls_still_out_when_the_block_ends_are_counted_as_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One call retrying behind a closed gate, one waiting at it: both get "not open"
    when the block ends, and `failures` counts them, as it counts a gate's refusal."""
    answers = iter([httpx.Response(429, headers={"Retry-After": "5"})])
    transport = httpx.MockTransport(lambda request: next(answers, httpx.Response(200)))
    api = TrioAPISession(url=URL, transport=transport, retries=3)
    caught: list[Exception] = []

    async def call(path: str) -> None:
        try:
            await api.get(path)
        except Exception as exc:
            caught.append(exc)

    async with trio.open_nursery() as nursery, api:
        nursery.start_soon(call, "retrying")
        await trio.sleep(0.1)  # its 429 closed the gate for 5 s
        nursery.start_soon(call, "waiting")
        await trio.sleep(1)
    assert len(caught) == 2 and all(isinstance(e, errors.SessionNotOpenError) for e in caught)
    stats = api.stats
    assert (stats.attempts, stats.retries, stats.successes, stats.failures) == (1, 1, 0, 2)


def test_entering_under_asyncio_names_trio() -> None:
    # Under asyncio.run, Trio's bare "must be called from async context" named neither
    # Trio nor the session.
    import asyncio

    async def enter() -> None:
        async with API():
            pass

    with pytest.raises(errors.TrestflyError, match=r"^API must be entered inside trio\.run\(\)"):
        asyncio.run(enter())


@pytest.mark.parametrize(
    "hook", ["_authenticate", "_deauthenticate", "_resp_error_check", "_retry_request"]
)
def test_a_hook_written_as_a_plain_def_is_refused_at_construction(hook: str) -> None:
    # RESTfly's hooks were plain: a port that kept one failed with a bare TypeError
    # ("object dict can't be used in 'await' expression"), a _retry_request only at its
    # first retry, a _resp_error_check after the server had answered.
    def plain(self: Any, *args: Any, **kwargs: Any) -> Any:
        return kwargs

    ported = type("Ported", (API,), {hook: plain})
    with pytest.raises(errors.UnexpectedValueError, match=f"Ported.{hook}\\(\\) must be an async"):
        ported()


def test_a_decorated_hook_that_returns_an_awaitable_is_not_judged() -> None:
    def logged(hook: Any) -> Any:
        @functools.wraps(hook)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return hook(*args, **kwargs)  # the coroutine, awaited by the session

        return wrapper

    class Decorated(API):
        @logged
        async def _authenticate(self, **kwargs: Any) -> None:
            self.logged_in = True

    async def enter() -> bool:
        with respx.mock:
            async with Decorated() as api:
                return api.logged_in

    assert trio.run(enter)


def test_an_iterators_get_page_written_as_a_plain_def_is_refused() -> None:
    class Ported(trestfly.APIIterator[Any]):
        def _get_page(self) -> None:  # type: ignore[override]
            self.page = []

    with pytest.raises(errors.UnexpectedValueError, match=r"_get_page\(\) must be an async"):
        Ported(None)
