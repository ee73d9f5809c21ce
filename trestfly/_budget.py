"""Pure retry budget: an outage must not be multiplied by the retry count.

A token bucket in the style of gRPC retry throttling and Finagle's RetryBudget.  Every
retry of a failure the server gave no guidance for (5xx without Retry-After, transport
errors) spends one token; every success deposits ``ratio`` tokens; time deposits
``per_second`` tokens per second (a floor, so a quiet session can always retry a little).
The bucket holds at most ``capacity`` tokens and starts full.

One rule keeps the budget from hurting a request that fails on its own: a request that
is the only one currently retrying may always use its configured retries.  The budget
bites only when many requests fail together, which is exactly an outage.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._arguments import is_finite
from .errors import UnexpectedValueError


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """How generous the retry budget is.

    Attributes:
        capacity: most tokens the bucket holds (and holds at the start).
        ratio: tokens deposited per successful request (0.2: retries up to 20% of traffic).
        per_second: tokens deposited per second whatever happens (the floor).
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

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise UnexpectedValueError(
                f"retry budget enabled must be True or False, got {self.enabled!r}"
            )
        for name in ("capacity", "ratio", "per_second"):
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
        self.denied = 0

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(
            self.settings.capacity, self._tokens + elapsed * self.settings.per_second
        )

    def level(self, now: float) -> float:
        """Tokens available now."""
        self._refill(now)
        return self._tokens

    def on_success(self, now: float) -> None:
        if self._tokens >= self.settings.capacity:
            return  # full: the common case, and nothing to add
        self._refill(now)
        self._tokens = min(self.settings.capacity, self._tokens + self.settings.ratio)

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
