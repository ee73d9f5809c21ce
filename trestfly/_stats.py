"""Counters a session keeps for observability, and the frozen snapshot ``api.stats``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryRecord:
    """One retry of a logical request: why, and how long it waited first.

    Attributes:
        retry: the retry's number (1 for the first).
        status: the status that caused it, or None after a transport failure.
        error: the transport exception's class name, or None.
        delay: seconds waited before the retry (backoff or server hint).
        retry_after: the server's hint in seconds, if any (a ``Retry-After`` of zero, or
            a date already past, is none).
        counted: False for the retry of a throttle answered to a request that was
            already in flight when the origin's current throttling episode began:
            refused for what the client could not yet know, it does not count
            against ``retries`` (at most ``retries`` such retries per call).

    A retried call's records are in ``response.extensions["trestfly.retry_history"]``
    when it succeeds and in :attr:`trestfly.errors.APIError.history` when it fails.

    .. versionadded:: 0.1.0
    """

    retry: int
    status: int | None
    error: str | None
    delay: float
    retry_after: float | None
    counted: bool = True


@dataclass(frozen=True, slots=True)
class OriginStats:
    """Throttling state of one origin at the moment of the snapshot.

    Attributes:
        gate_trips: times the origin's gate closed.
        gate_closed_seconds: how long it was closed, in all.
        gate_open: whether it is open now.
        throttle_episodes: throttling episodes (a burst of 429s for one burst of requests
            is one episode).
        concurrency_limit: requests the origin may have in flight now (the session's
            ``max_concurrency`` until the origin throttles).
        learned_rate: the requests per second learned from throttling, or None.
        in_flight: requests in flight to the origin now.

    .. versionadded:: 0.1.0
    """

    gate_trips: int
    gate_closed_seconds: float
    gate_open: bool
    throttle_episodes: int
    concurrency_limit: int
    learned_rate: float | None
    in_flight: int


@dataclass(frozen=True, slots=True)
class CoordinationStats:
    """What a coordination did (``api.stats.coordination``).

    Attributes:
        backend: ``"memory"``, ``"redis"`` or the name a custom backend gives itself.
        healthy: whether the store answered the last call.
        syncs: background syncs that reached the store.
        reservations: pacer slots reserved from the store.
        failures: calls that failed or timed out (each meant local-only throttling).
        remote_closures: gates closed here because another worker announced a delay.
        remote_cuts: learned-rate cuts taken from another worker.

    .. versionadded:: 0.1.0
    """

    backend: str
    healthy: bool
    syncs: int
    reservations: int
    failures: int
    remote_closures: int
    remote_cuts: int


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A snapshot of a session's counters (``api.stats``).

    Attributes:
        attempts: requests sent, retries included.
        successes: 2xx answers (and 304s returned: see the error reference).
        failures: calls given up on (the error raised after the retries, or at a closed
            gate).
        retries: retries made.
        throttled: throttling answers (420, 429, and a 403 with ``Retry-After`` or whose
            rate-limit headers say the quota is spent).
        by_status: answers per status code.
        transport_errors: attempts that got no answer (refused, reset, timed out).
        sleeps: backoff sleeps (waits at a closed gate are not counted).
        sleep_seconds: the total of those sleeps, in seconds.
        gate_trips: times a gate closed, over all origins.
        gate_closed_seconds: how long gates were closed, in all.
        budget_level: tokens in the retry budget now.
        budget_denied: retries the budget refused.
        concurrency_limit: the lowest per-origin concurrency limit (``max_concurrency``
            when no origin throttled).
        in_flight: requests in flight through the session now.
        origins: an :class:`OriginStats` per origin (``"https://host"``, with
            ``:port`` when the URL names a port other than the scheme's default).
        coordination: what the session's coordination did (None without one).

    .. versionadded:: 0.1.0
    """

    attempts: int
    successes: int
    failures: int
    retries: int
    throttled: int
    by_status: Mapping[int, int]
    transport_errors: int
    sleeps: int
    sleep_seconds: float
    gate_trips: int
    gate_closed_seconds: float
    budget_level: float
    budget_denied: int
    concurrency_limit: int
    in_flight: int
    origins: Mapping[str, OriginStats]
    coordination: CoordinationStats | None = None


@dataclass(slots=True)
class Counters:
    """The mutable counters behind :class:`SessionStats`, one object per session."""

    attempts: int = 0
    successes: int = 0
    failures: int = 0
    retries: int = 0
    throttled: int = 0
    transport_errors: int = 0
    sleeps: int = 0
    sleep_seconds: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    #: What the gates of forgotten origins counted (see TrioAPISession._forget_idle_gates):
    #: the session's totals keep it.
    forgotten_throttles: int = 0
    forgotten_gate_trips: int = 0
    forgotten_gate_closed_seconds: float = 0.0

    def frozen_status(self) -> Mapping[int, int]:
        # A plain copy: the snapshot is the caller's, and a MappingProxyType made it
        # refuse dataclasses.asdict, pickle and deepcopy.
        return dict(self.by_status)
