"""Sessions sharing throttling state through a coordination (memory store, MockClock).

Two sessions with one :class:`MemoryCoordination` stand for two workers with one Redis:
the code paths are the same (only the store differs; the Redis store has its own tests
against a real server in test_redis_coordination.py).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
import trio
import trio.lowlevel

from trestfly import (
    Coordination,
    MemoryCoordination,
    TrioAPISession,
    errors,
)
from trestfly._admission import OriginGate
from trestfly._coordination import remote_gate_end
from trestfly._shared_state import (
    MAX_CLOSE_FOR,
    Reservation,
    SharedQuotaBook,
    SyncReply,
    SyncRequest,
)
from trestfly._throttle import OriginThrottle, ThrottleSettings

URL = "http://api.test"


class Arrivals:
    """A respx side effect: records (time, worker) and answers from a rule."""

    def __init__(self, rule: object) -> None:
        self.rule = rule
        self.log: list[tuple[float, str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        now = trio.current_time()
        self.log.append((now, request.headers.get("x-worker", "?")))
        await trio.sleep(0.01)
        return self.rule(request, now)  # type: ignore[operator]


class _Worker(TrioAPISession):
    """A session whose requests say which worker sent them (an ``x-worker`` header)."""

    async def _authenticate(self, *, worker: str) -> None:
        self._session.headers["x-worker"] = worker


def worker(name: str, coordination: Coordination, **kwargs: object) -> TrioAPISession:
    return _Worker(url=URL, retries=10, coordination=coordination, worker=name, **kwargs)  # type: ignore[arg-type]


def first_429_to_a(announced: list[float]) -> Callable[[httpx.Request, float], httpx.Response]:
    """A rule: worker a's first request gets a 429 for 2 s (its end goes in ``announced``)."""

    def rule(request: httpx.Request, now: float) -> httpx.Response:
        if request.headers["x-worker"] == "a" and not announced:
            announced.append(now + 0.01 + 2.0)  # delivered after the latency
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200)

    return rule


def test_a_memory_coordination_opened_in_another_trio_run_starts_empty() -> None:
    # Its book is timed by the last run's clock: a session owning it started afresh in
    # a new run, and the old 429 came back from the shared gate as a wait of hours.
    answers = iter([httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200)])
    api = TrioAPISession(
        url=URL,
        transport=httpx.MockTransport(lambda r: next(answers)),
        coordination=MemoryCoordination(),
        retries=0,
    )

    async def use() -> int:
        with trio.fail_after(1):  # a gate left closed fails, never hangs
            async with api:
                return (await api.get("x")).status_code

    # Both MockClocks start at 0: the last run's gate is still closed by this run's clock.
    with pytest.raises(errors.TooManyRequestsError):
        trio.run(use, clock=trio.testing.MockClock(autojump_threshold=0))
    assert trio.run(use, clock=trio.testing.MockClock(autojump_threshold=0)) == 200


def test_a_store_down_in_the_last_trio_run_is_tried_again_at_once_in_the_next() -> None:
    # When it went down is an instant of the last run's clock: a run whose clock was
    # behind waited for it (hours on Trio's own clocks) with local-only throttling.
    class FlakyStore(MemoryCoordination):
        down = False

        async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
            if self.down:
                raise ConnectionRefusedError("the store is down")
            return await super()._store_sync(key, request)

    store = FlakyStore()
    api = TrioAPISession(
        url=URL, coordination=store, transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )

    async def use(*, clock_at: float, fail: bool) -> bool:
        await trio.sleep(clock_at)
        async with api:
            await api.get("x")
            store.down = fail
            store.wake()
            await trio.sleep(5 * store.retry_interval)
            return store.healthy

    def run(**options: Any) -> bool:
        return trio.run(lambda: use(**options), clock=trio.testing.MockClock(autojump_threshold=0))

    assert run(clock_at=10_000, fail=True) is False
    assert run(clock_at=0, fail=False) is True


async def test_a_429_seen_by_one_worker_closes_the_gate_for_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    announced: list[float] = []

    arrivals = Arrivals(first_429_to_a(announced))
    coordination = MemoryCoordination()
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=arrivals)
        async with coordination, worker("a", coordination) as a, worker("b", coordination) as b:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.get, "x")  # the 429, then the retry after the gate
                await trio.sleep(0.5)  # the gate a's 429 closed is shut for 1.5 s more
                assert announced and b.stats.origins == {}  # b has not sent yet
                await b.get("x")  # its first request joins the key: the shared gate
            assert coordination.stats.syncs > 0
    # b's request waited for the instant a's 429 announced.  (It used to be sent after
    # a's retry, when the gate had reopened anyway: it passed without any sharing.)
    until = announced[0]
    assert [who for t, who in arrivals.log[1:] if t < until] == []
    assert sorted(who for _, who in arrivals.log) == ["a", "a", "b"]


async def test_a_worker_that_never_saw_the_429_waits_at_the_shared_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    announced: list[float] = []

    arrivals = Arrivals(first_429_to_a(announced))
    coordination = MemoryCoordination()
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=arrivals)
        async with coordination, worker("a", coordination) as a, worker("b", coordination) as b:
            await b.get("x")  # b's origin is joined to the key before the 429

            async def b_keeps_sending() -> None:
                for _ in range(20):
                    await b.get("x")
                    await trio.sleep(0.1)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(b_keeps_sending)
                await trio.sleep(0.35)
                await a.get("x")
            assert b.stats.coordination is not None
            assert b.stats.coordination.remote_closures >= 1
            assert b.stats.origins[URL].gate_trips >= 1
    until = announced[0]
    late = [(t, who) for t, who in arrivals.log if announced and until - 2.0 < t < until]
    # Only b's request already in flight (sent before the sync reached it) may arrive.
    assert len(late) <= 1


async def test_the_learned_rate_is_shared_and_cut_once_per_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A token bucket of 10/s: both workers learn one rate, the pair keeps under it."""
    bucket = {"tokens": 5.0, "at": 0.0}

    def rule(request: httpx.Request, now: float) -> httpx.Response:
        bucket["tokens"] = min(5.0, bucket["tokens"] + (now - bucket["at"]) * 10.0)
        bucket["at"] = now
        if bucket["tokens"] >= 1.0:
            bucket["tokens"] -= 1.0
            return httpx.Response(200)
        return httpx.Response(429, headers={"Retry-After": f"{(1 - bucket['tokens']) / 10:.3f}"})

    arrivals = Arrivals(rule)
    coordination = MemoryCoordination()
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=arrivals)
        async with coordination, worker("a", coordination) as a, worker("b", coordination) as b:

            async def crawl(session: TrioAPISession) -> None:
                await session.map(lambda _: session.get("x"), range(100), limit=10)

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(crawl, a)
                nursery.start_soon(crawl, b)
            elapsed = trio.current_time() - start
            rate_a = a.stats.origins[URL].learned_rate
            rate_b = b.stats.origins[URL].learned_rate
    sent = len(arrivals.log)
    assert sent / 200 <= 1.3  # few 429s per success, for the pair
    assert 200 / elapsed >= 0.8 * 10.0  # the pair together near the bucket's rate
    assert rate_a is not None and rate_b is not None
    assert rate_a == pytest.approx(rate_b, rel=0.2)  # one rate, not one per worker
    # ... and it is the pair's rate (10/s), not a share of it per worker (about 5/s
    # each, as local-only learning finds) nor twice it.
    assert 7.0 <= rate_a <= 15.0


async def test_the_session_opens_and_closes_a_coordination_it_was_given_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    coordination = MemoryCoordination()
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with TrioAPISession(url=URL, coordination=coordination) as api:
            assert coordination.is_open
            await api.get("x")
        assert not coordination.is_open
        assert api.stats.coordination is not None
        assert api.stats.coordination.backend == "memory"
        # Opened again, the session joins its origins to the coordination again.
        async with api:
            await api.get("x")
            assert coordination._links


async def test_a_session_left_on_a_coordination_closed_under_it_goes_local_at_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    coordination = MemoryCoordination()
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        respx.get("http://other.test/y").mock(return_value=httpx.Response(200))
        first = TrioAPISession(url=URL, coordination=coordination)
        await first.__aenter__()  # opens the coordination, for its own lifetime
        async with TrioAPISession(url=URL, coordination=coordination) as second:
            await first.get("x")
            await first.__aexit__(None, None, None)
            # `first` opened it, so leaving closed it; `second` still holds it.
            assert not coordination.is_open
            start = trio.current_time()
            for _ in range(20):
                await second.get("http://other.test/y")
            # Not the store's timeout (50 ms) per request, waiting for a sync that
            # nothing will ever run.
            assert trio.current_time() - start < coordination.timeout
    assert "coordination is closed" in caplog.text


async def test_a_failing_last_sync_still_closes_the_coordination_the_session_opened(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordination = MemoryCoordination()

    async def broken_detach(links: object) -> None:
        raise ValueError("a bad reply from the store")

    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        with pytest.raises(ValueError, match="bad reply"):
            async with TrioAPISession(url=URL, coordination=coordination) as api:
                await api.get("x")
                monkeypatch.setattr(coordination, "detach_all", broken_detach)
    # Its background task did not outlive the session.
    assert not coordination.is_open


async def test_callers_refused_past_their_deadline_do_not_push_the_shared_pacer_ahead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent: list[float] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        return httpx.Response(200)

    coordination = MemoryCoordination()
    refused = 0
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=record)
        async with (
            coordination,
            TrioAPISession(url=URL, rate_limit=10, coordination=coordination) as one,
            TrioAPISession(url=URL, rate_limit=10, coordination=coordination) as other,
        ):

            async def call(api: TrioAPISession) -> None:
                nonlocal refused
                try:
                    await api.get("x", deadline=1.0)
                except errors.TimeoutError:
                    refused += 1

            async with trio.open_nursery() as nursery:
                for i in range(200):  # 20 calls a second for 10 s against 10/s shared
                    nursery.start_soon(call, one if i % 2 else other)
                    await trio.sleep(0.05)
    late = [t for t in sent if t - sent[0] >= 5.0]
    # The shared pacer keeps serving its rate; it served nothing once refusals began.
    assert len(late) >= 45 and refused >= 80


async def test_a_coordination_the_user_opened_outlives_the_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with MemoryCoordination() as coordination:
            async with TrioAPISession(url=URL, coordination=coordination) as api:
                await api.get("x")
            assert coordination.is_open
            assert coordination._links == []  # the closed session left


class FlakyStore(Coordination):
    """A store that fails while ``down`` is set (like an unreachable Redis)."""

    backend_name = "flaky"

    def __init__(self) -> None:
        super().__init__(retry_interval=0.5)
        self.down = False
        self.book = SharedQuotaBook()

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        if self.down:
            raise ConnectionRefusedError("store is down")
        now = trio.current_time()
        return self.book.get(key, now).sync(now, request, self.key_ttl)

    async def _store_reserve(self, key: str, interval: float, burst: int) -> Reservation:
        if self.down:
            raise ConnectionRefusedError("store is down")
        now = trio.current_time()
        return self.book.get(key, now).reserve(now, interval, burst, self.key_ttl)


async def test_a_failed_store_means_local_only_with_one_warning_per_episode(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    caplog.set_level(logging.INFO, logger="trestfly.coordination")
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with TrioAPISession(url=URL, coordination=store) as api:
            await api.get("x")
            await trio.sleep(0.1)
            store.down = True
            for _ in range(50):  # never stalls, never fails
                await api.get("x")
                await trio.sleep(0.05)
            stats = api.stats.coordination
            assert stats is not None and not stats.healthy and stats.failures >= 1
            store.down = False
            await trio.sleep(1.0)
            assert api.stats.coordination is not None and api.stats.coordination.healthy
            store.down = True
            await trio.sleep(1.0)
    messages = [record.getMessage() for record in caplog.records]
    down = "shared throttling state unavailable, continuing with local-only throttling"
    assert messages.count(down) == 2  # one per episode, not one per failed call
    assert messages.count("shared throttling state reachable again") == 1
    assert all(getattr(r, "trestfly_backend", None) == "flaky" for r in caplog.records)


class SlowStore(FlakyStore):
    """A store that answers, but later than the coordination's timeout."""

    async def _store_reserve(self, key: str, interval: float, burst: int) -> Reservation:
        await trio.sleep(10.0)
        raise AssertionError("the timeout should have ended this call")


async def test_a_gate_that_ended_unannounced_does_not_wake_a_sync_per_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A gate closed while the store was down ends before any sync announces it: it is
    no news.  It woke the sync loop after every response from then on (a store round
    per response, each syncing every link)."""
    store = FlakyStore()
    store.sync_interval = 0.02
    store.retry_interval = 0.1
    async with store:
        throttle = OriginThrottle(ThrottleSettings(), 10, trio.current_time(), random.Random(0))
        link = store.attach("https://api.example.com", throttle)
        await link.join()

        async def syncs_over_responses() -> int:
            before = store.stats.syncs
            for _ in range(500):  # 1,000 responses a second for half a second
                link.notice()  # what the session calls after each response
                await trio.sleep(0.001)
            return store.stats.syncs - before

        baseline = await syncs_over_responses()
        store.down = True
        store.wake()
        await trio.sleep(0.01)
        now = trio.current_time()
        throttle.close_early(now, now + 0.05)  # a 429 of 50 ms while the store is down
        link.notice()
        store.down = False
        await trio.sleep(0.3)  # the store is back, the gate long over
        assert store.healthy and throttle.gate_until < trio.current_time()
        assert baseline <= 30 and await syncs_over_responses() <= baseline + 5


class RuntimeFailingStore(FlakyStore):
    """A store whose client fails with something other than a store error (coredis's
    RuntimeError for a client closed under the coordination, a ValueError for a reply
    it cannot read)."""

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        if self.down:
            raise RuntimeError("Connection pool is not initialized")
        return await super()._store_sync(key, request)


async def test_any_store_failure_means_local_only_and_never_cancels_the_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # It escaped the background task: the caller's block was cancelled, and the
    # failure came out of `async with` wrapped in an ExceptionGroup.
    store = RuntimeFailingStore()
    store.down = True
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with TrioAPISession(url=URL, coordination=store) as api:
            for _ in range(5):
                await api.get("x")
                await trio.sleep(0.2)
            stats = api.stats.coordination
            assert stats is not None and not stats.healthy and stats.failures >= 1
    assert not store.is_open


async def test_a_gate_learned_from_a_reservation_is_not_announced_back_as_new(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Worker B finds A's gate through a reservation; its next sync announced that gate
    as its own, and the store (a round trip away) extended it for every worker."""
    a = DistantStore(quota_key=lambda origin: "quota", sync_interval=10.0)
    b = DistantStore(quota_key=lambda origin: "quota", sync_interval=10.0)
    a.timeout = b.timeout = 1.0  # the round trip is 10 ms
    b._book = a._book  # two processes, one store
    async with a, b:
        settings = ThrottleSettings(rate_limit=100.0)
        ta = OriginThrottle(settings, 10, trio.current_time(), random.Random(0))
        tb = OriginThrottle(settings, 10, trio.current_time(), random.Random(1))
        la, lb = a.attach("https://a.test", ta), b.attach("https://b.test", tb)
        await la.join()
        await lb.join()
        now = trio.current_time()
        ta.close_early(now, now + 1.0)  # A's 429 with Retry-After: 1
        la.notice()
        await trio.sleep(0.1)
        announced = a._book.find("quota", trio.current_time()).gate_until
        assert await OriginGate(tb, lb)._reserve_shared(100.0, math.inf) is None  # closed
        b.wake()  # B's next sync
        await trio.sleep(0.1)
        assert a._book.find("quota", trio.current_time()).gate_until == announced
        a.wake()
        await trio.sleep(0.1)
        assert ta.gate_until == now + 1.0 and a.stats.remote_closures == 0


async def test_a_slow_store_costs_at_most_its_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = SlowStore()
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        # Paced by a client-side limit, so every send asks the store for a slot.
        async with TrioAPISession(url=URL, coordination=store, rate_limit=100.0) as api:
            start = trio.current_time()
            for _ in range(5):
                await api.get("x")
            # The first call waits out the timeout; the rest go local-only at once
            # (five timeouts would be 0.25 s; pacing at 100/s adds at most 0.1 s).
            assert trio.current_time() - start < store.timeout + 0.1
            assert api.stats.coordination is not None
            assert api.stats.coordination.failures == 1


def test_bad_settings_are_named() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="sync_interval"):
        MemoryCoordination(sync_interval=0)
    with pytest.raises(errors.UnexpectedValueError, match="key_ttl"):
        MemoryCoordination(key_ttl=float("inf"))
    with pytest.raises(errors.UnexpectedValueError, match="quota_key must be callable"):
        MemoryCoordination(quota_key="api-key-1")  # type: ignore[arg-type]
    with pytest.raises(errors.UnexpectedValueError, match="coordination must be"):
        TrioAPISession(url=URL, coordination="redis://localhost")  # type: ignore[arg-type]


async def test_a_bad_quota_key_is_named(autojump_clock: trio.testing.MockClock) -> None:
    coordination = MemoryCoordination(quota_key=lambda origin: "{tagged}")
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with TrioAPISession(url=URL, coordination=coordination) as api:
            with pytest.raises(errors.UnexpectedValueError, match="quota_key"):
                await api.get("x")


async def test_a_coordination_cannot_be_opened_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with MemoryCoordination() as coordination:
        with pytest.raises(errors.TrestflyError, match="already open"):
            await coordination.__aenter__()


class LaggingStore(FlakyStore):
    """A store whose syncs take 30 ms: within the timeout, longer than the sync interval."""

    def __init__(self) -> None:
        super().__init__()
        self.sync_times: list[float] = []

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        await trio.sleep(0.03)
        self.sync_times.append(trio.current_time())
        return await super()._store_sync(key, request)


async def test_the_last_sync_never_runs_beside_another(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Closing the session while the background loop's sync is in flight: every success
    is counted once in the store (both syncs would otherwise push the same ones)."""
    store = LaggingStore()
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with store:
            for _ in range(5):
                async with TrioAPISession(url=URL, coordination=store) as api:
                    for _ in range(7):
                        await api.get("x")
                        await trio.sleep(0.011)  # syncs keep overlapping the requests
            assert store.book.get(URL, trio.current_time()).successes == 5 * 7


async def test_the_first_request_to_an_origin_waits_for_the_first_sync(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """So that the store's success count is a baseline read before this worker adds to
    it (others' successes are then told apart from ours)."""
    store = LaggingStore()
    arrivals: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        arrivals.append(trio.current_time())
        return httpx.Response(200)

    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=answer)
        async with TrioAPISession(url=URL, coordination=store) as api:
            await api.get("x")
    assert store.sync_times and arrivals[0] >= store.sync_times[0]


class _OtherTasksSteps(trio.abc.Instrument):
    """Counts the steps of every task but the one that installed it."""

    def __init__(self) -> None:
        self.steps = 0
        self._mine = trio.lowlevel.current_task()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is not self._mine:
            self.steps += 1


async def test_a_failed_store_with_no_session_left_waits_instead_of_spinning(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FlakyStore()
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with store:
            async with TrioAPISession(url=URL, coordination=store) as api:
                await api.get("x")
                store.down = True
                store.wake()
                await trio.sleep(0.1)
                assert not store.healthy
            # Past the first retry, by a jump: a spinning loop never lets the clock
            # jump by itself, so a sleep would hang here instead of failing below.
            autojump_clock.jump(2 * store.retry_interval)
            steps = _OtherTasksSteps()  # the coordination's loop, by then
            trio.lowlevel.add_instrument(steps)
            for _ in range(100):
                await trio.lowlevel.checkpoint()
            trio.lowlevel.remove_instrument(steps)
            # Its one due retry, at most; a spinning loop took a step per pass: about 100.
            assert steps.steps <= 2
            # A session that attaches wakes it: the store is tried again, and is back.
            store.down = False
            async with TrioAPISession(url=URL, coordination=store) as api:
                await api.get("x")
                await trio.sleep(0.1)
                assert store.healthy


async def test_a_free_shared_slot_is_taken_with_max_retry_after_zero(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """max_retry_after=0: a pacer slot 0 s away is taken, through a coordination as
    without one (the store only quoted it, and the request failed with TimeoutError)."""
    coordination = MemoryCoordination()
    with respx.mock:
        route = respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with (
            coordination,
            TrioAPISession(
                url=URL, rate_limit=5.0, max_retry_after=0, coordination=coordination
            ) as api,
        ):
            await api.get("x", box=False)
            assert api.stats.coordination is not None
            assert api.stats.coordination.reservations >= 1
    assert route.call_count == 1


class RecordingStore(MemoryCoordination):
    """A memory store that keeps every sync request it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[SyncRequest] = []

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        self.requests.append(request)
        return await super()._store_sync(key, request)


async def test_an_absurd_retry_after_is_announced_for_at_most_max_close_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 20-digit Retry-After closes the gate here for as long as it says, but the
    store is told MAX_CLOSE_FOR: a number every store can hold (Redis failed on it)."""
    store = RecordingStore()
    with respx.mock:
        respx.get(f"{URL}/x").mock(
            return_value=httpx.Response(429, headers={"Retry-After": "9" * 20})
        )
        async with store, TrioAPISession(url=URL, coordination=store) as api:
            with pytest.raises(errors.APIError):
                await api.get("x")
            await trio.sleep(0.1)  # a few syncs
            [gate] = api._gates.values()
            assert gate.throttle.gate_until > 1e19  # closed here for what it said
    announced = [r.close_for for r in store.requests if r.close_for is not None]
    assert announced and max(announced) <= MAX_CLOSE_FOR
    assert store.stats.remote_closures == 0  # the capped echo is not someone else's gate


class DistantStore(MemoryCoordination):
    """A memory store 5 ms away each way (a Redis across a network)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.gate_announced = trio.Event()

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        if request.close_for is not None:
            self.gate_announced.set()
        await trio.sleep(0.005)
        reply = await super()._store_sync(key, request)
        await trio.sleep(0.005)
        return reply

    async def _store_reserve_within(
        self, key: str, interval: float, burst: int, max_wait: float
    ) -> Reservation:
        await trio.sleep(0.005)
        reservation = await super()._store_reserve_within(key, interval, burst, max_wait)
        await trio.sleep(0.005)
        return reservation


async def test_a_workers_own_gate_coming_back_is_not_a_remote_closure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With the store a round trip (10 ms) away, more than GATE_TOLERANCE: a's own
    announcement comes back as the store's gate; it must neither move a's gate nor
    count as a closure, while b, which never saw the 429, adopts it."""
    announced: list[float] = []
    store = DistantStore()
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=Arrivals(first_429_to_a(announced)))
        async with store, worker("a", store) as a, worker("b", store) as b:
            await b.get("x")  # b's origin joins the key
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.get, "x")  # the 429, then the retry after the gate
                await store.gate_announced.wait()  # a's gate closed, the echo not back
                [gate] = a._gates.values()
                own = gate.throttle.gate_until
                await trio.sleep(0.2)  # many syncs
                assert gate.throttle.gate_until == own
            [b_gate] = b._gates.values()
            assert b_gate.throttle.gate_until >= own
    assert store.stats.remote_closures == 1  # b's adoption, not a's echo


def test_the_echo_of_our_own_gate_is_told_from_another_workers() -> None:
    """Sent at 10.000, answered at 10.010; our gate ends at 12.000.  The store's gate
    ends between sent + remaining and answered + remaining: ours if the earliest fits."""
    assert remote_gate_end(2.0, 10.0, 10.01, 12.0) is None  # our own, a round trip later
    assert remote_gate_end(2.004, 10.0, 10.01, 12.0) is None  # within GATE_TOLERANCE
    assert remote_gate_end(2.1, 10.0, 10.01, 12.0) == pytest.approx(12.11)  # the latest end
    assert remote_gate_end(0.0, 10.0, 10.01, -math.inf) is None  # open


def _record_sends(sent: list[float]) -> None:
    """Answer GET /x (in an active respx mock) with ``{}``, noting when each was sent."""

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        return httpx.Response(200, json={})

    respx.get(f"{URL}/x").mock(side_effect=record)


async def _cancel_four_waiters(
    first: TrioAPISession, then: TrioAPISession, sent: list[float]
) -> float:
    """At 1/s: one send, four waiters reserving the next four slots and cancelled at
    0.5 s, then one more request (of ``then``): how long after the first it went."""
    start = trio.current_time()
    await first.get("x", box=False)
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(first.get, "x")
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    await then.get("x", box=False)
    return sent[-1] - start


@pytest.mark.parametrize("next_by", ["same", "other"])
async def test_slots_of_cancelled_waiters_are_given_back_to_the_store(
    autojump_clock: trio.testing.MockClock, next_by: str
) -> None:
    """As with the local pacer, the next request (of any worker) goes at the first slot
    the cancelled waiters left, not after theirs: it waited 5 s, not 1 s."""
    sent: list[float] = []
    coordination = MemoryCoordination()
    with respx.mock:
        _record_sends(sent)
        async with (
            coordination,
            TrioAPISession(url=URL, rate_limit=1.0, coordination=coordination) as one,
            TrioAPISession(url=URL, rate_limit=1.0, coordination=coordination) as other,
        ):
            delay = await _cancel_four_waiters(one, one if next_by == "same" else other, sent)
    assert delay == pytest.approx(1.0, abs=0.01)
    assert len(sent) == 2


class SlowReply(MemoryCoordination):
    """A store whose answer to a reservation takes half the timeout to come back."""

    async def _store_reserve_within(
        self, key: str, interval: float, burst: int, max_wait: float
    ) -> Reservation:
        reservation = await super()._store_reserve_within(key, interval, burst, max_wait)
        await trio.sleep(self.timeout / 2)  # reserved in the store, the answer on its way
        return reservation


async def test_a_waiter_cancelled_while_the_store_answers_gives_its_slot_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled while the store's answer was on its way, the waiter lost the slot the
    store had reserved for it: the next request went at 2 s, not at 1 s.  It waits for
    the answer (within the timeout) and gives the slot back."""
    sent: list[float] = []
    store = SlowReply()
    with respx.mock:
        _record_sends(sent)
        async with store, TrioAPISession(url=URL, rate_limit=1.0, coordination=store) as api:
            await api.get("x", box=False)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(api.get, "x")
                await trio.sleep(store.timeout / 4)  # inside the store call
                cancelled_at = trio.current_time()
                nursery.cancel_scope.cancel()
            assert trio.current_time() - cancelled_at <= store.timeout
            await api.get("x", box=False)
    assert len(sent) == 2
    assert sent[1] - sent[0] == pytest.approx(1.0, abs=store.timeout)


class StuckGiveBack(MemoryCoordination):
    """A store whose give-back never answers, or fails."""

    def __init__(self, fails: bool) -> None:
        super().__init__()
        self.fails = fails
        self.calls = 0

    async def _store_give_back(self, key: str, slot: float, schedule: int) -> bool:
        self.calls += 1
        if self.fails:
            raise RuntimeError("the store broke")
        await trio.sleep(10.0)
        raise AssertionError("the timeout should have ended this call")


@pytest.mark.parametrize("fails", [False, True], ids=["stuck", "failing"])
async def test_a_give_back_is_bounded_and_never_masks_the_cancellation(
    autojump_clock: trio.testing.MockClock, fails: bool
) -> None:
    """The give-back runs shielded, as the waiter leaves by cancellation: it may cost
    the coordination's timeout, never more, and a store failing there goes local-only
    instead of replacing the Cancelled (the nursery would raise it)."""
    store = StuckGiveBack(fails)
    with respx.mock:
        respx.get(f"{URL}/x").mock(return_value=httpx.Response(200))
        async with store, TrioAPISession(url=URL, rate_limit=1.0, coordination=store) as api:
            await api.get("x")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(api.get, "x")
                await trio.sleep(0.5)
                cancelled_at = trio.current_time()
                nursery.cancel_scope.cancel()
            assert trio.current_time() - cancelled_at <= store.timeout + 1e-9
            assert store.calls == 1
            assert api.stats.coordination is not None
            assert not api.stats.coordination.healthy


async def test_a_gate_the_store_forgot_is_announced_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A store that restarts empty (a Redis without persistence) while a gate is closed
    hears it again from the worker that closed it, so a worker joining later waits."""
    announced: list[float] = []

    arrivals = Arrivals(first_429_to_a(announced))
    coordination = MemoryCoordination()
    with respx.mock:
        respx.get(f"{URL}/x").mock(side_effect=arrivals)
        a, b = worker("a", coordination), worker("b", coordination)
        async with coordination, a, b, trio.open_nursery() as nursery:
            nursery.start_soon(a.get, "x")  # the 429, then the retry after the gate
            await trio.sleep(0.2)  # a's gate is announced to the store
            assert announced
            coordination._book = SharedQuotaBook()  # the store restarts empty
            await trio.sleep(0.3)
            await b.get("x")  # b joins the key after the restart
    until = announced[0]
    assert [who for t, who in arrivals.log[1:] if t < until] == []
    assert sorted(who for _, who in arrivals.log) == ["a", "a", "b"]


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


async def test_waiters_for_store_slots_when_the_block_ends_get_a_trestfly_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Six calls wait for store slots (four holders, two queued behind them) when the
    session leaves the coordination: each asserted the detached link."""
    coordination = MemoryCoordination()
    api = TrioAPISession(
        url=URL,
        transport=httpx.MockTransport(_ok),
        rate_limit=1.0,
        coordination=coordination,
        max_retry_after=100,
    )
    caught: list[Exception] = []

    async def call(i: int) -> None:
        try:
            await api.get(f"x/{i}")
        except Exception as exc:
            caught.append(exc)

    async with coordination, trio.open_nursery() as nursery, api:
        await api.get("first")
        for i in range(6):
            nursery.start_soon(call, i)
        await trio.sleep(0.5)
    assert len(caught) == 6
    assert all(isinstance(exc, errors.SessionNotOpenError) for exc in caught), caught


async def test_a_store_waiter_cancelled_as_the_block_ends_gets_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A waiter left waiting after the block (cancelled then) got Cancelled; now the
    # block's end ends its wait at once ("not open"), and a cancellation of the caller
    # in the same step must still win over it.
    coordination = MemoryCoordination()
    api = TrioAPISession(
        url=URL, transport=httpx.MockTransport(_ok), rate_limit=0.5, coordination=coordination
    )
    scope = trio.CancelScope()
    raised: list[BaseException] = []

    async def call() -> None:
        with scope:
            try:
                await api.get("x")  # its store slot is at t=2
            except BaseException as exc:
                raised.append(exc)
                raise

    async with coordination, trio.open_nursery() as nursery, api:
        await api.get("first")
        nursery.start_soon(call)
        await trio.sleep(0.5)
        scope.cancel()  # the caller's cancellation, then the block's end
    assert len(raised) == 1 and isinstance(raised[0], trio.Cancelled)


async def test_a_reservation_meeting_our_own_gate_is_no_remote_closure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The store ends our gate the one-way trip (5 ms) after we do: a reservation made
    as our gate reopened found it and took it for another worker's, counting a remote
    closure, extending the gate and starting a new episode (3 runs in 6 against a
    local Redis)."""
    store = DistantStore(quota_key=lambda origin: "quota", sync_interval=10.0)
    async with store:
        throttle = OriginThrottle(
            ThrottleSettings(rate_limit=100.0), 10, trio.current_time(), random.Random(0)
        )
        link = store.attach("https://a.test", throttle)
        await link.join()
        now = trio.current_time()
        throttle.close_early(now, now + 1.0)  # our 429 with Retry-After: 1
        link.notice()
        # Sent as our gate reopens (a hair before, so that it reaches the store while
        # the store's, 5 ms later than ours, is still closed).
        await trio.sleep_until(now + 0.999)
        trips = throttle.gate_trips
        gate = OriginGate(throttle, link)
        assert await gate._reserve_shared(100.0, math.inf) is None  # the store's, waited out
        assert trio.current_time() <= now + 1.0 + 0.02
        assert throttle.gate_until == now + 1.0 and throttle.gate_trips == trips
        assert store.stats.remote_closures == 0
        slot = await gate._reserve_shared(100.0, math.inf)  # the store's gate is over
        assert slot is not None and slot.reservation is not None
