"""The storm benchmark with several processes on one quota: ``storm --workers N [--redis]``.

A session's gate, pacer and learned rate cover the tasks of one process.  A program that
runs N processes against one API key (a pool of workers, several pods) has N of them:
each learns the limit on its own, and together they overshoot it.  This mode measures
that, and what sharing the throttling state through Redis (``trestfly.RedisCoordination``)
changes.

Per scenario (default ``fixed_window`` and ``token_bucket`` at 100 requests/s), N worker
processes (:mod:`benchmarks._storm_worker`), each a trestfly session with C tasks, send
their share of the requests against the embedded storm server, all starting at one
wall-clock instant.  With ``--redis`` the same N workers run twice, the order alternating
between scenarios: with local state only, and sharing their state through a local
``redis-server`` (:mod:`benchmarks.redis_server`).  Reported, per scenario and state:
the aggregate figures of :func:`benchmarks.storm.metrics` (goodput over the scenario's
limit, requests sent per success, Retry-After violations, wall time from the first
worker's start to the last one's end, CPU per 1,000 successes summed over the workers)
and the same figures per worker, in a table and in ``workers.json``.

Each worker has its own X-Client id and :class:`~benchmarks.storm_server.ThrottleMarker`:
the server judges a worker by what *it* was told.  A worker that waits for another's
429 is doing better than obedience requires; that shows in 429s per success, not in
violations.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import httpx
import trio

from . import _report, storm
from ._cli import UsageError, once_each, positive_int
from ._cpu import cpu_plan, pinned
from ._live import Display, RunProgress, open_display
from ._scenarios import Scenario
from ._storm_worker import CoordinationMissing, require_coordination
from .redis_server import RedisNotInstalled, RedisStartError, find_redis_server, running_redis
from .server import PROJECT_ROOT
from .storm_server import fetch_stats, install_scenario, run_storm_server

DEFAULT_WORKERS = 4
DEFAULT_CONCURRENCY = 25
DEFAULT_REQUESTS = 2000
#: The issue's limit: a fixed window of 100 per second, a bucket of 100/s (burst 10).
DEFAULT_RATE = 100.0
DEFAULT_SCENARIOS = ("fixed_window", "token_bucket")
QUICK_REQUESTS = 200
QUICK_CONCURRENCY = 5
QUICK_TIME_LIMIT = 20.0

RESULTS_FILE = "workers.json"
#: The two states the workers can have; "redis" only with --redis.
MODES = ("local", "redis")
MODE_LABELS = {"local": "local state", "redis": "shared (Redis)"}

#: Seconds from launching the workers to their common start instant: Python's start-up
#: and imports (about 0.3 s of CPU each) on the one core the workers share, plus opening
#: the session.  Measured on 2 cores: 4 workers ready after 1.2 s with local state,
#: 1.9 s with Redis (coredis's import, connecting).  A worker not ready in time starts
#: late and is reported as such.
START_LEAD_SECONDS = 1.0
START_LEAD_PER_WORKER = 0.35
START_LEAD_REDIS_SECONDS = 1.5
#: The scenario is installed this long before the start instant: its t=0 (window
#: alignment) is the workers' start, and no early request is counted in the old one.
INSTALL_AHEAD_SECONDS = 0.02
#: Beyond the time limit: closing the sessions and the coordination, exiting.
EXIT_GRACE_SECONDS = 15.0
#: Seconds between two polls of the server's counts for the progress bar.
POLL_SECONDS = 0.5
#: Seconds to wait for a killed worker to go.
_STOP_TIMEOUT = 5.0
_STDERR_TAIL = 4000


class WorkerFailed(RuntimeError):
    """A worker exited with an error, printed no report, or did not finish in time."""


# --------------------------------------------------------------------- settings


@dataclass(frozen=True)
class WorkerSettings:
    """What one ``--workers`` run does, from the command line."""

    workers: int
    #: Tasks per worker (``max_concurrency`` of its session).
    concurrency: int
    #: Logical requests in all, split evenly between the workers.
    requests: int
    scenarios: tuple[str, ...]
    modes: tuple[str, ...]
    server: storm.ServerParams
    time_limit: float
    out: Path
    plain: bool = False
    quick: bool = False

    def shares(self) -> list[int]:
        """Requests per worker: N / W each, the remainder to the first ones."""
        base, extra = divmod(self.requests, self.workers)
        return [base + (1 if index < extra else 0) for index in range(self.workers)]

    def catalogue(self) -> dict[str, Scenario]:
        return storm.scenarios(self.server, self.scenarios)

    def lead_seconds(self, mode: str) -> float:
        """Seconds from launching the workers of ``mode`` to their start instant."""
        extra = START_LEAD_REDIS_SECONDS if mode == "redis" else 0.0
        return START_LEAD_SECONDS + START_LEAD_PER_WORKER * self.workers + extra

    def estimate_seconds(self) -> float:
        """What ideal workers take, start leads included (real ones take longer)."""
        catalogue = self.catalogue()
        runs = sum(
            storm.estimate_run_seconds(catalogue[name], self.requests) for name in self.scenarios
        )
        leads = sum(self.lead_seconds(mode) for mode in self.modes) * len(self.scenarios)
        return 2.0 + runs * len(self.modes) + leads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--redis``, added to the ``storm`` command."""
    group = parser.add_argument_group(
        "several processes on one quota (storm --workers N [--redis]; benchmarks/README.md)"
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="run N trestfly worker processes together on one quota instead of the "
        "storm (writes workers.json); then --concurrency is tasks per worker (default "
        f"{DEFAULT_CONCURRENCY}; --quick {QUICK_CONCURRENCY}), --requests the total "
        f"(default {DEFAULT_REQUESTS}; --quick {QUICK_REQUESTS}), --rate defaults to "
        f"{DEFAULT_RATE:g} and --scenario to {' '.join(DEFAULT_SCENARIOS)}",
    )
    group.add_argument(
        "--redis",
        action="store_true",
        help="with --workers: run the workers twice, with local state and sharing it "
        "through a local redis-server (trestfly.RedisCoordination); without --workers: "
        f"--workers {DEFAULT_WORKERS}",
    )


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    """The storm command's options read for ``--workers``; explicit options win.

    Raises:
        UsageError: an option of the storm that this mode cannot honour, a server the
            scenarios cannot be (as the storm refuses it), or an ``--out`` that cannot
            be written.
    """
    if args.url is not None:
        raise UsageError("--workers runs against the embedded server: drop --url")
    if args.throughput_mode == "only":
        raise UsageError("--throughput-only does not go with --workers")
    ignored = storm.given_options(args, *storm.THROUGHPUT_OPTIONS)
    if ignored:
        # The worker processes run the storm only: these were silently dropped.
        raise UsageError(f"{', '.join(ignored)}: --workers runs no throughput section")
    if args.clients and tuple(args.clients) != ("trestfly",):
        raise UsageError("--workers runs trestfly sessions only: drop --client")
    if args.concurrency and len(args.concurrency) > 1:
        raise UsageError("--workers takes one --concurrency value: tasks per worker")
    quick = bool(args.quick)
    workers: int = args.workers or DEFAULT_WORKERS
    requests: int = args.requests or (QUICK_REQUESTS if quick else DEFAULT_REQUESTS)
    if requests < workers:
        raise UsageError(f"--requests {requests} is fewer than one per worker ({workers})")
    outage = args.outage_seconds
    if outage is None:
        outage = storm.QUICK_OUTAGE_SECONDS if quick else storm.DEFAULT_OUTAGE_SECONDS
    rate: float = args.rate if args.rate is not None else DEFAULT_RATE
    # once_each, as the storm: a scenario given twice ran twice, and workers.json kept
    # one "scenarios" entry for its two result rows.
    scenarios = once_each(args.scenarios or DEFAULT_SCENARIOS)
    # The storm's own checks: the same server, the same scenarios.
    storm._check_server_options(args, rate, scenarios)
    _report.check_out_dir(args.out, [RESULTS_FILE])
    return WorkerSettings(
        workers=workers,
        concurrency=(
            args.concurrency[0]
            if args.concurrency
            else (QUICK_CONCURRENCY if quick else DEFAULT_CONCURRENCY)
        ),
        requests=requests,
        scenarios=scenarios,
        modes=MODES if args.redis else ("local",),
        server=storm.server_params(args, rate, outage),
        time_limit=args.time_limit or (QUICK_TIME_LIMIT if quick else storm.DEFAULT_TIME_LIMIT),
        out=args.out,
        plain=bool(args.plain),
        quick=quick,
    )


# --------------------------------------------------------------------- one worker


def worker_command(
    *,
    url: str,
    requests: int,
    concurrency: int,
    client_id: str,
    start_at: float,
    time_limit: float,
    redis_url: str | None,
    prefix: str | None,
) -> list[str]:
    """The command line of one :mod:`benchmarks._storm_worker`."""
    command = [
        sys.executable, "-m", "benchmarks._storm_worker",
        "--url", url,
        "--path", storm.PATH,
        "--requests", str(requests),
        "--concurrency", str(concurrency),
        "--client-id", client_id,
        "--start-at", repr(start_at),
        "--time-limit", repr(time_limit),
    ]  # fmt: skip
    if redis_url is not None and prefix is not None:
        command += ["--redis-url", redis_url, "--prefix", prefix]
    return command


@dataclass
class WorkerReport:
    """What one worker printed, turned back into the storm module's objects."""

    client_id: str
    requests: int
    ready_epoch: float
    start_epoch: float
    start_lag_s: float
    run: storm.ClientRun
    recorder: storm.Recorder = field(repr=False)
    #: The worker's ``api.stats.coordination`` as a dict; None without Redis.
    coordination: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerReport:
        recorder = storm.Recorder(data["client_id"])
        counts = data["recorder"]
        recorder.attempts = counts["attempts"]
        recorder.first_wave = counts["first_wave"]
        recorder.responses = counts["responses"]
        recorder.cancelled = counts.get("cancelled", 0)
        recorder.statuses = {int(code): n for code, n in counts["statuses"].items()}
        return cls(
            client_id=data["client_id"],
            requests=data["requests"],
            ready_epoch=data["ready_epoch"],
            start_epoch=data["start_epoch"],
            start_lag_s=data["start_lag_s"],
            run=storm.ClientRun(**data["run"]),
            recorder=recorder,
            coordination=data.get("coordination"),
        )


def _tail(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read()[-_STDERR_TAIL:].decode(errors="replace")


def read_report(client_id: str, returncode: int | None, out: IO[bytes], err: IO[bytes]) -> Any:
    """The JSON line a worker printed last on stdout.

    Raises:
        WorkerFailed: it exited with an error or printed no report (with its stderr).
    """
    if returncode != 0:
        raise WorkerFailed(f"worker {client_id} exited with code {returncode}:\n{_tail(err)}")
    out.seek(0)
    lines = [line for line in out.read().decode(errors="replace").splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError) as error:
        raise WorkerFailed(f"worker {client_id} printed no report:\n{_tail(err)}") from error


# --------------------------------------------------------------------- aggregate


def combine(reports: Sequence[WorkerReport]) -> tuple[storm.ClientRun, storm.Recorder]:
    """All workers as one client: the run :func:`benchmarks.storm.metrics` judges.

    The wall time runs from the first worker's start to the last one's end; CPU,
    successes, failures and attempts are summed; latencies pooled (percentiles over
    every logical request); each worker's success timeline shifted by its start.
    """
    origin = min(report.start_epoch for report in reports)
    # Offsets first, then the wall times: added to an epoch (1.8e9 s, steps of 2.4e-7 s)
    # a worker's wall time lost digits, and the whole came out shorter than a part.
    wall = max((report.start_epoch - origin) + report.run.wall_s for report in reports)
    total = storm.ClientRun(
        successes=sum(report.run.successes for report in reports),
        failures=sum(report.run.failures for report in reports),
        latencies=[latency for report in reports for latency in report.run.latencies],
        wall_s=wall,
        cpu_s=sum(report.run.cpu_s for report in reports),
        timed_out=any(report.run.timed_out for report in reports),
    )
    firsts, lasts = [], []
    for report in reports:
        offset = report.start_epoch - origin
        if report.run.first_success_s is not None:
            firsts.append(offset + report.run.first_success_s)
        if report.run.last_success_s is not None:
            lasts.append(offset + report.run.last_success_s)
        shift = round(offset / storm.BUCKET_SECONDS)
        for index, count in enumerate(report.run.buckets):
            bucket = index + shift
            if count and bucket < storm.MAX_BUCKETS:
                if bucket >= len(total.buckets):
                    total.buckets.extend([0] * (bucket + 1 - len(total.buckets)))
                total.buckets[bucket] += count
    total.first_success_s = min(firsts, default=None)
    total.last_success_s = max(lasts, default=None)

    recorder = storm.Recorder("all workers")
    for report in reports:
        recorder.attempts += report.recorder.attempts
        recorder.first_wave += report.recorder.first_wave
        recorder.responses += report.recorder.responses
        recorder.cancelled += report.recorder.cancelled
        for code, n in report.recorder.statuses.items():
            recorder.statuses[code] = recorder.statuses.get(code, 0) + n
    return total, recorder


def figures_of(
    reports: Sequence[WorkerReport],
    stats: Mapping[str, Any],
    scenario: Scenario,
    *,
    requests: int,
    start_at: float,
) -> dict[str, Any]:
    """The aggregate figures (the server's totals) and one row per worker (the server's
    counts for its X-Client): :func:`benchmarks.storm.metrics` of each."""
    run, recorder = combine(reports)
    figures = storm.metrics(run, recorder, requests=requests, scenario=scenario, server=stats)
    rows = []
    for index, report in enumerate(reports):
        counters = stats["clients"].get(report.client_id)
        server = None if counters is None else {"totals": counters, "timeline": None}
        rows.append(
            {
                "worker": index,
                "client_id": report.client_id,
                "start_lag_s": report.start_lag_s,
                "coordination": report.coordination,
                # Negative: the worker was not ready at the start instant.
                "ready_margin_s": round(start_at - report.ready_epoch, 4),
                **storm.metrics(
                    report.run,
                    report.recorder,
                    requests=report.requests,
                    scenario=scenario,
                    server=server,
                ),
            }
        )
    return {
        **figures,
        # Not ready at the start instant: the start lead was too short for this machine.
        # (A ready worker still starts a few ms late when the others' first requests
        # hold the core they share: see max_start_lag_s.)
        "late_workers": sum(report.ready_epoch > start_at for report in reports),
        "max_start_lag_s": max(report.start_lag_s for report in reports),
        "per_worker": rows,
    }


# --------------------------------------------------------------------- running


async def _watch(
    control: httpx.AsyncClient,
    url: str,
    sample: Callable[[storm.ClientRun, float], None],
    start_at: float,
    polls: int,
) -> None:
    """Feed the progress bar from the server's count of successes, until cancelled
    (at most ``polls`` times, one per :data:`POLL_SECONDS`)."""
    for _ in range(polls):
        await trio.sleep(POLL_SECONDS)
        elapsed = time.time() - start_at
        if elapsed > 0:
            stats = await fetch_stats(control, url)
            sample(storm.ClientRun(successes=stats["totals"]["successes"]), elapsed)


async def _wait_all(processes: Sequence[trio.Process]) -> None:
    """Return when every worker has exited, or as soon as one exits with an error:
    the others' results would be of a different run, and they are killed next."""
    async with trio.open_nursery() as nursery:

        async def wait_one(process: trio.Process) -> None:
            await process.wait()
            if process.returncode != 0:
                nursery.cancel_scope.cancel()

        for process in processes:
            nursery.start_soon(wait_one, process)


async def _stop_all(processes: Sequence[trio.Process]) -> None:
    """Kill the workers still running and reap them all (bounded, even when cancelled)."""
    for process in processes:
        if process.returncode is None:
            process.kill()
    with trio.move_on_after(_STOP_TIMEOUT, shield=True):
        for process in processes:
            await process.wait()


async def run_pass(
    url: str,
    scenario: Scenario,
    mode: str,
    settings: WorkerSettings,
    display: Display,
    *,
    redis_url: str | None,
    prefix: str | None,
) -> dict[str, Any]:
    """The workers through one freshly installed scenario, in one state; the figures.

    Raises:
        WorkerFailed: a worker failed, or they did not all finish in time.
    """
    lead = settings.lead_seconds(mode)
    start_at = time.time() + lead
    timeout = lead + settings.time_limit + EXIT_GRACE_SECONDS
    client_ids = [f"{mode}-{index}" for index in range(settings.workers)]
    progress: RunProgress | None = None
    with ExitStack() as files:
        outs = [files.enter_context(tempfile.TemporaryFile()) for _ in client_ids]
        errs = [files.enter_context(tempfile.TemporaryFile()) for _ in client_ids]
        processes: list[trio.Process] = []
        finished = False
        try:
            for client_id, requests, out, err in zip(
                client_ids, settings.shares(), outs, errs, strict=True
            ):
                command = worker_command(
                    url=url,
                    requests=requests,
                    concurrency=settings.concurrency,
                    client_id=client_id,
                    start_at=start_at,
                    time_limit=settings.time_limit,
                    redis_url=redis_url,
                    prefix=prefix,
                )
                processes.append(
                    await trio.lowlevel.open_process(
                        command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err
                    )
                )
            # trust_env=False: loopback, never through HTTP_PROXY/ALL_PROXY.
            async with httpx.AsyncClient(timeout=10, trust_env=False) as control:
                await trio.sleep(max(0.0, start_at - INSTALL_AHEAD_SECONDS - time.time()))
                await install_scenario(control, url, scenario)
                progress = display.start(
                    f"{settings.workers} x c={settings.concurrency:<4} {MODE_LABELS[mode]:<15}",
                    total=settings.requests,
                )
                sample = storm._progress_sampler(progress, scenario.limit_rps)
                with trio.move_on_after(timeout):
                    async with trio.open_nursery() as nursery:
                        polls = int(timeout / POLL_SECONDS) + 1
                        nursery.start_soon(_watch, control, url, sample, start_at, polls)
                        await _wait_all(processes)
                        nursery.cancel_scope.cancel()
                    finished = all(process.returncode is not None for process in processes)
                stats = await fetch_stats(control, url)
        finally:
            await _stop_all(processes)
        # A worker's own error first: the others were killed because of it.
        failed = [p for p in processes if p.returncode is not None and p.returncode > 0]
        for client_id, process, out, err in zip(client_ids, processes, outs, errs, strict=True):
            if process in failed:
                read_report(client_id, process.returncode, out, err)
        if not finished:
            raise WorkerFailed(
                f"the workers did not finish within {timeout:g} s "
                f"(start lead + --time-limit + {EXIT_GRACE_SECONDS:g} s)"
            )
        reports = [
            WorkerReport.from_json(read_report(client_id, process.returncode, out, err))
            for client_id, process, out, err in zip(client_ids, processes, outs, errs, strict=True)
        ]
    figures = figures_of(reports, stats, scenario, requests=settings.requests, start_at=start_at)
    assert progress is not None  # started before the workers could finish
    summary = storm._summary(figures)
    if figures["late_workers"]:
        summary += f", {figures['late_workers']} worker(s) started late"
    progress.finish(figures["successes"], summary)
    return figures


async def run_all(
    url: str, redis_url: str | None, settings: WorkerSettings, display: Display
) -> list[dict[str, Any]]:
    """Every scenario in every state; the states' order alternates between scenarios so
    that neither always runs first."""
    run_id = uuid.uuid4().hex[:8]
    catalogue = settings.catalogue()
    results: list[dict[str, Any]] = []
    for index, name in enumerate(settings.scenarios):
        scenario = catalogue[name]
        shift = index % len(settings.modes)
        with display.section(storm.describe(name, scenario)):
            for mode in settings.modes[shift:] + settings.modes[:shift]:
                shared = mode == "redis"
                # A prefix per pass: no learned rate or gate carries over between runs.
                prefix = f"bench-{run_id}-{name}" if shared else None
                figures = await run_pass(
                    url,
                    scenario,
                    mode,
                    settings,
                    display,
                    redis_url=redis_url if shared else None,
                    prefix=prefix,
                )
                results.append(
                    {
                        "scenario": name,
                        "client": "trestfly",
                        "mode": mode,
                        "workers": settings.workers,
                        "concurrency": settings.concurrency,
                        "total_concurrency": settings.workers * settings.concurrency,
                        "redis_prefix": prefix,
                        **figures,
                    }
                )
    return results


# --------------------------------------------------------------------- reporting


def _print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    text_columns: int,
    plain: bool,
) -> None:
    """:func:`benchmarks.storm.print_table`, or its plain text with ``--plain``."""
    if plain:
        print(f"\n{title}\n{storm.render_table(headers, rows, text_columns)}", flush=True)
    else:
        storm.print_table(title, headers, rows, text_columns=text_columns)


def print_results(results: Sequence[Mapping[str, Any]], settings: WorkerSettings) -> None:
    """The aggregate table, the goodput notes, and the per-worker table."""
    _fmt = storm._fmt
    headers = [
        "scenario", "state", "ok/N", "wall s", "goodput", "vs ideal", "req/ok", "429/ok",
        "viol", "p50 ms", "p99 ms", "cpu s/1k", "late",
    ]  # fmt: skip
    rows = [
        [
            run["scenario"],
            MODE_LABELS[run["mode"]],
            f"{run['successes']}/{run['requests']}" + ("" if run["complete"] else " !"),
            f"{run['wall_s']:.2f}",
            _fmt(run["goodput"]),
            _fmt(run["vs_ideal"]),
            _fmt(run["requests_per_success"]),
            _fmt(run["throttled_429_per_success"]),
            _fmt(run["violations"]),
            _fmt(run["p50_ms"], ".1f"),
            _fmt(run["p99_ms"], ".1f"),
            _fmt(run["cpu_s_per_1000"], ".3f"),
            str(run["late_workers"]),
        ]
        for run in results
    ]
    _print_table(
        f"{settings.workers} workers x {settings.concurrency} tasks, {settings.requests} "
        "requests in all: aggregate",
        headers,
        rows,
        2,
        settings.plain,
    )
    for note in storm._goodput_notes(results).values():
        print(note)
    headers = [
        "scenario", "state", "worker", "ok/N", "wall s", "ok/s", "req/ok", "429s", "viol",
        "start lag ms", "cpu s/1k",
    ]  # fmt: skip
    rows = [
        [
            run["scenario"],
            MODE_LABELS[run["mode"]],
            worker["client_id"],
            f"{worker['successes']}/{worker['requests']}" + ("" if worker["complete"] else " !"),
            f"{worker['wall_s']:.2f}",
            _fmt(worker["success_rate"], ".1f"),
            _fmt(worker["requests_per_success"]),
            _fmt(worker["throttled_429"]),
            _fmt(worker["violations"]),
            f"{worker['start_lag_s'] * 1000:.1f}",
            _fmt(worker["cpu_s_per_1000"], ".3f"),
        ]
        for run in results
        for worker in run["per_worker"]
    ]
    _print_table("per worker", headers, rows, 3, settings.plain)


def _settings_json(settings: WorkerSettings) -> dict[str, Any]:
    return {
        "workers": settings.workers,
        "concurrency_per_worker": settings.concurrency,
        "requests": settings.requests,
        "requests_per_worker": settings.shares(),
        "scenarios": list(settings.scenarios),
        "modes": list(settings.modes),
        "server": asdict(settings.server),
        "time_limit": settings.time_limit,
        "start_lead_s": {mode: settings.lead_seconds(mode) for mode in settings.modes},
        "quick": settings.quick,
    }


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run(args: argparse.Namespace) -> int:
    """``python -m benchmarks storm --workers N [--redis]``: the exit status."""
    try:
        settings = settings_from(args)
        if "redis" in settings.modes:
            # Before anything starts: a missing piece is said at once, not after the
            # local-state runs.
            require_coordination()
            find_redis_server()
            if importlib.util.find_spec("coredis") is None:
                raise CoordinationMissing("--redis needs coredis: pip install 'coredis>=6,<7'")
    except (UsageError, CoordinationMissing, RedisNotInstalled) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    display = open_display(plain=settings.plain)
    env = _report.environment()
    source = storm.source_revision()
    states = " and ".join(MODE_LABELS[mode] for mode in settings.modes)
    display.note(
        f"workers: {settings.workers} processes x {settings.concurrency} tasks, "
        f"{settings.requests} requests in all, {len(settings.scenarios)} scenario(s), "
        f"{states}; estimate at least "
        f"{storm._format_duration(settings.estimate_seconds())} (each run at most "
        f"{settings.time_limit:g} s); load average {env['load_average']}"
    )
    started = time.monotonic()
    plan = cpu_plan()
    redis_json: dict[str, Any] | None = None
    pinning: dict[str, int | None] = {}
    try:
        with ExitStack() as stack:
            server = stack.enter_context(run_storm_server(cpu=plan.server if plan else None))
            redis_url = None
            if "redis" in settings.modes:
                # Beside the storm server: the services on one core, the clients on another.
                redis = stack.enter_context(running_redis(cpu=plan.server if plan else None))
                redis_url = redis.url
                info = redis.info() or {}
                redis_json = {
                    "url": redis.url,
                    "version": info.get("redis_version"),
                    "cpu": redis.cpu,
                    "coredis": _package_version("coredis"),
                }
            # After the servers started (children inherit our affinity): the workers
            # inherit this pinning, all on the client core as storm's client is.
            workers_pinned = stack.enter_context(pinned(plan.client if plan else None))
            pinning = {
                "server_cpu": server.cpu,
                "redis_cpu": None if redis_json is None else redis_json["cpu"],
                "worker_cpu": plan.client if workers_pinned and plan else None,
            }
            results = trio.run(run_all, server.url, redis_url, settings, display)
    except (RedisNotInstalled, RedisStartError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except WorkerFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started

    print_results(results, settings)
    catalogue = settings.catalogue()
    path = _report.write_json(
        settings.out,
        RESULTS_FILE,
        {
            "benchmark": "storm-workers",
            "settings": _settings_json(settings),
            "scenarios": {
                name: {
                    "description": storm.describe(name, catalogue[name]),
                    **catalogue[name].spec(),
                    "limit_rps": catalogue[name].limit_rps,
                    "initial_allowance": storm.initial_allowance(catalogue[name]),
                }
                for name in settings.scenarios
            },
            "pinning": pinning,
            "redis": redis_json,
            "environment": env,
            "source": source,
            "elapsed_s": round(elapsed, 1),
            "results": results,
        },
    )
    print(f"done in {storm._format_duration(elapsed)}; written: {path}")
    return 0
