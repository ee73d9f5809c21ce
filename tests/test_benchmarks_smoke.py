"""Smoke test of the benchmarks: ``python -m benchmarks overhead --quick`` runs and reports.

It checks that the benchmark works end to end (server subprocess, both clients, the
results file), not how fast anything is: ``--quick`` sizes are too small to measure.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("httpx", "trestfly")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_overhead_quick_writes_results(tmp_path: Path) -> None:
    # The benchmark server needs the "bench" extra; without it there is nothing to smoke.
    pytest.importorskip("uvicorn")
    pytest.importorskip("httptools")

    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "overhead", "--quick", "--out", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output

    results_file = tmp_path / "results.json"
    assert results_file.is_file(), output
    report = json.loads(results_file.read_text(encoding="utf-8"))

    concurrencies = report["settings"]["concurrency"]
    assert concurrencies, report
    assert [level["concurrency"] for level in report["results"]] == concurrencies
    for level in report["results"]:
        for client in CLIENTS:
            figures = level["clients"][client]
            assert _is_number(figures["rps"]) and figures["rps"] > 0, level
            assert _is_number(figures["cpu_us_per_request"]), level
        for key in ("ratio", "overhead_us_per_request", "cpu_overhead_us_per_request"):
            assert _is_number(level[key]), (key, level)
        assert isinstance(level["passed"], bool), level
