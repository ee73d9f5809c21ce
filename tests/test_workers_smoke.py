"""Smoke tests of the storm benchmark's ``--workers`` mode and of the local Redis launcher.

The workers test runs ``python -m benchmarks storm --workers 2`` with tiny numbers and
local state only: it checks that the worker processes start together, report, and add
up in ``workers.json``, not how fast anything is.  The launcher test starts, stops and
restarts a real ``redis-server`` on 127.0.0.1 (CI installs it; without it the test is
skipped and says why).  About 10 s in all.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_storm_smoke import METRICS, NUMBERS

from benchmarks.redis_server import RedisNotInstalled, running_redis

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: What every aggregate row adds to storm's figures.
AGGREGATE_KEYS = (
    "mode",
    "workers",
    "total_concurrency",
    "redis_prefix",
    "late_workers",
    "max_start_lag_s",
    "per_worker",
)
#: storm's figures of one run, which each per-worker row has too.
WORKER_METRICS = tuple(key for key in METRICS if key not in ("scenario", "concurrency", "client"))
#: What every per-worker row adds to storm's figures.
WORKER_KEYS = ("worker", "client_id", "start_lag_s", "ready_margin_s")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _run_benchmark(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # Requests to 127.0.0.1 must not go through a proxy configured for the outside world.
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "storm", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_workers_local_run_writes_every_metric(tmp_path: Path) -> None:
    # A limit of 20/s, so that 40 requests go beyond the first window and the bucket's
    # burst and both scenarios throttle; 5 tasks per worker.
    completed = _run_benchmark(
        "--workers", "2", "--requests", "40", "--concurrency", "5", "--rate", "20",
        "--plain", "--out", str(tmp_path),
        timeout=60,
    )  # fmt: skip
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output
    assert "aggregate" in completed.stdout and "per worker" in completed.stdout, output

    report = json.loads((tmp_path / "workers.json").read_text(encoding="utf-8"))
    assert report["benchmark"] == "storm-workers"
    settings = report["settings"]
    assert settings["workers"] == 2 and settings["concurrency_per_worker"] == 5, settings
    assert settings["requests_per_worker"] == [20, 20], settings
    assert settings["modes"] == ["local"], settings
    assert report["redis"] is None
    assert report["environment"]["cpu_count"], report["environment"]
    runs = report["results"]
    assert [(run["scenario"], run["mode"]) for run in runs] == [
        ("fixed_window", "local"),
        ("token_bucket", "local"),
    ]

    for run in runs:
        label = run["scenario"]
        missing = [key for key in (*METRICS, *AGGREGATE_KEYS) if key not in run]
        assert not missing, (label, missing)
        assert run["counts_from"] == "server", label
        assert run["requests"] == 40 and run["successes"] > 0, label
        for key in (*NUMBERS, "goodput", "vs_ideal", "max_start_lag_s"):
            assert _is_number(run[key]), (label, key, run[key])
        assert run["throttled_429"] > 0, (label, "the scenario never throttled")
        workers = run["per_worker"]
        assert [worker["client_id"] for worker in workers] == ["local-0", "local-1"], label
        for worker in workers:
            missing = [key for key in (*WORKER_METRICS, *WORKER_KEYS) if key not in worker]
            assert not missing, (label, worker["client_id"], missing)
            assert worker["counts_from"] == "server", (label, worker["client_id"])
        # The aggregate is the sum of its workers, counted by the client and the server.
        for key in ("successes", "failures", "arrivals", "throttled_429", "violations"):
            assert run[key] == sum(worker[key] for worker in workers), (label, key)
        assert run["client_attempts"] == sum(w["client_attempts"] for w in workers), label
        assert sum(run["client_timeline"]["successes"]) == run["successes"], label
        # Together from one start instant: the wall time covers every worker's.
        assert run["wall_s"] >= max(worker["wall_s"] for worker in workers), label


def test_workers_rejects_options_it_cannot_honour() -> None:
    completed = _run_benchmark("--workers", "2", "--concurrency", "5", "10", timeout=30)
    assert completed.returncode == 2, completed.stderr
    assert "one --concurrency value" in completed.stderr


# ------------------------------------------------------------------ redis_server


def _ping(port: int) -> bytes | None:
    """PING in raw RESP, independently of the module under test; None when refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64)
    except OSError:
        return None


@pytest.mark.usefixtures("redis_server_installed")
def test_running_redis_starts_stops_and_restarts_on_the_same_port() -> None:
    with running_redis() as redis:
        port, first_pid = redis.port, redis.pid
        assert redis.url == f"redis://127.0.0.1:{port}/0"
        assert redis.running and first_pid is not None
        assert _ping(port) == b"+PONG\r\n"
        directory = redis.directory
        assert directory.is_dir()

        redis.stop()
        assert not redis.running and redis.pid is None
        assert _ping(port) is None  # refused: nothing listens any more
        redis.stop()  # stopping twice is harmless

        redis.start()
        assert redis.port == port and redis.running
        assert redis.pid is not None and redis.pid != first_pid
        assert _ping(port) == b"+PONG\r\n"
        assert (redis.info() or {}).get("redis_version")
    # Gone on exit, with its temporary directory and everything Redis wrote there.
    assert not redis.running
    assert _ping(port) is None
    assert not directory.exists()


def test_running_redis_without_the_binary_says_how_to_install_it() -> None:
    with (
        pytest.raises(RedisNotInstalled, match="apt-get install redis-server"),
        running_redis(executable="/nonexistent/redis-server"),
    ):
        pass
