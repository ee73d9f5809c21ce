"""Smoke tests of the benchmarks: ``python -m benchmarks overhead --quick`` and
``python -m benchmarks crawl --quick`` run and report.

They check that each benchmark works end to end (server subprocess, the clients, the
results file), not how fast anything is: ``--quick`` sizes are too small to measure.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("httpx", "trestfly")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _run_quick(command: str, out: Path, results_name: str, *extra: str) -> dict[str, Any]:
    """Run ``python -m benchmarks COMMAND --quick EXTRA --out OUT``; return its results file."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", command, "--quick", *extra, "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output
    results_file = out / results_name
    assert results_file.is_file(), output
    report: dict[str, Any] = json.loads(results_file.read_text(encoding="utf-8"))
    assert report["benchmark"] == command, report
    assert report["settings"]["quick"] is True, report
    return report


def test_overhead_quick_writes_results(tmp_path: Path) -> None:
    # c=1 and c=100 are the two that both of #3's checks need; one round instead of two.
    # Bare httpx opening a pool of 50 or 100 connections under Trio is what takes the
    # time (about 10 s instead of 19 s).
    report = _run_quick(
        "overhead", tmp_path, "overhead.json", "--concurrency", "1", "100", "--rounds", "1"
    )

    assert report["settings"]["concurrency"] == [1, 100], report["settings"]
    assert report["settings"]["rounds"] == 1, report["settings"]
    # Every concurrency with warm pools, then c=100 again with fresh clients.
    assert [(level["concurrency"], level["protocol"]) for level in report["results"]] == [
        (1, "warm pools"),
        (100, "warm pools"),
        (100, "fresh clients"),
    ]
    for level in report["results"]:
        for client in CLIENTS:
            figures = level["clients"][client]
            assert _is_number(figures["rps"]) and figures["rps"] > 0, level
            assert _is_number(figures["cpu_us_per_request"]), level
            # Both clients get as many connections as worker tasks.
            assert figures["connections"] == level["concurrency"], (client, figures)
        for key in ("ratio", "overhead_us_per_request", "cpu_overhead_us_per_request"):
            assert _is_number(level[key]), (key, level)
        assert isinstance(level["passed"], bool), level
    assert [level["target_ratio"] for level in report["results"]] == [0.9, 0.9, 3.0]

    # One trestfly/httpx check per level, then #3's scaling check (point 8; c=100 vs c=1, warm).
    checks = report["checks"]
    assert [(check["issue"], check["target"]) for check in checks] == [
        ("#2", 0.9),
        ("#2", 0.9),
        ("#3", 3.0),
        ("#3", 0.7),
    ]
    for check in checks:
        assert _is_number(check["value"]) and _is_number(check["by_cpu"]), check
        assert check["passed"] is (check["value"] >= check["target"]), check
    assert report["passed"] is all(check["passed"] for check in checks)


def test_crawl_quick_writes_results(tmp_path: Path) -> None:
    report = _run_quick("crawl", tmp_path, "crawl.json")

    settings, results = report["settings"], report["results"]
    assert settings["records"] == 2000 and settings["pages"] == 20, settings
    for mode in ("sequential", "prefetch", "prefetch+box", "transfer"):
        assert _is_number(results["seconds"][mode]) and results["seconds"][mode] > 0, mode
        assert _is_number(results["records_per_second"][mode]), mode
    for key in ("speedup", "ideal_ratio", "box_cost_ratio", "ideal_seconds"):
        assert _is_number(results[key]), (key, results)
    assert set(results["passed"]) == {"speedup", "ideal_ratio"}, results
