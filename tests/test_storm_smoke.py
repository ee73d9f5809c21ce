"""Smoke tests of the storm benchmark: ``python -m benchmarks --quick`` and ``--url``.

They check that the benchmark works end to end (server subprocess, clients, live
progress off a terminal, results JSON, charts, the throughput section), not how fast
anything is: ``--quick`` sizes are too small to measure.  About 20 s in all.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Every run carries every one of these (None where it cannot be known).
METRICS = (
    "scenario",
    "concurrency",
    "client",
    "requests",
    "successes",
    "failures",
    "failure_kinds",
    "complete",
    "timed_out",
    "wall_s",
    "success_rate",
    "limit_rps",
    "initial_allowance",
    "ideal_wall_s",
    "goodput",
    "goodput_reason",
    "vs_ideal",
    "counts_from",
    "arrivals",
    "requests_per_success",
    "throttled_429",
    "unavailable_503",
    "resets",
    "throttled_429_per_success",
    "unavailable_503_per_success",
    "resets_per_success",
    "rejected_per_success",
    "errors_per_success",
    "violations",
    "unjudged",
    "p50_ms",
    "p99_ms",
    "cpu_s",
    "cpu_s_per_1000",
    "client_attempts",
    "client_statuses",
    "client_transport_errors",
    "client_cancelled",
    "outage",
    "timeline",
    "client_timeline",
)
#: Figures every embedded run must have as numbers.
NUMBERS = (
    "wall_s",
    "success_rate",
    "arrivals",
    "requests_per_success",
    "rejected_per_success",
    "violations",
    "p50_ms",
    "p99_ms",
    "cpu_s_per_1000",
)
OUTAGE_KEYS = (
    "duration_s",
    "retry_after_s",
    "periods",
    "requests_during",
    "first_wave",
    "probes",
    "requests_counted",
    "recovery_lag_s",
    "recovery_rps",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _environment() -> dict[str, str]:
    # Requests to 127.0.0.1 must not go through a proxy configured for the outside world.
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def _run_benchmark(
    *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=PROJECT_ROOT,
        env=_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _check_png(path: Path, output: str) -> None:
    assert path.is_file(), output
    with path.open("rb") as image:
        assert image.read(8) == PNG_SIGNATURE, path
    assert path.stat().st_size > 10_000, path  # axes, lines and text, not an empty canvas


def test_quick_run_writes_results_charts_and_throughput(tmp_path: Path) -> None:
    # Tiny numbers on top of --quick: fewer requests per run and one throughput level
    # (about 18 s instead of 27 s); every scenario and client of --quick still runs.
    completed = _run_benchmark(
        "--quick",
        *("--requests", "150", "--rate", "100"),
        *("--throughput-requests", "50", "--throughput-concurrency", "10"),
        *("--out", str(tmp_path)),
        timeout=120,
    )
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output
    assert "estimate about" in completed.stdout, output
    assert "targets:" in completed.stdout, output

    report = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert report["mode"] == "embedded"
    assert report["environment"]["cpu_count"], report["environment"]
    settings = report["settings"]
    runs = report["results"]
    expected = {
        (scenario, concurrency, client)
        for scenario in settings["scenarios"]
        for concurrency in settings["concurrency"]
        for client in settings["clients"]
    }
    assert {(r["scenario"], r["concurrency"], r["client"]) for r in runs} == expected
    assert settings["server"]["latency_jitter"] == 0.1  # the default spread of the waits

    for run in runs:
        label = (run["scenario"], run["concurrency"], run["client"])
        missing = [key for key in METRICS if key not in run]
        assert not missing, (label, missing)
        assert run["counts_from"] == "server", label
        assert run["successes"] > 0, label
        for key in NUMBERS:
            assert _is_number(run[key]), (label, key, run[key])
        # Goodput is a number exactly where the scenario has a limit, else it says why.
        if run["limit_rps"] is not None:
            assert _is_number(run["goodput"]), (label, run["goodput_reason"])
            assert _is_number(run["vs_ideal"]), label
        else:
            assert run["goodput"] is None and run["goodput_reason"], label
        assert run["timeline"]["bucket_seconds"] == 0.1, label
        assert sum(run["client_timeline"]["successes"]) == run["successes"], label
        if run["scenario"] == "outage":
            assert run["outage"] is not None, label
            assert all(key in run["outage"] for key in OUTAGE_KEYS), (label, run["outage"])
            assert run["outage"]["requests_during"] >= 1, label
        else:
            assert run["outage"] is None, label

    targets = report["targets"]
    assert targets, report
    assert {t["scenario"] for t in targets} == set(settings["scenarios"])
    assert all(t["passed"] in (True, False, None) for t in targets)

    assert report["charts"] == [f"storm-{name}.png" for name in settings["scenarios"]]
    for name in report["charts"]:
        _check_png(tmp_path / name, output)

    section = json.loads((tmp_path / "throughput.json").read_text(encoding="utf-8"))
    assert section["results"], section
    for level in section["results"]:
        for client in ("trestfly", "httpx", "h11"):
            figures = level["clients"][client]
            assert _is_number(figures["rps"]) and figures["rps"] > 0, level
            assert _is_number(figures["cpu_us_per_request"]), level


# ------------------------------------------------------------------ --url


class _Handler(http.server.BaseHTTPRequestHandler):
    """200s, except the third request: a 503 without a hint, which every client retries.

    Not a 429: how long a client holds back after a throttle is what the storm scenarios
    measure; here only the client-side counting is under test, and a 503 exercises it
    without making the test's duration depend on the client's rate learning.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, as a real API
    lock: ClassVar[threading.Lock] = threading.Lock()
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        with self.lock:
            self.seen.append(self.path)
            number = len(self.seen)
        if number == 3:
            body, status = b'{"message": "upstream unavailable"}', 503
        else:
            body, status = b'{"ok": true}', 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep the test output quiet


@contextlib.contextmanager
def _recording_server(name: str) -> Iterator[tuple[str, type[_Handler]]]:
    """A loopback HTTP server in a thread whose handler records the paths it is sent."""
    handler = type(name, (_Handler,), {"seen": [], "lock": threading.Lock()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def user_server() -> Iterator[tuple[str, type[_Handler]]]:
    with _recording_server("Handler") as served:
        yield served


def test_url_run_reports_client_side_figures(
    tmp_path: Path, user_server: tuple[str, type[_Handler]]
) -> None:
    root, handler = user_server
    # Credentials in the URL: sent, never printed or written.
    url = root.replace("http://", "http://alice:s3cretPW@") + "/v1/items?page=1&api_key=k3y"

    completed = _run_benchmark(
        "--url", url, "--requests", "40", "--concurrency", "4", "--out", str(tmp_path),
        timeout=60,
    )  # fmt: skip
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output

    # The user's path and query, on every attempt; no server stats were asked for.
    assert handler.seen and set(handler.seen) == {"/v1/items?page=1&api_key=k3y"}, handler.seen

    written = (tmp_path / "results.json").read_text(encoding="utf-8")
    for secret in ("s3cretPW", "k3y"):
        assert secret not in output and secret not in written, secret
    report = json.loads(written)
    assert report["settings"]["url"] == f"{root}/v1/items?page=1&api_key=REDACTED"
    assert report["mode"] == "url"
    assert report["targets"] == []  # nothing to judge without the server's counts
    (run,) = report["results"]
    missing = [key for key in METRICS if key not in run]
    assert not missing, missing
    assert run["client"] == "trestfly" and run["scenario"] == "url"
    assert run["successes"] == 40 and run["complete"], run
    assert run["counts_from"] == "client"
    # One 503 among 41 attempts, counted by the client's own hooks.
    assert run["unavailable_503"] == 1 and run["throttled_429"] == 0, run["client_statuses"]
    assert run["client_statuses"] == {"200": 40, "503": 1}
    assert run["arrivals"] == len(handler.seen) == 41
    assert run["requests_per_success"] == pytest.approx(41 / 40, abs=1e-3)
    for key in ("violations", "unjudged", "timeline", "goodput", "vs_ideal", "outage"):
        assert run[key] is None, key
    assert run["goodput_reason"]
    for key in ("wall_s", "p50_ms", "p99_ms", "cpu_s_per_1000"):
        assert _is_number(run[key]), key
    assert not (tmp_path / "throughput.json").exists()  # needs the embedded server
    _check_png(tmp_path / "storm-url.png", output)


@pytest.fixture
def proxy_server() -> Iterator[tuple[str, type[_Handler]]]:
    """A second loopback server, standing for a proxy in HTTP_PROXY: it records what
    reaches it (a proxied GET arrives with the absolute URL as its path)."""
    with _recording_server("Proxy") as served:
        yield served


def test_url_run_ignores_proxy_environment(
    tmp_path: Path,
    user_server: tuple[str, type[_Handler]],
    proxy_server: tuple[str, type[_Handler]],
) -> None:
    # Every request went to HTTP_PROXY (trestfly and the httpx peers alike) and the
    # report still said 5/5 ok: the run silently measured the proxy, not --url.
    root, handler = user_server
    proxy, proxy_handler = proxy_server
    completed = _run_benchmark(
        "--url", f"{root}/v1/items", "--requests", "5", "--concurrency", "1",
        "--client", "trestfly", "httpx-retry-after", "--no-charts", "--plain",
        "--out", str(tmp_path),
        env={**_environment(), "HTTP_PROXY": proxy, "ALL_PROXY": proxy},
        timeout=60,
    )  # fmt: skip
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output
    assert proxy_handler.seen == [], output
    # The third request is the handler's 503, retried by both clients: 5 + 5 + 1.
    assert len(handler.seen) == 11, handler.seen


def test_embedded_run_ignores_proxy_environment(tmp_path: Path) -> None:
    # An unreachable proxy (port 9, discard) in the environment: the run crashed in
    # install_scenario with an httpx.ConnectError traceback (exit 1), since every client
    # sent its loopback requests to the proxy.  The throughput section runs too.
    unreachable = "http://127.0.0.1:9"
    completed = _run_benchmark(
        "--quick", "--requests", "30", "--rate", "50", "--client", "trestfly",
        "--scenario", "fixed_window", "--throughput-requests", "20",
        "--throughput-concurrency", "2", "--throughput-rounds", "1",
        "--no-charts", "--plain", "--out", str(tmp_path),
        env={**_environment(), "HTTP_PROXY": unreachable, "ALL_PROXY": unreachable},
        timeout=120,
    )  # fmt: skip
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, output
    (run,) = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]
    assert run["successes"] == 30, run
    section = json.loads((tmp_path / "throughput.json").read_text(encoding="utf-8"))
    for level in section["results"]:
        for client in ("trestfly", "httpx"):
            assert level["clients"][client]["rps"] > 0, level


def test_url_run_does_not_follow_a_redirect_to_another_server(
    tmp_path: Path, user_server: tuple[str, type[_Handler]]
) -> None:
    # trestfly followed the 302 (its default follow_redirects=True) and the httpx peers
    # did not: trestfly's 5 requests went to a server other than --url's, counted 5/5 ok
    # with 2 requests per success.  A 3xx is now a failure for every client alike.
    other, other_handler = user_server  # where the 302 points

    class Redirect(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"{other}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        completed = _run_benchmark(
            "--url", f"http://127.0.0.1:{server.server_address[1]}/v1/items",
            "--requests", "5", "--concurrency", "1",
            "--client", "trestfly", "httpx-retry-after", "--no-charts", "--plain",
            "--out", str(tmp_path), timeout=60,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    output = f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    # Every request failed, so the run says so and exits 1 (since d499af0).
    assert completed.returncode == 1, output
    assert "succeeded" in completed.stderr and "given up: trestfly c=1" in completed.stdout
    assert other_handler.seen == [], output
    runs = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]
    assert {run["client"]: run["successes"] for run in runs} == {
        "trestfly": 0,
        "httpx-retry-after": 0,
    }


# ------------------------------------------------------------------ the charts


def _chart_run(client: str, successes: int, *, rejected: int) -> dict[str, Any]:
    """One run's figures as the charts read them (a rate-limited scenario, N=300)."""
    per = (lambda count: count / successes) if successes else (lambda count: None)
    return {
        "client": client,
        "requests": 300,
        "successes": successes,
        "complete": successes == 300,
        "wall_s": 20.0 if successes < 300 else 2.0,
        "limit_rps": 200.0,
        "throttled_429": rejected,
        "unavailable_503": 0,
        "resets": 0,
        "throttled_429_per_success": per(rejected),
        "unavailable_503_per_success": per(0),
        "resets_per_success": per(0),
        "violations": 0,
        "outage": None,
        "timeline": None,
        "client_timeline": {"bucket_seconds": 0.1, "successes": [30] * (successes // 30)},
    }


def test_a_client_that_never_succeeded_is_drawn_worst_not_best() -> None:
    import warnings

    import numpy
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from benchmarks import _chart

    good = _chart_run("trestfly", 300, rejected=3)
    nothing = _chart_run("httpx-immediate", 0, rejected=812)
    figure = Figure()
    goodput, rejections = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # legend() without handles warned
        _chart._goodput_axes(goodput, [good, nothing], 10)
        _chart._rejection_axes(rejections, [good, nothing], 10)
        # Alone, in a scenario without a limit (no reference lines to label either).
        alone = Figure().add_subplot()
        _chart._goodput_axes(alone, [{**nothing, "limit_rps": None}], 10)

    # Its bar reaches the top, above the client that succeeded, and says why.
    bars = [bar for bar in rejections.patches if isinstance(bar, Rectangle)]
    heights = {round(bar.get_x() + bar.get_width() / 2): bar.get_height() for bar in bars}
    assert heights[1] == rejections.get_ylim()[1] > heights[0]
    texts = [text.get_text() for text in rejections.texts]
    assert any("∞ (0/300 ok)" in text and "812 rejected" in text for text in texts), texts
    assert "no rejections" not in texts
    # Its goodput is a line at 0 over the run, not missing from the chart.
    for axes in (goodput, alone):
        (line,) = [
            line for line in axes.get_lines() if line.get_label() == "httpx-immediate (incomplete)"
        ]
        xs, ys = (numpy.asarray(data, dtype=float) for data in line.get_data())
        assert set(ys.tolist()) == {0.0} and xs.max() == 20.0
        assert axes.get_legend() is not None


def test_a_client_without_rejections_beside_one_that_never_succeeded() -> None:
    import warnings

    from matplotlib.figure import Figure

    from benchmarks import _chart

    clean = _chart_run("trestfly", 300, rejected=0)
    nothing = _chart_run("httpx-immediate", 0, rejected=812)
    axes = Figure().add_subplot()
    _chart._rejection_axes(axes, [clean, nothing], 10)
    texts = [text.get_text() for text in axes.texts]
    # The infinite bar is a rejection: "no rejections" would say the opposite.
    assert "no rejections" not in texts and any("∞" in text for text in texts), texts
    _chart._rejection_axes(Figure().add_subplot(), [clean], 10)  # alone: no rejections
    # A complete run with no timeline draws no line: no legend(), which would warn.
    empty = Figure().add_subplot()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bare = {**clean, "client_timeline": None, "limit_rps": None}  # no line to label
        _chart._goodput_axes(empty, [bare], 10)
    assert empty.get_legend() is None


def test_titles_with_brackets_are_printed_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    # A --url's query is no rich markup: "[/a,/z]" raised MarkupError (a closing tag),
    # and "filter[status]" lost its brackets.
    from benchmarks import storm
    from benchmarks._live import RichDisplay

    title = "GET http://127.0.0.1:1/x?range=[/a,/z]&filter[status]=open"
    storm.print_table(title, ["client", "ok"], [["trestfly", "1"]])
    display = RichDisplay()
    with display.section(title):
        pass
    out = "".join(capsys.readouterr().out.split())  # the table wraps its title
    assert out.count("filter[status]=open") == 2 and out.count("[/a,/z]") == 2, out
