"""The errors a call raises, built from what its request loop knows (pure).

The request loop (:class:`trestfly._call.Call`) decides *that* a call fails;
these functions decide *what* it raises: the class (through the session's error map),
the message, the chained cause, and what is hidden from both.  Every URL shown goes
through :meth:`CallOptions.shown_url <trestfly._options.CallOptions.shown_url>` (secret
values redacted, a restricted path's query hidden whole), and a failure that may quote a
header value (often a token) is never quoted or chained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from . import errors
from ._admission import GateClosed
from ._options import CallOptions
from ._policy import error_class, quotes_header_value, transport_error_class
from ._stats import RetryRecord

#: What httpx raises while building a request from arguments of the wrong kind
#: (``params=5``, ``headers={"a": 1}``, ``json=object()``).
BUILD_ERRORS = (TypeError, ValueError, AttributeError, IndexError)


def unbuildable_argument(
    session: httpx.AsyncClient, method: str, url: str, request_kwargs: Mapping[str, Any]
) -> str | None:
    """The request argument httpx cannot build a request from (``params=5``,
    ``json=object()``); "" when only their combination fails; None when the request
    builds, so that a failure came from sending it, not from the call's input."""
    # Only on the failure path: a call that sends pays nothing for this.
    built = {
        key: value
        for key, value in request_kwargs.items()
        if key not in ("auth", "follow_redirects")  # used by send(), checked by resolve()
    }
    try:
        session.build_request(method, url, **built)
    except BUILD_ERRORS:
        pass
    else:
        return None
    for key, value in built.items():
        try:
            session.build_request(method, url, **{key: value})
        except BUILD_ERRORS:
            return key
    return ""


def invalid_request(
    method: str, url: str, options: CallOptions, exc: Exception, argument: str | None = None
) -> errors.UnexpectedValueError:
    """The error of a request that cannot be sent as asked (``argument``: the request
    argument at fault, when known).  When ``exc`` may quote a header value it is not
    chained: raise the error outside the except block that caught ``exc``, or it stays
    reachable as ``__context__``."""
    shown = options.shown_url(url)
    if quotes_header_value(exc):
        # h11's and the encoder's messages quote the offending header value, which is
        # often a token (read from a file with its newline, pasted with a stray
        # character): name the problem, never the value.
        error = errors.UnexpectedValueError(
            f"cannot send {method} {shown}: the request is not valid HTTP "
            f"({type(exc).__name__}; most often a header value with a newline, a "
            "control or a non-ASCII character; not shown, it may be a secret)"
        )
        error.__cause__ = None  # also hides any __context__ from tracebacks
        return error
    reason = f"{argument}= cannot be sent ({type(exc).__name__}: {exc})" if argument else str(exc)
    error = errors.UnexpectedValueError(f"cannot send {method} {shown}: {reason}")
    error.__cause__ = exc
    return error


def unfollowable_redirect(
    method: str, url: str, options: CallOptions, exc: Exception
) -> errors.BadResponseError:
    """The error of a call whose answer redirected it to a URL no request can go to
    (``ftp://``): the server's answer, not the caller's input, is at fault."""
    # httpx's words only, up to what they quote after ": ": the Location may hold a
    # token (an OAuth code=), and "Invalid port: '...'" quotes a password cut at a "/".
    words = str(exc).partition(": ")[0].strip() or type(exc).__name__
    error = errors.BadResponseError(
        f"{method} {options.shown_url(url)}: the answer redirects to a URL that cannot be "
        f"requested ({words})"
    )
    error.__cause__ = exc
    return error


#: h11 quotes the bytes of the answer it refuses ("illegal header line: bytearray(b'...')",
#: and so the status line and a chunk header); they may hold a credential: a Set-Cookie,
#: or our own request echoed back by a peer that does not speak HTTP (its query's
#: api_key in an "illegal status line").
_QUOTED_LINE = re.compile(r"(.*?):\s*(?:bytearray\()?b['\"]", re.DOTALL)


def without_quoted_line(exc: Exception) -> Exception:
    """``exc``, or when it quotes bytes of the server's answer (h11's "illegal
    header line: bytearray(b'Set-Cookie: ...')", "illegal status line: ...", "illegal
    chunk header: ..."), a copy of its class that names the problem only: the call's
    error quotes its last failure and is chained from it."""
    if not isinstance(exc, httpx.ProtocolError):
        return exc
    match = _QUOTED_LINE.match(str(exc))
    if match is None:
        return exc
    try:
        request: httpx.Request | None = exc.request
    except RuntimeError:  # httpx did not say which request failed
        request = None
    return type(exc)(
        f"{match.group(1)} in the answer (not shown: it may hold a credential)", request=request
    )


def response_error(
    response: httpx.Response,
    status_errors: Mapping[int, type[errors.APIError]],
    options: CallOptions,
    retries_done: int,
    retry_after: float | None,
    history: list[RetryRecord],
    stop: errors.StopReason,
) -> errors.APIError:
    """The error of a call whose last answer was an error status: the class the error
    map names for it, its retry history and why it stopped, the query values the call
    hides hidden."""
    error = error_class(response.status_code, status_errors)
    api_error = error(response, retries=retries_done, retry_after=retry_after)
    api_error.history, api_error.stop_reason = tuple(history), stop
    api_error._show_url(options.shown_url(response.request.url))
    return api_error


def transport_failure(
    method: str,
    url: str,
    options: CallOptions,
    retries_done: int,
    stop: errors.StopReason,
    failure: Exception,
    history: list[RetryRecord],
    *,
    reason: str | None = None,
) -> Exception:
    """The trestfly error of a call whose last attempt failed in transport, chained
    from that failure, with its retry history and why it stopped (``reason``: said
    in the message in place of ``stop``'s sentence); the URL shown redacted."""
    shown = options.shown_url(url)
    error = transport_error_class(failure)(
        f"{method} {shown} failed after {retries_done} retries ({reason or stop.value}): "
        f"{failure!r}"
    )
    error.retries, error.history, error.stop_reason = retries_done, tuple(history), stop
    error.__cause__ = failure
    return error


def gate_error(
    closed: GateClosed,
    last: httpx.Response | Exception | None,
    status_errors: Mapping[int, type[errors.APIError]],
    options: CallOptions,
    method: str,
    url: str,
    retries_done: int,
    history: list[RetryRecord],
) -> Exception:
    """The error of a call refused at admission (``last``: the outcome of its previous
    attempt, if it was retrying).

    A closed gate quotes the response that closed it.  A refused pacer slot quotes no
    old 429 (the gate is open): it raises the call's last error, or a timeout.
    """
    stop = closed.stop
    if closed.pacer and isinstance(last, Exception):
        reason = f"the pacer's next slot for the origin is {closed.remaining:.3f} s away: {stop}"
        return transport_failure(
            method, url, options, retries_done, stop, last, history, reason=reason
        )
    own = last if closed.pacer and isinstance(last, httpx.Response) else None
    response = own or closed.response
    if response is None:
        waiting_for = (
            f"the pacer's next slot for the origin is {closed.remaining:.3f} s away"
            if closed.pacer
            else f"the origin is throttled for {closed.remaining:.3f} s more"
        )
        timeout = errors.TimeoutError(f"{method} {options.shown_url(url)}: {waiting_for}: {stop}")
        timeout.retries, timeout.history, timeout.stop_reason = retries_done, tuple(history), stop
        return timeout
    cls = (
        error_class(response.status_code, status_errors)
        if response.status_code >= 400
        else errors.TooManyRequestsError
    )
    api_error = cls(response, retries=retries_done, retry_after=closed.remaining)
    api_error.history, api_error.stop_reason = tuple(history), stop
    # The response may be another call's: hide what either call asked to hide.
    also_hide = () if own else closed.redact_fields
    api_error._show_url(options.shown_url(response.request.url, also_hide))
    return api_error


def bad_response(
    method: str, url: str, options: CallOptions, exc: Exception
) -> errors.BadResponseError:
    """The error of an answer that cannot be followed or read: too many redirects, a
    body that does not decode, or a request the answer asks for again whose body was a
    stream (a 307/308 or an auth flow's second request must send the body again, and the
    first request spent it)."""
    shown = options.shown_url(url)
    if isinstance(exc, httpx.StreamConsumed):
        return errors.BadResponseError(
            f"{method} {shown}: the answer asks for the request again (a "
            "307 or 308 redirect, or an auth challenge), but its body is a "
            "stream, which cannot be sent again; pass bytes, or "
            "follow_redirects=False to get the redirect as an error"
        )
    return errors.BadResponseError(f"{method} {shown}: {exc}")
