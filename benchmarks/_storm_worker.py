"""One worker process of the storm benchmark's ``--workers`` mode (:mod:`benchmarks.workers`).

Several processes sharing one API quota is the case a single session's gate cannot
cover: each process learns the server's limit on its own, and together they overshoot
it unless they share their throttling state (``trestfly.RedisCoordination``).  A worker
is what one such process does: it opens the storm benchmark's trestfly session (the
same marked session as ``storm.open_trestfly``, with ``coordination=`` when given a
Redis URL), waits for the start instant the parent chose for all workers, sends its
share of the requests with :func:`benchmarks.storm.drive`, and prints one JSON line::

    python -m benchmarks._storm_worker --url http://127.0.0.1:PORT --path item \\
        --requests 500 --concurrency 25 --client-id local-0 --start-at 1767000000.5 \\
        [--redis-url redis://127.0.0.1:PORT/0 --prefix bench-1a2b3c4d-fixed_window]

The line holds the client-side run (:class:`benchmarks.storm.ClientRun` as a dict,
latencies included, so the parent can take percentiles over all workers), the
:class:`benchmarks.storm.Recorder`'s counts and when the worker was ready and started
(wall-clock epochs: the only clock the processes share).  Each worker has its own
:class:`~benchmarks.storm_server.ThrottleMarker` client id, so the server judges each
worker's obedience by what that worker had been told.  Errors go to stderr with a
non-zero exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import trio

import trestfly

from ._cli import positive_int, time_limit_seconds
from .storm import Recorder, _open_session, drive

#: Latencies are sent in seconds rounded to the microsecond: enough for p99, short lines.
_LATENCY_DIGITS = 6


class CoordinationMissing(RuntimeError):
    """``--redis`` asked for shared state, but this trestfly has no RedisCoordination."""


def require_coordination() -> type[Any]:
    """``trestfly.RedisCoordination``, or a clear error if this trestfly lacks it.

    Looked up at run time, not imported: the benchmark's local-only mode must work with
    a trestfly that has no coordination support.
    """
    coordination: type[Any] | None = getattr(trestfly, "RedisCoordination", None)
    if coordination is None:
        raise CoordinationMissing(
            f"--redis needs trestfly.RedisCoordination, which trestfly "
            f"{trestfly.__version__} does not have; run without --redis for local-only "
            "state"
        )
    return coordination


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks._storm_worker",
        description="One worker of 'python -m benchmarks storm --workers N' (started by it).",
    )
    parser.add_argument("--url", required=True, help="the storm server's base URL")
    parser.add_argument("--path", required=True, help="the path every request gets")
    parser.add_argument("--requests", type=positive_int, required=True, metavar="N")
    parser.add_argument("--concurrency", type=positive_int, required=True, metavar="C")
    parser.add_argument("--client-id", required=True, help="X-Client of this worker")
    parser.add_argument(
        "--start-at", type=float, required=True, metavar="EPOCH", help="when to begin (time.time)"
    )
    parser.add_argument("--time-limit", type=time_limit_seconds, required=True, metavar="S")
    parser.add_argument("--redis-url", default=None, help="share state through this Redis")
    parser.add_argument("--prefix", default=None, help="key prefix of the shared state")
    return parser


async def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Open the session, wait for the start instant, drive the requests; the report."""
    recorder = Recorder(args.client_id)
    settings: dict[str, Any] = {"url": args.url, "max_concurrency": args.concurrency}
    coordination: Any = None
    async with AsyncExitStack() as stack:
        if args.redis_url is not None:
            coordination = require_coordination()(args.redis_url, prefix=args.prefix)
            await stack.enter_async_context(coordination)
            settings["coordination"] = coordination
        # storm.open_trestfly's session (the marked session), plus the coordination.
        fetch = await stack.enter_async_context(_open_session(args.path, recorder, **settings))
        ready = time.time()
        await trio.sleep(max(0.0, args.start_at - ready))
        started = time.time()
        run = await drive(fetch, args.requests, args.concurrency, args.time_limit)
        recorder.settle(timed_out=run.timed_out)
    # What the coordination did (store calls, failures, remote closures and cuts).
    shared = dataclasses.asdict(coordination.stats) if coordination is not None else None
    report = dataclasses.asdict(run)
    report["latencies"] = [round(latency, _LATENCY_DIGITS) for latency in run.latencies]
    return {
        "client_id": args.client_id,
        "coordinated": args.redis_url is not None,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "ready_epoch": ready,
        "start_epoch": started,
        "start_lag_s": round(started - args.start_at, 4),
        "coordination": shared,
        "run": report,
        "recorder": {
            "attempts": recorder.attempts,
            "first_wave": recorder.first_wave,
            "responses": recorder.responses,
            "cancelled": recorder.cancelled,
            "statuses": {str(code): n for code, n in sorted(recorder.statuses.items())},
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.redis_url is not None and args.prefix is None:
        print("--redis-url needs --prefix", file=sys.stderr)
        return 2
    try:
        report = trio.run(run_worker, args)
    except CoordinationMissing as error:
        print(error, file=sys.stderr)
        return 2
    # The one line on stdout the parent reads; everything else goes to stderr.
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
