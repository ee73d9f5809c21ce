"""Coordination with redirects to other origins, a store that restarts, and gates
longer than the store holds."""

from __future__ import annotations

import contextlib
import random

import httpx
import pytest
import trio
import trio.testing

from trestfly import MemoryCoordination, ThrottleSettings, TrioAPISession, _coordination, errors
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


# ------------------------------------------------- idle links parked, leaving at once


async def test_idle_links_are_no_longer_synced_and_their_keys_expire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every origin a session ever called was synced every sync_interval for the life of
    the session (100 origins called once: 5,000 store syncs a second), which also kept
    their keys from ever expiring.  Parked, an idle link costs nothing; called again, it
    hears the store first: a gate another worker closed meanwhile holds its request."""
    arrivals: dict[str, list[float]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        arrivals.setdefault(request.url.host, []).append(trio.current_time())
        return httpx.Response(200, json={})

    coordination = MemoryCoordination(key_ttl=30.0)
    api = TrioAPISession(
        url=A, transport=httpx.MockTransport(handler), retries=0, coordination=coordination
    )
    async with coordination, api:
        for i in range(100):
            await api.get(f"https://h{i}.example.test/x")
        await trio.sleep(10)
        syncs = coordination.stats.syncs
        await trio.sleep(50)
        assert coordination.stats.syncs == syncs, "idle links are still synced"
        now = trio.current_time()
        kept = [i for i in range(100) if coordination._book.find(f"https://h{i}.example.test", now)]
        assert kept == [], "an idle worker keeps refreshing its keys"

        # Another worker closes h7's gate; this worker's next call to h7 waits for it.
        await coordination._store_sync("https://h7.example.test", SyncRequest(close_for=5.0))
        closed_at = trio.current_time()
        await api.get("https://h7.example.test/x")
        assert arrivals["h7.example.test"][-1] >= closed_at + 5.0
        assert coordination.stats.remote_closures == 1


async def test_a_parked_link_is_synced_again_at_its_next_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A response (SharedLink.notice) takes a parked link back at once; what the others
    were served while it was parked is not taken for successes of one instant."""
    coordination = MemoryCoordination()
    async with coordination:
        throttle = _throttle()
        heard: list[int] = []
        throttle.add_remote_successes = lambda count, now: heard.append(count)  # type: ignore[method-assign]
        link = coordination.attach(A, throttle)
        await link.join()
        await trio.sleep(10)
        syncs = coordination.stats.syncs
        await trio.sleep(10)
        assert coordination.stats.syncs == syncs, "an idle link is still synced"
        # Others were served 500 meanwhile; this worker gets an answer.
        await coordination._store_sync(link.key, SyncRequest(successes=500))
        throttle.successes += 1
        link.notice()
        await trio.sleep(0.001)  # at once, not a sync_interval later
        assert coordination._book.get(link.key, trio.current_time()).successes == 501
        assert heard == []
        await coordination._store_sync(link.key, SyncRequest(successes=7))
        await trio.sleep(0.1)
        assert heard == [7]  # synced again: the others' successes are heard as before


async def test_a_link_with_a_store_slot_ahead_stays_synced_until_it_is_used(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A waiter holding a slot 10 s ahead must hear a gate closed elsewhere meanwhile;
    once the slot and the gate are over, the idle link is parked."""
    coordination = MemoryCoordination()
    async with coordination:
        throttle = _throttle(ThrottleSettings(rate_limit=0.1))
        link = coordination.attach(A, throttle)
        await link.join()
        first = await link.reserve(0.1, 1)
        second = await link.reserve(0.1, 1)
        assert first is not None and second is not None and second.wait == pytest.approx(10.0)
        await trio.sleep(6)  # nothing happens here, but a slot is reserved for t=10
        await coordination._store_sync(link.key, SyncRequest(close_for=20.0))  # another's
        await trio.sleep(0.1)
        assert throttle.gate_until > trio.current_time() + 19
        await trio.sleep(30)  # the gate is over, and the link idle since
        syncs = coordination.stats.syncs
        await trio.sleep(10)
        assert coordination.stats.syncs == syncs, "an idle link is still synced"


class SwitchedOff(MemoryCoordination):
    """A store that fails while ``down`` is set."""

    down = False

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        if self.down:
            raise ConnectionRefusedError("store is down")
        return await super()._store_sync(key, request)


async def test_a_store_that_failed_while_every_link_was_parked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Found out by the next admission (at most ``timeout`` later), retried through a
    link, back to healthy; and then the idle link is parked again."""
    coordination = SwitchedOff(sync_interval=0.02)
    async with coordination:
        link = coordination.attach(A, _throttle())
        await link.join()
        await trio.sleep(10)
        coordination.down = True
        start = trio.current_time()
        await link.join()  # what the session's next admission does
        assert trio.current_time() - start <= coordination.timeout
        assert not coordination.healthy
        coordination.down = False
        await trio.sleep(coordination.retry_interval + 0.1)
        assert coordination.healthy
        await trio.sleep(5)
        syncs = coordination.stats.syncs
        await trio.sleep(10)
        assert coordination.stats.syncs == syncs, "an idle link is still synced"


async def test_leaving_runs_the_last_syncs_together_within_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One after another, 200 links 8 ms from the store took 1.6 s to leave, cancelled
    or not.  Together: every success reported within the timeout, and the links with
    nothing new (parked) not synced at all."""
    coordination = DistantMemory(rtt=0.008, sync_interval=3600.0)  # no background syncs
    async with coordination:
        links = [coordination.attach(f"https://h{i}.test", _throttle()) for i in range(200)]
        await trio.sleep(20)  # the first syncs (one after another), then idle
        coordination.wake()
        await trio.sleep(0.01)  # parked, all of them
        syncs = coordination.stats.syncs
        for link in links[:40]:
            link.throttle.successes += 1  # answered since: news to report
        start = trio.current_time()
        with trio.CancelScope() as scope:
            scope.cancel()  # leaving by cancellation: the last syncs are shielded
            await coordination.detach_all(links)
        assert trio.current_time() - start <= coordination.timeout
        assert coordination.stats.syncs - syncs == 40
        now = trio.current_time()
        counted = [coordination._book.get(link.key, now).successes for link in links]
        assert counted == [1] * 40 + [0] * 160
        assert coordination._links == []
        assert all(link.joined.is_set() for link in links)  # nobody waits for a sync
        await coordination.detach_all(links)  # detached already: nothing happens
        assert coordination.stats.syncs - syncs == 40


async def test_leaving_is_bounded_however_many_links_have_news(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """1,000 links with news, a store answering in 40 ms (within its timeout): 40 s one
    after another.  Bounded now, the gates first: what the other workers must hear."""
    coordination = DistantMemory(rtt=0.04, sync_interval=3600.0)
    async with coordination:
        links = [coordination.attach(f"https://h{i}.test", _throttle()) for i in range(1000)]
        with trio.move_on_after(0.001):
            await trio.sleep(1)  # the background task's first sync is out: never mind
        for link in links:
            link.throttle.successes += 1
        now = trio.current_time()
        for link in links[-3:]:
            link.throttle.close_early(now, now + 30.0)  # a Retry-After: 30 just in
        start = trio.current_time()
        await coordination.detach_all(links)
        assert trio.current_time() - start <= 2 * coordination.timeout
        assert coordination.healthy
        now = trio.current_time()
        assert all(coordination._book.get(link.key, now).gate_until > now for link in links[-3:])


async def test_leaving_with_a_store_slower_than_the_timeout_costs_the_timeout_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    coordination = DistantMemory(rtt=0.01, sync_interval=3600.0)
    async with coordination:
        links = [coordination.attach(f"https://h{i}.test", _throttle()) for i in range(50)]
        await trio.sleep(5)
        coordination.rtt = 10.0  # the store stops answering in time
        for link in links:
            link.throttle.successes += 1
        start = trio.current_time()
        await coordination.detach_all(links)
        assert trio.current_time() - start == pytest.approx(coordination.timeout)
        assert not coordination.healthy
        # One round of syncs, then none started (not one timeout per link).
        assert coordination.stats.failures == _coordination.LAST_SYNCS_AT_ONCE
