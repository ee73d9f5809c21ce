"""Pure parsing of rate-limit response headers into one :class:`Quota`.

Understood forms, first match wins:

* GitHub style ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``
  (reset as epoch seconds, as GitHub sends it, or as delta seconds: a value above
  1,000,000,000 can only be an epoch);
* IETF httpapi draft, structured-field form (draft 08 and later):
  ``RateLimit: "default";r=37;t=5`` with ``RateLimit-Policy: "default";q=100;w=60``;
* IETF draft, older forms: ``RateLimit: limit=100, remaining=37, reset=5`` and the
  separate ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` fields.

Anything malformed is ignored (None), never an exception: a server's headers must not be
able to break a request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: A reset value above this is an epoch timestamp, below it a delay in seconds.
_EPOCH_THRESHOLD = 1_000_000_000
_INT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*")
_PARAM = re.compile(r"\b([a-z]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Quota:
    """What the server said about the client's quota, as of one response.

    Attributes:
        remaining: requests left in the current window.
        reset_after: seconds until the window resets (None if not said).
        limit: the window's quota (None if not said).
        window: the window's length in seconds, from ``RateLimit-Policy`` (None if not
            said).  With ``limit`` it gives the rate the server allows.
    """

    remaining: int
    reset_after: float | None
    limit: int | None
    window: float | None = None

    @property
    def policy_rate(self) -> float | None:
        """Requests per second the announced policy allows, when it is fully known."""
        if self.limit and self.window:
            return self.limit / self.window
        return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = _INT.fullmatch(value)
    if not match:
        return None
    number = float(match.group(1))
    return number if math.isfinite(number) else None


def _reset_after(value: float | None, wall_now: float) -> float | None:
    if value is None:
        return None
    if value > _EPOCH_THRESHOLD:
        return max(0.0, value - wall_now)
    return value


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def _github(headers: Mapping[str, str], wall_now: float) -> Quota | None:
    remaining = _number(headers.get("x-ratelimit-remaining"))
    if remaining is None:
        return None
    return Quota(
        remaining=int(remaining),
        reset_after=_reset_after(_number(headers.get("x-ratelimit-reset")), wall_now),
        limit=_whole(_number(headers.get("x-ratelimit-limit"))),
    )


def _draft_params(value: str) -> dict[str, float]:
    return {key.lower(): float(number) for key, number in _PARAM.findall(value.replace(";", ","))}


def _policy(headers: Mapping[str, str]) -> tuple[float | None, float | None]:
    """(quota, window) of ``RateLimit-Policy``: ``"default";q=100;w=60`` or ``100;w=60``."""
    value = headers.get("ratelimit-policy")
    if value is None:
        return None, None
    params = _draft_params(value)
    quota = params.get("q")
    if quota is None:
        # Older drafts: the quota is the first bare number of the first policy item.
        first = _INT.match(value.split(",")[0].split(";")[0])
        quota = float(first.group(1)) if first else None
    window = params.get("w")
    return quota, window if window and window > 0 else None


def _ietf(headers: Mapping[str, str]) -> Quota | None:
    policy_quota, window = _policy(headers)
    combined = headers.get("ratelimit")
    if combined is not None:
        params = _draft_params(combined)
        remaining = params.get("r", params.get("remaining"))
        if remaining is None:
            return None
        reset = params.get("t", params.get("reset"))
        limit = params.get("limit", policy_quota)
        return Quota(int(remaining), reset, _whole(limit), window)
    remaining_field = _number(headers.get("ratelimit-remaining"))
    if remaining_field is None:
        return None
    limit_field = _number(headers.get("ratelimit-limit"))
    return Quota(
        remaining=int(remaining_field),
        reset_after=_number(headers.get("ratelimit-reset")),
        limit=_whole(limit_field if limit_field is not None else policy_quota),
        window=window,
    )


def scan_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, bool]:
    """One pass over a response's raw headers: ``(Retry-After value, any quota header?)``.

    Most responses carry neither; one pass is cheaper than a look-up per header name.
    """
    retry_after: str | None = None
    has_quota = False
    for name, value in raw:
        lowered = name.lower()
        if lowered == b"retry-after":
            retry_after = value.decode("latin-1")
        elif lowered.startswith((b"x-ratelimit-", b"ratelimit")):
            has_quota = True
    return retry_after, has_quota


def parse_quota(headers: Mapping[str, str], wall_now: float) -> Quota | None:
    """The quota a response's headers announce, or None when they announce none.

    Args:
        headers: the response headers (a case-insensitive mapping such as httpx.Headers).
        wall_now: the current POSIX time, to turn an epoch reset into a delay.
    """
    github = _github(headers, wall_now)
    if github is None:
        return _ietf(headers)
    if github.limit is not None and "ratelimit-policy" in headers:
        # GitHub-style counts with a draft policy beside them: the policy adds the window.
        _, window = _policy(headers)
        return Quota(github.remaining, github.reset_after, github.limit, window)
    return github


def says_quota_spent(status: int, quota: Quota | None) -> bool:
    """A 403 with ``remaining == 0`` is GitHub's way of throttling: treat it as a 429."""
    return status == 403 and quota is not None and quota.remaining <= 0
