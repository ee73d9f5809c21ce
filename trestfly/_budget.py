"""Pure retry budget: an outage must not be multiplied by the retry count.

A token bucket in the style of gRPC retry throttling and Finagle's RetryBudget.  Every
retry of a failure the server gave no guidance for (5xx without Retry-After, transport
errors) spends one token; every success deposits ``ratio`` tokens; time deposits
``per_second`` tokens per second (a floor, so a quiet session can always retry a little).
The bucket starts with ``capacity`` tokens and holds at least that many; under traffic it
holds up to ``ratio`` times the successes of the last ``window`` seconds (Finagle's
"percent of recent requests").

Why the bucket grows with traffic: each failure takes a whole token and each success
gives back a fifth, so the level is a random walk, and with a fixed capacity of 10 its
dips reach zero at failure rates well inside the ratio (at 12% failures, one run of
2,000 requests in eight at concurrency 100, and nearly every run of 20,000): retries
were refused on a server that was not down.  Sized by recent traffic, the bucket
absorbs those dips, while an outage still drains it (no successes, no deposits) and
its size decays with the window.

One rule keeps the budget from hurting a request that fails on its own: a request that
is the only one currently retrying may always use its configured retries.  The budget
bites only when many requests fail together, which is exactly an outage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._arguments import is_finite
from .errors import UnexpectedValueError


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """How generous the retry budget is.

    Attributes:
        capacity: tokens the bucket holds at the start, and the least it may hold.
        ratio: tokens deposited per successful request (0.2: retries up to 20% of traffic).
        per_second: tokens deposited per second whatever happens (the floor).
        window: seconds of recent successes the bucket may hold the deposits of: under
            traffic it holds up to ``ratio`` times the successes of about the last
            ``window`` seconds (10, Finagle's default), never less than ``capacity``.
            0 keeps the bucket at ``capacity`` whatever the traffic.
        enabled: False turns the budget off (every configured retry is made).

    Pass it as ``retry_budget=`` to a session, or set it as ``_retry_budget`` on the class.
    The values are checked: each number must be finite and >= 0 (``enabled=False``
    is the way to an unlimited budget).

    .. versionadded:: 0.1.0
    """

    capacity: float = 10.0
    ratio: float = 0.2
    per_second: float = 1.0
    enabled: bool = True
    # After enabled: BudgetSettings(10, 0.2, 1.0, False) keeps its meaning.
    window: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise UnexpectedValueError(
                f"retry budget enabled must be True or False, got {self.enabled!r}"
            )
        for name in ("capacity", "ratio", "per_second", "window"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not is_finite(value)
                or value < 0
            ):
                raise UnexpectedValueError(
                    f"retry budget {name} must be a finite number >= 0, got {value!r}"
                )


class RetryBudget:
    """The bucket itself; every method takes the current (Trio) time."""

    def __init__(self, settings: BudgetSettings, now: float) -> None:
        self.settings = settings
        self._tokens = settings.capacity
        self._updated = now
        #: Successes, each weighted by exp(-age / window): about the last window's count.
        self._recent = 0.0
        self.denied = 0

    def _size(self) -> float:
        """The most tokens the bucket may hold now (after ``_refill``)."""
        return max(self.settings.capacity, self.settings.ratio * self._recent)

    def _refill(self, now: float) -> None:
        settings = self.settings
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        if self._recent and elapsed:
            # Old successes' deposits expire with them: the size shrinks, and the
            # tokens above it go (an outage after heavy traffic drains a shrinking
            # bucket, not one that stays as large as the traffic was).
            self._recent = (
                self._recent * math.exp(-elapsed / settings.window) if settings.window else 0.0
            )
        self._tokens = min(self._size(), self._tokens + elapsed * settings.per_second)

    def level(self, now: float) -> float:
        """Tokens available now."""
        self._refill(now)
        return self._tokens

    def on_success(self, now: float) -> None:
        settings = self.settings
        if not settings.enabled or not settings.ratio:
            return  # no deposit, and the size never grows past capacity
        self._refill(now)
        if settings.window:
            self._recent += 1.0
        self._tokens = min(self._size(), self._tokens + settings.ratio)

    def try_spend(self, now: float, *, retrying_alone: bool) -> bool:
        """Take one token for a retry; False when the budget refuses it."""
        if not self.settings.enabled:
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if retrying_alone:
            return True
        self.denied += 1
        return False
