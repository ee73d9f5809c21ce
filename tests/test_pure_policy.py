"""The retry decision and status classification, without any I/O."""

import io
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from trestfly import errors
from trestfly._policy import (
    DEFAULT_RETRY_STATUSES,
    Decision,
    StopReason,
    TransportVerdict,
    backoff_bound,
    backoff_delay,
    can_send_again,
    classify_transport_error,
    counts_against_retries,
    decide,
    error_class,
    is_replayable,
    is_success,
    processed_before_redirect,
    transport_error_class,
)


def run(**overrides: Any) -> Decision:
    arguments: dict[str, Any] = {
        "retryable": True,
        "retries_done": 0,
        "max_retries": 3,
        "hint": None,
        "backoff": 1.0,
        "max_retry_after": 300.0,
        "time_left": math.inf,
        "max_backoff": math.inf,
        "draw": 1.0,
    }
    arguments.update(overrides)
    return decide(**arguments)


def test_default_retry_statuses() -> None:
    assert {420, 429, 502, 503, 504} == DEFAULT_RETRY_STATUSES
    assert 501 not in DEFAULT_RETRY_STATUSES  # not transient
    assert 500 not in DEFAULT_RETRY_STATUSES


@pytest.mark.parametrize(
    ("status", "ok"),
    [(199, False), (200, True), (204, True), (299, True), (300, False), (404, False)],
)
def test_success_is_2xx(status: int, ok: bool) -> None:
    assert is_success(status) is ok


def test_error_class_uses_the_map_then_apierror() -> None:
    assert error_class(404, errors.BASE_ERROR_MAP) is errors.NotFoundError
    assert error_class(420, errors.BASE_ERROR_MAP) is errors.TooManyRequestsError
    assert error_class(429, errors.BASE_ERROR_MAP) is errors.TooManyRequestsError
    assert error_class(499, errors.BASE_ERROR_MAP) is errors.APIError
    assert error_class(302, errors.BASE_ERROR_MAP) is errors.APIError


def test_backoff_bound_doubles_per_retry_up_to_the_cap() -> None:
    assert [backoff_bound(0.5, n, 10.0) for n in (1, 2, 3, 4, 5, 6)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
    ]
    # A huge retry number neither overflows nor passes the cap.
    assert backoff_bound(0.1, 10_000, 30.0) == 30.0
    assert backoff_bound(0.0, 3, 10.0) == 0.0


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999])
def test_backoff_delay_is_the_draw_share_of_the_bound(draw: float) -> None:
    assert backoff_delay(0.5, 3, 10.0, draw) == pytest.approx(draw * 2.0)


def test_decide_uses_backoff_without_hint() -> None:
    assert run(retries_done=0) == run(retries_done=0)
    assert run(retries_done=0).delay == 1.0
    assert run(retries_done=2).delay == 4.0
    assert run(retries_done=2, draw=0.5).delay == 2.0
    assert run(retries_done=2, max_backoff=3.0).delay == 3.0
    assert run(retries_done=2, max_backoff=3.0, draw=0.5).delay == 1.5


def test_decide_prefers_the_server_hint() -> None:
    decision = run(hint=4.5)
    assert decision.retry and decision.delay == 4.5
    # A hint of zero (Retry-After: 0, a date already past) is no pacing: the backoff.
    assert run(hint=0.0).delay == 1.0
    assert run(hint=0.0, retries_done=2, draw=0.5).delay == 2.0


def test_decide_stops_when_exhausted_or_not_retryable() -> None:
    assert run(retries_done=3).stop is StopReason.EXHAUSTED
    assert run(retryable=False).stop is StopReason.NOT_RETRYABLE
    assert run(max_retries=0).stop is StopReason.EXHAUSTED


def test_decide_fails_fast_on_a_hint_above_max_retry_after() -> None:
    decision = run(hint=301.0)
    assert decision.stop is StopReason.WAIT_TOO_LONG
    assert decision.delay == 301.0
    assert run(hint=300.0).retry


def test_decide_fails_fast_when_the_delay_outlasts_the_deadline() -> None:
    assert run(hint=5.0, time_left=4.0).stop is StopReason.PAST_DEADLINE
    assert run(time_left=0.5).stop is StopReason.PAST_DEADLINE
    assert run(time_left=1.5).retry


REQUEST = httpx.Request("GET", "http://h/")


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("x"), httpx.ConnectTimeout("x"), httpx.PoolTimeout("x")],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_failures_before_sending_are_retried_for_every_method(exc: Exception, method: str) -> None:
    assert classify_transport_error(exc, method) is TransportVerdict.RETRY


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError("x"),
        httpx.WriteError("x"),
        httpx.ReadTimeout("x"),
        httpx.WriteTimeout("x"),
        httpx.RemoteProtocolError("x"),
    ],
)
def test_failures_after_sending_are_retried_only_when_idempotent(exc: Exception) -> None:
    for method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "get"):
        assert classify_transport_error(exc, method) is TransportVerdict.RETRY
    for method in ("POST", "PATCH"):
        assert classify_transport_error(exc, method) is TransportVerdict.RAISE


def test_incurable_failures_are_never_retried() -> None:
    assert (
        classify_transport_error(httpx.UnsupportedProtocol("x"), "GET") is TransportVerdict.INVALID
    )
    assert classify_transport_error(httpx.InvalidURL("x"), "GET") is TransportVerdict.INVALID


def test_final_transport_errors_are_trestfly_and_builtin_errors() -> None:
    assert transport_error_class(httpx.ReadTimeout("x")) is errors.TimeoutError
    assert transport_error_class(httpx.ConnectError("x")) is errors.ConnectionError
    assert issubclass(errors.TimeoutError, TimeoutError)
    assert issubclass(errors.ConnectionError, ConnectionError)
    assert not issubclass(errors.RequestTimeoutError, TimeoutError)


@pytest.mark.parametrize(
    ("throttled", "stale", "uncounted", "counted"),
    [
        (True, True, 0, False),  # old news: free
        (True, True, 2, False),
        (True, True, 3, True),  # at most `retries` free ones
        (True, False, 0, True),  # a fresh throttle counts
        (False, True, 0, True),  # a 503 counts, stale or not
    ],
)
def test_only_stale_throttles_are_retried_uncounted(
    throttled: bool, stale: bool, uncounted: int, counted: bool
) -> None:
    assert (
        counts_against_retries(throttled=throttled, stale=stale, uncounted=uncounted, max_retries=3)
        is counted
    )


def test_only_bodies_that_can_be_sent_again_are_replayable() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x"

    for body in (None, b"x", "x", bytearray(b"x"), memoryview(b"x"), {"field": "x"}):
        assert is_replayable(body)
    for body in (chunks(), iter([b"x"]), io.BytesIO(b"x")):
        assert not is_replayable(body)


def test_a_stream_can_be_sent_again_only_if_the_attempt_never_sent_it() -> None:
    stream = iter([b"x"])
    assert can_send_again(b"x", None, httpx.ReadError("reset"))
    assert not can_send_again(stream, None, httpx.ReadError("reset"))
    assert not can_send_again(None, stream, None)  # an answer came: the body was read
    assert can_send_again(stream, None, httpx.ConnectError("refused"))


def _redirected(method: str, first: int, then: str) -> httpx.Response:
    first_response = httpx.Response(first, request=httpx.Request(method, "http://a.test/o"))
    final = httpx.Response(503, request=httpx.Request(then, "http://a.test/o/1"))
    final.history = [first_response]
    return final


def test_a_non_idempotent_call_answered_with_a_redirect_was_processed() -> None:
    assert processed_before_redirect("POST", _redirected("POST", 303, "GET"))
    assert processed_before_redirect("patch", _redirected("PATCH", 303, "GET"))
    # A 307/308 sends the same method on: the first server did not take the request.
    assert not processed_before_redirect("POST", _redirected("POST", 307, "POST"))
    # Idempotent calls are retried whole, and a call without a redirect as before.
    assert not processed_before_redirect("PUT", _redirected("PUT", 303, "GET"))
    plain = httpx.Response(503, request=httpx.Request("POST", "http://a.test/o"))
    assert not processed_before_redirect("POST", plain)
