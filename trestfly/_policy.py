"""Pure retry decisions: classify an outcome, then decide whether and when to retry.

Nothing here sleeps, sends or reads a clock: the session passes in what it knows (status,
method, hint, retries so far, the time left before the caller's deadline) and gets back
a small frozen value telling it what to do.  That keeps every rule unit-testable without
a network and keeps the Trio shell a straight loop.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

import httpx

from . import errors
from .errors import StopReason

#: Statuses retried by default: throttling (420, 429) and transient gateway trouble.
#: 501 is deliberately absent: "not implemented" is not transient.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({420, 429, 502, 503, 504})

#: Methods that may be repeated after a request may already have reached the server.
IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})

#: Gateway answers that say nothing of whether the origin behind the gateway processed
#: the request (a 504: it did, too slowly; a 502: it answered something the gateway
#: could not pass on).  Retried for a POST, they could create an order twice.
MAYBE_PROCESSED_STATUSES: frozenset[int] = frozenset({502, 504})

# Requests no retry can cure: a bad scheme or URL, a header value that is not valid HTTP
# (h11's refusal) or that httpx cannot encode.  The last two quote the value.
_HEADER_VALUE_QUOTED = (httpx.LocalProtocolError, UnicodeEncodeError)
_INVALID = (httpx.UnsupportedProtocol, httpx.InvalidURL, *_HEADER_VALUE_QUOTED)
# Failures that happen before a single byte reached the server: safe for every method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Failures after the request may have been (partly) sent: only idempotent methods.
_MAYBE_SENT = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)


def is_success(status: int) -> bool:
    """2xx is success; everything else goes through the error map."""
    return 200 <= status < 300


def error_class(
    status: int, error_map: Mapping[int, type[errors.APIError]]
) -> type[errors.APIError]:
    """The exception class for a non-2xx status: the mapped one, else :class:`APIError`."""
    return error_map.get(status, errors.APIError)


def is_retryable_status(status: int, retry_statuses: Collection[int]) -> bool:
    """Whether a response status is worth another attempt."""
    return status in retry_statuses


class TransportVerdict(enum.Enum):
    """What a transport failure allows."""

    RETRY = "retry"
    RAISE = "raise"
    INVALID = "invalid"  # no retry can cure it (bad scheme, bad URL)


def classify_transport_error(
    exc: Exception, method: str, *, answered: bool = False
) -> TransportVerdict:
    """Whether a transport failure may be retried for ``method``.

    A failure before the request reached the server is retried for every method; one after
    it may have been sent only for idempotent methods, so a POST is never doubled.

    ``answered``: the server answered the request before the failure, which came on a
    request httpx sent next within the same call (a redirect's, an auth flow's).  The
    request reached the server whatever the failure says: a POST answered 303 (the
    Post/Redirect/Get pattern) was sent again on every retry when the redirect's
    connection failed, creating the order each time.
    """
    if isinstance(exc, _INVALID):
        return TransportVerdict.INVALID
    if never_sent(exc) and not answered:
        return TransportVerdict.RETRY
    if (answered or isinstance(exc, _MAYBE_SENT)) and method.upper() in IDEMPOTENT_METHODS:
        return TransportVerdict.RETRY
    return TransportVerdict.RAISE


def is_unreadable_location(exc: Exception) -> bool:
    """Whether ``exc`` is httpx refusing a redirect's ``Location`` as no URL at all
    (``http://[::zz]/``).  httpx says so only in words, in a RemoteProtocolError like
    any cut-off answer's, so it is known by them."""
    return isinstance(exc, httpx.RemoteProtocolError) and str(exc).startswith(
        "Invalid URL in location header"
    )


def is_replayable(body: object) -> bool:
    """Whether a request body (``content=`` or ``data=``) can be sent again on a retry.

    Bytes, text and form mappings can; an iterator or async iterator of bytes (a
    generator, a file being streamed) is spent by the first attempt, and httpx would send
    a retry with an empty body.
    """
    return body is None or isinstance(body, str | bytes | bytearray | memoryview | Mapping)


def files_replayable(files: object) -> bool:
    """Whether every part of a ``files=`` argument can be sent again on a retry.

    httpx rewinds a file part (``seek(0)``) each time it sends it, and sends bytes and
    text as they are; a file that cannot be rewound (a pipe, a socket, a reader without
    ``seek()``) is spent by the first attempt, and a retry would send the part empty.
    So is an iterator of parts: a retry would send none.
    """
    if files is None:
        return True
    if isinstance(files, Iterator):
        return False
    if isinstance(files, Mapping):
        fields = list(files.values())
    else:
        try:
            fields = [field for _, field in files]  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            return True  # httpx refuses such files before anything is sent
    return all(_rewindable(field) for field in fields)


def _rewindable(value: object) -> bool:
    # A file part is the file itself or a (filename, file, ...) tuple.
    file = value[1] if isinstance(value, tuple) and len(value) >= 2 else value
    if isinstance(file, str | bytes):
        return True
    seekable = getattr(file, "seekable", None)
    if seekable is None:
        return hasattr(file, "seek")  # httpx calls seek(0) on whatever has one
    try:
        return bool(seekable())
    except (OSError, ValueError):  # a closed file
        return False


def can_send_again(
    content: object,
    data: object,
    failure: Exception | None,
    files: object = None,
    *,
    answered: bool = False,
) -> bool:
    """Whether a retry can send the request's body (``content=``, ``data=``, ``files=``)
    again: it is replayable, or the attempt failed before any of it was sent
    (``failure``, unless the request was ``answered`` before it: see
    :func:`classify_transport_error`)."""
    if failure is not None and never_sent(failure) and not answered:
        return True
    return is_replayable(content) and is_replayable(data) and files_replayable(files)


def retryable_status(
    status: int, method: str, retry_statuses: frozenset[int], retry_on: frozenset[int]
) -> bool:
    """Whether a status answering a call of ``method`` is retried: it is in the call's
    ``retry_statuses``; and a 502 or 504 (see MAYBE_PROCESSED_STATUSES) answering a
    non-idempotent method only when ``retry_on`` names it (the user's word that the
    API makes the call safe to repeat, an idempotency key say)."""
    if status not in retry_statuses:
        return False
    return (
        status not in MAYBE_PROCESSED_STATUSES
        or method.upper() in IDEMPOTENT_METHODS
        or status in retry_on
    )


def processed_before_redirect(method: str, response: httpx.Response) -> bool:
    """Whether a call of a non-idempotent ``method`` was answered with a redirect that
    httpx followed with another method (a 303, or a 301/302 after a POST): the server
    processed the request, and ``response`` is the answer to the redirect's own GET.
    Retried whole, the POST was sent again on each retry of a 503 or 429 there (an
    order created four times with ``retries=3``)."""
    return (
        bool(response.history)
        and method.upper() not in IDEMPOTENT_METHODS
        and response.request.method != method.upper()
    )


def never_sent(exc: Exception) -> bool:
    """Whether a transport failure happened before any of the request was sent (so a
    streamed body is still unread)."""
    return isinstance(exc, _NOT_SENT)


def quotes_header_value(exc: Exception) -> bool:
    """Whether an invalid request's error message may quote a header value (h11's
    refusal, the encoder's): its text must not reach a message or a traceback."""
    return isinstance(exc, _HEADER_VALUE_QUOTED)


def transport_error_class(exc: Exception) -> type[errors.TimeoutError | errors.ConnectionError]:
    """The trestfly exception raised when a transport failure is final."""
    if isinstance(exc, httpx.TimeoutException):
        return errors.TimeoutError
    return errors.ConnectionError


def backoff_bound(backoff: float, retry_number: int, max_backoff: float) -> float:
    """The longest wait before retry ``n`` (1 for the first) without a server hint:
    ``backoff * 2 ** (n - 1)``, at most ``max_backoff``."""
    # The exponent is bounded so that a large retry count cannot overflow a float.
    return min(max_backoff, backoff * 2.0 ** min(retry_number - 1, 64))


def backoff_delay(backoff: float, retry_number: int, max_backoff: float, draw: float) -> float:
    """The wait before retry ``n`` without a server hint: ``draw`` (uniform in [0, 1))
    times :func:`backoff_bound` ("full jitter").

    Requests that failed together (one flaky second, one dropped connection pool) would
    otherwise come back together; spread over the whole bound they do not, and the mean
    wait is half of it.  A fixed or linear schedule also makes a client that meets
    10% of failures spend most of its time asleep (RESTfly's ``backoff * n`` with
    1 s made a crawl 30 times slower than the failures required).
    """
    return draw * backoff_bound(backoff, retry_number, max_backoff)


def counts_against_retries(
    *, throttled: bool, stale: bool, uncounted: int, max_retries: int
) -> bool:
    """Whether the retry of this failure counts against ``retries``.

    A throttle of a request that was already in flight when the origin's throttling
    episode began (another request had been throttled first, here or in another worker)
    says nothing about this request: the crowd it was sent in had already been told.
    Its retry is not counted, up to ``max_retries`` of them per call, so that the first
    wave against an unknown limit, or a worker that heard of another's throttle late,
    does not use up a request's retries.
    """
    return not (throttled and stale and uncounted < max_retries)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`decide`: sleep ``delay`` then retry, or stop for ``stop``."""

    delay: float
    stop: StopReason | None = None

    @property
    def retry(self) -> bool:
        return self.stop is None


def decide(
    *,
    retryable: bool,
    retries_done: int,
    max_retries: int,
    hint: float | None,
    backoff: float,
    max_retry_after: float,
    time_left: float,
    max_backoff: float,
    draw: float,
) -> Decision:
    """Decide whether a failed attempt is retried and after how long.

    Args:
        retryable: the status or transport failure allows a retry at all.
        retries_done: retries already made (0 after the first attempt).
        max_retries: the configured number of retries.
        hint: the server's delay hint in seconds (Retry-After), or None.
        backoff: the longest wait of the first retry without a hint, in seconds.
        max_retry_after: a hint above this fails at once instead of sleeping.
        time_left: seconds until the caller's effective deadline (``math.inf`` if none).
        max_backoff: the longest wait of any retry without a hint.
        draw: a uniform draw in [0, 1) that picks the wait under the bound (the shell
            draws it; 1.0 gives the bound itself).
    """
    if not retryable:
        return Decision(0.0, StopReason.NOT_RETRYABLE)
    if retries_done >= max_retries:
        return Decision(0.0, StopReason.EXHAUSTED)
    if hint is not None and hint > max_retry_after:
        return Decision(hint, StopReason.WAIT_TOO_LONG)
    # No hint, or a hint of zero (`Retry-After: 0`, a date already past, as a skewed
    # clock sends), takes the backoff: "now" says nothing about pacing, and taken at its
    # word a hundred calls against an outage made all their retries in the same instant.
    delay = hint or backoff_delay(backoff, retries_done + 1, max_backoff, draw)
    if delay >= time_left:  # hint and backoff are finite, so an infinite time_left never stops
        return Decision(delay, StopReason.PAST_DEADLINE)
    return Decision(delay)
