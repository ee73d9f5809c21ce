"""Checks, at construction, of what a ``TrioAPISession`` subclass declares: the
keywords its overridden ``_authenticate``/``_build_session`` take, and the class
shortcuts that override its ``_throttle``.

Each names the mistake now, where a bare ``TypeError`` on entering (or a setting
silently lost) would point nowhere near it.  ``base`` is ``TrioAPISession`` (passed in:
this module is imported by the session's).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from . import errors

__all__ = [
    "check_async_hooks",
    "check_hooks_take_keywords",
    "check_required_hook_keywords",
    "check_unexpected_keywords",
    "class_shortcuts",
]

#: The hooks called on entering with the constructor keywords the session did not know.
HOOKS = ("_authenticate", "_build_session")


def class_shortcuts(cls: type, base: type) -> dict[str, Any]:
    """The class attributes ``_rate_limit``, ``_burst`` and ``_adaptive`` that override
    the class's ``_throttle``: those an SDK class set at least as deep in the hierarchy
    (``__mro__`` order) as the ``_throttle`` it inherits."""
    mro = cls.__mro__

    def depth(name: str) -> int:
        return next(index for index, klass in enumerate(mro) if name in vars(klass))

    throttle_depth = depth("_throttle")
    return {
        key: getattr(cls, f"_{key}")
        for key in ("rate_limit", "burst", "adaptive")
        if mro[depth(f"_{key}")] is not base
        and depth(f"_{key}") <= throttle_depth
        # None is the base's "unset", as for the keywords: `_rate_limit = None` beside
        # a `_throttle` with a rate wiped it out.
        and getattr(cls, f"_{key}") is not None
    }


def check_async_hooks(cls: type, base: type, names: tuple[str, ...]) -> None:
    """Each of ``names`` that ``cls`` overrides with a plain ``def`` where ``base`` has
    an ``async def``: RESTfly's hooks were plain, and a port that kept one failed with
    a bare "object ... can't be used in 'await' expression", a ``_retry_request`` only
    at its first retry (in production, past every test without one), a
    ``_resp_error_check`` after the server had answered a POST.  A decorated hook
    (``functools.wraps`` leaves ``__wrapped__``) may return an awaitable: not judged."""
    for name in names:
        hook = getattr(cls, name, None)
        if hook is getattr(base, name) or not inspect.isfunction(hook):
            continue
        if inspect.iscoroutinefunction(getattr(base, name)) and not (
            inspect.iscoroutinefunction(hook) or hasattr(hook, "__wrapped__")
        ):
            raise errors.UnexpectedValueError(
                f"{cls.__name__}.{name}() must be an async def: trestfly awaits it "
                "(RESTfly's was a plain def)"
            )


def _overridden_hooks(session: object, base: type) -> Iterator[tuple[str, list[inspect.Parameter]]]:
    """The parameters of each hook ``session``'s class overrides, one hook at a time:
    a hook's mistake is named before the next hook's signature is read."""
    cls = type(session)
    for name in HOOKS:
        if getattr(cls, name) is not getattr(base, name):
            yield name, list(inspect.signature(getattr(session, name)).parameters.values())


def check_required_hook_keywords(session: object, base: type, kwargs: Mapping[str, Any]) -> None:
    """An overridden ``_authenticate`` or ``_build_session`` with a parameter that has
    no default (``api_key: str``, natural under mypy) is called on entering with the
    constructor's keywords: one not given there is named now, not as a bare
    TypeError on entering."""
    cls = type(session)
    for name, params in _overridden_hooks(session, base):
        missing = [
            p.name
            for p in params
            if p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and (p.kind is p.POSITIONAL_ONLY or p.name not in kwargs)
        ]
        if missing:
            raise errors.RequiredParameterError(
                f"{cls.__name__}.{name}() requires {', '.join(missing)}, which "
                f"{cls.__name__}(...) did not get: it is called on entering with the "
                "keywords the session does not know"
            )


def check_unexpected_keywords(session: object, base: type, kwargs: Mapping[str, Any]) -> None:
    """``error_on_unexpected_input``: the keywords the session did not know must be
    ones an overridden hook uses, and each overridden hook must accept them all."""
    cls = type(session)
    # Both hooks are called with every keyword the session did not know; the base
    # methods take them as **kwargs and ignore them, so only an override can use one.
    hooks = dict(_overridden_hooks(session, base))
    # A keyword is used when an overridden hook names it, or by anything when an
    # overridden _authenticate takes **kwargs.  Not when only _build_session does:
    # the documented override passes its **kwargs on to super(), which ignores
    # them, and counting it switched the check off (a misspelt max_retries=3 passed
    # silently, and a misspelt keyword of an override naming its own was a bare
    # TypeError on entering).
    if not _takes_any_keyword(hooks.get("_authenticate", [])):
        accepted = set().union(*(_keyword_names(params) for params in hooks.values()))
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise errors.UnexpectedValueError(
                f"{cls.__name__} got unexpected keyword(s) {', '.join(unknown)}: "
                "neither the session nor its _authenticate() or _build_session() "
                "accepts them"
            )
    check_hooks_take_keywords(session, base, kwargs)


def check_hooks_take_keywords(session: object, base: type, kwargs: Mapping[str, Any]) -> None:
    """Each overridden hook must take every keyword the session did not know, whatever
    ``error_on_unexpected_input`` says: entering calls them with all of them, and a
    misspelt ``api_kye=`` was a bare TypeError there, far from the constructor."""
    cls = type(session)
    for name, params in _overridden_hooks(session, base):
        if not _takes_any_keyword(params):
            refused = sorted(set(kwargs) - _keyword_names(params))
            if refused:
                raise errors.UnexpectedValueError(
                    f"{cls.__name__}.{name}() does not accept keyword(s) "
                    f"{', '.join(refused)}: _authenticate() and _build_session() "
                    "each receive every keyword the session does not know"
                )


def _keyword_names(parameters: list[inspect.Parameter]) -> set[str]:
    """The names a call may pass these parameters by keyword."""
    by_keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {p.name for p in parameters if p.kind in by_keyword}


def _takes_any_keyword(parameters: list[inspect.Parameter]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
