"""The throttling ("storm") server: a local API that answers with 429s, 503s and resets.

It imitates how real APIs throttle (see the scenarios in :mod:`benchmarks._scenarios`),
counts what every client did, and judges whether clients obeyed what it announced.
Like :mod:`benchmarks.server` it is a bare ASGI app served by uvicorn with httptools in
a subprocess (pinned to its own core where possible), always on 127.0.0.1, started and
stopped by that module's :func:`~benchmarks.server.serve_app` (child) and
:func:`~benchmarks.server.run_app_server` (parent).

Parent side::

    with run_storm_server(cpu=0) as server:           # server.url: "http://127.0.0.1:N"
        async with httpx.AsyncClient(trust_env=False) as control:  # loopback: no proxy
            await install_scenario(control, server.url, FixedWindow(limit=100, window=1))
            ...  # the client under test sends GET f"{server.url}/item" (any path)
            stats = await fetch_stats(control, server.url)

Child side: ``python -m benchmarks.storm_server --port 0 [--cpu N]``.

Routes
------
* Any path not starting with ``/__`` (``GET /item``): through the active scenario.  At
  start the scenario is ``unlimited`` (every request 200), which the startup probe uses.
* ``POST /__scenario`` with ``{"name": "fixed_window", "params": {"limit": 100}}``:
  installs a fresh scenario (missing params take their defaults) whose t=0 is this
  moment, and resets the counters.  Answers 200 ``{"scenario": INFO}``, or 400
  ``{"error": "..."}`` for an unknown name or a bad parameter.
* ``GET /__scenario``: 200 ``{"scenario": INFO}``.
* ``GET /__stats``: the counters of the current run::

    {"scenario": INFO,
     "elapsed": 12.3,                       # seconds since the install
     "totals": COUNTERS,
     "clients": {"<X-Client>": COUNTERS},   # at most MAX_CLIENTS of them
     "untracked_clients": 0,                # requests from clients beyond that
     "last_throttle_id": 57,
     "violation_tolerance": 0.001,
     "timeline": {"bucket_seconds": 0.1, "successes": [..], "rejected": [..],
                  "resets": [..], "dropped": 0}}

  where ``INFO = {"name": ..., "params": {...}, "limit_rps": float | null}`` and
  ``COUNTERS = {"arrivals", "successes", "throttled_429", "unavailable_503", "resets",
  "violations", "unjudged"}`` (integers).  ``limit_rps`` is the scenario's ceiling on
  successes per second (``limit/window``, ``rate``, ``max_in_flight/latency``), null for
  ``outage``, ``flaky`` and ``unlimited``.  ``rejected`` counts 429s and 503s.

Violations
----------
Every response that announces when to come back (429/503 with ``Retry-After``, and the
429s of ``headers_only``, whose reset counts as the announcement) carries
``X-Throttle-Id: <n>``.  A client that sends ``X-Seen-Throttle: <highest id received>``
(and ``X-Client: <id>`` for a per-client breakdown) is judged: arriving before the
instant announced with that id, or before a later one announced to the same
``X-Client`` with an earlier id, is a violation.  :class:`ThrottleMarker` adds these
headers to any ``httpx.AsyncClient``.  Requests without ``X-Seen-Throttle`` are never
judged.

Resets
------
For a ``flaky`` reset the server sends nothing: it sets ``SO_LINGER`` to zero on the
connection's socket and aborts it, so the kernel answers with a TCP RST and the client
sees ``httpx.ReadError`` ("Connection reset by peer").  ASGI has no way to reach the
socket, so this uses uvicorn's connection object (the owner of ``receive``).  If that is
ever unavailable, the fallback is a truncated response: status line and
``Content-Length: 1024`` with no body, then the connection is closed; the client sees
``httpx.RemoteProtocolError`` ("peer closed connection without sending complete message
body").  Both are ``httpx.TransportError``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._scenarios import (
    SCENARIOS,
    ConcurrencyCap,
    FixedWindow,
    Flaky,
    HeadersOnly,
    Outage,
    Outcome,
    Scenario,
    StormState,
    TokenBucket,
    Unlimited,
    scenario_from_spec,
)
from .server import (
    STARTUP_TIMEOUT,
    ASGIApp,
    Receive,
    RunningServer,
    Scope,
    Send,
    run_app_server,
    serve_app,
    server_argument_parser,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "SCENARIOS",
    "ConcurrencyCap",
    "FixedWindow",
    "Flaky",
    "HeadersOnly",
    "Outage",
    "Scenario",
    "ThrottleMarker",
    "TokenBucket",
    "Unlimited",
    "build_storm_app",
    "fetch_stats",
    "install_scenario",
    "run_storm_server",
]

#: Control bodies are a few hundred bytes; anything near this is a mistake.
_MAX_CONTROL_BODY = 64 * 1024
_MAX_BODY_MESSAGES = 1024
#: Seconds a client may take to send a control body.
_CONTROL_BODY_TIMEOUT = 5.0
#: Longer ``X-Client`` values are cut: they become keys of the stats.
_MAX_CLIENT_ID = 128
#: Loop passes to let uvicorn notice an aborted connection (one is enough in practice).
_SETTLE_PASSES = 3
#: What the truncated-response fallback promises and never sends.
_TRUNCATED_LENGTH = 1024
_TRUNCATION_NOTICE = "ASGI callable returned without completing response."

# ------------------------------------------------------------------ the ASGI app


def _marks(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, int | None]:
    """``X-Client`` and ``X-Seen-Throttle`` (-1 when not an integer); None when absent."""
    client: str | None = None
    seen: int | None = None
    for name, value in headers:  # ASGI servers give lower-case names
        if name == b"x-client":
            client = value[:_MAX_CLIENT_ID].decode("latin-1")
        elif name == b"x-seen-throttle":
            try:
                seen = int(value)
            except ValueError:
                seen = -1
    return client, seen


async def _send_json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The request body; None when the client left, stalled or sent too much."""
    import asyncio

    body = bytearray()
    try:
        async with asyncio.timeout(_CONTROL_BODY_TIMEOUT):
            for _ in range(_MAX_BODY_MESSAGES):
                message = await receive()
                if message["type"] != "http.request":
                    return None
                body += message.get("body", b"")
                if len(body) > _MAX_CONTROL_BODY:
                    return None
                if not message.get("more_body", False):
                    return bytes(body)
    except TimeoutError:
        return None
    return None


async def _control(
    state: StormState, scope: Scope, receive: Receive, send: Send, clock: Callable[[], float]
) -> None:
    path: str = scope["path"]
    method: str = scope["method"]
    status: int
    payload: dict[str, Any]
    if path == "/__stats" and method == "GET":
        status, payload = 200, state.stats(clock())
    elif path == "/__scenario" and method == "GET":
        status, payload = 200, {"scenario": state.scenario_info()}
    elif path == "/__scenario" and method == "POST":
        body = await _read_body(receive)
        if body is None:
            status, payload = (
                413,
                {
                    "error": f"body incomplete after {_CONTROL_BODY_TIMEOUT:g} s "
                    f"or over {_MAX_CONTROL_BODY} bytes"
                },
            )
        else:
            try:
                scenario = scenario_from_spec(json.loads(body))
            except (ValueError, TypeError) as exc:  # JSON, UTF-8 and parameter errors
                status, payload = 400, {"error": str(exc)}
            else:
                # The clock is read after parsing: t=0 is when the scenario takes effect.
                state.install(scenario, clock())
                status, payload = 200, {"scenario": state.scenario_info()}
    elif path in ("/__stats", "/__scenario"):
        status, payload = 405, {"error": f"{method} not allowed on {path}"}
    else:
        status, payload = 404, {"error": f"no control route {path}"}
    await _send_json(send, status, payload)


async def _reset_connection(receive: Receive, send: Send) -> None:
    """Drop the connection so that the client sees a transport error (module docstring)."""
    import asyncio

    # uvicorn's `receive` is a bound method of its request cycle, which holds the
    # connection's transport.  Not part of ASGI: hence the fallback below.
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if isinstance(transport, asyncio.Transport):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger on, timeout 0: close() sends RST instead of FIN, a real reset.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # abort() schedules uvicorn's connection_lost(), which marks the cycle
        # disconnected; returning before it runs would make uvicorn log an error and
        # try to send a 500 on the dead connection.
        for _ in range(_SETTLE_PASSES):
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % _TRUNCATED_LENGTH)],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    # Returning with the response incomplete makes the server close the connection.


def build_storm_app(
    scenario: Scenario | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> ASGIApp:
    """The storm server's ASGI app, starting with ``scenario`` (default: unlimited)."""
    import asyncio  # the parent never needs asyncio for this module

    state = StormState(Unlimited() if scenario is None else scenario, clock())
    sleep = asyncio.sleep

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan="off"; nothing else is expected.
        if scope["path"].startswith("/__"):
            await _control(state, scope, receive, send, clock)
            return
        client, seen = _marks(scope["headers"])
        # Decided and counted at arrival, before any latency: the arrival instant is
        # what windows, buckets and violations are about.
        reply = state.arrive(clock(), wall_clock(), client, seen)
        decision = reply.decision
        try:
            if decision.wait > 0:
                await sleep(reply.scenario.spread(decision.wait))
            if decision.outcome is Outcome.RESET:
                await _reset_connection(receive, send)
                return
            headers = decision.headers
            if reply.throttle_id is not None:
                headers = (*headers, (b"x-throttle-id", b"%d" % reply.throttle_id))
            await send(
                {"type": "http.response.start", "status": decision.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": decision.body})
        finally:
            # Also on cancellation (server shutdown): the slot must not leak.
            if decision.holds_slot:
                reply.scenario.release()

    return app


# ------------------------------------------------------------------ child process


class _DropTruncationNotice(logging.Filter):
    """The truncated-response fallback is deliberate: uvicorn need not log it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _TRUNCATION_NOTICE


def serve_storm(*, port: int = 0, cpu: int | None = None) -> None:
    """Child entry point: :func:`benchmarks.server.serve_app` of the storm app."""
    serve_app(build_storm_app(), port=port, cpu=cpu, error_log_filters=[_DropTruncationNotice()])


def main(argv: list[str] | None = None) -> None:
    parser = server_argument_parser(
        "python -m benchmarks.storm_server",
        "Serve the throttling app on 127.0.0.1 (started by run_storm_server).",
    )
    args = parser.parse_args(argv)
    serve_storm(port=args.port, cpu=args.cpu)


# ------------------------------------------------------------------ parent side


@contextmanager
def run_storm_server(
    *, cpu: int | None = None, startup_timeout: float = STARTUP_TIMEOUT
) -> Iterator[RunningServer]:
    """Start the storm server (scenario ``unlimited``), wait until it answers, yield it,
    and always stop it.

    Raises:
        RuntimeError: the server exited, or did not answer within ``startup_timeout``.
    """
    # The probe's GET /json goes through the initial unlimited scenario: a 200.
    with run_app_server(
        "benchmarks.storm_server", cpu=cpu, startup_timeout=startup_timeout, probe_path="/json"
    ) as server:
        yield server


# ------------------------------------------------------------------ harness helpers


async def install_scenario(
    client: httpx.AsyncClient, url: str, scenario: Scenario
) -> dict[str, Any]:
    """Install ``scenario`` on the server at ``url`` (its t=0 is now); returns its INFO.

    Use a control client without a :class:`ThrottleMarker` or retry logic.
    """
    response = await client.post(f"{url}/__scenario", json=scenario.spec())
    response.raise_for_status()
    info: dict[str, Any] = response.json()["scenario"]
    return info


async def fetch_stats(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """``GET /__stats`` of the server at ``url``."""
    response = await client.get(f"{url}/__stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


EventHook = Callable[[Any], Awaitable[None]]


class ThrottleMarker:
    """httpx event hooks that let the storm server judge a client's obedience.

    Every request gets ``X-Client: <client_id>`` and ``X-Seen-Throttle: <highest
    X-Throttle-Id received so far>`` (0 before any).  ::

        marker = ThrottleMarker("trestfly")
        marker.install(client)                  # keeps the client's own hooks
        # or: httpx.AsyncClient(event_hooks=marker.hooks())

    The response hook runs when the headers arrive, first among the response hooks, so
    an id is recorded even if a later hook raises (``raise_for_status``).  Per request
    the cost is one ``headers.update`` and one header lookup; Trio runs hooks one at a
    time, so no lock is needed.
    """

    __slots__ = ("_marks", "client_id", "seen")

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.seen = 0
        self._marks = {"x-client": client_id, "x-seen-throttle": "0"}

    async def on_request(self, request: httpx.Request) -> None:
        request.headers.update(self._marks)

    async def on_response(self, response: httpx.Response) -> None:
        value = response.headers.get("x-throttle-id")
        if value is None:
            return
        try:
            throttle_id = int(value)
        except ValueError:
            return
        if throttle_id > self.seen:
            self.seen = throttle_id
            self._marks = {"x-client": self.client_id, "x-seen-throttle": str(throttle_id)}

    def hooks(self) -> dict[str, list[EventHook]]:
        """Event hooks for ``httpx.AsyncClient(event_hooks=...)``."""
        return {"request": [self.on_request], "response": [self.on_response]}

    def install(self, client: httpx.AsyncClient) -> None:
        """Add the hooks to ``client``, keeping the hooks it already has."""
        current = client.event_hooks
        client.event_hooks = {
            "request": [*current.get("request", []), self.on_request],
            "response": [self.on_response, *current.get("response", [])],
        }


if __name__ == "__main__":
    main()
