"""How many requests an origin may have in flight at once: the adaptive limit (pure).

A throttle without a hint (a 429 with no ``Retry-After`` and no quota headers) is how
servers refuse too many requests *at once* (GitHub's secondary limit).  The origin's
throttle (:class:`trestfly._throttle.OriginThrottle`) hands such throttles here, with
every answer and every finished attempt; this class keeps the limit:

* **Cut** once per window of answers, down to the requests in flight when the refused one
  was sent, never below half the limit (see :meth:`ConcurrencyLimit.cut`).
* **Settle** on what the server held at once: the requests in flight beside the refused
  one (the crowd) are watched, and once all are answered the limit is how many of them
  were served (see :meth:`ConcurrencyLimit._settle_crowd`).
* **Grow** by one per window of successes sent at the limit, to one below the refused
  count, where it holds before probing past it (see :meth:`ConcurrencyLimit.grow`).
* **Forgive** a stray: a refusal with no more in flight than the server has served
  whole windows of requests at since the last cut passes without a cut, a few at most,
  while such windows come between them (see :meth:`ConcurrencyLimit.forgives`).

Like the throttle, it never reads a clock: every method that needs the time takes it.
"""

from __future__ import annotations

import math
from collections.abc import Set

#: Refusals that windows of successes let pass without a cut, at most (see
#: ConcurrencyLimit.forgives).
STRAY_ALLOWANCE = 4


class ConcurrencyLimit:
    """The per-origin limit of requests in flight, between 1 and ``maximum``."""

    def __init__(self, maximum: int, *, decrease: float, probe_doubling: float) -> None:
        self.maximum = maximum
        self._decrease = decrease
        self._probe_doubling = probe_doubling
        #: The limit as a float: growth adds a share of one request per success.
        self.value = float(maximum)
        # The attempts in flight at an untimed throttle (by sequence number), how many of
        # them were served, and the limit before that throttle's cut (see _watch_crowd).
        self._crowd: set[int] = set()
        self._crowd_served = 0
        # Of the crowd, those not answered yet, and how many left without an answer
        # (cancelled by their caller; a transport failure counts as an answer, not
        # served): see _settle_crowd.
        self._crowd_unheard: set[int] = set()
        self._crowd_abandoned = 0
        self._crowd_limit = float(maximum)
        # When the crowd began to be watched: one still out ``probe_doubling`` later is
        # dropped unsettled (see on_done).
        self._crowd_since = -math.inf
        # What the last cut set the limit to: it stands when a crowd is refused whole
        # (see _settle_crowd).
        self._crowd_cut = float(maximum)
        # Attempts still to come back before an untimed throttle may cut the limit again
        # (see cut), and when the last cut was.
        self._cut_window_left = 0
        self._cut_at = -math.inf
        #: The requests in flight when the last refused request was sent: the count the
        #: server refused (None until one did, or once probing went past it).  See grow.
        self.ceiling: int | None = None
        # Strays (see forgives): the successes since the last refusal and the most in
        # flight at any of their sends; the most in flight a whole window of them was
        # served at since the last cut, and how many refusals may still pass.
        self._clean_count = 0
        self._clean_peak = 0
        self._held = 0
        self._forgivable = 0

    @property
    def limit(self) -> int:
        """Requests the origin may have in flight now."""
        return max(1, min(self.maximum, int(self.value)))

    def cut(self, *, seq: int, in_flight_at_send: int, pending: Set[int], now: float) -> None:
        """An untimed throttle of attempt ``seq``: too many at once.  Cut the limit --
        once per window of answers.

        Until as many attempts sent after the cut as the new limit allows have come
        back, the answers are to requests sent under the old limit or in the same
        crowd, and a server's own bookkeeping can lag by a request (a slot freed just
        after its answer left): cutting on each of those collapsed a limit of 10 to 1 in
        a quarter of a second.  A cut goes down to the requests in flight when the
        throttled one was sent, but never below half of the limit, so a lone stray 429
        cannot do that either.  Once the requests in flight beside it (``pending``, the
        attempts in flight now) are answered, the limit is set to how many of them were
        served (see _watch_crowd): lower after a crowd, back up after a stray.
        """
        if self._cut_window_left > 0:
            return
        self._held = self._forgivable = 0
        before = self.value
        target = max(min(self.value, in_flight_at_send), self.value / 2)
        self.value = self._crowd_cut = max(1.0, target * self._decrease)
        self._cut_window_left = self.limit
        self._cut_at = now
        self.ceiling = in_flight_at_send
        if not self._crowd:
            self._watch_crowd(seq, pending, before)
            self._crowd_since = now

    def _watch_crowd(self, seq: int, pending: Set[int], limit_before: float) -> None:
        """Count how many of the requests in flight at this refusal the server serves.

        Those it serves were all in flight at one instant: the server held that many
        at once, and one more (the refused request) was too many.  Once every one of
        them is answered, the limit goes down to that count (see _settle_crowd).  A
        crowd of a hundred against a cap of ten is set to ten in one round trip, where
        cuts once per window of answers took a dozen windows (at 0.9 each), and the
        crowd's retries met the cap in each of them.  Arrival order does not matter,
        and a server whose count lags its answers by one gives the same count every
        time, so the estimates never compound.
        """
        self._crowd = {other for other in pending if other != seq}
        self._crowd_unheard = set(self._crowd)
        self._crowd_served = 0
        self._crowd_abandoned = 0
        self._crowd_limit = limit_before

    def on_answered(self, seq: int) -> None:
        """Attempt ``seq`` got an answer, whatever it was."""
        if self._crowd:
            self._crowd_unheard.discard(seq)

    def on_refused(self, seq: int, in_flight: int) -> None:
        """Attempt ``seq`` got an untimed throttle, with ``in_flight`` attempts (itself
        included) still in flight.

        When it is one of the crowd, then until the crowd is answered the limit is what
        is still in flight beside it: the server holds at most those.  A cap of 10 met by
        100 at once refuses 90, and the cut alone (to 81 after two) let the first retries
        of those 90 out again into the full cap before the 10 it admitted came back (15
        more 429s at the start of the storm benchmark's ``concurrency_cap``).  What the
        crowd was served sets the limit when it is answered (see _settle_crowd).
        """
        self._clean_count = self._clean_peak = 0
        if seq in self._crowd:
            self.value = min(self.value, max(1.0, float(in_flight - 1)))

    def on_served(self, seq: int) -> None:
        """Attempt ``seq`` was served."""
        if seq in self._crowd:
            self._crowd_served += 1

    def on_done(self, seq: int, sent_at: float, now: float | None = None) -> None:
        """Attempt ``seq`` (sent at ``sent_at``) is over, whatever happened to it
        (``now``, when known).

        A crowd is answered within a round trip or so.  One still out ``probe_doubling``
        seconds after its cut (a slow download was in it) is dropped unsettled: its
        count is a minute old, and settled then it cut a limit the server had since
        served at 40 at once, without a refusal, down to 19.
        """
        if self._crowd:
            if now is not None and now - self._crowd_since > self._probe_doubling:
                self._crowd.clear()
            else:
                if seq in self._crowd_unheard:
                    self._crowd_unheard.discard(seq)
                    self._crowd_abandoned += 1
                self._crowd.discard(seq)
                if not self._crowd:
                    self._settle_crowd()
        if self._cut_window_left > 0 and sent_at >= self._cut_at:
            self._cut_window_left -= 1

    def _settle_crowd(self) -> None:
        """Every request of the crowd is answered: the limit is what the server served
        of it at once, never above the limit before the cut.  (So a stray refusal
        among many served gives back what its cut took.)"""
        served = self._crowd_served
        if self._crowd_abandoned:
            # Some of the crowd never got an answer (their callers cancelled them: the
            # first failure of a map cancels the rest).  They may have been served, so
            # the count is only a floor: it may lift the cut, never lower it.  Counted
            # as refused, a map's cancelled calls left the limit at the 2 that answered.
            self.value = min(self._crowd_limit, max(float(served), self._crowd_cut))
        # None served: the server refused everything (overload, a rate limit without
        # hints), which says nothing about how many at once it allows: the cut stands,
        # not what was left in flight as the refusals came in.
        elif served > 0:
            self.value = min(self._crowd_limit, float(served))
            self.ceiling = served + 1
        else:
            self.value = self._crowd_cut

    def forgives(self, in_flight_at_send: int, in_flight: int) -> bool:
        """Whether an untimed throttle is a stray, to let pass without a cut (and without
        a new episode): ``in_flight_at_send`` were in flight when the attempt was sent,
        ``in_flight`` are now, itself included.

        It is when, since the last cut, the server served a window of requests in a row
        (as many as the limit, no refusal among them) with as many in flight at one of
        their sends: a cap at that count would have refused in it.  Each such window
        lets one refusal pass, ``STRAY_ALLOWANCE`` at most, and each refusal starts the
        window again.  So a cap lowered under that count (another client shares it
        now), refusing in every window, is cut after a few 429s, and a count never
        served (the limit probed past the cap) is cut at the first, as before.

        Cut on each, stray 429s (a server refusing one request in a hundred, whatever
        the load) took the limit down by one each, to the requests beside them, all
        served, and held growth for ``probe_doubling``: from 20 to 1 in seconds, 20
        requests a second where 400 went.  The count is the larger of the two: requests
        sent at once reach the server in any order, and the one it refused may be the
        one sent first.
        """
        count = max(in_flight_at_send, in_flight)
        if count <= self._held and self._forgivable > 0:
            self._forgivable -= 1
            return True
        return False

    def on_fresh_success(self, in_flight_at_send: int) -> None:
        """A success for an attempt sent under the current limits, with
        ``in_flight_at_send`` in flight (itself included): see forgives."""
        self._clean_count += 1
        self._clean_peak = max(self._clean_peak, in_flight_at_send)
        if self._clean_count >= self.limit:
            self._held = max(self._held, min(self.limit, self._clean_peak))
            self._forgivable = min(STRAY_ALLOWANCE, self._forgivable + 1)
            self._clean_count = self._clean_peak = 0

    def grow(self, now: float) -> None:
        """One success sent at the limit: grow it by one per window of successes -- but,
        once a count was refused, only back to one below that count, where it holds for
        ``probe_doubling`` seconds before probing again.

        The same plateau as the rate's (see OriginThrottle._grow_towards_ceiling):
        growing straight back into the refused count walked the client into the cap
        every few dozen requests, and each of those 429s is a retry and a cut.
        """
        step = 1.0 / self.value
        ceiling = self.ceiling
        if ceiling is not None:
            hold = float(max(1, ceiling - 1))
            if self.value < hold:
                self.value = min(hold, self.value + step)
                return
            if now - self._cut_at < self._probe_doubling:
                return
            if self.value >= ceiling:
                # Sent the refused count long enough without a refusal: the cap was
                # raised (or it was a stray), and growth is free again.
                self.ceiling = None
        self.value = min(float(self.maximum), self.value + step)
