"""Public helpers: dict plumbing, strings, redaction, and the ``check`` argument validator.

A port of RESTfly 1.x's ``restfly/utils.py``; deliberate changes are listed in each docstring
under "Differences from RESTfly".  Nothing here mutates its arguments.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import types
import typing
from collections.abc import Callable, Collection, Container, Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import urlparse

import httpx

from ._safe_url import is_secret_name
from .errors import RequiredParameterError, UnexpectedValueError

__all__ = [
    "PATTERNS",
    "check",
    "dict_clean",
    "dict_flatten",
    "dict_merge",
    "force_case",
    "redact_values",
    "trunc",
    "url_validator",
]

Case: TypeAlias = Literal["lower", "upper"]
ExpectedType: TypeAlias = type[Any] | tuple[type[Any], ...] | types.UnionType | str
#: A named pattern: a regex (string or compiled, searched) or a predicate on the string.
PatternSpec: TypeAlias = str | re.Pattern[str] | Callable[[str], bool]


def _parses_as(factory: Callable[[str], object]) -> Callable[[str], bool]:
    def matches(value: str) -> bool:
        try:
            factory(value)
        except ValueError:
            return False
        return True

    return matches


_HEX = "[0-9a-fA-F]"
#: The named patterns of :func:`check`; ``pattern_map`` adds to or overrides them.
#:
#: .. versionadded:: 0.1.0
PATTERNS: Mapping[str, PatternSpec] = MappingProxyType(
    {
        "uuid": rf"\A{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\Z",
        "scanner-uuid": rf"\A{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12,32}}\Z",
        "email": r"\A[A-Za-z0-9_.+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+\Z",
        "hex": rf"\A{_HEX}+\Z",
        "url": r"(?i)\A(https?://)?[\da-z.-]+\.[a-z.]{2,6}(:\d{1,5})?([/?#]\S*)?\Z",
        "ipv4": _parses_as(ipaddress.IPv4Interface),  # an address, optionally with /prefix
        "ipv6": _parses_as(ipaddress.IPv6Address),
    }
)
_DATE_ALIASES: Mapping[str, type[Any]] = {"datetime": dt.datetime, "date": dt.date}
_CYCLE = "<cycle>"
_T = TypeVar("_T")


def dict_merge(master: Mapping[Any, Any], *updates: Mapping[Any, Any]) -> dict[Any, Any]:
    """Deep-merge ``updates``, in order, over ``master`` into a new dict.

    Nested mappings present on both sides are merged recursively; any other value in an
    update replaces the one before it.  Every mapping in the result is a new ``dict``;
    leaf values (lists, objects) are shared with the inputs, not copied.

    Raises:
        UnexpectedValueError: ``master`` or an update is not a mapping, or holds itself.

    Differences from RESTfly: the inputs are never mutated (RESTfly updated ``master``).

    .. versionadded:: 0.1.0
    """
    _check_mapping("dict_merge", "master", master)
    for index, update in enumerate(updates):
        _check_mapping("dict_merge", f"updates[{index}]", update)
    return _walking("dict_merge", "a mapping given", lambda: _merge(master, updates))


def _merge(master: Mapping[Any, Any], updates: Iterable[Mapping[Any, Any]]) -> dict[Any, Any]:
    merged = {key: _copy_mappings(value) for key, value in master.items()}
    for update in updates:
        for key, value in update.items():
            current = merged.get(key)
            if isinstance(current, Mapping) and isinstance(value, Mapping):
                merged[key] = _merge(current, (value,))
            else:
                merged[key] = _copy_mappings(value)
    return merged


def _walking(function: str, name: str, walk: Callable[[], _T]) -> _T:
    """``walk()``, but a mapping that holds itself (or nests past the recursion limit)
    is named, not a bare RecursionError (``redact_values`` writes ``"<cycle>"``
    instead: it serves logging, which must not fail)."""
    try:
        return walk()
    except RecursionError:
        pass
    # Raised out of the except block: the RecursionError, a thousand frames deep, is not
    # its context.
    raise UnexpectedValueError(f"{function}: {name} holds itself (a cycle), or nests too deep")


def _check_mapping(function: str, name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise UnexpectedValueError(
            f"{function}: {name} must be a mapping, got {type(value).__name__}"
        )


def _copy_mappings(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy_mappings(item) for key, item in value.items()}
    return value


def dict_flatten(
    d: Mapping[Any, Any], parent_key: str | None = "", sep: str = "."
) -> dict[str, Any]:
    """Flatten nested mappings into ``sep``-joined keys: ``{"b": {"c": 2}}`` -> ``{"b.c": 2}``.

    An empty nested mapping contributes no key; non-string keys are joined as ``str``.

    Raises:
        UnexpectedValueError: ``d`` is not a mapping or holds itself, ``parent_key`` or
            ``sep`` is not a string, or two keys flatten to one (``{"a.b": 1, "a": {"b":
            2}}``).

    Differences from RESTfly: two keys that flatten to one raise (RESTfly kept the last
    value silently).

    .. versionadded:: 0.1.0
    """
    _check_mapping("dict_flatten", "d", d)
    if parent_key is None:  # RESTfly's Optional[str]: no prefix
        parent_key = ""
    for name, value in (("parent_key", parent_key), ("sep", sep)):
        if not isinstance(value, str):
            # Joined as text, sep=None made {"a": {"b": 1}} into {"aNoneb": 1}.
            raise UnexpectedValueError(
                f"dict_flatten: {name} must be a string, got {type(value).__name__}"
            )
    flat: dict[str, Any] = {}
    _walking("dict_flatten", "d", lambda: _flatten(d, parent_key, sep, flat))
    return flat


def _flatten(d: Mapping[Any, Any], parent_key: str, sep: str, flat: dict[str, Any]) -> None:
    for key, value in d.items():
        full_key = f"{parent_key}{sep}{key}" if parent_key else str(key)
        if isinstance(value, Mapping):
            _flatten(value, full_key, sep, flat)
        elif full_key in flat:
            # {"a.b": 1, "a": {"b": 2}}: one of the values was silently dropped.  (Keys
            # joined as text collide whatever sep is: {1: "a", "1": "b"}.)
            raise UnexpectedValueError(
                f"dict_flatten: two keys flatten to {full_key!r} (a sep inside a key, or "
                "keys equal as text)"
            )
        else:
            flat[full_key] = value


def dict_clean(d: Mapping[Any, Any]) -> dict[Any, Any]:
    """Return a copy of ``d`` without the keys whose value is ``None``, recursively.

    Nested mappings, and mappings that are items of a list value, are cleaned too; an
    empty one is dropped, whether cleaning emptied it or it came empty (as RESTfly
    does: clear a field with ``{"tags": {}}`` without this function).  ``None`` items of
    a list stay:
    ``{"a": 1, "b": {"c": None}, "d": [{"e": None}, None]}`` -> ``{"a": 1, "d": [None]}``.

    Raises:
        UnexpectedValueError: ``d`` is not a mapping, or holds itself.

    .. versionadded:: 0.1.0
    """
    _check_mapping("dict_clean", "d", d)
    return _walking("dict_clean", "d", lambda: _clean(d))


def _clean(d: Mapping[Any, Any]) -> dict[Any, Any]:
    clean: dict[Any, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            value = _clean(value)
            if not value:
                continue
        elif isinstance(value, list):
            cleaned = (_clean(item) if isinstance(item, Mapping) else item for item in value)
            value = [item for item in cleaned if not (isinstance(item, dict) and not item)]
        elif value is None:
            continue
        clean[key] = value
    return clean


def force_case(obj: Any, case: Case) -> Any:
    """Apply ``case`` (``"lower"`` or ``"upper"``) to a string or a list's string items.

    A list comes back as a new list, its non-string items unchanged; any other ``obj`` is
    returned as it is.

    Raises:
        UnexpectedValueError: ``case`` is neither ``"lower"`` nor ``"upper"``.

    Differences from RESTfly: non-string list items are kept (RESTfly dropped them); an
    unknown ``case`` raises instead of returning ``obj`` untouched.

    .. versionadded:: 0.1.0
    """
    if case == "lower":
        change = str.lower
    elif case == "upper":
        change = str.upper
    else:
        raise UnexpectedValueError(f"case has value {case!r}, expected 'lower' or 'upper'")
    if isinstance(obj, str):
        return change(obj)
    if isinstance(obj, list):
        return [change(item) if isinstance(item, str) else item for item in obj]
    return obj


def trunc(text: str, limit: int, suffix: str | None = "...") -> str:
    """Cut ``text`` longer than ``limit`` to ``limit`` characters ending in ``suffix``.

    ``trunc("this is a test", 6)`` is ``"thi..."``; ``suffix=None`` means no suffix.

    Raises:
        UnexpectedValueError: ``limit`` is shorter than ``suffix`` (on every call);
            ``text`` or ``suffix`` is not a string, or ``limit`` not an integer.

    Differences from RESTfly: text of exactly ``limit`` characters is returned unchanged
    (RESTfly replaced its end with the suffix).

    .. versionadded:: 0.1.0
    """
    if not isinstance(text, str):
        raise UnexpectedValueError(f"trunc: text must be a string, got {type(text).__name__}")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise UnexpectedValueError(f"trunc: limit must be an integer, got {type(limit).__name__}")
    if suffix is not None and not isinstance(suffix, str):
        raise UnexpectedValueError(
            f"trunc: suffix must be a string or None, got {type(suffix).__name__}"
        )
    suffix = suffix or ""
    if limit < len(suffix):
        raise UnexpectedValueError(
            f"limit has value {limit}, expected at least {len(suffix)} "
            f"(the length of suffix {suffix!r})"
        )
    if len(text) <= limit:
        return text
    return text[: limit - len(suffix)] + suffix


def redact_values(obj: Any, keys: Iterable[str] | None = None, value: Any = "REDACTED") -> Any:
    """Return a copy of ``obj`` in which the value of every key in ``keys`` is ``value``.

    Mappings (returned as ``dict``), lists and tuples are walked at any depth; other
    objects are returned as they are.  Keys match exactly, except in an
    ``httpx.Headers`` (a case-insensitive mapping that gives its names lower-cased),
    where ``"Authorization"`` matches ``authorization``; a single ``str`` is one key;
    ``None`` (the default, as in RESTfly) is none.  A container met again inside itself
    becomes ``"<cycle>"``, so logging cannot fail.

    A multi-value mapping keeps every value: a key given more than once (by
    ``multi_items()``, as in ``httpx.QueryParams`` and ``httpx.Headers``, or repeated by
    ``items()``) maps to the list of its values, in order, and a key in ``keys`` to
    ``value`` once.  ``httpx.QueryParams("ids=1&ids=2")`` gives ``{"ids": ["1", "2"]}``
    (``items()`` gives one value per key), and two ``Set-Cookie`` headers a list of two
    (``items()`` joins them with a comma).

    Raises:
        UnexpectedValueError: ``keys`` is neither a string, an iterable of them, nor None
            (bytes included: ``b"token"`` is an iterable of integers); or ``obj`` nests
            deeper than Python's recursion limit.

    Differences from RESTfly: lists and tuples are walked, a key holding a mapping is
    redacted whole (RESTfly descended into it), and ``value`` is used at every depth.

    .. versionadded:: 0.1.0
    """
    if keys is None:
        keys = ()
    names = (
        [keys]
        if isinstance(keys, str)
        else list(keys)
        if isinstance(keys, Iterable) and not isinstance(keys, bytes | bytearray | memoryview)
        else None
    )
    if names is None or not all(isinstance(name, Hashable) for name in names):
        # A list in the list ([["a"]]) failed in frozenset() with a bare TypeError.  (Any
        # hashable key is one: {1: "s"} with keys=[1] is redacted, as in RESTfly.)
        raise UnexpectedValueError(
            f"redact_values: keys must be key names (a str, an iterable of them, or None), "
            f"got {type(keys).__name__}" + ("" if names is None else " holding an unhashable")
        )
    hidden = frozenset(names)
    folded = frozenset(name.casefold() for name in names if isinstance(name, str))

    def is_hidden_header(key: Any) -> bool:
        # httpx.Headers gives its names lower-cased: "Authorization" stayed in clear.
        return key in hidden or (isinstance(key, str) and key.casefold() in folded)

    try:
        return _redact(obj, hidden.__contains__, value, set(), is_hidden_header)
    except RecursionError:
        pass
    # Raised out of the except block: the RecursionError, a thousand frames deep, is not
    # its context.
    raise UnexpectedValueError("redact_values: obj nests too deep to walk")


def redact_matching(obj: Any, is_hidden: Callable[[Any], bool], value: Any) -> Any:
    """:func:`redact_values` with the keys chosen by ``is_hidden(key)`` (internal: the
    session's log lines also hide credential names without case)."""
    return _redact(obj, is_hidden, value, set(), is_hidden)


def _redact_mapping(
    obj: Mapping[Any, Any],
    is_hidden: Callable[[Any], bool],
    value: Any,
    path: set[int],
    header_hides: Callable[[Any], bool],
) -> dict[Any, Any]:
    """:func:`_redact` of a mapping, every value of a repeated key kept (in a list)."""
    hides = header_hides if isinstance(obj, httpx.Headers) else is_hidden
    redacted: dict[Any, Any] = {}
    repeated: set[Any] = set()
    for key, item in _pairs(obj):
        if hides(key):
            redacted[key] = value  # once, however many values the key has
            continue
        shown = _redact(item, is_hidden, value, path, header_hides)
        if key not in redacted:
            redacted[key] = shown
        else:
            if key not in repeated:
                repeated.add(key)
                redacted[key] = [redacted[key]]
            redacted[key].append(shown)
    return redacted


def _pairs(mapping: Mapping[Any, Any]) -> Iterable[tuple[Any, Any]]:
    """Every (key, value) pair of ``mapping``, a repeated key's every value included:
    the ``items()`` of an ``httpx.QueryParams`` give one value per key ("ids=1&ids=2"
    logged as ``{'ids': '1'}``), those of an ``httpx.Headers`` join them with commas."""
    multi_items = getattr(mapping, "multi_items", None)
    if callable(multi_items):
        pairs: Iterable[tuple[Any, Any]] = multi_items()
        return pairs
    return mapping.items()


def _redact(
    obj: Any,
    is_hidden: Callable[[Any], bool],
    value: Any,
    path: set[int],
    header_hides: Callable[[Any], bool],
) -> Any:
    if not isinstance(obj, Mapping | list | tuple):
        return obj
    if id(obj) in path:
        return _CYCLE
    path.add(id(obj))
    try:
        if isinstance(obj, Mapping):
            return _redact_mapping(obj, is_hidden, value, path, header_hides)
        items = [_redact(item, is_hidden, value, path, header_hides) for item in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    finally:
        path.discard(id(obj))


def url_validator(url: str, validate: Iterable[str] | None = ("scheme", "netloc")) -> bool:
    """Whether every named :func:`urllib.parse.urlparse` part of ``url`` is non-empty.

    Args:
        url: the URL to check (``"example.com"`` has no scheme or netloc: ``False``).
        validate: part names (``scheme``, ``netloc``, ``path``, ``params``, ``query``,
            ``fragment``); an unknown name is never satisfied.  A single ``str`` is one
            name.  ``None`` or empty means the default ``("scheme", "netloc")``, as in
            RESTfly.

    Raises:
        UnexpectedValueError: ``url`` is not a string, or ``validate`` is not an
            iterable of names.

    Differences from RESTfly: a URL ``urlparse`` refuses (``"http://[::1"``) is
    ``False`` instead of raising ``ValueError``; a single name needs no list
    (RESTfly read ``"scheme"`` letter by letter, and returned ``False``).

    .. versionadded:: 0.1.0
    """
    if not isinstance(url, str | bytes):
        raise UnexpectedValueError(f"url_validator: url must be a string, got {type(url).__name__}")
    if isinstance(validate, str):
        validate = (validate,) if validate else ()  # "" is empty: the default, as in RESTfly
    elif validate is not None and not isinstance(validate, Iterable):
        raise UnexpectedValueError(
            "url_validator: validate must be an iterable of part names, got "
            f"{type(validate).__name__}"
        )
    names = tuple(validate or ()) or ("scheme", "netloc")
    if not all(isinstance(name, str) for name in names):
        raise UnexpectedValueError(
            "url_validator: validate must hold part names (str), got a non-string in it"
        )
    try:
        parts = urlparse(url)._asdict()
    except ValueError:
        return False
    return all(parts.get(name) for name in names)


def _short(value: Any) -> str:
    return trunc(repr(value), 80)


def _shown(name: str, value: Any) -> str:
    """``value`` as check()'s errors quote it: not at all under a credential's name
    (``check("api_key", key, str, regex=...)`` quoted the key)."""
    # The whole name too: check's own item suffix ("ids[0]") is cut off, but a
    # bracketed credential ("user[password]") is one only whole.
    secret = is_secret_name(name) or is_secret_name(name.partition("[")[0])
    return "REDACTED" if secret else _short(value)


def _resolve(
    name: str, expected: ExpectedType, argument: str
) -> tuple[tuple[type[Any], ...], str | None]:
    """(types, implied pattern name) of an ``expected_type`` / ``items_type``
    (``argument`` says which, for an error)."""
    if not isinstance(expected, str):
        if isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union:
            kinds = typing.get_args(expected)  # int | str: named part by part in errors
        else:
            kinds = expected if isinstance(expected, tuple) else (expected,)
        # An empty tuple is no type either: it passed, and every value then failed with a
        # TypeError expecting nothing.
        if not kinds or not all(isinstance(kind, type) for kind in kinds):
            raise UnexpectedValueError(
                f"check({name!r}): {argument} {expected!r} is not a type, expected a type, "
                "a tuple of types, or one of 'uuid', 'scanner-uuid', 'datetime', 'date'"
            )
        return kinds, None
    if expected in ("uuid", "scanner-uuid"):
        return (str,), expected
    if expected in _DATE_ALIASES:
        return (_DATE_ALIASES[expected],), None
    raise UnexpectedValueError(
        f"check({name!r}): expected type {expected!r} is unknown, expected a type, a tuple "
        "of types, or one of 'uuid', 'scanner-uuid', 'datetime', 'date'"
    )


def _regex(name: str, what: str, spec: Any) -> re.Pattern[str]:
    """``spec`` compiled, or the error naming ``what`` (``regex``, or a pattern)."""
    try:
        compiled = re.compile(spec)
    except (re.error, TypeError) as exc:
        raise UnexpectedValueError(
            f"check({name!r}): {what} is not a regular expression: {exc}"
        ) from None
    if not isinstance(compiled.pattern, str):
        raise UnexpectedValueError(f"check({name!r}): {what} is a bytes pattern, expected str")
    return compiled


def _cased(obj: Any, case: Case) -> Any:
    """:func:`force_case`, and a tuple's string items too (a tuple back).  check() applies
    ``choices`` to each item of a list or a tuple, so a tuple left uncased was refused
    (``("A", "B")`` against ``["a", "b"]`` cased); force_case itself keeps RESTfly's
    meaning.  Only a plain tuple: a named tuple is its own type."""
    if type(obj) is tuple:
        return tuple(force_case(list(obj), case))
    return force_case(obj, case)


def _is_instance(obj: Any, types: tuple[type[Any], ...]) -> bool:
    if isinstance(obj, bool):  # bool subclasses int, but True is no answer to "int?"
        return any(kind is not int and isinstance(obj, kind) for kind in types)
    return isinstance(obj, types)


def _convert(name: str, obj: Any, types: tuple[type[Any], ...], softcheck: bool) -> Any:
    """``obj`` if it is one of ``types``, else its conversion, else ``TypeError``."""
    if _is_instance(obj, types):
        return obj
    for kind in types:
        try:
            if issubclass(kind, dt.date) and isinstance(obj, str):
                return kind.fromisoformat(obj)
            if issubclass(kind, dt.datetime) and isinstance(obj, int | float):
                if not isinstance(obj, bool):
                    return kind.fromtimestamp(obj, tz=dt.UTC)
            elif softcheck and isinstance(obj, str) and not issubclass(kind, Collection):
                if kind is bool:
                    if obj.lower() in ("true", "yes", "false", "no"):
                        return obj.lower() in ("true", "yes")
                else:
                    return kind(obj)
        except Exception:  # any failed conversion means the TypeError below
            continue
    shown = f" ({_shown(name, obj)})" if isinstance(obj, str) else ""
    expected = " or ".join(kind.__name__ for kind in types)
    raise TypeError(f"{name} is of type {type(obj).__name__}{shown}, expected {expected}")


def check(
    name: str,
    obj: Any,
    expected_type: ExpectedType,
    *,
    choices: Iterable[Any] | None = None,
    default: Any = None,
    case: Case | None = None,
    pattern: str | None = None,
    pattern_map: Mapping[str, PatternSpec] | None = None,
    regex: str | re.Pattern[str] | None = None,
    items_type: ExpectedType | None = None,
    allow_none: bool = True,
    softcheck: bool = True,
) -> Any:
    """Validate an argument and return it, possibly defaulted, converted or cased.

    In RESTfly's order: ``case`` applies to ``obj``, ``choices`` and ``default``; ``None``
    returns ``default``; the type is checked (or converted), then each item's
    (``items_type``); ``choices``, ``pattern`` and ``regex`` apply to each item of a list or
    tuple value, and patterns only to strings.

    Args:
        name: the argument's name, quoted by every error (the value is quoted too,
            but for a credential's name: ``check("api_key", ...)`` says ``REDACTED``).
        obj: the value to check.
        expected_type: a type, a tuple of types, ``"uuid"`` / ``"scanner-uuid"`` (a ``str``
            matching that pattern), or ``"datetime"`` / ``"date"``.  ``bool`` never
            satisfies ``int``.  Dates also come as ISO 8601 strings, datetimes as POSIX
            timestamps (UTC).
        choices: the allowed values: a container is asked with ``in``, not copied
            (``range(0, 2**40)`` costs nothing); an iterator is read once.
        default: returned, not validated, when ``obj`` is ``None``.
        case: ``"lower"`` or ``"upper"``, applied to a string, and to the string items
            of a list or a tuple.
        pattern: a name in :data:`PATTERNS` or ``pattern_map`` the string must match.
        pattern_map: more named patterns (regexes or predicates), overriding built-ins.
        regex: a regex (string or compiled) the string must contain (``re.search``).
        items_type: the type of every item (same forms as ``expected_type``); the items
            come back as a list (a tuple as a tuple); a mapping is refused (its
            values are no items, and the list of its keys lost them).
        allow_none: whether ``None`` is acceptable.
        softcheck: convert a string to a non-collection type (``"5"`` for ``int``;
            ``"true"``, ``"yes"``, ``"false"``, ``"no"`` for ``bool``).  This is
            RESTfly's meaning, not "return False instead of raising".

    Raises:
        TypeError: ``obj`` (or an item) is not, and cannot be converted to, the type.
        UnexpectedValueError: a value outside ``choices`` or not matching a pattern; an
            unknown ``pattern``, ``case`` or type name, an ``expected_type`` or
            ``items_type`` that is no type (``0``, ``()``), a ``regex`` (or pattern) that
            does not compile, ``choices`` that are not iterable, a ``pattern_map`` that is
            not a mapping (all even when ``obj`` is ``None``); a ``name`` that is not a
            string.
        RequiredParameterError: ``obj`` is ``None`` and ``allow_none`` is ``False``.

    Differences from RESTfly: explicit keyword-only keywords (a misspelt one is a
    ``TypeError``); :class:`RequiredParameterError` for a missing value (still a
    ``ValueError``); :class:`UnexpectedValueError`, not ``IndexError``, for an unknown
    pattern; ``choices=[]`` allows nothing; ``case`` applies to a tuple's items too (as
    ``choices`` do); ``pattern`` and ``regex`` both apply; built-in patterns end at
    ``\\Z``, accept upper-case hex, and check IPs with :mod:`ipaddress`;
    stdlib date parsing instead of ``arrow``; ``bool`` refused for ``int``, in
    ``choices`` too (``True == 1`` let ``choices=[True]`` take ``1``); ``items_type``
    refuses a mapping (RESTfly returned the list of its keys, the values lost); the
    ``"uuid"``-style types come from pyTenable's wrapper of this function; the ``"url"``
    pattern also takes a port, a query string, a fragment and upper case, and refuses
    whitespace (RESTfly's took ``"https://example.com/a b"``).

    ``check("limit", "50", int, choices=range(1, 101))`` returns ``50``.

    .. versionadded:: 0.1.0
    """
    if not isinstance(name, str):
        # Quoted by every error: a non-string failed with an AttributeError, and only
        # when the value was wrong, so the bad call passed every test with good values.
        raise UnexpectedValueError(f"check: name must be a string, got {type(name).__name__}")
    types, implied = _resolve(name, expected_type, "expected_type")
    # "is not None", not truth: items_type=0, "" or () was silently no items_type, where
    # an items_type that is no type is documented to raise.
    item_types, item_implied = (
        _resolve(name, items_type, "items_type") if items_type is not None else ((), None)
    )
    if pattern_map is not None and not isinstance(pattern_map, Mapping):
        raise UnexpectedValueError(
            f"check({name!r}): pattern_map must be a mapping, got {type(pattern_map).__name__}"
        )
    if choices is not None and not isinstance(choices, Iterable):
        raise UnexpectedValueError(
            f"check({name!r}): choices must be an iterable, got {type(choices).__name__}"
        )
    known = {**PATTERNS, **(pattern_map or {})}
    matchers: list[tuple[str, PatternSpec]] = []
    for pattern_name in dict.fromkeys(p for p in (implied, item_implied, pattern) if p):
        if pattern_name not in known:
            raise UnexpectedValueError(
                f"check({name!r}): pattern {pattern_name!r} is unknown, expected one of "
                f"{', '.join(sorted(known))}"
            )
        spec = known[pattern_name]
        if not callable(spec):
            spec = _regex(name, f"pattern {pattern_name!r}", spec)
        matchers.append((repr(pattern_name), spec))
    if regex is not None:
        compiled = _regex(name, f"regex {regex!r}", regex)
        matchers.append((repr(compiled.pattern), compiled))
    allowed = None if choices is None else _allowed(choices, case)
    if case is not None:
        obj, default = _cased(obj, case), _cased(default, case)

    if obj is None:
        if allow_none:
            return default
        expected = " or ".join(kind.__name__ for kind in types)
        raise RequiredParameterError(f"{name} is required: got None, expected {expected}")
    obj = _convert(name, obj, types, softcheck)
    if items_type is not None:
        if isinstance(obj, str | bytes) or not isinstance(obj, Iterable):
            raise TypeError(f"{name} is of type {type(obj).__name__}, expected an iterable")
        if isinstance(obj, Mapping):
            # Taken as an iterable, a dict came back as the list of its keys, values
            # lost, and no longer the dict expected_type asked for.
            raise TypeError(
                f"{name} is a {type(obj).__name__}: items_type checks the items of a list, "
                "a tuple or a set, not a mapping's values (check each value)"
            )
        items = [
            _convert(f"{name}[{i}]", item, item_types, softcheck) for i, item in enumerate(obj)
        ]
        obj = tuple(items) if isinstance(obj, tuple) else items  # a set: a list, as RESTfly

    values = obj if isinstance(obj, list | tuple) else [obj]
    for value in values:
        if allowed is not None and not _allows(allowed, value):
            raise UnexpectedValueError(
                f"{name} has value {_shown(name, value)}, expected one of {_short(allowed)}"
            )
        for label, spec in matchers:
            if isinstance(value, str) and not _matches(spec, value):
                raise UnexpectedValueError(
                    f"{name} has value {_shown(name, value)}, expected a match of pattern {label}"
                )
    return obj


def _allowed(choices: Iterable[Any], case: Case | None) -> Iterable[Any]:
    """check()'s ``choices`` as it tests them: a container (a ``range`` above all) as it
    is, since ``list(range(0, 2**40))`` was a MemoryError and ``in`` needs no copy.

    Copied to a list: a one-shot iterator (tested once per item), a string (``in`` of
    a string finds substrings; its characters are the choices, as in RESTfly), and
    choices to case (a ``range`` holds no string to case).
    """
    if isinstance(choices, range) or (
        case is None and isinstance(choices, Container) and not isinstance(choices, str | bytes)
    ):
        return choices
    listed = list(choices)
    return listed if case is None else force_case(listed, case)


def _allows(allowed: Iterable[Any], value: Any) -> bool:
    """Whether ``value`` is one of ``allowed`` (see _allowed).  A bool is no int here
    either (``True == 1``: ``choices=[True]`` took 1, and ``choices=[1]`` took
    ``True``, where the type check refuses a bool for an int)."""
    try:
        found = value in allowed
    except TypeError:
        # A set or a dict cannot hold an unhashable value (a list item), but asking
        # raises: compared one by one, as the list the choices used to become was.
        found = any(value == choice for choice in allowed)
    if not found or not isinstance(value, int | float):
        return found
    if isinstance(allowed, range):  # ints only, and too long to walk (range(2**40))
        return not isinstance(value, bool)
    # Equal to a choice: one of the same kind (bool, or a number that is no bool)?
    return any(
        value == choice and isinstance(choice, bool) == isinstance(value, bool)
        for choice in allowed
        if isinstance(choice, int | float)
    )


def _matches(spec: PatternSpec, value: str) -> bool:
    if callable(spec):
        return bool(spec(value))
    return re.search(spec, value) is not None
