"""The project's own HTTP/1.1 test server, written on Trio and h11.

It runs inside the test's own ``trio.run`` (no threads, no subprocess), so a test can
script failures precisely -- a reset on the third request, a stall longer than the
client's read timeout -- and then inspect exactly what the client sent and how it used
connections.  Typical use (the ``trio_server`` fixture in ``tests/conftest.py`` does
this)::

    async with open_trio_server() as server:
        server.app.responses("/items", [503, 503, 200])
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            ...
        assert [r.path for r in server.requests] == ["/items"] * 3

Every loop here is bounded in iterations and in time: a misbehaving client or a hung
test ends with an error instead of a silent hang.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from http import HTTPStatus

import h11
import trio

from .script import (
    Action,
    Disconnect,
    RecordedRequest,
    Reset,
    Respond,
    ScriptedApp,
    Stall,
    respond,
)

__all__ = ["TrioTestServer", "open_trio_server", "serve"]

HOST = "127.0.0.1"
RECEIVE_SIZE = 65536
# Safety limits, far above anything a test needs; hitting one is a bug to surface.
MAX_CONNECTIONS = 10_000
MAX_REQUESTS_PER_CONNECTION = 10_000
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_EVENTS_PER_REQUEST = 2 * MAX_BODY_BYTES // RECEIVE_SIZE + 16
MAX_STALL_NESTING = 100
MAX_WAIT_WAKEUPS = 100_000


class TrioTestServer:
    """A running server: where it listens, what it answers and what it has seen.

    Created by :func:`serve` / :func:`open_trio_server`; tests only read it and
    script ``app``.
    """

    def __init__(
        self,
        app: ScriptedApp,
        listener: trio.SocketListener,
        *,
        keep_alive_timeout: float,
        max_lifetime: float,
    ) -> None:
        self.app = app
        self.keep_alive_timeout = keep_alive_timeout
        self.max_lifetime = max_lifetime
        self.port: int = listener.socket.getsockname()[1]
        self.base_url = f"http://{HOST}:{self.port}"
        self.requests: list[RecordedRequest] = []
        """Every complete request, in arrival order, including ones later reset."""
        self.open_connections = 0
        """Connections accepted and not yet closed (by either side)."""
        self.connections_accepted = 0
        """Connections accepted so far; also the id of the newest connection."""
        self.handler_errors: list[BaseException] = []
        """Exceptions raised by scripted handlers (answered with 500); the fixture
        fails the test at teardown if this is not empty."""
        self._listener = listener
        self._changed = trio.Event()

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` (which starts with ``/``)."""
        return self.base_url + path

    # ASYNC109 prefers callers wrapping waits in trio.fail_after; here the built-in
    # deadline is the point: a test helper must fail fast, never hang a test.
    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``condition()`` is true, re-checking whenever a connection opens
        or closes or a request arrives.

        Needed because the server notices a client closing a connection only after it
        runs again, e.g. ``await server.wait_until(lambda: server.open_connections == 0)``.
        Raises ``trio.TooSlowError`` after ``timeout`` seconds.
        """
        with trio.fail_after(timeout):
            for _ in range(MAX_WAIT_WAKEUPS):
                if condition():
                    return
                await self._changed.wait()
        raise RuntimeError("wait_until: too many wakeups without the condition holding")

    def _notify(self) -> None:
        # Wake every wait_until(); a fresh Event is armed for the next change.
        self._changed.set()
        self._changed = trio.Event()

    # --- accepting -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            with trio.fail_after(self.max_lifetime):
                # Owning this nursery means cancelling the server closes every
                # connection: each handler task exits through `async with stream`.
                async with trio.open_nursery() as nursery:
                    for connection_id in range(1, MAX_CONNECTIONS + 1):
                        stream = await self._listener.accept()
                        # Counted here, before the task starts, so a test that sees
                        # its request answered also sees the connection counted.
                        self.connections_accepted = connection_id
                        self.open_connections += 1
                        self._notify()
                        nursery.start_soon(self._serve_connection, stream, connection_id)
                    raise RuntimeError(f"trio test server accepted {MAX_CONNECTIONS} connections")
        except trio.TooSlowError:
            raise RuntimeError(
                f"trio test server still running after max_lifetime={self.max_lifetime}s;"
                " is a test hung?"
            ) from None

    # --- one connection --------------------------------------------------------------

    async def _serve_connection(self, stream: trio.SocketStream, connection_id: int) -> None:
        try:
            async with stream:
                await self._converse(stream, connection_id)
        finally:
            self.open_connections -= 1
            self._notify()

    async def _converse(self, stream: trio.SocketStream, connection_id: int) -> None:
        """Answer requests on one connection until either side closes it."""
        conn = h11.Connection(h11.SERVER)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                request: RecordedRequest | None = None
                # An idle keep-alive connection is closed after the timeout, like real
                # servers do; tests may shorten it to exercise reuse of stale connections.
                with trio.move_on_after(self.keep_alive_timeout):
                    request = await self._read_request(stream, conn, connection_id)
                if request is None:  # the client closed, or stayed idle too long
                    return
                self.requests.append(request)
                self._notify()
                action = await self._action_for(request)
                if not await self._perform(stream, conn, request, action):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # e.g. "Connection: close" from either side
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away; nothing left to answer
        except h11.RemoteProtocolError as exc:
            await self._send_bad_request(stream, conn, exc)

    async def _read_request(
        self, stream: trio.SocketStream, conn: h11.Connection, connection_id: int
    ) -> RecordedRequest | None:
        head: h11.Request | None = None
        arrived_at = 0.0
        body = bytearray()
        for _ in range(MAX_EVENTS_PER_REQUEST):
            event = conn.next_event()
            if event is h11.NEED_DATA:
                # b"" at EOF is what h11 expects to learn that the peer closed.
                conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
            elif isinstance(event, h11.Request):
                head = event
                arrived_at = trio.current_time()
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY_BYTES:
                    raise h11.RemoteProtocolError("request body too large", 413)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None  # h11 guarantees Request comes first
                return _record(head, bytes(body), arrived_at, connection_id)
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:
                # PAUSED cannot happen before the response; anything else is a bug.
                raise RuntimeError(f"unexpected h11 event {event!r}")
        raise h11.RemoteProtocolError("request split into too many pieces", 400)

    async def _action_for(self, request: RecordedRequest) -> Action:
        try:
            return await self.app.action_for(request)
        except Exception as exc:
            # A broken handler is a bug in the test, not in the client under test:
            # answer 500 so the client does not hang, and keep the error so the
            # fixture can fail the test with the real traceback.
            self.handler_errors.append(exc)
            return respond(500, body=traceback.format_exc(), close=True)

    async def _perform(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        request: RecordedRequest,
        action: Action,
    ) -> bool:
        """Carry out ``action``; return whether the connection stays open."""
        for _ in range(MAX_STALL_NESTING):
            match action:
                case Stall(seconds=seconds, then=then):
                    await trio.sleep(seconds)
                    action = then
                case Respond():
                    await _send_response(stream, conn, request, action)
                    return not action.close
                case Reset():
                    # SO_LINGER with a zero timeout makes close() send RST instead of
                    # FIN, so the client's read fails with "connection reset by peer".
                    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    await stream.aclose()
                    return False
                case Disconnect():
                    await stream.aclose()
                    return False
        raise RuntimeError(f"stalls nested deeper than {MAX_STALL_NESTING}")

    async def _send_bad_request(
        self, stream: trio.SocketStream, conn: h11.Connection, exc: h11.RemoteProtocolError
    ) -> None:
        # Only possible while no response has started; otherwise just drop the line.
        if conn.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
            return
        status = exc.error_status_hint
        body = f"{status} {exc}\n".encode()
        response = h11.Response(
            status_code=status,
            reason=_reason(status),
            headers=[
                ("content-type", "text/plain"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ],
        )
        data = _encode(conn, response) + _encode(conn, h11.Data(data=body))
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(data + _encode(conn, h11.EndOfMessage()))


def _record(
    head: h11.Request, body: bytes, arrived_at: float, connection_id: int
) -> RecordedRequest:
    target = head.target.decode("ascii")
    path, _, query = target.partition("?")
    return RecordedRequest(
        method=head.method.decode("ascii"),
        target=target,
        path=path,
        query=query,
        http_version=head.http_version.decode("ascii"),
        headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers),
        body=body,
        arrived_at=arrived_at,
        connection_id=connection_id,
    )


async def _send_response(
    stream: trio.SocketStream, conn: h11.Connection, request: RecordedRequest, action: Respond
) -> None:
    headers = list(action.headers)
    if action.status not in {204, 304}:
        # Always Content-Length, never chunked: simplest framing for clients to test.
        headers.append(("content-length", str(len(action.body))))
    if action.close:
        # Announcing the close lets the client drop the connection from its pool
        # instead of discovering the closed socket on its next request.
        headers.append(("connection", "close"))
    response = h11.Response(
        status_code=action.status, headers=headers, reason=_reason(action.status)
    )
    data = _encode(conn, response)
    # A HEAD response advertises the length but carries no body (h11 enforces this).
    if action.body and request.method != "HEAD":
        data += _encode(conn, h11.Data(data=action.body))
    data += _encode(conn, h11.EndOfMessage())
    await stream.send_all(data)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # unregistered codes such as 599 are legal, just unnamed
        return ""


def _encode(conn: h11.Connection, event: h11.Response | h11.Data | h11.EndOfMessage) -> bytes:
    data = conn.send(event)
    assert data is not None  # h11 returns None only for ConnectionClosed
    return data


async def serve(
    app: ScriptedApp | None = None,
    *,
    keep_alive_timeout: float = 30.0,
    max_lifetime: float = 120.0,
    task_status: trio.TaskStatus[TrioTestServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a server on 127.0.0.1 (free port) until cancelled.

    Use with ``server = await nursery.start(serve, app)``: the started value is the
    :class:`TrioTestServer`, already listening.  ``max_lifetime`` bounds how long it
    may run, so a hung test fails instead of blocking forever.
    """
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    assert len(listeners) == 1, listeners  # one address, so one listener
    async with listeners[0] as listener:
        server = TrioTestServer(
            ScriptedApp() if app is None else app,
            listener,
            keep_alive_timeout=keep_alive_timeout,
            max_lifetime=max_lifetime,
        )
        task_status.started(server)
        await server._run()


@asynccontextmanager
async def open_trio_server(
    app: ScriptedApp | None = None,
    *,
    keep_alive_timeout: float = 30.0,
    max_lifetime: float = 120.0,
) -> AsyncIterator[TrioTestServer]:
    """Async context manager around :func:`serve`; leaving it closes every connection."""
    async with trio.open_nursery() as nursery:
        server: TrioTestServer = await nursery.start(
            partial(serve, app, keep_alive_timeout=keep_alive_timeout, max_lifetime=max_lifetime)
        )
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
