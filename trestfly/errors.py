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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import httpx

__all__ = [
    "BASE_ERROR_MAP",
    "APIError",
    "BadGatewayError",
    "BadRequestError",
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
BODY_LIMIT = 1000


class TrestflyError(Exception):
    """Base class of every exception trestfly raises on purpose."""


class UnexpectedValueError(TrestflyError, ValueError):
    """A value (argument, keyword, option) is not one trestfly can accept."""


class RequiredParameterError(TrestflyError, ValueError):
    """A required parameter was not given."""


class ConnectionError(TrestflyError, builtins.ConnectionError):
    """The server could not be reached, or the connection broke, after every retry.

    Chained (``__cause__``) from the httpx exception of the last attempt.
    """


class TimeoutError(TrestflyError, builtins.TimeoutError):
    """A request (or its ``deadline``) ran out of time.

    Chained from the httpx timeout of the last attempt when there was one.
    """


def _quote_body(response: httpx.Response) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError, LookupError):
        return "<unread>"
    if len(text) > BODY_LIMIT:
        return text[: BODY_LIMIT - 3] + "..."
    return text


class ResponseDecodeError(TrestflyError, ValueError):
    """A response claimed to be JSON but its body does not parse."""

    def __init__(self, response: httpx.Response, reason: str) -> None:
        self.response = response
        head = response.content[:64]
        super().__init__(
            f"[{response.status_code}: {response.request.method}] {response.request.url} "
            f"claims JSON but does not parse ({reason}); body starts {head!r}"
        )


class APIError(TrestflyError):
    """A response whose status is not 2xx.

    Attributes:
        response: the last :class:`httpx.Response` received.
        code: its status code.
        retries: how many retries were made before giving up.
        retry_after: the server's delay hint in seconds (``Retry-After`` or rate-limit
            headers), or ``None`` when it gave none.
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
        self.history: tuple[Any, ...] = ()
        request = response.request
        self.msg = f"[{self.code}: {request.method}] {request.url} body={_quote_body(response)}"
        super().__init__(self.msg)

    def __str__(self) -> str:
        return self.msg


class BadRequestError(APIError):
    """400 Bad Request."""


class UnauthorizedError(APIError):
    """401 Unauthorized."""


class ForbiddenError(APIError):
    """403 Forbidden."""


class NotFoundError(APIError):
    """404 Not Found."""


class InvalidMethodError(APIError):
    """405 Method Not Allowed."""


class NotAcceptableError(APIError):
    """406 Not Acceptable."""


class ProxyAuthenticationError(APIError):
    """407 Proxy Authentication Required."""


class RequestTimeoutError(APIError):
    """408 Request Timeout (a response from the server, not a client-side timeout)."""


class RequestConflictError(APIError):
    """409 Conflict."""


class NoLongerExistsError(APIError):
    """410 Gone."""


class LengthRequiredError(APIError):
    """411 Length Required."""


class PreconditionFailedError(APIError):
    """412 Precondition Failed."""


class PayloadTooLargeError(APIError):
    """413 Content Too Large."""


class URITooLongError(APIError):
    """414 URI Too Long."""


class UnsupportedMediaTypeError(APIError):
    """415 Unsupported Media Type."""


class RangeNotSatisfiableError(APIError):
    """416 Range Not Satisfiable."""


class ExpectationFailedError(APIError):
    """417 Expectation Failed."""


class TeapotResponseError(APIError):
    """418 I'm a teapot."""


class TooManyRequestsError(APIError):
    """420 Enhance Your Calm and 429 Too Many Requests."""


class MisdirectRequestError(APIError):
    """421 Misdirected Request."""


class InvalidContentError(APIError):
    """422 Unprocessable Content."""


class TooEarlyError(APIError):
    """425 Too Early."""


class UpgradeRequiredError(APIError):
    """426 Upgrade Required."""


class PreconditionRequiredError(APIError):
    """428 Precondition Required."""


class RequestHeaderFieldsTooLargeError(APIError):
    """431 Request Header Fields Too Large."""


class UnavailableForLegalReasonsError(APIError):
    """451 Unavailable For Legal Reasons."""


class ServerError(APIError):
    """500 Internal Server Error."""


class MethodNotImplementedError(APIError):
    """501 Not Implemented (not retried: it is not transient)."""


class BadGatewayError(APIError):
    """502 Bad Gateway."""


class ServiceUnavailableError(APIError):
    """503 Service Unavailable."""


class GatewayTimeoutError(APIError):
    """504 Gateway Timeout."""


class NotExtendedError(APIError):
    """510 Not Extended."""


class NetworkAuthenticationRequiredError(APIError):
    """511 Network Authentication Required."""


#: The default status -> exception map; a session's ``_error_map`` overrides entries.
#: Read-only: sessions copy it, nobody mutates it.
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
