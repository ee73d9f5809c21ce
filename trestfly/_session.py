"""TrioAPISession: the RESTfly session model on Trio.

The session holds what its calls share: the settings, the httpx client, one gate per
origin (:mod:`trestfly._admission`, :mod:`trestfly._throttle`), the retry budget and the
counters.  Each call's attempts and retry decisions are :class:`trestfly._call.Call`'s.
"""

from __future__ import annotations

import importlib.util
import random
import urllib.request
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from types import MappingProxyType, TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx
import trio

from . import errors
from ._admission import (
    OriginGate,
)
from ._arguments import (
    check_bool,
    check_error_map,
    check_instance,
    check_number,
    check_restricted_paths,
)
from ._budget import BudgetSettings, RetryBudget
from ._call import Call
from ._client import (
    CertTypes,
    ProxiesTypes,
    TimeoutTypes,
    VerifyTypes,
    build_transports,
    check_cert,
    check_cert_beside_verify,
    check_verify,
    ssl_setting,
    timeout_setting,
    user_agent,
)
from ._coordination import Coordination
from ._fanout import CompletedMap, map_ordered
from ._hook_keywords import (
    check_async_hooks,
    check_hooks_take_keywords,
    check_required_hook_keywords,
    check_unexpected_keywords,
    class_shortcuts,
)
from ._lifecycle import Opening, changed_settings, read_settings
from ._options import (
    CallOptions,
    RequestOptions,
    box_options,
    checked_method,
    drop_none_fields,
    read_iterators_once,
    resolve,
    status_codes,
)
from ._origins import (
    ANSWERED,
    CALL_REQUEST,
    HINT_AT,
    CallMark,
    drop_credentials_off_origin,
    origin_of,
)
from ._policy import (
    DEFAULT_RETRY_STATUSES,
)
from ._proxies import check_proxies
from ._ratelimit import scan_headers
from ._retry_after import HINTED_STATUSES, parse_retry_after_fields
from ._safe_url import safe_url
from ._stats import Counters, OriginStats, SessionStats
from ._throttle import OriginThrottle, ThrottleSettings
from ._transport import ShardedTransport
from ._urls import (
    build_url,
    check_base_path,
    check_host_and_port,
    check_url,
    is_absolute,
    join_path,
    parse_url,
)
from ._version import __version__

T = TypeVar("T")
R = TypeVar("R")

_UNSET: Any = object()


def _environment_proxies() -> bool:
    """Whether HTTP_PROXY / HTTPS_PROXY / ALL_PROXY are set (NO_PROXY alone is not)."""
    return any(key in ("http", "https", "all") for key in urllib.request.getproxies())


#: The hooks trestfly awaits: an override must be an async def (see check_async_hooks).
ASYNC_HOOKS = ("_authenticate", "_deauthenticate", "_resp_error_check", "_retry_request")

#: Origins the session keeps before it looks for idle ones to forget (and the least
#: count it looks again at, doubled after each look; see _forget_idle_gates).
GATE_SWEEP_MIN = 256
#: Seconds without a request or an answer after which an origin's gate may be forgotten.
FORGET_IDLE_ORIGIN_AFTER = 600.0


async def _close_all(clients: list[httpx.AsyncClient]) -> None:
    """Close every client, even when one fails to (the first failure is raised after),
    shielded: sockets must be closed even when we leave by cancellation."""
    with trio.CancelScope(shield=True):
        for index, client in enumerate(clients):
            try:
                await client.aclose()
            except BaseException:
                await _close_all(clients[index + 1 :])
                raise


class TrioAPISession:
    """Base class of an API client: subclass it, set ``_url``, add endpoints.

    Use it as an async context manager::

        class MyAPI(TrioAPISession):
            _url = "https://api.example.com"
            _base_path = "v1"

        async with MyAPI(api_key="...") as api:
            resp = await api.get("users", params={"page": 1})

    Every class attribute below can be overridden by a subclass, and per session by the
    constructor keyword of the same name without the underscore (``retries=5``).  ``None``
    for a keyword means "keep the class attribute", except ``timeout=None`` (no timeout);
    ``follow_redirects`` takes only True or False.  Keywords the session does not know are
    handed to :meth:`_authenticate` (and :meth:`_build_session`).

    A session may be shared by any number of concurrent tasks.

    .. versionadded:: 0.1.0
    """

    #: The API's root URL, e.g. ``"https://api.example.com"``: http or https, with a host
    #: and neither a query string nor a fragment (the paths are joined after it).
    _url: str | None = None
    #: A path prefix joined after ``_url`` for every request unless ``use_base=False``.
    _base_path: str = ""
    #: Retries after the first attempt (``retries + 1`` attempts in all).
    _retries: int = 5
    #: Without a server hint, retry ``n`` waits a random time up to
    #: ``backoff * 2 ** (n - 1)`` seconds ("full jitter"), at most ``max_backoff``.
    _backoff: float = 0.025
    #: The longest wait of a retry without a server hint, in seconds.
    _max_backoff: float = 10.0
    #: Return JSON responses as ``box.Box``/``box.BoxList``.
    _box: bool = False
    #: Keyword arguments for every Box built from a response.
    _box_attrs: Mapping[str, Any] = MappingProxyType({})
    #: Return JSON responses as plain dicts/lists (``box`` wins when both are set).
    _conv_json: bool = False
    #: TLS verification: a bool, a CA bundle path, or an ``ssl.SSLContext``.
    _ssl_verify: VerifyTypes = True
    #: A client certificate: a path, or ``(cert, key)`` / ``(cert, key, password)``.
    _cert: CertTypes | None = None
    #: A proxy URL, or RESTfly's ``{"http": url, "https": url}``.
    _proxies: ProxiesTypes | None = None
    #: Seconds without progress (connect, read, write, pool); an ``httpx.Timeout`` passes.
    _timeout: TimeoutTypes = 30.0
    #: The SDK's vendor, product and build, named in the User-Agent.
    _vendor: str = "unknown"
    #: The product the SDK integrates (User-Agent).
    _product: str = "unknown"
    #: The SDK's build or version (User-Agent).
    _build: str = "unknown"
    #: The SDK library's name (User-Agent).
    _lib_name: str = "Trestfly"
    #: The SDK library's version (User-Agent).
    _lib_version: str = __version__
    #: Paths (slashes stripped) whose params and bodies are never logged.
    _restricted_paths: Collection[str] = ()
    #: Status -> exception overrides, applied over ``_base_error_map``.
    _error_map: Mapping[int, type[errors.APIError]] = MappingProxyType({})
    #: The default status -> exception map (RESTfly 1.x names), under ``_error_map``.
    _base_error_map: Mapping[int, type[errors.APIError]] = errors.BASE_ERROR_MAP
    #: Statuses retried by default (``retry_statuses=`` per session); ``retry_on`` adds
    #: to them.  A throttle (420, 429, GitHub's throttling 403) is retried whatever this
    #: holds: only ``retries=0`` stops it.
    _retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES
    #: Extra statuses this session retries on every call.
    _retry_on: Collection[int] = ()
    #: Raise on constructor keywords neither the session nor an overridden
    #: ``_authenticate`` or ``_build_session`` names (at construction).
    _error_on_unexpected_input: bool = False
    #: A server delay hint above this many seconds fails at once instead of sleeping.
    _max_retry_after: float = 300.0
    #: Most requests in flight through this session at once (also the pool size of the
    #: client trestfly builds).
    _max_concurrency: int = 100
    #: Use HTTP/2 (needs ``pip install httpx[http2]``); one multiplexed pool, not shards.
    _http2: bool = False
    #: Follow redirects (as requests did; httpx's own default is not to), sent with
    #: every request, so it holds for a ``session=`` client too.
    _follow_redirects: bool = True
    #: Client-side requests per second per origin (None: no client-side limit).
    _rate_limit: float | None = None
    #: Requests the client-side rate limit lets through at once.
    _burst: int = 1
    #: Learn and keep the rate and concurrency an origin allows once it throttles.
    _adaptive: bool = True
    #: The finer knobs of throttling (decrease, recovery, probe_growth, jitter, ...).
    _throttle: ThrottleSettings = ThrottleSettings()
    #: The retry budget for failures without server guidance (5xx, transport errors).
    _retry_budget: BudgetSettings = BudgetSettings()

    def __init__(
        self,
        *,
        url: str | None = None,
        base_path: str | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        max_backoff: float | None = None,
        box: bool | None = None,
        box_attrs: Mapping[str, Any] | None = None,
        conv_json: bool | None = None,
        ssl_verify: VerifyTypes | None = None,
        cert: CertTypes | None = None,
        proxies: ProxiesTypes | None = None,
        timeout: TimeoutTypes = _UNSET,
        vendor: str | None = None,
        product: str | None = None,
        build: str | None = None,
        lib_name: str | None = None,
        lib_version: str | None = None,
        restricted_paths: Collection[str] | None = None,
        error_map: Mapping[int, type[errors.APIError]] | None = None,
        base_error_map: Mapping[int, type[errors.APIError]] | None = None,
        retry_statuses: Collection[int] | None = None,
        retry_on: Collection[int] | None = None,
        error_on_unexpected_input: bool | None = None,
        max_retry_after: float | None = None,
        max_concurrency: int | None = None,
        http2: bool | None = None,
        rate_limit: float | None = None,
        burst: int | None = None,
        adaptive: bool | None = None,
        throttle: ThrottleSettings | None = None,
        retry_budget: BudgetSettings | None = None,
        coordination: Coordination | None = None,
        session: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        follow_redirects: bool | None = None,
        **kwargs: Any,
    ) -> None:
        cls = type(self)

        own = vars(self)

        def pick(value: Any, name: str) -> Any:
            # The argument, else a value the subclass set on the instance before calling
            # super().__init__() (RESTfly's own idiom: it reads kwargs.get("url",
            # self._url)), else the class attribute.  Read from the class alone, an
            # SDK's `self._url = f"https://{region}..."` was overwritten silently.
            if value is not None:
                return value
            return own[name] if name in own else getattr(cls, name)

        # Everything is copied into the instance: no two sessions (or subclasses) ever
        # share a mutable default, and nothing here mutates a class.
        # Checked before it is kept: a URL refused (a password with a "/" the repr cannot
        # hide) stays out of the half-built session's repr.
        given_url = pick(url, "_url")
        check_url(given_url)
        self._url: str | None = given_url
        self._base_path: str = check_base_path(pick(base_path, "_base_path"))
        self._retries: int = check_number(
            "retries", pick(retries, "_retries"), minimum=0, integer=True
        )
        self._backoff: float = check_number("backoff", pick(backoff, "_backoff"), minimum=0)
        self._max_backoff: float = check_number(
            "max_backoff", pick(max_backoff, "_max_backoff"), minimum=0
        )
        self._box: bool = check_bool("box", pick(box, "_box"))
        self._box_attrs: Mapping[str, Any] = dict(box_options(pick(box_attrs, "_box_attrs")))
        self._conv_json: bool = check_bool("conv_json", pick(conv_json, "_conv_json"))
        self._ssl_verify: VerifyTypes = pick(ssl_verify, "_ssl_verify")
        check_verify(self._ssl_verify)
        self._cert: CertTypes | None = pick(cert, "_cert")
        check_cert(self._cert)
        check_cert_beside_verify(self._ssl_verify, self._cert)  # at construction, not entering
        self._proxies: ProxiesTypes | None = pick(proxies, "_proxies")
        check_proxies(self._proxies)
        self._timeout: TimeoutTypes = (
            own.get("_timeout", cls._timeout) if timeout is _UNSET else timeout
        )
        timeout_setting(self._timeout)  # checked now, not on entering
        self._vendor: str = pick(vendor, "_vendor")
        self._product: str = pick(product, "_product")
        self._build: str = pick(build, "_build")
        self._lib_name: str = pick(lib_name, "_lib_name")
        self._lib_version: str = pick(lib_version, "_lib_version")
        # Not re-annotated as frozensets: pyright took the narrower type for the class
        # attribute too, and refused an SDK's `_restricted_paths = ("oauth/token",)`.
        restricted = check_restricted_paths(pick(restricted_paths, "_restricted_paths"))
        self._restricted_paths = restricted
        self._error_map: Mapping[int, type[errors.APIError]] = check_error_map(
            "error_map", pick(error_map, "_error_map")
        )
        self._base_error_map: Mapping[int, type[errors.APIError]] = check_error_map(
            "base_error_map", pick(base_error_map, "_base_error_map")
        )
        self._error_on_unexpected_input: bool = check_bool(
            "error_on_unexpected_input",
            pick(error_on_unexpected_input, "_error_on_unexpected_input"),
        )
        self._max_retry_after: float = check_number(
            "max_retry_after", pick(max_retry_after, "_max_retry_after"), minimum=0
        )
        self._max_concurrency: int = check_number(
            "max_concurrency", pick(max_concurrency, "_max_concurrency"), minimum=1, integer=True
        )
        base_throttle = check_instance("throttle", pick(throttle, "_throttle"), ThrottleSettings)
        # A keyword beats a class attribute, and a subclass's attribute its parent's: a
        # throttle= keyword takes no class shortcut, and a class _throttle only those
        # set as deep in the hierarchy or deeper (the same class: the shortcut wins).
        overrides = {} if throttle is not None else class_shortcuts(cls, TrioAPISession)
        if throttle is None:
            # Set on the instance before super().__init__(): the deepest level of all.
            overrides.update(
                (key, own[f"_{key}"])
                for key in ("rate_limit", "burst", "adaptive")
                if own.get(f"_{key}") is not None
            )
        overrides.update(
            (key, value)
            for key, value in (("rate_limit", rate_limit), ("burst", burst), ("adaptive", adaptive))
            if value is not None
        )
        self._throttle: ThrottleSettings = replace(base_throttle, **overrides)
        self._rate_limit: float | None = self._throttle.rate_limit
        self._burst: int = self._throttle.burst
        self._adaptive: bool = self._throttle.adaptive
        self._retry_budget: BudgetSettings = check_instance(
            "retry_budget", pick(retry_budget, "_retry_budget"), BudgetSettings
        )
        # Settings of the client trestfly builds, given beside a client or a transport
        # they cannot reach: a proxy bypassed, a certificate never presented, a timeout
        # not applied, all silently.  (Class attributes are an SDK's defaults, and give
        # way to what the caller passes: only keywords are refused.)
        if session is not None or transport is not None:
            keywords: dict[str, object] = {
                "ssl_verify": ssl_verify,
                "cert": cert,
                "proxies": proxies,
                "http2": http2,
            }
            if session is not None and timeout is not _UNSET:
                # (The client trestfly builds around a transport= does take it.)
                keywords["timeout"] = timeout
            unreachable = [
                f"{name}="
                for name, value in keywords.items()
                if value is not None or name == "timeout"
            ]
            if unreachable:
                what = "session= client" if session is not None else "transport="
                raise errors.UnexpectedValueError(
                    f"{', '.join(unreachable)} cannot reach the {what} given: set "
                    f"{'them' if len(unreachable) > 1 else 'it'} on the "
                    f"{'client' if session is not None else 'transport'} you pass, "
                    "which is used as it is"
                )
        self._http2: bool = check_bool("http2", pick(http2, "_http2"))
        _check_h2_installed(self._http2, session, transport)
        # Read like the others: a class's `_follow_redirects = False`, or one set before
        # super().__init__(), was overwritten by the keyword's default, silently.
        self._follow_redirects: bool = check_bool(
            "follow_redirects", pick(follow_redirects, "_follow_redirects")
        )
        if session is not None and not isinstance(session, httpx.AsyncClient):
            raise errors.UnexpectedValueError(
                f"session must be an httpx.AsyncClient, got a {type(session).__name__}"
            )
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise errors.UnexpectedValueError(
                f"transport must be an httpx.AsyncBaseTransport, got a {type(transport).__name__}"
            )
        if session is not None and transport is not None:
            # The client sends through its own transport: this one would be ignored.
            raise errors.UnexpectedValueError(
                "give session= or transport=, not both: a session= client is used as it "
                "is, with its own transport"
            )
        if isinstance(transport, ShardedTransport) and (
            transport.max_connections < self._max_concurrency
        ):
            # The excess would wait inside httpcore's pool, where a cancelled request
            # can leak a connection.  (Other transports do not say their pool size.)
            raise errors.UnexpectedValueError(
                f"max_concurrency={self._max_concurrency} is more than the "
                f"{transport.max_connections} connections of the transport= given: set "
                f"max_concurrency={transport.max_connections} or give it more connections"
            )
        self._injected_session = session
        self._transport = transport
        if coordination is not None and not isinstance(coordination, Coordination):
            raise errors.UnexpectedValueError(
                "coordination must be a trestfly Coordination (MemoryCoordination, "
                f"RedisCoordination), got {type(coordination).__name__}"
            )
        # Per instance only: a coordination shared through a class attribute would tie
        # every session of an SDK together behind the user's back.
        self._coordination = coordination
        self._owns_coordination = False

        retried = status_codes(
            pick(retry_statuses, "_retry_statuses"),
            "retry_statuses" if retry_statuses is not None else "_retry_statuses",
        )
        self._retry_statuses = retried
        self._status_errors: Mapping[int, type[errors.APIError]] = MappingProxyType(
            {**self._base_error_map, **self._error_map}
        )
        session_retry_on = status_codes(pick(retry_on, "_retry_on"))
        # On the instance, as every other setting: a hook reading self._retry_on saw the
        # class's list, not the keyword's, and an SDK appending to it after
        # super().__init__() changed the class for every later session (and this one
        # not at all).  A frozenset: changed later, it is refused on entering.
        self._retry_on = session_retry_on
        self._defaults = CallOptions(
            box=self._box,
            box_attrs=MappingProxyType(dict(self._box_attrs)),
            conv_json=self._conv_json,
            retry_statuses=retried | session_retry_on,
            retry_on=session_retry_on,
            use_base=True,
            redact_fields=(),
            redact_value="REDACTED",
            deadline=None,
            restricted_paths=restricted,
        )

        check_async_hooks(type(self), TrioAPISession, ASYNC_HOOKS)
        check_required_hook_keywords(self, TrioAPISession, kwargs)
        if self._error_on_unexpected_input:
            check_unexpected_keywords(self, TrioAPISession, kwargs)
        else:
            check_hooks_take_keywords(self, TrioAPISession, kwargs)
        self._auth_kwargs: dict[str, Any] = kwargs
        self._user_agent = user_agent(
            vendor=self._vendor,
            product=self._product,
            build=self._build,
            lib_name=self._lib_name,
            lib_version=self._lib_version,
        )
        self._httpx_client: httpx.AsyncClient | None = None
        # Every client set as self._session while open but the session= one: closed on
        # leaving (an override that built its own, even after super() built one).
        self._built_clients: list[httpx.AsyncClient] = []
        self._per_request_headers: dict[str, str] | None = None
        # Requests inside httpx never outnumber the pool's connections (see _build_session).
        self._limiter = trio.CapacityLimiter(self._max_concurrency)
        self._entered = False
        # The entering task, until __aenter__ returns (see _session).
        self._opening: Opening | None = None
        self._trio_run: trio.lowlevel.TrioToken | None = None  # the run it was opened in
        self._rng = random.Random()
        self._gates: dict[str, OriginGate] = {}
        self._gate_sweep_at = GATE_SWEEP_MIN  # see _forget_idle_gates
        self._url_cache: dict[tuple[str | None, str, str, bool], tuple[str, str, httpx.URL]] = {}
        # The origin of `_url`, and the `_url` it was read from (see _origin_of_url).
        self._default_origin = origin_of(self._url) if self._url else None
        self._default_origin_of = self._url
        self._budget = RetryBudget(self._retry_budget, 0.0)
        self._budget_started = False
        self._counters = Counters()
        # Calls in progress that retried a failure the server gave no guidance on (see
        # Call._budget_allows).
        self._retrying_unguided = 0
        # The Trio time of the last attempt or leaving: what `stats` compares the gates
        # and the budget with when read outside trio.run (see _stats_time).
        self._last_seen = 0.0
        self._settings_read = read_settings(self)

    def _check_live_settings(self, when: str) -> None:
        """Check again the settings calls read as they are now (assigned after
        ``super().__init__()`` in RESTfly's way, they are taken): ``_retries = "3"``
        failed only after a first attempt, with a bare TypeError from the retry's
        arithmetic, and ``_url = 5`` with an AttributeError."""
        try:
            check_url(self._url)
            check_base_path(self._base_path)
            check_number("retries", self._retries, minimum=0, integer=True)
            check_number("backoff", self._backoff, minimum=0)
            check_number("max_backoff", self._max_backoff, minimum=0)
            check_number("max_retry_after", self._max_retry_after, minimum=0)
            # Read by _build_session as it is now: `_http2 = True` without h2 was a bare
            # ImportError from httpx, and "yes" was taken as true.
            check_bool("http2", self._http2)
            _check_h2_installed(self._http2, self._injected_session, self._transport)
        except errors.UnexpectedValueError as refused:
            raise errors.UnexpectedValueError(
                f"{type(self).__name__}: a setting assigned {when} is invalid: {refused}"
            ) from None

    def _check_settings_unchanged(self, when: str) -> None:
        """Refuse a setting read at construction and assigned since (RESTfly's
        ``self._box = True`` after ``super().__init__()``): it was ignored silently,
        the calls returning Responses and the error map not applied."""
        changed = changed_settings(self, self._settings_read)
        if changed:
            raise errors.UnexpectedValueError(
                f"{type(self).__name__}: {', '.join(changed)} changed {when}, but "
                f"{'is' if len(changed) == 1 else 'are'} read when the session is built: "
                "set them as class attributes, on the instance before super().__init__(), "
                "or as keywords (only _url and _base_path may change later)"
            )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The class the attribute comes from, wherever in the MRO: declared on a mixin
        # before TrioAPISession (a RESTfly-style attributes class), it hid the property
        # as surely as on the subclass itself.
        owner = next(klass for klass in cls.__mro__ if "_session" in vars(klass))
        if owner is TrioAPISession:
            return
        value = vars(owner)["_session"]
        if value is None:
            # RESTfly-style SDKs declare `_session = None`: a class attribute would
            # hide the property, and the client trestfly sets would never be seen.
            # Put the property back on the subclass (the mixin may serve other classes).
            type.__setattr__(cls, "_session", vars(TrioAPISession)["_session"])
        elif not isinstance(value, property):
            raise errors.UnexpectedValueError(
                f"{owner.__name__}._session cannot be set on the class: the session's "
                "httpx client is set per session, in _build_session"
            )

    def __repr__(self) -> str:
        # For debugging: what and where, never a secret (the URL without its password).
        # getattr: a repr must work on a subclass whose __init__ failed before ours ran.
        # isinstance: after a failed __init__ they may be what it refused (an httpx.URL,
        # bytes), and the repr raised AttributeError from inside a traceback's locals.
        url = getattr(self, "_url", None)
        base_path = getattr(self, "_base_path", "")
        base_path = base_path if isinstance(base_path, str) else ""
        where = join_path(url, base_path) if isinstance(url, str) and url else None
        state = "open" if getattr(self, "_httpx_client", None) is not None else "closed"
        shown = safe_url(where) if where else None
        return (
            f"<{type(self).__name__} url={shown!r} {state} "
            f"max_concurrency={getattr(self, '_max_concurrency', None)}>"
        )

    def _not_copied(self) -> errors.TrestflyError:
        return errors.TrestflyError(
            f"a {type(self).__name__} cannot be copied or pickled: it holds its httpx "
            "client, its gates and its budget, which a copy would share (leaving the "
            "copy's block closed the original's client); make a new session with the "
            "same settings"
        )

    def __copy__(self) -> Any:
        raise self._not_copied()

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise self._not_copied()

    def __reduce__(self) -> Any:
        raise self._not_copied()

    # ----------------------------------------------------------------- lifecycle

    def _build_session(self, *args: Any, **kwargs: Any) -> None:
        """Build ``self._session``, the ``httpx.AsyncClient`` every request goes through.

        Called on entering the context with the keywords the session did not know.  When
        the constructor got ``session=``, that client is used as it is (and never closed
        by trestfly); the session's User-Agent is then sent per request, unless the
        client has one of its own (not httpx's default).  With ``transport=``, the
        client sends through it (keep ``max_concurrency`` at or below its pool size).
        Otherwise trestfly builds a :class:`~trestfly.ShardedTransport` of
        ``max_concurrency`` one-connection pools, with the TLS, proxy and HTTP/2 settings.
        Override to customise the client, calling ``super()._build_session(**kwargs)``
        first, or build one and set ``self._session`` to it: every client set there but
        the ``session=`` one is closed on leaving the context, and is given trestfly's
        event hooks (credentials dropped off origin on redirects, throttles seen as
        their headers arrive) after its own; one sending httpx's default User-Agent
        sends the session's instead.  (The base signature takes
        ``*args`` so that an override may name its keywords and still type-check.)

        .. versionadded:: 0.1.0
        """
        if self._injected_session is not None:
            self._session = self._injected_session
            return
        verify = ssl_setting(self._ssl_verify, self._cert)
        limits = httpx.Limits(
            max_connections=self._max_concurrency,
            max_keepalive_connections=self._max_concurrency,
        )
        transport: httpx.AsyncBaseTransport | None
        mounts: dict[str, httpx.AsyncBaseTransport] | None
        if self._transport is not None:
            # The caller's transport: keep max_concurrency at or below its pool size.
            transport, mounts = self._transport, None
        elif self._proxies is None and _environment_proxies():
            # Proxies from the environment (HTTP_PROXY, NO_PROXY, ...): httpx applies
            # them only to transports it builds itself, so let it, with a pool as large
            # as max_concurrency.
            transport, mounts = None, None
        else:
            # One connection per request slot: the session's limiter then never lets more
            # requests into httpx than there are connections, so none waits inside
            # httpcore's pool queue (where cancellation leaks slots, encode/httpcore#1093).
            transport, mounts = build_transports(
                max_connections=self._max_concurrency,
                verify=verify,
                proxies=self._proxies,
                http2=self._http2,
            )
        self._session = httpx.AsyncClient(
            event_hooks={
                "request": [self._drop_credentials_off_origin],
                "response": [self._on_response_headers],
            },
            headers={"User-Agent": self._user_agent},
            timeout=timeout_setting(self._timeout),
            verify=verify,
            limits=limits,
            http2=self._http2,
            transport=transport,
            mounts=mounts,
            follow_redirects=self._follow_redirects,
        )

    def _add_hooks(self, client: httpx.AsyncClient) -> None:
        """Give a client set as ``self._session`` (but a ``session=`` one) trestfly's
        hooks, after its own, as the client trestfly builds has them: without them the
        session's ``follow_redirects`` took its ``X-Api-Key`` to whatever host a
        redirect named, and a 429 closed the gate only once its body was read."""
        hooks = client.event_hooks
        for kind, hook in (
            ("request", self._drop_credentials_off_origin),
            ("response", self._on_response_headers),
        ):
            if hook not in hooks[kind]:
                hooks[kind] = [*hooks[kind], hook]
        client.event_hooks = hooks

    async def _drop_credentials_off_origin(self, request: httpx.Request) -> None:
        # A request hook (async, as httpx's AsyncClient wants them): every request httpx
        # sends passes here, redirects included.
        drop_credentials_off_origin(request)

    async def _on_response_headers(self, response: httpx.Response) -> None:
        # Closes the origin's gate the moment a delay is announced, before the body is
        # read: reading it checkpoints, and other tasks must not send meanwhile.  The
        # error map and everything else still apply after send() (a hook also sees the
        # intermediate responses of redirects and auth flows, which is harmless here:
        # a delay the server announced holds whatever the response was for).
        # Every response of the call passes here, a redirect's too: once one has, a
        # transport failure cannot mean the call's request never reached the server.
        response.request.extensions[ANSWERED] = True
        mark = response.request.extensions.get(CALL_REQUEST)
        if isinstance(mark, CallMark):
            mark.answered = True
        status = response.status_code
        if status not in HINTED_STATUSES:
            return
        retry_after, _ = scan_headers(response.headers.raw)
        if not retry_after:
            return
        # The gate of the origin that answered, made if it has none yet (a redirect's
        # target, never called directly): calls made to it must wait too.
        gate = self._gate_for(origin_of(str(response.request.url)))
        hint = parse_retry_after_fields(retry_after, gate.wall_clock(response))
        if not hint:
            return  # none, or zero: nothing to close (see closes_gate)
        now = trio.current_time()
        gate.throttle.close_early(now, now + hint)
        # The full feedback, once the body is read, counts the hint from here too.
        response.extensions[HINT_AT] = now
        if gate.link is not None:
            gate.link.notice()

    async def _authenticate(self, *args: Any, **kwargs: Any) -> None:
        """Authenticate the session; awaited on entering the context.

        Receives the constructor keywords the session did not know (``api_key=...``);
        an override names them (``async def _authenticate(self, api_key: str) -> None``),
        which type-checks against this signature.  The default does nothing.  An
        exception raised here leaves the context unentered and closes the client
        trestfly built.

        Args:
            args: never given (there so that overrides type-check).
            kwargs: the unknown constructor keywords.

        .. versionadded:: 0.1.0
        """

    async def _deauthenticate(self) -> None:
        """Log out; awaited on leaving the context (even when the body raised).

        The client is closed after it returns, whatever it raises.

        .. versionadded:: 0.1.0
        """

    async def _resp_error_check(self, response: httpx.Response, **kwargs: Any) -> httpx.Response:
        """Inspect every 2xx response before conversion; raise to reject it.

        Some APIs answer 200 with an error document: check for it here.  What it
        raises ends the call (it is not retried).

        Args:
            response: the 2xx response.
            kwargs: the call's keywords.

        Returns:
            The response to convert and return (usually ``response`` itself).

        .. versionadded:: 0.1.0
        """
        return response

    async def _retry_request(
        self, response: httpx.Response | None, retries: int, **kwargs: Any
    ) -> dict[str, Any]:
        """Awaited before each retry; returns the keywords of the next attempt.

        Args:
            response: the response that failed, or None after a transport failure.
            retries: the number of the retry about to be made (1 for the first).
            kwargs: the call's full keywords, trestfly options included.

        Returns:
            The keywords of the next attempt (a dict; every option applies to it but
            ``deadline``, which is the whole call's, set when it began).  Raising ends
            the call with that exception.

        .. versionadded:: 0.1.0
        """
        return kwargs

    async def __aenter__(self) -> Self:
        if self._entered:
            raise errors.TrestflyError(f"{type(self).__name__} is already open")
        try:
            run = trio.lowlevel.current_trio_token()
        except RuntimeError:
            # Under asyncio.run, Trio's "must be called from async context" named
            # neither Trio nor the session.
            raise errors.TrestflyError(
                f"{type(self).__name__} must be entered inside trio.run(): trestfly runs on "
                "Trio, not asyncio"
            ) from None
        if self._trio_run is not run:
            self._start_run_state(run)
        self._check_settings_unchanged("after __init__()")
        self._check_live_settings("after __init__()")
        self._entered = True
        self._opening = Opening()
        try:
            # Inside the try: an override that fails after super() built the client
            # must not leave that client open, nor the session usable outside its block.
            self._build_session(**self._auth_kwargs)
            client = self._httpx_client
            if client is None:
                raise errors.TrestflyError("_build_session() did not set self._session")
            if client.is_closed:
                # httpx would raise a bare RuntimeError at the first request.
                raise errors.TrestflyError(
                    "the session= client is closed: it must be open while the session is"
                    if client is self._injected_session
                    else "the httpx client set as self._session is closed: trestfly closes "
                    "the clients set there (all but a session= one) when the session is "
                    "left; build a new one in _build_session, or pass a long-lived one as "
                    "session="
                )
            coordination = self._coordination
            if coordination is not None and not coordination.is_open:
                # Not opened by the user: it lives exactly as long as this session.
                await coordination.__aenter__()
                self._owns_coordination = True
            if coordination is not None:
                for origin, gate in self._gates.items():  # a session opened again
                    gate.link = coordination.attach(origin, gate.throttle)
            await self._authenticate(**self._auth_kwargs)
            self._check_settings_unchanged("in _build_session() or _authenticate()")
            self._check_live_settings("in _build_session() or _authenticate()")
            entered = self._httpx_client
            if entered is not None:
                self._choose_user_agent(entered)
        except BaseException as failure:
            await self._close_session(failing=failure)
            raise
        finally:
            self._opening = None
        return self

    def _stats_time(self) -> float:
        """The time ``stats`` compares the gates and the budget with: Trio's, in the run
        they belong to; else (outside trio.run, or in a later run before the session
        is entered there) the session's last activity in theirs.  Their instants are of
        that run's clock: compared with 0.0, or with another run's clock, an open gate
        showed as closed (or not) at random."""
        try:
            run = trio.lowlevel.current_trio_token()
        except RuntimeError:  # read outside trio.run
            return self._last_seen
        return trio.current_time() if run is self._trio_run else self._last_seen

    def _start_run_state(self, run: trio.lowlevel.TrioToken) -> None:
        """Entered in a ``trio.run`` other than the last one (a CLI that runs one per
        command): the gates, pacers, limiter and budget start afresh.  They hold
        instants of the last run's clock, which a new run starts elsewhere (a 429 of
        the last run came back as a 31-hour wait, no request sent), and Trio objects
        of that run."""
        self._trio_run = run
        self._gates = {}
        self._gate_sweep_at = GATE_SWEEP_MIN
        self._limiter = trio.CapacityLimiter(self._max_concurrency)
        # As a new session's (the last run's budget showed in stats until the first
        # call of this run replaced it: its instants are of the other clock).
        self._budget = RetryBudget(self._retry_budget, 0.0)
        self._budget_started = False
        # No call of the last run is still going: none is retrying (a count left off
        # by an interrupted run must not make every failure of this one "one of many").
        self._retrying_unguided = 0
        self._last_seen = 0.0
        # The stats too: totals of the gates (throttles, trips) start over with them.
        self._counters = Counters()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Returns None, never a truthy value: an exception raised in the body always
        # propagates (RESTfly 2's __aexit__ returned an un-awaited coroutine, which is
        # truthy and swallowed every exception).
        # What goes on out of the block: the body's exception, else what leaving raised
        # (a cancellation delivered during a logout, say).  A close that fails after
        # it must not replace it: a cancellation replaced by the close's OSError
        # escaped the move_on_after that had delivered it.
        failing = exc
        try:
            await self._deauthenticate()
        except Exception as failure:
            if exc is None:
                failing = failure
                raise
            # The body's failure (or cancellation, which must win) is what went wrong; a
            # logout that then failed too (the API being down, say) must not replace
            # it, as it did: it is noted on it.
            exc.add_note(
                f"leaving the session, {type(self).__name__}._deauthenticate() raised "
                f"{type(failure).__name__}: {failure}"
            )
        except BaseException as failure:
            failing = failure  # a Cancelled or KeyboardInterrupt: it goes on, not exc
            raise
        finally:
            await self._close_session(failing=failing)

    async def _close_session(self, *, failing: BaseException | None = None) -> None:
        """Close the clients and leave the coordination.  ``failing``: what the block
        (or the entering) raised, which a failed close must not replace -- the body's
        error, or a cancellation, which must win -- and is noted on instead, as a failed
        ``_deauthenticate`` is."""
        self._last_seen = trio.current_time()
        self._entered = False
        self._httpx_client = None
        for gate in self._gates.values():
            gate.abandon_waits()  # calls still waiting learn it now, not at their turn
        clients, self._built_clients = self._built_clients, []
        try:
            try:
                await _close_all(clients)
            finally:
                await self._leave_coordination()
        except Exception as failure:
            if failing is None:
                raise
            failing.add_note(
                f"leaving the session, closing it raised {type(failure).__name__}: {failure}"
            )

    async def _leave_coordination(self) -> None:
        coordination = self._coordination
        if coordination is None:
            return
        try:
            links = []
            for gate in self._gates.values():
                if gate.link is not None:
                    links.append(gate.link)
                    gate.link = None
            # All at once, bounded as a whole: one after another, leaving took a round
            # trip per origin (40 s for 1,000), cancelled or not.
            await coordination.detach_all(links)
        finally:
            # Whatever a last sync raised, a coordination this session opened is closed
            # with it: its background task must not outlive the session.
            if self._owns_coordination:
                self._owns_coordination = False
                await coordination.__aexit__(None, None, None)

    # ------------------------------------------------------------------ requests

    @property
    def _session(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` every request goes through, while the session is
        open (``_build_session`` sets it; ``_authenticate`` sets headers or ``auth`` on
        it).  Outside the ``async with`` block, reading it raises
        :class:`~trestfly.errors.SessionNotOpenError` (an ``AttributeError`` too).

        .. versionadded:: 0.1.0
        """
        client: httpx.AsyncClient | None = getattr(self, "_httpx_client", None)  # before __init__
        if client is None:
            raise errors.SessionNotOpenError(
                f"{type(self).__name__} is not open: use 'async with {type(self).__name__}(...) "
                "as api:' before sending requests"
            )
        opening = self._opening
        if opening is not None and not opening.includes(trio.lowlevel.current_task()):
            # The client exists before _authenticate has set its credentials: another
            # task's call sent then went out without them.  Only the entering task
            # (and tasks it started) may use the session until it is open.
            raise errors.SessionNotOpenError(
                f"{type(self).__name__} is still opening (_build_session/_authenticate are "
                "running in another task): send requests once 'async with' has entered"
            )
        try:
            run: trio.lowlevel.TrioToken | None = trio.lowlevel.current_trio_token()
        except RuntimeError:  # read outside trio.run (its headers, say): no request
            run = None
        if run is not None and run is not self._trio_run:
            # Its gates, pacers and limiter are the other run's: a 1 s Retry-After there
            # read as a 36-hour wait here (the clocks start apart), and a call from a
            # second run going at once crashed the first inside Trio.
            raise errors.SessionNotOpenError(
                f"{type(self).__name__} is open in another trio.run: leave its block "
                "there, and enter it in the run that sends the requests"
            )
        return client

    @_session.setter
    def _session(self, client: httpx.AsyncClient | None) -> None:
        if client is None:  # RESTfly-style code resets it: no client
            self._httpx_client = None
            return
        if not isinstance(client, httpx.AsyncClient):
            raise errors.UnexpectedValueError(
                f"self._session must be an httpx.AsyncClient, got a {type(client).__name__}"
            )
        self._httpx_client = client
        if client is not self._injected_session:
            if client not in self._built_clients:
                self._built_clients.append(client)
            # Wherever it was set (_build_session, _authenticate rebuilding it after a
            # login): without them the session's follow_redirects took its X-Api-Key
            # to whatever host a redirect named.
            self._add_hooks(client)
        self._choose_user_agent(client)

    def _choose_user_agent(self, client: httpx.AsyncClient) -> None:
        """The client's own User-Agent is kept (a ``session=`` one is used as it is);
        httpx's default says nothing of the SDK, and the session's is sent in its place.
        Chosen when the client is set, and again once the session is entered: an
        override sets the client's User-Agent after setting the client (RESTfly's
        ``self._session.headers.update(...)``), which was then replaced."""
        agent = client.headers.get("User-Agent")
        httpx_default = agent is None or agent.startswith("python-httpx/")
        self._per_request_headers = {"User-Agent": self._user_agent} if httpx_default else None

    async def _request(self, method: str, path: str, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a request with retries and return the (converted) response.

        Args:
            method: the HTTP method.
            path: a path joined to ``url``/``base_path``, or an absolute ``http(s)://`` URL.
            kwargs: httpx request arguments (params, json, data, content, files, headers,
                cookies, auth, timeout, follow_redirects, extensions) and trestfly options:
                ``box``, ``box_attrs``, ``conv_json``, ``retry_on``, ``use_base``,
                ``redact_fields``, ``redact_value``, ``deadline`` (seconds for the whole
                call, retries and sleeps included).

        Returns:
            An ``httpx.Response``; with ``box``/``conv_json`` and a JSON response, the
            parsed body (Box/BoxList, dict/list, a scalar, or None for an empty body).

        Raises:
            errors.APIError: a non-2xx status (the mapped subclass), after any retries.
            errors.ConnectionError: the server could not be reached, after retries.
            errors.TimeoutError: an httpx timeout after retries, ``deadline`` passed, or
                a wait at the origin's gate or pacer would outlast the caller's deadline
                (or ``max_retry_after``, when that wait is the server's).
            errors.UnexpectedValueError: a bad keyword or option, a path that is not a
                string, or a request argument httpx cannot build a request from
                (``params=5``, ``json=object()``), named in the message.

        .. versionadded:: 0.1.0
        """
        if not isinstance(path, str):
            raise errors.UnexpectedValueError(
                f"path must be a string (e.g. 'users/1'), got a {type(path).__name__}"
            )
        method = checked_method(method)
        # From here on the keywords are checked at run time (an untyped caller's too).
        given: dict[str, Any] = {**kwargs}
        given = drop_none_fields(read_iterators_once(given))
        call = Call(self, method, path, given)
        if given.get("deadline") is None:
            return await call.run()
        options, _ = resolve(self._defaults, given)  # validates the deadline
        if options.deadline is None:
            return await call.run()
        try:
            with trio.fail_after(options.deadline) as deadline:
                return await call.run()
        except trio.TooSlowError as exc:
            if not deadline.cancelled_caught:
                # A hook's own fail_after (a token refresh bounded at a second), not
                # this deadline: told as this call's deadline passing, it was false.
                raise
            self._counters.failures += 1
            # The URL, as every other error shows it (the path alone before).
            shown = options.shown_url(self._url_for(path, options.use_base)[0])
            timeout = errors.TimeoutError(
                f"{method} {shown}: deadline of {options.deadline} s passed"
            )
            timeout.retries, timeout.history = call.retries_done, call.history
            timeout.stop_reason = errors.StopReason.DEADLINE_PASSED
            raise timeout from exc

    def _url_for(self, path: str, use_base: bool) -> tuple[str, str, httpx.URL]:
        """The URL of a path, the origin it goes to, and the URL as httpx takes it
        (parsed once: httpx parsed the string again at every call, about 10 us)."""
        # SDKs call the same few paths over and over: joining them once is enough.  The
        # cache is bounded (cleared when full) so paths holding ids cannot grow it.
        # Keyed by `_url` and `_base_path` too: an SDK may change them once open (the
        # account's regional URL read back at login), and a path already joined kept
        # going to the old host while new paths went to the new one.
        key = (self._url, self._base_path, path, use_base)
        cached = self._url_cache.get(key)
        if cached is None:
            check_base_path(self._base_path)  # as the constructor did: it may have changed
            # Checked before joining: a `_url = 5` set once open failed in the join.
            origin = self._origin_of_url() if not is_absolute(path) else None
            url = build_url(self._url, self._base_path, path, use_base=use_base)
            # Parsed here for a relative path too, whose origin is known: a control
            # character in it ("x\n") raised a bare httpx.InvalidURL from the call.
            parsed = parse_url(url, "path")
            if origin is None:
                if not parsed.host:
                    # httpx raised a bare ValueError for it from its cookie handling.
                    raise errors.UnexpectedValueError(
                        "path is an http:// or https:// URL without a host"
                    )
                # As for the session's url: httpx sent port 0 to port 80, and a host
                # with a space percent-encoded, silently.  Checked once per cached path.
                check_host_and_port(parsed, "path")
                origin = origin_of(parsed)
            cached = (url, origin, parsed)
            if len(self._url_cache) >= 1024:
                self._url_cache.clear()
            self._url_cache[key] = cached
        return cached

    def _origin_of_url(self) -> str | None:
        """The origin of ``_url`` as it is now, checked as the constructor checks it."""
        if self._url != self._default_origin_of:
            check_url(self._url)
            self._default_origin = origin_of(self._url) if self._url else None
            self._default_origin_of = self._url
        return self._default_origin

    def _gate_for(self, origin: str) -> OriginGate:
        gate = self._gates.get(origin)
        if gate is not None and self._forgettable(gate, trio.current_time()):
            # Idle that long, the origin is learned afresh, however many others the
            # session knows: a storm's limits (10/s, 5 at once) held a session of one
            # origin for hours (1,000 calls in 32 s against 0.1 s once the server was
            # healthy again), while one of 300 origins had forgotten them.
            self._forget(origin, gate)
            gate = None
        if gate is None:
            if len(self._gates) >= self._gate_sweep_at:
                self._forget_idle_gates()
            throttle = OriginThrottle(
                self._throttle, self._max_concurrency, trio.current_time(), self._rng
            )
            # Linked only while the session is open: one made by a call still out as the
            # session leaves (a redirect's target) was never detached, and synced on.
            coordination = self._coordination if self._entered else None
            link = coordination.attach(origin, throttle) if coordination else None
            gate = self._gates[origin] = OriginGate(throttle, link)
        return gate

    def _forget_idle_gates(self) -> None:
        """Drop the gates of origins idle for FORGET_IDLE_ORIGIN_AFTER seconds whose
        throttles hold nothing of the future (see OriginThrottle.forgettable).

        Each gate (about 6 KB, and up to 4,096 slow-start entries) stayed for the life
        of the session: a crawl of 20,000 hosts held 123 MiB, never given back.  Swept
        when the count doubles since the last sweep (amortised: a session of a few
        origins never sweeps), and never a gate sharing its state through a
        coordination (leaving that needs the store).  Their counts stay in the totals.
        """
        now = trio.current_time()
        for origin, gate in list(self._gates.items()):
            if self._forgettable(gate, now):
                self._forget(origin, gate)
        self._gate_sweep_at = max(GATE_SWEEP_MIN, 2 * len(self._gates))

    @staticmethod
    def _forgettable(gate: OriginGate, now: float) -> bool:
        return (
            gate.throttle.forgettable(now, FORGET_IDLE_ORIGIN_AFTER)
            and gate.link is None
            and not gate.in_use
        )

    def _forget(self, origin: str, gate: OriginGate) -> None:
        """Drop an origin's gate; its counts stay in the session's totals."""
        del self._gates[origin]
        counters, throttle = self._counters, gate.throttle
        counters.forgotten_throttles += throttle.throttles
        counters.forgotten_gate_trips += throttle.gate_trips
        counters.forgotten_gate_closed_seconds += throttle.gate_closed_time

    async def get(self, path: str, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a GET request; retries, conversion and errors as :meth:`_request`.

        Args:
            path: joined to ``url``/``base_path``, or an absolute ``http(s)://`` URL.
            kwargs: httpx request arguments and trestfly options (see :meth:`_request`).

        Returns:
            The ``httpx.Response``, or its converted JSON body with ``box``/``conv_json``.

        .. versionadded:: 0.1.0
        """
        return await self._request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a POST request; arguments and result as :meth:`get`.

        .. versionadded:: 0.1.0
        """
        return await self._request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a PUT request; arguments and result as :meth:`get`.

        .. versionadded:: 0.1.0
        """
        return await self._request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a PATCH request; arguments and result as :meth:`get`.

        .. versionadded:: 0.1.0
        """
        return await self._request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a DELETE request; arguments and result as :meth:`get`.

        .. versionadded:: 0.1.0
        """
        return await self._request("DELETE", path, **kwargs)

    async def head(self, path: str, **kwargs: Unpack[RequestOptions]) -> httpx.Response:
        """Send a HEAD request; arguments as :meth:`get`.  Always the ``httpx.Response``
        (there is no body to convert), whatever ``box`` or ``conv_json`` say.

        .. versionadded:: 0.1.0
        """
        response: httpx.Response = await self._request("HEAD", path, **kwargs)
        return response

    # ------------------------------------------------------------- fan-out, stats

    async def map(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T],
        *,
        limit: int | None = None,
    ) -> list[R]:
        """Run ``await fn(item)`` for every item, ``limit`` at once, results in item order.

        ``limit`` defaults to ``max_concurrency``.  The first failure cancels the other
        calls and is raised as itself (not in an ExceptionGroup).  Items are pulled
        lazily, but the result list holds one entry per item: for very large fan-outs use
        :meth:`map_as_completed`.

        Args:
            fn: the async function to call once per item.
            items: any iterable (pulled lazily, one item per free worker).
            limit: most calls running at once.

        Returns:
            The results, in the order of ``items``.

        Raises:
            errors.UnexpectedValueError: ``limit`` is not an integer >= 1.
            Exception: the first exception a call raised.

        .. versionadded:: 0.1.0
        """
        return await map_ordered(fn, items, limit=self._max_concurrency if limit is None else limit)

    def map_as_completed(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T],
        *,
        limit: int | None = None,
        buffer: int | None = None,
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[tuple[T, R]]]:
        """Stream ``(item, result)`` pairs as calls complete, with backpressure::

            async with api.map_as_completed(fetch, ids, limit=20) as results:
                async for item, result in results:
                    ...

        At most ``limit`` calls run at once (default ``max_concurrency``) and at most
        ``buffer`` results (default ``limit``) wait in the channel, plus one per call
        that finished and waits for room, so memory stays bounded for any number of
        items.  Leaving the block cancels the calls still
        running; the first failure cancels the rest and is raised as itself.

        Args:
            fn: the async function to call once per item.
            items: any iterable, pulled lazily.
            limit: most calls running at once.
            buffer: most finished results waiting in the channel for the consumer.

        Returns:
            An async context manager yielding a ``trio.MemoryReceiveChannel`` of
            ``(item, result)`` pairs.

        .. versionadded:: 0.1.0
        """
        size = self._max_concurrency if limit is None else limit
        return CompletedMap(fn, items, limit=size, buffer=size if buffer is None else buffer)

    @property
    def stats(self) -> SessionStats:
        """A snapshot of the session's counters and of each origin's throttling state.

        Read outside ``trio.run`` (after it returned), the gates and the retry budget are
        as they were when the session last sent a request or was left.

        .. versionadded:: 0.1.0
        """
        counters = self._counters
        now = self._stats_time()
        origins = {
            origin: OriginStats(
                gate_trips=gate.throttle.gate_trips,
                gate_closed_seconds=gate.throttle.gate_closed_time,
                gate_open=gate.throttle.gate_until <= now,
                throttle_episodes=gate.throttle.episodes,
                concurrency_limit=gate.throttle.concurrency_limit,
                learned_rate=gate.throttle.learned_rate,
                in_flight=gate.throttle.in_flight,
            )
            for origin, gate in self._gates.items()
        }
        return SessionStats(
            attempts=counters.attempts,
            successes=counters.successes,
            failures=counters.failures,
            retries=counters.retries,
            throttled=counters.forgotten_throttles
            + sum(gate.throttle.throttles for gate in self._gates.values()),
            by_status=counters.frozen_status(),
            transport_errors=counters.transport_errors,
            sleeps=counters.sleeps,
            sleep_seconds=counters.sleep_seconds,
            gate_trips=counters.forgotten_gate_trips + sum(o.gate_trips for o in origins.values()),
            gate_closed_seconds=counters.forgotten_gate_closed_seconds
            + sum(o.gate_closed_seconds for o in origins.values()),
            budget_level=self._budget.level(now),
            budget_denied=self._budget.denied,
            concurrency_limit=min(
                (o.concurrency_limit for o in origins.values()), default=self._max_concurrency
            ),
            in_flight=self._limiter.borrowed_tokens,
            origins=origins,  # a copy, like by_status (see Counters.frozen_status)
            coordination=self._coordination.stats if self._coordination else None,
        )


def _check_h2_installed(http2: bool, session: object, transport: object) -> None:
    """Refuse ``http2=True`` for a client trestfly builds when h2 is missing: httpx
    raised a bare ImportError on entering, far from the setting."""
    if http2 and session is None and transport is None and importlib.util.find_spec("h2") is None:
        raise errors.UnexpectedValueError(
            "http2=True needs the h2 package: pip install 'httpx[http2]'"
        )
