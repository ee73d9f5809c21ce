"""Sharing an origin's gate, pacer and learned rate between sessions: the Trio side.

A :class:`Coordination` connects the per-origin :class:`~trestfly._throttle.OriginThrottle`
of every session that uses it to one store (memory for sessions of one process, Redis
for many processes and machines).  The throttles stay the authority for every local
decision, so a request never waits for the store on its way out, except for one thing:
once an origin is paced, the send slot is reserved from the store's GCRA pacer, so that
all workers together keep the learned rate.  A waiter that leaves without sending
(cancelled, or refusing a slot past its deadline) gives its slot back to the store, and
the next reservation of any worker takes it, as the local pacer's holes are taken (see
:meth:`Coordination.give_back`).

Everything else travels in the background: one task per coordination, owned by its
``async with`` block, syncs each active link every ``sync_interval`` seconds (at once
when a gate closes or the rate is cut locally):

* a gate closed here is announced to the store; one closed elsewhere is closed here;
* a cut of the learned rate is proposed with the version it is based on, and only the
  first proposal per version is taken (so a burst of 429s seen by every worker cuts
  once), except that a higher first sample (no ceiling yet) raises the rate; growth
  since the last sync is added to the shared rate;
* successes are counted across workers, so the rate a cut is based on is the rate the
  server served to everyone.

A link idle for PARK_AFTER seconds (nothing sent, answered or reserved through it, no
request out, its gate open, nothing left to tell the store) is *parked*: no longer
synced, so a worker that touched a thousand origins once does not sync each of them
fifty times a second forever, and keys nobody uses expire after ``key_ttl`` as they
should (an idle worker contributes nothing to them).  Parking forgets what was heard:
the next admission waits for a sync first (as the first one to an origin does, at most
``timeout``; see :meth:`SharedLink.join`), so a gate another worker closed meanwhile is
known before anything is sent, and any activity (a response, a reservation) takes the
link back at once.  Leaving, a session detaches all its links at once
(:meth:`Coordination.detach_all`): their last syncs run together, shielded, and the
whole takes about ``timeout`` (twice that at most), however many links there are.

When the store fails (unreachable, slower than ``timeout``, restarted), the sessions go
on with local-only throttling; one warning is logged per episode, the background task
tries again every ``retry_interval`` and logs when the store is back.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, nullcontext
from types import TracebackType
from typing import Self

import trio

from ._arguments import is_finite
from ._shared_state import (
    MAX_CLOSE_FOR,
    RateProposal,
    Reservation,
    SharedQuotaBook,
    SyncReply,
    SyncRequest,
)
from ._stats import CoordinationStats
from ._throttle import OriginThrottle
from .errors import TrestflyError, UnexpectedValueError

coordination_log = logging.getLogger("trestfly.coordination")

#: A gate announced elsewhere must end this much later than ours to be taken (the
#: echo of our own announcement is recognised by the time the sync left, see
#: :func:`remote_gate_end`; this absorbs the rounding of the store's clock).
GATE_TOLERANCE = 0.005

#: Seconds a link is still synced after its last local activity (a response, a store
#: reservation, an admission that joined it) before it is parked.  Parked at once, a
#: link used every few hundred milliseconds would make each admission wait for a sync
#: (see SharedLink.join), and a worker pausing between batches would not notice the
#: store fail until it sent again; kept for two seconds, it costs about 100 syncs
#: after its last use.
PARK_AFTER = 2.0

#: Seconds between looks at the parked links for news reported without
#: SharedLink.notice() (a throttle changed by its owner directly): pushed that late at
#: most, where a sync every ``sync_interval`` would look at every parked link each time.
PARKED_SWEEP = 0.25

#: Last syncs a leaving session runs at once (see Coordination.detach_all): a store a
#: round trip away answers as many in that time.  Not all of them: a thousand calls at
#: once queue for coredis's 64 connections, opened on the way, and all failed (a local
#: Redis, no deadline).  With the deadline of detach_all, 8 at a time reported 142-157
#: of 1,000 links within the 50 ms timeout, 32 at a time 132-133, 64 at a time 197-200,
#: none failing; half the client's pool leaves the other half to other sessions.
LAST_SYNCS_AT_ONCE = 32


def _default_quota_key(origin: str) -> str:
    return origin


def remote_gate_end(
    gate_remaining: float, sent_at: float, received_at: float, own_gate: float
) -> float | None:
    """The end of a gate closed elsewhere, from a sync's reply; None when the store's
    gate is open or is ours.

    The store measured ``gate_remaining`` at some instant between ``sent_at`` and
    ``received_at``, so its gate ends between ``sent_at + gate_remaining`` and
    ``received_at + gate_remaining``.  Our own announcement comes back as exactly the
    earliest of these (the store adds our ``close_for`` to the instant it received
    it): judged by the latest, a store more than GATE_TOLERANCE away (a Redis across
    a network) returned every gate of ours as another worker's, one round trip later,
    which extended it, started a new episode and counted a remote closure.  A gate
    that is someone else's is kept until the latest end: the safe side.
    """
    if gate_remaining <= 0 or sent_at + gate_remaining <= own_gate + GATE_TOLERANCE:
        return None
    return received_at + gate_remaining


class SharedLink:
    """One session's origin joined to a quota key: what was last said and heard."""

    __slots__ = (
        "active_until",
        "announced_gate",
        "attached",
        "coordination",
        "joined",
        "key",
        "lock",
        "parked",
        "pushed_gate",
        "pushed_successes",
        "rate_cuts",
        "republish",
        "shared_successes",
        "synced_rate",
        "throttle",
        "unconfirmed_successes",
        "version",
    )

    def __init__(self, coordination: Coordination, key: str, throttle: OriginThrottle) -> None:
        self.coordination = coordination
        self.key = key
        self.throttle = throttle
        self.version = 0
        self.pushed_gate = -math.inf
        #: The latest end of a gate this worker closed and announced itself (not one it
        #: heard of): the one it says again should the store forget it.
        self.announced_gate = -math.inf
        self.rate_cuts = throttle.rate_cuts
        self.synced_rate: float | None = None
        self.pushed_successes = 0
        #: Successes pushed by syncs that failed: the store may have counted them (Redis
        #: runs a script it received, however late the client gave up on it).
        self.unconfirmed_successes = 0
        self.shared_successes: int | None = None
        self.republish = False
        #: Set by the first sync (or failed attempt): the store's count of successes is
        #: then a baseline, and the successes it counts later are others' (see
        #: :meth:`join`).
        self.joined = trio.Event()
        #: One sync of a link at a time: the session's last sync (detach) must not run
        #: beside the background loop's, or both would push the same successes.
        self.lock = trio.Lock()
        #: Until when the background task syncs it with nothing going on (see PARK_AFTER).
        self.active_until = -math.inf
        #: Not synced (idle): ``joined`` is cleared, so the next admission waits for a
        #: sync, and any activity takes it back (Coordination._activate).
        self.parked = False
        #: Between attach and detach.
        self.attached = False

    async def join(self) -> None:
        """Wait (at most the store's timeout) for this link's first sync.

        The first request to an origin waits for it, so that the store's count of
        successes is read before this worker adds to it: taken later, behind the
        others' first pushes, the baseline would swallow what they were served, and a
        first throttle would be judged on this worker's successes alone.
        """
        coordination = self.coordination
        if self.joined.is_set():
            return
        # A parked link is taken back: parking forgot what the store said, and a gate
        # another worker closed meanwhile must be heard before this worker sends.
        coordination._activate(self, trio.current_time() + PARK_AFTER)
        if not coordination.healthy:
            return
        if not coordination.is_open:
            # Closed under this session (by the session that opened it): nothing will
            # ever sync this link, so waiting would cost every request the timeout.
            self.joined.set()
            coordination_log.warning(
                "coordination is closed, continuing with local-only throttling",
                extra={"trestfly_backend": coordination.backend_name},
            )
            return
        with trio.move_on_after(coordination.timeout):
            await self.joined.wait()

    def notice(self) -> None:
        """Called after each response: wake the sync at once for news others must hear."""
        throttle = self.throttle
        now = trio.current_time()
        # Activity: keeps the link synced, or takes it back if parked (its successes, a
        # gate closed by a redirect's answer, are news a parked link would keep).
        self.coordination._activate(self, now + PARK_AFTER)
        if throttle.rate_cuts != self.rate_cuts or (
            # A gate already over is no news: one that ended before a sync announced it
            # (a short gate, a store down meanwhile) woke the loop on every response.
            throttle.gate_until > max(self.pushed_gate + GATE_TOLERANCE, now)
        ):
            self.coordination.wake()

    async def reserve(
        self, rate: float, burst: int, max_wait: float = math.inf
    ) -> Reservation | None:
        """A send slot from the shared pacer (only quoted when more than ``max_wait``
        away); None when the store is unavailable."""
        if self.parked:
            # Parked while its caller waited (a round, a long pacer slot): heard again
            # first, so that the rate it reserves at is not one cut elsewhere meanwhile.
            await self.join()
        return await self.coordination.reserve(self, rate, burst, max_wait)

    async def give_back(self, reservation: Reservation) -> None:
        """The slot of ``reservation`` will not be used: the next reservation takes it."""
        await self.coordination.give_back(self, reservation)


class Coordination(ABC):
    """Shares each origin's gate, pacer and learned rate between sessions.

    Open it with ``async with`` (it owns one background task) and pass it to any number
    of sessions as ``coordination=``; a session given one that is not open opens it for
    its own lifetime.  Subclasses implement the store: :class:`MemoryCoordination` and
    :class:`~trestfly.RedisCoordination`.

    Args:
        quota_key: maps an origin (``"https://api.example.com"``) to the key its quota
            is shared under; several hosts behind one API key map to one key.  The
            default is the origin itself.
        sync_interval: seconds between background syncs of each key.
        timeout: seconds a store call may take before the session goes on without it.
        retry_interval: seconds between attempts to reach a failed store.
        key_ttl: seconds the store keeps a key nobody touches (the keys expire on
            their own).

    .. versionadded:: 0.1.0
    """

    #: Name in stats and logs.
    backend_name = "custom"

    def __init__(
        self,
        *,
        quota_key: Callable[[str], str] | None = None,
        sync_interval: float = 0.02,
        timeout: float = 0.05,
        retry_interval: float = 1.0,
        key_ttl: float = 300.0,
    ) -> None:
        for name, value in (
            ("sync_interval", sync_interval),
            ("timeout", timeout),
            ("retry_interval", retry_interval),
            ("key_ttl", key_ttl),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UnexpectedValueError(f"{name} must be a number of seconds, got {value!r}")
            if not (is_finite(value) and value > 0):
                raise UnexpectedValueError(f"{name} must be positive and finite, got {value!r}")
        if quota_key is not None and not callable(quota_key):
            raise UnexpectedValueError(f"quota_key must be callable, got {quota_key!r}")
        self._quota_key = quota_key or _default_quota_key
        self.sync_interval = float(sync_interval)
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.key_ttl = float(key_ttl)
        self._links: list[SharedLink] = []
        #: The links not parked, in attach order: the ones the background task syncs.
        self._active: dict[SharedLink, None] = {}
        self._sweep_at = -math.inf  # the next look at the parked links (PARKED_SWEEP)
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._trio_run: trio.lowlevel.TrioToken | None = None  # the run it was opened in
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self._healthy = True
        self._down_since = -math.inf
        self._syncs = 0
        self._reservations = 0
        self._failures = 0
        self._remote_closures = 0
        self._remote_cuts = 0

    # --------------------------------------------------------------- the store

    @abstractmethod
    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        """Apply one sync to the key's shared state, atomically, on the store's clock."""

    @abstractmethod
    async def _store_reserve(self, key: str, interval: float, burst: int) -> Reservation:
        """Reserve a send slot from the key's shared pacer, atomically."""

    async def _store_reserve_within(
        self, key: str, interval: float, burst: int, max_wait: float
    ) -> Reservation:
        """As _store_reserve, but a slot more than ``max_wait`` seconds away is only
        quoted, not reserved (the caller will refuse it).  Stores that cannot do that
        reserve it anyway, as this default does."""
        return await self._store_reserve(key, interval, burst)

    async def _store_give_back(self, key: str, slot: float, schedule: int) -> bool:
        """Give a reserved slot back to the key's pacer, atomically (see
        :meth:`SharedQuota.give_back <trestfly._shared_state.SharedQuota.give_back>`);
        whether it was kept.  Stores that cannot keep it spent, as this default does."""
        return False

    def _unavailable(self) -> tuple[type[Exception], ...]:
        """The exceptions of a store call that mean "unavailable": every one."""
        # Any failure of a store call, not only the backend's own errors: a client
        # closed under the coordination (coredis raises RuntimeError), a reply this
        # version cannot read (ValueError).  Going local-only is always safe; an error
        # escaping the background task would cancel the caller's whole block.
        return (Exception,)

    def _store_connection(self) -> AbstractAsyncContextManager[object]:
        """Hook: the store's connection, held open by the background task.

        Entered and exited by that one task, so a client that opens its own task
        groups or cancel scopes (coredis does) nests them correctly.
        """
        return nullcontext()

    # ----------------------------------------------------------- lifecycle

    @property
    def is_open(self) -> bool:
        """Whether the coordination is open (inside its ``async with`` block).

        .. versionadded:: 0.1.0
        """
        return self._nursery is not None

    async def __aenter__(self) -> Self:
        if self._nursery_manager is not None:
            raise TrestflyError(f"{type(self).__name__} is already open")
        run = trio.lowlevel.current_trio_token()
        if self._trio_run is not None and self._trio_run is not run:
            # When the store went down is an instant of the last run's clock, which a
            # new run starts elsewhere (randomly, hours apart): the retry waited until
            # it came round again, local-only throttling meanwhile.  Retry at once.
            self._down_since = -math.inf
            self._start_run()
        self._trio_run = run
        self._sweep_at = -math.inf  # an instant of another run's clock, perhaps
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._nursery, self._nursery_manager = nursery, manager
        try:
            await nursery.start(self._run)
        except BaseException:
            await self._exit_nursery()
            raise
        return self

    def _start_run(self) -> None:  # noqa: B027 (a hook: a store with its own clock keeps all)
        """Opened in a ``trio.run`` other than the last one: state timed by the last
        run's clock starts afresh (a store with a clock of its own keeps it)."""

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self._store_connection():
            task_status.started()
            await self._sync_loop()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Cancelling the background task closes the store's connection in that task.
        await self._exit_nursery()

    async def _exit_nursery(self) -> None:
        manager, nursery = self._nursery_manager, self._nursery
        self._nursery_manager = self._nursery = None
        if manager is None or nursery is None:
            return
        nursery.cancel_scope.cancel()
        # The body's exception is not handed to the nursery: it propagates as itself,
        # never wrapped in an ExceptionGroup by our background task's nursery.
        await manager.__aexit__(None, None, None)

    # --------------------------------------------------------------- links

    def attach(self, origin: str, throttle: OriginThrottle) -> SharedLink:
        """Join an origin's throttle to its quota key (called by the session)."""
        key = self._quota_key(origin)
        if not isinstance(key, str) or not key or "{" in key or "}" in key:
            raise UnexpectedValueError(
                f"quota_key({origin!r}) must return a non-empty string without braces, got {key!r}"
            )
        link = SharedLink(self, key, throttle)
        throttle.shares_quota = True
        link.attached = True
        link.active_until = trio.current_time() + PARK_AFTER
        self._links.append(link)
        self._active[link] = None
        self.wake()
        return link

    async def detach(self, link: SharedLink) -> None:
        """The session closed: tell the store its last news once, then stop syncing it
        (see :meth:`detach_all`)."""
        await self.detach_all((link,))

    async def detach_all(self, links: Iterable[SharedLink]) -> None:
        """The session closed: stop syncing ``links``, and tell the store their last news.

        Shielded (a session leaving by cancellation still reports its successes and
        gates) and bounded as a whole: one after another, a session of a thousand
        origins took a thousand round trips to leave, cancelled or not.  The last syncs
        run LAST_SYNCS_AT_ONCE at a time, gates and rate cuts first, and none starts
        ``timeout`` after the call or once the store failed; each takes ``timeout`` at
        most (after the background task's sync of the same link, if one is out: both
        would push the same successes).  So leaving takes at most about twice
        ``timeout``, however many links; the successes of links not reached are the
        store's loss (a served rate a little low, the safe side), as a failed sync's
        are.  A link with nothing new to tell (a parked one) is not synced.
        """
        leaving = [link for link in dict.fromkeys(links) if link.attached]
        if not leaving:
            return
        for link in leaving:
            link.attached = link.parked = False
            self._active.pop(link, None)
        gone = set(leaving)
        self._links = [link for link in self._links if link not in gone]
        try:
            if not self._healthy or self._nursery is None:
                return
            now = trio.current_time()
            requests = [(link, self._request(link, now)) for link in leaving]
            news = [link for link, request in requests if _is_news(request)]
            if not news:
                return
            # What the others must hear first (a gate, a cut), then successes.
            urgent = {
                link
                for link, request in requests
                if request.close_for is not None or request.proposal is not None
            }
            news.sort(key=lambda link: link not in urgent)
            queue = iter(news)
            deadline = now + self.timeout
            failures: list[Exception] = []
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as nursery:
                    for _ in range(min(LAST_SYNCS_AT_ONCE, len(news))):
                        nursery.start_soon(self._last_syncs, queue, deadline, failures)
            if failures:
                # Raised as itself, as one detach raised it (not in an ExceptionGroup).
                raise failures[0]
        finally:
            # Nothing syncs them any more: a task still admitting through one (its call
            # out as the session left) must not wait for a sync that never comes.
            for link in leaving:
                link.joined.set()

    async def _last_syncs(
        self, queue: Iterator[SharedLink], deadline: float, failures: list[Exception]
    ) -> None:
        """One of detach_all's workers: the next link of ``queue`` until the deadline."""
        for link in queue:
            if trio.current_time() >= deadline or not self._healthy:
                return
            try:
                await self._sync(link)
            except Exception as exc:  # a bug, not the store (_sync_once takes those)
                failures.append(exc)

    def wake(self) -> None:
        self._wake.set()

    def _activate(self, link: SharedLink, until: float) -> None:
        """Activity on ``link``: synced until ``until`` at least, taken back if parked."""
        if until > link.active_until:
            link.active_until = until
        if link.parked:
            self._unpark(link)
            self.wake()

    def _unpark(self, link: SharedLink) -> None:
        link.parked = False
        self._active[link] = None

    def _park(self, link: SharedLink) -> None:
        link.parked = True
        del self._active[link]
        # What the store said is forgotten: the next admission waits for a sync (see
        # SharedLink.join), as the first one did.
        link.joined = trio.Event()
        # And the store's count of successes read again as a baseline: the others'
        # successes while this worker was idle, added at once when it came back, were
        # a served rate of minutes counted at one instant (the unsafe side).
        link.shared_successes = None

    def _quiet(self, link: SharedLink, now: float) -> bool:
        """Whether ``link`` can be parked: idle since PARK_AFTER, synced since, no request
        out, its gate open (waiters at a closed gate must hear it extended elsewhere,
        and the store must keep ours), nothing to tell the store."""
        throttle = link.throttle
        return (
            now >= link.active_until
            and link.joined.is_set()
            and throttle.in_flight == 0
            and throttle.gate_until <= now
            and not self._has_news(link, now)
        )

    def _has_news(self, link: SharedLink, now: float) -> bool:
        """Whether a sync of ``link`` now would tell the store anything: what
        ``_is_news(self._request(link, now))`` says, without building the request (the
        sweep asks it of every parked link, four times a second)."""
        throttle = link.throttle
        rate = throttle.learned_rate
        return (
            throttle.successes != link.pushed_successes
            or (
                throttle.gate_until > now
                and throttle.gate_until > link.pushed_gate + GATE_TOLERANCE
            )
            or (
                rate is not None
                and (
                    throttle.rate_cuts != link.rate_cuts
                    or link.republish
                    or (link.synced_rate is not None and rate != link.synced_rate)
                )
            )
        )

    @property
    def healthy(self) -> bool:
        """Whether the store answered its last call (False: local-only throttling)."""
        return self._healthy

    @property
    def stats(self) -> CoordinationStats:
        return CoordinationStats(
            backend=self.backend_name,
            healthy=self._healthy,
            syncs=self._syncs,
            reservations=self._reservations,
            failures=self._failures,
            remote_closures=self._remote_closures,
            remote_cuts=self._remote_cuts,
        )

    # ------------------------------------------------------------ the calls

    async def reserve(
        self, link: SharedLink, rate: float, burst: int, max_wait: float = math.inf
    ) -> Reservation | None:
        """A send slot from the store's pacer, only quoted when more than ``max_wait``
        away; None (go local) when it is unavailable.  A caller cancelled during the
        call leaves (at most ``timeout`` later) with the slot given back."""
        self._activate(link, trio.current_time() + PARK_AFTER)
        if not self._healthy or self._nursery is None:
            return None
        try:
            # Shielded, and bounded by ``timeout`` like give_back: a caller cancelled
            # while the store's answer is on its way would lose a slot the store has
            # already reserved for it, spent for every worker.  (The caller checked for
            # a cancellation just before: OriginGate._reserve_shared.)
            with trio.CancelScope(shield=True), trio.fail_after(self.timeout):
                reservation = await self._store_reserve_within(
                    link.key, 1.0 / rate, burst, max_wait
                )
        except self._unavailable() as exc:
            self._went_down(exc)
            return None
        # Synced until the slot is used, however far away: its waiter must hear a gate
        # closed or a rate cut elsewhere meanwhile.
        self._activate(link, trio.current_time() + reservation.wait + PARK_AFTER)
        if reservation.reserved and reservation.gate_remaining <= 0:
            # Not a slot only quoted (past max_wait) or refused at a closed gate.
            self._reservations += 1
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            await self.give_back(link, reservation)
            raise
        return reservation

    def hear_gate(self, link: SharedLink, now: float, until: float) -> None:
        """Another worker's gate, heard from the store by a sync or a reservation:
        close ``link``'s gate until ``until`` when that extends it (a remote closure),
        and never announce it back as this worker's own (it came back a round trip
        later, extending every worker's gate)."""
        throttle = link.throttle
        if until > throttle.gate_until:
            throttle.close_shared(now, until)
            self._remote_closures += 1
        link.pushed_gate = max(link.pushed_gate, until)

    async def give_back(self, link: SharedLink, reservation: Reservation) -> None:
        """Give back a slot reserved and left unused (its holder was cancelled, or
        refused it): the next reservation of any worker takes it while it is ahead.

        Called from the holder's way out, often by cancellation: shielded, so that the
        slot is not lost with it, and bounded by ``timeout``, so that leaving never
        waits longer for the store than a reservation would.  It never raises: a store
        that fails here (the holder's own exception is on its way) goes local-only, as
        it would in any other call.
        """
        if reservation.slot is None or not self._healthy or self._nursery is None:
            return
        self._activate(link, trio.current_time() + PARK_AFTER)
        with trio.CancelScope(shield=True):
            try:
                with trio.fail_after(self.timeout):
                    await self._store_give_back(link.key, reservation.slot, reservation.schedule)
            except Exception as exc:  # any: it must not replace the holder's own exception
                self._went_down(exc)

    def _went_down(self, exc: BaseException) -> None:
        self._failures += 1
        self._after_failure()
        # The next attempt is retry_interval after the last failure, not the first.
        self._down_since = trio.current_time()
        if self._healthy:
            self._healthy = False
            coordination_log.warning(
                "shared throttling state unavailable, continuing with local-only throttling",
                extra={
                    "trestfly_backend": self.backend_name,
                    "trestfly_error": type(exc).__name__,
                },
            )

    def _after_failure(self) -> None:  # noqa: B027 (a hook: most stores have nothing to do)
        """A call to the store failed (a hook for backends: RedisCoordination drops its
        connections, which a cut-off call may have left waiting for a reply)."""

    async def _sync_loop(self) -> None:
        while True:
            if self._healthy:
                # Every link parked: nothing to sync until activity on one wakes us, but
                # the parked ones are looked at for news now and then (PARKED_SWEEP).
                idle = self.sync_interval if self._active else PARKED_SWEEP
                with trio.move_on_after(idle if self._links else math.inf):
                    await self._wake.wait()
            elif not self._links:
                # No session to try the store with: a retry would sync nothing, never
                # fail, and loop at once, forever.  A session attaching wakes us.
                await self._wake.wait()
            if not self._healthy:
                # A failed store is tried again at a slow pace, whatever happens here.
                await trio.sleep_until(self._down_since + self.retry_interval)
            self._wake = trio.Event()
            was_healthy = self._healthy
            now = trio.current_time()
            if now >= self._sweep_at:
                self._sweep_at = now + PARKED_SWEEP
                for link in self._links:
                    if link.parked and self._has_news(link, now):
                        self._unpark(link)
            if not was_healthy and not self._active and self._links:
                # The retry needs a link to try the store with (parked again once the
                # store is back, if still quiet).
                self._unpark(self._links[0])
            synced = False
            for link in list(self._active):
                if link not in self._active:
                    continue  # detached while an earlier link synced
                # Not while the store is down: the retry goes through these links.
                if was_healthy and self._quiet(link, trio.current_time()):
                    self._park(link)
                    continue
                if not await self._sync(link):
                    break
                synced = True
            else:
                if not was_healthy and synced:
                    self._healthy = True
                    coordination_log.info(
                        "shared throttling state reachable again",
                        extra={"trestfly_backend": self.backend_name},
                    )

    async def _sync(self, link: SharedLink) -> bool:
        """One sync of one link; False when the store failed."""
        try:
            async with link.lock:
                return await self._sync_once(link)
        finally:
            link.joined.set()

    def _request(self, link: SharedLink, now: float) -> SyncRequest:
        """What a sync of ``link`` tells the store now."""
        throttle = link.throttle
        gate_until = throttle.gate_until
        rate = throttle.learned_rate
        close_for = (
            # However long the gate closes here, the store is told at most
            # MAX_CLOSE_FOR (a 20-digit Retry-After broke the Redis script).
            min(gate_until - now, MAX_CLOSE_FOR)
            if gate_until > now and gate_until > link.pushed_gate + GATE_TOLERANCE
            else None
        )
        proposal = None
        delta = 0.0
        if rate is not None and (throttle.rate_cuts != link.rate_cuts or link.republish):
            proposal = RateProposal(rate, throttle.ceiling, link.version)
        elif rate is not None and link.synced_rate is not None:
            delta = rate - link.synced_rate
        return SyncRequest(
            close_for=close_for,
            proposal=proposal,
            rate_delta=delta,
            based_on=link.version,
            successes=throttle.successes - link.pushed_successes,
        )

    async def _sync_once(self, link: SharedLink) -> bool:
        throttle = link.throttle
        now = trio.current_time()
        gate_until = throttle.gate_until
        rate_cuts = throttle.rate_cuts
        rate = throttle.learned_rate
        request = self._request(link, now)
        try:
            with trio.fail_after(self.timeout):
                reply = await self._store_sync(link.key, request)
        except self._unavailable() as exc:
            # At most once: pushed again by the next sync, successes the store did count
            # were counted twice, for every worker (a served rate too high, the unsafe
            # side).  Lost instead, they are the store's only (a rate a little low).
            link.pushed_successes += request.successes
            link.unconfirmed_successes += request.successes
            self._went_down(exc)
            return False
        self._syncs += 1
        self._adopt(link, request, reply, now, gate_until, rate_cuts, rate)
        return True

    def _adopt(
        self,
        link: SharedLink,
        request: SyncRequest,
        reply: SyncReply,
        sent_at: float,
        gate_until: float,
        rate_cuts: int,
        rate: float | None,
    ) -> None:
        throttle = link.throttle
        now = trio.current_time()
        link.pushed_successes += request.successes
        if request.close_for is not None:
            link.pushed_gate = max(link.pushed_gate, gate_until)
            link.announced_gate = max(link.announced_gate, gate_until)
        if link.shared_successes is not None:
            # Our unconfirmed pushes taken as counted: if the store lost them, others'
            # successes read low (the safe side), never ours as theirs.
            others = (
                reply.successes
                - link.shared_successes
                - request.successes
                - link.unconfirmed_successes
            )
            if others > 0:
                throttle.add_remote_successes(others, now)
        link.unconfirmed_successes = 0
        link.shared_successes = reply.successes

        until = remote_gate_end(reply.gate_remaining, sent_at, now, throttle.gate_until)
        if until is not None:
            self.hear_gate(link, now, until)
        elif reply.gate_remaining > 0:
            link.pushed_gate = max(link.pushed_gate, sent_at + reply.gate_remaining)
        if link.announced_gate > now and reply.gate_remaining <= 0:
            # The store holds no gate while the one this worker closed and announced is
            # still closed: it forgot it (a Redis restarted empty, a key expired).
            # Announced once, it was never said again, and a worker joining the key
            # afterwards sent into the closed gate.  The next sync says it again.  Only
            # by the worker that closed it: one that heard it from the store pushed its
            # own, later, end (and the closer took its own gate back as another's);
            # and not when the store holds a shorter gate (it caps them at
            # MAX_CLOSE_FOR: compared by their ends, a capped gate went out at every
            # sync, restarting the store's schedule each time).
            link.pushed_gate = link.announced_gate = -math.inf

        cut_here_meanwhile = throttle.rate_cuts != rate_cuts
        if reply.version < link.version:
            # The store forgot (restarted, or the key expired): tell it what we know.
            link.version = reply.version
            link.republish = True
            return
        link.republish = False
        if request.proposal is not None:
            link.rate_cuts = rate_cuts
        if reply.rate is None or cut_here_meanwhile:
            # Nothing shared yet, or a cut happened here during the call: the next sync
            # proposes it.
            link.version = reply.version
            link.synced_rate = throttle.learned_rate if reply.rate is not None else None
            return
        if reply.accepted:
            link.version = reply.version
            link.synced_rate = throttle.learned_rate
            return
        grown_meanwhile = (throttle.learned_rate or 0.0) - (rate or 0.0)
        if reply.version > link.version:
            # Another worker cut (or first set) the rate: a new episode here too.
            link.version = reply.version
            link.rate_cuts = throttle.rate_cuts
            throttle.adopt_rate(now, reply.rate, reply.ceiling, cut=True)
            self._remote_cuts += 1
            link.synced_rate = throttle.learned_rate
            return
        # Same version: everyone's growth, plus ours since the call left.
        throttle.adopt_rate(now, reply.rate + max(grown_meanwhile, 0.0), reply.ceiling, cut=False)
        link.synced_rate = reply.rate


def _is_news(request: SyncRequest) -> bool:
    """Whether ``request`` tells the store anything (else it only reads)."""
    return (
        request.close_for is not None
        or request.proposal is not None
        or request.rate_delta != 0
        or request.successes != 0
    )


class MemoryCoordination(Coordination):
    """Shares throttling state between the sessions of one Trio program.

    Several sessions that use one API key (an SDK's client per user task, say) share
    one quota: give them one ``MemoryCoordination``.  Across processes, use
    :class:`~trestfly.RedisCoordination`.  The store's clock is ``trio.current_time()``:
    opened again in another ``trio.run``, it starts empty.

    .. versionadded:: 0.1.0
    """

    backend_name = "memory"

    def __init__(
        self,
        *,
        quota_key: Callable[[str], str] | None = None,
        sync_interval: float = 0.02,
        key_ttl: float = 300.0,
    ) -> None:
        super().__init__(quota_key=quota_key, sync_interval=sync_interval, key_ttl=key_ttl)
        self._book = SharedQuotaBook()

    def _start_run(self) -> None:
        # The book is timed by trio.current_time(), which a new run starts elsewhere: a
        # 429 of the last run came back as a wait of hours.
        self._book = SharedQuotaBook()

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        now = trio.current_time()
        return self._book.get(key, now).sync(now, request, self.key_ttl)

    async def _store_reserve(self, key: str, interval: float, burst: int) -> Reservation:
        return await self._store_reserve_within(key, interval, burst, math.inf)

    async def _store_reserve_within(
        self, key: str, interval: float, burst: int, max_wait: float
    ) -> Reservation:
        now = trio.current_time()
        return self._book.get(key, now).reserve(now, interval, burst, self.key_ttl, max_wait)

    async def _store_give_back(self, key: str, slot: float, schedule: int) -> bool:
        now = trio.current_time()
        quota = self._book.find(key, now)
        return quota is not None and quota.give_back(now, slot, schedule)
