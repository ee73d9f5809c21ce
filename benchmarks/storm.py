"""The 429-storm benchmark: retry strategies against a throttling server on 127.0.0.1.

Every client sends the same N logical requests (``GET /item``) from C worker tasks to
the embedded storm server (:mod:`benchmarks.storm_server`), scenario by scenario, the
clients interleaved.  The server counts what arrived (successes, 429s, 503s, resets,
requests that came before an announced Retry-After instant); the client side measures
wall time, latency per logical request and CPU time.

Clients:
  trestfly          TrioAPISession with its defaults (shared gate, pacing, adaptive rate)
  trestfly-tuned    the same with more retries and a gentler back-off of the rate
  httpx-immediate   a plain httpx loop retrying every 429/503 at once
  httpx-retry-after per-request sleeps of Retry-After, else full-jitter exponential
                    backoff (how urllib3 / httpx-retries behave)
  stamina           stamina.retry_context around httpx, Retry-After honoured
  tenacity          tenacity.AsyncRetrying around httpx (full-jitter exponential)
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from trestfly import BudgetSettings, ThrottleSettings, TrioAPISession

from . import _report
from ._cpu import cpu_plan, pinned
from ._scenarios import (
    ConcurrencyCap,
    FixedWindow,
    Flaky,
    HeadersOnly,
    Outage,
    TokenBucket,
)
from .storm_server import ThrottleMarker, fetch_stats, install_scenario, run_storm_server

Fetch = Callable[[], Awaitable[None]]
ClientOpener = Callable[[str, int, ThrottleMarker], Any]

#: Attempts per logical request for the peers (their own "retries"), bounded.
PEER_ATTEMPTS = 20
RETRY_STATUSES = frozenset({429, 503})


class GaveUp(Exception):
    """A logical request failed for good (the client's retries ran out)."""


# --------------------------------------------------------------------- scenarios


def scenarios(rate: float) -> dict[str, Any]:
    """The throttling scenarios, their limits scaled to ``rate`` requests per second."""
    limit = max(1, round(rate))
    return {
        "fixed_window": FixedWindow(limit=limit, window=1.0),
        "token_bucket": TokenBucket(rate=rate, burst=max(1, limit // 10), fractional=True),
        "token_bucket_int": TokenBucket(rate=rate, burst=max(1, limit // 10), fractional=False),
        "headers_only": HeadersOnly(limit=limit, window=1.0),
        "concurrency_cap": ConcurrencyCap(max_in_flight=10, latency=0.02),
        "outage": Outage(duration=3.0, retry_after=1.0),
        "flaky": Flaky(p_503=0.1, p_reset=0.02, seed=7),
    }


# ----------------------------------------------------------------------- clients


def _hint(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _client(concurrency: int, marker: ThrottleMarker) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, event_hooks=marker.hooks(), timeout=30)


@asynccontextmanager
async def open_trestfly(url: str, concurrency: int, marker: ThrottleMarker) -> AsyncIterator[Fetch]:
    class Marked(TrioAPISession):
        def _build_session(self, **kwargs: Any) -> None:
            super()._build_session(**kwargs)
            assert self._session is not None
            marker.install(self._session)

    async with Marked(url=url, max_concurrency=concurrency) as api:

        async def fetch() -> None:
            await api.get("item")

        yield fetch


@asynccontextmanager
async def open_trestfly_tuned(
    url: str, concurrency: int, marker: ThrottleMarker
) -> AsyncIterator[Fetch]:
    class Marked(TrioAPISession):
        def _build_session(self, **kwargs: Any) -> None:
            super()._build_session(**kwargs)
            assert self._session is not None
            marker.install(self._session)

    async with Marked(
        url=url,
        max_concurrency=concurrency,
        retries=PEER_ATTEMPTS - 1,
        backoff=0.1,
        throttle=ThrottleSettings(decrease=0.95, increase=2.0),
        retry_budget=BudgetSettings(capacity=20),
    ) as api:

        async def fetch() -> None:
            await api.get("item")

        yield fetch


@asynccontextmanager
async def open_httpx_immediate(
    url: str, concurrency: int, marker: ThrottleMarker
) -> AsyncIterator[Fetch]:
    async with _client(concurrency, marker) as client:

        async def fetch() -> None:
            for _ in range(PEER_ATTEMPTS):
                try:
                    response = await client.get(f"{url}/item")
                except httpx.TransportError:
                    continue
                if response.status_code not in RETRY_STATUSES:
                    response.raise_for_status()
                    return
            raise GaveUp

        yield fetch


def _full_jitter(attempt: int, rng: random.Random) -> float:
    return rng.uniform(0, min(5.0, 0.1 * 2**attempt))


@asynccontextmanager
async def open_httpx_retry_after(
    url: str, concurrency: int, marker: ThrottleMarker
) -> AsyncIterator[Fetch]:
    rng = random.Random(1)
    async with _client(concurrency, marker) as client:

        async def fetch() -> None:
            for attempt in range(PEER_ATTEMPTS):
                try:
                    response = await client.get(f"{url}/item")
                except httpx.TransportError:
                    await trio.sleep(_full_jitter(attempt, rng))
                    continue
                if response.status_code not in RETRY_STATUSES:
                    response.raise_for_status()
                    return
                hint = _hint(response)
                await trio.sleep(hint if hint is not None else _full_jitter(attempt, rng))
            raise GaveUp

        yield fetch


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.hint = _hint(response)


@asynccontextmanager
async def open_stamina(url: str, concurrency: int, marker: ThrottleMarker) -> AsyncIterator[Fetch]:
    import stamina

    def on(error: Exception) -> bool | float:
        # stamina's backoff hook: a float is the wait, so Retry-After is honoured.
        if isinstance(error, _Retryable):
            return error.hint if error.hint is not None else True
        return isinstance(error, httpx.TransportError)

    async with _client(concurrency, marker) as client:

        async def fetch() -> None:
            try:
                async for attempt in stamina.retry_context(
                    on=on, attempts=PEER_ATTEMPTS, timeout=None
                ):
                    with attempt:
                        response = await client.get(f"{url}/item")
                        if response.status_code in RETRY_STATUSES:
                            raise _Retryable(response)
                        response.raise_for_status()
            except (_Retryable, httpx.TransportError) as error:
                raise GaveUp from error

        yield fetch


@asynccontextmanager
async def open_tenacity(url: str, concurrency: int, marker: ThrottleMarker) -> AsyncIterator[Fetch]:
    import tenacity

    async with _client(concurrency, marker) as client:

        async def fetch() -> None:
            retrying = tenacity.AsyncRetrying(
                sleep=trio.sleep,
                stop=tenacity.stop_after_attempt(PEER_ATTEMPTS),
                wait=tenacity.wait_random_exponential(multiplier=0.1, max=5),
                retry=tenacity.retry_if_exception_type((_Retryable, httpx.TransportError)),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        response = await client.get(f"{url}/item")
                        if response.status_code in RETRY_STATUSES:
                            raise _Retryable(response)
                        response.raise_for_status()
            except (_Retryable, httpx.TransportError) as error:
                raise GaveUp from error

        yield fetch


CLIENTS: Mapping[str, ClientOpener] = {
    "trestfly": open_trestfly,
    "trestfly-tuned": open_trestfly_tuned,
    "httpx-immediate": open_httpx_immediate,
    "httpx-retry-after": open_httpx_retry_after,
    "stamina": open_stamina,
    "tenacity": open_tenacity,
}


# --------------------------------------------------------------------- measuring


@dataclass
class ClientRun:
    """What one client did in one scenario at one concurrency."""

    successes: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


async def drive(fetch: Fetch, requests: int, concurrency: int, time_limit: float) -> ClientRun:
    """N logical requests from C workers; bounded by count and by ``time_limit``."""
    run = ClientRun()
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            try:
                await fetch()
            except Exception:  # the client gave up on this one: counted, not fatal
                run.failures += 1
            else:
                run.successes += 1
                run.latencies.append(time.perf_counter() - start)

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    with trio.move_on_after(time_limit):
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    run.wall_s = time.perf_counter() - wall_start
    run.cpu_s = time.process_time() - cpu_start
    return run


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def metrics(run: ClientRun, server: Mapping[str, Any], limit_rps: float | None) -> dict[str, Any]:
    """The figures of one run, from the client's and the server's counts."""
    totals = server["totals"]
    successes = max(1, run.successes)
    rate = run.successes / run.wall_s if run.wall_s > 0 else 0.0
    return {
        "successes": run.successes,
        "failures": run.failures,
        "wall_s": round(run.wall_s, 3),
        "success_rate": round(rate, 2),
        "goodput": round(rate / limit_rps, 3) if limit_rps else None,
        "requests_per_success": round(totals["arrivals"] / successes, 3),
        "throttled_per_success": round(
            (totals["throttled_429"] + totals["unavailable_503"]) / successes, 3
        ),
        "resets": totals["resets"],
        "violations": totals["violations"],
        "arrivals": totals["arrivals"],
        "p50_s": _round(_percentile(run.latencies, 0.5)),
        "p99_s": _round(_percentile(run.latencies, 0.99)),
        "cpu_s_per_1000": round(run.cpu_s / successes * 1000, 3),
        "timeline": server["timeline"],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


async def run_one(
    url: str, scenario: Any, client: str, requests: int, concurrency: int, time_limit: float
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as control:
        info = await install_scenario(control, url, scenario)
        marker = ThrottleMarker(client)
        async with CLIENTS[client](url, concurrency, marker) as fetch:
            run = await drive(fetch, requests, concurrency, time_limit)
        stats = await fetch_stats(control, url)
    return metrics(run, stats, info.get("limit_rps"))


@dataclass(frozen=True)
class Settings:
    requests: int
    concurrency: tuple[int, ...]
    scenarios: tuple[str, ...]
    clients: tuple[str, ...]
    rate: float
    time_limit: float
    out: Path


async def run_all(url: str, settings: Settings) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    catalogue = scenarios(settings.rate)
    for name in settings.scenarios:
        for concurrency in settings.concurrency:
            # Interleaved, and the order rotates so nobody always runs first.
            order = list(settings.clients)
            shift = len(results) % len(order)
            for client in order[shift:] + order[:shift]:
                figures = await run_one(
                    url,
                    catalogue[name],
                    client,
                    settings.requests,
                    concurrency,
                    settings.time_limit,
                )
                results.append(
                    {"scenario": name, "concurrency": concurrency, "client": client, **figures}
                )
                print(
                    f"  {name:<17} c={concurrency:<4} {client:<18} "
                    f"ok={figures['successes']:<5} fail={figures['failures']:<4} "
                    f"wall={figures['wall_s']:>7.2f}s goodput={figures['goodput']} "
                    f"req/ok={figures['requests_per_success']:<6} "
                    f"violations={figures['violations']}",
                    flush=True,
                )
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 100])
    parser.add_argument(
        "--scenario",
        dest="scenarios",
        nargs="+",
        default=None,
        choices=sorted(scenarios(100)),
    )
    parser.add_argument("--client", dest="clients", nargs="+", default=None, choices=list(CLIENTS))
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))


def run(args: argparse.Namespace) -> int:
    settings = Settings(
        requests=args.requests,
        concurrency=tuple(args.concurrency),
        scenarios=tuple(args.scenarios or scenarios(100)),
        clients=tuple(args.clients or CLIENTS),
        rate=args.rate,
        time_limit=args.time_limit,
        out=args.out,
    )
    plan = cpu_plan()
    with (
        run_storm_server(cpu=plan.server if plan else None) as server,
        pinned(plan.client if plan else None),
    ):
        results = trio.run(run_all, server.url, settings)
    path = _report.write_json(
        settings.out, "storm.json", {"environment": _report.environment(), "results": results}
    )
    print(f"results: {path}")
    return 0
