"""Crawl throughput: a paginated collection behind added latency, sequential vs prefetch.

The local server (:mod:`benchmarks._pages_app`) serves N records (default 20,000), P per
page (default 100), each page answered after L ms (default 20) of added latency, as an
offset/limit API reporting its total.  Each round measures, on warm connections:

* **sequential**: ``async for record in iterator``, one page after the other;
* **prefetch**: ``async with iterator.crawl(prefetch=C)`` (default C = 8), pages read as
  plain dicts (``conv_json``, the default);
* **prefetch + box**: the same crawl with ``box=True``;
* **transfer**: a bare ``httpx.AsyncClient`` fetching the same pages with no added
  latency, C at a time, and ``json.loads`` on each: what moving and decoding the bytes
  costs on this machine, which no client avoids.

Every walk checks that it got ids ``0..N-1`` in order.  One warm-up round is discarded;
medians of ``--rounds`` rounds are reported:

* the **speedup** of prefetch over sequential (target >= 5x);
* the ratio of prefetch to an **ideal client**: ``pages / C * L + transfer`` (every page
  in a batch of C in flight at once, plus the transfer), target <= 1.3;
* **records per second** with box off and on.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from trestfly import TrioAPISession
from trestfly._paginators import OffsetIterator

from ._cli import UsageError, int_between, out_dir, positive_int
from ._cpu import cpu_plan, pinned
from ._pages_app import MAX_LIMIT, PagesConfig, run_pages_server
from ._report import check_out_dir, environment, print_table, write_json

TARGET_SPEEDUP = 5.0
TARGET_IDEAL_RATIO = 1.3
RESULTS_FILE = "crawl.json"
QUICK_RECORDS = 2000
MODES = ("sequential", "prefetch", "prefetch+box", "transfer")


@dataclass(frozen=True)
class Settings:
    records: int
    page_size: int
    latency_ms: int
    prefetch: int
    rounds: int
    out: Path

    @property
    def pages(self) -> int:
        return -(-self.records // self.page_size)

    @property
    def in_flight(self) -> int:
        """Pages fetched at once: ``prefetch``, but never more than there are pages.
        (--prefetch 10000000 started ten million transfer workers for 20 pages, and an
        ideal client waiting 20 / 10,000,000 of a latency read 0.06x of it.)"""
        return min(self.prefetch, self.pages)

    @property
    def ideal_wait_s(self) -> float:
        """Latency an ideal client waits: every batch of ``prefetch`` pages at once."""
        return self.pages / self.in_flight * self.latency_ms / 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--records",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"records in the collection (default 20000; --quick: {QUICK_RECORDS})",
    )
    parser.add_argument(
        "--page-size",
        # The server sends at most MAX_LIMIT records a page: asked for more, its short
        # page ends the walk early, and the walk's check fails after the server started.
        type=int_between(1, MAX_LIMIT, "the server's largest page"),
        default=100,
        metavar="P",
        help=f"records per page, at most {MAX_LIMIT} (default 100)",
    )
    parser.add_argument(
        "--latency-ms",
        # The server answers a longer delay_ms with a 400.
        type=int_between(0, PagesConfig.max_delay_ms, "the server's longest delay"),
        default=20,
        metavar="MS",
        help="latency added by the server to every page, at most "
        f"{PagesConfig.max_delay_ms} (default 20)",
    )
    parser.add_argument(
        "--prefetch",
        type=positive_int,
        default=8,
        metavar="C",
        help="pages fetched ahead by the crawl (default 8)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=None,
        metavar="R",
        help="timed rounds after one warm-up round (default 3; --quick: 1)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes that finish in seconds (a smoke run, not a measurement)",
    )
    parser.add_argument(
        "--out",
        type=out_dir,
        default=Path("bench-results"),
        metavar="DIR",
        help=f"directory for {RESULTS_FILE} (default bench-results/)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """Explicit options win; --quick only changes the defaults.

    Raises:
        UsageError: an ``--out`` that cannot be written.
    """
    records = QUICK_RECORDS if args.quick else 20_000
    rounds = 1 if args.quick else 3
    check_out_dir(args.out, [RESULTS_FILE])
    return Settings(
        records=records if args.records is None else args.records,
        page_size=args.page_size,
        latency_ms=args.latency_ms,
        prefetch=args.prefetch,
        rounds=rounds if args.rounds is None else args.rounds,
        out=args.out,
    )


# ------------------------------------------------------------------ the walks


def _check(seen: int, settings: Settings) -> None:
    if seen != settings.records:
        raise RuntimeError(f"the walk got {seen} records, not {settings.records}")


async def walk(
    api: TrioAPISession, settings: Settings, *, prefetch: int | None, box: bool
) -> float:
    """Seconds to walk the whole collection (checking every id), sequential or crawled."""
    iterator = OffsetIterator(
        api,
        path="/items",
        limit=settings.page_size,
        params={"delay_ms": settings.latency_ms},
        box=box,
    )
    gc.collect()  # outside the timed region: one walk does not pay for another's garbage
    seen = 0
    start = time.perf_counter()
    if prefetch is None:
        async for record in iterator:
            if record["id"] != seen:
                raise RuntimeError(f"record {seen} came as id {record['id']}")
            seen += 1
    else:
        async with iterator.crawl(prefetch=prefetch) as records:
            async for record in records:
                if record["id"] != seen:
                    raise RuntimeError(f"record {seen} came as id {record['id']}")
                seen += 1
    wall = time.perf_counter() - start
    _check(seen, settings)
    return wall


async def transfer(client: httpx.AsyncClient, url: str, settings: Settings) -> float:
    """Seconds for a bare client to fetch and decode every page, C at a time, no latency."""
    offsets = iter(range(0, settings.records, settings.page_size))
    seen = 0

    async def worker() -> None:
        nonlocal seen
        for offset in offsets:  # next() never checkpoints: no offset is taken twice
            response = await client.get(
                url, params={"offset": offset, "limit": settings.page_size, "delay_ms": 0}
            )
            seen += len(json.loads(response.content)["items"])

    gc.collect()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(settings.in_flight):
            nursery.start_soon(worker)
    wall = time.perf_counter() - start
    _check(seen, settings)
    return wall


async def run_rounds(url: str, settings: Settings) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    limits = httpx.Limits(
        max_connections=settings.in_flight, max_keepalive_connections=settings.in_flight
    )
    async with (
        # Loopback: neither client may follow HTTP_PROXY/ALL_PROXY (proxies={} keeps
        # the session's default ShardedTransport).
        TrioAPISession(url=url, max_concurrency=settings.in_flight, proxies={}) as api,
        httpx.AsyncClient(limits=limits, trust_env=False) as client,
    ):
        for round_index in range(settings.rounds + 1):
            # Round 0 opens the connections and warms the code paths; it is discarded.
            results = {
                "transfer": await transfer(client, f"{url}/items", settings),
                "sequential": await walk(api, settings, prefetch=None, box=False),
                "prefetch": await walk(api, settings, prefetch=settings.prefetch, box=False),
                "prefetch+box": await walk(api, settings, prefetch=settings.prefetch, box=True),
            }
            label = "warm-up" if round_index == 0 else f"round {round_index}/{settings.rounds}"
            _progress(f"{label}: " + ", ".join(f"{m} {s:.3f} s" for m, s in results.items()))
            if round_index:
                for mode, seconds in results.items():
                    samples[mode].append(seconds)
    return samples


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ results


def summarize(settings: Settings, samples: dict[str, list[float]]) -> dict[str, Any]:
    median = {mode: statistics.median(values) for mode, values in samples.items()}
    ideal = settings.ideal_wait_s + median["transfer"]
    speedup = median["sequential"] / median["prefetch"]
    ideal_ratio = median["prefetch"] / ideal
    return {
        "seconds": median,
        "rounds": samples,
        "records_per_second": {mode: settings.records / s for mode, s in median.items()},
        "ideal_seconds": ideal,
        "ideal_wait_seconds": settings.ideal_wait_s,
        "speedup": speedup,
        "ideal_ratio": ideal_ratio,
        "box_cost_ratio": median["prefetch+box"] / median["prefetch"],
        "targets": {"speedup": TARGET_SPEEDUP, "ideal_ratio": TARGET_IDEAL_RATIO},
        "passed": {
            "speedup": speedup >= TARGET_SPEEDUP,
            "ideal_ratio": ideal_ratio <= TARGET_IDEAL_RATIO,
        },
    }


def print_results(settings: Settings, summary: dict[str, Any]) -> None:
    rows = [
        [mode, f"{summary['seconds'][mode]:.3f}", f"{summary['records_per_second'][mode]:,.0f}"]
        for mode in MODES
    ]
    rows.append(["ideal client", f"{summary['ideal_seconds']:.3f}", ""])
    print_table(
        f"crawl of {settings.records:,} records, {settings.page_size}/page, "
        f"{settings.latency_ms} ms per page, prefetch {settings.prefetch} (medians)",
        ["walk", "seconds", "records/s"],
        rows,
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plan = cpu_plan()
    env = environment()  # before the run: the load average shows what else was busy
    with (
        run_pages_server(
            PagesConfig(records=settings.records), cpu=plan.server if plan else None
        ) as server,
        pinned(plan.client if plan else None) as client_pinned,
    ):
        _progress(
            f"server {server.url} (pid {server.pid}, cpu {server.cpu}); client cpu "
            f"{plan.client if client_pinned and plan else 'unpinned'}; {settings.records} "
            f"records, {settings.pages} pages, {settings.rounds} rounds + warm-up"
        )
        samples = trio.run(run_rounds, server.url, settings)
    summary = summarize(settings, samples)
    print_results(settings, summary)
    passed = summary["passed"]
    if args.quick:
        print("quick run (a smoke test, not a measurement): targets not judged")
        passed = {"speedup": None, "ideal_ratio": None}

    def verdict(ok: bool | None) -> str:
        return "SKIP" if ok is None else "PASS" if ok else "FAIL"

    print(
        f"{verdict(passed['speedup'])}: prefetch {settings.prefetch} is "
        f"{summary['speedup']:.1f}x faster than sequential (target >= {TARGET_SPEEDUP:.0f}x)"
    )
    print(
        f"{verdict(passed['ideal_ratio'])}: prefetch {settings.prefetch} takes "
        f"{summary['ideal_ratio']:.2f}x an ideal client's {summary['ideal_seconds']:.3f} s "
        f"(pages/{settings.in_flight} x {settings.latency_ms} ms + transfer "
        f"{summary['seconds']['transfer']:.3f} s; target <= {TARGET_IDEAL_RATIO})"
    )
    rates = summary["records_per_second"]
    print(
        f"records/s with prefetch {settings.prefetch}: box off {rates['prefetch']:,.0f}, "
        f"box on {rates['prefetch+box']:,.0f} ({summary['box_cost_ratio']:.2f}x the time)"
    )
    path = write_json(
        settings.out,
        RESULTS_FILE,
        {
            "benchmark": "crawl",
            "settings": {
                "records": settings.records,
                "page_size": settings.page_size,
                "pages": settings.pages,
                "latency_ms": settings.latency_ms,
                "prefetch": settings.prefetch,
                "rounds": settings.rounds,
                "warmup_rounds": 1,
                "quick": bool(args.quick),
            },
            "pinning": {
                "server_cpu": server.cpu,
                "client_cpu": plan.client if client_pinned and plan else None,
            },
            "environment": env,
            "results": summary,
        },
    )
    print(f"results written to {path}")
    return 0
