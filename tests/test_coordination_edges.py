"""Coordination with redirects to other origins, a store that restarts, and gates
longer than the store holds."""

from __future__ import annotations

import contextlib
import random

import httpx
import pytest
import trio
import trio.testing

from trestfly import MemoryCoordination, ThrottleSettings, TrioAPISession, errors
from trestfly._admission import GateClosed, OriginGate
from trestfly._shared_state import SharedQuotaBook, SyncReply, SyncRequest
from trestfly._throttle import OriginThrottle

A = "https://api.example.test"
B = "https://cdn.other.test"


class DistantMemory(MemoryCoordination):
    """A store a round trip away (half of it each way), as a Redis across a network."""

    def __init__(self, rtt: float = 0.03, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.rtt = rtt
        self.requests: list[tuple[float, str, object]] = []

    async def _store_sync(self, key, request):  # type: ignore[no-untyped-def]
        await trio.sleep(self.rtt / 2)
        self.requests.append((trio.current_time(), key, request))
        reply = await super()._store_sync(key, request)
        await trio.sleep(self.rtt / 2)
        return reply


def slow_redirect_to_a_429(delay: float) -> httpx.MockTransport:
    """A answers its redirect to B after ``delay``; B answers 429 Retry-After: 10."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.test":
            await trio.sleep(delay)
            return httpx.Response(302, headers={"Location": f"{B}/blob"})
        return httpx.Response(429, headers={"Retry-After": "10"})

    return httpx.MockTransport(handler)


async def get_file(api: TrioAPISession) -> None:
    """A call still out as the session leaves: whatever it ends with is not the point."""
    with contextlib.suppress(Exception):
        await api.get("file")


async def test_a_redirect_target_throttle_answered_while_the_session_leaves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call still out when the block ends is redirected to B, which answers 429
    Retry-After: 10 while the session detaches its links: the hook makes B's gate (and
    a link) under _leave_coordination's loop over the gates."""

    coordination = DistantMemory()
    # Answered while the session detaches A's link.
    api = TrioAPISession(url=A, transport=slow_redirect_to_a_429(0.98), retries=0)
    api._coordination = coordination
    async with coordination, trio.open_nursery() as nursery:
        async with api:
            nursery.start_soon(get_file, api)
            await trio.sleep(1)
        # reaching here: the block ended without error
        await trio.sleep(2)
        assert [link.key for link in coordination._links] == [], "a link outlived the session"


async def test_a_redirect_target_link_made_after_the_session_left_is_never_detached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The same call answered after the session left (the coordination stays open for
    other sessions): B's link is attached after the leave and stays synced forever."""

    coordination = MemoryCoordination()
    api = TrioAPISession(
        url=A, transport=slow_redirect_to_a_429(2), retries=0, coordination=coordination
    )
    async with coordination, trio.open_nursery() as nursery:
        async with api:
            nursery.start_soon(get_file, api)
            await trio.sleep(1)
        await trio.sleep(3)
        assert [link.key for link in coordination._links] == [], "a link outlived the session"


async def test_a_session_opened_again_counts_a_redirect_targets_successes_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Consequence of the link attached after the leave: the session opened again
    attaches B's throttle a second time, and both links push its successes."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/file":
            await trio.sleep(2)
            return httpx.Response(302, headers={"Location": f"{B}/blob"})
        if request.url.path == "/blob":
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200, json={})

    coordination = MemoryCoordination()
    api = TrioAPISession(
        url=A, transport=httpx.MockTransport(handler), retries=0, coordination=coordination
    )
    async with coordination:
        async with trio.open_nursery() as nursery, api:
            nursery.start_soon(get_file, api)
            await trio.sleep(1)
        await trio.sleep(3)  # B's gate is over
        async with api:
            for i in range(5):
                await api.get(f"{B}/ok/{i}")
        await trio.sleep(1)
        quota = coordination._book.find(B, trio.current_time())
        assert quota is not None
        assert quota.successes == 5, quota.successes


class CountingMemory(MemoryCoordination):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.announced: list[tuple[float, float]] = []

    async def _store_sync(self, key, request):  # type: ignore[no-untyped-def]
        if request.close_for is not None:
            self.announced.append((trio.current_time(), request.close_for))
        return await super()._store_sync(key, request)


def _worker(name: str, coordination: MemoryCoordination, handler) -> TrioAPISession:  # type: ignore[no-untyped-def]
    return TrioAPISession(
        url=A,
        transport=httpx.MockTransport(lambda request: handler(name, request)),
        retries=0,
        coordination=coordination,
    )


async def test_a_gate_longer_than_the_store_holds_is_not_announced_at_every_sync(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 429 with a Retry-After past MAX_CLOSE_FOR (1e9 s): the store holds the gate for
    1e9 s, which the forgotten-gate rule takes for a gate the store forgot: announced
    again at every sync (each one moving the store's gate and restarting its schedule)."""

    def handler(who: str, request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "99999999999"})

    coordination = CountingMemory()
    async with coordination, _worker("a", coordination, handler) as a:
        with pytest.raises(errors.APIError):
            await a.get("x")
        await trio.sleep(1)
    assert len(coordination.announced) == 1, coordination.announced[:5]


async def test_after_a_restart_only_the_worker_that_closed_the_gate_announces_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Worker a meets 429 Retry-After: 10; worker b hears the gate from a store a round
    trip away.  The store restarts empty: b, which only heard it (and holds it until its
    latest end), announces it too, the store's gate moves past a's own, and a takes its
    own gate back as another worker's: extended, and counted as a remote closure."""
    first = []

    def handler(who: str, request: httpx.Request) -> httpx.Response:
        if who == "a" and not first:
            first.append(trio.current_time())
            return httpx.Response(429, headers={"Retry-After": "10"})
        return httpx.Response(200, json={})

    coordination = DistantMemory(rtt=0.03)
    a, b = _worker("a", coordination, handler), _worker("b", coordination, handler)
    async with coordination, a, b:
        await b.get("warm")  # b's link to the key exists
        with pytest.raises(errors.APIError):
            await a.get("x")
        await trio.sleep(1)
        a_gate = a._gates[A].throttle.gate_until
        closures = coordination.stats.remote_closures
        assert closures == 1  # b heard a's gate
        n = len(coordination.requests)
        coordination._book = SharedQuotaBook()  # the store restarts empty
        await trio.sleep(1)
        after = [
            (t, r.close_for) for t, _, r in coordination.requests[n:] if r.close_for is not None
        ]
        assert a._gates[A].throttle.gate_until == a_gate, (
            a._gates[A].throttle.gate_until - a_gate,
            after,
        )
        assert coordination.stats.remote_closures == closures, after
        assert len(after) == 1, after


async def test_another_worker_waits_at_a_redirect_targets_shared_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent: list[tuple[float, str, str]] = []

    def handler(who: str, request: httpx.Request) -> httpx.Response:
        sent.append((trio.current_time(), who, str(request.url)))
        if request.url.host == "api.example.test":
            return httpx.Response(302, headers={"Location": f"{B}/blob"})
        if who == "a":
            return httpx.Response(429, headers={"Retry-After": "10"})
        return httpx.Response(200, json={})

    coordination = CountingMemory()
    a, b = _worker("a", coordination, handler), _worker("b", coordination, handler)
    async with coordination, a, b:
        with pytest.raises(errors.TooManyRequestsError):
            await a.get("file")
        start = sent[-1][0]
        await trio.sleep(0.5)
        await b.get(f"{B}/direct")
    direct = [t for t, who, url in sent if who == "b"]
    assert direct[0] - start >= 10 - 0.01, sent
    assert len(coordination.announced) == 1, coordination.announced


async def test_retry_after_zero_shares_no_gate(autojump_clock: trio.testing.MockClock) -> None:
    n = []

    def handler(who: str, request: httpx.Request) -> httpx.Response:
        n.append(who)
        if who == "a" and len(n) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={})

    coordination = CountingMemory()
    a, b = _worker("a", coordination, handler), _worker("b", coordination, handler)
    async with coordination, a, b:
        await b.get("warm")
        n.clear()
        with pytest.raises(errors.TooManyRequestsError):
            await a.get("x")
        await trio.sleep(0.1)
        t = trio.current_time()
        await b.get("y")
        assert trio.current_time() - t < 0.05
    assert coordination.announced == []
    assert coordination.stats.remote_closures == 0


async def test_slots_of_waiters_out_when_the_block_ends_go_back_to_the_other_worker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    coordination = MemoryCoordination()

    def mk() -> TrioAPISession:
        return TrioAPISession(
            url=A,
            transport=httpx.MockTransport(ok),
            rate_limit=1.0,
            coordination=coordination,
            max_retry_after=100,
        )

    a, b = mk(), mk()
    caught: list[BaseException] = []

    async def call(i: int) -> None:
        try:
            await a.get(f"x/{i}")
        except Exception as exc:
            caught.append(exc)

    async with coordination, b:
        async with trio.open_nursery() as nursery, a:
            await a.get("first")
            for i in range(6):
                nursery.start_soon(call, i)
            await trio.sleep(0.5)
        t = trio.current_time()
        await b.get("next")
        waited = trio.current_time() - t
    assert all(isinstance(e, errors.SessionNotOpenError) for e in caught) and len(caught) == 6, (
        caught
    )
    assert waited <= 1.0, waited


# ---------------------------------------------------------------- what the stats count


def _throttle(settings: ThrottleSettings | None = None) -> OriginThrottle:
    """An origin's throttle as a session builds it (seeded jitter), now."""
    return OriginThrottle(settings or ThrottleSettings(), 10, trio.current_time(), random.Random(0))


async def test_reservations_count_only_the_slots_reserved(
    autojump_clock: trio.testing.MockClock,
) -> None:
    coordination = MemoryCoordination()
    async with coordination:
        throttle = _throttle()
        link = coordination.attach("https://api.example.com", throttle)
        due = await link.reserve(1.0, 1, max_wait=5.0)
        quoted = await link.reserve(1.0, 1, max_wait=0.1)  # a second away: only quoted
        assert due is not None and due.reserved
        assert quoted is not None and not quoted.reserved
        await coordination._store_sync(link.key, SyncRequest(close_for=5.0))  # another's
        refused = await link.reserve(1.0, 1)
        assert refused is not None and refused.gate_remaining > 0
        assert coordination.stats.reservations == 1


@pytest.mark.parametrize("heard_by", ["sync", "reservation"])
async def test_another_workers_gate_is_a_remote_closure_however_it_is_heard(
    autojump_clock: trio.testing.MockClock, heard_by: str
) -> None:
    coordination = MemoryCoordination()
    async with coordination:
        throttle = _throttle(ThrottleSettings(rate_limit=10.0))
        gate = OriginGate(throttle, coordination.attach("https://api.example.com", throttle))
        assert gate.link is not None
        await gate.link.joined.wait()
        await coordination._store_sync(gate.link.key, SyncRequest(close_for=2.0))
        if heard_by == "reservation":
            with pytest.raises(GateClosed):
                await gate.admit(max_wait=0.5)
            assert throttle.gate_until > trio.current_time()
        await trio.sleep(0.5)  # several background syncs: the same gate, not counted again
        assert throttle.gate_until > trio.current_time()
        assert coordination.stats.remote_closures == 1


class CountsThenHangs(MemoryCoordination):
    """A store that applies one sync carrying successes and answers it too late: as
    Redis runs a script it received after the client gave up on it."""

    def __init__(self) -> None:
        super().__init__()
        self.hang_once = False

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        reply = await super()._store_sync(key, request)
        if self.hang_once and request.successes:
            self.hang_once = False
            await trio.sleep(10 * self.timeout)
        return reply


async def test_successes_of_a_sync_that_timed_out_are_never_counted_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    coordination = CountsThenHangs()
    async with coordination:
        throttle = _throttle()
        heard: list[int] = []
        throttle.add_remote_successes = lambda count, now: heard.append(count)  # type: ignore[method-assign]
        link = coordination.attach("https://api.example.com", throttle)
        await link.joined.wait()
        coordination.hang_once = True
        throttle.successes += 10  # this worker was served 10
        coordination.wake()
        await trio.sleep(5)  # the late sync, the store back after retry_interval, more syncs
        throttle.successes += 3
        await trio.sleep(1)
        stats = coordination.stats
        assert stats.failures == 1 and stats.healthy and stats.syncs >= 2
        assert coordination._book.get(link.key, trio.current_time()).successes == 13
        assert heard == []  # none of ours taken for another worker's
