"""What the Trio test server answers: recorded requests, actions and the scripted app.

A test describes the server's behaviour as *actions* (respond, reset, disconnect, stall)
arranged in per-path *scripts*.  Each request to a path consumes the next step of its
script and the last step repeats, so ``[503, 503, 200]`` means "fail twice, then succeed
forever".  A step may also be a *handler*: a callable that receives the
:class:`RecordedRequest` and returns an action, which is how stateful behaviour such as
pagination is written without touching the server.

Nothing in this module does I/O; the server in :mod:`trio_server` carries actions out.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias
from urllib.parse import parse_qs

__all__ = [
    "Action",
    "Disconnect",
    "Handler",
    "RecordedRequest",
    "Reset",
    "Respond",
    "ScriptedApp",
    "Stall",
    "Step",
    "close_after_response",
    "disconnect",
    "json_status",
    "reset",
    "respond",
    "stall",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One complete request as the server received it.

    ``path`` and ``query`` are the raw (still percent-encoded) parts of the request
    target, so a test sees exactly what the client put on the wire.  Header names are
    lower-case (h11 normalises them) and keep their order and repetitions.
    """

    method: str
    target: str
    path: str
    query: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    arrived_at: float
    """``trio.current_time()`` when the request head was parsed."""
    connection_id: int
    """Which TCP connection carried it; equal ids mean the client reused a connection."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    @property
    def params(self) -> dict[str, list[str]]:
        """The decoded query string; every name maps to all of its values."""
        return parse_qs(self.query, keep_blank_values=True)

    def json(self) -> Any:
        """The body decoded as JSON (raises ``ValueError`` if it is not JSON)."""
        return jsonlib.loads(self.body)


# --- Actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Respond:
    """Send a complete response; with ``close`` the server then closes the connection."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    close: bool = False


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST after reading the request, sending nothing."""


@dataclass(frozen=True)
class Disconnect:
    """Close the connection politely (FIN) after reading the request, sending nothing."""


@dataclass(frozen=True)
class Stall:
    """Sleep ``seconds`` before carrying out ``then`` (to provoke client read timeouts)."""

    seconds: float
    then: Action


Action: TypeAlias = Respond | Reset | Disconnect | Stall
Handler: TypeAlias = Callable[[RecordedRequest], Action | Awaitable[Action]]
"""Decides the action from the request; may be a plain or an ``async`` function."""
Step: TypeAlias = Action | Handler

ACTION_TYPES = (Respond, Reset, Disconnect, Stall)

# h11 frames every response itself from Content-Length; letting a script set these
# would produce responses h11 refuses to send, failing inside the server, not the test.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Statuses whose responses never carry a body (RFC 9110), so h11 forbids one.
_BODILESS_STATUSES = frozenset({204, 304})


class _NoJson:
    """Type of the sentinel meaning "no JSON body", because ``None`` is valid JSON."""


_NO_JSON = _NoJson()


def respond(
    status: int = 200,
    *,
    json: Any = _NO_JSON,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    retry_after: float | str | None = None,
    close: bool = False,
) -> Respond:
    """Build a :class:`Respond` action.

    ``json`` is serialised and sets ``Content-Type: application/json`` unless
    ``headers`` already names a content type; ``body`` is sent as-is (``str`` is
    UTF-8 encoded).  ``retry_after`` adds a ``Retry-After`` header: numbers are
    seconds, strings are sent verbatim (e.g. an HTTP date).  ``headers`` may be a
    sequence of pairs to send a header more than once.
    """
    if not 200 <= status <= 999:
        raise ValueError(f"status must be in 200..999 (h11 sends no 1xx here), got {status}")
    if body is not None and not isinstance(json, _NoJson):
        raise ValueError("pass either json= or body=, not both")

    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    names = {name.lower() for name, _ in pairs}
    if framing := names & _FRAMING_HEADERS:
        raise ValueError(f"the server sets {sorted(framing)} itself")

    payload = b""
    if not isinstance(json, _NoJson):
        payload = jsonlib.dumps(json).encode()
        if "content-type" not in names:
            pairs.append(("content-type", "application/json"))
    elif isinstance(body, str):
        payload = body.encode()
    elif body is not None:
        payload = body
    if payload and status in _BODILESS_STATUSES:
        raise ValueError(f"a {status} response cannot have a body")

    if retry_after is not None:
        pairs.append(("retry-after", _format_retry_after(retry_after)))
    return Respond(status=status, headers=tuple(pairs), body=payload, close=close)


def _format_retry_after(value: float | str) -> str:
    # Whole numbers are written without ".0" because RFC 9110 delay-seconds is an
    # integer; fractional values are still allowed so tests can keep sleeps tiny.
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def json_status(status: int, *, retry_after: float | str | None = None) -> Respond:
    """A canned JSON response: ``{"ok": true}`` for 2xx, else ``{"ok": false, "status": N}``.

    ``retry_after`` is only applied to error statuses (>= 400), where clients honour it.
    """
    if status in _BODILESS_STATUSES:
        return respond(status)
    if 200 <= status < 300:
        return respond(status, json={"ok": True})
    return respond(
        status,
        json={"ok": False, "status": status},
        retry_after=retry_after if status >= 400 else None,
    )


def reset() -> Reset:
    """Abort the connection (TCP RST): httpx raises ``ReadError``."""
    return Reset()


def disconnect() -> Disconnect:
    """Close the connection without answering: httpx raises ``RemoteProtocolError``."""
    return Disconnect()


def stall(seconds: float, then: Action | None = None) -> Stall:
    """Wait ``seconds``, then do ``then`` (default: ``200 {"ok": true}``)."""
    if seconds < 0:
        raise ValueError("stall seconds must be >= 0")
    return Stall(seconds=seconds, then=json_status(200) if then is None else then)


def close_after_response(response: Respond | None = None) -> Respond:
    """``response`` (default ``200 {"ok": true}``) followed by closing the connection."""
    return replace(json_status(200) if response is None else response, close=True)


# --- Scripts -------------------------------------------------------------------------


@dataclass
class _Script:
    """Steps for one route, consumed one per request; the last one repeats."""

    steps: tuple[Step, ...]
    position: int = 0

    def next_step(self) -> Step:
        step = self.steps[min(self.position, len(self.steps) - 1)]
        self.position += 1
        return step


def _as_script(steps: Step | Sequence[Step]) -> _Script:
    # A lone action or handler is a one-step script: it repeats for every request.
    items: tuple[Step, ...] = tuple(steps) if isinstance(steps, Sequence) else (steps,)
    if not items:
        raise ValueError("a script needs at least one step")
    for item in items:
        if not (isinstance(item, ACTION_TYPES) or callable(item)):
            raise TypeError(f"not an action or handler: {item!r}")
    return _Script(items)


class ScriptedApp:
    """Maps each request to an action by following per-route scripts.

    A route is a path (without query) and optionally a method; a method-specific
    script wins over a path-wide one, and requests matching no route follow the
    default script, which answers ``404`` so an unscripted call is easy to spot.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str | None, str], _Script] = {}
        self._default = _as_script(respond(404, json={"error": "not scripted"}))

    def script(self, path: str, steps: Step | Sequence[Step], *, method: str | None = None) -> None:
        """Set (or replace, restarting it) the script for ``path``.

        ``steps`` is an action, a handler, or a sequence mixing both.
        """
        if not path.startswith("/") or "?" in path:
            raise ValueError(f"script paths look like '/items', without a query: {path!r}")
        self._routes[(method.upper() if method else None, path)] = _as_script(steps)

    def responses(
        self,
        path: str,
        statuses: Sequence[int | Action],
        *,
        retry_after: float | str | None = None,
        method: str | None = None,
    ) -> None:
        """Script ``path`` from status codes, e.g. ``[503, 503, 200]``.

        Each int becomes :func:`json_status` (so 2xx bodies are ``{"ok": true}`` and
        error statuses get ``retry_after``); actions such as ``reset()`` may be mixed in.
        """
        steps = [
            json_status(item, retry_after=retry_after) if isinstance(item, int) else item
            for item in statuses
        ]
        self.script(path, steps, method=method)

    def set_default(self, steps: Step | Sequence[Step]) -> None:
        """Replace the script used for requests that match no route."""
        self._default = _as_script(steps)

    async def action_for(self, request: RecordedRequest) -> Action:
        """Consume the next step for ``request`` and resolve it to an action."""
        script = (
            self._routes.get((request.method, request.path))
            or self._routes.get((None, request.path))
            or self._default
        )
        step = script.next_step()
        if isinstance(step, ACTION_TYPES):
            return step
        result = step(request)
        if not isinstance(result, ACTION_TYPES):
            result = await result
        if not isinstance(result, ACTION_TYPES):
            raise TypeError(f"handler {step!r} returned {result!r}, not an action")
        return result
