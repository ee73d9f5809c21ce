"""Pure logic of the throttling ("storm") server: scenarios, violation judging, counters.

Nothing here does I/O or reads a clock, so every rule can be tested with explicit clock
values.  Every method takes ``now``: the server's monotonic time in seconds, counted
from the moment the scenario was installed (its t=0; windows are aligned to it); where an
API announces wall-clock instants it also takes ``wall_now``, the POSIX time read at the
same moment.  :mod:`benchmarks.storm_server` reads the clocks, does the waiting and
speaks HTTP.

A scenario's limits are global: all clients share one quota, as all the workers of one
program share one API key.

Violations
----------
Every throttling response that announces when to come back (a ``Retry-After``, or the
reset instant of :class:`HeadersOnly`) gets a throttle id from the :class:`Referee`,
which remembers the announced instant.  A well-behaved client sends, on every request,
the highest throttle id it has received (``X-Seen-Throttle``).  A request that arrives
before the latest instant announced to its client up to that id (less
:data:`VIOLATION_TOLERANCE`) ignored an announcement it had already received: a
violation.  The latest, not the id's own: a later 429 can announce an earlier instant
(a fixed window longer than a second: 1.5 s before its end ``Retry-After: 2``, 0.8 s
before it ``Retry-After: 1``), and the client had been told the later one.  Requests
that were already in flight when the announcement was made carry an older id and are
not counted.
"""

from __future__ import annotations

import enum
import math
import random
from abc import ABC, abstractmethod
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "BUCKET_SECONDS",
    "DEFAULT_LATENCY_JITTER",
    "MAX_BUCKETS",
    "MAX_CLIENTS",
    "MAX_LATENCY",
    "SCENARIOS",
    "VIOLATION_TOLERANCE",
    "ConcurrencyCap",
    "Counters",
    "Decision",
    "FixedWindow",
    "Flaky",
    "HeadersOnly",
    "Outage",
    "Outcome",
    "Referee",
    "Reply",
    "Scenario",
    "StormState",
    "Timeline",
    "TokenBucket",
    "Unlimited",
    "scenario_from_spec",
]

#: A request this much before the announced instant is still on time.  It absorbs float
#: rounding (including the 1e-9 s slack of the rounding helpers below) and timer
#: granularity.  Announced delays are rounded *up* (``Retry-After: 1`` for 0.3 s), and a
#: client starts waiting only when it receives the response, after the instant the
#: server counted from: an obedient client is never early because of either.
VIOLATION_TOLERANCE = 0.001
#: The spread of the server's waits the benchmarks use unless told otherwise: +/-10%
#: (see :meth:`Scenario.spread`).  A scenario built directly has none.
DEFAULT_LATENCY_JITTER = 0.1
#: Upper bound of a scenario's latency in seconds, so that a typo cannot park
#: connections for hours.
MAX_LATENCY = 60.0
#: Timeline resolution, and its bound: 36,000 buckets of 100 ms are one hour.
BUCKET_SECONDS = 0.1
MAX_BUCKETS = 36_000
_BUCKETS_PER_SECOND = 1 / BUCKET_SECONDS
#: Distinct ``X-Client`` values broken down in the stats; later ones count only in totals.
MAX_CLIENTS = 1024
#: Announced instants remembered.  A client's seen id lags the newest one by at most the
#: throttling responses in flight at once, far fewer than this.
LEDGER_SIZE = 65_536

# Rounding up must not turn an exact value (0.013 s computed as 0.013000000000000001)
# into the next unit.
_EPSILON = 1e-9

_JSON_TYPE = (b"content-type", b"application/json")


def ceil_seconds(seconds: float) -> int:
    """Whole seconds, rounded up, at least 1 (``Retry-After: 0`` would invite a storm)."""
    return max(1, math.ceil(seconds - _EPSILON))


def ceil_millis(seconds: float) -> int:
    """Whole milliseconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds * 1000 - _EPSILON * 1000))


def _millis_text(millis: int) -> bytes:
    # Integer arithmetic, not "%.3f" of a float: the text is exactly the announced delay.
    return b"%d.%03d" % divmod(millis, 1000)


def _number_text(value: float) -> bytes:
    """``1`` for 1.0, ``0.5`` for 0.5: the shortest form a header parser reads back."""
    return b"%d" % value if float(value).is_integer() else repr(float(value)).encode()


# ------------------------------------------------------------------ decisions


class Outcome(enum.Enum):
    OK = "ok"
    THROTTLED = "429"
    UNAVAILABLE = "503"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the server does with one request.

    Attributes:
        outcome: what the counters record.
        status: the HTTP status (0 for a reset: nothing is sent).
        headers: response headers, including content-type and content-length.
        body: the response body.
        wait: seconds to wait before answering (latency, or the hold of a held slot).
        retry_at: the instant (scenario time) announced to the client as the earliest
            to come back; the server gives it a throttle id.  None: nothing announced.
        holds_slot: the request occupies a slot until answered; the server calls
            :meth:`Scenario.release` once it is.
    """

    outcome: Outcome
    status: int
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    wait: float = 0.0
    retry_at: float | None = None
    holds_slot: bool = False

    def header(self, name: str) -> str | None:
        """A header's value as text (for tests and logs), None when absent."""
        key = name.lower().encode()
        for header, value in self.headers:
            if header == key:
                return value.decode("latin-1")
        return None


def _response_headers(body: bytes, *extra: tuple[bytes, bytes]) -> tuple[tuple[bytes, bytes], ...]:
    return (_JSON_TYPE, (b"content-length", b"%d" % len(body)), *extra)


def _decision(
    outcome: Outcome,
    status: int,
    body: bytes,
    *extra: tuple[bytes, bytes],
    wait: float = 0.0,
    retry_at: float | None = None,
    holds_slot: bool = False,
) -> Decision:
    return Decision(
        outcome, status, _response_headers(body, *extra), body, wait, retry_at, holds_slot
    )


_OK_BODY = b'{"ok": true}'

# ------------------------------------------------------------------ parameter checks


def _check_number(
    name: str, value: object, *, above: float | None = None, at_most: float | None = None
) -> float:
    """``value`` as a float; ValueError unless finite and >= 0 (> ``above``, <=
    ``at_most`` if given)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above:g}, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if at_most is not None and value > at_most:
        raise ValueError(f"{name} must be <= {at_most:g}, got {value!r}")
    return float(value)


def _check_latency_ms(value: object) -> float:
    return _check_number("latency_ms", value, at_most=MAX_LATENCY * 1000)


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_probability(name: str, value: object) -> float:
    number = _check_number(name, value)
    if number > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return number


# ------------------------------------------------------------------ scenarios


@dataclass
class Scenario(ABC):
    """One throttling behaviour.  Subclasses are dataclasses: their init fields are the
    parameters (JSON scalars), any other state is private and starts fresh.

    Every scenario takes ``latency_jitter`` (keyword only): the server spreads each wait
    it makes (a latency, a held slot) uniformly over ``wait x (1 +/- latency_jitter)``,
    drawn from ``random.Random(0)`` in arrival order, so the mean wait, and with it the
    scenario's ceiling, stays the configured one (see :meth:`spread`).
    """

    name: ClassVar[str]
    latency_jitter: float = field(default=0.0, kw_only=True)
    _jitter_random: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.latency_jitter = _check_number("latency_jitter", self.latency_jitter)
        if self.latency_jitter >= 1:
            raise ValueError(
                f"latency_jitter must be below 1 (a share of the wait), got {self.latency_jitter!r}"
            )
        self._jitter_random = random.Random(0)

    @abstractmethod
    def decide(self, now: float, wall_now: float) -> Decision:
        """The fate of a request arriving at ``now`` (scenario time)."""

    @property
    @abstractmethod
    def limit_rps(self) -> float | None:
        """The most successes per second the scenario allows over time (goodput's
        ceiling), or None when it has none but the server's own speed."""

    def release(self) -> None:
        """A request whose decision held a slot has been answered (no-op by default:
        only scenarios that hand out slots count them)."""
        return

    def spread(self, wait: float) -> float:
        """The wait to make for a decision's ``wait``: exactly it without jitter, else
        drawn uniformly from ``wait x (1 +/- latency_jitter)``.

        Why: against a server that answers every request after exactly the same time,
        a client's tasks fall into step (they come back together, share the client's
        CPU, and go out together again), and the figures of one client swing between
        two levels from run to run.  Real answers do not all take the same time.
        """
        if wait <= 0 or not self.latency_jitter:
            return wait
        return wait * (1.0 + self.latency_jitter * self._jitter_random.uniform(-1.0, 1.0))

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def spec(self) -> dict[str, Any]:
        """The JSON form :func:`scenario_from_spec` reads back (``POST /__scenario``)."""
        return {"name": self.name, "params": self.params()}


@dataclass
class Unlimited(Scenario):
    """Every request succeeds: the server before any scenario is installed, and a
    baseline for the server's own speed."""

    name: ClassVar[str] = "unlimited"
    latency_ms: float = 0.0
    _ok: Decision = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.latency_ms = _check_latency_ms(self.latency_ms)
        self._ok = _decision(Outcome.OK, 200, _OK_BODY, wait=self.latency_ms / 1000)

    @property
    def limit_rps(self) -> float | None:
        return None

    def decide(self, now: float, wall_now: float) -> Decision:
        return self._ok


@dataclass
class FixedWindow(Scenario):
    """At most ``limit`` successes per window; then 429 with an integer ``Retry-After``.

    Imitates the fixed-window counters of many API gateways and of Twitter/X's v1.1 API
    (N requests per 15-minute window).  Windows are aligned to the scenario's t=0.
    ``Retry-After`` is the time to the window's end rounded up to whole seconds, as the
    header's integer form requires, so an obedient client may wait up to a second more
    than it had to.
    """

    name: ClassVar[str] = "fixed_window"
    limit: int = 100
    window: float = 1.0
    latency_ms: float = 0.0
    _index: int = field(default=-1, init=False, repr=False)
    _used: int = field(default=0, init=False, repr=False)
    _ok: Decision = field(init=False, repr=False)

    _BODY: ClassVar[bytes] = b'{"errors": [{"code": 88, "message": "Rate limit exceeded"}]}'

    def __post_init__(self) -> None:
        super().__post_init__()
        self.limit = _check_int("limit", self.limit, minimum=1)
        self.window = _check_number("window", self.window, above=0)
        self.latency_ms = _check_latency_ms(self.latency_ms)
        self._ok = _decision(Outcome.OK, 200, _OK_BODY, wait=self.latency_ms / 1000)

    @property
    def limit_rps(self) -> float | None:
        return self.limit / self.window

    def decide(self, now: float, wall_now: float) -> Decision:
        index = math.floor(now / self.window)
        if index != self._index:
            self._index, self._used = index, 0
        if self._used < self.limit:
            self._used += 1
            return self._ok
        delay = ceil_seconds((index + 1) * self.window - now)
        return _decision(
            Outcome.THROTTLED,
            429,
            self._BODY,
            (b"retry-after", b"%d" % delay),
            wait=self.latency_ms / 1000,
            retry_at=now + delay,
        )


@dataclass
class TokenBucket(Scenario):
    """A bucket of ``burst`` tokens refilled at ``rate`` per second; each success takes
    one.  Without a token: 429 with ``Retry-After`` = the time until the next token.

    Imitates the leaky-bucket limiters of Stripe and Shopify (Shopify's REST Admin API
    sends a decimal ``Retry-After`` such as ``2.0``).  With ``fractional`` the hint is a
    decimal rounded up to the millisecond (``"0.013"``); without, whole seconds rounded
    up (at least 1).  The bucket starts full at t=0.
    """

    name: ClassVar[str] = "token_bucket"
    rate: float = 100.0
    burst: int = 10
    fractional: bool = True
    latency_ms: float = 0.0
    _tokens: float = field(default=0.0, init=False, repr=False)
    _last: float = field(default=0.0, init=False, repr=False)
    _ok: Decision = field(init=False, repr=False)

    _BODY: ClassVar[bytes] = b'{"errors": "Exceeded the call rate for this API client."}'

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rate = _check_number("rate", self.rate, above=0)
        self.burst = _check_int("burst", self.burst, minimum=1)
        if not isinstance(self.fractional, bool):
            raise ValueError(f"fractional must be true or false, got {self.fractional!r}")
        self.latency_ms = _check_latency_ms(self.latency_ms)
        self._tokens = float(self.burst)
        self._ok = _decision(Outcome.OK, 200, _OK_BODY, wait=self.latency_ms / 1000)

    @property
    def limit_rps(self) -> float | None:
        return self.rate

    @property
    def tokens(self) -> float:
        """Tokens left as of the last request (for tests)."""
        return self._tokens

    def decide(self, now: float, wall_now: float) -> Decision:
        elapsed = max(0.0, now - self._last)
        tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._last = max(self._last, now)
        # The tolerance keeps a token that float arithmetic computed as 0.9999999999
        # from turning a success into a 429.
        if tokens >= 1 - _EPSILON:
            self._tokens = max(0.0, tokens - 1)
            return self._ok
        self._tokens = tokens
        missing = (1 - tokens) / self.rate
        if self.fractional:
            millis = ceil_millis(missing)
            text, delay = _millis_text(millis), millis / 1000
        else:
            seconds = ceil_seconds(missing)
            text, delay = b"%d" % seconds, float(seconds)
        return _decision(
            Outcome.THROTTLED,
            429,
            self._BODY,
            (b"retry-after", text),
            wait=self.latency_ms / 1000,
            retry_at=now + delay,
        )


@dataclass
class HeadersOnly(Scenario):
    """A fixed window announced only through rate-limit headers; a 429 has no
    ``Retry-After``.

    Imitates GitHub's primary rate limit: every response carries ``X-RateLimit-Limit``,
    ``X-RateLimit-Remaining``, ``X-RateLimit-Used`` and ``X-RateLimit-Reset`` (epoch
    seconds, an integer: the reset instant rounded up), plus the IETF httpapi draft's
    ``RateLimit: "default";r=<remaining>;t=<seconds to reset, rounded up>`` and
    ``RateLimit-Policy: "default";q=<limit>;w=<window>``.

    The instant a 429 announces is the window's true end: both header forms round it
    up, so a client that obeys either arrives after it.
    """

    name: ClassVar[str] = "headers_only"
    limit: int = 100
    window: float = 1.0
    latency_ms: float = 0.0
    _index: int = field(default=-1, init=False, repr=False)
    _used: int = field(default=0, init=False, repr=False)
    _policy: tuple[bytes, bytes] = field(init=False, repr=False)

    _BODY: ClassVar[bytes] = (
        b'{"message": "API rate limit exceeded.", '
        b'"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}'
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.limit = _check_int("limit", self.limit, minimum=1)
        self.window = _check_number("window", self.window, above=0)
        self.latency_ms = _check_latency_ms(self.latency_ms)
        self._policy = (
            b"ratelimit-policy",
            b'"default";q=%d;w=%s' % (self.limit, _number_text(self.window)),
        )

    @property
    def limit_rps(self) -> float | None:
        return self.limit / self.window

    def decide(self, now: float, wall_now: float) -> Decision:
        index = math.floor(now / self.window)
        if index != self._index:
            self._index, self._used = index, 0
        end = (index + 1) * self.window
        reset_in = end - now
        throttled = self._used >= self.limit
        if not throttled:
            self._used += 1
        remaining = self.limit - self._used
        # GitHub's reset is an integer epoch: rounding down would announce an instant
        # before the real reset, so round up.
        reset_epoch = math.ceil(wall_now + reset_in - _EPSILON)
        headers = (
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-used", b"%d" % self._used),
            (b"x-ratelimit-reset", b"%d" % reset_epoch),
            (b"ratelimit", b'"default";r=%d;t=%d' % (remaining, ceil_seconds(reset_in))),
            self._policy,
        )
        wait = self.latency_ms / 1000
        if throttled:
            return _decision(Outcome.THROTTLED, 429, self._BODY, *headers, wait=wait, retry_at=end)
        return _decision(Outcome.OK, 200, _OK_BODY, *headers, wait=wait)


@dataclass
class ConcurrencyCap(Scenario):
    """At most ``max_in_flight`` requests served at once, each held ``latency`` seconds;
    one more gets an immediate 429.

    Imitates GitHub's secondary rate limit on concurrent requests: a 429 with a short
    message body and, by default, no ``Retry-After`` (set ``retry_after`` to send one,
    in whole seconds rounded up).  ``latency`` is this scenario's per-request latency
    (in seconds, where the other scenarios take ``latency_ms``): the time a slot is
    held.  This object only counts slots; the server does the holding.
    """

    name: ClassVar[str] = "concurrency_cap"
    max_in_flight: int = 10
    latency: float = 0.02
    retry_after: float | None = None
    _in_flight: int = field(default=0, init=False, repr=False)
    _ok: Decision = field(init=False, repr=False)

    _BODY: ClassVar[bytes] = (
        b'{"message": "You have exceeded a secondary rate limit. '
        b'Please wait a few minutes before you try again."}'
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.max_in_flight = _check_int("max_in_flight", self.max_in_flight, minimum=1)
        self.latency = _check_number("latency", self.latency, above=0, at_most=MAX_LATENCY)
        if self.retry_after is not None:
            self.retry_after = _check_number("retry_after", self.retry_after, above=0)
        self._ok = _decision(Outcome.OK, 200, _OK_BODY, wait=self.latency, holds_slot=True)

    @property
    def limit_rps(self) -> float | None:
        return self.max_in_flight / self.latency

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def decide(self, now: float, wall_now: float) -> Decision:
        if self._in_flight < self.max_in_flight:
            self._in_flight += 1
            return self._ok
        if self.retry_after is None:
            return _decision(Outcome.THROTTLED, 429, self._BODY)
        delay = ceil_seconds(self.retry_after)
        return _decision(
            Outcome.THROTTLED,
            429,
            self._BODY,
            (b"retry-after", b"%d" % delay),
            retry_at=now + delay,
        )

    def release(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)


@dataclass
class Outage(Scenario):
    """From t=0 for ``duration`` seconds every request gets 503 with ``Retry-After``
    (whole seconds, rounded up); healthy 200s after that.

    Imitates a deploy or maintenance window behind a load balancer, answering as RFC
    9110 suggests for a temporary overload (503 with ``Retry-After``).
    """

    name: ClassVar[str] = "outage"
    duration: float = 5.0
    retry_after: float = 1.0
    latency_ms: float = 0.0
    _ok: Decision = field(init=False, repr=False)
    _retry_after: bytes = field(init=False, repr=False)

    _BODY: ClassVar[bytes] = b'{"message": "Service Unavailable"}'

    def __post_init__(self) -> None:
        super().__post_init__()
        self.duration = _check_number("duration", self.duration)
        self.retry_after = _check_number("retry_after", self.retry_after, above=0)
        self.latency_ms = _check_latency_ms(self.latency_ms)
        self._ok = _decision(Outcome.OK, 200, _OK_BODY, wait=self.latency_ms / 1000)

    @property
    def limit_rps(self) -> float | None:
        return None

    def decide(self, now: float, wall_now: float) -> Decision:
        if now >= self.duration:
            return self._ok
        delay = ceil_seconds(self.retry_after)
        return _decision(
            Outcome.UNAVAILABLE,
            503,
            self._BODY,
            (b"retry-after", b"%d" % delay),
            wait=self.latency_ms / 1000,
            retry_at=now + delay,
        )


@dataclass
class Flaky(Scenario):
    """Each request independently: a 503 without any hint (``p_503``), a dropped
    connection (``p_reset``), else a 200.

    Imitates an overloaded backend behind a proxy: sporadic upstream 503s and
    connections reset under load.  The draws come from ``random.Random(seed)``, so a
    run's sequence of outcomes (in arrival order) is reproducible.
    """

    name: ClassVar[str] = "flaky"
    p_503: float = 0.1
    p_reset: float = 0.05
    seed: int = 0
    latency_ms: float = 0.0
    _random: random.Random = field(init=False, repr=False)
    _ok: Decision = field(init=False, repr=False)
    _unavailable: Decision = field(init=False, repr=False)
    _reset: Decision = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.p_503 = _check_probability("p_503", self.p_503)
        self.p_reset = _check_probability("p_reset", self.p_reset)
        if self.p_503 + self.p_reset > 1:
            raise ValueError("p_503 + p_reset must be <= 1")
        self.seed = _check_int("seed", self.seed, minimum=0)
        self.latency_ms = _check_latency_ms(self.latency_ms)
        wait = self.latency_ms / 1000
        self._random = random.Random(self.seed)
        self._ok = _decision(Outcome.OK, 200, _OK_BODY, wait=wait)
        self._unavailable = _decision(
            Outcome.UNAVAILABLE, 503, b'{"message": "upstream unavailable"}', wait=wait
        )
        self._reset = Decision(Outcome.RESET, 0, wait=wait)

    @property
    def limit_rps(self) -> float | None:
        return None

    def decide(self, now: float, wall_now: float) -> Decision:
        draw = self._random.random()
        if draw < self.p_reset:
            return self._reset
        if draw < self.p_reset + self.p_503:
            return self._unavailable
        return self._ok


SCENARIOS: Mapping[str, type[Scenario]] = {
    cls.name: cls
    for cls in (Unlimited, FixedWindow, TokenBucket, HeadersOnly, ConcurrencyCap, Outage, Flaky)
}


def scenario_from_spec(spec: object) -> Scenario:
    """A fresh scenario from ``{"name": ..., "params": {...}}``; ValueError if invalid."""
    if not isinstance(spec, Mapping):
        raise ValueError('expected a JSON object {"name": ..., "params": {...}}')
    name = spec.get("name")
    cls = SCENARIOS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    params = spec.get("params", {})
    if not isinstance(params, Mapping):
        raise ValueError("params must be a JSON object")
    known = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; known: {sorted(known)}")
    return cls(**params)


# ------------------------------------------------------------------ the referee


class Referee:
    """Hands out throttle ids and judges whether a request came back too early.

    Ids count up for the server's whole life, across scenario installs, so an id a
    client saw in an earlier run can never be confused with one of the current run.
    One counter serves all clients: each client still sees its ids increase.

    With each id the referee keeps the instant to judge by: the latest one announced
    to the same client up to that id (its own when no client is named).  A client's
    ``X-Seen-Throttle`` is an id it received itself, so that is the latest instant the
    client had been told when it sent the request.
    """

    def __init__(self, capacity: int = LEDGER_SIZE) -> None:
        self._capacity = capacity
        self._instants = array("d")
        self._offset = 0  # the id of _instants[0], minus one
        self._floor = 0  # ids up to this one were announced in earlier runs
        self._latest: dict[str, float] = {}  # per client, the latest instant of this run

    @property
    def last_id(self) -> int:
        return self._offset + len(self._instants)

    def new_run(self) -> None:
        """Forget the instants: they belong to the previous scenario's clock."""
        self._floor = self._offset = self.last_id
        self._instants = array("d")
        self._latest = {}

    def announce(self, instant: float, client: str | None = None) -> int:
        """Record an instant announced to ``client``; returns its throttle id (1, 2, ...).

        ``client`` should be one of a bounded set (the server passes only the clients
        it counts): the referee keeps one instant per client.
        """
        if client is not None:
            instant = max(instant, self._latest.get(client, instant))
            self._latest[client] = instant
        if len(self._instants) >= 2 * self._capacity:
            # Trimming by halves keeps the cost amortised O(1) and memory bounded.
            del self._instants[: self._capacity]
            self._offset += self._capacity
        self._instants.append(instant)
        return self.last_id

    def judge(self, seen: int, now: float) -> bool | None:
        """Whether a request carrying ``X-Seen-Throttle: seen`` arriving at ``now`` is a
        violation (before the latest instant announced to the client up to ``seen``);
        None when it cannot be judged (an id never handed out, or forgotten).

        Id 0 (nothing seen) and ids from earlier runs are never violations.
        """
        if seen <= self._floor:
            return None if seen < 0 else False
        index = seen - self._offset - 1
        if index < 0 or index >= len(self._instants):
            return None
        return now < self._instants[index] - VIOLATION_TOLERANCE


# ------------------------------------------------------------------ counters


@dataclass(slots=True)
class Counters:
    arrivals: int = 0
    successes: int = 0
    throttled_429: int = 0
    unavailable_503: int = 0
    resets: int = 0
    violations: int = 0
    #: requests whose ``X-Seen-Throttle`` was malformed, unknown or forgotten
    unjudged: int = 0

    def count(self, outcome: Outcome) -> None:
        self.arrivals += 1
        if outcome is Outcome.OK:
            self.successes += 1
        elif outcome is Outcome.THROTTLED:
            self.throttled_429 += 1
        elif outcome is Outcome.UNAVAILABLE:
            self.unavailable_503 += 1
        else:
            self.resets += 1

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Timeline:
    """Per bucket of :data:`BUCKET_SECONDS` since t=0: successes, rejections (429s and
    503s) and resets, by arrival time.  At most :data:`MAX_BUCKETS` buckets; later
    arrivals are only counted in ``dropped``."""

    def __init__(self, max_buckets: int = MAX_BUCKETS) -> None:
        self._max = max_buckets
        self.successes: list[int] = []
        self.rejected: list[int] = []
        self.resets: list[int] = []
        self.dropped = 0

    def count(self, now: float, outcome: Outcome) -> None:
        # Multiplying, not dividing: 0.3 / 0.1 is 2.9999999999999996, 0.3 * 10 is 3.0...4.
        bucket = int(now * _BUCKETS_PER_SECOND) if now > 0 else 0
        if bucket >= self._max:
            self.dropped += 1
            return
        missing = bucket + 1 - len(self.successes)
        if missing > 0:
            # One extend per new bucket, never a per-bucket loop.
            for series in (self.successes, self.rejected, self.resets):
                series.extend([0] * missing)
        if outcome is Outcome.OK:
            self.successes[bucket] += 1
        elif outcome is Outcome.RESET:
            self.resets[bucket] += 1
        else:
            self.rejected[bucket] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket_seconds": BUCKET_SECONDS,
            "successes": self.successes,
            "rejected": self.rejected,
            "resets": self.resets,
            "dropped": self.dropped,
        }


# ------------------------------------------------------------------ the server's state


@dataclass(frozen=True, slots=True)
class Reply:
    """A decision, with the throttle id it was given and the scenario that made it (to
    release a held slot to, even if another scenario was installed meanwhile)."""

    decision: Decision
    throttle_id: int | None
    scenario: Scenario


class StormState:
    """The active scenario and the counters of its run.

    Times given to this class are raw server monotonic times; it turns them into
    scenario time (seconds since the install) for the scenario and the timeline.
    """

    def __init__(self, scenario: Scenario, now: float) -> None:
        self.referee = Referee()
        self.scenario = scenario
        self.started = now
        self.totals = Counters()
        self.clients: dict[str, Counters] = {}
        self.untracked_clients = 0
        self.timeline = Timeline()

    def install(self, scenario: Scenario, now: float) -> None:
        """Make ``scenario`` active from ``now`` (its t=0), with fresh counters."""
        self.referee.new_run()
        self.scenario = scenario
        self.started = now
        self.totals = Counters()
        self.clients = {}
        self.untracked_clients = 0
        self.timeline = Timeline()

    def _client_counters(self, client: str | None) -> Counters | None:
        if client is None:
            return None
        counters = self.clients.get(client)
        if counters is None:
            if len(self.clients) >= MAX_CLIENTS:
                self.untracked_clients += 1
                return None
            counters = self.clients[client] = Counters()
        return counters

    def arrive(self, now: float, wall_now: float, client: str | None, seen: int | None) -> Reply:
        """Decide the fate of a request and count it.

        Args:
            now: server monotonic time of arrival.
            wall_now: POSIX time of arrival.
            client: the ``X-Client`` header, or None.
            seen: the ``X-Seen-Throttle`` header as an integer (-1 if malformed), or
                None when absent: a client's request without it could not be judged
                (counted as unjudged), one of no client (a readiness probe) is not.
        """
        elapsed = now - self.started
        scenario = self.scenario
        decision = scenario.decide(elapsed, wall_now)
        mine = self._client_counters(client)
        # The referee tracks the clients counted here (bounded by MAX_CLIENTS); the
        # others are judged by each id's own instant.
        throttle_id = (
            None
            if decision.retry_at is None
            else self.referee.announce(decision.retry_at, client if mine is not None else None)
        )
        self.totals.count(decision.outcome)
        if mine is not None:
            mine.count(decision.outcome)
        if seen is not None or client is not None:
            # A client's request without its mark may have come before an instant it
            # had been told: it was counted neither way, and zero violations held.
            verdict = None if seen is None else self.referee.judge(seen, elapsed)
            if verdict is None:
                self.totals.unjudged += 1
                if mine is not None:
                    mine.unjudged += 1
            elif verdict:
                self.totals.violations += 1
                if mine is not None:
                    mine.violations += 1
        self.timeline.count(elapsed, decision.outcome)
        return Reply(decision, throttle_id, scenario)

    def scenario_info(self) -> dict[str, Any]:
        return {**self.scenario.spec(), "limit_rps": self.scenario.limit_rps}

    def stats(self, now: float) -> dict[str, Any]:
        """The run so far, as ``GET /__stats`` returns it."""
        return {
            "scenario": self.scenario_info(),
            "elapsed": now - self.started,
            "totals": self.totals.as_dict(),
            "clients": {client: counters.as_dict() for client, counters in self.clients.items()},
            "untracked_clients": self.untracked_clients,
            "last_throttle_id": self.referee.last_id,
            "violation_tolerance": VIOLATION_TOLERANCE,
            "timeline": self.timeline.as_dict(),
        }
