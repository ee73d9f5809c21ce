"""The Trio side of per-origin throttling: wait at the gate, the probe, the pacer, a slot.

:class:`OriginGate` wraps the pure :class:`~trestfly._throttle.OriginThrottle` and does
the waiting it asks for, always inside the caller's cancel scope, so cancelling a task
that waits here ends the wait at once and leaves nothing behind (no reserved slot or
pacer reservation, no stuck probe): a pacer slot, local or the coordination store's, is
given back on the way out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import trio

from ._call_log import log_clock_skew
from ._coordination import SharedLink, remote_gate_end
from ._origins import origin_of
from ._retry_after import HINTED_STATUSES, throttle_clock
from ._shared_state import Reservation
from ._throttle import Admission, OriginThrottle, Ticket
from .errors import StopReason

#: Tasks of one session that may hold reservations of a coordination store's pacer at
#: once (see OriginGate._wait_shared_slot).  With W workers the store's schedule runs at
#: most W * SHARED_HOLDERS slots ahead; each worker still takes slots as fast as the
#: shared rate gives them, since a holder passes its turn on as soon as its slot comes.
SHARED_HOLDERS = 4


@dataclass(frozen=True, slots=True)
class SharedSlot:
    """A paced slot taken through a coordination: when to send (on Trio's clock), and
    the store's reservation to give back if it goes unused (None: our own pacer's, the
    store being unavailable)."""

    at: float
    reservation: Reservation | None
    #: The link the reservation was made through (None with it): given back through it
    #: even if the session left the coordination meanwhile (``OriginGate.link`` is None).
    link: SharedLink | None = None


class Admitted:
    """An admitted attempt: its ticket, and the identity that borrows the slot.

    The slot is borrowed on behalf of this object, not of the task, so a task may hold
    slots of several sessions or origins at once (an auth flow calling another API).
    """

    __slots__ = ("ticket",)

    def __init__(self) -> None:
        self.ticket: Ticket | None = None


async def checkpoint_if_cancelled_or_past_deadline() -> None:
    """Raise Cancelled if the task is cancelled, or if its deadline has passed.

    Trio turns a passed deadline into a cancellation at its next scheduling point, not at
    once: on a busy machine the time can pass between two checkpoints, and a decision
    made then against the deadline (a retry, a wait at the gate) answered the canceller
    with an API error where it must get Cancelled.  A scheduling point delivers it first.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    if trio.current_effective_deadline() <= trio.current_time():
        await trio.lowlevel.checkpoint()


async def take_slot(limiter: trio.CapacityLimiter, borrower: object) -> None:
    """Borrow a token, yielding to the scheduler only when one must be waited for.

    ``acquire_on_behalf_of`` always passes through the scheduler; on the hot path (a free
    slot) that is a measurable share of a request's cost, and the request checkpoints in
    its I/O right after anyway.
    """
    try:
        limiter.acquire_on_behalf_of_nowait(borrower)
    except trio.WouldBlock:
        await limiter.acquire_on_behalf_of(borrower)


class SessionLeft(Exception):
    """Internal: the session's block ended while the attempt waited for admission (see
    OriginGate.abandon_waits)."""


class GateClosed(Exception):
    """Internal: the gate stays closed past the caller's deadline or ``max_retry_after``.

    The session turns it into the mapped error of the response that closed the gate.
    """

    def __init__(
        self,
        response: httpx.Response | None,
        remaining: float,
        *,
        pacer: bool = False,
        redact_fields: tuple[str, ...] = (),
        past_deadline: bool = False,
    ) -> None:
        super().__init__(remaining)
        self.response = response
        self.remaining = remaining
        #: Which bound refused the wait: the caller's deadline, or ``max_retry_after``.
        self.stop = StopReason.PAST_DEADLINE if past_deadline else StopReason.WAIT_TOO_LONG
        #: The ``redact_fields`` of the call that got ``response``: its URL is quoted to
        #: another caller, whose own fields do not cover it.
        self.redact_fields = redact_fields
        #: The wait refused was for the pacer's next slot, not for a closed gate.
        self.pacer = pacer


class OriginGate:
    """Admission to one origin; shared by every task of a session that talks to it."""

    def __init__(self, throttle: OriginThrottle, link: SharedLink | None = None) -> None:
        self.throttle = throttle
        #: Set when the session shares this origin's state through a coordination.
        self.link = link
        self.limiter = trio.CapacityLimiter(throttle.concurrency_limit)
        self._probe_done = trio.Event()
        # Set (and replaced) whenever the throttle voids pending reservations, so that
        # waiters holding one reserve again at once instead of at their stale slot.
        self._rescheduled = trio.Event()
        throttle.on_reschedule = self._wake_reserved
        self._shared_holders = trio.Semaphore(SHARED_HOLDERS)
        #: The response that last closed the gate (quoted when a request gives up on it).
        self.closing_response: httpx.Response | None = None
        #: The ``redact_fields`` of the call that got ``closing_response``.
        self.closing_fields: tuple[str, ...] = ()
        #: Whether a Retry-After of this origin's that was not understood was logged.
        self.unread_hint_told = False
        #: Whether this origin's clock was said to be off this machine's.
        self.skew_told = False
        # The cancel scopes of the waits in progress (see _unless_left).
        self._waits: set[trio.CancelScope] = set()

    def wall_clock(self, response: httpx.Response) -> float:
        """The POSIX time to read ``response``'s dated hints (a Retry-After date, an
        epoch reset) against: this machine's, or the server's by its ``Date`` when a
        throttle's says the two clocks are apart (see throttle_clock; said once)."""
        local_now = time.time()
        if response.status_code not in HINTED_STATUSES:
            return local_now
        clock = throttle_clock(response.headers.get("date"), local_now)
        if clock != local_now and not self.skew_told:
            self.skew_told = True
            log_clock_skew(origin_of(response.request.url), local_now - clock)
        return clock

    @property
    def in_use(self) -> bool:
        """Whether a task waits here (at the gate, for a slot) or holds one of its slots:
        such a gate must not be forgotten, or the task would feed a throttle nobody
        reads (a task holding the origin's slot while it queued for the session's saw
        its 429 counted nowhere)."""
        statistics = self.limiter.statistics()
        return bool(self._waits or statistics.borrowed_tokens or statistics.tasks_waiting)

    def abandon_waits(self) -> None:
        """The session's block ended: every wait for admission in progress ends at once
        with SessionLeft.  A call started outside the block waited out the whole gate
        (up to ``max_retry_after``) or its pacer slot to learn the session was closed,
        each taking its slot in turn for nothing."""
        for scope in list(self._waits):  # each leaves the set when its task resumes
            scope.cancel()

    @contextmanager
    def _unless_left(self) -> Iterator[None]:
        """Run a wait that :meth:`abandon_waits` ends, raising SessionLeft."""
        scope = trio.CancelScope()
        self._waits.add(scope)
        try:
            with scope:
                yield
        finally:
            self._waits.discard(scope)
        if scope.cancelled_caught:
            raise SessionLeft

    async def _check_wait(self, until: float, max_wait: float, *, pacer: bool = False) -> None:
        # In a cancelled scope the effective deadline is -inf, which the check below
        # would take for a deadline already past and answer with GateClosed (an API
        # error): the caller's cancellation must win, as a Cancelled.
        await checkpoint_if_cancelled_or_past_deadline()
        now = trio.current_time()
        too_long = until - now > max_wait
        if too_long or until >= trio.current_effective_deadline():
            if pacer:  # the gate is open: no response to quote, the wait is the slot's
                raise GateClosed(None, until - now, pacer=True, past_deadline=not too_long)
            raise GateClosed(
                self.closing_response,
                max(0.0, self.throttle.gate_until - now),
                redact_fields=self.closing_fields,
                past_deadline=not too_long,
            )

    async def admit(
        self, *, max_wait: float, session: trio.CapacityLimiter | None = None
    ) -> Admitted:
        """Wait until this task may send to the origin; returns its ticket.

        The attempt leaves holding a slot of the origin's concurrency limit and, when
        ``session`` is given, one of that session-wide limiter, both borrowed on behalf
        of the returned object (:meth:`release` frees the origin's; the caller frees
        the session's).  The session's slot is taken last, after every wait here, so
        that a task waiting at a closed gate or for the pacer holds none and other
        origins keep it; and before the attempt counts as sent, so that one that queued
        for it while the gate closed goes back to the gate instead of into it.

        Raises:
            GateClosed: the wait would outlast ``max_wait`` seconds or the caller's
                deadline (checked before sleeping, never by sleeping into it).
        """
        throttle = self.throttle
        paced = False
        admitted = Admitted()
        if self.link is not None and not self.link.joined.is_set():
            await self.link.join()
        while True:
            # A waiter woken (the probe answered, the gate reopened) and cancelled in
            # the same scheduler step comes round without having checkpointed: it must
            # leave as Cancelled, not be admitted nor refused with an API error.
            await trio.lowlevel.checkpoint_if_cancelled()
            now = trio.current_time()
            # A reservation (ours or the store's) made under an older epoch is void.
            epoch = throttle.epoch
            decision = throttle.admit(now, shared=self.link is not None)
            if decision.kind == "shared":
                waited = await self._wait_shared_slot(max_wait, epoch)
                if waited is None:
                    continue  # the gate closed, or the rate was cut: ask again
                paced = paced or waited
                decision, now = Admission("go", trio.current_time()), trio.current_time()
            if decision.kind == "gate":
                # The announced instant is what the caller's bounds are checked against;
                # the jitter on top of it is ours, so it gives way to those bounds.
                await self._check_wait(throttle.gate_until, max_wait)
                wake = throttle.wake_time()
                if wake - now > max_wait or wake >= trio.current_effective_deadline():
                    wake = throttle.gate_until
                with self._unless_left():
                    await trio.sleep_until(wake)
                continue
            if decision.kind == "probe-wait":
                with self._unless_left():
                    await self._probe_done.wait()
                continue
            if decision.kind == "round":
                # The next round of a window's quota: ask again when it opens, or when
                # the schedule changes before (the gate closed meanwhile).
                await self._wait_for_schedule(decision.at, max_wait)
                continue
            if decision.kind == "limit":
                # The client's own rate_limit holds the probe: a wait of the caller's
                # making, which max_retry_after (the server's delays) does not bound.
                # Bounded by it, a 429 asking for 1 s under rate_limit=0.1 failed the
                # call at once, unsent, "retry_after=8.99", and every call after it.
                await self._wait_for_schedule(decision.at, self._slot_bound(max_wait))
                continue
            probe = decision.kind == "probe"
            if probe:
                # Created before any checkpoint, so every task that sees `probing` waits
                # on this event, and the probe's ticket sets it whatever happens.
                self._probe_done = trio.Event()
            elif decision.at > now:
                try:
                    await self._wait_for_schedule(decision.at, self._slot_bound(max_wait))
                except BaseException:
                    throttle.give_back(decision.at, epoch, trio.current_time())
                    raise
                paced = True
                if throttle.epoch != epoch:
                    continue  # the gate closed or the rate was cut: reserve again
            if not probe:
                await self._wait_for_rate_limit(max_wait)
            try:
                if probe and self.link is not None and not await self._pace_probe(max_wait):
                    self._end_probe()
                    continue  # the gate closed elsewhere meanwhile
                await self._take_slots(admitted, session)
            except BaseException:
                if probe:
                    self._end_probe()
                raise
            sending_at = trio.current_time()
            if (
                throttle.gate_until > sending_at
                or (not probe and throttle.epoch != epoch)
                or throttle.limit_floor(sending_at) > sending_at
                or throttle.quota_spent(sending_at)
            ):
                # The gate closed, or the pacer's schedule restarted (voiding our slot),
                # while we queued for a slot: ask again, and wait at the gate if closed.
                # A probe too: one sent into a gate closed again (by an answer to a
                # request from before) arrived before the announced instant.  And one
                # the client-side rate_limit does not let go yet (a slot reserved before
                # the schedule restarted, taken after another request went).  And one
                # whose slot came after the quota was spent: slots are reserved at the
                # quota's pace, which spreads what is left over `quota_spread`, not over
                # the window, so the slots of a long queue outnumber it (300 left, 800
                # tasks: 100 sent into the spent window); asked again, the gate closes.
                self._release_slots(admitted, session)
                if probe:
                    self._end_probe()
                continue
            admitted.ticket = throttle.on_sent(sending_at, paced=paced, probe=probe)
            return admitted

    async def _wait_for_rate_limit(self, max_wait: float) -> None:
        """Wait, keeping the slot reserved, until the client's ``rate_limit`` lets the
        next request go.

        That limit counts from the requests actually sent, and a task woken a fraction
        of a millisecond after its slot sends as late and holds the next slot back by
        as much.  Refused then, the next task asked again and reserved anew behind every
        waiter: 8 tasks at ``rate_limit=20`` sent 12 a second.
        """
        now = trio.current_time()
        floor = self.throttle.limit_floor(now)
        if floor > now:
            await self._check_wait(floor, self._slot_bound(max_wait), pacer=True)
            with self._unless_left():
                await trio.sleep_until(floor)

    def _slot_bound(self, max_wait: float) -> float:
        """How far off a pacer slot may be, besides the caller's deadline.

        ``max_wait`` (``max_retry_after``) bounds what the server makes a call wait, so
        it bounds a slot when the server's own pace (its learned or quota rate) spaces
        sends further apart than that.  A slot far off because many calls queue for it
        is the caller's own doing, as is the client's ``rate_limit``: only the caller's
        deadline bounds it (1,000 calls queued at 5,000 an hour failed from the 420th
        on, at once and unsent, with a TimeoutError).
        """
        interval = self.throttle.server_interval(trio.current_time())
        return max_wait if interval > max_wait else math.inf

    async def _wait_for_schedule(self, at: float, max_wait: float) -> None:
        """Wait for a time the pacer set (a slot, a timed round), within the caller's
        bounds, or until the schedule restarts before it."""
        await self._check_wait(at, max_wait, pacer=True)
        with self._unless_left(), trio.move_on_at(at):
            await self._rescheduled.wait()

    async def _take_slots(self, admitted: Admitted, session: trio.CapacityLimiter | None) -> None:
        """The origin's slot, then the session's (holding nothing if cancelled)."""
        limit = self.throttle.concurrency_limit
        if self.limiter.total_tokens != limit:
            self.limiter.total_tokens = limit
        await take_slot(self.limiter, admitted)
        if session is None:
            return
        try:
            await take_slot(session, admitted)
        except BaseException:
            self.limiter.release_on_behalf_of(admitted)
            raise

    def _release_slots(self, admitted: Admitted, session: trio.CapacityLimiter | None) -> None:
        self.limiter.release_on_behalf_of(admitted)
        if session is not None:
            session.release_on_behalf_of(admitted)

    async def _wait_shared_slot(self, max_wait: float, epoch: int) -> bool | None:
        """Reserve a slot from the store and wait for it; True if it had to wait.

        None: ask again (the gate closed elsewhere, or the schedule restarted here
        meanwhile).  At most SHARED_HOLDERS tasks of this session hold store
        reservations at once; the others queue here, in order, holding nothing.  A
        store's pacer cannot void reservations as this process's can, so without the
        bound a hundred waiting tasks would push its schedule seconds ahead at the rate
        of the moment, and a rate that grows (or a worker that joins) would change
        nothing until those slots were spent.
        """
        async with self._shared_holders:
            throttle = self.throttle
            if throttle.epoch != epoch:
                return None  # the gate closed or the rate was cut while we queued
            # The rate of now, not of when we started queueing: it may have grown.
            rate = throttle.effective_rate(trio.current_time())
            if rate is None:
                return False
            bound = self._slot_bound(max_wait)
            shared = await self._reserve_shared(rate, bound)
            if shared is None:
                return None
            now = trio.current_time()
            if shared.at <= now:
                return False
            try:
                await self._check_wait(shared.at, bound, pacer=True)
                with self._unless_left(), trio.move_on_at(shared.at):
                    await self._rescheduled.wait()
            except BaseException:
                await self._give_back(shared, epoch)
                raise
            if self.throttle.epoch != epoch:
                # Woken to reserve again (the gate closed, the rate changed here): the
                # slot is ours to give back, and may be the one we take again.
                await self._give_back(shared, epoch)
                return None
            return True

    async def _pace_probe(self, max_wait: float) -> bool:
        """Space the probes of several workers by the shared pacer; False: gate closed.

        Every worker probes when the shared gate reopens; unpaced, their probes arrive
        together, one wins the quota and the others close the gate again.
        """
        throttle = self.throttle
        epoch = throttle.epoch
        rate = throttle.effective_rate(trio.current_time())
        if rate is None:
            return True
        bound = self._slot_bound(max_wait)
        shared = await self._reserve_shared(rate, bound)
        if shared is None:
            return False
        if shared.at > trio.current_time():
            try:
                await self._check_wait(shared.at, bound, pacer=True)
                with self._unless_left():
                    await trio.sleep_until(shared.at)
            except BaseException:
                await self._give_back(shared, epoch)
                raise
        return True

    async def _give_back(self, shared: SharedSlot, epoch: int) -> None:
        """Its holder leaves without sending: the next reservation takes the slot.

        A store's slot goes back to the store (shielded and bounded by the
        coordination's timeout, never raising: see Coordination.give_back); one of our
        own pacer, reserved under ``epoch`` while the store was unavailable, to it.
        """
        if shared.reservation is None or shared.link is None:
            self.throttle.give_back(shared.at, epoch, trio.current_time())
            return
        await shared.link.give_back(shared.reservation)

    async def _reserve_shared(self, rate: float, max_wait: float) -> SharedSlot | None:
        """A paced slot from the coordination store, or from our own pacer without it.

        Returns None when the store says another worker closed the gate (it is now
        closed here too).

        Raises:
            GateClosed: the slot is past ``max_wait`` or the caller's deadline (the
                store only quoted it: a slot reserved and refused stays spent for
                every worker).
        """
        throttle = self.throttle
        link = self.link
        await checkpoint_if_cancelled_or_past_deadline()  # a -inf deadline is no bound
        now = trio.current_time()
        if link is None:
            # The session left the coordination while this task queued for it (its block
            # ended with calls still out): our own pacer, as when the store is down.
            return SharedSlot(throttle.reserve_local(now).at, None)
        time_left = trio.current_effective_deadline() - now
        bound = min(max_wait, time_left)
        sent_at = now
        reservation = await link.reserve(rate, throttle.pacer_burst(rate), bound)
        now = trio.current_time()
        if reservation is None:
            # The store is unavailable: local-only.
            return SharedSlot(throttle.reserve_local(now).at, None)
        if not reservation.reserved:
            raise GateClosed(None, reservation.wait, pacer=True, past_deadline=time_left < max_wait)
        if reservation.gate_remaining > 0:
            until = remote_gate_end(reservation.gate_remaining, sent_at, now, throttle.gate_until)
            if until is not None:
                link.coordination.hear_gate(link, now, until)
            else:
                # Our own gate: the store ends it the one-way trip later than we do (it
                # adds close_for to the instant it heard of it).  Heard as another's, a
                # reservation just after our reopening counted a remote closure,
                # extended the gate and began a new episode.  Waited out, as it is.
                with self._unless_left():
                    await trio.sleep_until(sent_at + reservation.gate_remaining)
            return None
        return SharedSlot(now + reservation.wait, reservation, link)

    def _wake_reserved(self) -> None:
        self._rescheduled.set()
        self._rescheduled = trio.Event()

    def _end_probe(self) -> None:
        self.throttle.release_probe()
        self._probe_done.set()

    def release(self, admitted: Admitted) -> None:
        """The attempt is over (answered, failed or cancelled): free its slot."""
        ticket = admitted.ticket
        assert ticket is not None, "release() of an attempt that was never admitted"
        self.throttle.on_done(ticket, trio.current_time())
        self.limiter.release_on_behalf_of(admitted)
        # The answers change the limit (a crowd settled, growth): tasks already queued
        # for a slot see it now, not when some task next passes through admit().
        limit = self.throttle.concurrency_limit
        if self.limiter.total_tokens != limit:
            self.limiter.total_tokens = limit
        if ticket.probe:
            self._probe_done.set()
