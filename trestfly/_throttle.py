"""Pure per-origin throttling state: the shared gate, the pacer and the adaptive limits.

One :class:`OriginThrottle` exists per session per origin and is shared by every task
that talks to that origin.  It never sleeps and never reads a clock: the Trio shell
(:mod:`trestfly._admission`) passes ``now`` in and does the waiting it is told to do.

What it decides:

* **The gate.**  A response carrying a server delay (429/420/503 with ``Retry-After``, or
  rate-limit headers saying the quota is spent) closes the gate of the origin until the
  announced instant: nobody, new or retrying, is admitted before it.  Later hints extend
  the gate, never shorten it.  When it opens, exactly one request (the probe) goes first;
  the others wait for its answer and then go through the pacer, so they do not stampede.
* **The pacer.**  A GCRA (virtual scheduling) reservation per request at the effective
  rate: the lowest of the client's ``rate_limit``, the rate learned from throttling, and
  the rate the quota headers allow (what is left of the quota spread over what is left
  of the window).
* **Learning.**  A throttle for a request sent after the current episode began starts a
  new episode: the learned rate is cut to what the server actually served (successes
  over the period ending when the gate reopens, times ``safety``) or by ``decrease``,
  whichever is lower.  A throttle without a hint (too many at once) cuts the
  per-origin concurrency limit instead, and then sets it to what the server served at
  once of the requests in flight beside the refused one.  Throttles for requests already in
  flight when the episode began are stale: they may extend the gate but cut nothing, so a
  burst of 429s for one burst of requests counts once.  Successes grow the rate (by
  a share of the gap to the hold level, then slowly past it; see ``_on_success``) and
  the concurrency limit (by one per window of successes, to one below a refused count,
  then slowly past it) only while those limits are actually what holds the client back.

* **Rounds.**  When the first throttle closed the gate for long, what was served
  before it (a window's quota, or a bucket's burst less a token) goes again at once at
  each reopening, and the pacer goes on after it; against a window, the throttle that
  meets the spent window then is the window's, not the rate's, and cuts nothing.
  Against a window with whole-second hints, the next round goes a window after the last
  one opened instead, without meeting the spent window (see :mod:`trestfly._rounds`).

The hold level is ``safety`` times the last paced rate that was throttled (the
ceiling).  Growing back *to* the ceiling, as plain additive increase does, walks the
client into the same throttle every few seconds; against a fixed window with whole-second
``Retry-After`` each of those costs most of a window.  So the rate returns quickly to
just under the ceiling and creeps past it only by ``probe_growth`` of it per second,
which still finds a raised limit, in minutes rather than seconds.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, fields

from ._arguments import is_finite
from ._concurrency import ConcurrencyLimit
from ._ratelimit import Quota, says_quota_spent, spent_quota_delay
from ._rounds import Rounds, RoundThrottle
from ._slow_start import SlowStart
from .errors import UnexpectedValueError

#: Statuses that mean "too fast": they cut the learned rate.  (A 503 with Retry-After
#: closes the gate but says nothing about rate: it is an outage, not a quota.)
THROTTLE_STATUSES = frozenset({420, 429})

#: Successes before a first throttle that make its served-rate estimate trustworthy: a
#: burst allowance is usually 10-20 requests, a window's quota 50 or more.
TRUSTED_SAMPLE = 50

#: Seconds between two moves of the ceiling: a throttle right after one may be the server
#: still paying for the rate before it.
CEILING_SETTLE = 1.0

#: Longest wait (seconds) at the reopening for the first sample's answers still out,
#: when nothing of it had been served (see OriginThrottle._sample_awaits_wave).  A wave
#: is answered within a round trip or so, but not within the hint that reopened the gate:
#: waited for as long again as the sample's period (up to the hint's end), the tasks went
#: 10 ms before five successes 50 ms out.  A caller whose deadline is nearer than the
#: wait's end is told so at once (GateClosed), as for a pacer slot.
MAX_SAMPLE_WAIT = 1.0

#: Shortest first-sample period (seconds, up to the announced instant) that other
#: workers' reported successes refine (see OriginThrottle._refine_sample).
REFINED_SAMPLE_PERIOD = 0.5

#: A throttle that closes the gate this long (seconds) or longer is expensive enough
#: that leaving slow start takes the served rate for the ceiling rather than risk
#: walking into the limit again (see OriginThrottle._leave_slow_start).
LONG_HINT = 0.5

#: What a server rounding its delay up to whole seconds adds to it on average (seconds).
WHOLE_SECOND_ROUNDING = 0.5

#: Bound of the probe's speed-up (2**10: past the hold by up to the ceiling per second).
MAX_PROBE_DOUBLINGS = 10.0

#: The largest ``recovery`` and ``fast_increase`` (shares per second): e-fold in 10 ms.
MAX_GROWTH_SETTING = 100.0

#: Weight of each new gap between sends in their moving average (about the last 20).
SEND_GAP_WEIGHT = 0.05

#: Past the hold level the rate is probed up only while the client sends at least this
#: share of it: else the rate is not what holds it back (see _grow_towards_ceiling).
SENDS_KEEP_UP = 0.8

#: Growth of the learned rate past the rate of the pending reservations that makes them
#: be made again.  Waiters hold slots reserved at the rate of their admission; after a
#: cut, a hundred of them hold ten seconds of slots at the low rate, and growing the
#: rate would do nothing until those were spent.
RESCHEDULE_GROWTH = 1.1

#: Successes of the first wave kept to tell a bucket's depth (see
#: OriginThrottle._leave_slow_start): more make a trusted sample, which needs none.
MAX_FIRST_WAVE = TRUSTED_SAMPLE

#: Seconds with nothing in flight after which a send starts the first rate sample
#: afresh (see OriginThrottle._restart_idle_sample).
IDLE_RESTART = 1.0


def says_whole_seconds(hint: float) -> bool:
    """Whether a delay reads as Retry-After's delta-seconds: a whole number of seconds,
    which the server rounded up from its own wait."""
    return hint >= 1 and float(hint).is_integer()


def is_throttle(status: int, hint: float | None, quota: Quota | None) -> bool:
    """Whether a response means "too fast": 420, 429, or GitHub's throttling 403s.

    GitHub answers its primary limit with 403 and ``X-RateLimit-Remaining: 0``, and its
    secondary limit with 403 or 429 and ``Retry-After``: such a 403 is a throttle, and
    is retried like a 429.
    """
    if status in THROTTLE_STATUSES:
        return True
    return status == 403 and (hint is not None or says_quota_spent(status, quota))


def closes_gate(status: int, hint: float | None, *, throttled: bool) -> bool:
    """Whether a response closes its origin's gate for ``hint`` seconds: a throttle or a
    503 that says when to come back.  (A hint on any other status, a 502 say, is that
    call's own wait: the origin's other calls go on.)  A hint of zero (``Retry-After:
    0``, a date already past) closes nothing: each counted a gate trip of no time, and
    the retries it sent at once skipped their backoff."""
    return bool(hint) and (throttled or status == 503)


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """Knobs of the per-origin throttling (see the "Tuning for 429 storms" guide).

    Attributes:
        adaptive: learn the rate and concurrency an origin allows (on by default; an
            origin that never throttles pays nothing for it).
        rate_limit: client-side requests per second per origin (None: no client limit).
        burst: requests the client-side limit lets through at once.
        decrease: multiplicative cut of the learned rate and concurrency per episode.
        recovery: once a paced rate was throttled (the ceiling), the share of the gap
            to the hold level (``safety`` times the ceiling) the learned rate regains per
            second of paced sending.
        probe_growth: at or above the hold level, the share of the ceiling the rate
            grows per second of paced sending (0.001: the 5% to the ceiling in 50 s),
            so that a raised limit is found without walking into the old one every
            few seconds.
        probe_doubling: that probing speed doubles every this many seconds since the
            last cut (12: +4% of the ceiling after 20 s, +50% after a minute), so that
            capacity freed later (other clients gone, a limit raised, a ceiling learned
            in a burst of noise) is found again in about a minute.
        quota_spread: the longest time, in seconds, over which what is left of an
            announced quota is spread: the quota headers pace at what is left over the
            time to the reset or over this, whichever is shorter (10: a GitHub token
            with 4,999 of 5,000 an hour left goes at up to 500/s, not 1.4/s).  When it
            is spent, counting the requests in flight, the gate closes until the reset.
            Sessions sharing the quota through a coordination spread it over the whole
            window (each counts only its own requests in flight).
        fast_increase: before any ceiling is known (the rate learned from unpaced
            sending is only a floor), the share of itself the rate grows per second
            (4.0: e-fold a quarter second, exponential growth; from a burst's 10/s to
            100/s in 0.6 s).
        safety: share of the observed served rate taken as the learned rate, and of the
            ceiling the rate returns to after a cut (the hold level).
        min_rate: the learned rate never goes below this (requests per second).
        jitter: the gate's waiters wake spread over this share of the closed time after
            the announced instant (never before it), at most ``max_jitter`` seconds.
        max_jitter: cap of that spread in seconds.

    .. versionadded:: 0.1.0
    """

    adaptive: bool = True
    rate_limit: float | None = None
    burst: int = 1
    decrease: float = 0.9
    recovery: float = 0.5
    probe_growth: float = 0.001
    probe_doubling: float = 12.0
    fast_increase: float = 4.0
    quota_spread: float = 10.0
    safety: float = 0.95
    min_rate: float = 0.5
    jitter: float = 0.1
    max_jitter: float = 1.0

    def __post_init__(self) -> None:
        # Kinds first: a string compared with a number would raise a bare TypeError.
        if not isinstance(self.adaptive, bool):
            raise UnexpectedValueError(
                f"throttle setting adaptive must be True or False, got {self.adaptive!r}"
            )
        if isinstance(self.burst, bool) or not isinstance(self.burst, int):
            raise UnexpectedValueError(
                f"throttle setting burst must be an integer, got {self.burst!r}"
            )
        for name in (field_.name for field_ in fields(self)):
            value = getattr(self, name)
            if name in ("adaptive", "burst") or (name == "rate_limit" and value is None):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UnexpectedValueError(
                    f"throttle setting {name} must be a number, got {value!r}"
                )
        checks = {
            "rate_limit": self.rate_limit is None or self.rate_limit > 0,
            "burst": self.burst >= 1,
            "decrease": 0 < self.decrease < 1,
            # Upper bounds too: probe_growth=1e300 passed, and the rate went to inf,
            # then NaN (inf - inf), which turned pacing off.
            "recovery": 0 <= self.recovery <= MAX_GROWTH_SETTING,
            "probe_growth": 0 <= self.probe_growth <= 1,
            "probe_doubling": self.probe_doubling > 0,
            "fast_increase": 0 <= self.fast_increase <= MAX_GROWTH_SETTING,
            "quota_spread": self.quota_spread > 0,
            "safety": 0 < self.safety <= 1,
            "min_rate": self.min_rate > 0,
            "jitter": self.jitter >= 0,
            "max_jitter": self.max_jitter >= 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not ok
                or (isinstance(value, int | float) and not is_finite(value))
            ):
                raise UnexpectedValueError(f"throttle setting {name} is out of range: {value!r}")


@dataclass(frozen=True, slots=True)
class Ticket:
    """One admitted attempt: what the origin must know about it when it comes back."""

    sent_at: float
    in_flight_at_send: int
    paced: bool
    probe: bool
    #: Order of sending on this origin (see ConcurrencyLimit.cut).
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Admission:
    """What a task must do before sending: go (at ``at``), or wait.

    ``kind`` is ``"go"`` (send at ``at``; the pacer slot is reserved), ``"probe"`` (send
    now as the gate's probe), ``"gate"`` (sleep until ``at``, then ask again),
    ``"round"`` (a timed round opens at ``at``: sleep until then, then ask again),
    ``"limit"`` (the client's own ``rate_limit`` holds the gate's probe until ``at``:
    sleep until then, then ask again; bounded by the caller's deadline only, as any wait
    for ``rate_limit`` is), ``"probe-wait"`` (wait for the probe's answer, then ask
    again) or ``"shared"`` (pace
    through the shared pacer of a coordination store, at the effective rate of the
    moment the slot is asked for; nothing was reserved).
    """

    kind: str
    at: float


class OriginThrottle:
    """Shared throttling state of one origin.  Every method takes the current time."""

    def __init__(
        self,
        settings: ThrottleSettings,
        max_concurrency: int,
        now: float,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self._rng = rng
        # Idle is counted from here before anything is sent (see forgettable): else a
        # new origin was forgettable at once, and each task of a first wave, finding
        # the gate the one before it made, made its own.
        self._made_at = now
        #: Set when a coordination shares this origin's quota with other sessions: what
        #: is left is spread over the whole window then (see _server_rate).
        self.shares_quota = False
        self.gate_until = -math.inf
        #: Bumped whenever the gate closes or the rate is cut: pacer reservations made
        #: under an older epoch are void and must be made again.
        self.epoch = 0
        self._closed_since = -math.inf
        # When the last fresh throttle came, and whether a request sent before it was
        # served since: it may have taken the room its hint announced (see _new_episode).
        self._fresh_throttle_at = -math.inf
        self._served_behind_throttle = False
        # A refused probe has cut the rate, and nothing has been served since (see
        # _new_episode): the next refused probes do not cut it again.
        self._probe_refusal_cut = False
        self.episode_start = -math.inf
        # The last attempt sent when the episode began (see is_stale).
        self._episode_seq = 0
        self.probe_needed = False
        self.probing = False
        # Whether the probe in flight got an answer (see release_probe).
        self._probe_answered = False
        self.learned_rate: float | None = None
        # The last paced rate that was throttled (None until one was).
        self._ceiling: float | None = None
        #: The adaptive limit of requests in flight, cut by untimed throttles.
        self.in_flight_limit = ConcurrencyLimit(
            max_concurrency,
            decrease=settings.decrease,
            probe_doubling=settings.probe_doubling,
        )
        self.in_flight = 0
        # Sequence numbers of the attempts sent so far, and of those in flight.
        self._sent = 0
        self._pending: set[int] = set()
        self._tat = -math.inf
        # When the latest request left (see on_sent): a schedule restarted for a grown
        # rate begins one new interval after it (see _reschedule_if_grown).
        self._last_sent_at = -math.inf
        # The moving average of the gaps between sends (inf: fewer than two so far):
        # the rate the client actually sends at (see _grow_towards_ceiling).
        self._send_gap = math.inf
        # The client-side rate_limit's schedule of the requests actually sent (a GCRA
        # that only sends move; see limit_floor).
        self._limit_tat = -math.inf
        # When the latest answer came (see on_response): with the send times, what tells
        # an idle origin (see _restart_idle_sample).
        self._last_answer_at = -math.inf
        # Slots reserved and then given up (see give_back), earliest first: the next
        # reservations take them before the schedule moves on.
        self._holes: list[float] = []
        # The lowest rate a reservation was spaced at since the schedule last restarted.
        self._reserved_rate = math.inf
        #: Called (no arguments) whenever ``epoch`` moves: the Trio shell wakes the
        #: waiters holding reservations so that they reserve again at once.
        self.on_reschedule: Callable[[], None] | None = None
        self._window_start = now
        self._window_successes = 0
        # When the last timed throttle came: the cycle since it (closed time included)
        # is what rounds were served over (see _new_episode).
        self._last_timed_throttle_at: float | None = None
        # What slow start learns a bucket from (see _leave_slow_start); None when
        # fast_increase is 0 (no slow start).
        self._slow_start = SlowStart(MAX_FIRST_WAVE) if settings.fast_increase > 0 else None
        self._ceiling_set_at = -math.inf
        # When the learned rate was last cut (here or by another worker): the probe past
        # the hold level speeds up with the time since (see _grow_towards_ceiling).
        self._last_cut_at = -math.inf
        # The first sample (successes, period, the delay that closed the gate; see
        # _learn_from_sample) until the gate reopens, and the successes that joined it
        # meanwhile (see _refine_sample).
        self._sample: tuple[int, float, float] | None = None
        self._sample_extra = 0
        self._sample_takes_remote = False
        # While nothing of the first sample was served yet: until when the reopening
        # waits for its answers still out, and whether tasks wait (see
        # _sample_awaits_wave); the requests sent and not answered yet.
        self._sample_deadline = -math.inf
        self._sample_waiters = False
        self._unanswered: set[int] = set()
        self._quota: Quota | None = None
        # When the quota's window resets: as announced (which tells one window from
        # the next), and at the latest (see _update_quota).
        self._quota_announced_reset = -math.inf
        self._quota_reset_at = -math.inf
        # What the origin grants at once, sent again at each reopening (see _rounds).
        self._rounds = Rounds()
        # Observability.
        self.gate_trips = 0
        self.gate_closed_time = 0.0
        self.episodes = 0
        self.throttles = 0
        # What a coordination link compares between syncs (see trestfly._coordination).
        self.successes = 0
        self.rate_cuts = 0

    # ------------------------------------------------------------------ queries

    @property
    def concurrency_limit(self) -> int:
        """Requests the origin may have in flight now."""
        return self.in_flight_limit.limit

    @property
    def concurrency(self) -> float:
        """The adaptive concurrency limit before rounding down (see concurrency_limit)."""
        return self.in_flight_limit.value

    @property
    def ceiling(self) -> float | None:
        """The last paced rate that was throttled (None until one was)."""
        return self._ceiling

    def forgettable(self, now: float, idle: float) -> bool:
        """Whether nothing was sent or answered for ``idle`` seconds and nothing of this
        throttle still holds the future: no request out or reserved, the gate open (and
        closed last ``idle`` ago or more, if the probe it calls for was never sent), no
        quota window or pacing slot still running, no probe out.  Made again from
        nothing, such an origin is learned afresh.

        A probe still due once the gate is long open holds nothing: an origin whose last
        answer was a throttle (its calls gave up, or the hint was past max_retry_after)
        was never forgotten, and a crawl that left each host at its first 429 kept them
        all, 9 KB each.
        """
        return (
            now - max(self._last_sent_at, self._last_answer_at, self._made_at) >= idle
            and self.in_flight == 0
            and not self._pending
            and not self.probing
            and (not self.probe_needed or self.gate_until + idle <= now)
            and self.gate_until <= now
            and self._quota_reset_at <= now
            and self._tat <= now
        )

    def quota_allowance(self, now: float) -> int | None:
        """Requests the latest quota headers still allow in this window (None: no info)."""
        if self._quota is None or self._quota_reset_at <= now:
            return None
        return self._quota.remaining - self.in_flight

    def quota_spent(self, now: float) -> bool:
        """Whether the quota headers allow nothing more in this window (counting the
        requests in flight): the next admission closes the gate until the reset."""
        allowance = self.quota_allowance(now)
        return allowance is not None and allowance <= 0

    def effective_rate(self, now: float) -> float | None:
        """The pacer's rate: the lowest of client limit, learned rate and quota rate."""
        if self._quota is None and self.learned_rate is None and self.settings.rate_limit is None:
            return None  # the fast path of an origin that never throttled
        server = self._server_rate(now)
        rates = [rate for rate in (self.settings.rate_limit, server) if rate]
        return min(rates) if rates else None

    def server_interval(self, now: float) -> float:
        """Seconds between two sends at the pace the origin itself set (the learned rate,
        the quota headers' rate), or 0 when it set none: what a pacer slot's wait owes
        to the server rather than to the client's own ``rate_limit`` or queue."""
        rate = self._server_rate(now)
        return 1.0 / rate if rate else 0.0

    def _server_rate(self, now: float) -> float | None:
        """The lower of the learned rate and the quota headers' rate (None: neither)."""
        rates = [self.learned_rate] if self.learned_rate else []
        allowance = self.quota_allowance(now)
        if allowance is not None and allowance > 0 and self._quota is not None:
            left = max(self._quota_reset_at - now, 1e-3)
            spread = self.settings.quota_spread
            policy_rate = self._quota.policy_rate
            if policy_rate is not None:
                # The policy says the rate itself: pace just under it.  (Spreading what
                # is left over the time to the reset would be ruined by resets rounded
                # to whole seconds, as both header families send them.)
                quota_rate = policy_rate * self.settings.safety
            else:
                quota_rate = allowance / left
            if left > spread and not self.shares_quota:
                # What is left may be spent sooner than the window ends: spread over an
                # hour, a GitHub token's 4,999 requests went at 1.4/s, and a daily
                # quota's 999 at one request every 80 s, though the server would have
                # served them all at once.  The gate still closes when it is spent.
                # Not when sessions share the quota through a coordination: each counts
                # only its own requests in flight, and four sessions spending 300 left
                # over ten seconds, answered in 4 s, sent 14 into the spent window.
                quota_rate = max(quota_rate, allowance / spread)
            rates.append(quota_rate)
        return min(rates) if rates else None

    def wake_time(self) -> float:
        """When a waiter at the closed gate should look again: after the instant, jittered."""
        closed_for = max(0.0, self.gate_until - self._closed_since)
        spread = min(self.settings.max_jitter, self.settings.jitter * closed_for)
        return self.gate_until + self._rng.uniform(0.0, spread)

    # --------------------------------------------------------------- admission

    def admit(self, now: float, *, shared: bool = False) -> Admission:
        """Decide what a task that wants to send now must do.

        With ``shared``, a paced send is not reserved here but returned as ``"shared"``:
        the caller reserves it from the coordination store, or falls back to
        :meth:`reserve_local` when the store is unavailable.
        """
        if self.gate_until > now:
            return Admission("gate", self.gate_until)
        if self._sample is not None:
            if not self._sample_awaits_wave(now):
                self._refine_sample(now)
            elif not (self.probe_needed or self.probing):
                # The probe was served, and nothing else is known yet: wait for the
                # answers still out (a reschedule wakes the waiters when they are in).
                self._sample_waiters = True
                return Admission("round", self._sample_deadline)
        if self._rounds.next_at > now:
            return Admission("round", self._rounds.next_at)
        if self.probing:
            return Admission("probe-wait", now)
        allowance = self.quota_allowance(now)
        if allowance is not None and allowance <= 0:
            # Quota spent for this window: wait for the reset, then probe for fresh
            # headers.  Before the probe too: a shorter Retry-After, or a success that
            # spent the quota while the gate was closed, reopened it before the reset,
            # and the probe went into the spent window (refused, a retry spent).
            self._close(now, self._quota_reset_at)
            return Admission("gate", self.gate_until)
        if self.probe_needed:
            floor = self.limit_floor(now)
            if floor > now:
                return Admission("limit", floor)  # the user's rate_limit holds it too
            self.probe_needed = False
            self.probing = True
            self._probe_answered = False
            self._rounds.open(now, self._sent + 1)
            # The probe spends a pacer slot like any request: otherwise the first task
            # released after it goes at once and meets the bucket the probe just emptied.
            rate = self.effective_rate(now)
            if rate is not None:
                self._tat = max(self._tat, now) + 1.0 / rate
            return Admission("probe", now)
        rate = self.effective_rate(now)
        if rate is None:
            return Admission("go", now)
        if shared:
            return Admission("shared", now)
        return self._reserve(now, rate)

    def reserve_local(self, now: float) -> Admission:
        """A paced reservation from this process's own pacer (the store's fallback)."""
        rate = self.effective_rate(now)
        return Admission("go", now) if rate is None else self._reserve(now, rate)

    def pacer_burst(self, rate: float) -> int:
        """Requests the pacer lets through at once when it paces at ``rate``: the
        client limit's burst when that limit is what paces, else 1.

        The burst is the user's for their own ``rate_limit``.  Applied to a lower
        learned (or quota) rate, it sent ``burst`` requests at once at each reopening
        and ``(burst - 1) / rate`` seconds of credit; a server shallower than that
        refused the extras, each refusal cut the rate again, and against a 20/s bucket
        two deep the learned rate sank to its floor (0.5/s) with ``burst=5``.
        """
        limit = self.settings.rate_limit
        return self.settings.burst if limit is not None and rate >= limit else 1

    def _reserve(self, now: float, rate: float) -> Admission:
        rounds = self._rounds
        if rounds.credit > 0 and rounds.take_credit(
            now, self._sent + 1, rate_limited=self.settings.rate_limit is not None
        ):
            # The pacer goes on an interval after the round's last send, not after its
            # probe: a round sent over tens of milliseconds (ten workers, a slow server)
            # took the tokens refilled meanwhile, and the first paced request, due
            # already, went a few milliseconds after it into the emptied bucket.
            self._tat = max(self._tat, now + 1.0 / rate)
            if rounds.timing_next:
                # Nothing goes before the next round's probe, reserved or not.
                self.probe_needed = True
                self._tat = max(self._tat, rounds.next_at)
            return Admission("go", now)
        interval = 1.0 / rate
        holes = self._holes
        while holes and holes[0] <= now:
            # A hole already due is dropped, not taken: sent now, it could land closer
            # than an interval to the slot after it.
            heapq.heappop(holes)
        floor = self.limit_floor(now)
        if holes:
            return Admission("go", max(heapq.heappop(holes), floor))
        send_at = max(now, self._tat - (self.pacer_burst(rate) - 1) * interval, floor)
        self._tat = max(self._tat, send_at) + interval
        self._reserved_rate = min(self._reserved_rate, rate)
        return Admission("go", send_at)

    @property
    def _served_share(self) -> float:
        """The share of a rate the origin served (not one it throttled) that the client
        holds: half the safety margin (0.975 of it with the default safety of 0.95)."""
        return 1 - (1 - self.settings.safety) / 2

    def _hold_served_rate(self, served_rate: float, now: float) -> None:
        """Pace at a rate the origin served, less half the safety margin (the hold
        level), with the ceiling set to match, and probe past it slowly."""
        hold = served_rate * self._served_share
        self.learned_rate = max(self.settings.min_rate, hold)
        self._ceiling, self._ceiling_set_at = hold / self.settings.safety, now

    def give_back(self, send_at: float, epoch: int, now: float) -> None:
        """A waiter gave up the slot it reserved for ``send_at`` under ``epoch``
        (cancelled, or refused a wait past its deadline): the next reservation takes it.

        Otherwise every abandoned slot stays spent, and nothing moves the schedule back
        while nothing is sent: cancelling ten waiters of a 1/s pacer left the next
        request waiting 7.5 s, and callers with deadlines, refused one after another,
        pushed it ahead for good (nothing sent for 28 s at twice the rate).  A slot of
        an older epoch was voided already, and one already due holds nothing back.
        """
        if epoch == self.epoch and send_at > now:
            heapq.heappush(self._holes, send_at)

    def limit_floor(self, now: float) -> float:
        """The earliest the client-side ``rate_limit`` lets the next request go (``now``
        without one), judged by the requests actually sent.

        The pacer's schedule restarts at every throttle (``_restart_schedule``), and
        from there it paced only what came after: against ``rate_limit=1`` a 429 without
        a hint sent the next request 10 ms after the last, and a gate closed for 1 ms
        reopened with a probe 11 ms after it.  The user's limit is their word: no
        restart may bring a request forward of it.
        """
        limit = self.settings.rate_limit
        if limit is None:
            return now
        return max(now, self._limit_tat - (self.settings.burst - 1) / limit)

    def _restart_schedule(self, at: float) -> None:
        """Void every pending reservation (see ``epoch``); the schedule restarts at ``at``."""
        self.epoch += 1
        self._tat = at
        self._holes.clear()
        self._reserved_rate = math.inf
        if self.on_reschedule is not None:
            self.on_reschedule()

    def is_stale(self, ticket: Ticket) -> bool:
        """Whether the attempt was sent before the current episode began (before a
        throttle was seen, here or by another worker): its throttle is old news.

        Judged by the order of sending, not by time: under a MockClock a retry goes out
        in the very tick of the 429 it retries (``Retry-After: 0``, a zero backoff), and
        taken for sent before it, each retry of a lone call was stale and uncounted (7
        attempts for ``retries=3``).  (A ticket made without a sequence number, 0, is
        judged by its send time.)
        """
        return ticket.seq <= self._episode_seq and ticket.sent_at <= self.episode_start

    def release_probe(self) -> None:
        """The probe is over: let the others go -- behind a new probe if this one got no
        answer (cancelled, never sent, or failed in transport).

        Such a probe learned nothing about the reopened origin, so the tasks that waited
        for it must not all go at once as if it had been served.
        """
        self.probing = False
        if not self._probe_answered:
            self.probe_needed = True

    def on_sent(self, now: float, *, paced: bool, probe: bool) -> Ticket:
        if self.in_flight == 0:
            self._restart_idle_sample(now)
        self.in_flight += 1
        self._sent += 1
        gap = max(0.0, now - self._last_sent_at)
        if self._send_gap == math.inf:
            self._send_gap = gap  # the first gap (inf before the second send)
        elif gap != math.inf:
            self._send_gap += SEND_GAP_WEIGHT * (gap - self._send_gap)
        self._last_sent_at = max(self._last_sent_at, now)
        limit = self.settings.rate_limit
        if limit is not None:
            self._limit_tat = max(self._limit_tat, now) + 1.0 / limit
        self._pending.add(self._sent)
        self._unanswered.add(self._sent)
        return Ticket(
            sent_at=now, in_flight_at_send=self.in_flight, paced=paced, probe=probe, seq=self._sent
        )

    def _restart_idle_sample(self, now: float) -> None:
        """A send after more than IDLE_RESTART seconds with nothing in flight, before any
        rate was learned: the first sample starts here, not when the origin was first
        used.

        The first sample is what was served over the period up to the first throttle,
        and a period that began ten minutes of occasional calls earlier took them for
        time the server needed: 70 served over 601 s, a "trusted" 0.12/s, held at the
        0.5/s floor against an origin allowing 10/s (and, shared through a coordination
        store, by every worker).
        """
        if (
            self.learned_rate is None
            and self._sample is None
            and now - max(self._last_sent_at, self._last_answer_at) > IDLE_RESTART
        ):
            self._window_start, self._window_successes = now, 0
            if self._slow_start is not None:
                self._slow_start.restart_wave()

    def on_transport_failure(self, ticket: Ticket) -> None:
        """The attempt failed in transport (a reset, a refused connection): the server's
        answer, of a kind, and under overload the refusal itself.  Only a cancelled
        attempt leaves the concurrency limit's crowd without one (see
        ConcurrencyLimit._settle_crowd)."""
        self.in_flight_limit.on_answered(ticket.seq)

    def on_done(self, ticket: Ticket, now: float | None = None) -> None:
        """The attempt is over, whatever happened to it (``now``, when known)."""
        self.in_flight -= 1
        self._pending.discard(ticket.seq)
        self._unanswered.discard(ticket.seq)  # cancelled or failed: it never will be
        self._wake_sample_waiters()
        self.in_flight_limit.on_done(ticket.seq, ticket.sent_at, now)
        if ticket.probe:
            self.release_probe()

    # ---------------------------------------------------- shared state (coordination)

    def close_shared(self, now: float, until: float) -> None:
        """Another worker announced a delay: close the gate as if we had seen it.

        It starts an episode here too, so the 429s of our own requests already in
        flight count as stale: one cut per episode across all workers.
        """
        self._close(now, until)

    def adopt_rate(self, now: float, rate: float, ceiling: float | None, *, cut: bool) -> None:
        """Take the shared learned rate; ``cut``: another worker cut it (a new episode)."""
        if not self.settings.adaptive:
            return
        self.learned_rate, self._ceiling = max(self.settings.min_rate, rate), ceiling
        if cut:
            # The ceiling moved (elsewhere): a throttle here right after it is the same
            # overshoot, and must not take the cut rate for the ceiling (CEILING_SETTLE).
            self._ceiling_set_at = self._last_cut_at = now
            self.episode_start = max(self.episode_start, now)
            self._episode_seq = self._sent
            self._restart_schedule(max(now, self.gate_until))
            # The served-rate window runs on: it counts every worker's successes, and
            # restarted at each remote cut it held a few milliseconds of them, so the
            # next cut here was judged on noise (and halved the rate).

    def add_remote_successes(self, count: int, now: float) -> None:
        """Other workers' successes: the served rate is judged over all workers."""
        self._window_successes += count
        if self._slow_start is not None:
            self._slow_start.forget_wave()  # the count is no longer this worker's wave alone
        # Other workers send into the same windows, on their own rounds: a round here
        # is no longer what a window allows this worker.
        self._rounds.share_windows()
        self._note_slow_start_success(now, count)
        if self._sample is not None and self._sample_takes_remote:
            self._sample_extra += count

    # ---------------------------------------------------------------- feedback

    def on_response(
        self,
        ticket: Ticket,
        now: float,
        *,
        status: int,
        hint: float | None,
        quota: Quota | None,
        hint_at: float | None = None,
    ) -> None:
        """Learn from a response: quota headers, gate hints, throttles and successes.

        ``hint_at``: when the hint was announced, if before ``now`` (:meth:`close_early`
        closed the gate then, when the headers arrived): the gate counts it from then.
        Counted again from ``now``, once the body had arrived, a hint shorter than the
        body's read closed the gate a second time after it had reopened, and a second
        probe followed the first into the room the first had taken.
        """
        self._last_answer_at = max(self._last_answer_at, now)
        self._unanswered.discard(ticket.seq)
        self.in_flight_limit.on_answered(ticket.seq)
        if ticket.probe:
            self._probe_answered = True
        if quota is not None:
            self._update_quota(now, quota)
        throttled = is_throttle(status, hint, quota)
        # A hint of zero is none (see closes_gate): a 429 with `Retry-After: 0` is one
        # without a hint, too many at once, and cuts the concurrency limit as one (a 403
        # with it is still a throttle, judged above).
        hint = hint or None
        if self._slow_start is not None:
            self._slow_start.on_answer(ticket.sent_at, now, success=200 <= status < 300)
        if hint is None:
            # None for a reset already due: taken as a hint of 0, every refusal in the
            # last seconds of a window cut the rate as a timed throttle.
            hint = spent_quota_delay(quota)
        # Judged before the gate moves: closing it starts a new episode.
        fresh = not self.is_stale(ticket)
        crowded_probe = ticket.probe and (
            ticket.in_flight_at_send > 1 or self._served_behind_throttle
        )
        if hint is not None and closes_gate(status, hint, throttled=throttled):
            self._close(now, (now if hint_at is None else min(now, hint_at)) + hint)
        if throttled:
            self.throttles += 1
            if (
                fresh
                and hint is None
                and self.settings.adaptive
                and self.in_flight_limit.forgives(ticket.in_flight_at_send, self.in_flight)
            ):
                fresh = False  # a stray (see ConcurrencyLimit.forgives): no episode
            if fresh:
                self._new_episode(now, ticket, hint, crowded_probe=crowded_probe)
                self._fresh_throttle_at, self._served_behind_throttle = now, False
            if hint is None:
                self.in_flight_limit.on_refused(ticket.seq, self.in_flight)
        elif 200 <= status < 300:
            self._probe_refusal_cut = False
            if ticket.probe:
                # The server had room at the reopening: what was in the way is past, and
                # explains no later probe's refusal.
                self._fresh_throttle_at, self._served_behind_throttle = -math.inf, False
            elif ticket.sent_at < self._fresh_throttle_at:
                self._served_behind_throttle = True
            self.in_flight_limit.on_served(ticket.seq)
            self._on_success(ticket, now)
        self._wake_sample_waiters()

    def _update_quota(self, now: float, quota: Quota) -> None:
        """Take the quota an answer announced, and when its window resets.

        Both header forms round the reset up to a whole second (an epoch, or a delay),
        so a spent window's gate stayed closed up to a second past its end: half a
        second on average, 0.5-0.9 s of a 5 s run against 200 a second.  When the
        policy names the window's length, the first answer of a window bounds its end
        too: the window had begun when that request arrived, so it ends a window's
        length after the answer at the latest.
        """
        announced = now + quota.reset_after if quota.reset_after is not None else now + 1.0
        current = self._quota
        if (
            current is None
            or announced > self._quota_announced_reset + 0.5
            or self._quota_announced_reset <= now
            # Past the bound, more left than before: the window has turned, though a
            # reset rounded to seconds may not say so yet.
            or (self._quota_reset_at <= now and quota.remaining > current.remaining)
        ):
            self._quota, self._quota_announced_reset = quota, announced
            bound = now + quota.window if quota.window else math.inf
            self._quota_reset_at = min(announced, bound)
        elif announced >= self._quota_announced_reset - 1.0 and quota.remaining < current.remaining:
            # Same window: answers arrive out of order, the lowest remaining is the truth.
            self._quota = quota

    def close_early(self, now: float, until: float) -> None:
        """Close the gate as soon as a delay is announced (the headers arrived).

        Called before the response body is read, so no other task sends in between;
        the full :meth:`on_response` follows once the response is complete.
        """
        self._close(now, until, new_episode=False)

    def on_redirected_answer(self, now: float, until: float | None, *, throttled: bool) -> None:
        """This origin answered a redirect's request admitted at another origin: count a
        throttle here, where it was met, and close the gate until ``until`` (a delay it
        announced) as :meth:`close_early` does.  No ticket was taken here, so nothing
        else is learned from it."""
        if throttled:
            self.throttles += 1
        if until is not None:
            self._close(now, until, new_episode=False)

    def _close(self, now: float, until: float, *, new_episode: bool = True) -> None:
        if until <= self.gate_until:
            return  # extended, never shortened
        if self.gate_until <= now:
            self.gate_trips += 1
            self._closed_since = now
            if new_episode:
                self.episode_start, self._episode_seq = now, self._sent
            self.gate_closed_time += until - now
        else:
            self.gate_closed_time += until - self.gate_until
        self.gate_until = until
        self.probe_needed = True
        self._rounds.close(self._sent + 1)
        # Every reservation made so far is void: the schedule restarts at the reopening.
        self._restart_schedule(until)

    def _new_episode(
        self, now: float, ticket: Ticket, hint: float | None, *, crowded_probe: bool = False
    ) -> None:
        """A fresh throttle: cut what it is about, once (``crowded_probe``: see below).

        A throttle that says when to come back (a ``hint``: Retry-After or a quota reset)
        is about rate: the pacer's learned rate is cut.  One that says nothing is how
        servers refuse too many requests *at once* (GitHub's secondary limit): the
        concurrency limit is cut.  Cutting both every time let one kind of limit starve
        the other (a concurrency cut turns paced sends into bursts at the limiter).
        """
        self.episodes += 1
        self.episode_start, self._episode_seq = now, self._sent
        if not self.settings.adaptive:
            return
        self._restart_schedule(max(now, self.gate_until))
        if hint is None:
            self.in_flight_limit.cut(
                seq=ticket.seq,
                in_flight_at_send=ticket.in_flight_at_send,
                pending=self._pending,
                now=now,
            )
            return
        # The served rate is judged up to the announced instant.  The server counted the
        # hint from when it answered, somewhere between the send and now: the gate
        # waits from now (never early), but the rate is judged from the send, else the
        # time the answer spent reaching us (tens of ms behind a burst) is taken for
        # time the server needed.
        period_end = max(now, min(self.gate_until, ticket.sent_at + hint))
        period_start, period = self._window_start, period_end - self._window_start
        served = self._window_successes
        self._window_start = period_end
        self._window_successes = 0
        cycle_start, self._last_timed_throttle_at = self._last_timed_throttle_at, now
        if self.learned_rate is None:
            if self._slow_start is not None:
                self._slow_start.end_wave(now)
            if period > 0:
                if served:
                    self._learn_from_sample(served, period, now, hint)
                # The sample is complete at the reopening (see _refine_sample): the
                # successes of requests sent before this throttle are still arriving.
                # Other workers' reports join it only over a long period: they are not
                # dated, and over a few milliseconds most would be successes after it.
                self._sample = (served, period, hint)
                self._sample_takes_remote = period >= REFINED_SAMPLE_PERIOD
                # Its answers still out are waited for, a second at most.
                self._sample_deadline = self.gate_until + MAX_SAMPLE_WAIT
            return
        verdict = self._rounds.on_throttle(ticket, self._sent + 1)
        if verdict is RoundThrottle.WINDOW_RATE:
            self._hold_served_rate(self._rounds.window_rate(), now)
        if verdict is not RoundThrottle.RATE:
            return
        if crowded_probe:
            # The probe went at once when the gate reopened, not at the paced rate, and
            # our own requests sent before the throttle that closed it were served after
            # it (or were still out): they took the room the hint announced (a bucket one
            # token deep refills one every 10 ms at 100/s).  The gate closed again on
            # the probe's hint; the rate stands.  Cut as a paced throttle, the refusal
            # ended slow start at the rate of the first few milliseconds: against a
            # 100/s bucket one token deep, 100 tasks held 17/s for a minute (0.26 of the
            # limit).  A probe refused with none of ours in the way still cuts: others
            # took the room (workers sharing the origin probe together at each
            # reopening).
            return
        if ticket.probe and not served:
            if self._probe_refusal_cut:
                # A refused probe cut the rate already, and nothing was served since:
                # the origin is still refusing everything (a storm, an outage answered
                # 429), and nothing went out at the cut rate, so this says nothing more
                # of it.  Cut at every refused probe, a 30 s storm took a 100/s
                # bucket's learned rate to 5/s (0.9 ** 30), back near 100 only 100 s
                # after the storm ended.
                return
            self._probe_refusal_cut = True
        # Throttled while paced at learned_rate: that rate is too high.  But the ceiling
        # moves at most once per CEILING_SETTLE: right after a cut the server may still
        # be paying for the rate before it (a drained bucket), and taking the cut rate
        # as the ceiling would hold the client under it for good.
        leaving_slow_start = self._ceiling is None
        if self._ceiling is None or now - self._ceiling_set_at >= CEILING_SETTLE:
            self._ceiling, self._ceiling_set_at = self.learned_rate, now
        # At least `decrease`, at most halved: the served rate seen since the last
        # episode guides the cut, but a short or idle period (few successes because the
        # client itself was waiting) must not collapse the rate.  It is judged up to
        # this throttle, not to the reopening: a second closed behind a whole-second
        # Retry-After says nothing about the rate that was too high, and counting it
        # would cut a rate 5% too high by a third.
        cut = self.learned_rate * self.settings.decrease
        active = now - period_start
        if served and active > 0:
            sent_rate = served / active
            cut = min(cut, max(sent_rate * self.settings.safety, self.learned_rate / 2))
        if self._rounds.quota is not None and cycle_start is not None and now > cycle_start:
            # Rounds send their burst at each reopening whatever the learned rate, so
            # against a window the paced request after the burst meets the spent window
            # every cycle, and the cut came every cycle: against 25 a second, each
            # second served in full, the rate sank to 3/s and then the windows went
            # unfilled (0.13 of the limit for a minute).  Never below what the origin
            # served over the whole cycle, closed time included.
            served_rate = served / (now - cycle_start) * self.settings.safety
            cut = max(cut, min(self.learned_rate, served_rate))
        if leaving_slow_start:
            cut = self._leave_slow_start(ticket.sent_at, cut, hint, self.learned_rate)
        self.learned_rate = max(self.settings.min_rate, cut)
        self.rate_cuts += 1
        self._last_cut_at = now

    def _learn_from_sample(self, served: int, period: float, now: float, hint: float) -> None:
        """The first learned rate, from a period of unpaced sending.

        What the server served over the period, closed time included, is a floor of
        what it allows.  Pace there, and grow quickly (see _on_success) until the first
        paced throttle -- unless so many were served (a whole window's quota, say) that
        it is the server's rate, not a burst allowance.

        Slow start begins from the period less the rounding of ``hint`` (the delay that
        closed the gate): a delay in whole seconds (what Retry-After's delta-seconds can
        say) is the server's own wait rounded up, by half a second on average, and that
        half second is the rounding's, not the server's.  (A burst of 10 told to come
        back in 1 s: from 10/s, growing to a 100/s bucket took 0.59 s and sent 26
        requests fewer than the bucket allowed; from 20/s, 0.40 s and 11 fewer.)  The
        floor itself (``SlowStart.first_rate``, which the rate never goes below when slow start
        ends) stays what was served: against a window of 10 a second, starting at 20/s
        only meets the window's end sooner, once.  ``hint`` also decides whether
        reopenings send what was served again (see _start_rounds).
        """
        observed = served / period
        settings = self.settings
        self.rate_cuts += 1
        self._last_cut_at = now
        if served < TRUSTED_SAMPLE:
            rounding = WHOLE_SECOND_ROUNDING if says_whole_seconds(hint) else 0.0
            start = served / (period - rounding) if period > rounding else observed
            self.learned_rate = max(settings.min_rate, start * settings.safety)
            if self._slow_start is not None:
                self._slow_start.floor_sample(served, observed)
            else:
                # No slow start (fast_increase 0): nothing grows a floor before a
                # ceiling, and an origin healthy again was paced at it for good (0.5/s
                # after one Retry-After: 60).  Held as a ceiling's hold level, it
                # recovers and probes past it as any learned rate.
                self._ceiling = self.learned_rate / settings.safety
                self._ceiling_set_at = now
            self._start_rounds(served, period, hint, window=False)
            return
        if self._slow_start is not None:
            self._slow_start.trust_sample()
        self._start_rounds(served, period, hint, window=True)
        # The server did serve this rate, closed time included.
        self._hold_served_rate(observed, now)

    def _start_rounds(self, served: int, period: float, hint: float, *, window: bool) -> None:
        """Reopenings send what was served at once, if ``hint`` closed the gate for long
        (see trestfly._rounds); ``window``: it was a window's quota."""
        self._rounds.start(
            served,
            period,
            long_hint=hint >= LONG_HINT,
            whole_seconds=says_whole_seconds(hint),
            window=window,
        )

    def _leave_slow_start(self, end: float, cut: float, hint: float, rate: float) -> float:
        """The first paced throttle (of a request sent at ``end``, paced at ``rate``)
        ends slow start: set the ceiling from what the origin served, and return the
        rate to go on at (``cut`` when what it served says nothing more).

        The paced rate at that throttle overshoots the limit: it was growing e-fold per
        ``1 / fast_increase`` seconds, and a bucket's burst hid the excess until it was
        spent.  Taken as the ceiling, the recovery aims at 95% of it and walks into the
        limit again, each time for a whole ``Retry-After`` when the server rounds it to
        seconds.  The rate a bucket allows beyond its burst (the first sample's count;
        see trestfly._slow_start) is the better guide: 99-101/s against a 100/s bucket.
        It is a rate that was served, not one that was throttled, so like a trusted
        first sample (see _learn_from_sample) it is held with half the safety margin,
        and the ceiling is set to match.  It is used when slow start served enough to
        tell (two bursts' worth) and it is below the paced rate, then in place of
        ``cut`` (which never goes below half the paced rate: growing e-fold a quarter
        second, slow start can overshoot more than that); never below the first
        sample's rate, which the server did serve.

        (Holding a window's quota instead, when slow start served no more than the
        first sample again, helped one client against small windows, but four
        processes sharing one window without shared state each held the share they
        happened to see first: goodput 0.45-0.62, against 0.67-0.76 without.)

        Only for a throttle (``hint``) of LONG_HINT or more: when the gate closes for
        milliseconds, walking into the limit again costs little, and the paced rate as
        the ceiling finds capacity that others sending on the same quota free later (4
        processes on one 100/s bucket, sharing nothing: goodput 0.36-0.39 with the
        served rate as the ceiling, 0.46-0.59 without).
        """
        slow_start = self._slow_start
        if slow_start is None:
            return cut
        rounds = self._rounds
        estimate, depth = slow_start.served_rate(
            end,
            long_hint=hint >= LONG_HINT,
            round_served=rounds.burst_served if rounds.burst_refused else 0,
        )
        rounds.burst_refused = False
        if depth is not None and rounds.quota is not None:
            # The first wave corrected the burst's count: rounds go on, a token deeper
            # than due.
            self._start_rounds(depth, rounds.length, hint, window=False)
        if estimate is None or estimate >= rate:
            return cut
        # Never below the first sample: the server did serve that rate.
        hold = max(estimate, slow_start.first_rate) * self._served_share
        self._ceiling = hold / self.settings.safety  # the hold level (ceiling x safety)
        return min(hold, rate * self.settings.decrease)

    def _note_slow_start_success(self, sent_at: float, count: int = 1) -> None:
        # Slow start: a learned rate (a floor) and no ceiling yet.  Cheap when not.
        slow_start = self._slow_start
        if slow_start is not None and self._ceiling is None and self.learned_rate is not None:
            slow_start.log.add(sent_at, count)

    def _sample_awaits_wave(self, now: float) -> bool:
        """Whether the reopening waits for the first sample: nothing of it had been
        served when the gate closed, and requests sent before the throttle are still
        out (a second at most: ``MAX_SAMPLE_WAIT``).

        A short hint reopens the gate before a slow first wave is answered: at
        concurrency 100 its 429s came back first, with ``Retry-After`` of a few
        milliseconds, and its successes up to 60 ms later.  Taken as it stood, the
        sample held nothing, no rate was learned, and after the probe every task went at
        once: 88 more refusals.  Only the probe goes until the answers are in: all of
        them, else the first success alone made the rate (a tenth of it).
        """
        if self._sample is None or self._sample[0]:
            return False
        if now >= self._sample_deadline:
            return False
        return self._stale_in_flight()

    def _stale_in_flight(self) -> bool:
        return min(self._unanswered, default=math.inf) <= self._episode_seq

    def _wake_sample_waiters(self) -> None:
        """What the reopening's waiters wait for is in (see _sample_awaits_wave)."""
        if self._sample_waiters and not self._stale_in_flight() and self.on_reschedule is not None:
            self._sample_waiters = False
            self.on_reschedule()

    def _refine_sample(self, now: float) -> None:
        """At the reopening: learn the first sample again with the successes that
        joined it while the gate was closed: answers to requests sent before the
        throttle, and what other workers reported (their share of what was served)."""
        assert self._sample is not None
        served, period, hint = self._sample
        self._sample, self._sample_waiters = None, False
        if self._sample_extra > 0 and self.settings.adaptive:
            self._learn_from_sample(served + self._sample_extra, period, now, hint)
        self._sample_extra = 0

    def _grow_towards_ceiling(self, rate: float, ceiling: float, now: float) -> None:
        """One paced success's worth of growth, ``per_second / rate``, so that a second
        of sending at ``rate`` adds ``per_second``."""
        settings = self.settings
        hold = ceiling * settings.safety
        # TCP CUBIC's convex region: the longer no throttle came, the faster the probe.
        since_cut = now - self._last_cut_at if self._last_cut_at > -math.inf else 0.0
        doublings = min(max(since_cut, 0.0) / settings.probe_doubling, MAX_PROBE_DOUBLINGS)
        probe = settings.probe_growth * ceiling * 2.0**doublings
        if rate < hold:
            # Regain a share of the gap per second (never slower than probing), and
            # stop at the hold level rather than overshoot it.
            per_second = max(settings.recovery * (hold - rate), probe)
            self.learned_rate = min(hold, rate + per_second / rate)
            return
        if self._send_gap * rate * SENDS_KEEP_UP > 1:
            # The client sends well below the rate (its concurrency holds it back, or
            # it has little to send): a paced success proves nothing past it.  Probed
            # anyway (any wait for a slot counts as paced, and answers come in bunches),
            # the rate and the ceiling with it climbed for as long as the run lasted
            # (3,940/s after five healthy minutes at 170/s), and when the limit came
            # back each cut, half at most, left it far above (29 refusals, not 6).
            return
        rate += probe / rate
        if rate > ceiling:
            # Sent faster than the throttled rate without a throttle: the limit was
            # raised, and the ceiling follows (probing goes on at its pace).
            self._ceiling = rate
        self.learned_rate = rate

    def _reschedule_if_grown(self, now: float) -> None:
        """Reserve again once the rate outgrew the pending reservations (if any wait).

        The new schedule begins one interval of the new rate after the latest send, not
        at ``now``: restarted at ``now``, the first waiter went at once, often a
        millisecond after the request whose answer grew the rate, and an origin that
        allows no burst (a bucket one token deep) refused it.  Each such 429 cut the
        rate, and against a 10/s bucket the learned rate sank to 0.6/s in two minutes.
        """
        rate = self.learned_rate
        if (
            rate is not None
            and rate > self._reserved_rate * RESCHEDULE_GROWTH
            and self._tat > now + 1.0 / rate
            and self.gate_until <= now
        ):
            self._restart_schedule(max(now, self._last_sent_at + 1.0 / rate))

    def _learned_rate_binds(self, learned: float, now: float) -> bool:
        """Whether the learned rate is what paces the client, so a paced success says
        it can grow.  Under a lower ``rate_limit`` or quota rate it proved nothing: it
        grew for as long as those paced (to thousands per second), and the cuts of
        later throttles, half of it at most, then changed nothing for many episodes."""
        pacing = self.effective_rate(now)
        return pacing is None or learned <= pacing * (1 + 1e-9)

    def _on_success(self, ticket: Ticket, now: float) -> None:
        self.successes += 1
        if self._sample is not None and self.is_stale(ticket):
            # Sent before the first throttle: its success belongs to the first sample's
            # period, not to the next.  A burst's first 429 is often answered before
            # its successes; counted in the next period, those were taken for a second
            # window's worth, and two bursts of 30 became a trusted rate of 60/s against
            # a 300/s bucket.
            self._sample_extra += 1
        else:
            self._window_successes += 1
        self._rounds.on_success(ticket.seq)
        if not self.settings.adaptive or self.is_stale(ticket):
            # Only what was sent under the current limits is evidence that they can grow:
            # the answers still in flight from before a cut would undo it at once.
            return
        self._note_slow_start_success(ticket.sent_at)
        self.in_flight_limit.on_fresh_success(ticket.in_flight_at_send)
        learned = self.learned_rate
        if ticket.paced and learned is not None and self._learned_rate_binds(learned, now):
            if self._ceiling is None:
                # No paced throttle yet: the rate is a floor, grow by `fast_increase`
                # of itself per second (each success adds that share of one request).
                self.learned_rate = learned + self.settings.fast_increase
            else:
                self._grow_towards_ceiling(learned, self._ceiling, now)
            self._reschedule_if_grown(now)
        if ticket.in_flight_at_send >= self.concurrency_limit:
            self.in_flight_limit.grow(now)
