"""What an origin served during slow start and its first wave, and the rate and depth
they imply (pure; :class:`SlowStart` holds it for one origin's throttle).

Slow start grows the paced rate from a floor (the first sample) until a paced request is
throttled.  Behind a token bucket that throttle comes late: the bucket's burst hides the
excess until it is spent, so the paced rate at the throttle overshoots the limit (a
client growing e-fold a quarter second was throttled at 170/s by a 100/s bucket with a
burst of 10).  The successes say more than that rate.

A bucket of rate ``R`` and burst ``B`` holds ``B`` tokens whenever the client sends
slower than ``R``, and none at the throttle ``T``.  So from any time ``t`` it served at
most ``B + R (T - t)`` requests, exactly that many from the last time it was full::

    R >= (served in [t, T) - B) / (T - t)   for every t, with equality there.

The largest of these bounds over the logged send times estimates ``R``, given ``B``: the
burst the first sample saw served at once.

The throttled request found ``x`` tokens, ``0 <= x < 1``, and the count is short by
them: ``R (T - t) = served - B + x``.  Taking ``x`` as half a token biased the estimate
low (98.7/s on average against a 100/s bucket, so the client held 1.3% further below
the limit than it meant to).  The last success, sent ``g`` before ``T``, left ``y``
tokens, and ``x = y + R g < 1``: at the throttle slow start sends far faster than
``R``, so ``R g`` is well above 0 (0.6 at 170/s against 100/s), and ``x`` is not
anywhere in ``[0, 1)`` but in ``[R g, 1)``.  With ``y`` spread evenly over what is left,
``x = (1 + R g) / 2`` on average, which solved for ``R`` gives::

    R = (served in [t, T) - B + 1/2) / (T - g/2 - t)

the stretch ending halfway through the last gap, and never more than ``x = 1`` allows.

Times are the requests' send times, not the answers': at concurrency 100 answers come
back out of order and tens of milliseconds late, and the server's bucket saw the
requests at about their send times.

``B`` is not simply what the first wave got: the bucket refills while the wave arrives,
and at 100/s a wave spread over 14 ms got 11 from a bucket 10 deep.  Taken as ``B``, the
one token too many lowered every bound by ``1 / (T - t)``: 93-95/s against 100/s, where
the stretch that decides is a fifth of a second.  Any stretch of the wave bounds it the
other way (:func:`bucket_depth`): ``k`` successes sent over ``d`` seconds took at most
``B + R d`` tokens, so ``B >= k - R d``, and the densest stretch, ten successes sent
within 3 ms, says ``B >= 9.7``: 10, with ``R`` known to a few percent.  ``R`` depends
on ``B`` in turn, and the depth taken is the smallest that its own ``R`` bounds at no
more than itself (:meth:`SlowStart._consistent_depth`).  Which requests of the wave
were served says nothing: at concurrency 100 each opens its own connection, and the
last ten sent were served first as often as the first ten.

At concurrency 100 the send times cannot tell the refill either: all hundred are sent
within a few milliseconds, before any answer, and the densest stretch of those served
holds all eleven.  When the answers came back they did (:func:`burst_depth`): what the
bucket held it served at once, and those answers come back in one burst, each a tenth
of a millisecond after the last (the client's own time to take one in), while a token
refilled is served apart, after a token's time.  In 20 traced first waves against a
100/s bucket 10 deep, the ten came back within 0.3 ms of each other every time, and
the eleventh, in the 10 waves that had one, 3 to 15 ms apart (before the ten as often
as after: the success path is slower than the refusal's).  Only a burst that tight with
the rest that far apart says anything, and only of successes that came back after a
refusal had: a refill is served once the bucket was found empty, and at concurrency 10
one of ten served was answered 3 ms before the other nine, 12 ms before any refusal
(it was no refill: the bucket was 10 deep).  Answers spread over a network's jitter say
nothing, and the send times decide alone.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable

__all__ = ["SlowStart", "SlowStartLog", "bucket_depth", "burst_depth"]

#: Entries kept.  Slow start lasts a few seconds before a throttle; an origin that never
#: throttles again keeps only its latest successes (what an estimate would look at).
MAX_ENTRIES = 4096

#: A bound over fewer than this many bursts' worth of successes is left out: there the
#: burst's own share dominates, and a burst counted one short swings the estimate.
MIN_BURSTS = 2

#: Answers of the first wave's successes at most this far apart came back in one burst.
#: Loopback answers of one burst came 0.05-0.3 ms apart (the client taking each in).
BURST_GAP = 0.0005

#: A success answered at least this far from the burst came back apart from it; a gap
#: between ``BURST_GAP`` and this is neither, and the answers say nothing.  Refills came
#: 1.6 ms apart at the least (a 200/s bucket) in the traced waves, 3 ms at 100/s.
APART = 0.001


class SlowStartLog:
    """Send times of the successes of slow start, with how many succeeded at each."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: deque[tuple[float, int]] = deque(maxlen=MAX_ENTRIES)

    def add(self, sent_at: float, count: int = 1) -> None:
        """Record ``count`` successes of requests sent at ``sent_at`` (any order)."""
        self._entries.append((sent_at, count))

    def clear(self) -> None:
        self._entries.clear()

    def served_before(self, end: float) -> int:
        """Successes of requests sent before ``end``."""
        return sum(count for sent_at, count in self._entries if sent_at < end)

    def rate_beyond_burst(self, end: float, burst: int) -> float | None:
        """The bucket rate the successes sent before ``end`` imply, given its ``burst``
        (the largest bound of the module docstring), or None when no stretch holds
        ``MIN_BURSTS`` bursts' worth of successes (too short to tell)."""
        entries = sorted(entry for entry in self._entries if entry[0] < end)
        if not entries:
            return None
        half_gap = (end - entries[-1][0]) / 2
        best: float | None = None
        served = 0
        for sent_at, count in reversed(entries):
            served += count
            span = end - sent_at
            if served < MIN_BURSTS * burst or span <= 0:
                continue
            beyond = served - burst
            # (1 + R g) / 2 tokens at the throttle, but never a whole one.
            bound = min((beyond + 0.5) / (span - half_gap), (beyond + 1) / span)
            if best is None or bound > best:
                best = bound
        return best


def bucket_depth(served_at: Iterable[float], rate: float) -> int | None:
    """The depth of a token bucket of ``rate`` that served requests sent at ``served_at``
    (the first wave's successes, any order): the largest lower bound over stretches of
    them (see the module docstring), rounded up to a whole token, and never more than
    they were.  None when there are none.
    """
    times = sorted(served_at)
    if not times or rate <= 0:
        return None
    best = 1.0
    for first, start in enumerate(times):
        for last in range(len(times) - 1, first, -1):
            bound = last - first + 1 - rate * (times[last] - start)
            best = max(best, bound)
    # A bound of exactly 10.0 is 10 tokens, not 11: a hair of float noise is not a token.
    return min(len(times), math.ceil(best - 1e-9))


def burst_depth(answered_at: Iterable[float], emptied_at: float) -> int | None:
    """How many of the first wave's successes, answered at ``answered_at`` (any order),
    came back in its largest burst (gaps of at most ``BURST_GAP``), when every other
    came back at least ``APART`` from its neighbours, and after ``emptied_at``, when the
    wave's first refusal came back (before the bucket was found empty, a success cannot
    be a refill; see the module docstring).  None when the gaps are ambiguous, two
    bursts are as large, or there are no answers.
    """
    times = sorted(answered_at)
    if not times:
        return None
    bursts = [1]
    for before, after in itertools.pairwise(times):
        gap = after - before
        if gap <= BURST_GAP:
            bursts[-1] += 1
        elif gap >= APART:
            bursts.append(1)
        else:
            return None
    largest = max(bursts)
    if bursts.count(largest) > 1:
        return None
    start = sum(bursts[: bursts.index(largest)])  # the burst's first answer in ``times``
    others = times[:start] + times[start + largest :]
    if others and min(others) < emptied_at:
        return None  # a success apart before the bucket was found empty
    return largest


class SlowStart:
    """What an origin's throttle learns a bucket from before its first paced throttle.

    * The first sample, when it was a floor rather than a trusted rate: how many were
      served at once (``burst``) and at what rate (``first_rate``).
    * The first wave: the send times of its successes (sent before the first throttle),
      which tell a bucket's depth better than their count, and when its first answer
      came back (successes sent before it were sent at once, those after it refilled
      what had answered).
    * The log of slow start's successes, whose rate beyond the burst :meth:`served_rate`
      reads when the first paced throttle ends slow start.
    """

    __slots__ = (
        "_first_answer_at",
        "_first_refusal_at",
        "_max_wave",
        "_wave_answered",
        "_wave_end",
        "burst",
        "first_rate",
        "log",
        "wave",
    )

    def __init__(self, max_wave: int) -> None:
        self.log = SlowStartLog()
        self.burst: int | None = None
        self.first_rate = 0.0
        # None once used, or when other workers' successes joined the count.
        self.wave: list[float] | None = []
        self._wave_answered: list[float] = []  # when each of ``wave`` was answered
        self._max_wave = max_wave
        self._wave_end = math.inf
        self._first_answer_at = math.inf
        self._first_refusal_at = math.inf

    def restart_wave(self) -> None:
        """The first sample starts afresh (an idle origin): so does its wave."""
        self.wave, self._wave_end, self._first_answer_at = [], math.inf, math.inf
        self._wave_answered, self._first_refusal_at = [], math.inf

    def forget_wave(self) -> None:
        """Other workers' successes joined the count: it is no longer this wave alone."""
        self.wave = None

    def end_wave(self, now: float) -> None:
        """The first throttle: requests sent after it are not the first wave's."""
        self._wave_end = min(self._wave_end, now)

    def on_answer(self, sent_at: float, now: float, *, success: bool) -> None:
        """An answer to a request sent at ``sent_at`` came back ``now``."""
        wave = self.wave
        if wave is None:
            return
        self._first_answer_at = min(self._first_answer_at, now)
        if sent_at > self._wave_end:
            return
        if not success:
            self._first_refusal_at = min(self._first_refusal_at, now)
        elif len(wave) < self._max_wave:
            wave.append(sent_at)
            self._wave_answered.append(now)

    def floor_sample(self, served: int, rate: float) -> None:
        """The first sample served ``served`` at ``rate``, a floor of what is allowed."""
        self.burst, self.first_rate = served, rate

    def trust_sample(self) -> None:
        """The first sample was a rate, not a burst: there is no depth to tell."""
        self.burst = self.wave = None

    def served_rate(
        self, end: float, *, long_hint: bool, round_served: int
    ) -> tuple[float | None, int | None]:
        """Slow start is over (its first paced throttle, of a request sent at ``end``):
        the rate the bucket served beyond its burst, or None when what was logged says
        nothing; and the depth, when the first wave corrected the burst's count (else
        None).  Uses the wave up and clears the log.

        ``long_hint``: the throttle closed the gate for long (only then is the served
        rate worth its cost; see OriginThrottle._leave_slow_start).  ``round_served``:
        what a round's burst, sent at once into a bucket full again and refused in part,
        was served (0 when no round was refused).
        """
        wave, self.wave = self.wave, None
        burst = self.burst
        if round_served and burst is not None:
            # What the refused round was served is the depth.  The first wave's count
            # held what the bucket refilled while the wave arrived, over 70 ms when the
            # server lagged behind a hundred new connections: 16 for a depth of 10,
            # which read 72/s for 100/s (31 s for 2,000 requests instead of 23).
            burst = self.burst = min(burst, round_served)
            wave = None  # its times bound a count the round has corrected
        estimate = corrected = None
        if long_hint and burst is not None:
            estimate = self.log.rate_beyond_burst(end, burst)
            consistent = self._consistent_depth(wave, end, burst) if wave and estimate else None
            if consistent is not None:
                # The first wave's count held the refill while it arrived (see the
                # module docstring): one token too many read 93-95/s for 100/s.
                estimate, corrected = consistent
                self.burst = corrected
        self.log.clear()  # slow start is over, whichever ceiling it leaves
        return estimate, corrected

    def _consistent_depth(
        self, wave: list[float], end: float, burst: int
    ) -> tuple[float, int] | None:
        """The smallest depth below ``burst`` that agrees with the rate it implies: the
        wave's send times bound the depth given a rate (:func:`bucket_depth`), and the
        log gives the rate given a depth, so a depth is consistent when the bound under
        its own rate does not exceed it.  With the rate taken from the count instead,
        one pass could only confirm it: a first wave served 12 over 20 ms read 93/s,
        whose bound (12 - 93 x 0.020 = 10.1) is 11 deep, while 10 deep reads 99.9/s,
        whose bound is 9.99; the server's bucket was 10 deep.  None: only ``burst`` is.

        Never more than a tenth, and at least two tokens, below what was sent at once
        (the wave's successes sent before its first answer): the send times are not the
        arrival times when each request first opens a connection, and against a 200/s
        bucket 20 deep the bound fell to 18 (211/s).  Two, because at concurrency 100 a
        hundred connections open over 20-40 ms, two to four tokens of a 100/s bucket.
        The refills sent after answers are not counted at all: at concurrency 10
        against a bucket 10 deep, two to four of them made a count of 12-14, read 11-13
        deep (81-98/s for 100/s).

        A depth is consistent too when the wave's answers came back in a burst of that
        many (:func:`burst_depth`) and the bucket, at the rate that depth implies, had
        the time to refill the others while they were answered (one it may have been
        about to refill already).
        """
        early = sum(sent_at < self._first_answer_at for sent_at in wave)
        answered = self._wave_answered
        answered_burst = burst_depth(answered, self._first_refusal_at)
        for depth in range(max(1, early - max(2, early // 10)), burst):
            rate = self.log.rate_beyond_burst(end, depth)
            if rate is None:
                continue
            if (bucket_depth(wave, rate) or depth) <= depth:
                return rate, depth
            refills = len(wave) - depth
            if depth == answered_burst and refills <= 1 + rate * (max(answered) - min(answered)):
                return rate, depth
        return None
