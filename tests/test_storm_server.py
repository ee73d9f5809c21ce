"""The benchmarks' throttling server: pure scenarios on explicit clocks, violation
judging, the ASGI app in-process, the harness's ThrottleMarker, and one run of the real
subprocess server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

# The benchmarks are not an installed package: import them from the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _scenarios, storm
from benchmarks._scenarios import (
    SCENARIOS,
    VIOLATION_TOLERANCE,
    ConcurrencyCap,
    Decision,
    FixedWindow,
    Flaky,
    HeadersOnly,
    Outage,
    Outcome,
    Referee,
    StormState,
    Timeline,
    TokenBucket,
    Unlimited,
    ceil_millis,
    ceil_seconds,
    scenario_from_spec,
)
from benchmarks.storm_server import (
    ThrottleMarker,
    _marks,
    build_storm_app,
    fetch_stats,
    install_scenario,
    run_storm_server,
)
from trestfly._ratelimit import parse_quota

WALL = 1_700_000_000.25  # an arbitrary POSIX time for scenarios that announce epochs


def statuses(decisions: list[Decision]) -> list[int]:
    return [d.status for d in decisions]


# ------------------------------------------------------------------ rounding


def test_ceil_seconds_rounds_up_to_at_least_one() -> None:
    assert [ceil_seconds(s) for s in (0.0, 1e-12, 0.3, 1.0, 1.0000001, 7.5)] == [1, 1, 1, 1, 2, 8]


def test_ceil_millis_keeps_exact_values_exact() -> None:
    # 0.013 * 1000 is 13.000000000000002 in floats: still 13 ms, not 14.
    assert [ceil_millis(s) for s in (0.013, 0.0125, 0.0131, 0.0, 2.0)] == [13, 13, 14, 1, 2000]


# ------------------------------------------------------------------ scenarios


def test_fixed_window_limits_each_aligned_window() -> None:
    scenario = FixedWindow(limit=3, window=1.0)
    first = [scenario.decide(t, WALL) for t in (0.0, 0.1, 0.2, 0.3, 0.999)]
    assert statuses(first) == [200, 200, 200, 429, 429]
    assert scenario.decide(1.0, WALL).status == 200  # a new window starts at t=1
    assert scenario.limit_rps == 3.0


def test_fixed_window_retry_after_is_integer_ceil_of_time_to_reset() -> None:
    scenario = FixedWindow(limit=1, window=10.0, latency_ms=20)
    assert scenario.decide(0.0, WALL).status == 200
    throttled = scenario.decide(2.5, WALL)  # 7.5 s to the reset
    assert (throttled.status, throttled.outcome) == (429, Outcome.THROTTLED)
    assert throttled.header("Retry-After") == "8"
    assert throttled.retry_at == 10.5  # what was announced: now + 8, not the reset (10.0)
    assert throttled.wait == 0.02  # latency applies to 429s too
    late = scenario.decide(9.999, WALL)
    assert late.header("retry-after") == "1" and late.retry_at == pytest.approx(10.999)


def test_token_bucket_fractional_hints_are_ms_rounded_up() -> None:
    scenario = TokenBucket(rate=100, burst=2)
    assert statuses([scenario.decide(0.0, WALL) for _ in range(2)]) == [200, 200]
    empty = scenario.decide(0.0, WALL)
    assert empty.status == 429
    assert empty.header("retry-after") == "0.010" and empty.retry_at == pytest.approx(0.010)
    partial = scenario.decide(0.004, WALL)  # 0.4 token accrued: 6 ms to the next
    assert partial.header("retry-after") == "0.006" and partial.retry_at == pytest.approx(0.010)
    assert scenario.decide(0.0105, WALL).status == 200
    assert scenario.limit_rps == 100.0


def test_token_bucket_rounds_odd_fractions_up() -> None:
    scenario = TokenBucket(rate=80, burst=1)
    scenario.decide(0.0, WALL)
    assert scenario.decide(0.0, WALL).header("retry-after") == "0.013"  # 12.5 ms


def test_token_bucket_accrual_is_capped_at_burst() -> None:
    scenario = TokenBucket(rate=100, burst=3)
    for _ in range(3):
        scenario.decide(0.0, WALL)
    scenario.decide(10.0, WALL)  # 1000 tokens accrued, capped at 3, one taken
    assert scenario.tokens == pytest.approx(2.0)
    assert statuses([scenario.decide(10.0, WALL) for _ in range(3)]) == [200, 200, 429]


def test_token_bucket_whole_second_hints() -> None:
    scenario = TokenBucket(rate=0.5, burst=1, fractional=False)
    assert scenario.decide(0.0, WALL).status == 200
    slow = scenario.decide(0.5, WALL)  # 0.25 token: 1.5 s to go
    assert slow.header("retry-after") == "2" and slow.retry_at == 2.5
    soon = scenario.decide(1.9, WALL)  # 0.95 token: 0.1 s to go, still at least 1
    assert soon.header("retry-after") == "1"
    assert scenario.decide(2.0, WALL).status == 200


def test_headers_only_sends_github_and_ietf_headers_on_every_response() -> None:
    scenario = HeadersOnly(limit=2, window=60.0)
    ok = scenario.decide(10.2, WALL)  # 49.8 s to the reset
    assert ok.status == 200
    assert ok.header("x-ratelimit-limit") == "2"
    assert ok.header("x-ratelimit-remaining") == "1"
    assert ok.header("x-ratelimit-used") == "1"
    # Epoch of the reset rounded up: 1_700_000_000.25 + 49.8 = ...050.05 -> ...051.
    assert ok.header("x-ratelimit-reset") == "1700000051"
    assert ok.header("ratelimit") == '"default";r=1;t=50'
    assert ok.header("ratelimit-policy") == '"default";q=2;w=60'
    assert ok.retry_at is None and ok.header("retry-after") is None

    assert scenario.decide(11.0, WALL).header("x-ratelimit-remaining") == "0"
    throttled = scenario.decide(12.0, WALL)
    assert throttled.status == 429
    assert throttled.header("retry-after") is None
    assert throttled.header("x-ratelimit-remaining") == "0"
    assert throttled.header("ratelimit") == '"default";r=0;t=48'
    assert throttled.retry_at == 60.0  # the window's true end
    assert scenario.decide(60.0, WALL).header("x-ratelimit-remaining") == "1"


def test_headers_only_values_read_back_with_trestfly_parser() -> None:
    scenario = HeadersOnly(limit=5, window=0.5)
    decision = scenario.decide(0.1, WALL)
    headers = httpx.Headers([(k.decode(), v.decode()) for k, v in decision.headers])
    assert headers["ratelimit-policy"] == '"default";q=5;w=0.5'
    quota = parse_quota(headers, WALL)
    assert quota is not None and (quota.remaining, quota.limit) == (4, 5)
    assert quota.reset_after is not None and 0.4 <= quota.reset_after <= 1.0
    # Without the GitHub headers the IETF form alone says the same.
    ietf = httpx.Headers({k: v for k, v in headers.items() if not k.startswith("x-")})
    assert parse_quota(ietf, WALL) == type(quota)(remaining=4, reset_after=1.0, limit=5, window=0.5)


def test_concurrency_cap_counts_slots() -> None:
    scenario = ConcurrencyCap(max_in_flight=2, latency=0.02)
    held = [scenario.decide(0.0, WALL) for _ in range(2)]
    assert all(d.status == 200 and d.holds_slot and d.wait == 0.02 for d in held)
    assert scenario.in_flight == 2
    refused = scenario.decide(0.001, WALL)
    assert (refused.status, refused.holds_slot, refused.wait) == (429, False, 0.0)
    assert refused.header("retry-after") is None and refused.retry_at is None
    assert b"secondary rate limit" in refused.body
    scenario.release()
    assert scenario.in_flight == 1
    assert scenario.decide(0.002, WALL).status == 200
    assert scenario.limit_rps == 100.0


def test_concurrency_cap_optional_retry_after() -> None:
    scenario = ConcurrencyCap(max_in_flight=1, latency=0.1, retry_after=1.5)
    scenario.decide(0.0, WALL)
    refused = scenario.decide(3.0, WALL)
    assert refused.header("retry-after") == "2" and refused.retry_at == 5.0


def test_outage_then_healthy() -> None:
    scenario = Outage(duration=5.0, retry_after=1.0)
    down = [scenario.decide(t, WALL) for t in (0.0, 4.999)]
    assert [(d.status, d.outcome, d.header("retry-after")) for d in down] == [
        (503, Outcome.UNAVAILABLE, "1")
    ] * 2
    assert [d.retry_at for d in down] == [1.0, 5.999]
    assert statuses([scenario.decide(t, WALL) for t in (5.0, 500.0)]) == [200, 200]
    assert scenario.limit_rps is None
    assert Outage(retry_after=0.5).decide(0.0, WALL).header("retry-after") == "1"


def test_flaky_is_deterministic_per_seed() -> None:
    def outcomes(seed: int) -> list[Outcome]:
        scenario = Flaky(p_503=0.2, p_reset=0.1, seed=seed)
        return [scenario.decide(float(t), WALL).outcome for t in range(500)]

    first = outcomes(7)
    assert first == outcomes(7)
    assert first != outcomes(8)
    share = {o: first.count(o) / len(first) for o in Outcome}
    assert 0.1 < share[Outcome.UNAVAILABLE] < 0.3 and 0.03 < share[Outcome.RESET] < 0.17
    assert share[Outcome.THROTTLED] == 0


def test_flaky_503s_carry_no_hint_and_resets_send_nothing() -> None:
    unavailable = Flaky(p_503=1.0, p_reset=0.0).decide(0.0, WALL)
    assert unavailable.status == 503 and unavailable.header("retry-after") is None
    assert unavailable.retry_at is None
    reset = Flaky(p_503=0.0, p_reset=1.0, latency_ms=5).decide(0.0, WALL)
    assert (reset.outcome, reset.status, reset.wait) == (Outcome.RESET, 0, 0.005)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_specs_round_trip(name: str) -> None:
    scenario = SCENARIOS[name]()
    again = scenario_from_spec(scenario.spec())
    assert type(again) is type(scenario) and again.spec() == scenario.spec()


def test_spec_fills_defaults() -> None:
    scenario = scenario_from_spec({"name": "fixed_window", "params": {"limit": 5}})
    assert scenario.params() == {
        "latency_jitter": 0.0,
        "limit": 5,
        "window": 1.0,
        "latency_ms": 0.0,
    }


@pytest.mark.parametrize(
    "spec",
    [
        [],
        {"name": "nope"},
        {"params": {}},
        {"name": "fixed_window", "params": []},
        {"name": "fixed_window", "params": {"limitt": 5}},
        {"name": "fixed_window", "params": {"limit": 0}},
        {"name": "fixed_window", "params": {"limit": True}},
        {"name": "fixed_window", "params": {"window": 0}},
        {"name": "token_bucket", "params": {"rate": "fast"}},
        {"name": "token_bucket", "params": {"fractional": 1}},
        {"name": "concurrency_cap", "params": {"latency": 0}},
        {"name": "outage", "params": {"retry_after": -1}},
        {"name": "flaky", "params": {"p_503": 0.6, "p_reset": 0.5}},
        {"name": "flaky", "params": {"latency_ms": float("inf")}},
        {"name": "unlimited", "params": {"latency_ms": 60_001}},
        {"name": "concurrency_cap", "params": {"latency": 61}},
        {"name": "concurrency_cap", "params": {"latency_jitter": 1.0}},
        {"name": "unlimited", "params": {"latency_jitter": -0.1}},
        {"name": "unlimited", "params": {"latency_jitter": "some"}},
    ],
)
def test_bad_specs_are_value_errors(spec: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- the messages are checked end to end
        scenario_from_spec(spec)


# ------------------------------------------------------------------ latency spread


def test_without_jitter_every_wait_is_exact() -> None:
    scenario = ConcurrencyCap(latency=0.02)
    assert [scenario.spread(0.02) for _ in range(100)] == [0.02] * 100


def test_jitter_spreads_waits_around_the_same_mean() -> None:
    scenario = ConcurrencyCap(latency=0.02, latency_jitter=0.1)
    waits = [scenario.spread(0.02) for _ in range(4000)]
    assert all(0.018 <= wait <= 0.022 for wait in waits)
    assert len(set(waits)) > 3900  # spread, not a few levels
    # The mean, and with it the scenario's ceiling (10 slots / 20 ms), is unchanged:
    # uniform over +/-2 ms, 4000 draws give a mean within about 0.02 ms of 20 ms.
    assert sum(waits) / len(waits) == pytest.approx(0.02, abs=0.0001)
    assert scenario.spread(0.0) == 0.0  # no wait stays no wait


def test_jitter_is_reproducible_per_install() -> None:
    # Each installed scenario draws from a fresh Random(0): runs see the same waits.
    first, second = (Unlimited(latency_ms=20, latency_jitter=0.3) for _ in range(2))
    assert [first.spread(0.02) for _ in range(50)] == [second.spread(0.02) for _ in range(50)]


def test_app_waits_the_spread_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)  # build_storm_app reads it
    app = build_storm_app(ConcurrencyCap(max_in_flight=5, latency=0.02, latency_jitter=0.1))
    _run_app(app, *(_get() for _ in range(5)))
    expected = ConcurrencyCap(latency=0.02, latency_jitter=0.1)
    assert waits == [expected.spread(0.02) for _ in range(5)]
    assert len(set(waits)) == 5


def test_the_latency_jitter_option_reaches_every_scenario_and_the_throughput_section(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out is created when the options are read
    parser = argparse.ArgumentParser()
    storm.add_arguments(parser)
    for argv, expected in (([], 0.1), (["--latency-jitter", "0"], 0.0)):
        settings = storm.settings_from(parser.parse_args(argv))
        assert settings.server.latency_jitter == expected
        assert {s.latency_jitter for s in storm.scenarios(settings.server).values()} == {expected}
        assert settings.throughput_settings is not None
        assert settings.throughput_settings.latency_jitter == expected
    with pytest.raises(SystemExit):
        parser.parse_args(["--latency-jitter", "1"])
    assert "must be below 1" in capsys.readouterr().err


# ------------------------------------------------------------------ violations


def _storm(scenario: _scenarios.Scenario, start: float = 100.0) -> StormState:
    return StormState(scenario, start)


def test_request_before_announced_instant_with_seen_id_is_a_violation() -> None:
    state = _storm(FixedWindow(limit=1, window=10.0))
    assert state.arrive(100.0, WALL, "a", 0).throttle_id is None  # a success
    reply = state.arrive(100.5, WALL, "a", 0)  # 429, Retry-After 10: instant t=10.5
    assert reply.decision.status == 429 and reply.throttle_id == 1

    state.arrive(101.0, WALL, "a", 1)  # came back 9.5 s early: violation
    assert state.totals.violations == 1 and state.clients["a"].violations == 1
    state.arrive(110.5, WALL, "a", 1)  # at the instant: fine
    state.arrive(110.5 - VIOLATION_TOLERANCE / 2, WALL, "a", 1)  # within tolerance
    assert state.totals.violations == 1
    state.arrive(110.5 - 2 * VIOLATION_TOLERANCE, WALL, "a", 1)
    assert state.totals.violations == 2


def test_requests_in_flight_or_unmarked_are_not_violations() -> None:
    state = _storm(FixedWindow(limit=1, window=1.0))
    state.arrive(100.0, WALL, "a", 0)
    first = state.arrive(100.1, WALL, "a", 0)  # id 1: come back at t=1.1
    state.arrive(101.0, WALL, "a", 0)
    second = state.arrive(101.5, WALL, "a", 0)  # id 2: come back at t=2.5
    assert (first.throttle_id, second.throttle_id) == (1, 2)
    # Sent after id 1's instant, before the client received id 2: it was in flight.
    state.arrive(102.0, WALL, "a", 1)
    state.arrive(102.0, WALL, "a", 0)  # sent before any throttle was received
    state.arrive(102.0, WALL, None, None)  # no headers at all (a readiness probe)
    assert state.totals.violations == 0 and state.totals.unjudged == 0
    # A client's request without its mark may have come before an instant it had been
    # told: it cannot be judged, and is counted so (it was counted neither way, and
    # "zero violations" held; the README says such a request fails the target).
    state.arrive(102.0, WALL, "b", None)
    assert state.totals.violations == 0 and state.totals.unjudged == 1
    assert state.clients["b"].unjudged == 1
    assert state.totals.arrivals == 8 and state.totals.throttled_429 == 5
    state.arrive(102.1, WALL, "a", 2)  # but id 2's instant is still ahead
    assert state.totals.violations == 1


def test_a_later_id_announcing_an_earlier_instant_does_not_shorten_the_wait() -> None:
    # A fixed window of 2 s: 1.5 s before its end the hint is 2 s (t=2.5), 0.8 s before
    # it 1 s (t=2.2).  The client was told t=2.5 and carries id 2: at t=2.3 it is early.
    state = _storm(FixedWindow(limit=1, window=2.0), start=0.0)
    state.arrive(0.0, WALL, "a", 0)
    first = state.arrive(0.5, WALL, "a", 0)
    second = state.arrive(1.2, WALL, "a", 0)
    assert (first.throttle_id, second.throttle_id) == (1, 2)
    assert (first.decision.retry_at, second.decision.retry_at) == (2.5, 2.2)
    state.arrive(2.3, WALL, "a", 2)
    assert state.clients["a"].violations == 1
    # Only what the client itself was told counts: "b" is told t=4.4, then "a" t=4.1.
    assert state.arrive(2.4, WALL, "b", 0).decision.retry_at == pytest.approx(4.4)
    assert state.arrive(3.1, WALL, "a", 2).decision.retry_at == pytest.approx(4.1)
    state.arrive(4.2, WALL, "a", 4)  # after all "a" was told: on time
    state.arrive(4.3, WALL, "b", 3)  # before what "b" was told
    assert (state.clients["a"].violations, state.clients["b"].violations) == (1, 1)
    assert state.totals.violations == 2


def test_unknown_or_malformed_seen_ids_are_unjudged() -> None:
    state = _storm(FixedWindow(limit=1, window=10.0))
    state.arrive(100.0, WALL, "a", 0)
    state.arrive(100.1, WALL, "a", 999)  # never handed out
    state.arrive(100.2, WALL, "a", -1)  # malformed header
    assert (state.totals.violations, state.totals.unjudged) == (0, 2)


def test_ids_from_an_earlier_run_are_not_judged_and_ids_keep_increasing() -> None:
    state = _storm(FixedWindow(limit=1, window=10.0))
    state.arrive(100.0, WALL, "a", 0)
    assert state.arrive(100.1, WALL, "a", 0).throttle_id == 1
    state.install(FixedWindow(limit=1, window=10.0), 100.2)
    assert state.totals.arrivals == 0 and state.clients == {}
    state.arrive(100.3, WALL, "a", 1)  # a success; id 1 is from the last run
    assert state.arrive(100.4, WALL, "a", 1).throttle_id == 2
    assert (state.totals.violations, state.totals.unjudged) == (0, 0)
    state.arrive(100.5, WALL, "a", 2)
    assert state.totals.violations == 1


def test_headers_only_announces_the_window_end() -> None:
    state = _storm(HeadersOnly(limit=1, window=2.0), start=0.0)
    state.arrive(0.0, WALL, "a", 0)
    assert state.arrive(0.5, WALL, "a", 0).throttle_id == 1
    state.arrive(1.9, WALL, "a", 1)  # before the reset at t=2
    state.arrive(2.0, WALL, "a", 1)
    assert state.totals.violations == 1


def test_referee_forgets_old_instants_within_its_bound() -> None:
    referee = Referee(capacity=4)
    ids = [referee.announce(float(n)) for n in range(10)]
    assert ids == list(range(1, 11))
    assert referee.judge(1, 0.0) is None  # forgotten: cannot judge
    assert referee.judge(10, 8.0) is True
    assert referee.judge(10, 9.0) is False
    assert referee.judge(0, 0.0) is False


# ------------------------------------------------------------------ counters


def test_counters_timeline_and_stats() -> None:
    state = _storm(Outage(duration=0.2, retry_after=1.0))
    for t in (0.05, 0.15, 0.25, 0.26):
        state.arrive(100.0 + t, WALL, "a", 0)  # marked: nothing seen yet
    stats = state.stats(100.3)
    assert stats["totals"] == {
        "arrivals": 4,
        "successes": 2,
        "throttled_429": 0,
        "unavailable_503": 2,
        "resets": 0,
        "violations": 0,
        "unjudged": 0,
    }
    assert stats["clients"]["a"]["arrivals"] == 4
    assert stats["timeline"]["successes"] == [0, 0, 2]
    assert stats["timeline"]["rejected"] == [1, 1, 0]
    assert stats["scenario"] == {
        "name": "outage",
        "params": {"duration": 0.2, "retry_after": 1.0, "latency_ms": 0.0, "latency_jitter": 0.0},
        "limit_rps": None,
    }
    assert stats["elapsed"] == pytest.approx(0.3)
    assert stats["last_throttle_id"] == 2


def test_timeline_is_bounded() -> None:
    timeline = Timeline(max_buckets=3)
    timeline.count(0.25, Outcome.RESET)
    timeline.count(0.3, Outcome.OK)  # bucket 3: beyond the bound
    timeline.count(1e9, Outcome.OK)
    assert timeline.as_dict()["resets"] == [0, 0, 1]
    assert len(timeline.successes) == 3 and timeline.dropped == 2


def test_clients_breakdown_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scenarios, "MAX_CLIENTS", 2)
    state = _storm(Unlimited())
    for client in ("a", "b", "c", "a"):
        state.arrive(100.0, WALL, client, None)
    assert sorted(state.clients) == ["a", "b"] and state.untracked_clients == 1
    assert state.totals.arrivals == 4


# ------------------------------------------------------------------ ASGI app, in-process


class _Exchange:
    """One request to the ASGI app with asyncio; records what the app sent."""

    def __init__(self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes):
        self.scope = {"type": "http", "method": method, "path": path, "headers": headers}
        self.body = body
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    def header(self, name: bytes) -> bytes | None:
        return dict(self.sent[0]["headers"]).get(name)


def _run_app(
    app: Any, *requests: tuple[str, str, list[tuple[bytes, bytes]], bytes]
) -> list[_Exchange]:
    """Send ``requests`` concurrently (a plain function standing in for uvicorn)."""
    exchanges = [_Exchange(*request) for request in requests]

    async def main() -> None:
        await asyncio.gather(*(app(e.scope, e.receive, e.send) for e in exchanges))

    asyncio.run(main())
    return exchanges


def _get(path: str = "/item", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return ("GET", path, headers or [], b"")


def test_app_holds_and_releases_concurrency_slots() -> None:
    scenario = ConcurrencyCap(max_in_flight=2, latency=0.05)
    app = build_storm_app(scenario)
    exchanges = _run_app(app, _get(), _get(), _get())
    assert sorted(e.status for e in exchanges) == [200, 200, 429]
    assert scenario.in_flight == 0


def test_app_marks_throttles_and_counts_marked_clients() -> None:
    app = build_storm_app(FixedWindow(limit=1, window=30.0))
    marked = [(b"x-client", b"me"), (b"x-seen-throttle", b"0")]
    ok, throttled = _run_app(app, _get(headers=marked)), _run_app(app, _get(headers=marked))
    assert ok[0].status == 200 and ok[0].header(b"x-throttle-id") is None
    assert throttled[0].status == 429 and throttled[0].header(b"retry-after") == b"30"
    assert throttled[0].header(b"x-throttle-id") == b"1"
    _run_app(app, _get(headers=[(b"x-client", b"me"), (b"x-seen-throttle", b"1")]))
    [stats] = _run_app(app, _get("/__stats"))
    totals = json.loads(stats.sent[1]["body"])["totals"]
    assert (totals["arrivals"], totals["violations"]) == (3, 1)


def test_app_control_errors() -> None:
    app = build_storm_app()
    exchanges = _run_app(
        app,
        ("POST", "/__scenario", [], b'{"name": "fixed_window", "params": {"limit": -1}}'),
        ("POST", "/__scenario", [], b"\xff"),
        ("DELETE", "/__stats", [], b""),
        _get("/__nowhere"),
        ("POST", "/__scenario", [], b"x" * 70_000),
    )
    assert [e.status for e in exchanges] == [400, 400, 405, 404, 413]
    assert b"limit must be an integer >= 1" in exchanges[0].sent[1]["body"]


def test_reset_without_uvicorn_falls_back_to_a_truncated_response() -> None:
    # A plain receive function has no uvicorn connection to abort.
    [exchange] = _run_app(build_storm_app(Flaky(p_503=0, p_reset=1)), _get())
    start, body = exchange.sent
    assert start["status"] == 200 and (b"content-length", b"1024") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"", "more_body": True}


def test_marks_parsing() -> None:
    assert _marks([(b"x-client", b"w1"), (b"x-seen-throttle", b"12")]) == ("w1", 12)
    assert _marks([(b"x-seen-throttle", b"twelve")]) == (None, -1)
    assert _marks([(b"x-client", b"c" * 500)])[0] == "c" * 128
    assert _marks([]) == (None, None)


# ------------------------------------------------------------------ ThrottleMarker


async def test_marker_sends_highest_id_received() -> None:
    marker = ThrottleMarker("w1")
    request = httpx.Request("GET", "http://127.0.0.1/item")

    async def seen_after(*throttle_ids: str) -> str:
        for value in throttle_ids:
            await marker.on_response(httpx.Response(429, headers={"X-Throttle-Id": value}))
        await marker.on_request(request)
        return request.headers["x-seen-throttle"]

    assert await seen_after() == "0"
    assert request.headers["x-client"] == "w1"
    assert await seen_after("3", "5") == "5"
    assert await seen_after("4", "junk") == "5"  # late, older or malformed ids are ignored
    await marker.on_response(httpx.Response(200))
    assert marker.seen == 5


async def test_marker_install_keeps_existing_hooks_and_runs_first_on_responses() -> None:
    async def own_hook(_: object) -> None:
        return None

    async with httpx.AsyncClient(event_hooks={"request": [own_hook], "response": [own_hook]}) as c:
        marker = ThrottleMarker("w1")
        marker.install(c)
        assert c.event_hooks["request"] == [own_hook, marker.on_request]
        assert c.event_hooks["response"] == [marker.on_response, own_hook]
    assert set(marker.hooks()) == {"request", "response"}


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def storm_url() -> Iterator[str]:
    with run_storm_server() as server:  # uvicorn and httptools: the test extra
        yield server.url


async def test_end_to_end(storm_url: str) -> None:
    marker = ThrottleMarker("e2e")
    async with (
        httpx.AsyncClient(timeout=5) as control,
        httpx.AsyncClient(timeout=5, event_hooks=marker.hooks()) as client,
    ):
        info = await install_scenario(control, storm_url, FixedWindow(limit=2, window=30))
        assert info["limit_rps"] == pytest.approx(2 / 30)
        answers = [await client.get(f"{storm_url}/item") for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 429]
        throttle_id = int(answers[2].headers["x-throttle-id"])
        assert marker.seen == throttle_id and answers[2].headers["retry-after"] == "30"
        assert (await client.get(f"{storm_url}/item")).status_code == 429  # too early
        assert (await control.get(f"{storm_url}/item")).status_code == 429  # unmarked

        stats = await fetch_stats(control, storm_url)
        assert stats["totals"]["arrivals"] == 5 and stats["totals"]["violations"] == 1
        assert stats["clients"]["e2e"]["violations"] == 1
        assert stats["scenario"]["params"] == {
            "limit": 2,
            "window": 30,
            "latency_ms": 0.0,
            "latency_jitter": 0.0,
        }

        # A reset is a transport error; the next request gets a fresh connection.
        await install_scenario(control, storm_url, Flaky(p_503=0.0, p_reset=1.0))
        with pytest.raises(httpx.TransportError):
            await client.get(f"{storm_url}/item")

        # Concurrency is capped by the real server's holding of slots.
        await install_scenario(control, storm_url, ConcurrencyCap(max_in_flight=1, latency=0.3))
        codes: list[int] = []

        async def fetch() -> None:
            codes.append((await control.get(f"{storm_url}/item")).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(fetch)
        assert sorted(codes) == [200, 429, 429]
        totals = (await fetch_stats(control, storm_url))["totals"]
        assert (totals["successes"], totals["throttled_429"]) == (1, 2)
