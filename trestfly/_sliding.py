"""A count of events over the last few seconds (pure: every method takes the time).

The throttling state uses it for what an origin served over the last second of slow
start (see ``OriginThrottle._leave_slow_start``).  Entries are ``(time, count)`` pairs,
oldest first, so that a report of many events at once (another worker's successes, sent
undated at each sync) costs one entry.
"""

from __future__ import annotations

import math
from collections import deque

from .errors import UnexpectedValueError

__all__ = ["SlidingCount"]


class SlidingCount:
    """Events in the half-open window ``(now - span, now]``."""

    __slots__ = ("_entries", "_total", "span")

    def __init__(self, span: float) -> None:
        if not (span > 0 and math.isfinite(span)):
            raise UnexpectedValueError(f"a sliding window needs a span > 0 s, got {span!r}")
        self.span = span
        self._entries: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, now: float, count: int = 1) -> None:
        """Record ``count`` events at ``now`` (times must not go backwards)."""
        entries = self._entries
        if entries and entries[-1][0] == now:
            entries[-1] = (now, entries[-1][1] + count)  # one entry per instant
        else:
            entries.append((now, count))
        self._total += count
        self._expire(now)

    def count(self, now: float) -> int:
        """Events recorded in the last ``span`` seconds up to ``now``."""
        self._expire(now)
        return self._total

    def clear(self) -> None:
        self._entries.clear()
        self._total = 0

    def _expire(self, now: float) -> None:
        entries, horizon = self._entries, now - self.span
        while entries and entries[0][0] <= horizon:
            self._total -= entries.popleft()[1]
