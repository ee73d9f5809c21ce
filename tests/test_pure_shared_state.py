"""The shared throttling state's semantics (the reference of the Redis Lua scripts)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trestfly._retry_after import TOO_LONG
from trestfly._shared_state import (
    MAX_CLOSE_FOR,
    MAX_HOLES,
    RateProposal,
    SharedQuota,
    SharedQuotaBook,
    SyncRequest,
)

TTL = 60.0


def test_gate_is_extended_never_shortened() -> None:
    quota = SharedQuota()
    assert quota.sync(10.0, SyncRequest(close_for=2.0), TTL).gate_remaining == 2.0
    # A shorter announcement later changes nothing; a longer one extends.
    assert quota.sync(10.5, SyncRequest(close_for=0.5), TTL).gate_remaining == 1.5
    assert quota.sync(11.0, SyncRequest(close_for=3.0), TTL).gate_remaining == 3.0
    assert quota.gate_until == 14.0


@given(
    st.lists(
        st.tuples(st.floats(0, 10), st.one_of(st.none(), st.floats(0, 30))),
        min_size=1,
        max_size=30,
    )
)
def test_gate_end_is_the_latest_announced_instant(steps: list[tuple[float, float | None]]) -> None:
    quota = SharedQuota()
    now = 0.0
    latest = -math.inf
    for advance, close_for in steps:
        now += advance
        reply = quota.sync(now, SyncRequest(close_for=close_for), TTL)
        if close_for is not None:
            latest = max(latest, now + close_for)
        assert quota.gate_until == latest
        assert reply.gate_remaining == latest - now


def test_reserve_admits_at_the_configured_rate() -> None:
    quota = SharedQuota()
    waits = [quota.reserve(100.0, 0.1, 1, TTL).wait for _ in range(10)]
    assert waits == pytest.approx([0.1 * i for i in range(10)])


def test_reserve_lets_a_burst_through_then_paces() -> None:
    quota = SharedQuota()
    waits = [quota.reserve(0.0, 0.5, 3, TTL).wait for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0])


def test_reserve_after_idle_does_not_bank_credit_beyond_the_burst() -> None:
    quota = SharedQuota()
    quota.reserve(0.0, 0.1, 1, TTL)
    # Ten seconds idle: one slot at once, then the interval again.
    assert quota.reserve(10.0, 0.1, 1, TTL).wait == 0.0
    assert quota.reserve(10.0, 0.1, 1, TTL).wait == pytest.approx(0.1)


@given(
    st.lists(st.floats(0, 0.5), min_size=2, max_size=60),
    st.floats(0.01, 1.0),
    st.integers(1, 5),
)
def test_reserved_sends_never_exceed_the_rate(
    gaps: list[float], interval: float, burst: int
) -> None:
    """Over any span, the sends reserved fit the rate plus the burst."""
    quota = SharedQuota()
    now = 0.0
    sends = []
    for gap in gaps:
        now += gap
        sends.append(now + quota.reserve(now, interval, burst, TTL).wait)
    sends.sort()
    for i, first in enumerate(sends):
        for j in range(i, len(sends)):
            span = sends[j] - first
            assert j - i + 1 <= burst + span / interval + 1e-6


def test_no_reservation_while_the_gate_is_closed_and_schedule_restarts_at_reopening() -> None:
    quota = SharedQuota()
    quota.reserve(0.0, 0.1, 1, TTL)
    quota.sync(0.0, SyncRequest(close_for=1.0), TTL)
    blocked = quota.reserve(0.5, 0.1, 1, TTL)
    assert blocked.gate_remaining == pytest.approx(0.5)
    # The old reservations are void: the first slot is the reopening itself.
    assert quota.reserve(1.0, 0.1, 1, TTL).wait == 0.0
    assert quota.reserve(1.0, 0.1, 1, TTL).wait == pytest.approx(0.1)


def test_first_cut_per_version_wins() -> None:
    quota = SharedQuota()
    first = quota.sync(0.0, SyncRequest(proposal=RateProposal(50.0, None, 0)), TTL)
    assert first.accepted and first.version == 1 and first.rate == 50.0
    # A second worker cut for the same burst, from the same version: refused.
    second = quota.sync(0.0, SyncRequest(proposal=RateProposal(40.0, None, 0)), TTL)
    assert not second.accepted and second.rate == 50.0 and second.version == 1
    # A cut based on the new version, too soon after it: the same episode, refused.
    soon = quota.sync(0.05, SyncRequest(proposal=RateProposal(45.0, 50.0, 1)), TTL)
    assert not soon.accepted and soon.rate == 50.0
    third = quota.sync(0.2, SyncRequest(proposal=RateProposal(45.0, 50.0, 1)), TTL)
    assert third.accepted and third.rate == 45.0 and third.ceiling == 50.0


def test_a_higher_first_sample_raises_the_rate_until_there_is_a_ceiling() -> None:
    """First samples are floors: the highest wins, whatever order they arrive in."""
    quota = SharedQuota()
    assert quota.sync(0.0, SyncRequest(proposal=RateProposal(12.0, None, 0)), TTL).accepted
    higher = quota.sync(0.01, SyncRequest(proposal=RateProposal(90.0, None, 0)), TTL)
    assert higher.accepted and higher.rate == 90.0 and higher.version == 2
    lower = quota.sync(0.02, SyncRequest(proposal=RateProposal(40.0, None, 0)), TTL)
    assert not lower.accepted and lower.rate == 90.0
    # Once a paced rate was throttled (a ceiling), proposals are cuts again: no raise.
    quota.sync(0.5, SyncRequest(proposal=RateProposal(80.0, 90.0, 2)), TTL)
    late = quota.sync(0.6, SyncRequest(proposal=RateProposal(95.0, None, 0)), TTL)
    assert not late.accepted and late.rate == 80.0 and late.ceiling == 90.0


def test_growth_is_added_only_to_the_version_it_was_based_on() -> None:
    quota = SharedQuota()
    quota.sync(0.0, SyncRequest(proposal=RateProposal(50.0, None, 0)), TTL)
    assert quota.sync(0.0, SyncRequest(rate_delta=2.0, based_on=1), TTL).rate == 52.0
    assert quota.sync(0.0, SyncRequest(rate_delta=3.0, based_on=1), TTL).rate == 55.0
    # Growth on a rate that was cut since is stale.
    assert quota.sync(0.0, SyncRequest(rate_delta=5.0, based_on=0), TTL).rate == 55.0


def test_successes_are_counted_across_workers() -> None:
    quota = SharedQuota()
    quota.sync(0.0, SyncRequest(successes=3), TTL)
    assert quota.sync(0.0, SyncRequest(successes=4), TTL).successes == 7


def test_keys_expire_after_ttl_but_not_while_the_gate_is_closed() -> None:
    book = SharedQuotaBook()
    quota = book.get("k", 0.0)
    quota.sync(0.0, SyncRequest(close_for=100.0, successes=5), 10.0)
    assert book.get("k", 105.0) is quota  # still closed-ish: kept
    assert book.get("k", 110.0 + 1e-9) is not quota  # forgotten: fresh state
    assert book.get("k", 110.0 + 1e-9).successes == 0


def test_expired_keys_are_swept_when_the_count_doubles() -> None:
    # Swept at every new key past 64: quadratic in a crawl of many origins.
    book = SharedQuotaBook()
    sweeps = 0
    forget = book._forget_expired

    def counted(now: float) -> None:
        nonlocal sweeps
        sweeps += 1
        forget(now)

    book._forget_expired = counted  # type: ignore[method-assign]
    for number in range(1000):
        book.get(f"live{number}", 0.0).sync(0.0, SyncRequest(successes=1), 1.0)
    assert sweeps == 4  # at 64, 128, 256 and 512 keys, not at each of the 936 past 64
    book.get("late", 1e6)  # past every key's ttl
    assert "live0" in book  # not yet: the next sweep is at twice the count
    for number in range(1100):
        book.get(f"new{number}", 1e6)
    assert "live0" not in book and "live999" not in book


def test_an_accepted_cut_restarts_the_schedule() -> None:
    """Reservations made at the old rate are void: they must not cost the new one."""
    quota = SharedQuota()
    for _ in range(50):
        quota.reserve(0.0, 0.01, 1, TTL)  # half a second of slots reserved
    quota.sync(0.1, SyncRequest(proposal=RateProposal(50.0, None, 0)), TTL)
    assert quota.reserve(0.1, 0.02, 1, TTL).wait == 0.0


def test_a_slot_past_max_wait_is_only_quoted() -> None:
    quota = SharedQuota()
    assert quota.reserve(0.0, 1.0, 1, TTL).wait == 0.0
    quoted = quota.reserve(0.0, 1.0, 1, TTL, max_wait=0.5)
    assert (quoted.reserved, quoted.wait) == (False, 1.0)
    # Refused callers leave the schedule where it was.
    assert quota.reserve(0.0, 1.0, 1, TTL, max_wait=0.5).wait == 1.0
    taken = quota.reserve(0.0, 1.0, 1, TTL, max_wait=2.0)
    assert (taken.reserved, taken.wait) == (True, 1.0)
    assert quota.reserve(0.0, 1.0, 1, TTL).wait == 2.0


def test_a_free_slot_is_taken_even_when_max_wait_is_zero() -> None:
    """max_retry_after=0 is allowed: a slot 0 s away is within it, and a slot exactly
    max_wait away is waited for (the local pacer's check is strict too)."""
    quota = SharedQuota()
    free = quota.reserve(0.0, 1.0, 1, TTL, max_wait=0.0)
    assert (free.reserved, free.wait) == (True, 0.0)
    quoted = quota.reserve(0.0, 1.0, 1, TTL, max_wait=0.0)
    assert (quoted.reserved, quoted.wait) == (False, 1.0)
    exact = quota.reserve(0.0, 1.0, 1, TTL, max_wait=1.0)
    assert (exact.reserved, exact.wait) == (True, 1.0)


def test_a_gate_is_announced_for_at_most_max_close_for() -> None:
    """An absurd Retry-After closes the shared gate for decades, not for 1e300 s: the
    Redis script must hold the same end (its key expiry is integer milliseconds)."""
    quota = SharedQuota()
    reply = quota.sync(10.0, SyncRequest(close_for=TOO_LONG), TTL)
    assert reply.gate_remaining == MAX_CLOSE_FOR
    assert quota.expires_at == 10.0 + MAX_CLOSE_FOR + TTL


def test_a_slot_given_back_is_taken_by_the_next_reservation() -> None:
    """As the local pacer's holes: four waiters of a 1/s pacer left without sending,
    the next reservation goes at the first of their slots, not after them."""
    quota = SharedQuota()
    slots = [quota.reserve(0.0, 1.0, 1, TTL) for _ in range(5)]  # 0, 1, 2, 3, 4
    for held in slots[1:]:
        assert held.slot is not None
        assert quota.give_back(0.5, held.slot, held.schedule)
    waits = [quota.reserve(0.5, 1.0, 1, TTL).wait for _ in range(5)]
    # The holes in order, then the schedule moves on from where it was.
    assert waits == pytest.approx([0.5, 1.5, 2.5, 3.5, 4.5])
    assert quota.tat == 6.0


def test_a_slot_given_back_past_max_wait_is_only_quoted() -> None:
    quota = SharedQuota()
    quota.reserve(0.0, 1.0, 1, TTL)
    held = quota.reserve(0.0, 1.0, 1, TTL)
    assert held.slot is not None and quota.give_back(0.0, held.slot, held.schedule)
    quoted = quota.reserve(0.0, 1.0, 1, TTL, max_wait=0.5)
    assert (quoted.reserved, quoted.wait) == (False, 1.0)
    assert quota.reserve(0.0, 1.0, 1, TTL, max_wait=1.0).slot == 1.0  # still there


def test_a_slot_already_due_is_dropped_not_taken() -> None:
    quota = SharedQuota()
    for _ in range(4):
        quota.reserve(0.0, 1.0, 1, TTL)  # 0, 1, 2, 3; tat 4
    assert not quota.give_back(1.0, 1.0, 0)  # due when given back
    assert quota.give_back(0.5, 2.0, 0)
    # Due when the next reservation comes: sent now, it could crowd the slot after it.
    assert quota.reserve(2.5, 1.0, 1, TTL).wait == pytest.approx(1.5)  # the schedule's 4
    assert quota.holes == []


@pytest.mark.parametrize(
    "restart",
    [
        SyncRequest(close_for=1.0),
        SyncRequest(proposal=RateProposal(2.0, 2.0, 1)),
    ],
    ids=["gate-closed", "rate-cut"],
)
def test_a_slot_of_an_older_schedule_is_ignored(restart: SyncRequest) -> None:
    quota = SharedQuota()
    quota.sync(0.0, SyncRequest(proposal=RateProposal(1.0, None, 0)), TTL)
    held = [quota.reserve(0.0, 1.0, 1, TTL) for _ in range(4)]
    assert held[2].slot is not None and quota.give_back(0.5, held[2].slot, held[2].schedule)
    quota.sync(0.5, restart, TTL)
    assert quota.holes == []  # the new schedule voids the holes of the old one
    assert held[3].slot is not None
    assert not quota.give_back(0.6, held[3].slot, held[3].schedule)
    assert quota.holes == []


def test_a_slot_the_schedule_never_reached_is_ignored() -> None:
    """The key was forgotten (expired, a store restarted) and made again: a slot at or
    past its ``tat`` was not reserved from it."""
    quota = SharedQuota()
    quota.reserve(0.0, 1.0, 1, TTL)  # tat 1
    assert not quota.give_back(0.0, 1.0, 0)
    assert not quota.give_back(0.0, 5.0, 0)
    assert not SharedQuota().give_back(0.0, 5.0, 0)


def test_the_slots_given_back_are_bounded_earliest_dropped() -> None:
    quota = SharedQuota()
    held = [quota.reserve(0.0, 0.01, 1, TTL) for _ in range(MAX_HOLES + 21)]
    for reservation in held[1:]:
        assert reservation.slot is not None
        quota.give_back(0.0, reservation.slot, reservation.schedule)
    assert len(quota.holes) == MAX_HOLES
    assert quota.holes == sorted(quota.holes)
    assert quota.reserve(0.0, 0.01, 1, TTL).slot == held[21].slot


@given(
    st.lists(
        st.tuples(st.floats(0, 0.5), st.booleans(), st.integers(0, 3)), min_size=2, max_size=60
    ),
    st.floats(0.05, 1.0),
)
def test_sends_with_slots_given_back_never_exceed_the_rate(
    steps: list[tuple[float, bool, int]], interval: float
) -> None:
    """Whatever is given back, the slots kept for sending are at least an interval
    apart (burst 1): a given-back slot only replaces the one it was."""
    quota = SharedQuota()
    now = 0.0
    held: list[tuple[float, int]] = []
    for gap, leaves, which in steps:
        now += gap
        reservation = quota.reserve(now, interval, 1, TTL)
        assert reservation.slot is not None
        held.append((reservation.slot, reservation.schedule))
        if leaves:
            slot, schedule = held.pop(which % len(held))
            quota.give_back(now, slot, schedule)
    kept = sorted(slot for slot, _ in held)
    for earlier, later in itertools.pairwise(kept):
        assert later - earlier >= interval - 1e-9
