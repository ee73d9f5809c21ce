"""Throughput without throttling: trestfly, bare httpx and a raw h11 client.

The storm server runs its ``unlimited`` scenario (every request 200, optionally after
``latency_ms``, spread by ``--latency-jitter``: +/-10% by default), and three clients
send the same N tiny GETs from C worker tasks:

  trestfly   TrioAPISession with its defaults (``max_concurrency=C``)
  httpx      a bare ``httpx.AsyncClient``, ``max_connections = max_keepalive = C``
  h11        :mod:`benchmarks._h11_client`: C keep-alive connections on raw Trio
             streams, each driven by one worker; the ceiling of a pure-Python client

Reported per concurrency and latency: the median req/s and the median client CPU time
per request (``time.process_time()``).  CPU time excludes the server (another process)
and time spent waiting, so it varies much less than req/s on a shared machine; with
20 ms of latency req/s is bound by ``C / latency`` and CPU per request is the figure
that tells the clients apart.

Rounds are interleaved as in :mod:`benchmarks.overhead` (one discarded warm-up round,
then R rounds of every client in a fixed order), each timed batch preceded by an untimed
batch of 2*C requests that reopens keep-alive connections.  With latency, a batch is
capped at about :data:`LATENCY_BATCH_SECONDS` of ideal time (``N * latency / C``) so
that C=1 does not take minutes.

Part of ``python -m benchmarks storm`` (``--throughput-only`` runs just this); the
module also has the ``add_arguments``/``run`` pair of a command of its own.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from trestfly import TrioAPISession

from . import _report
from ._cli import (
    UsageError,
    int_between,
    latency_jitter,
    non_negative_float,
    once_each,
    positive_int,
)
from ._cpu import cpu_plan, pinned
from ._h11_client import open_pool
from ._live import Display, PlainDisplay, open_display
from ._scenarios import DEFAULT_LATENCY_JITTER
from .storm_server import Unlimited, install_scenario, run_storm_server

DEFAULT_REQUESTS = 1000
DEFAULT_CONCURRENCY = (1, 10, 100)
#: The most worker tasks of the section: each holds a keep-alive connection of its own,
#: all opened at once against the server's listen backlog (2,048).  At 25,000 the
#: warm-up failed with ConnectError after 40 s and the run was lost.
MAX_CONCURRENCY = 1000
DEFAULT_LATENCIES_MS = (0.0, 20.0)
DEFAULT_ROUNDS = 3
QUICK_REQUESTS = 200
QUICK_CONCURRENCY = (1, 10)
QUICK_LATENCIES_MS = (0.0,)
QUICK_ROUNDS = 1
#: With latency, a batch is capped to about this many seconds (module docstring).
LATENCY_BATCH_SECONDS = 2.0
#: The longest server latency the section takes: a batch of C requests then takes a
#: second, and C=1 at the default rounds a minute per client.
MAX_THROUGHPUT_LATENCY_MS = 1000.0
#: Estimates only: the clients' mean req/s on one core (bare httpx at C=100 is much slower:
#: httpcore's pool costs O(connections) per request).
ESTIMATED_RPS = 800.0
RESULTS_FILE = "throughput.json"
#: The path every client requests (the storm server answers any path but ``/__*``).
PATH = "item"

Fetch = Callable[[], Awaitable[int]]
#: Worker index -> that worker's fetch (the h11 client gives each worker its connection).
WorkerFetches = Callable[[int], Fetch]
ClientOpener = Callable[[str, int], AbstractAsyncContextManager[WorkerFetches]]


# ------------------------------------------------------------------ the clients


@asynccontextmanager
async def open_trestfly(url: str, concurrency: int) -> AsyncIterator[WorkerFetches]:
    # proxies={}: the embedded server is on loopback; without it trestfly would follow
    # HTTP_PROXY/ALL_PROXY.  An empty mapping keeps its default ShardedTransport.
    async with TrioAPISession(url=url, max_concurrency=concurrency, proxies={}) as api:

        async def fetch() -> int:
            response: httpx.Response = await api.get(PATH)
            return response.status_code

        yield lambda _worker: fetch


@asynccontextmanager
async def open_httpx(url: str, concurrency: int) -> AsyncIterator[WorkerFetches]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    target = f"{url}/{PATH}"
    # trust_env=False: loopback, never through HTTP_PROXY/ALL_PROXY.
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def fetch() -> int:
            return (await client.get(target)).status_code

        yield lambda _worker: fetch


@asynccontextmanager
async def open_h11(url: str, concurrency: int) -> AsyncIterator[WorkerFetches]:
    async with open_pool(f"{url}/{PATH}", concurrency) as pool:

        def for_worker(worker: int) -> Fetch:
            connection = pool.connections[worker]

            async def fetch() -> int:
                return (await connection.get(pool.target)).status

            return fetch

        yield for_worker


CLIENTS: Mapping[str, ClientOpener] = {
    "trestfly": open_trestfly,
    "httpx": open_httpx,
    "h11": open_h11,
}


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    requests: int
    concurrency: tuple[int, ...]
    latencies_ms: tuple[float, ...]
    rounds: int
    clients: tuple[str, ...] = tuple(CLIENTS)
    #: The server's spread of each latency (see benchmarks._scenarios.Scenario.spread).
    latency_jitter: float = DEFAULT_LATENCY_JITTER

    def batch(self, concurrency: int, latency_ms: float) -> int:
        """Requests per timed batch at this concurrency and latency."""
        if latency_ms <= 0:
            return self.requests
        # A batch with latency lasts at least N * latency / C, long enough to time
        # whatever N: the cap wins over MIN_BATCH (which at C=1 made any latency above
        # 40 ms break it: 50 minutes a batch at 60 s).
        capped = round(concurrency * LATENCY_BATCH_SECONDS / (latency_ms / 1000))
        return max(1, min(self.requests, capped))

    def estimate_seconds(self) -> float:
        """A rough duration of the whole section, for the estimate printed at start."""
        total = 0.0
        for concurrency in self.concurrency:
            for latency_ms in self.latencies_ms:
                n = self.batch(concurrency, latency_ms) + 2 * concurrency
                per_batch = n / ESTIMATED_RPS
                if latency_ms > 0:
                    per_batch = max(per_batch, n * latency_ms / 1000 / concurrency)
                total += per_batch * (self.rounds + 1) * len(self.clients)
        return total


def settings_from(args: argparse.Namespace) -> Settings:
    """Explicit options win; ``--quick`` only changes the defaults.

    Raises:
        UsageError: a latency above what the server takes (it would refuse the scenario
            only after the storm before it had run).
    """
    quick = bool(getattr(args, "quick", False))
    requests: int | None = getattr(args, "throughput_requests", None)
    concurrency: list[int] | None = getattr(args, "throughput_concurrency", None)
    latencies: list[float] | None = getattr(args, "throughput_latency_ms", None)
    rounds: int | None = getattr(args, "throughput_rounds", None)
    if latencies is None:
        latencies = list(QUICK_LATENCIES_MS if quick else DEFAULT_LATENCIES_MS)
    most = MAX_THROUGHPUT_LATENCY_MS
    too_long = [latency for latency in latencies if latency > most]
    if too_long:
        raise UsageError(
            f"--throughput-latency-ms must be at most {most:g} (the section measures the "
            f"client's cost per request; a slower server only shows C / latency), got "
            f"{too_long[0]:g}"
        )
    return Settings(
        requests=requests or (QUICK_REQUESTS if quick else DEFAULT_REQUESTS),
        # once_each: a value given twice would measure the same configuration twice.
        concurrency=once_each(concurrency or (QUICK_CONCURRENCY if quick else DEFAULT_CONCURRENCY)),
        latencies_ms=once_each(latencies),
        rounds=rounds or (QUICK_ROUNDS if quick else DEFAULT_ROUNDS),
        latency_jitter=getattr(args, "latency_jitter", DEFAULT_LATENCY_JITTER),
    )


# ------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class Sample:
    requests: int
    wall_s: float
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.requests * 1e6


async def measure(fetches: WorkerFetches, requests: int, concurrency: int) -> Sample:
    """``requests`` GETs from ``concurrency`` workers pulling from one counter."""
    gc.collect()  # outside the timed region: nobody pays for the previous batch's garbage
    left = requests

    async def worker(index: int) -> None:
        nonlocal left
        fetch = fetches(index)
        # Bounded: each pass claims one of a fixed number of requests.
        while left > 0:
            left -= 1
            status = await fetch()
            if status != 200:
                raise RuntimeError(f"the unlimited scenario answered {status}")

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for index in range(concurrency):
            nursery.start_soon(worker, index)
    return Sample(requests, time.perf_counter() - wall_start, time.process_time() - cpu_start)


async def run_config(
    url: str, settings: Settings, concurrency: int, latency_ms: float, display: Display
) -> dict[str, Any]:
    """All rounds at one concurrency and latency; the medians of each client."""
    async with httpx.AsyncClient(timeout=10, trust_env=False) as control:  # loopback
        await install_scenario(
            control,
            url,
            Unlimited(latency_ms=latency_ms, latency_jitter=settings.latency_jitter),
        )
    batch = settings.batch(concurrency, latency_ms)
    samples: dict[str, list[Sample]] = {name: [] for name in settings.clients}
    progress = display.start(
        f"c={concurrency:<4} latency {latency_ms:g} ms", total=settings.rounds + 1
    )
    async with AsyncExitStack() as stack:
        fetchers = {
            name: await stack.enter_async_context(CLIENTS[name](url, concurrency))
            for name in settings.clients
        }
        for round_index in range(settings.rounds + 1):
            texts = []
            for name in settings.clients:
                # Untimed: reopens keep-alive connections that idled while the others ran.
                await measure(fetchers[name], 2 * concurrency, concurrency)
                sample = await measure(fetchers[name], batch, concurrency)
                if round_index:  # round 0 is the warm-up
                    samples[name].append(sample)
                texts.append(f"{name} {sample.rps:,.0f}/s")
            progress.update(round_index + 1, ", ".join(texts))
    clients = {
        name: {
            "rps": statistics.median(s.rps for s in runs),
            "cpu_us_per_request": statistics.median(s.cpu_us for s in runs),
            "rounds": [{"wall_s": s.wall_s, "cpu_s": s.cpu_s, "rps": s.rps} for s in runs],
        }
        for name, runs in samples.items()
    }
    progress.finish(
        settings.rounds + 1,
        ", ".join(f"{name} {figures['rps']:,.0f}/s" for name, figures in clients.items()),
    )
    return {
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "latency_jitter": settings.latency_jitter if latency_ms > 0 else 0.0,
        "requests_per_batch": batch,
        "rounds": settings.rounds,
        "clients": clients,
    }


async def run_section(url: str, settings: Settings, display: Display) -> list[dict[str, Any]]:
    results = []
    with display.section(
        f"throughput: unlimited scenario, {settings.rounds} rounds + warm-up, "
        f"clients {', '.join(settings.clients)}"
    ):
        for latency_ms in settings.latencies_ms:
            for concurrency in settings.concurrency:
                results.append(await run_config(url, settings, concurrency, latency_ms, display))
    return results


def print_results(results: Sequence[Mapping[str, Any]], clients: Sequence[str]) -> None:
    headers = [
        "concurrency",
        "latency ms",
        *(f"{name} req/s" for name in clients),
        *(f"{name} cpu us/req" for name in clients),
    ]
    rows = [
        [
            str(level["concurrency"]),
            f"{level['latency_ms']:g}",
            *(f"{level['clients'][name]['rps']:,.0f}" for name in clients),
            *(f"{level['clients'][name]['cpu_us_per_request']:.0f}" for name in clients),
        ]
        for level in results
    ]
    _report.print_table("throughput without throttling (medians)", headers, rows)


# ------------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser, *, standalone: bool = True) -> None:
    """The throughput options; ``standalone`` adds ``--quick`` and ``--out`` too."""
    group = parser.add_argument_group("throughput section")
    group.add_argument(
        "--throughput-requests",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"requests per timed batch (default {DEFAULT_REQUESTS}, --quick {QUICK_REQUESTS}; "
        f"with latency capped to about {LATENCY_BATCH_SECONDS:g} s)",
    )
    group.add_argument(
        "--throughput-concurrency",
        type=int_between(1, MAX_CONCURRENCY, "one connection each, opened at once"),
        nargs="+",
        default=None,
        metavar="C",
        help="worker tasks and pool size (default "
        f"{' '.join(map(str, DEFAULT_CONCURRENCY))}; --quick "
        f"{' '.join(map(str, QUICK_CONCURRENCY))})",
    )
    group.add_argument(
        "--throughput-latency-ms",
        type=non_negative_float,
        nargs="+",
        default=None,
        metavar="MS",
        help="server latencies to measure with (default 0 20; --quick 0; at most "
        f"{MAX_THROUGHPUT_LATENCY_MS:g})",
    )
    group.add_argument(
        "--throughput-rounds",
        type=positive_int,
        default=None,
        metavar="R",
        help=f"timed rounds after a warm-up (default {DEFAULT_ROUNDS}, --quick {QUICK_ROUNDS})",
    )
    if standalone:
        # Part of the storm command, the storm server's own option covers this section.
        parser.add_argument(
            "--latency-jitter",
            type=latency_jitter,
            default=DEFAULT_LATENCY_JITTER,
            metavar="SHARE",
            help="spread each latency uniformly over +/- this share of it (default "
            f"{DEFAULT_LATENCY_JITTER:g}; 0 for exact latencies)",
        )
        parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
        parser.add_argument("--plain", action="store_true", help="plain lines, no live bars")
        parser.add_argument(
            "--out",
            type=Path,
            default=Path("bench-results"),
            metavar="DIR",
            help=f"directory for {RESULTS_FILE} (default bench-results/)",
        )


def write_results(
    out: Path, settings: Settings, results: list[dict[str, Any]], env: dict[str, Any]
) -> Path:
    return _report.write_json(
        out,
        RESULTS_FILE,
        {
            "benchmark": "throughput",
            "settings": {
                "requests": settings.requests,
                "concurrency": list(settings.concurrency),
                "latencies_ms": list(settings.latencies_ms),
                "rounds": settings.rounds,
                "clients": list(settings.clients),
            },
            "environment": env,
            "results": results,
        },
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of a ``throughput`` command (not registered: see the README)."""
    try:
        settings = settings_from(args)
        _report.check_out_dir(args.out, [RESULTS_FILE])
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    display: Display = PlainDisplay() if args.plain else open_display()
    env = _report.environment()
    plan = cpu_plan()
    display.note(f"throughput: about {settings.estimate_seconds():.0f} s")
    with (
        run_storm_server(cpu=plan.server if plan else None) as server,
        pinned(plan.client if plan else None),
    ):
        results = trio.run(run_section, server.url, settings, display)
    print_results(results, settings.clients)
    path = write_results(args.out, settings, results, env)
    display.note(f"results: {path}")
    return 0
