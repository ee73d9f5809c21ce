"""The trestfly exception hierarchy.

Everything trestfly raises on purpose derives from :class:`TrestflyError`.  Non-2xx
responses raise :class:`APIError` or the subclass mapped to their status code (RESTfly
1.x names); transport failures that outlive their retries raise :class:`ConnectionError`
or :class:`TimeoutError`, which are also the builtin exceptions of the same name so
``except TimeoutError`` works as a Python programmer expects.

Which statuses map to which class, and which are retried, is session configuration
(``_error_map`` / ``retry_on``), never mutable class state.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from ._safe_url import hide_secret_values, safe_url
from ._stats import RetryRecord

__all__ = [
    "BASE_ERROR_MAP",
    "BODY_LIMIT",
    "APIError",
    "BadGatewayError",
    "BadRequestError",
    "BadResponseError",
    "ConnectionError",
    "ExpectationFailedError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "InvalidContentError",
    "InvalidMethodError",
    "LengthRequiredError",
    "MethodNotImplementedError",
    "MisdirectRequestError",
    "NetworkAuthenticationRequiredError",
    "NoLongerExistsError",
    "NotAcceptableError",
    "NotExtendedError",
    "NotFoundError",
    "PaginationError",
    "PayloadTooLargeError",
    "PreconditionFailedError",
    "PreconditionRequiredError",
    "ProxyAuthenticationError",
    "RangeNotSatisfiableError",
    "RequestConflictError",
    "RequestHeaderFieldsTooLargeError",
    "RequestTimeoutError",
    "RequiredParameterError",
    "ResponseDecodeError",
    "ServerError",
    "ServiceUnavailableError",
    "SessionNotOpenError",
    "StopReason",
    "TeapotResponseError",
    "TimeoutError",
    "TooEarlyError",
    "TooManyRequestsError",
    "TrestflyError",
    "URITooLongError",
    "UnauthorizedError",
    "UnavailableForLegalReasonsError",
    "UnexpectedValueError",
    "UnsupportedMediaTypeError",
    "UpgradeRequiredError",
]

#: Longest response body, in characters, quoted in an :class:`APIError` message.
#:
#: .. versionadded:: 0.1.0
BODY_LIMIT = 1000


class StopReason(enum.StrEnum):
    """Why a call made no further attempt: the ``stop_reason`` of the error it raised.

    A ``str`` (its value is a short sentence, stable across releases), so it can be
    logged or compared as it is: ``error.stop_reason is StopReason.BUDGET`` or
    ``error.stop_reason == "retries exhausted"``.

    .. versionadded:: 0.1.0
    """

    #: The status (or transport failure) is not one the call retries.
    NOT_RETRYABLE = "not retryable"
    #: Every retry the session allows (``retries``) was made.
    EXHAUSTED = "retries exhausted"
    #: The server's delay hint, the origin's closed gate or the pacer's next slot is
    #: further off than ``max_retry_after``.
    WAIT_TOO_LONG = "the wait would pass max_retry_after"
    #: The next attempt's wait would end after the caller's Trio deadline.
    PAST_DEADLINE = "the wait would end after the caller's deadline"
    #: The call's own ``deadline=`` passed while it was out or waiting.
    DEADLINE_PASSED = "the call's deadline passed"
    #: The retry budget refused the retry: many requests were failing together.
    BUDGET = "retry budget exhausted (many requests failing together)"
    #: The request body is a stream, spent by the attempt that failed.
    STREAMED_BODY = "the request body is a stream, which cannot be sent again"
    #: A redirect showed the server processed the (non-idempotent) request.
    PROCESSED = "the server processed the request and redirected it; it is not idempotent"


class TrestflyError(Exception):
    """Base class of every exception trestfly raises on purpose.

    .. versionadded:: 0.1.0
    """


class UnexpectedValueError(TrestflyError, ValueError):
    """A value (argument, keyword, option) is not one trestfly can accept.

    .. versionadded:: 0.1.0
    """


class RequiredParameterError(TrestflyError, ValueError):
    """A required parameter was not given.

    .. versionadded:: 0.1.0
    """


class ConnectionError(TrestflyError, builtins.ConnectionError):
    """The server could not be reached, or the connection broke, after every retry.

    Chained (``__cause__``) from the httpx exception of the last attempt.

    Attributes:
        retries: how many retries were made before giving up.
        history: one :class:`trestfly.RetryRecord` per retry made, oldest first (the
            503s before the connection broke, say).
        stop_reason: why no further attempt was made (a :class:`StopReason`), or
            ``None`` for an error trestfly did not raise from a call.

    .. versionadded:: 0.1.0
    """

    #: Set by the session on the errors it raises (class defaults: immutable).
    retries: int = 0
    history: tuple[RetryRecord, ...] = ()
    stop_reason: StopReason | None = None


class TimeoutError(TrestflyError, builtins.TimeoutError):
    """A request (or its ``deadline``) ran out of time.

    Chained from the httpx timeout of the last attempt when there was one.

    Attributes:
        retries: how many retries were made before giving up.
        history: one :class:`trestfly.RetryRecord` per retry made, oldest first.
        stop_reason: why no further attempt was made (a :class:`StopReason`:
            ``DEADLINE_PASSED`` for the call's ``deadline=``), or ``None`` for an
            error trestfly did not raise from a call.

    .. versionadded:: 0.1.0
    """

    #: Set by the session on the errors it raises (class defaults: immutable).
    retries: int = 0
    history: tuple[RetryRecord, ...] = ()
    stop_reason: StopReason | None = None


def _restore(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """Rebuild a pickled or copied error without calling its ``__init__`` (see
    :func:`_reduce`)."""
    return cls.__new__(cls, *args)


def _reduce(error: BaseException) -> tuple[Any, ...]:
    """``__reduce__`` of an error whose ``__init__`` does not take its ``args``.

    ``Exception.__reduce__`` replays ``cls(*args)``, here ``cls(message)``, which the
    constructors of these classes (taking a response) cannot take: copying or pickling
    the error (multiprocessing, ``trio-parallel``) failed.  The state is restored as it
    is instead, so a message that hides query values stays hidden, and a subclass with a
    constructor of its own is restored just the same.
    """
    return (_restore, (type(error), error.args), error.__dict__)


def _quote_body(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError, LookupError):
        return "<unread>"
    if len(text) > BODY_LIMIT:
        return text[: BODY_LIMIT - 3] + "..."
    return text


class ResponseDecodeError(TrestflyError, ValueError):
    """A response claimed to be JSON but its body does not parse (or, with ``box=``,
    does not make a Box with the call's ``box_attrs``: ``box_dots=True`` and a key such
    as ``"10.0.0.1"``, ``box_recast={"id": int}`` and an object under ``"id"``).

    Raised when a call asked for ``box=`` or ``conv_json=`` and the response's
    ``Content-Type`` says JSON.

    Attributes:
        response: the response whose body does not parse.

    ``url`` is the URL as the message shows it, already redacted (the session passes
    the call's view of it); without it, the request's URL with ``redact_fields``
    redacted.

    The message quotes the first 64 bytes of the body, the values of keys named as
    credentials (``access_token``, ...) or in ``redact_fields`` replaced by
    ``redact_value``; with ``hide_body`` (the session sets it for its restricted paths,
    a token endpoint's), none of it.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        response: httpx.Response,
        reason: str,
        *,
        redact_fields: Collection[str] = (),
        redact_value: str = "REDACTED",
        problem: str = "claims JSON but does not parse",
        url: str | None = None,
        hide_body: bool = False,
    ) -> None:
        self.response = response
        shown = url
        if shown is None:
            shown = safe_url(response.request.url, redact_fields, redact_value)
        if hide_body:
            body = "body not shown (a restricted path)"
        else:
            extra = {field.lower() for field in redact_fields}
            head = hide_secret_values(response.content[:64], extra, redact_value)
            body = f"body starts {head!r}"
        super().__init__(
            f"[{response.status_code}: {response.request.method}] {shown} "
            f"{problem} ({reason}); {body}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self)


class BadResponseError(TrestflyError):
    """The server answered, but not with a response trestfly can hand back: a redirect
    loop (more redirects than the client allows), a redirect to a URL no request can go
    to (``ftp://``, ``mailto:``, a ``Location`` that is no URL, a host IDNA refuses), a
    body its ``Content-Encoding`` does not decode, or a 307/308 redirect (or an auth
    challenge) that would need a streamed request body (``content=`` an iterator) sent
    again.  Not retried: the same request gets the same answer.

    Chained (``__cause__``) from httpx's ``TooManyRedirects``, ``UnsupportedProtocol``,
    ``InvalidURL``, ``RemoteProtocolError`` (a ``Location`` that is no URL),
    ``DecodingError`` or ``StreamConsumed``, or from the ``UnicodeError`` of a host's
    IDNA encoding.

    .. versionadded:: 0.1.0
    """


class SessionNotOpenError(TrestflyError, AttributeError):
    """A session's client was asked for outside its ``async with`` block: a request
    made there, or ``self._session`` read there.

    Also an ``AttributeError``, so that ``hasattr(api, "_session")``, ``inspect`` and
    ``unittest.mock.create_autospec`` see an attribute that is not there, as they did
    before ``_session`` was a property.

    .. versionadded:: 0.1.0
    """


class PaginationError(TrestflyError):
    """A collection cannot be walked exactly: records would be lost, doubled or looped.

    Raised for a page that is not what the paginator was configured for (no list at
    ``items_key``, a total that is not a count), a page size the server does not honour
    (which would skip or repeat records), and a cursor or next link seen again.

    .. versionadded:: 0.1.0
    """


class APIError(TrestflyError):
    """A response whose status is not 2xx.

    Attributes:
        response: the last :class:`httpx.Response` received.
        code: its status code.
        retries: how many retries were made before giving up (a retry decided and
            waited for, then refused at the origin's gate because its wait would pass
            the deadline or ``max_retry_after``, is counted).
        retry_after: the server's delay hint in seconds (``Retry-After`` or rate-limit
            headers), or ``None`` when it gave none.
        history: one :class:`trestfly.RetryRecord` per retry made, oldest first.
        stop_reason: why no further attempt was made (a :class:`StopReason`: the
            status is not retried, retries exhausted, the wait too long, ...), or
            ``None`` for an error trestfly did not raise from a call (one an SDK
            builds itself).
        msg: the message: ``[status: METHOD] URL body=...``, the body cut at
            :data:`BODY_LIMIT` characters.  The URL shows no ``user:password@``, and
            the values of query parameters named as credentials (``api_key``,
            ``access_token``, ``signature``, ...) or listed in the call's
            ``redact_fields`` are replaced by its ``redact_value``.

    Args:
        response: the response to report.
        retries: the retries made before giving up.
        retry_after: the server's delay hint in seconds, if any.

    Subclass it (or one of its subclasses) for an API's own errors, and map statuses to
    the subclass with the session's ``_error_map``.

    It can be copied and pickled (to hand it to another process), with its attributes
    and its message as they are: the response travels as httpx pickles it, status,
    headers, body and request (whose headers may carry credentials: treat the pickle
    as the error itself), without its stream or extensions.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        retries: int = 0,
        retry_after: float | None = None,
    ) -> None:
        self.response = response
        self.code = response.status_code
        self.retries = retries
        self.retry_after = retry_after
        #: The retries made before giving up (``trestfly.RetryRecord`` items).
        self.history: tuple[RetryRecord, ...] = ()
        #: Why no further attempt was made (set by the session).
        self.stop_reason: StopReason | None = None
        self.msg = self._default_message()
        super().__init__(self.msg)

    def _message(self, url: str) -> str:
        return (
            f"[{self.code}: {self.response.request.method}] {url} body={_quote_body(self.response)}"
        )

    def _default_message(self) -> str:
        return self._message(safe_url(self.response.request.url))

    def _show_url(self, shown: str) -> None:
        # The session shows the URL as the call's options say (its redact_fields, the
        # session's restricted paths), unless a subclass wrote a message of its own.
        # The default message is rebuilt to tell, not kept: an attribute holding it
        # kept the URL the options hide, and showed it in vars(), copies and pickles.
        if self.msg == self._default_message():
            self.msg = self._message(shown)
            self.args = (self.msg,)

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self)


class BadRequestError(APIError):
    """400 Bad Request.

    .. versionadded:: 0.1.0
    """


class UnauthorizedError(APIError):
    """401 Unauthorized.

    .. versionadded:: 0.1.0
    """


class ForbiddenError(APIError):
    """403 Forbidden.

    .. versionadded:: 0.1.0
    """


class NotFoundError(APIError):
    """404 Not Found.

    .. versionadded:: 0.1.0
    """


class InvalidMethodError(APIError):
    """405 Method Not Allowed.

    .. versionadded:: 0.1.0
    """


class NotAcceptableError(APIError):
    """406 Not Acceptable.

    .. versionadded:: 0.1.0
    """


class ProxyAuthenticationError(APIError):
    """407 Proxy Authentication Required.

    .. versionadded:: 0.1.0
    """


class RequestTimeoutError(APIError):
    """408 Request Timeout (a response from the server, not a client-side timeout).

    .. versionadded:: 0.1.0
    """


class RequestConflictError(APIError):
    """409 Conflict.

    .. versionadded:: 0.1.0
    """


class NoLongerExistsError(APIError):
    """410 Gone.

    .. versionadded:: 0.1.0
    """


class LengthRequiredError(APIError):
    """411 Length Required.

    .. versionadded:: 0.1.0
    """


class PreconditionFailedError(APIError):
    """412 Precondition Failed.

    .. versionadded:: 0.1.0
    """


class PayloadTooLargeError(APIError):
    """413 Content Too Large.

    .. versionadded:: 0.1.0
    """


class URITooLongError(APIError):
    """414 URI Too Long.

    .. versionadded:: 0.1.0
    """


class UnsupportedMediaTypeError(APIError):
    """415 Unsupported Media Type.

    .. versionadded:: 0.1.0
    """


class RangeNotSatisfiableError(APIError):
    """416 Range Not Satisfiable.

    .. versionadded:: 0.1.0
    """


class ExpectationFailedError(APIError):
    """417 Expectation Failed.

    .. versionadded:: 0.1.0
    """


class TeapotResponseError(APIError):
    """418 I'm a teapot.

    .. versionadded:: 0.1.0
    """


class TooManyRequestsError(APIError):
    """420 Enhance Your Calm and 429 Too Many Requests.

    .. versionadded:: 0.1.0
    """


class MisdirectRequestError(APIError):
    """421 Misdirected Request.

    .. versionadded:: 0.1.0
    """


class InvalidContentError(APIError):
    """422 Unprocessable Content.

    .. versionadded:: 0.1.0
    """


class TooEarlyError(APIError):
    """425 Too Early.

    .. versionadded:: 0.1.0
    """


class UpgradeRequiredError(APIError):
    """426 Upgrade Required.

    .. versionadded:: 0.1.0
    """


class PreconditionRequiredError(APIError):
    """428 Precondition Required.

    .. versionadded:: 0.1.0
    """


class RequestHeaderFieldsTooLargeError(APIError):
    """431 Request Header Fields Too Large.

    .. versionadded:: 0.1.0
    """


class UnavailableForLegalReasonsError(APIError):
    """451 Unavailable For Legal Reasons.

    .. versionadded:: 0.1.0
    """


class ServerError(APIError):
    """500 Internal Server Error.

    .. versionadded:: 0.1.0
    """


class MethodNotImplementedError(APIError):
    """501 Not Implemented (not retried: it is not transient).

    .. versionadded:: 0.1.0
    """


class BadGatewayError(APIError):
    """502 Bad Gateway.

    .. versionadded:: 0.1.0
    """


class ServiceUnavailableError(APIError):
    """503 Service Unavailable.

    .. versionadded:: 0.1.0
    """


class GatewayTimeoutError(APIError):
    """504 Gateway Timeout.

    .. versionadded:: 0.1.0
    """


class NotExtendedError(APIError):
    """510 Not Extended.

    .. versionadded:: 0.1.0
    """


class NetworkAuthenticationRequiredError(APIError):
    """511 Network Authentication Required.

    .. versionadded:: 0.1.0
    """


#: The default status -> exception map; a session's ``_error_map`` overrides entries.
#: Read-only: sessions copy it, nobody mutates it.
#:
#: .. versionadded:: 0.1.0
BASE_ERROR_MAP: Mapping[int, type[APIError]] = MappingProxyType(
    {
        400: BadRequestError,
        401: UnauthorizedError,
        403: ForbiddenError,
        404: NotFoundError,
        405: InvalidMethodError,
        406: NotAcceptableError,
        407: ProxyAuthenticationError,
        408: RequestTimeoutError,
        409: RequestConflictError,
        410: NoLongerExistsError,
        411: LengthRequiredError,
        412: PreconditionFailedError,
        413: PayloadTooLargeError,
        414: URITooLongError,
        415: UnsupportedMediaTypeError,
        416: RangeNotSatisfiableError,
        417: ExpectationFailedError,
        418: TeapotResponseError,
        420: TooManyRequestsError,
        421: MisdirectRequestError,
        422: InvalidContentError,
        425: TooEarlyError,
        426: UpgradeRequiredError,
        428: PreconditionRequiredError,
        429: TooManyRequestsError,
        431: RequestHeaderFieldsTooLargeError,
        451: UnavailableForLegalReasonsError,
        500: ServerError,
        501: MethodNotImplementedError,
        502: BadGatewayError,
        503: ServiceUnavailableError,
        504: GatewayTimeoutError,
        510: NotExtendedError,
        511: NetworkAuthenticationRequiredError,
    }
)
