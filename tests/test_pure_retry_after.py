"""Retry-After parsing (RFC 9110 10.2.3): nothing a server sends may crash the client."""

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trestfly._retry_after import parse_http_date, parse_retry_after

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC).timestamp()


def test_delay_seconds_integer_and_decimal() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 7 ", NOW) == 7.0
    assert parse_retry_after("0.25", NOW) == 0.25
    assert parse_retry_after("0", NOW) == 0.0


def test_all_three_http_date_forms() -> None:
    later = NOW + 90
    assert parse_retry_after("Tue, 24 Nov 2026 12:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Tuesday, 24-Nov-26 12:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Tue Nov 24 12:01:30 2026", NOW) == 90.0
    assert (
        parse_http_date("Tue Nov  3 12:01:30 2026")
        == datetime(2026, 11, 3, 12, 1, 30, tzinfo=UTC).timestamp()
    )
    assert later - NOW == 90


def test_v1_regression_http_date_does_not_crash() -> None:
    # RESTfly 1.5.1 called float() on this and raised ValueError mid-retry.
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


def test_past_date_means_zero() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW) == 0.0


def test_invalid_values_fall_back_to_none() -> None:
    for value in [
        None,
        "",
        "soon",
        "-1",
        "inf",
        "nan",
        "1e3",
        "Tue, 31 Feb 2026 12:00:00 GMT",
        "Tue, 24 Foo 2026 12:00:00 GMT",
        "Tue, 24 Nov 2026 25:00:00 GMT",
        "9" * 400,
    ]:
        assert parse_retry_after(value, NOW) is None, value


@given(st.text(max_size=60))
def test_any_text_parses_to_none_or_a_finite_non_negative_delay(value: str) -> None:
    delay = parse_retry_after(value, NOW)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@given(st.integers(min_value=0, max_value=10**9))
def test_integer_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2069, 12, 31)))
def test_imf_fixdate_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    text = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
    expected = max(0.0, moment.timestamp() - NOW)
    assert parse_retry_after(text, NOW) == expected
    rfc850 = moment.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    assert parse_retry_after(rfc850, NOW) == expected
    asctime = f"{moment:%a %b} {moment.day:2d} {moment:%H:%M:%S %Y}"
    assert parse_retry_after(asctime, NOW) == expected
    assert timedelta(seconds=expected) >= timedelta(0)
