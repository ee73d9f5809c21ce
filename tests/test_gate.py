"""The shared gate, pacing, the budget and cancellation, across many concurrent tasks.

respx answers in-process and pytest-trio's autojump MockClock drives time, so arrival
times are exact and nothing here depends on the machine's speed.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext, suppress

import httpx
import pytest
import respx
import trio
import trio.lowlevel

from trestfly import BudgetSettings, TrioAPISession, errors
from trestfly._admission import OriginGate
from trestfly._throttle import OriginThrottle, ThrottleSettings

URL = "http://api.test"


class Recorder:
    """A respx side effect that records arrival times and answers from a rule."""

    def __init__(
        self, rule: Callable[[httpx.Request, float], httpx.Response], latency: float = 0.01
    ) -> None:
        self.rule = rule
        self.latency = latency
        self.arrivals: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        now = trio.current_time()
        self.arrivals.append(now)
        await trio.sleep(self.latency)
        return self.rule(request, now)


async def run_tasks(n: int, fn: Callable[[], object]) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(fn)  # type: ignore[arg-type]


async def get_from_tasks(
    recorder: Recorder, tasks: int, calls: int, **session: object
) -> TrioAPISession:
    """``tasks`` tasks of one session, each making ``calls`` GETs of /x, answered by
    ``recorder``; returns the session, closed (its stats stay readable)."""
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, **session) as api:  # type: ignore[arg-type]

            async def worker() -> None:
                for _ in range(calls):
                    await api.get("x")

            await run_tasks(tasks, worker)
    return api


class WholeSecondWindow:
    """A respx rule: ``quota`` per 1 s window aligned to t=0, then 429 with the time to
    the window's end in whole seconds; records what it served, refused and announced."""

    def __init__(self, quota: int) -> None:
        self.quota = quota
        self.served_in: dict[int, int] = {}
        self.refused_at: list[float] = []
        self.announced: list[tuple[float, float]] = []  # (delivered at, no request before)

    def __call__(self, request: httpx.Request, now: float) -> httpx.Response:
        window = int(now)
        if self.served_in.get(window, 0) < self.quota:
            self.served_in[window] = self.served_in.get(window, 0) + 1
            return httpx.Response(200)
        self.refused_at.append(now)
        delay = math.ceil(window + 1 - now)
        self.announced.append((now + 0.01, now + delay))
        return httpx.Response(429, headers={"Retry-After": str(delay)})


async def test_no_request_reaches_the_origin_while_the_gate_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    latency = 0.01
    announced: list[tuple[float, float]] = []  # (delivered at, no request before)

    def rule(request: httpx.Request, now: float) -> httpx.Response:
        if 0.005 < now < 3.0:  # the origin throttles for a while
            announced.append((now + latency, now + 0.5))
            return httpx.Response(429, headers={"Retry-After": "0.5"})
        return httpx.Response(200)

    recorder = Recorder(rule, latency=latency)
    api = await get_from_tasks(recorder, 30, 5, retries=20)
    # A violation: a request arriving after a 429 was delivered but before the instant
    # that 429 announced.  Requests already in flight when it was delivered do not count.
    violations = [
        arrival
        for arrival in recorder.arrivals
        if any(delivered < arrival < instant for delivered, instant in announced)
    ]
    assert violations == []
    throttled_arrivals = [t for t in recorder.arrivals if 0.005 < t < 3.0]
    # The first burst (30 in flight) plus at most one probe per closed half-second.
    assert len(throttled_arrivals) <= 30 + (3.0 / 0.5) + 1
    stats = api.stats
    assert stats.successes == 150
    assert stats.gate_trips >= 2
    assert stats.by_status[429] == len(throttled_arrivals)


async def test_gate_is_one_per_origin(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock:
        respx.get("http://slow.test/x").respond(429, headers={"Retry-After": "100"})
        fast = respx.get("http://fast.test/y").respond(200)
        async with TrioAPISession(max_retry_after=1000) as api, trio.open_nursery() as nursery:
            nursery.start_soon(api.get, "http://slow.test/x")
            await trio.sleep(1)
            start = trio.current_time()
            await api.get("http://fast.test/y")
            # At once: behind one gate for all origins it waited the slow one's 100 s
            # and succeeded all the same, which the call count alone did not tell.
            assert trio.current_time() == start
            nursery.cancel_scope.cancel()
    assert fast.call_count == 1


async def test_ipv6_origins_are_told_apart_by_their_brackets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Without the brackets both were "http://::1:8080": one gate (a 429 from one closed
    # the other's), and one key in a coordination store.
    def server(request: httpx.Request) -> httpx.Response:
        if request.url.port == 8080:
            return httpx.Response(429, headers={"Retry-After": "100"})
        return httpx.Response(200)

    async with TrioAPISession(
        transport=httpx.MockTransport(server), max_retry_after=1000, retries=0
    ) as api:
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("http://[::1]:8080/x")
        start = trio.current_time()
        assert (await api.get("http://[::1:8080]/x")).status_code == 200
        assert trio.current_time() == start  # not behind the other's closed gate
        assert set(api.stats.origins) == {"http://[::1]:8080", "http://[::1:8080]"}


async def test_a_new_request_at_a_closed_gate_fails_fast_past_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock:
        route = respx.get(f"{URL}/x").respond(429, headers={"Retry-After": "60"})
        async with TrioAPISession(url=URL) as api:
            with pytest.raises(errors.TooManyRequestsError):
                await api.get("x", deadline=10)
            start = trio.current_time()
            with pytest.raises(errors.TooManyRequestsError) as info:
                await api.get("x", deadline=10)  # the gate is still closed for ~60 s
    assert trio.current_time() == start
    assert route.call_count == 1
    assert info.value.retry_after is not None and info.value.retry_after > 10


async def test_the_budget_stops_an_outage_from_multiplying(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def count_attempts(budget: BudgetSettings) -> int:
        with respx.mock:
            route = respx.get(f"{URL}/x").respond(500)
            async with TrioAPISession(
                url=URL, retries=3, backoff=0.1, retry_on=[500], retry_budget=budget
            ) as api:

                async def one() -> None:
                    with pytest.raises(errors.ServerError):
                        await api.get("x")

                await run_tasks(50, one)
            return route.call_count

    without = await count_attempts(BudgetSettings(enabled=False))
    with_budget = await count_attempts(BudgetSettings(capacity=10, ratio=0.2, per_second=1))
    assert without == 200
    assert with_budget <= 50 + 10 + 2  # the capacity, plus a token or so of refill


async def test_the_budget_lets_a_busy_session_retry_failures_well_inside_its_ratio(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 12% of arrivals fail (503, no hint) in runs of 15, well inside the default ratio
    # of 0.2 retries per success.  With a bucket fixed at 10 tokens, a run of 15
    # failures among 100 concurrent calls emptied it and retries were refused (1 run in
    # 8 of 2,000 requests against the storm server's 12% flaky scenario); sized by
    # recent successes it absorbs them.  A call fails once at most, so that only the
    # budget (not a retry landing in the next run, as Trio's scheduling may have it)
    # can fail one.
    arrivals = itertools.count()
    failed_once: set[str] = set()

    def flaky(request: httpx.Request, now: float) -> httpx.Response:
        call = request.url.params["call"]
        if next(arrivals) % 125 >= 110 and call not in failed_once:
            failed_once.add(call)
            return httpx.Response(503)
        return httpx.Response(200)

    recorder = Recorder(flaky)
    calls = itertools.count()
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, max_concurrency=100) as api:

            async def worker() -> None:
                for _ in range(20):
                    await api.get("x", params={"call": str(next(calls))})

            await run_tasks(100, worker)
    assert api.stats.budget_denied == 0
    assert api.stats.retries == len(failed_once) >= 200  # the 503s came, each retried


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_the_budget_counts_retries_of_hints_that_close_no_gate(
    autojump_clock: trio.testing.MockClock, status: int
) -> None:
    # A Retry-After on a 500, 502 or 504 is the call's own wait: it closes no gate, so
    # nothing paces the crowd.  It made every retry "guided" and free of the budget: a
    # gateway outage of 50 calls sent all 50 x 6 attempts, in waves of all 50.
    with respx.mock:
        route = respx.get(f"{URL}/x").respond(status, headers={"Retry-After": "1"})
        async with TrioAPISession(url=URL, retry_on=[status]) as api:

            async def one() -> None:
                with pytest.raises(errors.APIError):
                    await api.get("x")

            await run_tasks(50, one)
            assert api.stats.budget_denied > 0
        # The capacity, and a token a second over the 5 s of hints the last calls wait
        # (without the budget: 300).
        assert route.call_count <= 50 + 10 + 5
        # A call failing alone still waits the hint and gets its retries.
        route.reset()
        async with TrioAPISession(url=URL, retry_on=[status]) as api:
            start = trio.current_time()
            with pytest.raises(errors.APIError):
                await api.get("x")
            assert route.call_count == 6
            assert trio.current_time() - start >= 5


async def test_a_call_waiting_out_a_throttle_does_not_make_a_lone_failure_one_of_many(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # After an outage has drained the budget, one call failing alone may still retry.
    # "Alone" counted every call with a retry behind it: one waiting out another
    # origin's 429 (a retry the budget has no part in) made the lone 503 one of many,
    # and it was refused its retry.
    async def lone_failure(neighbour_throttled: bool, neighbour_path: str = "quota") -> int:
        answers: dict[str, int] = {}

        def server(request: httpx.Request) -> httpx.Response:
            if request.url.host == "other.test":
                answers["other"] = answers.get("other", 0) + 1
                if request.url.path == "/503-then-quota" and answers["other"] == 1:
                    return httpx.Response(503)
                return httpx.Response(429, headers={"Retry-After": "60"})
            if request.url.path == "/down":
                return httpx.Response(503)
            answers["b"] = answers.get("b", 0) + 1
            return httpx.Response(503 if answers["b"] == 1 else 200)

        async def fail(path: str) -> None:
            with suppress(errors.APIError):
                await api.get(path)

        # No refill with time: the neighbour's wait must not give the lone call a token.
        budget = BudgetSettings(per_second=0)
        async with TrioAPISession(
            url=URL, transport=httpx.MockTransport(server), retry_budget=budget
        ) as api:
            await run_tasks(40, lambda: fail("down"))  # the outage: the budget drained
            assert api.stats.budget_denied > 0
            async with trio.open_nursery() as nursery:
                if neighbour_throttled:
                    nursery.start_soon(fail, f"http://other.test/{neighbour_path}")
                    await trio.sleep(1)  # its 429 is in: it waits 60 s to retry
                await api.get("b")
                nursery.cancel_scope.cancel()
        return answers["b"]

    assert await lone_failure(neighbour_throttled=False) == 2
    assert await lone_failure(neighbour_throttled=True) == 2
    # Nor one whose first retry was of a 503 without a hint: it counted among the calls
    # retrying unguided failures until it ended, waiting out its 429 included.
    assert await lone_failure(neighbour_throttled=True, neighbour_path="503-then-quota") == 2


def test_a_new_run_counts_no_call_of_the_last_one_as_retrying() -> None:
    # A Ctrl-C between a call's flag and the session's count of calls retrying could
    # leave the count off by one, and it outlived the run: at -1 (or +1) no failure of
    # any later run was alone again, and a lone 503 after an outage was refused.
    answers = {"b": 0}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            return httpx.Response(503)
        answers["b"] += 1
        return httpx.Response(503 if answers["b"] == 1 else 200)

    api = TrioAPISession(url=URL, transport=httpx.MockTransport(server))

    async def interrupted_run() -> None:
        async with api:
            api._retrying_unguided = -1  # what the interrupted run could leave

    async def next_run() -> None:
        async with api:

            async def fail() -> None:
                with suppress(errors.APIError):
                    await api.get("down")

            await run_tasks(40, fail)  # the outage: the budget drained
            assert api.stats.budget_denied > 0
            await api.get("b")  # alone: retried

    for run in (interrupted_run, next_run):
        trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert answers["b"] == 2


async def test_a_throttle_of_a_request_already_in_flight_is_not_counted(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """B was in flight when A's 429 began the episode: B's 429 is old news, and its retry
    does not use up B's single retry."""
    caplog.set_level(logging.INFO, logger="trestfly.retry")
    attempts = {"a": 0, "b": 0}

    async def answer(request: httpx.Request) -> httpx.Response:
        who = request.url.path.strip("/")
        attempts[who] += 1
        if who == "b" and attempts["b"] == 1:
            await trio.sleep(0.5)  # still in flight when A's throttle arrives
        return httpx.Response(429, headers={"Retry-After": "1"})

    with respx.mock:
        respx.get(url__regex=rf"{URL}/(a|b)").mock(side_effect=answer)
        async with TrioAPISession(url=URL, retries=1) as api:
            failures: dict[str, errors.APIError] = {}

            async def call(who: str, after: float) -> None:
                await trio.sleep(after)
                with pytest.raises(errors.TooManyRequestsError) as info:
                    await api.get(who)
                failures[who] = info.value

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, "b", 0.0)
                nursery.start_soon(call, "a", 0.1)
    assert attempts == {"a": 2, "b": 3}
    assert [record.counted for record in failures["a"].history] == [True]
    assert [record.counted for record in failures["b"].history] == [False, True]
    uncounted = [r for r in caplog.records if getattr(r, "trestfly_counted", True) is False]
    assert [r.getMessage().split(" (")[1] for r in uncounted] == [
        "retry 1, not counted against 1) after 429"
    ]


async def test_uncounted_retries_are_bounded_by_retries(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every throttle judged stale: still at most `retries` uncounted retries, then the
    # `retries` counted ones.
    monkeypatch.setattr("trestfly._throttle.OriginThrottle.is_stale", lambda self, ticket: True)
    with respx.mock:
        route = respx.get(f"{URL}/x").respond(429, headers={"Retry-After": "1"})
        async with TrioAPISession(url=URL, retries=2) as api:
            with pytest.raises(errors.TooManyRequestsError) as info:
                await api.get("x")
    assert route.call_count == 5
    assert [record.counted for record in info.value.history] == [False, False, True, True]


async def test_retry_history_is_exposed(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock:
        respx.get(f"{URL}/x").side_effect = [
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200),
        ]
        async with TrioAPISession(url=URL, backoff=1) as api:
            response = await api.get("x")
    history = response.extensions["trestfly.retry_history"]
    assert [(r.retry, r.status, r.error, r.retry_after) for r in history] == [
        (1, 503, None, None),
        (2, None, "ConnectError", None),
        (3, 429, None, 2.0),
    ]
    # Without a hint, a random share of 1 s then of 2 s; the 429's hint exactly.
    first, second, third = (r.delay for r in history)
    assert first < 1.0 and second < 2.0 and third == 2.0
    assert api.stats.retries == 3 and api.stats.transport_errors == 1


async def test_max_concurrency_bounds_requests_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(0.1)
        in_flight -= 1
        return httpx.Response(200)

    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=slow)
        async with TrioAPISession(url=URL, max_concurrency=7) as api:

            async def one() -> None:
                await api.get("x")

            await run_tasks(60, one)
    assert peak == 7


async def test_client_side_rate_limit_paces_sends(autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder(lambda request, now: httpx.Response(200), latency=0.001)
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, rate_limit=20, burst=5) as api:

            async def one() -> None:
                await api.get("x")

            await run_tasks(25, one)
    start = recorder.arrivals[0]
    offsets = sorted(t - start for t in recorder.arrivals)
    assert offsets[:5] == pytest.approx([0.0] * 5, abs=1e-6)  # the burst
    assert offsets[-1] == pytest.approx(20 * 0.05, abs=1e-3)  # then 20 per second
    # In no one-second window more than rate + burst requests.
    for t in offsets:
        assert sum(1 for u in offsets if t <= u < t + 1.0) <= 25


async def test_a_send_a_little_late_costs_the_next_waiter_no_more_than_that(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # rate_limit counts from the requests actually sent.  A task woken a little after
    # its slot (here a busy neighbour takes 1.5 ms of the clock every 11 ms, and some
    # slots fall due in them) holds the next slot back by as much; the next waiter was
    # refused then, reserved anew behind the others (8 tasks at 20/s sent 12/s in real
    # time).  The pairs of sends are never closer than the limit either way.
    sent: list[float] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        return httpx.Response(200)

    async def busy_neighbour() -> None:
        for _ in range(2_000):
            await trio.sleep(0.011)
            autojump_clock.jump(0.0015)

    async with (
        TrioAPISession(url=URL, rate_limit=20, transport=httpx.MockTransport(server)) as api,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(busy_neighbour)
        for _ in range(8):
            nursery.start_soon(_forever, api)
        await trio.sleep(10)  # a cancel, not a deadline: the calls are not refused
        nursery.cancel_scope.cancel()
    rate = sum(1 for t in sent if t >= 1.0) / 9.0
    assert 19.8 <= rate <= 20.0, rate  # 18.3 before
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 0.05 - 1e-9


async def _forever(api: TrioAPISession) -> None:
    for _ in range(10_000):  # bounded: the test's deadline ends it far sooner
        await api.get("x")


@pytest.mark.parametrize(
    ("first", "adaptive"),
    [
        (httpx.Response(429), True),  # no hint: the schedule restarted at once
        (httpx.Response(429, headers={"Retry-After": "0.001"}), False),  # a 1 ms gate
        (httpx.Response(503, headers={"Retry-After": "0.001"}), True),
    ],
)
async def test_a_throttle_never_brings_a_request_forward_of_the_client_rate_limit(
    autojump_clock: trio.testing.MockClock, first: httpx.Response, adaptive: bool
) -> None:
    # Each throttle restarted the pacer's schedule at the instant, forgetting what had
    # been sent: against rate_limit=1 the next request (or the reopening's probe) went
    # 10 ms after the last one.
    answers = iter([first])
    recorder = Recorder(lambda request, now: next(answers, httpx.Response(200)), latency=0.01)
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, rate_limit=1, adaptive=adaptive) as api:

            async def one() -> None:
                await api.get("x")

            await run_tasks(4, one)
    arrivals = sorted(recorder.arrivals)
    assert len(arrivals) == 5
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 1.0 - 1e-9, arrivals


async def test_calls_queued_behind_the_client_rate_limit_wait_their_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # max_retry_after bounds what the server makes a call wait: a slot of the client's
    # own rate_limit far off because many calls queue for it was refused by it too,
    # unsent, with a TimeoutError (1,000 calls at 5,000 an hour: from the 420th on).
    recorder = Recorder(lambda request, now: httpx.Response(200), latency=0.001)
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, rate_limit=0.1, max_retry_after=60) as api:
            start = trio.current_time()
            results = await api.map(lambda _: api.get("x"), range(20), limit=20)
    assert len(results) == len(recorder.arrivals) == 20
    assert max(recorder.arrivals) - start == pytest.approx(190, abs=0.1)  # 19 x 10 s


async def test_a_server_pace_slower_than_max_retry_after_fails_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The quota headers leave 2 requests for the next hour, spread over the hour: a slot
    # every 1,800 s, past max_retry_after (300 s).  That wait is the server's, and fails
    # at once, naming the call (the message named neither the method nor the URL).
    quota = {"RateLimit": '"default";r=2;t=3600'}
    recorder = Recorder(lambda request, now: httpx.Response(200, headers=quota), latency=0.001)
    over_the_hour = ThrottleSettings(quota_spread=3600.0)
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, throttle=over_the_hour) as api:
            await api.get("x")
            await api.get("x")
            start = trio.current_time()
            with pytest.raises(errors.TimeoutError, match=r"^GET http://api\.test/x: the pacer"):
                await api.get("x")
    assert trio.current_time() == start
    assert len(recorder.arrivals) == 2


async def call_noting_its_end(
    api: TrioAPISession, ended: list[tuple[str, float]], since: Callable[[], float]
) -> None:
    """A GET sent through ``api``: how it ended ("sent" or "not open"), and when,
    counted from ``since()``, appended to ``ended``."""
    try:
        await api.get("x")
        ended.append(("sent", trio.current_time() - since()))
    except errors.SessionNotOpenError:
        ended.append(("not open", trio.current_time() - since()))


@pytest.mark.parametrize("wait", ["gate", "pacer", "pacer-entered-again"])
async def test_calls_waiting_when_the_block_ends_learn_it_at_once(
    autojump_clock: trio.testing.MockClock, wait: str
) -> None:
    # Calls started outside the block and waiting at a gate closed for 120 s, or for
    # pacer slots 100 s apart, waited out all of it to get "not open", and each took
    # its pacer slot in turn for nothing.
    answers = iter([httpx.Response(429, headers={"Retry-After": "120"})] if wait == "gate" else [])
    recorder = Recorder(lambda request, now: next(answers, httpx.Response(200)), latency=0.001)
    api = TrioAPISession(url=URL, rate_limit=None if wait == "gate" else 0.01, retries=0)
    ended: list[tuple[str, float]] = []

    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with trio.open_nursery() as outside:
            async with api:
                with suppress(errors.TooManyRequestsError):
                    await api.get("x")  # closes the gate, or spends the pacer's slot
                for _ in range(3):
                    outside.start_soon(call_noting_its_end, api, ended, lambda: left)
                await trio.sleep(1)
                left = trio.current_time()
            if wait == "pacer-entered-again":
                async with api:  # they go on in the new block, at their turn (held before too)
                    await trio.sleep(400)
    if wait == "pacer-entered-again":
        assert sorted(kind for kind, _ in ended) == ["sent"] * 3
        assert len(recorder.arrivals) == 4
    else:
        assert ended == [("not open", 0.0)] * 3
        assert len(recorder.arrivals) == 1


@pytest.mark.parametrize("entered_again", [False, True])
async def test_a_backoff_in_progress_when_the_block_ends_learns_it_at_once(
    autojump_clock: trio.testing.MockClock, entered_again: bool
) -> None:
    # A 502's Retry-After (no gate: slept by the call) was slept whole after the block
    # ended, then the retry hook ran on the closed session, and only then "not open".
    hooked: list[float] = []

    class Hooked(TrioAPISession):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: object
        ) -> dict[str, object]:
            hooked.append(trio.current_time())
            return dict(kwargs)

    answers = iter([httpx.Response(502, headers={"Retry-After": "30"})])
    recorder = Recorder(lambda request, now: next(answers, httpx.Response(200)), latency=0.001)
    api = Hooked(url=URL, retries=1)
    ended: list[tuple[str, float]] = []

    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with trio.open_nursery() as outside:
            async with api:
                start = trio.current_time()
                outside.start_soon(call_noting_its_end, api, ended, lambda: start)
                await trio.sleep(1)
            if entered_again:
                async with api:  # the backoff goes on to its end, then the retry
                    await trio.sleep(60)
    if entered_again:
        assert ended == [("sent", pytest.approx(30.0, abs=0.1))] and len(hooked) == 1
        assert len(recorder.arrivals) == 2
    else:
        assert ended == [("not open", pytest.approx(1.0, abs=0.01))] and hooked == []
        assert len(recorder.arrivals) == 1


def test_a_session_open_in_one_trio_run_refuses_calls_from_another() -> None:
    # Its gates hold the other run's clock: a 1 s Retry-After there read as a wait of
    # hours here, and the call failed at once with a TooManyRequestsError, unsent.
    api = TrioAPISession(url=URL, retries=0)
    with respx.mock:
        route = respx.get(f"{URL}/x").respond(200, json={})

        async def open_it() -> None:
            await api.__aenter__()
            await api.get("x")

        async def call_it() -> None:
            with pytest.raises(errors.SessionNotOpenError, match=r"open in another trio\.run"):
                await api.get("x")

        async def close_it() -> None:
            await api.__aexit__(None, None, None)

        trio.run(open_it)
        trio.run(call_it)
        assert route.call_count == 1
        trio.run(close_it)  # leaving it from another run: its clients closed
    with pytest.raises(errors.SessionNotOpenError, match="is not open"):
        api._session  # noqa: B018


async def test_paced_waiters_cancelled_give_their_slots_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder(lambda request, now: httpx.Response(200), latency=0.001)
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, rate_limit=1) as api:
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(api.get, "x")
                # Cancelled from outside (a deadline would make them fail fast instead):
                # sent at 0, 1 and 2; seven still waiting for their slots.
                await trio.sleep(2.5)
                nursery.cancel_scope.cancel()
            assert len(recorder.arrivals) == 3
            await api.get("x")
    # The next slot of the 1/s schedule (3.0), not the one after the cancelled seven.
    assert recorder.arrivals[-1] - start == pytest.approx(3.0, abs=0.01)


async def test_callers_refused_past_their_deadline_do_not_push_the_pacer_ahead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder(lambda request, now: httpx.Response(200), latency=0.001)
    refused: list[str] = []
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, rate_limit=10) as api:

            async def call() -> None:
                try:
                    await api.get("x", deadline=1.0)
                except errors.TimeoutError as error:
                    refused.append(str(error))

            async with trio.open_nursery() as nursery:
                for _ in range(200):  # 20 calls a second for 10 s against 10/s
                    nursery.start_soon(call)
                    await trio.sleep(0.05)
    start = recorder.arrivals[0]
    late = [t for t in recorder.arrivals if t - start >= 5.0]
    # The pacer keeps serving its rate; it used to serve nothing once refusals began.
    assert len(late) >= 45 and len(refused) >= 80
    # Named for what it waited for, not as a throttle of 0 s more (the others were
    # in flight when their deadline passed).
    assert sum("the pacer's next slot" in message for message in refused) >= 80
    assert not any("throttled" in message for message in refused)


async def wait_forever(request: httpx.Request) -> httpx.Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


@pytest.mark.parametrize("point", ["in_flight_and_slot", "gate", "backoff", "probe"])
async def test_cancellation_at_every_point_leaves_nothing_behind(
    point: str, autojump_clock: trio.testing.MockClock
) -> None:
    with respx.mock:
        route = respx.get(f"{URL}/x")
        if point == "in_flight_and_slot":  # two hang in flight, four wait for a slot
            route.mock(side_effect=wait_forever)
        elif point == "gate":
            route.respond(429, headers={"Retry-After": "50"})
        elif point == "backoff":
            route.respond(503)
        else:  # the probe hangs, the others wait for it
            calls = 0

            async def first_429_then_hang(request: httpx.Request) -> httpx.Response:
                nonlocal calls
                calls += 1
                if calls == 1:
                    return httpx.Response(429, headers={"Retry-After": "1"})
                await trio.sleep_forever()
                raise AssertionError("unreachable")

            route.mock(side_effect=first_429_then_hang)
        async with TrioAPISession(
            url=URL, max_concurrency=2, backoff=30, max_backoff=30, retries=5
        ) as api:
            # Every wait at the top of its bound, so that all are still waiting at 10 s.
            api._rng.random = lambda: 1.0  # type: ignore[method-assign]
            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(api.get, "x")
                # Cancelled from outside: a deadline would make them fail fast instead.
                await trio.sleep(10)
                nursery.cancel_scope.cancel()
            assert api.stats.in_flight == 0
            for origin in api.stats.origins.values():
                assert origin.in_flight == 0
            # The session still works once the origin answers again.
            route.mock(side_effect=None, return_value=httpx.Response(200))
            with trio.fail_after(120):
                assert (await api.get("x")).status_code == 200


async def test_waiters_reserve_again_when_the_rate_grows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Slots reserved at a low rate are not kept once the learned rate has grown: the
    waiters wake and are spaced at the new rate (else a hundred waiters hold seconds of
    slow slots after a cut)."""
    import random

    from trestfly._admission import OriginGate
    from trestfly._throttle import OriginThrottle, ThrottleSettings, Ticket

    throttle = OriginThrottle(ThrottleSettings(), 100, trio.current_time(), random.Random(0))
    throttle.learned_rate = 10.0
    gate = OriginGate(throttle)
    start = trio.current_time()
    sent: list[float] = []

    async def one() -> None:
        admitted = await gate.admit(max_wait=60.0)
        sent.append(trio.current_time() - start)
        gate.release(admitted)

    async def grow() -> None:
        await trio.sleep(0.25)
        throttle.learned_rate = 100.0  # as many paced successes would have made it
        ticket = Ticket(sent_at=0.0, in_flight_at_send=1, paced=True, probe=False)
        throttle.on_response(ticket, trio.current_time(), status=200, hint=None, quota=None)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(one)
        nursery.start_soon(grow)
    assert len(sent) == 50
    # At 10/s the 50 slots would end at 4.9 s; three were sent before the growth, the
    # rest at about 100/s after it.
    assert sorted(sent)[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert max(sent) == pytest.approx(0.25 + 46 / 100.0, abs=0.02)


async def test_a_grown_concurrency_limit_reaches_tasks_already_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttle = OriginThrottle(ThrottleSettings(), 10, trio.current_time(), random.Random(0))
    throttle.in_flight_limit.value = 1.0  # as after a cut
    gate = OriginGate(throttle)
    sent: list[float] = []

    async def attempt() -> None:
        admitted = await gate.admit(max_wait=300)
        sent.append(trio.current_time())
        await trio.sleep(1.0)  # in flight
        gate.release(admitted)

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(attempt)
        await trio.sleep(0.01)
        throttle.in_flight_limit.value = 5.0  # what answers do (growth, a settled crowd)
    # At the first answer the five queued go together, not one a second.
    assert sent == pytest.approx([0.0, 1.0, 1.0, 1.0, 1.0, 1.0])


async def test_a_probe_that_got_no_answer_is_followed_by_another_probe_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The tasks that waited for a probe cancelled in flight must not all go at once."""
    arrivals: list[float] = []
    scopes: dict[str, trio.CancelScope] = {}

    async def origin(request: httpx.Request) -> httpx.Response:
        arrivals.append(trio.current_time())
        if len(arrivals) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"})
        if len(arrivals) == 2:  # the probe: its caller gives up on it while it is in flight
            scopes[request.headers["x-task"]].cancel()
            await trio.sleep_forever()
        await trio.sleep(0.5)
        return httpx.Response(200)

    async def caller(name: str) -> None:
        with trio.CancelScope() as scopes[name]:
            await api.get("x", headers={"x-task": name})

    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=origin)
        async with TrioAPISession(url=URL, max_concurrency=10, retries=5) as api:
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for index in range(6):
                        nursery.start_soon(caller, str(index))
                        await (
                            trio.lowlevel.checkpoint()
                        )  # the first one sends alone and gets the 429
    assert sum(scope.cancelled_caught for scope in scopes.values()) == 1
    assert len(arrivals) == 7  # the 429, the cancelled probe, and the five others once each
    second_probe, *others = arrivals[2:]
    # The next probe went alone: the others only once it was answered.
    assert min(others) >= second_probe + 0.5


@pytest.mark.parametrize("closed_by", ["gate", "pacer"])
async def test_a_call_in_a_cancelled_scope_raises_cancelled(
    closed_by: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Not the gate's error: in a cancelled scope, the deadline reads as -inf."""
    settings = {"throttle": ThrottleSettings(adaptive=False, rate_limit=1.0)}
    with respx.mock:
        route = respx.get(f"{URL}/x")
        if closed_by == "gate":
            route.respond(429, headers={"Retry-After": "5"})
            settings = {}
        else:
            route.respond(200)
        async with TrioAPISession(url=URL, retries=0, **settings) as api:  # type: ignore[arg-type]
            with pytest.raises(errors.TrestflyError) if closed_by == "gate" else nullcontext():
                await api.get("x")  # closes the gate for 5 s, or spends the pacer's slot
            route.respond(200)
            with trio.CancelScope() as scope:
                scope.cancel()
                await api.get("x")
            assert scope.cancelled_caught


async def test_a_call_cancelled_as_its_retryable_answer_arrives_raises_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Not "no time left for a retry": the scope was cancelled, not out of time."""
    scope = trio.CancelScope()

    def cancel_then_503(request: httpx.Request) -> httpx.Response:
        scope.cancel()  # lands after the send, before the caller checkpoints again
        return httpx.Response(503)

    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=cancel_then_503)
        async with TrioAPISession(url=URL, retries=5) as api:
            with scope:
                await api.get("x")
    assert scope.cancelled_caught


async def test_no_request_leaves_into_a_gate_closed_while_it_queued_for_the_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Admission takes the session's slot before the attempt counts as sent: those that
    queued for it when the gate closed go back to the gate, not to the origin."""
    other = "http://other.test"
    arrivals: list[float] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(5)
        return httpx.Response(200)

    async def origin(request: httpx.Request) -> httpx.Response:
        arrivals.append(trio.current_time())
        await trio.sleep(0.01)
        if len(arrivals) == 1:
            return httpx.Response(429, headers={"Retry-After": "10"})
        return httpx.Response(200)

    with respx.mock:
        respx.get(f"{other}/slow").mock(side_effect=slow)
        respx.get(f"{URL}/x").mock(side_effect=origin)
        async with TrioAPISession(url=URL, max_concurrency=2, retries=1) as api:
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(api.get, f"{other}/slow")
                    await trio.sleep(0.001)
                    nursery.start_soon(api.get, "x")  # its 429 at 0.01 closes the gate
                    await trio.sleep(0.002)
                    nursery.start_soon(api.get, f"{other}/slow")  # the session is full
                    await trio.sleep(0.001)
                    for _ in range(5):  # admitted while the gate is open: they queue
                        nursery.start_soon(api.get, "x")
    start = arrivals[0]
    assert len(arrivals) == 7  # the 429, its retry and the five, each once
    assert all(t - start >= 10.0 for t in arrivals[1:]), arrivals


async def test_a_probe_that_queued_while_the_gate_closed_again_goes_back_to_the_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The probe after a reopening waits for the session's slot; an answer to a request
    from before (a 429 of 5 s) closes the gate meanwhile: the probe waits for that gate,
    and is not sent into it."""
    other = "http://other.test"
    sends: list[tuple[str, float, float]] = []  # path, time, the gate's end then

    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(3)
        return httpx.Response(200)

    async def origin(request: httpx.Request) -> httpx.Response:
        gate = api._gates[URL]
        sends.append((request.url.path, trio.current_time(), gate.throttle.gate_until))
        if request.url.path == "/long":
            await trio.sleep(2)  # answered after the short gate reopened
            return httpx.Response(429, headers={"Retry-After": "5"})
        if len(sends) == 2:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200)

    async def call(path: str) -> None:
        with suppress(errors.TooManyRequestsError):  # retries=0: each 429 ends its call
            await api.get(path)

    with respx.mock:
        respx.get(f"{other}/slow").mock(side_effect=slow)
        respx.get(url__startswith=URL).mock(side_effect=origin)
        async with TrioAPISession(url=URL, max_concurrency=3, retries=0) as api:
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call, "long")
                    nursery.start_soon(call, f"{other}/slow")
                    await trio.sleep(0.001)
                    nursery.start_soon(call, "short")  # a 429 of 1 s
                    await trio.sleep(0.01)
                    nursery.start_soon(call, f"{other}/slow")  # the session is full
                    await trio.sleep(1.5)  # the gate reopened: this one is the probe
                    nursery.start_soon(call, "probe")
    assert [path for path, _, _ in sends] == ["/long", "/short", "/probe"]
    assert all(sent >= gate_end for _, sent, gate_end in sends), sends
    assert sends[-1][1] >= 7.0  # after the 5 s gate that /long's answer closed at 2 s


async def test_a_probe_waiter_cancelled_as_it_wakes_raises_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A waiter for the probe, woken by its answer and cancelled in the same step (the
    probe's failure cancels the nursery), leaves as Cancelled, not with the gate's
    error: in a cancelled scope the deadline reads as -inf."""

    async def slow_429(request: httpx.Request) -> httpx.Response:
        await trio.sleep(0.5)
        return httpx.Response(429, headers={"Retry-After": "1"})

    outcomes: list[str] = []

    async def call() -> None:
        try:
            await api.get("x")
        except BaseException as exc:
            outcomes.append(type(exc).__name__)
            raise

    with respx.mock:
        route = respx.get(f"{URL}/x").mock(side_effect=slow_429)
        async with TrioAPISession(url=URL, retries=0) as api:
            with pytest.raises(errors.TooManyRequestsError):
                await api.get("x")  # closes the gate for 1 s
            with pytest.raises(ExceptionGroup) as group, trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call)  # the probe, answered 429 again
                    nursery.start_soon(call)  # waits for the probe
    assert sorted(outcomes) == ["Cancelled", "TooManyRequestsError"]
    assert group.value.subgroup(errors.TooManyRequestsError) is not None
    assert route.call_count == 2


async def test_a_retrying_call_refused_by_the_pacer_raises_its_last_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Not a bare TimeoutError: the call's own last answer (or transport failure)."""
    with respx.mock:
        route = respx.get(f"{URL}/x").respond(503, text="down")
        async with TrioAPISession(url=URL, rate_limit=1.0, backoff=0.01, retries=3) as api:
            with trio.move_on_after(0.5), pytest.raises(errors.ServiceUnavailableError) as info:
                await api.get("x")
            assert info.value.retries == 1 and "body=down" in str(info.value)
            assert 0 < (info.value.retry_after or 0) <= 1.0  # the pacer's slot, not a hint
            await trio.sleep(2)  # the pacer's next slot is due again
            route.side_effect = httpx.ConnectError("refused")
            with trio.move_on_after(0.5), pytest.raises(errors.ConnectionError) as failed:
                await api.get("x")
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert "the pacer's next slot" in str(failed.value)


async def test_a_windows_rounds_go_a_window_apart_without_meeting_the_spent_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 60 a second in windows aligned to t=0, whole-second Retry-After.  The rounds are
    # timed from the first reopening: a window's quota at once, then nothing until the
    # next window, so the only 429s are the first wave's, and none arrives early.
    quota = 60
    rule = WholeSecondWindow(quota)
    recorder = Recorder(rule, latency=0.01)
    await get_from_tasks(recorder, 30, 12, retries=5)
    served_in, refused_at = rule.served_in, rule.refused_at
    assert sum(served_in.values()) == 360
    assert [served_in.get(window, 0) for window in range(6)] == [quota] * 6
    assert refused_at and max(refused_at) < 0.1  # the first wave's only
    early = [t for t in recorder.arrivals if any(d < t < i for d, i in rule.announced)]
    assert early == []


async def test_a_call_that_cannot_wait_for_the_next_round_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Between two timed rounds nothing goes: a call whose deadline ends before the next
    # round is refused with a timeout naming the wait, not sent into the spent window.
    rule = WholeSecondWindow(60)
    served_in = rule.served_in
    recorder = Recorder(rule, latency=0.01)
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=recorder)
        async with TrioAPISession(url=URL, retries=5) as api:
            await run_tasks(70, lambda: api.get("x"))  # the first wave: 60, then 10 after 1 s
            await run_tasks(50, lambda: api.get("x"))  # the rest of the second window's round
            assert trio.current_time() < 1.2 and served_in == {0: 60, 1: 60}
            arrivals = len(recorder.arrivals)
            with trio.move_on_after(0.5), pytest.raises(errors.TimeoutError) as info:
                await api.get("x")
            assert "s away" in str(info.value)
            assert len(recorder.arrivals) == arrivals  # nothing was sent


@pytest.mark.parametrize("limit", [10, 25])
async def test_a_small_fixed_window_stays_served_in_full(
    limit: int, autojump_clock: trio.testing.MockClock
) -> None:
    """A fixed window of ``limit`` a second, Retry-After to its end (fractional), 20
    tasks.  Its quota is under TRUSTED_SAMPLE, so it is taken for a bucket's burst and
    rounds send it again at each reopening; the paced request after the round met the
    spent window every second, and each such 429 cut the rate: served in full every
    second, the rate sank to 3/s and then the windows went unfilled (0.13-0.26 of the
    limit from 40 to 80 s)."""
    served: list[float] = []
    window = {"start": 0.0, "count": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        await trio.sleep(0.025)
        now = trio.current_time()
        start = math.floor(now)
        if start != window["start"]:
            window["start"], window["count"] = start, 0
        if window["count"] >= limit:
            return httpx.Response(429, headers={"Retry-After": f"{start + 1.0 - now:.3f}"})
        window["count"] += 1
        served.append(now)
        return httpx.Response(200)

    async def worker(api: TrioAPISession) -> None:
        for _ in range(10_000):  # bounded: 80 s at the limit is at most 2,000 each
            if trio.current_time() >= 80:
                return
            await api.get("x")

    api = TrioAPISession(
        url=URL, transport=httpx.MockTransport(handler), max_concurrency=20, retries=50
    )
    async with api, trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(worker, api)
    late = sum(1 for at in served if 40 <= at < 80)
    assert late >= 0.9 * limit * 40, late / (limit * 40)


class _SlowBody(httpx.AsyncByteStream):
    """A body that takes ``delay`` seconds to arrive after the headers."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await trio.sleep(self.delay)
        yield b'{"error": "slow down"}'


async def test_a_short_hint_on_a_slow_body_closes_the_gate_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The gate closes when the headers arrive, for the hint from then.  Closed again
    # from when the body had arrived, 5 ms later, it reopened twice: a probe went at
    # the first reopening, and a second at the next, into the room the first had taken
    # (a 100/s bucket one token deep refused it, and that refusal cut the rate again).
    sends: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sends.append(trio.current_time())
        if len(sends) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.001"}, stream=_SlowBody(0.005))
        return httpx.Response(200, json={})

    async with TrioAPISession(url=URL, transport=httpx.MockTransport(handler)) as api:
        await api.get("x")
        origin = api.stats.origins[URL]
    assert origin.gate_trips == 1
    assert len(sends) == 2


async def test_a_reopening_before_the_first_waves_successes_sends_only_the_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Twenty at once: fifteen refused at once with Retry-After: 0.01, five served 50 ms
    # later.  The gate reopens with nothing learned; the probe goes, and the others
    # wait for the five (they went at once after the probe, as many again as had just
    # been refused), then go paced at the rate those five tell.
    sends: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        index = len(sends)
        sends.append(trio.current_time())
        if index < 5:
            await trio.sleep(0.05)
            return httpx.Response(200, json={})
        if index < 20:
            await trio.sleep(0.001)  # the whole wave is sent before the first answer
            return httpx.Response(429, headers={"Retry-After": "0.01"})
        return httpx.Response(200, json={})

    session = TrioAPISession(url=URL, transport=httpx.MockTransport(handler))
    async with session as api, trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(api.get, "x")
    retries = sends[20:]
    assert len(retries) == 15
    probe = retries[0]
    assert 0.01 <= probe < 0.05
    assert all(sent >= 0.05 for sent in retries[1:]), retries
    assert retries[-1] > retries[1]  # paced, not all at once


@pytest.mark.parametrize("status", [429, 503])
async def test_a_probe_held_by_the_clients_rate_limit_is_not_bounded_by_max_retry_after(
    autojump_clock: trio.testing.MockClock, status: int
) -> None:
    # rate_limit=0.1 spaces sends 10 s apart: the client's own doing, which only the
    # caller's deadline bounds.  After a 429 asking for 1 s, the probe waiting out that
    # interval was held to max_retry_after=5: the call failed at once, unsent, with
    # retry_after=8.99 (the client's interval, not the server's), and so did every call
    # after it until the interval had passed.
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        if len(sent) == 1:
            return httpx.Response(status, headers={"Retry-After": "1"})
        return httpx.Response(200)

    with trio.fail_after(100):
        async with TrioAPISession(
            url="http://api.test",
            transport=httpx.MockTransport(answer),
            rate_limit=0.1,
            max_retry_after=5,
            retry_budget=BudgetSettings(enabled=False),
        ) as api:
            response = await api.get("x")
            assert response.status_code == 200
            later = await api.get("x")
            assert later.status_code == 200
    assert sent == pytest.approx([0.0, 10.0, 20.0])
