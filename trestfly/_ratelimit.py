"""Pure parsing of rate-limit response headers into one :class:`Quota`.

Understood forms, first match wins:

* GitHub style ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``
  (reset as epoch seconds, as GitHub sends it, or as delta seconds: a value above
  1,000,000,000 can only be an epoch, and one above 100,000,000,000 an epoch in
  milliseconds), and the same with ``X-Rate-Limit-*`` (X/Twitter, Okta, Zendesk);
  ``X-RateLimit-Reset-After`` (Discord's delay beside its epoch) is preferred to the
  epoch when both are sent;
* IETF httpapi draft, structured-field form (draft 08 and later):
  ``RateLimit: "default";r=37;t=5`` with ``RateLimit-Policy: "default";q=100;w=60``
  (a name quoted or a token: ``default;r=37;t=5``);
* IETF draft, older forms: ``RateLimit: limit=100, remaining=37, reset=5`` and the
  separate ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` fields
  (the limit a number, or the list of drafts 00-02, ``10, 10;w=1, 1000;w=3600``: the
  limit, then its policies).

Several policies at once (``RateLimit-Policy: 10;w=1, 1000;w=3600``) pair each quota
with its own window.  Of several ``RateLimit`` entries the one that binds is used: the
fewest requests left, then the longest wait; its policy by name, else the policy of the
lowest rate.

Anything malformed is ignored (None), never an exception: a server's headers must not be
able to break a request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

#: A reset value above this is an epoch timestamp, below it a delay in seconds.
_EPOCH_THRESHOLD = 1_000_000_000
#: An epoch above this (the year 5138 in seconds) is in milliseconds, as some APIs send.
_EPOCH_MS_THRESHOLD = 100_000_000_000
_INT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*")
# The value ends at the parameter's end: "t=1.5e2" or "t=5m" is no number of seconds
# (read as 1.5 and 5 before), and a malformed parameter is ignored.
# A parameter's key is a whole RFC 8941 sf-key, at the item's start or after ";" or ",":
# matched from a word boundary, the "t" of an extension's "x-t=3600" overwrote the reset.
_PARAM = re.compile(
    r"(?:^|[;,])\s*([a-z*][a-z0-9_.*-]*)\s*=\s*([0-9]+(?:\.[0-9]+)?)(?=\s*(?:[;,]|$))",
    re.IGNORECASE,
)
# The older drafts' dictionary form (limit=100, remaining=37, reset=5), by its keys.
_DICTIONARY_KEY = re.compile(r"(?:^|[;,])\s*(?:limit|remaining|reset)\s*=", re.IGNORECASE)
#: A policy's quota unit (draft 08+: "request", "content-bytes", "concurrency").
_UNIT = re.compile(r';\s*qu\s*=\s*"([^"]*)"', re.IGNORECASE)
# An item's name: the draft allows a String ("burst") or a Token (burst;r=0), RFC 8941's
# sf-token (ALPHA or "*", then tchar, ":" or "/").  Only quoted names were read: with
# token names every entry was nameless, paired with no policy, and a content-bytes
# quota of 0 left was read as a spent request quota.  A Token must end the bare item
# (";", "," or the end), so "r=0" or an older draft's "100;w=60" is no name.
_NAME = re.compile(r"""\s*(?:"([^"]*)"|([A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]*)(?=\s*(?:;|$)))""")


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


def _field(
    headers: Mapping[str, str], name: str, pick: Callable[[Iterable[float]], float]
) -> float | None:
    """The number a header field holds, ``pick`` of them when it was sent more than once.

    httpx joins repeated fields with ", ": an API gateway that adds its own
    ``X-RateLimit-Remaining`` beside the origin's made ``"0, 0"``, read as no number,
    and GitHub's spent-quota 403 was no longer a throttle.  The values that are not
    numbers are ignored; ``pick`` is the cautious one (the fewest left, the latest
    reset).
    """
    value = headers.get(name)
    if value is None or "," not in value:
        return _number(value)
    numbers = [number for part in value.split(",") if (number := _number(part)) is not None]
    return pick(numbers) if numbers else None


def _reset_after(value: float | None, wall_now: float) -> float | None:
    if value is None:
        return None
    if value > _EPOCH_MS_THRESHOLD:
        value /= 1000.0
    if value > _EPOCH_THRESHOLD:
        return max(0.0, value - wall_now)
    return value


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


#: The prefixes of the counting header families: GitHub's, GitLab's, Discord's and most
#: gateways' ``X-RateLimit-*``; X's (Twitter's), Okta's and Zendesk's ``X-Rate-Limit-*``.
_COUNT_PREFIXES = ("x-ratelimit-", "x-rate-limit-")


def _github(headers: Mapping[str, str], wall_now: float) -> Quota | None:
    # Both families at once (a gateway's beside the origin's) are read cautiously, as a
    # field sent twice is: the fewest left, the latest reset, the lowest limit.
    quotas = [quota for prefix in _COUNT_PREFIXES if (quota := _counts(headers, prefix, wall_now))]
    if len(quotas) < 2:
        return quotas[0] if quotas else None
    resets = [quota.reset_after for quota in quotas if quota.reset_after is not None]
    limits = [quota.limit for quota in quotas if quota.limit is not None]
    return Quota(
        remaining=min(quota.remaining for quota in quotas),
        reset_after=max(resets) if resets else None,
        limit=min(limits) if limits else None,
    )


def _counts(headers: Mapping[str, str], prefix: str, wall_now: float) -> Quota | None:
    remaining = _field(headers, prefix + "remaining", min)
    if remaining is None:
        return None
    # Discord's delay beside its epoch: a delay does not depend on the client's clock.
    reset_after = _field(headers, prefix + "reset-after", max)
    if reset_after is None:
        reset_after = _reset_after(_field(headers, prefix + "reset", max), wall_now)
    return Quota(
        remaining=int(remaining),
        reset_after=reset_after,
        limit=_whole(_field(headers, prefix + "limit", min)),
    )


def _params(text: str) -> dict[str, float]:
    """``key=number`` pairs of one item (separated by ``;`` or ``,``), finite only."""
    params: dict[str, float] = {}
    for key, number in _PARAM.findall(text):
        value = float(number)
        if math.isfinite(value):  # 400 digits make inf: a header must not break a request
            params[key.lower()] = value
    return params


def _items(value: str) -> list[tuple[str | None, dict[str, float], str]]:
    """The items of a draft header's list: ``(name, params, text)`` each.

    Draft 08 and later send one item per policy (``"burst";r=0;t=1, "day";r=4000``),
    named by a String or a Token (``burst;r=0;t=1``); the older dictionary form
    (``limit=100, remaining=37, reset=5``) is one item whose parameters happen to be
    separated by commas.
    """
    if _DICTIONARY_KEY.search(value):
        return [(None, _params(value), value)]
    items = []
    for text in value.split(","):
        match = _NAME.match(text)
        name = None if match is None else match[1] if match[1] is not None else match[2]
        items.append((name, _params(text), text))
    return items


Policy = tuple[str | None, float | None, float | None]  # (name, quota, window)


def _policies(headers: Mapping[str, str]) -> list[Policy]:
    """The items of ``RateLimit-Policy`` (``"default";q=100;w=60`` or ``100;w=60``):
    ``(name, quota, window)``, each quota paired with its own item's window."""
    value = headers.get("ratelimit-policy")
    return [] if value is None else _policy_list(value)


def _counts_other_units(text: str) -> bool:
    """Whether a policy item counts something else than requests: a quota of bytes
    (``qu="content-bytes"``) or of requests at once (``qu="concurrency"``) is no count
    of requests left (500 bytes were read as 500 requests)."""
    unit = _UNIT.search(text)
    return unit is not None and unit.group(1).lower() != "request"


def _other_unit_names(headers: Mapping[str, str]) -> set[str]:
    """Names of the ``RateLimit-Policy`` items that count something else than requests:
    the ``RateLimit`` entries of those names are not request quotas either."""
    value = headers.get("ratelimit-policy")
    if value is None:
        return set()
    return {name for name, _, text in _items(value) if name and _counts_other_units(text)}


def _policy_list(value: str) -> list[Policy]:
    """The policies of a list of ``quota;w=window`` items (see :func:`_policies`)."""
    policies: list[Policy] = []
    for name, params, text in _items(value):
        if _counts_other_units(text):
            continue
        quota = params.get("q")
        if quota is None:
            # Older drafts: the quota is the item's first bare number.
            bare = _INT.match(text.split(";")[0].strip().strip('"'))
            quota = _number(bare.group(0)) if bare else None
        window = params.get("w")
        policies.append((name, quota, window if window and window > 0 else None))
    return policies


def _strictest(policies: list[Policy]) -> tuple[float | None, float | None]:
    """(quota, window) of the policy of the lowest rate (a day's quota binds harder
    than a second's), or of the first one when no rate can be computed."""
    known = [(q / w, (q, w)) for _, q, w in policies if q is not None and w]
    if known:
        return min(known)[1]
    return (policies[0][1], policies[0][2]) if policies else (None, None)


def _window_of(limit: float, policies: list[Policy]) -> float | None:
    """The window of the policy whose quota is ``limit`` (the one a limit header
    reports), or of the only policy listed; None rather than another policy's window."""
    if len(policies) == 1:
        return policies[0][2]
    return next((w for _, q, w in policies if q == limit), None)


def _limit_field(value: str | None, policies: list[Policy]) -> tuple[float | None, float | None]:
    """``(limit, window)`` of a ``RateLimit-Limit`` field.

    A number (``10``), or in drafts 00-02 a list: the limit first, then the policies
    (``10, 10;w=1, 1000;w=3600``, the draft's own example).  The window is the first
    item's own ``w``, else that of the listed (or ``RateLimit-Policy``) policy of the
    same quota: never another quota's.
    """
    if value is None:
        return None, None
    first, *others = value.split(",")
    limit = _number(first.split(";")[0])
    if limit is None:
        return None, None
    window = _params(first).get("w")
    if window is not None and window > 0:
        return limit, window
    if others:
        listed = [policy for policy in _policy_list(",".join(others)) if policy[2]]
        window = next((w for _, q, w in listed if q == limit), None)
        if window is not None:
            return limit, window
    return limit, _window_of(limit, policies)


def _ietf(headers: Mapping[str, str], wall_now: float) -> Quota | None:
    policies = _policies(headers)
    combined = headers.get("ratelimit")
    if combined is not None:
        entries = []
        other_units = _other_unit_names(headers)
        for name, params, _ in _items(combined):
            if name is not None and name in other_units:
                continue
            remaining = params.get("r", params.get("remaining"))
            if remaining is not None:
                # The drafts say delta seconds; GitLab sends a Unix time in the same
                # field.  Read as seconds, that closed the origin for 57 years.
                reset = _reset_after(params.get("t", params.get("reset")), wall_now)
                entries.append((remaining, -(reset or 0.0), name, params, reset))
        if not entries:
            return None
        # The entry that binds: the fewest requests left, then the longest wait.
        remaining, _, name, params, reset = min(entries, key=lambda entry: entry[:2])
        named = [(q, w) for policy_name, q, w in policies if name and policy_name == name]
        quota, window = named[0] if named else _strictest(policies)
        limit = params.get("limit", quota)
        if not named and "limit" in params:
            # The entry's own limit picks its policy's window, never another's.
            window = _window_of(params["limit"], policies)
        return Quota(int(remaining), reset, _whole(limit), window)
    remaining_field = _field(headers, "ratelimit-remaining", min)
    if remaining_field is None:
        return None
    limit_field, limit_window = _limit_field(headers.get("ratelimit-limit"), policies)
    quota, window = _strictest(policies)
    if limit_field is not None:
        window = limit_window
    return Quota(
        remaining=int(remaining_field),
        reset_after=_reset_after(_field(headers, "ratelimit-reset", max), wall_now),
        limit=_whole(limit_field if limit_field is not None else quota),
        window=window,
    )


def scan_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, ...], bool]:
    """One pass over a response's raw headers: ``(Retry-After values, any quota header?)``.

    Most responses carry neither; one pass is cheaper than a look-up per header name.
    Every ``Retry-After`` field is kept (see parse_retry_after_fields): the last one
    alone decided, so ``30`` then ``1`` was waited 1 s.
    """
    retry_after: tuple[str, ...] = ()
    has_quota = False
    for name, value in raw:
        lowered = name.lower()
        if lowered == b"retry-after":
            retry_after += (value.decode("latin-1"),)
        elif lowered.startswith((b"x-ratelimit-", b"x-rate-limit-", b"ratelimit")):
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
        return _ietf(headers, wall_now)
    if github.limit is not None and "ratelimit-policy" in headers:
        # GitHub-style counts with a draft policy beside them: the policy of that
        # limit adds the window.
        window = _window_of(github.limit, _policies(headers))
        return Quota(github.remaining, github.reset_after, github.limit, window)
    return github


def spent_quota_delay(quota: Quota | None) -> float | None:
    """Seconds to the reset of a spent quota: the delay the headers announce when no
    ``Retry-After`` does (None: the quota is not spent, or its reset is unknown or
    already due: clocks apart, it says nothing, as a ``Retry-After`` of 0)."""
    if quota is None or quota.remaining > 0:
        return None
    return quota.reset_after or None


def says_quota_spent(status: int, quota: Quota | None) -> bool:
    """A 403 with ``remaining == 0`` is GitHub's way of throttling: treat it as a 429."""
    return status == 403 and quota is not None and quota.remaining <= 0
