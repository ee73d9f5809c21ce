"""Rounds: what an origin grants at once, sent again at once at each reopening (pure).

A first throttle that closed the gate for long came after what the origin grants at
once: a window's quota, or a bucket's burst.  Both are there again when the gate reopens,
as a window or a bucket refills while it is closed.  Pacing them instead wasted them: a
bucket refilled past its depth meanwhile (its 10 tokens, 0.1 s of a 100/s bucket, lost at
every reopening), and at the rate served over the first window (whose announced instant
the rounding of ``Retry-After`` put past the window's end) every window fell a few percent
short: 21 s for 2,000 requests against a window of 100 a second.

So each reopening starts a round: the probe and ``quota - 1`` more go at once, then the
pacer.  Against a window, the request it sends next meets the spent window, whose 429
closes the gate until the next one (see :meth:`Rounds.on_throttle`).  Against a window
with whole-second hints, the next round goes a window after the last one opened instead,
without meeting the spent window (see :meth:`Rounds.take_credit`).  A round whose burst
was not served whole ends the rounds for good, and the pacer alone goes on.

The origin's throttle (:class:`trestfly._throttle.OriginThrottle`) owns one
:class:`Rounds` and tells it about reopenings, sends, throttles and successes; attempts
are known by their sequence numbers on the origin.  Nothing here reads a clock.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._throttle import Ticket


class RoundThrottle(enum.Enum):
    """What a fresh timed throttle was, as far as the rounds can tell."""

    #: Not the round's: a paced request met the rate, and the rate is cut as usual.
    RATE = "rate"
    #: The round's (a window spent, a burst deeper than the bucket): it cuts nothing.
    ROUND = "round"
    #: A timed window round was refused within its burst: it cuts nothing, and the
    #: pacer goes on at the quota per window (see :meth:`Rounds.window_rate`).
    WINDOW_RATE = "window-rate"


class Rounds:
    """The rounds of one origin (none until :meth:`start`)."""

    def __init__(self) -> None:
        #: What the origin served before its first throttle, sent again at once at each
        #: reopening (None: no rounds); whether that was a window's quota (see
        #: on_throttle); the period it was served over.
        self.quota: int | None = None
        self.is_window = False
        self.length = 0.0
        # The current round: when it opened, the sequence number of its first send,
        # what is left of its burst, whether the burst was all sent, its successes.
        self._start = -math.inf
        self._first_seq = 0
        self.credit = 0
        self.full = False
        self._served = 0
        # The current (or last) round's burst: the sequence number after it, how many of
        # it were served, and whether one of it was refused: then what it was served is
        # the bucket's depth (see OriginThrottle._leave_slow_start).
        self._burst_end = 0
        self.burst_served = 0
        self.burst_refused = False
        #: Timed rounds (see take_credit): whether a window's rounds are timed, when the
        #: next one opens (-inf: none is waiting), and whether the current one was.
        self.timed = False
        self.next_at = -math.inf
        self._was_timed = False
        # The quota of a timed window round refused within its burst (see window_rate).
        self._window_quota = 0
        # Whether other workers send into the same windows (see share_windows).
        self._shared_windows = False

    def start(
        self, served: int, period: float, *, long_hint: bool, whole_seconds: bool, window: bool
    ) -> None:
        """Reopenings send what was served at once (see open) if the gate closed for
        long enough to refill it (``long_hint``); ``window``: it was a window's quota;
        ``whole_seconds``: the hint that closed the gate was in whole seconds.

        A bucket's burst is taken less a tenth (at least one token): the pacer goes on
        one interval after the round's last send at just under the bucket's rate, so a
        bucket emptied at once holds the first paced request to a few hundredths of a
        token, and the jitter of a fraction of a millisecond refused it for a whole
        second.
        """
        quota = served if window else served - max(1, served // 10)
        self.quota = quota if long_hint and quota > 1 else None
        self.is_window, self.length = window, period
        # Exact hints reopen the gate where the window turns; whole seconds do not.
        whole = whole_seconds and period >= 1
        alone = not self._shared_windows
        self.timed = window and whole and alone and self.quota is not None

    def share_windows(self) -> None:
        """Other workers send into the same windows, on their own rounds: a round here is
        no longer what a window allows this worker, and rounds are never timed."""
        self._shared_windows, self.timed = True, False

    def open(self, now: float, next_seq: int) -> None:
        """The gate reopens (its probe, sequence number ``next_seq``, goes now): the
        round's burst goes at once -- unless the last round's burst was refused in part,
        which ends the rounds."""
        quota = self.quota
        if quota is None:
            return
        if self.full and self._served < quota:
            self.quota = None  # the last round's burst was refused in part
            return
        # A timed round opens when it was due, not when its probe got to go: a few
        # milliseconds late each time, the rounds would drift through the windows.
        # After an idle spell it opens in the window of ``now``, on the same phase.
        due, self.next_at = self.next_at, -math.inf
        self._was_timed = due > -math.inf
        start = now
        if self._was_timed:
            period = self.timed_period
            start = due + math.floor((now - due) / period) * period
        self._start, self._first_seq = start, next_seq
        self.credit, self.full, self._served = quota - 1, False, 0
        self._burst_end, self.burst_served = self._first_seq + quota, 0

    def take_credit(self, now: float, next_seq: int, *, rate_limited: bool) -> bool:
        """Whether a send (sequence number ``next_seq``) may go now as part of the
        round's burst (and take it).  Call only while ``credit`` is left.

        Never beside a client-side rate limit (``rate_limited``: its burst is the user's
        word), and only within the window the round opened (a burst held for later could
        meet a window already partly spent by others).

        When a timed round's burst is all sent, the next round is timed (``next_at``):
        nothing more goes until the next window, a window's length after this round
        opened; then a probe goes first and the next round's burst after its answer.
        Against a fixed window with ``Retry-After`` in whole seconds, a request sent
        after the round meets the spent window, and its ``Retry-After`` (rounded up) is
        counted from when it arrived, so each round opened that much later in its window
        than the last.  Against a window of 100 a second, the 429 came 0.07-0.14 s after
        the reopening on a slow machine, and every seventh to fourteenth window was
        missed whole: 2,000 requests took 21.4-25.0 s instead of 19.  The window's length
        is taken as the first sample's period in whole seconds (what the hints could
        say).  Should the next window not have begun by then, the probe is refused: the
        gate closes for its ``Retry-After``, and the rounds go on from the reopenings,
        untimed (see on_throttle).
        """
        if rate_limited or now - self._start >= self.length:
            self.end_burst(next_seq)
            return False
        self.credit -= 1
        self.full = self.credit == 0
        if self.full and self.timed:
            self.next_at = self._start + self.timed_period
        return True

    @property
    def timing_next(self) -> bool:
        """Whether the burst just sent timed the next round (see take_credit)."""
        return self.full and self.timed

    @property
    def timed_period(self) -> int:
        """A timed round's window: the first sample's period in whole seconds."""
        return max(1, math.floor(self.length))

    def end_burst(self, next_seq: int) -> None:
        """No more of the round's burst goes: it is what was sent of it so far (the next
        send would be sequence number ``next_seq``)."""
        self.credit = 0
        self._burst_end = min(self._burst_end, next_seq)

    def close(self, next_seq: int) -> None:
        """The gate closed: the reopening starts the next round, and what is left of this
        round's burst waits for it."""
        self.next_at = -math.inf
        self.end_burst(next_seq)

    def on_throttle(self, ticket: Ticket, next_seq: int) -> RoundThrottle:
        """A fresh timed throttle during rounds: whether it is the round's, which says
        nothing about the rate: a window's round spent (a request that may have arrived
        after the round's whole burst, within the window), or a bucket's burst that was
        smaller than the round.

        Requests in flight together reach the server in any order, so the refused one
        may be any of those beside it: the last of the burst is refused as often as
        the paced request sent next.  One refused before that, or while the burst was
        not all sent, ends the rounds: the origin does not grant that much at once.
        Against a bucket, a request of the burst itself (one of the round's first sends,
        sent at once) refused ends them too, and cuts nothing: it was not sent at the
        paced rate, and only says the bucket is shallower than its first burst looked
        (at concurrency 100 the first wave reaches it over tens of milliseconds, and a
        10-token bucket serves 12 or 13).  Cut as a paced throttle, it set the ceiling
        to the rate slow start had reached a few milliseconds after the reopening, a
        quarter of the limit, and the client stayed near it for a minute.  What the
        burst was served is then the bucket's depth (see
        OriginThrottle._leave_slow_start).

        A timed window round refused within its burst ends the rounds too, and cuts
        nothing: see window_rate.
        """
        quota = self.quota
        if quota is None or ticket.seq < self._first_seq:
            return RoundThrottle.RATE
        sent_before = ticket.seq - self._first_seq
        if self._was_timed and ticket.probe and sent_before == 0:
            # A timed round came before the window had turned: its length is not what
            # the first sample said.  The rounds go on from each reopening, untimed.
            self.timed = self._was_timed = False
            return RoundThrottle.ROUND
        if not self.is_window and sent_before < quota and not ticket.paced:
            self.quota = None
            self.end_burst(next_seq)
            self.burst_refused = True
            return RoundThrottle.ROUND
        if not self.full or sent_before + ticket.in_flight_at_send <= quota:
            self.quota = None
            self.end_burst(next_seq)
            if self._was_timed and self.is_window:
                self.timed = self._was_timed = False
                self._window_quota = quota
                return RoundThrottle.WINDOW_RATE
            return RoundThrottle.RATE
        within = self.is_window and ticket.sent_at - self._start < self.length
        return RoundThrottle.ROUND if within else RoundThrottle.RATE

    def window_rate(self) -> float:
        """After :attr:`RoundThrottle.WINDOW_RATE`: the rate to pace at, the quota per
        window.

        A timed window round was refused within its burst: the window was partly spent
        when the round opened, by the last round's burst, which crossed into it (nobody
        else sends on it: rounds are timed only alone).  A client that takes most of a
        window to send the quota (400 a second against 200 a window, its first 429 half a
        second in, the reopening rounded up past the window's middle) sends each burst
        across two windows.  Cut as a paced throttle, it left the client at the first
        sample's rate, which the late reopening had stretched (200 over 1.7 s: 130 a
        second against a window of 200).  The rounds end, and the pacer goes on at what
        they were served: the quota per window, held with half the safety margin like a
        trusted first sample.
        """
        return self._window_quota / self.timed_period

    def on_success(self, seq: int) -> None:
        """Attempt ``seq`` was served: it counts for its round, and for its burst."""
        if self.quota is not None and seq >= self._first_seq:
            self._served += 1
        if self._first_seq <= seq < self._burst_end:
            self.burst_served += 1
