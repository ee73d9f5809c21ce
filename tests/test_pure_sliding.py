"""SlidingCount: events over the last ``span`` seconds, driven with explicit times."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trestfly._sliding import SlidingCount
from trestfly.errors import UnexpectedValueError


def test_events_leave_the_window_span_seconds_later() -> None:
    window = SlidingCount(1.0)
    window.add(0.0)
    window.add(0.5, 3)
    assert window.count(0.9) == 4
    assert window.count(1.0) == 3  # (0.0, 1.0]: the event at 0.0 is out
    assert window.count(1.5) == 0


def test_events_of_one_instant_share_an_entry() -> None:
    window = SlidingCount(1.0)
    for _ in range(1000):
        window.add(2.0)
    assert window.count(2.0) == 1000
    assert len(window._entries) == 1


def test_clear_empties_it() -> None:
    window = SlidingCount(1.0)
    window.add(0.0, 5)
    window.clear()
    assert window.count(0.0) == 0


@pytest.mark.parametrize("span", [0.0, -1.0, math.inf, math.nan])
def test_a_span_must_be_positive_and_finite(span: float) -> None:
    with pytest.raises(UnexpectedValueError, match="span"):
        SlidingCount(span)


@given(
    span=st.floats(min_value=0.01, max_value=5.0),
    steps=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=1.0), st.integers(1, 5)), max_size=60
    ),
)
def test_the_count_is_the_events_in_the_last_span(
    span: float, steps: list[tuple[float, int]]
) -> None:
    window = SlidingCount(span)
    now, events = 0.0, []
    for advance, count in steps:
        now += advance
        window.add(now, count)
        events.append((now, count))
        assert window.count(now) == sum(c for t, c in events if t > now - span)
