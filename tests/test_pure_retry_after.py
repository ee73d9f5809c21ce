"""Retry-After parsing (RFC 9110 10.2.3): nothing a server sends may crash the client."""

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trestfly._retry_after import (
    CLOCK_SKEW_TOLERANCE,
    TOO_LONG,
    parse_http_date,
    parse_retry_after,
    parse_retry_after_fields,
    throttle_clock,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC).timestamp()


def test_delay_seconds_integer_and_decimal() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 7 ", NOW) == 7.0
    assert parse_retry_after("0.25", NOW) == 0.25
    assert parse_retry_after("0", NOW) == 0.0


def test_fields_folded_into_one_line_are_read_as_several() -> None:
    # A proxy folding two Retry-After fields into "30, 30" made no hint at all.
    assert parse_retry_after_fields(["30, 30"], NOW) == 30.0
    assert parse_retry_after_fields(["30,1"], NOW) == 30.0
    assert parse_retry_after_fields(["5, Tue, 24 Nov 2026 12:01:30 GMT"], NOW) == 90.0
    assert parse_retry_after_fields(["Tuesday, 24-Nov-26 12:01:30 GMT, 5"], NOW) == 90.0
    assert parse_retry_after_fields(["soon, 7"], NOW) == 7.0
    assert parse_retry_after_fields(["soon, later"], NOW) is None
    # A single date keeps its own comma.
    assert parse_retry_after_fields(["Tue, 24 Nov 2026 12:01:30 GMT"], NOW) == 90.0


def test_of_several_fields_the_longest_valid_delay_holds() -> None:
    # An origin's Retry-After and a gateway's: waiting the shorter arrives before the
    # longer's instant.  An invalid one is skipped, as a lone invalid one is.
    assert parse_retry_after_fields(["30", "1"], NOW) == 30.0
    assert parse_retry_after_fields(["1", "30"], NOW) == 30.0
    assert parse_retry_after_fields(["soon", "Tue, 24 Nov 2026 12:01:30 GMT", "5"], NOW) == 90.0
    assert parse_retry_after_fields(["soon", "-1"], NOW) is None
    assert parse_retry_after_fields([], NOW) is None


def test_all_three_http_date_forms() -> None:
    later = NOW + 90
    assert parse_retry_after("Tue, 24 Nov 2026 12:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Tuesday, 24-Nov-26 12:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Tue Nov 24 12:01:30 2026", NOW) == 90.0
    assert (
        parse_http_date("Tue Nov  3 12:01:30 2026", NOW)
        == datetime(2026, 11, 3, 12, 1, 30, tzinfo=UTC).timestamp()
    )
    assert later - NOW == 90


def test_a_leap_second_is_a_time_of_day() -> None:
    # RFC 9110 section 5.6.7: time-of-day runs to 23:59:60.  It fell back to backoff.
    before = datetime(2016, 12, 31, 23, 58, 21, tzinfo=UTC).timestamp()
    assert parse_retry_after("Sat, 31 Dec 2016 23:59:60 GMT", before) == 99.0
    assert parse_retry_after("Sat, 31 Dec 2016 23:59:59 GMT", before) == 98.0
    assert parse_retry_after("Sat, 31 Dec 2016 23:59:61 GMT", before) is None


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
    ]:
        assert parse_retry_after(value, NOW) is None, value


def test_a_delay_too_long_for_a_float_is_too_long_not_absent() -> None:
    # Valid delay-seconds: it must fail as a delay above max_retry_after does.
    assert parse_retry_after("9" * 400, NOW) == TOO_LONG
    assert math.isfinite(TOO_LONG) and TOO_LONG > 10**12


def test_a_two_digit_year_is_placed_against_the_clock_given() -> None:
    # RFC 9110 5.6.7: more than 50 years ahead of now means the past century.
    def year(two_digits: str, now: float) -> int:
        when = parse_http_date(f"Sunday, 06-Nov-{two_digits} 08:49:37 GMT", now)
        assert when is not None
        return datetime.fromtimestamp(when, UTC).year

    assert year("76", NOW) == 2076  # 50 years ahead of 2026: still ahead
    assert year("77", NOW) == 1977
    assert year("94", NOW) == 1994
    in_2060 = datetime(2060, 1, 1, tzinfo=UTC).timestamp()
    assert year("94", in_2060) == 2094


def test_a_two_digit_year_is_judged_by_the_whole_date_not_the_year_alone() -> None:
    # In June 2025, 06-Nov-75 would be 2075: more than 50 years ahead by five months,
    # so it is 1975 (comparing years alone read it as 2075, a delay of 50 years).
    june_2025 = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    when = parse_http_date("Sunday, 06-Nov-75 08:49:37 GMT", june_2025)
    assert when == datetime(1975, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()
    assert parse_retry_after("Sunday, 06-Nov-75 08:49:37 GMT", june_2025) == 0.0
    # Earlier in 2075 than the clock's day: within 50 years, still ahead.
    early = parse_http_date("Saturday, 01-Jun-75 00:00:00 GMT", june_2025)
    assert early == datetime(2075, 6, 1, tzinfo=UTC).timestamp()
    # Near a century's end, the next century's years are the ones within 50 years.
    in_2099 = datetime(2099, 6, 1, tzinfo=UTC).timestamp()
    soon = parse_http_date("Monday, 06-Nov-01 08:49:37 GMT", in_2099)
    assert soon == datetime(2101, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()
    # A 29 February exists in only some of the candidate centuries (2000, not 2100).
    leap = parse_http_date("Tuesday, 29-Feb-00 00:00:00 GMT", june_2025)
    assert leap == datetime(2000, 2, 29, tzinfo=UTC).timestamp()


@given(st.text(max_size=60))
def test_any_text_parses_to_none_or_a_finite_non_negative_delay(value: str) -> None:
    delay = parse_retry_after(value, NOW)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@given(st.integers(min_value=0, max_value=10**9))
def test_integer_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


# Two-digit years stand for the century that puts them at most 50 years after NOW
# (the whole date is compared: 2076-11-24 12:00:00 is the last instant read as 20xx).
@given(
    st.datetimes(
        min_value=datetime(1976, 11, 24, 12, 0, 1), max_value=datetime(2076, 11, 24, 12, 0, 0)
    )
)
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


def test_imf_dates_as_real_servers_write_them() -> None:
    """RFC 9110 section 5.6.7: recipients read dates robustly.  Java's RFC_1123_DATE_TIME
    writes a one-digit day, RFC 5322 (PHP's DATE_RFC2822) a numeric zone."""
    expected = datetime(2025, 6, 2, 12, 0, 30, tzinfo=UTC).timestamp()
    assert parse_http_date("Mon, 2 Jun 2025 12:00:30 GMT", 0.0) == expected
    assert parse_http_date("Mon, 02 Jun 2025 12:00:30 +0000", 0.0) == expected
    assert parse_http_date("Mon, 02 Jun 2025 12:00:30 UT", 0.0) == expected
    assert parse_http_date("Mon, 02 Jun 2025 12:00:30 UTC", 0.0) == expected
    assert parse_http_date("Mon, 02 Jun 2025 14:30:30 +0230", 0.0) == expected
    assert parse_http_date("Mon, 02 Jun 2025 07:00:30 -0500", 0.0) == expected
    assert parse_retry_after("Mon, 2 Jun 2025 12:00:30 GMT", expected - 30) == 30.0
    # The zone's case, as the month's and the day's (ignored before: the client's backoff).
    assert parse_http_date("Mon, 02 Jun 2025 12:00:30 gmt", 0.0) == expected
    assert parse_http_date("mon, 02 jun 2025 12:00:30 Utc", 0.0) == expected
    assert parse_http_date("Monday, 02-Jun-25 12:00:30 gmt", expected) == expected
    # Still refused: a zone by name (ambiguous), and a three-digit day.
    assert parse_http_date("Mon, 02 Jun 2025 12:00:30 PST", 0.0) is None
    assert parse_http_date("Mon, 002 Jun 2025 12:00:30 GMT", 0.0) is None


def _date(posix: float) -> str:
    return datetime.fromtimestamp(posix, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_a_date_within_a_second_or_so_of_ours_leaves_our_clock() -> None:
    # Date has whole seconds: an in-sync server's reads up to a second behind ours,
    # plus the response's way here.  Our clock is the finer one then.
    local = NOW + 0.7
    assert throttle_clock(_date(NOW), local) == local
    assert throttle_clock(_date(NOW - CLOCK_SKEW_TOLERANCE), NOW + 0.9) == NOW + 0.9
    assert throttle_clock(_date(NOW + CLOCK_SKEW_TOLERANCE), NOW) == NOW
    assert throttle_clock(None, local) == local


def test_a_date_far_from_ours_is_the_servers_clock() -> None:
    # An hour either way, or a few seconds: the server's Date is the clock its instants
    # are meant against, and the earliest its clock could read (waits come out long).
    for offset in (-3600.0, -3.0, 2.0, 3600.0):
        assert throttle_clock(_date(NOW + offset), NOW) == NOW + offset
    # Read against it, a Retry-After date 2 s past the server's Date waits 2 s.
    server = throttle_clock(_date(NOW - 3600), NOW)
    assert parse_retry_after(_date(NOW - 3598), server) == 2.0


def test_a_date_that_does_not_parse_leaves_our_clock() -> None:
    for value in ("", "yesterday", "Tue, 99 Nov 2026 12:00:00 GMT", "0"):
        assert throttle_clock(value, NOW) == NOW


def test_a_date_no_clock_reads_leaves_our_clock_and_crashes_nothing() -> None:
    # Believed as the server's clock, year 1 (or 9999 with a zone) crashed the call
    # with a bare ValueError when an RFC 850 Retry-After's two-digit year was placed.
    for date in ("Mon, 01 Jan 0001 00:00:00 +0001", "Fri, 31 Dec 9999 23:59:59 -2359"):
        assert throttle_clock(date, NOW) == NOW
    assert parse_http_date("Sunday, 31-Dec-99 23:59:59 GMT", -62135596800.0) is None
    assert parse_http_date("Sunday, 31-Dec-99 23:59:59 GMT", 1e18) is None


@given(
    date=st.one_of(
        st.text(max_size=40),
        st.builds(
            "{:%a, %d %b %Y %H:%M:%S} {}".format,
            st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
            st.sampled_from(["GMT", "+0001", "-2359", "+2359", "UTC"]),
        ),
    ),
    hint=st.one_of(
        st.text(max_size=40),
        st.builds(
            "{:%A, %d-%b-%y %H:%M:%S} GMT".format,
            st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        ),
    ),
)
def test_no_date_and_retry_after_a_server_sends_crash_the_reading(date: str, hint: str) -> None:
    delay = parse_retry_after_fields([hint], throttle_clock(date, NOW))
    assert delay is None or (math.isfinite(delay) and delay >= 0)
