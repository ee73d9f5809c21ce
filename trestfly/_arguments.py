"""Checks of a session's constructor arguments (pure).

Each returns the value to keep, or raises :class:`~trestfly.errors.UnexpectedValueError`
naming the argument, at construction: a wrong value found only on entering the session,
or at the first request, or never (a string of paths iterated as characters restricts
nothing) is a bug report waiting to happen.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from . import errors

T = TypeVar("T")


def is_finite(value: int | float) -> bool:
    """``math.isfinite`` that answers False for an int too large to be a float (10**400),
    where ``math.isfinite`` raises OverflowError: every later float operation would."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_number(name: str, value: Any, *, minimum: float, integer: bool = False) -> Any:
    """A finite number (an int when ``integer``) of at least ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not is_finite(value)
        or value < minimum
    ):
        kind = "an integer" if integer else "a number"
        raise errors.UnexpectedValueError(f"{name} must be {kind} >= {minimum}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` itself: ``bool("false")`` is true, so no other value is
    taken as a switch."""
    if not isinstance(value, bool):
        raise errors.UnexpectedValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_instance(name: str, value: Any, kind: type[T]) -> T:
    """``value`` itself, when it is a ``kind``."""
    if not isinstance(value, kind):
        raise errors.UnexpectedValueError(
            f"{name} must be a {kind.__name__}, got {type(value).__name__}"
        )
    return value


def check_restricted_paths(value: Any) -> frozenset[str]:
    """The paths, slashes stripped.  A single string is refused, not iterated: its
    characters would restrict nothing, and the body it was meant to hide would be
    logged."""
    # Values are never quoted: "auth/login?otp=..." given as one string, or as bytes in
    # the collection, holds what the setting exists to hide.
    if isinstance(value, str | bytes) or not _is_iterable(value):
        raise errors.UnexpectedValueError(
            "restricted_paths must be a collection of paths (e.g. ['auth/login']), got a "
            f"{type(value).__name__}"
        )
    paths = list(value)
    for index, path in enumerate(paths):
        if not isinstance(path, str):
            raise errors.UnexpectedValueError(
                f"restricted_paths must hold path strings, got a {type(path).__name__} at "
                f"restricted_paths[{index}]"
            )
        # Matched against the end of the path of the URL sent: an entry with a scheme
        # and host, a query or a fragment, or no segment at all, never matches, and the
        # login it was meant to hide was logged.  (Not quoted: it may hold a query.)
        if "://" in path or "?" in path or "#" in path or not path.strip("/"):
            raise errors.UnexpectedValueError(
                f"restricted_paths[{index}] can never match: give the path alone, without "
                "scheme, host, query or fragment (e.g. 'auth/login')"
            )
    return frozenset(path.strip("/") for path in paths)


def check_error_map(name: str, value: Any) -> dict[int, type[errors.APIError]]:
    """A status -> APIError subclass map, checked whole: a key of the wrong kind
    (``"404"``) would never match a status, and a value that is not an exception class
    would fail only when that status comes."""
    if not isinstance(value, Mapping):
        raise errors.UnexpectedValueError(
            f"{name} must be a mapping of status codes to APIError subclasses, "
            f"got {type(value).__name__}"
        )
    checked: dict[int, type[errors.APIError]] = {}
    for status, cls in value.items():
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise errors.UnexpectedValueError(
                f"{name} keys must be HTTP status codes (integers 100-599), got {status!r}"
            )
        if 200 <= status < 300:
            # A 2xx is returned before the map is looked at: the entry would never apply.
            # (A 3xx is not: it raises when redirects are not followed.)
            raise errors.UnexpectedValueError(
                f"{name} cannot map the success {status}: a 2xx answer is returned, never raised"
            )
        if not (isinstance(cls, type) and issubclass(cls, errors.APIError)):
            raise errors.UnexpectedValueError(
                f"{name}[{status}] must be a trestfly.errors.APIError subclass, got {cls!r}"
            )
        _check_error_constructor(name, status, cls)
        checked[status] = cls
    return checked


def _check_error_constructor(name: str, status: int, cls: type[errors.APIError]) -> None:
    """The session builds a mapped error as ``cls(response, retries=..., retry_after=...)``:
    a subclass whose ``__init__`` takes the response alone failed with a bare TypeError
    when that status came, not here."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no signature to read: judged when it is built
        return
    try:
        signature.bind(None, retries=0, retry_after=None)
    except TypeError as exc:
        raise errors.UnexpectedValueError(
            f"{name}[{status}] {cls.__name__} must accept cls(response, retries=..., "
            f"retry_after=...) as APIError does ({exc}); pass **kwargs on to "
            "super().__init__()"
        ) from None


def _is_iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True
