"""Pure resolution of per-call options: session defaults < endpoint < call.

A call's keywords are either httpx request arguments (passed through untouched) or
trestfly options (consumed here).  They are re-resolved for every attempt from the same
keyword dict, so whatever ``_retry_request`` returns applies to the next attempt, and an
option such as ``redact_fields`` can never be lost on a retry (RESTfly 1.x lost it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

import httpx
from box import Box, BoxError, BoxList
from box.converters import BOX_PARAMETERS  # python-box's own list of its options

from ._arguments import check_bool, is_finite
from ._client import check_timeout
from ._redact import shown_url
from .errors import UnexpectedValueError

#: Keywords of ``httpx.AsyncClient.request`` that a call may pass through.
HTTPX_REQUEST_ARGS: frozenset[str] = frozenset(
    {
        "content",
        "data",
        "files",
        "json",
        "params",
        "headers",
        "cookies",
        "auth",
        "follow_redirects",
        "timeout",
        "extensions",
    }
)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """trestfly's own options for one call, fully resolved."""

    box: bool
    box_attrs: Mapping[str, Any]
    conv_json: bool
    retry_statuses: frozenset[int]
    use_base: bool
    redact_fields: tuple[str, ...]
    redact_value: str
    deadline: float | None
    #: The session's restricted paths (never a call's option): shown_url hides their
    #: queries whole.
    restricted_paths: frozenset[str] = frozenset()
    #: The statuses named by ``retry_on`` (the session's and the call's): a 502 or 504
    #: is retried for a non-idempotent method only when named here (see
    #: trestfly._policy.retryable_status).
    retry_on: frozenset[int] = frozenset()

    def shown_url(self, url: str | httpx.URL, also_hide: tuple[str, ...] = ()) -> str:
        """``url`` as this call's log lines and error messages show it (see
        :func:`trestfly._redact.shown_url`); ``also_hide``: more fields to redact."""
        return shown_url(
            url, self.restricted_paths, self.redact_fields + also_hide, self.redact_value
        )


TRESTFLY_OPTIONS: frozenset[str] = frozenset(
    {
        "box",
        "box_attrs",
        "conv_json",
        "retry_on",
        "use_base",
        "redact_fields",
        "redact_value",
        "deadline",
    }
)


class TrestflyOptions(TypedDict, total=False):
    """trestfly's own request keywords, without httpx's: for an SDK method that sets
    ``params=`` or ``json=`` itself and passes the rest through, which
    :class:`RequestOptions` would let a caller give twice ("multiple values for keyword
    argument 'params'")::

        async def search(self, q: str, **kwargs: Unpack[TrestflyOptions]) -> Any:
            return await self._get("search", params={"q": q}, **kwargs)

    A trestfly option given as ``None`` means "not given" (the endpoint's or the
    session's value applies); ``deadline=None`` means no deadline.

    .. versionadded:: 0.1.0
    """

    box: bool | None
    box_attrs: Mapping[str, Any] | None
    conv_json: bool | None
    retry_on: int | Collection[int] | None
    use_base: bool | None
    redact_fields: Collection[str] | None
    redact_value: str | None
    deadline: float | None


class RequestOptions(TrestflyOptions, total=False):
    """The keywords a request takes (``get``, ``post``, ..., ``_request``, and an
    endpoint's ``_get``, ...), for type checkers: a misspelt one (``bx=True``) or a
    trestfly option of the wrong kind (``deadline="5"``) is an error before the call
    runs, not only a typed error when it does.  An SDK method that passes its keywords
    through can take them the same way: ``**kwargs: Unpack[RequestOptions]`` (or
    :class:`TrestflyOptions`, when it sets httpx's arguments itself).

    The httpx request arguments are passed to httpx as they are, so their values are
    left to httpx to type (``Any`` here: httpx names its unions in a private module).
    The trestfly options are :class:`TrestflyOptions`'.

    .. versionadded:: 0.1.0
    """

    # httpx request arguments (HTTPX_REQUEST_ARGS)
    content: Any
    data: Any
    files: Any
    json: Any
    params: Any
    headers: Any
    cookies: Any
    auth: Any
    follow_redirects: bool
    timeout: Any
    extensions: Any


def status_codes(value: Any, name: str = "retry_on") -> frozenset[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Collection) or isinstance(value, str | bytes):
        raise UnexpectedValueError(f"{name} must be a collection of status codes, got {value!r}")
    # Checked before the set is built: an unhashable item ([429] in a list) would
    # otherwise fail in frozenset() with a bare TypeError.
    if any(
        not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599
        for code in value
    ):
        raise UnexpectedValueError(f"{name} must hold HTTP status codes (100-599), got {value!r}")
    codes = frozenset(value)
    successes = sorted(code for code in codes if 200 <= code < 300)
    if successes:
        # A 2xx is returned before retry_on is looked at: listing one would do nothing.
        raise UnexpectedValueError(
            f"{name} cannot hold successes {successes}: a 2xx answer is returned, never retried"
        )
    interim = sorted(code for code in codes if code < 200)
    if interim:
        # httpx reads past a 1xx to the final answer: one listed would never be seen.
        raise UnexpectedValueError(
            f"{name} cannot hold informational statuses {interim}: a 1xx is never the answer"
        )
    return codes


#: python-box options that are switches (the others take text, types or mappings).
_BOX_FLAGS = (
    "default_box",
    "default_box_none_transform",
    "default_box_create_on_get",
    "frozen_box",
    "camel_killer_box",
    "camel_killer_box_keep_keys",
    "conversion_box",
    "modify_tuples_box",
    "box_dots",
)


def box_options(value: Any) -> Mapping[str, Any]:
    """python-box keyword options, checked by name: Box takes a keyword it does not
    know as data, so a misspelt option would become a key of every boxed response.
    Values other than flags are checked by boxing a trial document (_check_box_values)."""
    if not isinstance(value, Mapping):
        raise UnexpectedValueError(
            f"box_attrs must be a mapping of python-box options, got {type(value).__name__}"
        )
    unknown = sorted(str(key) for key in value if key not in BOX_PARAMETERS)
    if unknown:
        raise UnexpectedValueError(
            f"box_attrs has unknown python-box options {unknown}: expected some of "
            f"{', '.join(BOX_PARAMETERS)}"
        )
    not_flags = [
        f"{name}={value[name]!r}"[:60]
        for name in _BOX_FLAGS
        if name in value and not isinstance(value[name], bool)
    ]
    if not_flags:
        # python-box reads any truthy value as on: "false" froze every boxed response.
        raise UnexpectedValueError(
            f"box_attrs flags must be True or False, got {', '.join(not_flags)}"
        )
    if any(not isinstance(item, bool) for item in value.values()):
        # Flags alone (the common box_dots=True) are not tried: the trial costs about
        # 100 us, and a call's or an endpoint's box_attrs are resolved at every attempt.
        # A flag python-box refuses still ends as a ResponseDecodeError (see _convert).
        _check_box_values(tuple(value.items()))
    return value


def _trial_document() -> dict[str, Any]:
    # What python-box converts (a nested object, an array of objects), under names no
    # box_recast is likely to hold: recasting a real key fails on data, not options.
    return {"trestfly_trial": {"trestfly_nested": [{}]}}


def _trial_error(options: Mapping[str, Any]) -> Exception | None:
    """What python-box raises boxing a trial document with ``options`` (None: nothing)."""
    try:
        Box(_trial_document(), **options)
        BoxList([_trial_document()], **options)
    except (TypeError, ValueError, AttributeError, BoxError, re.error) as exc:
        return exc  # re.error: a box_dots_exclude that does not compile
    return None


def _check_box_values(items: tuple[tuple[str, Any], ...]) -> None:
    """Refuse box_attrs values python-box cannot use (``box_class=5``,
    ``box_intact_types=5``): they were accepted, and every JSON success then failed in
    python-box with a bare TypeError, the response lost.  The option is named when it
    fails alone; its value is python-box's configuration, not a secret."""
    error = _trial_error(dict(items))
    if error is not None:
        culprits = sorted(name for name, item in items if _trial_error({name: item}))
        named = ", ".join(culprits or sorted(name for name, _ in items))
        raise UnexpectedValueError(
            f"box_attrs option {named} has a value python-box cannot use "
            f"({type(error).__name__}: {error})"
        )
    # The trial holds no key a box_recast names (recasting it would fail on the data):
    # its converters are checked by kind, or {"id": 5} failed on every "id".
    recast = dict(items).get("box_recast")
    if recast is not None and not (
        isinstance(recast, Mapping) and all(callable(convert) for convert in recast.values())
    ):
        raise UnexpectedValueError(
            "box_attrs option box_recast has a value python-box cannot use: it must map "
            f"key names to types or callables, got a {type(recast).__name__}"
            + (" holding something not callable" if isinstance(recast, Mapping) else "")
        )


def _deadline(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not is_finite(value)
        or value <= 0
    ):
        raise UnexpectedValueError(f"deadline must be a positive number of seconds, got {value!r}")
    return float(value)


def _field_names(value: Any) -> tuple[str, ...]:
    # A single name (str or bytes) would be iterated as characters or integers, and a
    # bytes name never matches a key: either way nothing would be redacted.
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        raise UnexpectedValueError(
            f"redact_fields must be a collection of key names, got {value!r}"
        )
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise UnexpectedValueError(f"redact_fields must hold key names (str), got {name!r}")
    return names


def _check_request_argument(key: str, value: Any) -> None:
    """Refuse what httpx would misread (``follow_redirects="no"`` is true) or fail on
    only while sending, as a bare error from inside the transport (``timeout=-1``,
    ``auth=("user",)``).  The other request arguments fail while httpx builds the
    request, which the session reports."""
    if key == "follow_redirects":
        check_bool(key, value)
    elif key == "timeout":
        if value is not httpx.USE_CLIENT_DEFAULT:
            check_timeout(value)
    elif key == "files":
        _check_files(value)
    elif key == "extensions" and value is not None:
        _check_extensions(value)
    elif key == "params" and value is not None:
        if type(value) is dict or (
            isinstance(value, Mapping) and not isinstance(value, httpx.QueryParams)
        ):
            for name, item in value.items():
                _check_param_name(name)
                _check_field_value("params", name, item)
        elif isinstance(value, list | tuple):
            for index, pair in enumerate(value):
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    # httpx read the first two items of each and dropped the rest: a
                    # ("a", "1", "2") sent a=1 alone, and a str "ab" sent a=b.  Only the
                    # kind and length are named: the pair may hold a key.
                    name = type(pair).__name__
                    shape = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
                    if isinstance(pair, list | tuple):
                        shape += f" of {len(pair)}"
                    raise UnexpectedValueError(
                        f"params as pairs must hold (name, value) pairs: item {index} is "
                        f"{shape} (repeat a name for several values)"
                    )
                # One value per pair: httpx expands a list only in the dict form,
                # and sent ("ids", [1, 2]) as ids=%5B1%2C+2%5D.
                _check_param_name(pair[0])
                _check_field_value("params", pair[0], pair[1], expands=False)
    elif key == "data" and not (
        value is None or isinstance(value, Mapping | str | bytes | AsyncIterable)
    ):
        # requests (and so RESTfly) takes pairs; httpx takes them for a streamed body and
        # failed while sending with "Attempted to send an sync request with an
        # AsyncClient instance".  Only the kind is named: the pairs may hold a password.
        raise UnexpectedValueError(
            "data must be a mapping of form fields (repeated names: a dict of lists, "
            f"{{'tag': ['a', 'b']}}), a str, bytes or an async iterable of bytes; got a "
            f"{type(value).__name__} (for a raw body, use content=)"
        )
    elif key == "content" and not (
        value is None or isinstance(value, str | bytes | bytearray | memoryview | AsyncIterable)
    ):
        # httpx takes any other iterable (a generator, a list of chunks, a binary file)
        # as a sync stream, which an AsyncClient refuses only while sending, with a bare
        # RuntimeError -- and the data= refusal above points here.  Only the kind is
        # named: the body may be anything.
        raise UnexpectedValueError(
            "content must be bytes, a str or an async iterable of bytes (an async "
            f"generator); got a {type(value).__name__} (read a file or join the chunks "
            "into bytes first)"
        )
    elif key == "auth" and value is None:
        # Read two ways: requests (and so RESTfly) sent the session's credentials, httpx
        # sends none.  An SDK method forwarding `auth=None` lost the client's auth
        # silently (401s); taken the requests way, a call meant to go without them
        # would carry them.  Each way is a keyword away.
        raise UnexpectedValueError(
            "auth=None is ambiguous (requests sent the session's credentials, httpx sends "
            "none): leave auth out, or pass httpx.USE_CLIENT_DEFAULT, for the session's; "
            "pass httpx.Auth() for none"
        )
    elif key == "auth" and not (
        (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], str | bytes)
            and isinstance(value[1], str | bytes)
        )
        or value is httpx.USE_CLIENT_DEFAULT
        or isinstance(value, httpx.Auth)
        or callable(value)
    ):
        # Only the kind is named: a wrong auth is often the credential itself.
        kind = f"tuple of {len(value)} items" if isinstance(value, tuple) else type(value).__name__
        raise UnexpectedValueError(
            "auth must be a (username, password) tuple of strings, an httpx.Auth or a "
            f"callable, got a {kind}"
        )


#: The request arguments checked per call (see _check_request_argument).
_CHECKED_REQUEST_ARGS: frozenset[str] = frozenset(
    {"auth", "content", "data", "extensions", "files", "follow_redirects", "params", "timeout"}
)

#: The phases of httpx's ``extensions["timeout"]`` (``httpx.Timeout.as_dict()``).
_TIMEOUT_PHASES = frozenset({"connect", "read", "write", "pool"})


def _check_extensions(value: object) -> None:
    """Refuse the request extensions httpcore reads while sending and fails on there,
    with a bare error from inside the transport or Trio: a ``timeout`` that is not
    httpx's phases of seconds (``{"read": -1}``: "'seconds' must be non-negative"), a
    ``trace`` that is not callable.  Others are the transport's business, and
    extensions that are no mapping fail as httpx builds the request (named there)."""
    if not isinstance(value, Mapping):
        return
    timeout = value.get("timeout")
    if timeout is not None:
        if not isinstance(timeout, Mapping) or set(timeout) - _TIMEOUT_PHASES:
            raise UnexpectedValueError(
                "extensions['timeout'] must map connect, read, write and pool to seconds "
                f"(httpx.Timeout(...).as_dict()), got {timeout!r}; or pass timeout="
            )
        check_timeout(httpx.Timeout(**{phase: timeout.get(phase) for phase in _TIMEOUT_PHASES}))
    trace = value.get("trace")
    if trace is not None and not callable(trace):
        raise UnexpectedValueError(
            f"extensions['trace'] must be a callable, got a {type(trace).__name__}"
        )


#: Exact types of the values a query or a form mostly holds (see _check_field_value).
_PLAIN = frozenset({str, int, float, bool, type(None)})

#: Values httpx sends as their Python ``repr`` in a query or a form, never the text they
#: mean (it sends any value as its ``str()``, which is right for a date or a UUID).
_REPR_SENT = (bytes, bytearray, memoryview, Mapping, set, frozenset, list, tuple)


def _check_param_name(name: object) -> None:
    """Refuse a query name httpx would send as its Python ``repr``: ``b"api_key"`` went
    out as ``b%27api_key%27=...``, a name no redaction knows, so the error and the log
    line showed the key's value.  Only the kind is named."""
    if type(name) is not str and isinstance(name, (*_REPR_SENT, Iterable)):
        hint = " (decode bytes to str first)" if isinstance(name, bytes | bytearray) else ""
        raise UnexpectedValueError(
            f"a params name must be a str; got a {type(name).__name__}{hint}: httpx would "
            "send its repr"
        )


def _check_field_value(
    argument: str, name: object, value: object, *, binary: bool = False, expands: bool = True
) -> None:
    """Refuse a query or form value httpx would send as its Python ``repr``: bytes went
    out as ``b%272024%27``, a dict as ``%7B%27api_key%27...`` (its keys hidden from no
    log, the outer name being no credential's).  A list's items are values, where httpx
    ``expands`` lists (a mapping's values).  ``binary``: bytes are a value (a multipart
    form's).  Only the kind is named: the value may be a secret."""
    if type(value) in _PLAIN:  # the common case, checked per call: no ABC lookups
        return
    items = value if expands and isinstance(value, list | tuple) else (value,)
    for item in items:
        if binary and isinstance(item, bytes):
            continue
        # Any other iterable but a str (a range, a generator, a dict's keys, a deque)
        # went out as its repr too: ids=range%281%2C+4%29.
        other_iterable = not isinstance(item, (*_REPR_SENT, str)) and isinstance(item, Iterable)
        if not (isinstance(item, _REPR_SENT) or other_iterable):
            continue
        hint = " (decode bytes to str first)" if isinstance(item, bytes | bytearray) else ""
        if other_iterable and expands:
            hint = " (make it a list)"
        many = ", or a list of them" if expands else " (one value per pair: repeat the pair)"
        raise UnexpectedValueError(
            f"{argument}[{name!r}] must be a str, a number, a bool or None{many}; got a "
            f"{type(item).__name__}{hint}: httpx would send its repr"
        )


#: Request arguments httpx takes as any iterable of pairs (or of file parts).
_ITERABLE_REQUEST_ARGS = ("headers", "params", "cookies", "files")


def read_iterators_once(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with a one-shot iterator given as headers, params, cookies or files
    read into a list, once per call.

    Each attempt builds its request from the call's keywords again, and the attempt's
    log line reads them first: an iterator (a generator of header pairs) was spent by
    the first reader, and the request went out without those headers, silently.

    A ``content=`` bytearray or memoryview is copied into bytes here too: httpx sends
    bytes and text as they are, but streams any other iterable, and an AsyncClient
    refuses a sync stream while sending with a bare RuntimeError.
    """
    if not kwargs:
        return kwargs  # most calls give none (api.get("users/1"))
    for key in _ITERABLE_REQUEST_ARGS:
        if isinstance(kwargs.get(key), Iterator):
            kwargs = {**kwargs, key: list(kwargs[key])}
    if isinstance(kwargs.get("content"), bytearray | memoryview):
        kwargs = {**kwargs, "content": bytes(kwargs["content"])}
    return kwargs


def _without_none(value: Any) -> Any:
    """``value`` (a ``params=`` or ``data=``) without its fields whose value is None, nor
    the None items of list values; ``value`` itself when it has none.  Anything but a
    mapping or a list of pairs (a query string, ``httpx.QueryParams``) is left as it is."""
    if isinstance(value, Mapping) and not isinstance(value, httpx.QueryParams):
        pairs: Iterable[Any] = value.items()
    elif isinstance(value, list | tuple) and all(
        isinstance(pair, tuple | list) and len(pair) == 2 for pair in value
    ):
        pairs = value
    else:
        return value
    kept: list[tuple[Any, Any]] = []
    changed = False
    for name, field in pairs:
        if isinstance(field, list | tuple) and any(item is None for item in field):
            # A list of None alone is left out, as requests does: kept empty, it still
            # named the field, and the path's own `?q=trio` went for `q: [None]`.
            field = [item for item in field if item is not None] or None
            changed = True
        if field is None:
            changed = True
        else:
            kept.append((name, field))
    if not changed:
        return value
    return dict(kept) if isinstance(value, Mapping) else kept


def drop_none_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the None values of ``params=`` and ``data=`` left out, once per call.

    requests (and so RESTfly) leaves a field whose value is None out of the query or
    the form; httpx sends it empty (``?offset=&filter=``), which an API reads as
    "filter by nothing", or refuses.  An SDK method forwarding its optional arguments
    (``params={"offset": offset}``) depends on the requests reading.
    """
    if not kwargs:
        return kwargs
    for key in ("params", "data"):
        value = kwargs.get(key)
        if value is not None:
            cleaned = _without_none(value)
            if cleaned is not value:
                kwargs = {**kwargs, key: cleaned}
    return kwargs


def _check_file_part(name: object, part: object) -> None:
    """A file part is what httpx can send: bytes, text, a file (anything with
    ``read``), or a ``(filename, file[, content_type[, headers]])`` tuple.  httpx reads
    the file only while sending, so anything else failed inside the transport with a
    bare ``AttributeError``.  Only the kinds are named: the content may be anything."""
    file = part[1] if isinstance(part, tuple) and 2 <= len(part) <= 4 else part
    if not (isinstance(file, str | bytes) or hasattr(file, "read")):
        shown = repr(name) if isinstance(name, str) else f"of a {type(name).__name__} name"
        raise UnexpectedValueError(
            f"files part {shown} must be bytes, text, a binary file or a (filename, file"
            f"[, content_type[, headers]]) tuple, got a {type(part).__name__}"
            + (f" holding a {type(file).__name__}" if file is not part else "")
        )


def _check_files(value: Any) -> None:
    """What httpx takes: a mapping, or any iterable of ``(name, file)`` pairs (a list,
    ``d.items()``, pairs as lists from JSON); iterators were read into a list before."""
    if value is None:
        return
    if isinstance(value, Mapping):
        for name, part in value.items():
            _check_file_part(name, part)
        return
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise UnexpectedValueError(
            f"files must be a mapping or a list of (name, file) pairs, got a {type(value).__name__}"
        )
    for pair in value:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise UnexpectedValueError(
                f"files must be a mapping or a list of (name, file) pairs, got a list holding "
                f"a {type(pair).__name__}"
                + (f" of {len(pair)} items" if isinstance(pair, tuple | list) else "")
            )
        _check_file_part(*pair)


#: An HTTP method is a token (RFC 9110, section 5.6.2).
_METHOD_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def checked_method(method: object) -> str:
    """``method`` upper-cased, once it is an HTTP method name.

    Raises:
        UnexpectedValueError: ``method`` is no string, or not a token: ``None`` failed
            with a bare ``AttributeError``, and ``"get "`` reached h11, whose refusal
            was taken for a header value with a newline.
    """
    if not isinstance(method, str):
        raise UnexpectedValueError(
            f"method must be a string (e.g. 'GET'), got a {type(method).__name__}"
        )
    if _METHOD_TOKEN.fullmatch(method) is None:
        raise UnexpectedValueError(
            f"method {method[:40]!r} is no HTTP method name (letters, digits and "
            "!#$%&'*+-.^_`|~ only, no spaces)"
        )
    return method.upper()


def resolve(defaults: CallOptions, kwargs: Mapping[str, Any]) -> tuple[CallOptions, dict[str, Any]]:
    """Split a call's keywords into resolved options and the httpx request arguments.

    Raises:
        UnexpectedValueError: a keyword is neither an httpx request argument nor a
            trestfly option, or an option has a value of the wrong kind.
    """
    request_kwargs: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in HTTPX_REQUEST_ARGS:
            if key in _CHECKED_REQUEST_ARGS:
                _check_request_argument(key, value)
            request_kwargs[key] = value
        elif key not in TRESTFLY_OPTIONS:
            raise UnexpectedValueError(
                f"unknown request keyword {key!r}: expected an httpx request argument "
                f"({', '.join(sorted(HTTPX_REQUEST_ARGS))}) or a trestfly option "
                f"({', '.join(sorted(TRESTFLY_OPTIONS))})"
            )
        elif value is None and key != "deadline":
            continue  # None means "inherit", as for endpoint attributes
        elif key == "retry_on":
            named = status_codes(value)
            changes["retry_statuses"] = defaults.retry_statuses | named
            changes["retry_on"] = defaults.retry_on | named
        elif key == "deadline":
            changes["deadline"] = _deadline(value)
        elif key == "redact_fields":
            changes["redact_fields"] = _field_names(value)
        elif key == "box_attrs":
            changes["box_attrs"] = box_options(value)
        elif key == "redact_value":
            if not isinstance(value, str):
                # str() of anything was taken: the logs then showed "b'X'" or an
                # object's repr where the value was hidden.
                raise UnexpectedValueError(
                    f"redact_value must be a string (e.g. 'REDACTED'), got a {type(value).__name__}"
                )
            changes["redact_value"] = value
        else:  # box, conv_json, use_base
            changes[key] = check_bool(key, value)
    _check_one_body(request_kwargs)
    form = request_kwargs.get("data")
    if isinstance(form, str | bytes):
        if request_kwargs.get("files"):
            # Sent as content=, the files would be dropped without a word.
            raise UnexpectedValueError(
                "data= as text or bytes cannot go with files=: a multipart form's fields "
                "are a mapping (data={'name': 'value'})"
            )
        # A raw body, as requests (and so RESTfly) took it: httpx sends it as content=
        # too, with a DeprecationWarning pointing at trestfly's line.
        request_kwargs["content"] = request_kwargs.pop("data")
    elif isinstance(form, Mapping):
        multipart = bool(request_kwargs.get("files"))  # httpx sends {} as a plain form
        for name, item in form.items():
            _check_field_value("data", name, item, binary=multipart)
    options = replace(defaults, **changes) if changes else defaults
    return options, request_kwargs


def _check_one_body(request_kwargs: Mapping[str, Any]) -> None:
    """A request has one body: httpx sends one of ``json=``, ``content=`` and
    ``data=``/``files=`` and drops the others silently (``json=`` beside ``data=`` went
    out as the form alone).  ``data=`` with ``files=`` is one multipart body."""
    if not request_kwargs:
        return
    given = [
        key for key in ("json", "content", "data", "files") if request_kwargs.get(key) is not None
    ]
    if len(given) > 1 and given != ["data", "files"]:
        raise UnexpectedValueError(
            f"a request has one body, got {' and '.join(f'{key}=' for key in given)} "
            "(only data= and files= go together, as one multipart body)"
        )
