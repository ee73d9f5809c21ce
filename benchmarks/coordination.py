"""What sharing throttling state through Redis costs per request (issue #7).

    python -m benchmarks.coordination [--requests 2000] [--rounds 3]

Against the local server (no throttling, :mod:`benchmarks.server` pinned to one core)
and a private ``redis-server`` on 127.0.0.1, the same N tiny GETs are sent by a
``TrioAPISession`` configured four ways, interleaved round by round:

* ``local``: no coordination (the default);
* ``redis``: ``RedisCoordination``, origin not throttling: requests never wait for
  Redis; the background task syncs every 20 ms;
* ``redis-paced``: the same with a client-side ``rate_limit`` far above what is
  reached, so every request reserves its send slot from Redis's GCRA script (what a
  throttled, paced origin costs);
* ``memory-paced``: the same through ``MemoryCoordination`` (the store's own cost
  removed).

Reported per concurrency: median req/s and client CPU microseconds per request (CPU is
steadier than wall time on a shared machine; the Redis server's own CPU is not in it).
It also times the store client alone: one scripted call (EVALSHA of the reserve
script) with coredis under ``trio.run``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from trestfly import MemoryCoordination, RedisCoordination, TrioAPISession

from . import _report
from ._cli import UsageError, out_dir, positive_int
from ._cpu import cpu_plan, pinned
from .overhead import Sample, measure
from .redis_server import running_redis
from .server import AppConfig, run_server

Fetch = Callable[[], Awaitable[httpx.Response]]
Opener = Callable[[str, str, int], AbstractAsyncContextManager[Fetch]]
PATH = "/json"
RESULTS_FILE = "coordination.json"


def _opener(kind: str, redis_url: str) -> Opener:
    @asynccontextmanager
    async def open_session(root: str, prefix: str, concurrency: int) -> AsyncIterator[Fetch]:
        settings: dict[str, Any] = {}
        if kind.startswith("redis"):
            settings["coordination"] = RedisCoordination(redis_url, prefix=prefix)
        elif kind.startswith("memory"):
            settings["coordination"] = MemoryCoordination()
        if kind.endswith("paced"):
            settings["rate_limit"] = 1_000_000.0
            settings["burst"] = 1_000_000
        # proxies={}: loopback, never through HTTP_PROXY/ALL_PROXY (an empty mapping
        # keeps the default ShardedTransport).
        async with TrioAPISession(
            url=root,
            max_concurrency=concurrency,
            box=False,
            conv_json=False,
            proxies={},
            **settings,
        ) as api:

            async def fetch() -> httpx.Response:
                response: httpx.Response = await api.get(PATH)
                return response

            yield fetch

    return open_session


KINDS = ("local", "redis", "redis-paced", "memory-paced")


async def script_call_us(redis_url: str, calls: int = 2000) -> dict[str, float]:
    """Wall and CPU microseconds of one reserve-script call through coredis."""
    coordination = RedisCoordination(redis_url, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    async with coordination:
        await coordination._store_reserve("k", 1e-6, 1_000_000)  # loads the script
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            await coordination._store_reserve("k", 1e-6, 1_000_000)
        return {
            "wall_us": (time.perf_counter() - wall) / calls * 1e6,
            "cpu_us": (time.process_time() - cpu) / calls * 1e6,
        }


async def run_level(
    root: str, redis_url: str, concurrency: int, requests: int, rounds: int
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {kind: [] for kind in KINDS}
    async with AsyncExitStack() as stack:
        fetches = {
            kind: await stack.enter_async_context(
                _opener(kind, redis_url)(root, f"bench-{uuid.uuid4().hex[:8]}", concurrency)
            )
            for kind in KINDS
        }
        for round_index in range(rounds + 1):  # round 0 warms up, untimed
            for kind, fetch in fetches.items():
                await measure(fetch, 2 * concurrency, concurrency)
                sample = await measure(fetch, requests, concurrency)
                if round_index:
                    samples[kind].append(sample)
    return samples


def summarize(samples: Mapping[str, list[Sample]]) -> dict[str, dict[str, float]]:
    return {
        kind: {
            "rps": statistics.median(s.rps for s in runs),
            "cpu_us_per_request": statistics.median(s.cpu_us for s in runs),
        }
        for kind, runs in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coordination")
    # positive_int, not int: 0 rounds or requests, or a negative count, crashed after the
    # whole run (no median, a division by zero) or wrote negative req/s.
    parser.add_argument("--requests", type=positive_int, default=2000)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--concurrency", type=positive_int, nargs="+", default=[1, 25])
    parser.add_argument("--out", type=out_dir, default=Path("bench-results"))
    args = parser.parse_args(argv)
    try:
        # Before the servers start: an --out that cannot take coordination.json failed
        # only when the results were written, after the whole run.
        _report.check_out_dir(args.out, [RESULTS_FILE])
    except UsageError as error:
        parser.error(str(error))
    plan = cpu_plan()
    results: dict[str, Any] = {"levels": {}}
    with (
        run_server(AppConfig(), cpu=plan.server if plan else None) as server,
        running_redis() as redis,
        pinned(plan.client if plan else None),
    ):
        results["script_call"] = trio.run(script_call_us, redis.url)
        print(
            "coredis reserve-script call under trio.run: "
            f"{results['script_call']['wall_us']:.0f} us wall, "
            f"{results['script_call']['cpu_us']:.0f} us client CPU"
        )
        for concurrency in args.concurrency:
            samples = trio.run(
                run_level, server.url, redis.url, concurrency, args.requests, args.rounds
            )
            level = summarize(samples)
            results["levels"][str(concurrency)] = level
            base = level["local"]
            print(f"\nconcurrency {concurrency} ({args.requests} GETs, median of {args.rounds}):")
            print(f"  {'session':<14}{'req/s':>9}{'CPU us/req':>12}{'+CPU us/req':>13}")
            for kind, row in level.items():
                extra = row["cpu_us_per_request"] - base["cpu_us_per_request"]
                print(
                    f"  {kind:<14}{row['rps']:>9.0f}{row['cpu_us_per_request']:>12.0f}"
                    f"{extra:>+13.0f}"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULTS_FILE).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out / RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
