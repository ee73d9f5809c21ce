"""Pure semantics of the throttling state that sessions share through a coordination store.

One :class:`SharedQuota` exists per quota key (an origin, or a key the user names, such
as one API key shared by several hosts).  It holds what every worker must agree on:

* ``gate_until``: the instant before which nobody sends (extended, never shortened);
* ``tat``: the theoretical arrival time of a GCRA pacer (the algorithm of redis-cell:
  one number per key; a reservation moves it by one interval);
* ``schedule`` and ``holes``: the pacer's schedule (bumped whenever ``tat`` restarts:
  a gate closed, a rate cut or raised) and the slots of it given back by waiters that
  left without sending (see :meth:`SharedQuota.give_back`), which the next
  reservations take before the schedule moves on;
* ``rate``/``ceiling``/``version``: the learned rate, the last paced rate that was
  throttled, and a version bumped by every accepted cut, so that of several workers
  cutting for the same burst of 429s only the first is taken (compare-and-set); while
  there is no ceiling, a higher first sample (a floor) raises the rate instead;
* ``successes``: a running count of everyone's successes, so that each worker can
  judge the rate the server served to all of them, not just to itself.

These functions are the reference of the Lua scripts in :mod:`trestfly._redis` (tests
run both on the same inputs) and the store of :class:`~trestfly.MemoryCoordination`.
Times are seconds on the store's clock, passed in; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

#: Seconds after an accepted cut during which further cuts are refused: the throttles
#: that reach other workers in that time answer requests sent before they heard of the
#: cut (a sync is 20 ms away), so they are the same episode, not evidence of a new one.
CUT_SETTLE = 0.1

#: The longest a gate is announced for, in seconds (about 31 years).  A Retry-After
#: may say anything (20 digits are valid delay-seconds; one too long for a float is
#: TOO_LONG, 1e300 s): the gate closes for it here, but every store must be able to
#: hold its end, and Redis keeps a key's expiry in integer milliseconds.
MAX_CLOSE_FOR = 1e9

#: Slots given back that a key keeps (the earliest are dropped past it, as the first to
#: fall due anyway): waiters cancelled faster than others reserve must not grow a key
#: without bound, in memory or in the Redis hash that holds them as one string.
MAX_HOLES = 256


@dataclass(frozen=True, slots=True)
class RateProposal:
    """A worker's cut of the learned rate, valid only if nobody cut since ``based_on``."""

    rate: float
    ceiling: float | None
    based_on: int


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What a worker tells the store in one sync.

    Attributes:
        close_for: seconds from now the gate must stay closed (None: nothing to announce).
        proposal: a cut of the learned rate (None: no cut since the last sync).
        rate_delta: growth of the learned rate since the last sync (applied only while
            the version is still ``based_on``).
        based_on: the version the worker's rate is based on.
        successes: the worker's successes since its last sync.
    """

    close_for: float | None = None
    proposal: RateProposal | None = None
    rate_delta: float = 0.0
    based_on: int = 0
    successes: int = 0


@dataclass(frozen=True, slots=True)
class SyncReply:
    """The shared state after a sync (``gate_remaining`` <= 0 means open)."""

    gate_remaining: float
    rate: float | None
    ceiling: float | None
    version: int
    successes: int
    accepted: bool


@dataclass(frozen=True, slots=True)
class Reservation:
    """A pacer reservation: send after ``wait`` seconds, or the gate is closed.

    ``gate_remaining`` > 0 means the gate is closed for that long and nothing was
    reserved.
    """

    gate_remaining: float
    wait: float
    #: False: the slot was only quoted (it was past the caller's ``max_wait``).
    reserved: bool = True
    #: The slot reserved, on the store's clock, and the schedule it belongs to: what
    #: :meth:`SharedQuota.give_back` takes back (None: nothing was reserved).
    slot: float | None = None
    schedule: int = 0


@dataclass(slots=True)
class SharedQuota:
    """The shared state of one quota key (see the module docstring)."""

    gate_until: float = -math.inf
    tat: float = -math.inf
    rate: float | None = None
    ceiling: float | None = None
    version: int = 0
    cut_at: float = -math.inf
    successes: int = 0
    expires_at: float = math.inf
    schedule: int = 0
    #: Slots given back and still ahead, earliest first.
    holes: list[float] = field(default_factory=list)

    def sync(self, now: float, request: SyncRequest, ttl: float) -> SyncReply:
        """Apply a worker's news and return the state it must adopt."""
        close_for = None if request.close_for is None else min(request.close_for, MAX_CLOSE_FOR)
        if close_for is not None and now + close_for > self.gate_until:
            self.gate_until = now + close_for
            # The schedule restarts at the reopening: reservations made before are void.
            self._restart_schedule(self.gate_until)
        accepted = False
        proposal = request.proposal
        if (
            proposal is not None
            and proposal.based_on == self.version
            and now >= self.cut_at + CUT_SETTLE
        ):
            self.rate, self.ceiling = proposal.rate, proposal.ceiling
            self.version += 1
            self.cut_at = now
            accepted = True
            # A new rate voids the reservations made at the old one (every worker's
            # waiting tasks reserve again): the schedule restarts now, or else each cut
            # would cost the slots they had reserved.
            self._restart_schedule(max(now, self.gate_until))
        elif (
            proposal is not None
            and proposal.ceiling is None
            and self.ceiling is None
            and self.rate is not None
            and proposal.rate > self.rate
        ):
            # First samples (no paced rate was throttled yet, so no ceiling) are floors:
            # what one worker was served of a burst it shared with the others.  The
            # first to arrive is not the best; a higher one raises the rate (a new
            # version, so everyone adopts it), where a low one taken first had four
            # workers crawl back up from a few requests per second.
            self.rate = proposal.rate
            self.version += 1
            accepted = True
            self._restart_schedule(max(now, self.gate_until))
        elif (
            proposal is None
            and request.rate_delta
            and self.rate is not None
            and request.based_on == self.version
        ):
            self.rate = max(self.rate + request.rate_delta, 0.0)
        self.successes += request.successes
        self._touch(now, ttl)
        return SyncReply(
            gate_remaining=self.gate_until - now,
            rate=self.rate,
            ceiling=self.ceiling,
            version=self.version,
            successes=self.successes,
            accepted=accepted,
        )

    def reserve(
        self, now: float, interval: float, burst: int, ttl: float, max_wait: float = math.inf
    ) -> Reservation:
        """Reserve the next send slot at one request per ``interval`` (GCRA).

        A slot more than ``max_wait`` away is only quoted, not reserved: the caller
        would refuse it (its deadline), and a slot reserved and not used stays spent, so
        callers refused one after another would push the schedule ahead for everyone.
        A slot exactly ``max_wait`` away is taken, as the local pacer takes it: with
        ``max_retry_after=0``, a free slot (0 s away) must still be.

        A slot given back (:meth:`give_back`) and still ahead is taken first, as the
        local pacer takes its holes; one already due is dropped, not taken: sent now,
        it could land closer than an interval to the slot after it.
        """
        if self.gate_until > now:
            return Reservation(gate_remaining=self.gate_until - now, wait=0.0)
        holes = self.holes
        while holes and holes[0] <= now:
            del holes[0]
        tat = max(self.tat, now)
        send_at = holes[0] if holes else max(now, tat - (burst - 1) * interval)
        if send_at - now > max_wait:
            return Reservation(gate_remaining=0.0, wait=send_at - now, reserved=False)
        if holes:
            del holes[0]
        else:
            self.tat = max(tat, send_at) + interval
        self._touch(now, ttl)
        return Reservation(
            gate_remaining=0.0, wait=send_at - now, slot=send_at, schedule=self.schedule
        )

    def give_back(self, now: float, slot: float, schedule: int) -> bool:
        """A waiter left without sending in the ``slot`` it reserved under ``schedule``
        (cancelled, or refused a wait past its deadline): the next reservation of any
        worker takes it.  False: ignored.

        Otherwise every abandoned slot stays spent for all workers, and nothing moves
        the schedule back while nothing is sent: four waiters of a 1/s pacer cancelled
        left the next request waiting 5 s instead of 1 s.  A slot of an older schedule
        was voided already (the gate closed, or the rate changed, since), one already
        due holds nothing back, and one at or past ``tat`` was never reserved from this
        schedule (the store forgot the key meanwhile).  Changes nothing else, not even
        the expiry: a slot is before ``tat``, which the expiry already outlives.
        """
        if schedule != self.schedule or not now < slot < self.tat:
            return False
        holes = self.holes
        while holes and holes[0] <= now:
            del holes[0]
        bisect.insort(holes, slot)
        if len(holes) > MAX_HOLES:
            del holes[: len(holes) - MAX_HOLES]
        return True

    def _restart_schedule(self, at: float) -> None:
        """Void every pending reservation, and the slots given back: a new schedule."""
        self.tat = at
        self.schedule += 1
        self.holes.clear()

    def _touch(self, now: float, ttl: float) -> None:
        # Outlives a long closed gate: forgetting it early would let everyone in.
        self.expires_at = max(now, self.gate_until, self.tat) + ttl


#: Keys a book holds before its first sweep of expired ones.
SWEEP_MIN = 64


class SharedQuotaBook:
    """Every quota key's :class:`SharedQuota`, forgetting keys nobody touched for ``ttl``."""

    def __init__(self) -> None:
        self._quotas: dict[str, SharedQuota] = {}
        # Swept when the count doubles since the last sweep (amortised): swept at every
        # new key past 64, a crawl of 16,000 origins within the ttl paid 180 us a key.
        self._sweep_at = SWEEP_MIN

    def get(self, key: str, now: float) -> SharedQuota:
        quota = self._quotas.get(key)
        if quota is None or quota.expires_at <= now:
            if len(self._quotas) >= self._sweep_at:
                self._forget_expired(now)
                self._sweep_at = max(SWEEP_MIN, 2 * len(self._quotas))
            quota = self._quotas[key] = SharedQuota()
        return quota

    def find(self, key: str, now: float) -> SharedQuota | None:
        """The key's state if it is still kept (without creating it)."""
        quota = self._quotas.get(key)
        return None if quota is None or quota.expires_at <= now else quota

    def _forget_expired(self, now: float) -> None:
        for key in [key for key, quota in self._quotas.items() if quota.expires_at <= now]:
            del self._quotas[key]

    def __contains__(self, key: str) -> bool:
        return key in self._quotas
