"""The benchmark commands refuse what they cannot run before anything starts: a usage
error (status 2, the option named) instead of a traceback after the run."""

from __future__ import annotations

import argparse
import math
import socket
from pathlib import Path
from typing import Any

import pytest
import trio

from benchmarks import coordination, crawl, overhead, storm, throughput, workers
from benchmarks.__main__ import build_parser, main
from benchmarks._cli import UsageError
from trestfly import errors


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default --out (bench-results/) is created when the options are read.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every benchmark server start fails the test: a refused command line must stop
    before it (with the old code, these commands ran and crashed at the end)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a server was started for a command line that must be refused")

    monkeypatch.setattr(storm, "run_storm_server", refuse)
    monkeypatch.setattr(workers, "run_storm_server", refuse)
    monkeypatch.setattr(crawl, "run_pages_server", refuse)
    monkeypatch.setattr(overhead, "run_server", refuse)
    monkeypatch.setattr(coordination, "run_server", refuse)
    monkeypatch.setattr(coordination, "running_redis", refuse)


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command line; it must exit with status 2. Its stderr."""
    try:
        status = main(argv)
    except SystemExit as exited:  # argparse's usage error
        status = exited.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ extreme numbers

HUGE = "1" + "0" * 400  # more than a float can hold


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # OverflowError (int too large to convert to float) dividing it by --rate.
        (["--max-in-flight", HUGE], "argument --max-in-flight: must be at most 1000000000"),
        # OverflowError in the estimate or once the run had started.
        (["--requests", HUGE], "argument --requests: must be at most 1000000000"),
        (["--concurrency", HUGE], "argument --concurrency: must be at most 1000000000"),
        (["--throughput-requests", HUGE], "argument --throughput-requests: must be at most"),
        # ceil(1e308 / 0.25) = ceil(inf) in the progress sampler, after the server started.
        (["--time-limit", "1e308"], "argument --time-limit: must be at most 1e+06"),
        (["--outage-seconds", "1e308"], "argument --outage-seconds: must be at most 1e+09"),
        # An outage of no time: the outage scenario ran with no outage, judged as one.
        (["--outage-seconds", "0"], "argument --outage-seconds: must be > 0"),
        (["--rate", "1e308"], "argument --rate: must be at most 1e+09"),
        # A bucket's 1 / rate overflowed: the server failed on every refusal uncounted,
        # and goodput read inf (a PASS, and "Infinity" in results.json).
        (["--rate", "1e-310"], "argument --rate: must be at least 0.001/s"),
        # 25,000 connections opened at once: ConnectError after 40 s, the run lost.
        (["--throughput-concurrency", "25000"], "must be at most 1000 (one connection each"),
        (["overhead", "--requests", HUGE], "argument --requests: must be at most 1000000000"),
    ],
)
def test_huge_numbers_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(["--quick", *argv] if argv[0].startswith("-") else argv, capsys)
    assert message in err
    assert HUGE not in err  # the message does not print 400 digits back


def test_the_largest_numbers_are_accepted() -> None:
    args = _parse("storm", "--requests", "1000000000", "--time-limit", "1e6", "--rate", "1e9")
    assert (args.requests, args.time_limit, args.rate) == (10**9, 1e6, 1e9)


def test_the_bucket_depth_and_flakiness_are_server_options() -> None:
    # The issue's "server parameters": the bucket's burst and flaky's p% were fixed.
    settings = storm.settings_from(
        _parse("storm", "--burst", "3", "--flaky-503", "0.25", "--flaky-reset", "0")
    )
    catalogue = settings.catalogue()
    assert catalogue["token_bucket"].burst == 3 == catalogue["token_bucket_int"].burst
    assert (catalogue["flaky"].p_503, catalogue["flaky"].p_reset) == (0.25, 0.0)
    defaults = storm.settings_from(_parse("storm")).catalogue()
    assert defaults["token_bucket"].burst == 10  # a tenth of the default rate, 100/s
    assert (defaults["flaky"].p_503, defaults["flaky"].p_reset) == (0.1, 0.02)
    # --workers ran the defaults whatever these said.
    argv = ("--burst", "3", "--flaky-503", "0.25", "--flaky-reset", "0")
    server = workers.settings_from(_parse("storm", "--workers", "2", *argv)).server
    assert (server.burst, server.flaky_503, server.flaky_reset) == (3, 0.25, 0.0)


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--flaky-503", "1.5"], "argument --flaky-503: must be at most 1"),
        (["--flaky-reset", "-0.1"], "argument --flaky-reset: must be >= 0"),
        (["--flaky-503", "0.7", "--flaky-reset", "0.5"], "--flaky-503 + --flaky-reset must be"),
        (["--burst", "0"], "argument --burst"),
    ],
)
def test_bad_flakiness_and_depth_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _refused(["--quick", *argv], capsys)


def test_the_targets_say_when_they_are_not_judged_at_the_issues_settings() -> None:
    issue_argv = ["storm", "--requests", "2000", "--concurrency", "10", "100", "--rate", "100"]
    issue = storm.settings_from(_parse(*issue_argv))
    assert storm.at_issue_settings(issue)
    assert storm.at_issue_settings(storm.settings_from(_parse(*issue_argv, "--rate", "50")))
    for argv in (
        ["storm"],  # N=1000
        ["storm", "--requests", "2000", "--concurrency", "10"],
        ["storm", "--requests", "2000", "--concurrency", "10", "100", "--rate", "200"],
        ["storm", "--requests", "2000", "--concurrency", "10", "100", "--scenario", "flaky"],
        # The scenarios' own parameters, the time limit and the clients count too: these
        # said nothing, and results.json claimed the issue's settings.
        [*issue_argv, "--window", "10"],
        [*issue_argv, "--burst", "2000"],
        [*issue_argv, "--outage-seconds", "1"],
        [*issue_argv, "--flaky-503", "0"],
        [*issue_argv, "--latency-ms", "5"],
        [*issue_argv, "--time-limit", "1"],
        [*issue_argv, "--client", "trestfly"],
    ):
        settings = storm.settings_from(_parse(*argv))
        assert not storm.at_issue_settings(settings), argv
        assert storm.issue_setting_differences(settings), argv


# ------------------------------------------------------------------ the throughput section


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("section", [[], ["--throughput-only"]])
def test_a_throughput_latency_above_the_sections_is_a_usage_error(
    section: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # 70,000 crashed with "ValueError: latency_ms must be <= 60000" after the whole
    # storm; 60,000 was taken, and estimated at 624 minutes.
    for latency in ("70000", "60000", "1001"):
        err = _refused(["--quick", *section, "--throughput-latency-ms", "0", latency], capsys)
        assert "--throughput-latency-ms must be at most 1000 (" in err
        assert f"got {latency}" in err
    # The largest the section takes is accepted.
    settings = storm.settings_from(_parse("storm", "--throughput-latency-ms", "1000"))
    assert settings.throughput_settings is not None
    assert settings.throughput_settings.latencies_ms == (1000.0,)


def test_a_throughput_batch_with_latency_stays_near_its_two_seconds() -> None:
    settings = throughput.Settings(
        requests=2000, concurrency=(1, 10, 100), latencies_ms=(20.0, 1000.0), rounds=3
    )
    assert settings.batch(1, 0.0) == 2000  # no latency: N
    assert settings.batch(100, 20.0) == 2000  # 2 s would hold 10,000
    assert settings.batch(1, 20.0) == 100  # 2 s
    assert settings.batch(1, 1000.0) == 2  # 2 s (at least 50 took 50 s)
    assert settings.batch(10, 1000.0) == 20
    assert settings.estimate_seconds() < 10 * 60


def test_throughput_values_given_twice_run_once() -> None:
    settings = storm.settings_from(
        _parse(
            "storm",
            "--throughput-concurrency",
            "1",
            "10",
            "1",
            "--throughput-latency-ms",
            "0",
            "0",
        )
    )
    assert settings.throughput_settings is not None
    assert settings.throughput_settings.concurrency == (1, 10)
    assert settings.throughput_settings.latencies_ms == (0.0,)


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    "extra",
    [
        ["--scenario", "outage"],
        ["--client", "stamina"],
        ["--requests", "50"],
        ["--concurrency", "3"],
        ["--latency-ms", "20"],  # the storm's; the section has --throughput-latency-ms
        ["--time-limit", "5"],
        ["--rate", "50"],
        ["--max-in-flight", "5"],
    ],
)
def test_throughput_only_refuses_the_storm_options_it_would_ignore(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # They were accepted, and the run measured only the throughput section, with its
    # own clients and sizes: nothing said the option did nothing.
    err = _refused(["--quick", "--throughput-only", *extra], capsys)
    assert f"{extra[0]}: " in err and "--throughput-only" in err, err
    # What the section does use is still accepted.
    settings = storm.settings_from(
        _parse("storm", "--throughput-only", "--latency-jitter", "0", "--throughput-rounds", "2")
    )
    assert settings.throughput_settings is not None and not settings.storm
    assert settings.throughput_settings.rounds == 2
    assert settings.throughput_settings.latency_jitter == 0


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    "extra",
    [
        ["--throughput-requests", "5"],
        ["--throughput-concurrency", "3"],
        ["--throughput-latency-ms", "20"],
        ["--throughput-rounds", "2"],
    ],
)
def test_url_refuses_the_throughput_options_as_other_embedded_server_options(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # --rate, --scenario, ... were refused with --url; the throughput section's options,
    # which measure the embedded server too, were silently dropped.
    err = _refused(["--url", "http://127.0.0.1:1/x", *extra], capsys)
    assert f"{extra[0]}: options of the embedded server, not of --url" in err, err


# ------------------------------------------------------------------ --out


@pytest.fixture
def under_a_file(tmp_path: Path) -> Path:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n", encoding="utf-8")
    return a_file / "results"


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    "command",
    [
        ["--quick", "--no-charts"],
        ["storm", "--workers", "2", "--quick"],
        ["crawl", "--quick"],
        ["overhead", "--quick"],
    ],
)
def test_an_out_that_cannot_be_created_is_a_usage_error(
    command: list[str], under_a_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It failed with NotADirectoryError when the results were written, after the run.
    err = _refused([*command, "--out", str(under_a_file)], capsys)
    assert f"--out {under_a_file}: cannot create it" in err
    # A regular file is no --out either.
    err = _refused([*command, "--out", str(under_a_file.parent)], capsys)
    assert f"--out {under_a_file.parent} is not a directory" in err


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["--quick", "--no-charts"], "results.json"),
        (["--quick", "--no-charts"], "results.json.partial"),  # written first, renamed
        (["--quick", "--scenario", "outage"], "storm-outage.png"),
        (["--quick", "--throughput-only"], "throughput.json"),
        (["storm", "--workers", "2", "--quick"], "workers.json"),
        (["crawl", "--quick"], "crawl.json"),
        (["overhead", "--quick"], "overhead.json"),
    ],
)
def test_a_directory_named_as_an_output_file_is_a_usage_error(
    command: list[str], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the folder was checked: the run then ended in IsADirectoryError when the
    # results were written, after every measurement.
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    err = _refused([*command, "--out", str(out)], capsys)
    assert f"--out {out}: {name} exists and is not a regular file" in err


def test_the_files_of_an_earlier_run_are_no_obstacle(tmp_path: Path) -> None:
    # Regular files of those names are replaced, as before.
    for name in ("results.json", "throughput.json", "storm-outage.png"):
        (tmp_path / name).write_text("an earlier run\n", encoding="utf-8")
    storm.settings_from(_parse("storm", "--quick", "--out", str(tmp_path)))


@pytest.mark.parametrize(
    ("command", "settings_from"),
    [
        (["storm"], storm.settings_from),
        (["storm", "--workers", "2"], workers.settings_from),
        (["crawl"], crawl.settings_from),
        (["overhead"], overhead.settings_from),
    ],
)
def test_the_out_directory_is_created_when_the_options_are_read(
    command: list[str], settings_from: Any, tmp_path: Path
) -> None:
    out = tmp_path / "deep" / "results"
    settings_from(_parse(*command, "--out", str(out)))
    assert out.is_dir() and not any(out.iterdir())  # the probe leaves nothing behind


# ------------------------------------------------------------------ --workers


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--scenario", "concurrency_cap", "--max-in-flight", "100", "--rate", "1"],
            "concurrency_cap's hold",
        ),
        (["--latency-ms", "70000"], "--latency-ms must be at most 60000"),
        # Was silently a limit of 2 per window.
        (["--rate", "2.5"], "--rate x --window must be a whole number"),
        # The workers run no throughput section: these were silently dropped.
        (["--throughput-requests", "50"], "--throughput-requests: --workers runs no"),
        (["--throughput-rounds", "2"], "--throughput-rounds: --workers runs no"),
    ],
)
def test_workers_refuse_what_the_storm_refuses(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    with pytest.raises(UsageError, match=message):
        workers.settings_from(_parse("storm", "--workers", "2", *argv))
    assert message in _refused(["storm", "--workers", "2", *argv], capsys)


def test_workers_run_a_scenario_given_twice_once() -> None:
    # It ran twice, as the storm did not: workers.json's "scenarios" then held one entry
    # for two result rows.
    settings = workers.settings_from(
        _parse("storm", "--workers", "2", "--scenario", "fixed_window", "outage", "fixed_window")
    )
    assert settings.scenarios == ("fixed_window", "outage")


# ------------------------------------------------------------------ crawl and overhead


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["crawl", "--quick", "--page-size", "2000"],
            "argument --page-size: must be at most 1000 (the server's largest page), got 2000",
        ),
        (
            ["crawl", "--quick", "--latency-ms", "20000"],
            "argument --latency-ms: must be at most 10000 (the server's longest delay)",
        ),
        (
            ["overhead", "--quick", "--concurrency", "1", "--delay-ms", "20000"],
            "argument --delay-ms: must be at most 10000 (the server's longest delay)",
        ),
        (["crawl", "--page-size", "0"], "argument --page-size: must be >= 1, got 0"),
        (["overhead", "--delay-ms", "-1"], "argument --delay-ms: must be >= 0, got -1"),
    ],
)
def test_crawl_and_overhead_values_the_server_refuses_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _refused(argv, capsys)


def test_crawl_and_overhead_take_the_servers_bounds() -> None:
    args = _parse("crawl", "--page-size", "1000", "--latency-ms", "10000")
    assert (args.page_size, args.latency_ms) == (1000, 10000)
    assert _parse("overhead", "--delay-ms", "10000").delay_ms == 10000


# ------------------------------------------------------------------ coordination


def _coordination_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``python -m benchmarks.coordination`` with ``argv``: status 2. Its stderr."""
    try:
        status = coordination.main(argv)
    except SystemExit as exited:  # argparse's usage error
        status = exited.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err, err
    return err


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # After the whole run: statistics.StatisticsError (no rounds to take a median of).
        (["--rounds", "0"], "argument --rounds: must be >= 1, got 0"),
        # After the run: ZeroDivisionError.
        (["--requests", "0"], "argument --requests: must be >= 1, got 0"),
        # Ran, and wrote negative req/s to coordination.json.
        (["--requests", "-5"], "argument --requests: must be >= 1, got -5"),
        # trestfly's UnexpectedValueError traceback once the servers were up.
        (["--concurrency", "1", "0"], "argument --concurrency: must be >= 1, got 0"),
    ],
)
def test_coordination_refuses_bad_values_before_starting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _coordination_refused([*argv, "--out", "out"], capsys)


@pytest.mark.usefixtures("no_server")
def test_coordination_checks_out_before_starting(
    under_a_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It failed with FileExistsError / NotADirectoryError after the whole run.
    err = _coordination_refused(["--out", str(under_a_file.parent)], capsys)
    assert f"--out {under_a_file.parent} is not a directory" in err
    err = _coordination_refused(["--out", str(under_a_file)], capsys)
    assert f"--out {under_a_file}: cannot create it" in err
    out = tmp_path / "out"
    (out / "coordination.json").mkdir(parents=True)
    err = _coordination_refused(["--out", str(out)], capsys)
    assert f"--out {out}: coordination.json exists and is not a regular file" in err


# ------------------------------------------------------------------ the estimate


def test_the_estimate_counts_each_run_at_most_the_time_limit() -> None:
    settings = storm.settings_from(
        _parse("storm", "--requests", "100000", "--time-limit", "1", "--no-throughput")
    )
    runs = len(settings.scenarios) * len(settings.concurrency) * len(settings.clients)
    # Every run would take minutes; each is cut after 1 s (plus opening the client and
    # fetching the stats).  Before, this printed about 5 hours.
    assert settings.estimate_seconds() == pytest.approx(
        2.0 + runs * (1 + storm._RUN_OVERHEAD_SECONDS)
    )
    # A time limit that cuts nothing changes nothing.
    generous = storm.settings_from(_parse("storm", "--no-throughput", "--time-limit", "1e6"))
    default = storm.settings_from(_parse("storm", "--no-throughput"))
    assert generous.estimate_seconds() == pytest.approx(default.estimate_seconds())


# ------------------------------------------------------------------ options of one scenario


def test_a_scenarios_checks_apply_only_when_it_runs() -> None:
    # Refused for concurrency_cap's hold (10 / 0.1 = 100 s), which this run never used.
    slow_window = storm.settings_from(
        _parse("storm", "--scenario", "fixed_window", "--rate", "0.1", "--window", "10")
    )
    assert list(slow_window.catalogue()) == ["fixed_window"]
    # Refused for the windows' 1.5 requests per window, and no window runs.
    outage = storm.settings_from(
        _parse("storm", "--scenario", "outage", "--rate", "0.15", "--window", "10")
    )
    assert list(outage.catalogue()) == ["outage"]
    with pytest.raises(UsageError, match="concurrency_cap's hold"):
        storm.settings_from(
            _parse("storm", "--scenario", "concurrency_cap", "--rate", "0.1", "--window", "10")
        )
    with pytest.raises(UsageError, match="whole number of requests per window"):
        storm.settings_from(
            _parse("storm", "--scenario", "headers_only", "--rate", "0.15", "--window", "10")
        )


def test_throughput_options_with_no_throughput_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # They were accepted and dropped without a word.
    err = _refused(["storm", "--no-throughput", "--throughput-requests", "5"], capsys)
    assert "--throughput-requests: --no-throughput runs no throughput section" in err


async def test_no_more_workers_start_than_there_are_requests() -> None:
    # --concurrency 1000000000 --requests 5 started a billion tasks before the first
    # checkpoint, past any time limit.
    workers_seen = []

    async def fetch() -> None:
        nursery = trio.lowlevel.current_task().parent_nursery
        assert nursery is not None
        workers_seen.append(len(nursery.child_tasks))
        await trio.lowlevel.checkpoint()

    with trio.fail_after(30):
        run = await storm.drive(fetch, requests=5, concurrency=10_000, time_limit=20.0)
    assert run.successes == len(workers_seen) == 5 and not run.timed_out
    assert max(workers_seen) <= 5


async def test_the_time_limit_is_no_deadline_a_client_can_see(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # move_on_after(time_limit) was a deadline every client ran under: trestfly reads
    # it (a wait at the gate that would outlast it fails at once), the peers do not, so
    # a run cut short by --time-limit showed trestfly giving up on every request.
    deadlines: list[float] = []

    async def fetch() -> None:
        deadlines.append(trio.current_effective_deadline())
        await trio.sleep(10)

    run = await storm.drive(fetch, requests=3, concurrency=3, time_limit=2.0)
    assert deadlines == [math.inf] * 3
    assert run.timed_out and run.successes == run.failures == 0


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("command", [[], ["crawl"], ["overhead"], ["storm", "--workers", "2"]])
def test_an_empty_out_is_a_usage_error(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Path("") is the current directory: results.json was written there, unasked.
    err = _refused([*command, "--out", ""], capsys)
    assert "argument --out: expected a directory, got an empty path" in err
    assert list(tmp_path.iterdir()) == []


def test_the_estimate_counts_the_servers_latency_and_an_outages_retry_after() -> None:
    # 50 requests one at a time at 200 ms were estimated at 3 s and took 11; a 1 s
    # outage announcing Retry-After: 15 at 4 s, and took 16.
    slow = storm.settings_from(
        _parse(
            "storm", "--scenario", "token_bucket", "--latency-ms", "200", "--concurrency", "1",
            "--requests", "50", "--client", "trestfly", "--no-throughput",
        )
    )  # fmt: skip
    assert slow.estimate_seconds() >= 50 * 0.2
    late = storm.settings_from(
        _parse(
            "storm", "--scenario", "outage", "--outage-seconds", "1", "--retry-after", "15",
            "--requests", "50", "--client", "trestfly", "--no-throughput",
        )
    )  # fmt: skip
    assert late.estimate_seconds() >= 1 + 15
    # At no latency, one at a time is no slower than many at once.
    assert storm.estimate_run_seconds(
        late.catalogue()["outage"], 50, 1
    ) == storm.estimate_run_seconds(late.catalogue()["outage"], 50, 100)


def test_the_quick_run_is_estimated_under_its_30_seconds() -> None:
    # The README's --quick runs under 30 s (18-21 s measured); its estimate said 33.
    quick = storm.settings_from(_parse("storm", "--quick"))
    assert quick.estimate_seconds() < 30


def test_the_clients_are_sized_for_the_workers_that_start() -> None:
    # A session opened with max_concurrency=1000000000 for 50 requests never got to its
    # first one: 2.3 GB of connection pools.
    settings = storm.settings_from(
        _parse("storm", "--concurrency", "1000000000", "10", "--requests", "50")
    )
    assert [storm.workers(c, settings) for c in settings.concurrency] == [50, 10]


def test_a_crawl_fetches_no_more_pages_at_once_than_there_are() -> None:
    # --prefetch 10000000 started ten million transfer workers for 20 pages, and read
    # "0.06x an ideal client" from an ideal waiting 20/10,000,000 of a latency.
    args = _parse("crawl", "--quick", "--prefetch", "10000000")
    settings = crawl.Settings(
        records=2000, page_size=100, latency_ms=20, prefetch=args.prefetch, rounds=1,
        out=Path("x"),
    )  # fmt: skip
    assert settings.in_flight == settings.pages == 20
    assert settings.ideal_wait_s == pytest.approx(0.020)


async def test_a_request_given_up_is_recorded_with_why() -> None:
    # One request of 2,000 given up in a protocol run, and nothing said why.
    calls = 0

    async def fetch() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            error = errors.ServiceUnavailableError.__new__(errors.ServiceUnavailableError)
            error.stop_reason = errors.StopReason.BUDGET
            raise error
        if calls == 3:
            raise ValueError("not a trestfly error")

    with trio.fail_after(30):
        run = await storm.drive(fetch, requests=4, concurrency=1, time_limit=20.0)
    assert run.failures == 2
    assert run.failure_kinds == {
        "ServiceUnavailableError: retry budget exhausted (many requests failing together)": 1,
        "ValueError": 1,
    }


def test_a_url_nothing_answers_says_why_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "0/5 !", a row of dashes and exit status 0: the reason only in results.json.
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["--url", f"http://127.0.0.1:{port}/x", "--requests", "2", "--concurrency", "1"]
    code = storm.run(_parse("storm", *argv, "--plain", "--no-charts", "--out", str(tmp_path)))
    captured = capsys.readouterr()
    assert code == 1
    assert "given up: trestfly c=1: ConnectionError: retries exhausted (ConnectError) x2" in (
        captured.out
    )
    assert f"no request to http://127.0.0.1:{port}/x succeeded" in captured.err
