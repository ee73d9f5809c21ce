"""Pure formatting of what is logged about one attempt, with secrets removed.

Called only when the ``trestfly.request`` logger is enabled for DEBUG, so a session that
does not log pays nothing for serialising bodies.  Whatever the caller passes (datetimes,
bytes, file objects) must never make the request fail because it was logged.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import re
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from functools import partial
from typing import Any
from urllib.parse import unquote

import httpx

from ._safe_url import context_names, is_secret_name, safe_url, safe_value
from .utils import redact_matching

#: Header values never written to a log, whatever the options say: the standard
#: credentials, and the API-key headers SDKs commonly send.
SECRET_HEADERS: frozenset[str] = frozenset(
    {
        "api-key",
        "authorization",
        "cookie",
        "proxy-authorization",
        "set-cookie",
        "x-amz-security-token",
        "x-api-key",
        "x-apikeys",
        "x-auth-token",
    }
)


#: Parts of header names that mark a credential beyond SECRET_HEADERS and the names of
#: is_secret_name: ``X-Auth-Key``, ``X-Session-Id``, ``X-Token-Id``, ``X-Secret-Value``,
#: ``X-Password-Hash``, ``X-Access-Token-V2``.  Header names only: as query names,
#: ``author`` or ``session_count`` are data one debugs with.
SECRET_HEADER_PARTS: tuple[str, ...] = ("auth", "cookie", "session", "token", "secret", "password")


def is_secret_header(name: str, extra: Collection[str]) -> bool:
    """Whether a header of this name carries a credential (``extra``: lower-cased
    ``redact_fields``): redacted in logs, and dropped from a redirect to another origin.

    Every name :func:`~trestfly._safe_url.is_secret_name` hides in a query is hidden
    here too, with the same ``X-`` prefix and version suffix ignored (``X-OTP``,
    ``X-Passcode``, ``X-Api-Key-V2``), and a header is also secret by the broader
    SECRET_HEADER_PARTS, or by ending in "key"."""
    lowered = name.lower()
    return (
        lowered in SECRET_HEADERS
        or is_secret_name(lowered, extra)
        or lowered.endswith("key")
        or any(part in lowered for part in SECRET_HEADER_PARTS)
    )


#: A last segment's file extension (``login.json``, ``token.xml``): Rails, Django REST
#: framework and others route ``auth/login.json`` to ``auth/login``'s handler.
_EXTENSION = re.compile(r"\.[a-z0-9]{1,10}$")


def _segment(segment: str) -> str:
    """A path segment as a server may read it: without its path parameters (Tomcat's
    ``login;jsessionid=1``), percent-escapes decoded (``login%20``, httpx leaves
    ``%2520`` once-decoded), without the whitespace servers trim, in lower case."""
    return unquote(segment.partition(";")[0]).strip().lower()


def _segments(path: str) -> list[str]:
    # "." and ".." left in a path httpx already normalised were written to be read
    # otherwise (``login/..;/`` is ``..`` only once its ";" is cut): skipped, they
    # leave the path ending as it is written, the login it was meant to hide.
    segments = (_segment(segment) for segment in path.split("/"))
    return [segment for segment in segments if segment not in ("", ".", "..")]


def _ends_with(segments: list[str], restricted: list[str]) -> bool:
    if len(segments) < len(restricted):
        return False
    tail = segments[len(segments) - len(restricted) :]
    if tail == restricted:
        return True
    # ``login.json`` for ``login``, but not ``login.json`` for ``login.xml``: only an
    # extension the restricted path does not name itself is cut.
    return tail[:-1] == restricted[:-1] and _EXTENSION.sub("", tail[-1]) == restricted[-1]


def is_restricted(url: str, restricted_paths: Collection[str]) -> bool:
    """Whether the params and body of a request to ``url`` must not be logged: its path
    ends with one of ``restricted_paths``, whole segments compared without case, empty
    segments (doubled slashes, slashes at either end) ignored.  The full URL's path is
    compared, not the call's argument, so a query string, an absolute URL, the base path
    in front or another spelling cannot slip a login past the list: segments are
    compared without path parameters (``;jsessionid=...``), percent-escapes, the
    whitespace around them, "." and ".." segments, or a file extension on the last one
    (``auth/login.json`` is ``auth/login``)."""
    if not restricted_paths:
        return False
    try:
        segments = _segments(httpx.URL(url).path)
    except (httpx.InvalidURL, TypeError):
        return True  # cannot tell: hide rather than show
    for item in restricted_paths:
        restricted = _segments(item)
        if restricted and _ends_with(segments, restricted):
            return True
    return False


def shown_url(
    url: str | httpx.URL,
    restricted_paths: Collection[str],
    redact_fields: Collection[str],
    redact_value: str,
) -> str:
    """``url`` as every log line and error message shows it: credentials and secret
    query values redacted (:func:`~trestfly._safe_url.safe_url`) and, for a restricted
    path, its whole query and fragment, which are that path's params (a login's
    ``?username=alice&otp=123456``)."""
    shown = safe_url(url, redact_fields, redact_value)
    if not is_restricted(str(url), restricted_paths):
        return shown
    return without_query(shown, redact_value)


def without_query(shown: str, redact_value: str) -> str:
    """``shown`` (a URL as messages show it) with its query and fragment replaced whole,
    as a restricted path's are: ``auth/login?REDACTED``."""
    base, hash_mark, _ = shown.partition("#")
    base, mark, _ = base.partition("?")
    return base + ("?" + redact_value if mark else "") + ("#" + redact_value if hash_mark else "")


def _safe_headers(headers: Any, redact_fields: Collection[str], redact_value: str) -> Any:
    if headers is None:
        return None
    if isinstance(headers, Iterator):
        return "<an iterator of headers>"  # reading it here would spend it (see _body)
    try:
        items = headers.items() if hasattr(headers, "items") else list(headers)
    except TypeError:
        return "<unreadable headers>"
    extra = {field.lower() for field in redact_fields}
    safe: dict[str, Any] = {}
    try:
        for name, value in items:
            key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            safe[key] = redact_value if is_secret_header(key, extra) else value
    except (TypeError, ValueError):  # not pairs: httpx refuses them with its own error
        return "<unreadable headers>"
    return safe


def _grouped(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    """``pairs`` as a params dict: each name once, with its value, or the list of its
    values when it repeats (``tag=a&tag=b`` is ``{"tag": ["a", "b"]}``)."""
    values: dict[Any, list[Any]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return {key: found[0] if len(found) == 1 else found for key, found in values.items()}


def _redact_params(params: Any, fields: Collection[str], redact_value: str) -> Any:
    # Query params also come as a query string, (key, value) pairs or httpx.QueryParams;
    # names are matched without case, as in URLs (see trestfly._safe_url).
    if params is None:
        return None
    extra = {field.lower() for field in fields}
    try:
        if isinstance(params, str | bytes):
            params = httpx.QueryParams(params)
        if isinstance(params, Mapping):
            # QueryParams (and other multi-dicts) are Mappings whose items() keep only the
            # first value of a repeated name: the log would show a request not sent.
            items = list(params.multi_items() if hasattr(params, "multi_items") else params.items())
            # From the pairs, not the grouped values: a repeated grant_type is a list
            # there, which read as no grant type, and the OAuth code was logged.
            extra |= context_names(_expanded(items))
            return {
                key: _param_value(key, value, extra, redact_value)
                for key, value in _grouped(items).items()
            }
        if isinstance(params, Iterator):
            return "<an iterator of params>"  # reading it here would spend it
        pairs = list(params.multi_items() if hasattr(params, "multi_items") else params)
        extra |= context_names(pairs)
        return [(key, _param_value(key, value, extra, redact_value)) for key, value in pairs]
    except (TypeError, ValueError):
        return "<unreadable params>"


def _expanded(items: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    """``items`` with a name's list of values (``{"tag": ["a", "b"]}``) as one pair each."""
    for key, value in items:
        if isinstance(value, list | tuple):
            for item in value:
                yield key, item
        else:
            yield key, value


def _param_value(key: Any, value: Any, extra: Collection[str], redact_value: str) -> Any:
    """A query value as the attempt's record shows it, as the URL shows it (see
    safe_url): ``a=1;token=...`` in one value was hidden in the URL, not in the params."""
    if is_secret_name(key, extra):
        return redact_value
    if isinstance(value, list):  # a repeated name's values
        return [_param_value(key, item, extra, redact_value) for item in value]
    if isinstance(value, str) and isinstance(key, str):
        return safe_value(key, value, extra, redact_value)
    return value


def _body(request_kwargs: Mapping[str, Any]) -> Any:
    body = request_kwargs.get("json")
    if isinstance(body, str):  # serialised already ('{"password": ...}'): cannot be told apart
        return f"<{len(body)} characters of JSON text>"
    if isinstance(body, bytes | bytearray):
        # The same text as bytes (b'{"password": ...}'): httpx refuses it, but only after
        # this line is logged, so it must not be logged whole either.
        return f"<{len(body)} bytes of JSON text>"
    if body is not None:
        return body
    data = request_kwargs.get("data")
    if isinstance(data, str | bytes):  # form-encoded already: keys cannot be told apart
        return f"<{len(data)} bytes of data>"
    if data is not None:
        return data
    content = request_kwargs.get("content")
    if content is not None:
        size = len(content) if isinstance(content, bytes | str) else "?"
        return f"<{size} bytes of content>"
    files = request_kwargs.get("files")
    if files is not None:
        # Never read an iterator here: the log line would spend what the request sends.
        if isinstance(files, Mapping):
            return f"<files {list(files)}>"
        if isinstance(files, list | tuple):
            names = [part[0] if isinstance(part, tuple) and part else "?" for part in files]
            return f"<files {names}>"
        return f"<files: a {type(files).__name__}>"
    return None


#: What a logged value may show as it is: JSON's scalars, and values whose ``repr``
#: holds nothing but the value (httpx sends a date or a UUID as its text).
_SHOWN = (
    str,
    int,
    float,
    bool,
    type(None),
    bytes,
    bytearray,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    uuid.UUID,
    enum.Enum,
)


def loggable(value: Any, _path: frozenset[int] = frozenset()) -> Any:
    """``value`` (already redacted) with every other object named by its type:
    ``<Login object>``.  Its ``repr`` may hold what the redaction could not see (it
    walks mappings, lists and tuples): a dataclass given as ``json=`` logged
    ``Login(user='ann', password='...')``, and only then did httpx refuse it."""
    if isinstance(value, _SHOWN):
        return value
    if id(value) in _path:
        return "<cycle>"
    path = _path | {id(value)}
    if isinstance(value, Mapping):
        return {
            key if isinstance(key, _SHOWN) else f"<{type(key).__name__} key>": loggable(item, path)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(loggable(item, path) for item in value)
    return f"<{type(value).__name__} object>"


def to_log_text(value: Any) -> str:
    """JSON text for a log line (of a value :func:`loggable` made); what JSON cannot
    express (a date, bytes) is written with ``repr``."""
    try:
        return json.dumps(value, default=repr, sort_keys=False)
    except (TypeError, ValueError):  # circular structures, keys JSON refuses
        return repr(value)


def describe_attempt(
    *,
    method: str,
    url: str,
    attempt: int,
    request_kwargs: Mapping[str, Any],
    restricted_paths: Collection[str],
    redact_fields: Collection[str],
    redact_value: str,
) -> dict[str, Any]:
    """The structured ``extra`` of the attempt's DEBUG record, already redacted."""
    params = request_kwargs.get("params")
    body = _body(request_kwargs)
    shown = shown_url(url, restricted_paths, redact_fields, redact_value)
    if is_restricted(url, restricted_paths):
        params = redact_value if params is not None else None
        body = redact_value if body is not None else None
    else:
        params = _redact_params(params, redact_fields, redact_value)
        # Body keys as query names: without case ("Password", "X-Amz-Credential", the
        # caller's "sessionid" spelled "SessionId").
        extra = {field.lower() for field in redact_fields}
        if isinstance(body, Mapping):  # an OAuth token request's code (see context_names)
            extra |= context_names(body.items())
        body = redact_matching(body, partial(is_secret_name, extra=extra), redact_value)
    return {
        "trestfly_method": method,
        "trestfly_url": shown,
        "trestfly_attempt": attempt,
        "trestfly_params": loggable(params),
        "trestfly_body": loggable(body),
        "trestfly_headers": _safe_headers(
            request_kwargs.get("headers"), redact_fields, redact_value
        ),
    }
