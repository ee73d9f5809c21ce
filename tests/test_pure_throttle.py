"""The per-origin gate, pacer and adaptive limits, driven with explicit clock values."""

from __future__ import annotations

import random

import pytest

from trestfly._ratelimit import Quota
from trestfly._throttle import OriginThrottle, ThrottleSettings, Ticket
from trestfly.errors import UnexpectedValueError


def origin(now: float = 0.0, **settings: object) -> OriginThrottle:
    return OriginThrottle(ThrottleSettings(**settings), 100, now, random.Random(1))  # type: ignore[arg-type]


def send(state: OriginThrottle, now: float) -> Ticket:
    decision = state.admit(now)
    assert decision.kind in ("go", "probe"), decision
    return state.on_sent(
        max(now, decision.at), paced=decision.at > now, probe=decision.kind == "probe"
    )


def test_an_origin_that_never_throttles_is_never_delayed() -> None:
    state = origin()
    for step in range(50):
        decision = state.admit(step * 0.001)
        assert decision.kind == "go" and decision.at == step * 0.001
    assert state.effective_rate(1.0) is None


def test_a_hint_closes_the_gate_until_the_instant_and_only_extends() -> None:
    state = origin()
    ticket = send(state, 0.0)
    state.on_response(ticket, 1.0, status=429, hint=5.0, quota=None)
    assert state.gate_until == 6.0
    assert state.admit(3.0).kind == "gate"
    late = send_at_closed = Ticket(sent_at=0.5, in_flight_at_send=2, paced=False, probe=False)
    state.on_response(late, 2.0, status=429, hint=1.0, quota=None)  # would end at 3: ignored
    assert state.gate_until == 6.0
    state.on_response(send_at_closed, 2.0, status=429, hint=10.0, quota=None)
    assert state.gate_until == 12.0
    assert state.gate_trips == 1
    assert state.gate_closed_time == pytest.approx(11.0)


def test_jittered_wake_is_never_before_the_instant() -> None:
    state = origin(jitter=0.5, max_jitter=2.0)
    state.on_response(send(state, 0.0), 0.0, status=503, hint=10.0, quota=None)
    wakes = [state.wake_time() for _ in range(200)]
    assert min(wakes) >= 10.0
    assert max(wakes) <= 12.0
    assert max(wakes) - min(wakes) > 0.5  # actually spread


def test_one_probe_then_the_others() -> None:
    state = origin()
    state.on_response(send(state, 0.0), 0.0, status=429, hint=1.0, quota=None)
    assert state.admit(1.0).kind == "probe"
    probe = state.on_sent(1.0, paced=False, probe=True)
    assert state.admit(1.0).kind == "probe-wait"
    assert state.admit(1.01).kind == "probe-wait"
    state.on_response(probe, 1.02, status=200, hint=None, quota=None)
    state.on_done(probe)
    assert state.admit(1.03).kind == "go"


def test_stale_throttles_cut_once_per_episode() -> None:
    state = origin()
    burst = [send(state, 0.0) for _ in range(20)]
    for ticket in burst[:10]:
        state.on_response(ticket, 0.01, status=200, hint=None, quota=None)
        state.on_done(ticket)
    state.on_response(burst[10], 0.02, status=429, hint=1.0, quota=None)
    rate, concurrency = state.learned_rate, state.concurrency
    for ticket in burst[11:]:  # sent before the episode began: stale
        state.on_response(ticket, 0.03, status=429, hint=1.0, quota=None)
    assert state.episodes == 1
    assert state.learned_rate == rate and state.concurrency == concurrency
    # 10 served over the period up to the reopening at 1.02 s, times safety 0.95.
    assert rate == pytest.approx(10 / 1.02 * 0.95)
    assert state.throttles == 10


def test_a_fresh_throttle_after_reopening_cuts_again() -> None:
    state = origin()
    first = send(state, 0.0)
    state.on_response(first, 0.0, status=200, hint=None, quota=None)
    state.on_response(send(state, 0.0), 0.1, status=429, hint=0.9, quota=None)
    rate = state.learned_rate
    assert rate is not None
    probe_decision = state.admit(1.5)
    probe = state.on_sent(1.5, paced=False, probe=probe_decision.kind == "probe")
    state.on_response(probe, 1.6, status=429, hint=1.0, quota=None)
    assert state.episodes == 2
    assert state.learned_rate is not None and state.learned_rate <= rate * 0.9 + 1e-9


def test_pacer_spaces_sends_at_the_learned_rate() -> None:
    state = origin()
    state.learned_rate = 10.0
    times = [state.admit(0.0).at for _ in range(5)]
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_client_side_rate_limit_with_burst() -> None:
    state = origin(rate_limit=10.0, burst=3)
    times = [state.admit(0.0).at for _ in range(6)]
    assert times == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])
    later = state.admit(10.0).at
    assert later == 10.0  # an idle bucket refills


def test_success_while_paced_grows_the_rate_slowly() -> None:
    state = origin(increase=2.0)
    state.learned_rate = 100.0
    state._ceiling = 105.0  # a paced rate was throttled before: probe upwards slowly
    ticket = Ticket(sent_at=0.0, in_flight_at_send=1, paced=True, probe=False)
    for _ in range(100):  # one second of sending at 100/s
        state.on_response(ticket, 0.0, status=200, hint=None, quota=None)
    assert state.learned_rate == pytest.approx(102.0, rel=1e-3)
    unpaced = Ticket(sent_at=0.0, in_flight_at_send=1, paced=False, probe=False)
    state.on_response(unpaced, 0.0, status=200, hint=None, quota=None)
    assert state.learned_rate == pytest.approx(102.0, rel=1e-3)


def test_concurrency_limit_is_cut_and_regrown_only_when_used() -> None:
    state = origin()
    ticket = Ticket(sent_at=0.0, in_flight_at_send=11, paced=False, probe=False)
    state.on_response(ticket, 0.001, status=429, hint=None, quota=None)
    assert state.concurrency_limit == 9  # 11 * 0.9
    idle = Ticket(sent_at=1.0, in_flight_at_send=3, paced=False, probe=False)
    for _ in range(50):
        state.on_response(idle, 1.0, status=200, hint=None, quota=None)
    assert state.concurrency_limit == 9
    busy = Ticket(sent_at=1.0, in_flight_at_send=9, paced=False, probe=False)
    for _ in range(10):
        state.on_response(busy, 1.0, status=200, hint=None, quota=None)
    assert state.concurrency_limit == 10


def test_non_adaptive_origin_keeps_its_limits() -> None:
    state = origin(adaptive=False)
    state.on_response(send(state, 0.0), 0.1, status=200, hint=None, quota=None)
    state.on_response(send(state, 0.1), 0.2, status=429, hint=1.0, quota=None)
    assert state.learned_rate is None and state.concurrency_limit == 100
    assert state.gate_until == pytest.approx(1.2)  # the gate still holds


def test_503_with_hint_closes_the_gate_without_cutting_the_rate() -> None:
    state = origin()
    state.on_response(send(state, 0.0), 0.1, status=200, hint=None, quota=None)
    state.on_response(send(state, 0.1), 0.2, status=503, hint=2.0, quota=None)
    assert state.gate_until == pytest.approx(2.2)
    assert state.learned_rate is None and state.episodes == 0


def test_quota_headers_pace_and_close_at_zero() -> None:
    state = origin()
    first = send(state, 0.0)
    state.on_response(first, 0.0, status=200, hint=None, quota=Quota(10, 1.0, 100))
    state.on_done(first)
    assert state.effective_rate(0.0) == pytest.approx(10.0)
    last = send(state, 0.0)
    state.on_response(last, 0.5, status=200, hint=None, quota=Quota(0, 0.5, 100))
    state.on_done(last)
    decision = state.admit(0.5)
    assert decision.kind == "gate" and decision.at == pytest.approx(1.0)
    assert state.episodes == 0  # running out of quota is not a throttle


def test_quota_counts_requests_in_flight() -> None:
    state = origin()
    first = send(state, 0.0)
    state.on_response(first, 0.0, status=200, hint=None, quota=Quota(3, 1.0, 100))
    state.on_done(first)
    kinds = []
    for _ in range(4):
        decision = state.admit(0.0)
        kinds.append(decision.kind)
        if decision.kind == "go":
            state.on_sent(decision.at, paced=True, probe=False)
    assert kinds == ["go", "go", "go", "gate"]


def test_out_of_order_quota_answers_keep_the_lowest_remaining() -> None:
    state = origin()
    t = send(state, 0.0)
    state.on_response(t, 0.0, status=200, hint=None, quota=Quota(5, 1.0, 10))
    state.on_response(t, 0.01, status=200, hint=None, quota=Quota(7, 0.99, 10))  # stale
    assert state.quota_allowance(0.01) == 5 - 1


def test_github_403_with_zero_remaining_is_a_throttle() -> None:
    state = origin()
    state.on_response(send(state, 0.0), 0.0, status=403, hint=None, quota=Quota(0, 30.0, 60))
    assert state.throttles == 1 and state.gate_until == pytest.approx(30.0)


@pytest.mark.parametrize(
    "settings",
    [{"decrease": 1.0}, {"burst": 0}, {"rate_limit": 0}, {"jitter": -1}, {"safety": 0}],
)
def test_bad_settings_are_typed_errors(settings: dict[str, float]) -> None:
    with pytest.raises(UnexpectedValueError, match=next(iter(settings))):
        ThrottleSettings(**settings)  # type: ignore[arg-type]


def test_a_known_policy_paces_just_under_its_rate() -> None:
    state = origin()
    first = send(state, 0.0)
    # Remaining 90 of 100 per second, reset rounded up to a whole second: pace at the
    # policy's rate (times safety), not at 90 over the rounded second.
    state.on_response(first, 0.0, status=200, hint=None, quota=Quota(90, 1.0, 100, 1.0))
    state.on_done(first)
    assert state.effective_rate(0.0) == pytest.approx(95.0)


def test_before_any_paced_throttle_the_rate_grows_fast() -> None:
    state = origin(fast_increase=0.3)
    state.learned_rate = 10.0
    ticket = Ticket(sent_at=0.0, in_flight_at_send=1, paced=True, probe=False)
    for _ in range(10):  # one second of sending at 10/s
        state.on_response(ticket, 0.0, status=200, hint=None, quota=None)
    assert state.learned_rate == pytest.approx(13.0)


def test_a_large_first_sample_is_trusted_and_grows_slowly() -> None:
    state = origin()
    burst = [send(state, 0.0) for _ in range(101)]
    for ticket in burst[:100]:  # a whole window's quota served
        state.on_response(ticket, 0.1, status=200, hint=None, quota=None)
        state.on_done(ticket)
    state.on_response(burst[100], 0.2, status=429, hint=0.8, quota=None)
    assert state.learned_rate == pytest.approx(100 / 1.0 * 0.95)
    paced = Ticket(sent_at=1.5, in_flight_at_send=1, paced=True, probe=False)
    state.on_response(paced, 1.6, status=200, hint=None, quota=None)
    assert state.learned_rate == pytest.approx(95.0 + 1.0 / 95.0)


def test_close_early_holds_the_gate_without_starting_an_episode() -> None:
    state = origin()
    ticket = send(state, 0.0)
    state.close_early(0.01, 1.01)
    assert state.admit(0.5).kind == "gate"
    state.on_response(ticket, 0.02, status=429, hint=1.0, quota=None)
    assert state.episodes == 1  # the full answer still counts as a fresh throttle
    assert state.gate_trips == 1
