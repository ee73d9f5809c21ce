"""A minimal HTTP/1.1 client on raw Trio streams and h11: the pure-Python ceiling.

The throughput section compares trestfly and httpx with this client to show how much of
their cost is the client stack and how much is HTTP itself: it does no more than HTTP/1.1
needs (one ``h11.Connection`` per socket, keep-alive, ``Host``), so no pure-Python client
can be much cheaper per request.

A pool is C keep-alive connections, each driven by exactly one task: no locking, no
queueing, no pool bookkeeping.  ::

    async with open_pool("http://127.0.0.1:8000", size=10) as pool:
        response = await pool.connections[3].get("/item")   # task 3 only

Only plain ``http://`` (the benchmarks never leave 127.0.0.1), ``GET`` and bodies small
enough to hold in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

__all__ = ["H11Connection", "H11Pool", "H11Response", "open_pool"]

#: Bytes read per receive; a benchmark response is a few hundred bytes.
_RECEIVE_SIZE = 65_536
#: Upper bound on receives per response, so that a misbehaving peer cannot loop us forever.
_MAX_RECEIVES = 100_000
_USER_AGENT = b"trestfly-bench-h11"


class H11Error(Exception):
    """The connection failed in a way a fresh connection will not fix."""


@dataclass(frozen=True, slots=True)
class H11Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class H11Connection:
    """One keep-alive HTTP/1.1 connection; use it from one task at a time."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._host_header = f"{host}:{port}".encode("ascii")
        self._stream: trio.SocketStream | None = None
        self._h11 = h11.Connection(our_role=h11.CLIENT)

    async def _connect(self) -> None:
        # open_tcp_stream sets TCP_NODELAY: small requests are not held back by Nagle.
        self._stream = await trio.open_tcp_stream(self._host, self._port)
        self._h11 = h11.Connection(our_role=h11.CLIENT)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def get(self, target: str) -> H11Response:
        """``GET target`` on this connection, (re)connecting when needed.

        A reused connection may have been closed by the server's keep-alive timeout while
        idle; that shows up before any byte of the answer, and a GET is safe to resend,
        so it is retried once on a fresh connection.
        """
        reused = self._stream is not None
        try:
            return await self._exchange(target)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            await self.aclose()
            if not reused:
                raise
        return await self._exchange(target)

    async def _exchange(self, target: str) -> H11Response:
        if self._stream is None:
            await self._connect()
        stream = self._stream
        assert stream is not None
        connection = self._h11
        request = h11.Request(
            method="GET",
            target=target,
            headers=[(b"Host", self._host_header), (b"User-Agent", _USER_AGENT)],
        )
        # A GET has no body: h11 frames it as Content-Length 0 and EndOfMessage adds nothing,
        # but sending both keeps h11's state machine at DONE for keep-alive.
        data = (connection.send(request) or b"") + (connection.send(h11.EndOfMessage()) or b"")
        await stream.send_all(data)

        status = 0
        headers: list[tuple[bytes, bytes]] = []
        body = bytearray()
        for _ in range(_MAX_RECEIVES):
            event = connection.next_event()
            if event is h11.NEED_DATA:
                chunk = await stream.receive_some(_RECEIVE_SIZE)
                # b"" is EOF, which h11 turns into ConnectionClosed or a protocol error.
                connection.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise trio.BrokenResourceError("server closed the connection mid-response")
            # InformationalResponse (1xx): nothing to do, the final response follows.
        else:
            raise H11Error(f"no complete response after {_MAX_RECEIVES} reads")

        if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
            connection.start_next_cycle()  # keep-alive: the next request reuses the socket
        else:
            # The server said "Connection: close" (or h11 cannot reuse it): start afresh.
            await self.aclose()
        return H11Response(status, headers, bytes(body))


@dataclass(frozen=True)
class H11Pool:
    connections: list[H11Connection]
    #: The request target for the pool's URL (path and query), e.g. ``"/item"``.
    target: str


@asynccontextmanager
async def open_pool(url: str, size: int) -> AsyncIterator[H11Pool]:
    """``size`` lazily opened keep-alive connections to ``url``'s host; closed on exit."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only http:// URLs with a host are supported, got {url!r}")
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pool = H11Pool([H11Connection(parts.hostname, port) for _ in range(size)], target)
    try:
        yield pool
    finally:
        with trio.CancelScope(shield=True):
            for connection in pool.connections:
                await connection.aclose()
