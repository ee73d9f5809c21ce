"""Properties of the pure core over generated input (Hypothesis): whatever a server
sends or a caller passes, the parsers return a documented value or a trestfly error,
delays are finite and within their caps, and redaction never lets a secret through.

Derandomized, so that CI sees the same examples every run; each property runs in well
under a second.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trestfly._policy import backoff_delay, decide
from trestfly._ratelimit import Quota, parse_quota, spent_quota_delay
from trestfly._redact import describe_attempt, to_log_text
from trestfly._retry_after import (
    TOO_LONG,
    parse_http_date,
    parse_retry_after,
    parse_retry_after_fields,
)
from trestfly._safe_url import SECRET_PARAMS, hide_secret_values, is_secret_name, safe_url
from trestfly._throttle import OriginThrottle, ThrottleSettings

NOW = 1_750_000_000.0
CHECK = settings(
    max_examples=150, derandomize=True, suppress_health_check=list(HealthCheck), deadline=None
)

# ------------------------------------------------------------------- Retry-After

ODD_NUMBERS = st.sampled_from(
    [
        *("\uff11", "1e3", " 5 ", "+5", "5.", "nan", "inf", "-0", "0", "\u0663", "5\u00a0"),
        *("9" * 400, "9" * 5000, "1.5", ".5", "1_000", "0x10", "Infinity", "30, 30", "5,Sun"),
    ]
)
IMF_DATES = st.builds(
    "{}, {} {} {} {}:{}:{} {}".format,
    st.sampled_from(["Sun", "Mon", "xyz"]),
    st.sampled_from(["1", "01", "31", "29", "00", "99"]),
    st.sampled_from(["Jan", "Feb", "feb", "Dec", "Foo"]),
    st.sampled_from(["0000", "0001", "1970", "2025", "9999"]),
    st.sampled_from(["00", "23", "24", "99"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60", "61"]),
    st.sampled_from(["GMT", "gmt", "UT", "UTC", "+0000", "-2359", "+9999"]),
)
RETRY_AFTER = st.one_of(st.text(max_size=40), ODD_NUMBERS, IMF_DATES)
NOWS = st.one_of(st.just(NOW), st.floats(0, 253402300799.0), st.just(-1e10))


@CHECK
@given(RETRY_AFTER, NOWS)
def test_a_retry_after_is_no_hint_or_a_finite_delay(value: str, now: float) -> None:
    delay = parse_retry_after(value, now)
    assert delay is None or (math.isfinite(delay) and delay >= 0)


@CHECK
@given(st.lists(RETRY_AFTER, max_size=4))
def test_of_several_fields_the_longest_readable_one_holds(values: list[str]) -> None:
    each = [parse_retry_after_fields([value], NOW) for value in values]
    readable = [delay for delay in each if delay is not None]
    assert parse_retry_after_fields(values, NOW) == (max(readable) if readable else None)


@CHECK
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_an_imf_date_of_any_year_reads_back(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    text = f"{moment:%a, %d %b} {moment.year:04d} {moment:%H:%M:%S} GMT"
    assert parse_http_date(text, NOW) == moment.timestamp()


# ------------------------------------------------------------------- retry policy

FINITE = st.floats(min_value=0, max_value=1e308, allow_nan=False, allow_infinity=False)


@CHECK
@given(FINITE, st.integers(-5, 10**6), FINITE, st.floats(0, 1, exclude_max=True))
def test_a_backoff_is_finite_and_capped(
    backoff: float, retry: int, max_backoff: float, draw: float
) -> None:
    delay = backoff_delay(backoff, retry, max_backoff, draw)
    assert math.isfinite(delay) and 0 <= delay <= max_backoff


@CHECK
@given(
    retryable=st.booleans(),
    retries_done=st.integers(0, 10**6),
    max_retries=st.integers(0, 10**6),
    hint=st.one_of(st.none(), FINITE, st.just(TOO_LONG)),
    backoff=FINITE,
    max_retry_after=FINITE,
    time_left=st.one_of(FINITE, st.just(math.inf)),
    max_backoff=FINITE,
    draw=st.floats(0, 1),
)
def test_a_retry_waits_the_hint_or_a_capped_backoff_within_the_time_left(
    **arguments: Any,
) -> None:
    decision = decide(**arguments)
    assert math.isfinite(decision.delay) and decision.delay >= 0
    if decision.retry:
        assert arguments["retryable"] and arguments["retries_done"] < arguments["max_retries"]
        assert decision.delay < arguments["time_left"]
        if arguments["hint"]:
            assert decision.delay == arguments["hint"] <= arguments["max_retry_after"]
        else:
            assert decision.delay <= arguments["max_backoff"]


# ------------------------------------------------------------------- quota headers

QUOTA_HEADERS = [
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-limit",
    "x-rate-limit-remaining",
    "x-ratelimit-reset-after",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-limit",
]
NUMBER = st.one_of(
    st.integers(0, 10**12).map(str),
    st.sampled_from(["0.5", "9" * 400, "1e3", "-1", "nan", "inf", " 7 ", "\uff11", "1000000001"]),
)
PARAMETER = st.builds(
    "{}={}".format, st.sampled_from(["r", "t", "q", "w", "limit", "remaining", "reset"]), NUMBER
)
ITEM = st.builds(
    lambda name, parameters: ";".join([name, *parameters]),
    st.sampled_from(['"default"', "default", '"day"', "", "*"]),
    st.lists(PARAMETER, max_size=4),
)
FIELD = st.one_of(
    st.lists(st.one_of(ITEM, NUMBER), min_size=1, max_size=3).map(", ".join),
    NUMBER,
    st.text(max_size=30),
)


@CHECK
@given(st.dictionaries(st.sampled_from(QUOTA_HEADERS), FIELD), st.floats(0, 4e9))
def test_a_quota_is_none_or_sane_counts_and_delays(fields: dict[str, str], wall: float) -> None:
    # A plain dict of lower-case names is a case-insensitive mapping too, and takes any
    # text (httpx.Headers refuses values it cannot encode before a parser sees them).
    quota = parse_quota(fields, wall)
    if quota is None:
        return
    assert quota.remaining >= 0 and (quota.limit is None or quota.limit >= 0)
    for delay in (quota.reset_after, quota.window, quota.policy_rate, spent_quota_delay(quota)):
        assert delay is None or (math.isfinite(delay) and delay >= 0)


# ------------------------------------------------------------------- the throttle

EVENT = st.one_of(
    st.tuples(st.just("admit"), st.booleans()),
    st.tuples(
        st.just("answer"),
        st.integers(0, 50),
        st.sampled_from([200, 200, 201, 429, 429, 503, 403, 500, 420]),
        st.one_of(st.none(), st.sampled_from([0.0, 1e-9, 0.5, 1.0, 30.0, 3600.0, TOO_LONG])),
        st.one_of(
            st.none(),
            st.builds(
                Quota,
                st.integers(0, 5000),
                st.one_of(st.none(), st.floats(0, 4000)),
                st.one_of(st.none(), st.integers(0, 5000)),
                st.one_of(st.none(), st.floats(1e-3, 86400)),
            ),
        ),
        st.floats(0, 2),
    ),
    st.tuples(st.just("tick"), st.floats(0, 5)),
)
SETTINGS = st.builds(
    ThrottleSettings,
    rate_limit=st.one_of(st.none(), st.floats(1e-3, 1e4)),
    burst=st.integers(1, 50),
    decrease=st.floats(0.01, 0.99),
    min_rate=st.floats(1e-3, 100),
    safety=st.floats(0.01, 1.0),
    quota_spread=st.floats(1e-3, 1e5),
)


@CHECK
@given(SETTINGS, st.integers(1, 64), st.lists(EVENT, max_size=100), st.integers(0, 2**32))
def test_the_throttle_keeps_finite_rates_and_limits_under_any_answers(
    throttle_settings: ThrottleSettings, max_concurrency: int, events: list[Any], seed: int
) -> None:
    now = 1000.0
    throttle = OriginThrottle(throttle_settings, max_concurrency, now, random.Random(seed))
    out = []
    for event in events:
        if event[0] == "tick":
            now += event[1]
        elif event[0] == "admit":
            admission = throttle.admit(now)
            assert admission.kind == "gate" or math.isfinite(admission.at)
            assert admission.kind == "probe-wait" or admission.at >= now
            if admission.kind in ("go", "probe") and len(out) < max_concurrency + 5:
                now = max(now, admission.at)
                paced, probe = admission.kind == "go", admission.kind == "probe"
                out.append(throttle.on_sent(now, paced=paced, probe=probe))
            elif admission.kind == "gate":
                assert throttle.wake_time() >= throttle.gate_until
        elif out:
            _, which, status, hint, quota, late = event
            ticket = out.pop(which % len(out))
            now += late
            throttle.on_response(ticket, now, status=status, hint=hint, quota=quota)
            throttle.on_done(ticket, now)
        rate = throttle.effective_rate(now)
        assert rate is None or (math.isfinite(rate) and rate > 0)
        learned = throttle.learned_rate
        assert learned is None or (
            math.isfinite(learned) and learned >= throttle_settings.min_rate * (1 - 1e-9)
        )
        assert throttle.concurrency_limit >= 1 and throttle.in_flight == len(out)
        assert math.isfinite(throttle.server_interval(now))


# ------------------------------------------------------------------- redaction

SECRET_NAMES = [*sorted(SECRET_PARAMS), "accessToken", "clientSecret", "X-Goog-Api-Key"]
SECRET_NAMES += ["aws_secret_access_key", "api_keys", "tokens", "filter[api_key]"]
SECRET_VALUE = st.text(alphabet="abcdefghijkmnpqrstuvwxyz23456789", min_size=6, max_size=12).map(
    "Zq{}Qz".format
)
PLAIN_NAME = st.sampled_from(["page", "q", "sort", "fields", "limit", "expand", "cursor"])
PLAIN_VALUE = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="#"),
    max_size=8,
)


@st.composite
def secret_names(draw: st.DrawFn) -> str:
    """A credential's name in any case."""
    name = draw(st.sampled_from(SECRET_NAMES))
    upper = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if up else c.lower() for c, up in zip(name, upper, strict=True))


@st.composite
def urls_with_a_secret(draw: st.DrawFn) -> tuple[str, str]:
    """A URL with a credential in its query, its fragment or both (its name percent-
    encoded in part or whole, or not), and the credential's value."""
    name, value = draw(secret_names()), draw(SECRET_VALUE)
    encoding = draw(st.sampled_from(["plain", "all", "some"]))
    if encoding == "plain":
        key = quote(name, safe="[]")
    elif encoding == "all":
        key = "".join(f"%{byte:02X}" for byte in name.encode())
    else:
        key = "".join(
            f"%{ord(c):02x}" if draw(st.booleans()) else quote(c, safe="[]") for c in name
        )
    pairs = [
        f"{quote(k)}={quote(v, safe='')}"
        for k, v in draw(st.lists(st.tuples(PLAIN_NAME, PLAIN_VALUE), max_size=3))
    ]
    pairs.insert(draw(st.integers(0, len(pairs))), f"{key}={quote(value, safe='')}")
    query = "&".join(pairs)
    where = draw(st.sampled_from(["?{}", "#{}", "?{0}#{0}"]))
    return "https://api.example.com/v1/x" + where.format(query), value


@CHECK
@given(urls_with_a_secret())
def test_a_shown_url_hides_its_credentials_and_keeps_the_rest(case: tuple[str, str]) -> None:
    url, value = case
    shown = safe_url(url)
    assert value not in shown
    sent, seen = httpx.URL(url), httpx.URL(shown)
    assert (sent.scheme, sent.host, sent.port, sent.path) == (
        seen.scheme,
        seen.host,
        seen.port,
        seen.path,
    )

    def plain(of: httpx.URL) -> list[tuple[str, str]]:
        return [(k, v) for k, v in of.params.multi_items() if not is_secret_name(k)]

    assert plain(sent) == plain(seen)


@CHECK
@given(st.lists(st.tuples(PLAIN_NAME, PLAIN_VALUE), max_size=4), st.sampled_from(["", "#a=b"]))
def test_a_url_without_credentials_is_shown_as_it_is(
    pairs: list[tuple[str, str]], fragment: str
) -> None:
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)
    url = "https://api.example.com/v1/x" + (f"?{query}" if pairs else "") + fragment
    assert safe_url(url) == str(httpx.URL(url))


@CHECK
@given(
    secret_names(),
    SECRET_VALUE,
    st.sampled_from(["string", "number", "list", "object"]),
    st.integers(0, 80),
)
def test_a_quoted_body_head_hides_a_credentials_value_whatever_its_shape(
    name: str, value: str, shape: str, cut: int
) -> None:
    member: Any = {"string": value, "list": [value, "x"], "object": {"id": value}}.get(shape)
    if shape == "number":
        member, value = 77777777, "77777777"
    text = json.dumps({"a": 1, name: member, "b": [1, 2]}).encode()
    head = text[: len(text) - cut]  # an error quotes a head, which may end anywhere
    assert value.encode() not in hide_secret_values(head)


@CHECK
@given(
    secret_names(),
    SECRET_VALUE,
    st.sampled_from(["form", "javascript", "list"]),
    st.integers(0, 80),
)
def test_a_body_head_hides_a_credentials_value_under_an_unquoted_name(
    name: str, value: str, shape: str, cut: int
) -> None:
    # A token endpoint that said JSON and answered a form, a JavaScript object, a
    # ';' list: the names are not quoted, and the values were shown whole.
    text = {
        "form": f"a=1&{name}={value}&token_type=bearer",
        "javascript": f"{{a: 1, {name}: '{value}', b: [1, 2]}}",
        "list": f"a=1; {name} = {value}; b=2",
    }[shape].encode()
    head = text[: len(text) - cut]
    assert value.encode() not in hide_secret_values(head)


@st.composite
def bodies_with_a_secret(draw: st.DrawFn) -> tuple[Any, str]:
    """A JSON body holding a credential up to three containers deep, and its value."""
    value = draw(SECRET_VALUE)
    body: Any = {draw(secret_names()): value}
    for _ in range(draw(st.integers(0, 3))):
        body = draw(st.sampled_from([{"data": body}, [body], (body,)]))
    return body, value


@CHECK
@given(bodies_with_a_secret())
def test_the_attempt_record_never_holds_a_body_credential(case: tuple[Any, str]) -> None:
    body, value = case
    record = describe_attempt(
        method="POST",
        url="https://h/x",
        attempt=1,
        request_kwargs={"json": body},
        restricted_paths=(),
        redact_fields=(),
        redact_value="REDACTED",
    )
    assert value not in to_log_text(record["trestfly_body"])
