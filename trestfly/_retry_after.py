"""Pure parsing of the ``Retry-After`` header (RFC 9110 section 10.2.3).

The header is either delay-seconds or an HTTP-date in one of three forms:

* IMF-fixdate: ``Sun, 06 Nov 1994 08:49:37 GMT`` (the one servers should send),
* obsolete RFC 850: ``Sunday, 06-Nov-94 08:49:37 GMT``,
* ANSI C asctime: ``Sun Nov  6 08:49:37 1994``.

RESTfly 1.x called ``float()`` on the header and crashed on a date.  Here nothing a server
sends can crash the client: anything unparseable, negative or non-finite is ``None`` and
the caller falls back to its own backoff.  Decimal delay-seconds (``1.5``) are accepted
because real rate limiters send them, although the RFC only allows integers.

An absolute instant (a Retry-After date, an epoch reset) is a delay only against a
clock, and this machine's may be off the server's by minutes (a VM resumed from sleep, a
container without time sync): ahead, every wait came out short and the client retried
into the limit; behind, it waited minutes too long.  :func:`throttle_clock` reads the
response's own ``Date`` for such a server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime

#: How far the server's ``Date`` may sit from this machine's clock, beyond the second its
#: whole seconds hide, before the server's clock is believed instead (seconds).
CLOCK_SKEW_TOLERANCE = 1.0

#: The range of a server's Date believed as its clock: from 1970 to the last day
#: Python's datetime holds (beyond it, reading two-digit years against it failed).
_EPOCH = 0.0
_LAST_DAY = datetime(9999, 12, 30, tzinfo=UTC).timestamp()

#: The statuses whose delay hints close an origin's gate: a throttle's (420, 429, and a
#: 403 with hints: GitHub's), and an unavailable server's.
HINTED_STATUSES = frozenset({403, 420, 429, 503})

_DELAY = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: The elements of a folded field line: an HTTP-date's weekday keeps its own comma.
_FOLDED = re.compile(r"\s*(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,[^,]*|[^,]+", re.IGNORECASE)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
# IMF-fixdate, read as RFC 9110 section 5.6.7 asks recipients to read dates robustly:
# a one-digit day (Java's RFC_1123_DATE_TIME writes "Mon, 2 Jun 2025") and a numeric
# zone or UT/UTC (RFC 5322, PHP's DATE_RFC2822: "+0000") were ignored, and a 429 asking
# for 30 s was retried after the client's own backoff.  The zone's case too ("gmt",
# as month and day names already were): a date is no less clear for it.
_IMF = re.compile(
    r"[A-Za-z]{3}, (\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2})"
    r" ((?i:GMT|UTC?)|[+-]\d{4})",
    re.ASCII,
)
_RFC850 = re.compile(
    r"[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) (?i:GMT)",
    re.ASCII,
)
_ASCTIME = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})", re.ASCII
)


def _timestamp(year: int, month_name: str, day: int, hh: int, mm: int, ss: int) -> float | None:
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    # RFC 9110's time-of-day runs to 23:59:60 (a leap second): one past :59, which
    # datetime cannot hold (the date fell back to the client's own backoff).
    leap = 1.0 if ss == 60 else 0.0
    try:
        return datetime(year, month, day, hh, mm, ss - int(leap), tzinfo=UTC).timestamp() + leap
    except ValueError:  # 31 Feb, hour 25, ...
        return None


#: The delay of a Retry-After too long for a float: finite, and longer than any
#: max_retry_after, so the request fails at once as for any delay above it.
TOO_LONG = 1e300


def _full_year(yy: int, moment: tuple[int, int, int, int, int], now: float) -> int:
    """The year of an RFC 850 date's two digits ``yy`` (``moment``: its month, day, hour,
    minute and second), placed against the clock of ``now``.

    RFC 9110 section 5.6.7: a two-digit year that appears more than 50 years in the
    future is the most recent past year with those digits.  The whole date is
    compared, not the year alone: in June 2025, 06-Nov-75 is more than 50 years ahead
    (by five months), so it is 1975.  Compared as tuples, so that no candidate year has
    to hold the date (29 February exists in 2000, not in 2100).
    """
    clock = datetime.fromtimestamp(now, UTC)
    horizon = (clock.year + 50, clock.month, clock.day, clock.hour, clock.minute, clock.second)
    century = clock.year // 100 * 100
    # The latest candidate not past the horizon: in the next century, the clock's, or
    # else the one before (which always ends before the clock's year does).
    candidates = (century + 100 + yy, century + yy)
    return next((year for year in candidates if (year, *moment) <= horizon), century - 100 + yy)


def _zone_offset(zone: str) -> int:
    """Seconds east of UTC of an IMF zone: GMT, UT, UTC, or +hhmm/-hhmm."""
    if zone[0] not in "+-":
        return 0
    offset = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
    return -offset if zone[0] == "-" else offset


def parse_http_date(value: str, now: float) -> float | None:
    """The POSIX timestamp of an HTTP-date in any of the three RFC 9110 forms, or None.

    ``now`` (a POSIX timestamp) places a two-digit year (RFC 850 form) in its century.
    """
    text = value.strip()
    if match := _IMF.fullmatch(text):
        day, month, year, hh, mm, ss, zone = match.groups()
        stamp = _timestamp(int(year), month, int(day), int(hh), int(mm), int(ss))
        return None if stamp is None else stamp - _zone_offset(zone)
    if match := _RFC850.fullmatch(text):
        day, month, yy, hh, mm, ss = match.groups()
        number = _MONTHS.get(month.lower())
        if number is None:
            return None
        moment = (number, int(day), int(hh), int(mm), int(ss))
        try:
            year = _full_year(int(yy), moment, now)
        except (ValueError, OverflowError, OSError):
            # A "now" no date can hold: a server's Date of year 1 or 9999 taken as its
            # clock (see throttle_clock) crashed the call with a bare ValueError.
            return None
        return _timestamp(year, month, int(day), int(hh), int(mm), int(ss))
    if match := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = match.groups()
        return _timestamp(int(year), month, int(day.strip()), int(hh), int(mm), int(ss))
    return None


def parse_retry_after_fields(values: Iterable[str], now: float) -> float | None:
    """The delay a response's ``Retry-After`` fields announce: the longest valid one,
    None when none is valid.

    The field is a single value (RFC 9110), but a server and a proxy in front of it
    may each add one.  Both were said: waiting the shorter arrives before the longer's
    instant, as reading them cautiously does for the quota headers.
    """
    delays: list[float] = []
    for value in values:
        delay = parse_retry_after(value, now)
        if delay is None and "," in value:
            # A proxy may fold the repeated fields into one line ("30, 30"), which was
            # read as no hint: the calls retried on their own backoff into the 30 s.
            # An HTTP-date has a comma of its own, after the weekday.
            parts = (parse_retry_after(part, now) for part in _FOLDED.findall(value))
            delay = max((part for part in parts if part is not None), default=None)
        if delay is not None:
            delays.append(delay)
    return max(delays, default=None)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Args:
        value: the raw header value, or None when the header is absent.
        now: the current wall-clock time as a POSIX timestamp (``time.time()``), used to
            turn an HTTP-date into a delay.  Passed in so the function stays pure.

    Returns:
        A finite delay >= 0 (a date in the past gives 0), or None when the value is absent
        or not a valid Retry-After.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELAY.fullmatch(text):
        # Digits only, so a float that overflows was a very long delay: it must fail as
        # one above max_retry_after, not pass for a header that said nothing.
        delay = float(text)
        return delay if math.isfinite(delay) else TOO_LONG
    when = parse_http_date(text, now)
    if when is None:
        return None
    return max(0.0, when - now)


def throttle_clock(date: str | None, local_now: float) -> float:
    """The wall-clock time to turn a throttled response's absolute instants (a
    ``Retry-After`` date, an epoch reset) into delays.

    This machine's clock (``local_now``), unless the response's ``Date`` header says the
    server's clock is more than CLOCK_SKEW_TOLERANCE away from it: then the ``Date``
    itself.  ``Date`` has whole seconds, so an in-sync server's reads up to a second
    behind (plus the response's way here); and taken as "now" it is the earliest the
    server's clock could read, so the delays come out up to a second long, never short.

    Only for throttles (429, 503, a 403 with hints): those are never served from a
    cache, whose copy of a response keeps its old ``Date`` and would read as a clock
    hours behind.
    """
    if date is None:
        return local_now
    server_now = parse_http_date(date.strip(), local_now)
    if server_now is None or not _EPOCH <= server_now <= _LAST_DAY:
        # No date, or one no clock reads (year 1, year 9999): not a clock to believe.
        return local_now
    ahead = local_now - server_now
    if -CLOCK_SKEW_TOLERANCE <= ahead <= 1.0 + CLOCK_SKEW_TOLERANCE:
        return local_now
    return server_now
