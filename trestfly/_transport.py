"""ShardedTransport: many small httpx connection pools behind one transport.

Why not one ``httpx.AsyncHTTPTransport`` with ``max_connections=N``?  httpcore's
``AsyncConnectionPool`` does work proportional to the pool on every request: each request
runs ``_assign_requests_to_connections`` at least twice (on entry and when its response
is closed), and each run walks every connection, counts the idle ones once per idle
connection and polls the socket of every idle one (``has_expired``).  Worse, a connection
handed to a request still looks idle until that request's task runs again, so concurrent
requests are handed the same connection, all but one bounce with
``ConnectionNotAvailable`` and run the assignment again (4 extra rounds per request at
100 connections, measured).  At 100 connections this costs a Trio client three quarters
of its throughput (encode/httpx#3215).  A pool of one connection pays none of it.

So this transport builds ``max_connections / shard_size`` small pools ("shards") through
httpx's public API only and keeps its own O(1) account of free connection slots: a request
takes a slot of a shard, and keeps it until its response stream is closed, which is
exactly as long as httpcore keeps the connection busy.  A shard therefore never has more
requests than connections, so no request ever queues inside httpcore's pool -- which also
rules out encode/httpcore#1093, where a request cancelled while queued there leaks a
connection slot for good.  When every slot is taken, requests wait here, on a Trio
semaphore, where cancellation leaves no trace.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import math
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from types import TracebackType
from typing import Self, TypeAlias

import httpx
import trio

from ._proxies import check_proxy
from .errors import UnexpectedValueError

__all__ = ["DEFAULT_SHARD_SIZE", "ShardedTransport", "SocketOption"]

#: Connections per shard when none is given.  One connection per pool measured fastest
#: (client CPU per request, 100 tasks on 100 connections, loopback: 503 us with shards of
#: 1, 536 us of 2, 622 us of 4, about 1000 us of 8, 1876 us for one pool of 100): with two
#: free connections in one pool, two requests can already be handed the same one (see
#: above).  A shard costs about 0.5 KB and 0.2 ms to build, the TLS context being shared.
DEFAULT_SHARD_SIZE = 1

#: What ``httpx.AsyncHTTPTransport(socket_options=...)`` accepts for one option.
SocketOption: TypeAlias = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnexpectedValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class _SlotReleasingStream(httpx.AsyncByteStream):
    """A response stream that gives its shard slot back when it is closed.

    httpcore keeps the connection busy until the response stream is closed, so the slot
    must be held exactly that long: released earlier, a new request could find the shard
    full inside httpcore and queue there (the queue this transport exists to avoid).
    """

    __slots__ = ("_release", "_stream")

    def __init__(
        self, stream: httpx.AsyncByteStream, release: Callable[[], Awaitable[None]]
    ) -> None:
        self._stream = stream
        self._release: Callable[[], Awaitable[None]] | None = release

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The inner iterator itself, not a generator wrapping it: one less coroutine
        # frame per chunk.  Closing on errors is the owner's job (httpx's client closes
        # every response whose reading fails), and ours is to release the slot then.
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return  # already closed: the slot was released once and must not be again
        try:
            # httpcore shields this close from cancellation, so the connection is back
            # in its pool (idle, or closed) when it returns.
            await self._stream.aclose()
        finally:
            # Even if the inner close failed or was cancelled: a slot that outlives its
            # request would shrink the transport for the rest of its life.
            await release()


def ca_bundle_context(path: str) -> ssl.SSLContext:
    """An SSLContext trusting the CA bundle file, or (as requests and httpx also take)
    the directory of them, at ``path`` (httpx deprecates taking the path itself).

    Raises:
        OSError: no such file or directory, or not one of certificates.
    """
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def given_trust(verify: object, name: str) -> ssl.SSLContext | None:
    """The SSLContext ``verify`` names: itself, or a CA bundle path loaded; None for a
    bool (the caller builds that one its own way).

    Raises:
        UnexpectedValueError: the CA bundle cannot be loaded (``name`` is the setting).
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if not isinstance(verify, str):
        return None
    try:
        return ca_bundle_context(verify)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise UnexpectedValueError(f"{name}: cannot load the CA bundle {verify!r}: {exc}") from exc


class ShardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that spreads ``max_connections`` over small connection pools.

    Use it where an ``httpx.AsyncClient`` would build its own ``AsyncHTTPTransport``::

        transport = ShardedTransport(max_connections=100, verify=ssl_context)
        async with httpx.AsyncClient(transport=transport, timeout=30.0) as client:
            ...

    Each shard is an ``httpx.AsyncHTTPTransport`` with ``shard_size`` connections (the
    last one may be smaller), built from the TLS, HTTP version and proxy settings given
    here.  A request takes a free connection slot -- from the shard that was used most
    recently, so keep-alive connections stay warm and surplus ones are left to expire --
    and holds it until its response is closed.  A request that finds every slot taken
    waits for one, up to the request's ``pool`` timeout (``httpx.PoolTimeout``), as it
    would in httpx's own pool.

    Like any httpx transport, a response read with ``stream=True`` must be closed: until
    then its connection, and its slot here, stay taken.

    The transport belongs to one Trio run (its semaphore does).  Note that an
    ``httpx.AsyncClient`` given ``transport=`` no longer reads proxies from the
    environment, and its own ``proxy=``/``mounts=`` would route around this transport:
    give the proxy here instead (one transport per proxy, mounted, for several).

    Args:
        max_connections: total connections, and so requests in flight, over all shards.
        shard_size: connections per shard (default 1, measured fastest).
        verify: ``True`` (certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` with
            ``trust_env``), ``False``, or an ``ssl.SSLContext`` (which also carries a
            client certificate).  A ``str`` CA path is accepted as httpx accepts it
            (deprecated there).  One context is built and shared by every shard.
        trust_env: let the TLS defaults above come from the environment.
        http1: allow HTTP/1.1.
        http2: allow HTTP/2 (needs the ``h2`` package, ``httpx[http2]``).  A shard's
            HTTP/2 connection carries at most ``shard_size`` requests at once (its slots),
            so raise ``shard_size`` to let HTTP/2 multiplex.
        proxy: a proxy URL or ``httpx.Proxy`` every shard sends through (``socks5://``
            needs ``httpx[socks]``).
        keepalive_expiry: seconds an idle connection is kept (httpx's default 5.0).
        retries: connection attempts retried on connect errors (httpx's ``retries``).
        local_address: local IP to bind connections to.
        uds: a Unix domain socket path to connect through.
        socket_options: socket options set on every new connection.

    Raises:
        trestfly.errors.UnexpectedValueError: ``max_connections`` or ``shard_size`` is not
            an integer >= 1, ``verify`` or ``proxy`` is of the wrong kind, a CA bundle
            cannot be loaded, or httpx refuses the proxy URL (never quoted: it may hold
            a password).  A ``ValueError``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        shard_size: int = DEFAULT_SHARD_SIZE,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        proxy: httpx.Proxy | httpx.URL | str | None = None,
        keepalive_expiry: float | None = 5.0,
        retries: int = 0,
        local_address: str | None = None,
        uds: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> None:
        # Checked before the (slow) TLS context is built.
        _positive_int("max_connections", max_connections)
        _positive_int("shard_size", shard_size)
        if not isinstance(verify, bool | str | ssl.SSLContext):
            # httpx takes anything and fails at the first https request, with a bare
            # AttributeError from deep in the TLS setup.
            raise UnexpectedValueError(
                "verify must be True, False, a CA bundle path (str) or an ssl.SSLContext, "
                f"got a {type(verify).__name__}"
            )
        if not (proxy is None or isinstance(proxy, httpx.Proxy | httpx.URL | str)):
            raise UnexpectedValueError(
                f"proxy must be a proxy URL or an httpx.Proxy, got a {type(proxy).__name__}"
            )
        if proxy is not None:
            # Before httpx: it raises httpx.InvalidURL (no ValueError) on a URL it cannot
            # parse, takes one with no host, and a bare ImportError for socks5:// without
            # socksio.
            check_proxy(proxy, "proxy")
        # Built once: httpx would otherwise load the CA bundle again for every shard
        # (milliseconds each), and one shared context also shares TLS session state.
        ssl_context = given_trust(verify, "verify") or httpx.create_ssl_context(
            verify=verify, trust_env=trust_env
        )
        options = tuple(socket_options) if socket_options is not None else None

        def build(size: int) -> httpx.AsyncBaseTransport:
            return httpx.AsyncHTTPTransport(
                verify=ssl_context,
                cert=None,
                trust_env=trust_env,
                http1=http1,
                http2=http2,
                # max_keepalive == max: an idle connection is never closed just for
                # being idle while its shard is below size; keepalive_expiry ages it out.
                limits=httpx.Limits(
                    max_connections=size,
                    max_keepalive_connections=size,
                    keepalive_expiry=keepalive_expiry,
                ),
                proxy=proxy,
                uds=uds,
                local_address=local_address,
                retries=retries,
                socket_options=options,
            )

        try:
            self._setup(build, max_connections=max_connections, shard_size=shard_size)
        except (ValueError, httpx.InvalidURL) as exc:  # httpx's, for the proxy
            if isinstance(exc, UnexpectedValueError) or proxy is None:
                raise
            refused = True
        else:
            refused = False
        if refused:
            # Not httpx's words, which quote the URL: it often carries a password.  Raised
            # out of the except block, so httpx's error is not reachable as __context__.
            raise UnexpectedValueError(
                "proxy is not a proxy URL httpx can use (http://, https://, socks5:// or "
                "socks5h://, with a host)"
            )

    @classmethod
    def from_factory(
        cls,
        factory: Callable[[int], httpx.AsyncBaseTransport],
        *,
        max_connections: int = 100,
        shard_size: int = DEFAULT_SHARD_SIZE,
    ) -> Self:
        """Build the shards with ``factory`` instead of ``httpx.AsyncHTTPTransport``.

        ``factory(size)`` is called once per shard and must return a transport that can
        serve ``size`` concurrent requests without queueing them (for an
        ``AsyncHTTPTransport``: ``limits=httpx.Limits(max_connections=size, ...)``).

        Args:
            factory: builds one shard from its number of connections.
            max_connections: total connections over all shards.
            shard_size: connections per shard.

        Returns:
            The transport.

        .. versionadded:: 0.1.0
        """
        if not callable(factory):
            raise UnexpectedValueError(
                f"factory must be a callable returning a transport, got a {type(factory).__name__}"
            )

        def checked(size: int) -> httpx.AsyncBaseTransport:
            shard = factory(size)
            if not isinstance(shard, httpx.AsyncBaseTransport):
                raise UnexpectedValueError(
                    f"factory must return an httpx.AsyncBaseTransport, got a {type(shard).__name__}"
                )
            return shard

        self = cls.__new__(cls)
        self._setup(checked, max_connections=max_connections, shard_size=shard_size)
        return self

    def _setup(
        self,
        factory: Callable[[int], httpx.AsyncBaseTransport],
        *,
        max_connections: int,
        shard_size: int,
    ) -> None:
        total = _positive_int("max_connections", max_connections)
        size = min(_positive_int("shard_size", shard_size), total)
        count = math.ceil(total / size)
        # Every shard is full-sized but the last, which takes the remainder.
        self._sizes: tuple[int, ...] = tuple(min(size, total - i * size) for i in range(count))
        # Built on first use, but the first now (it checks the factory, and httpx checks
        # a proxy there): all at once, max_concurrency=1,000,000 took 9 s and 686 MB to
        # open, for a client that may never have more than a few requests out.  The free
        # slots are taken warmest first (below), so only as many are built as were ever
        # in use at once.
        self._factory = factory
        self._shards: list[httpx.AsyncBaseTransport | None] = [None] * count
        self._shards[0] = factory(self._sizes[0])
        self._entered = False
        self._max_connections = total
        self._shard_size = size
        # One entry per free slot, holding its shard's index.  Taking from the right end
        # (LIFO) reuses the shard whose connection was released last -- the warmest -- so
        # a client that needs few connections keeps using the same few.  Shard 0's
        # slots go on top first.  A deque, so that a slot whose request failed can go to
        # the other end in O(1) (see _release).
        self._free: deque[int] = deque(
            i for i in reversed(range(count)) for _ in range(self._sizes[i])
        )
        self._in_flight_per_shard: list[int] = [0] * count
        # Counts the free slots (len(self._free) minus slots already handed to a woken
        # waiter).  release() hands a slot straight to the longest waiter, so a request
        # arriving meanwhile cannot overtake it; max_value turns a double release (a bug)
        # into an error instead of a shard with one request too many.
        self._slots = trio.Semaphore(total, max_value=total)
        # Counts aclose() calls: a request sent before one (still out when the transport
        # closed) has its connection closed when it comes back; one sent after, not.  A
        # flag set for good closed every connection after a re-entry too, behind
        # httpcore's back, and the next request on it failed (a bare ValueError).
        self._closes = 0

    # ------------------------------------------------------------------ introspection

    @property
    def max_connections(self) -> int:
        """Total connections (and concurrent requests) over all shards.

        .. versionadded:: 0.1.0
        """
        return self._max_connections

    @property
    def shard_size(self) -> int:
        """Connections per shard (the last shard may have fewer).

        .. versionadded:: 0.1.0
        """
        return self._shard_size

    @property
    def shards(self) -> tuple[httpx.AsyncBaseTransport, ...]:
        """The inner transports, one per shard, in order.

        A shard is built when a request first needs it; reading this builds the rest.

        .. versionadded:: 0.1.0
        """
        return tuple(self._shard(index) for index in range(len(self._shards)))

    def _shard(self, index: int) -> httpx.AsyncBaseTransport:
        """Shard ``index``, built now if it was never used."""
        shard = self._shards[index]
        if shard is None:
            shard = self._shards[index] = self._factory(self._sizes[index])
        return shard

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now: sent, or with a response not yet closed.

        .. versionadded:: 0.1.0
        """
        return sum(self._in_flight_per_shard)

    @property
    def shard_in_flight(self) -> tuple[int, ...]:
        """Requests holding a slot of each shard now (never above the shard's size).

        .. versionadded:: 0.1.0
        """
        return tuple(self._in_flight_per_shard)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} [{self.in_flight}/{self._max_connections} in flight, "
            f"{len(self._shards)} shards of {self._shard_size}]>"
        )

    # ------------------------------------------------------------------ requests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through a shard with a free connection slot.

        Args:
            request: the request, as httpx's client hands it to a transport.

        Returns:
            The shard's response, whose stream releases the slot when closed.

        Raises:
            httpx.PoolTimeout: every slot stayed taken for the request's ``pool`` timeout.
            httpx.TransportError: whatever the shard raised (the slot is released first).

        .. versionadded:: 0.1.0
        """
        try:
            # The common case costs no scheduling: the session's limiter already keeps
            # requests at or below max_connections.
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._wait_for_slot(request)
        # Holding a semaphore token guarantees an entry here, and no checkpoint lies
        # between taking the token and taking the entry, so cancellation cannot split them.
        shard = self._free.pop()
        self._in_flight_per_shard[shard] += 1
        closes = self._closes
        try:
            transport = self._shards[shard]
            if transport is None:
                transport = self._shard(shard)
                if self._entered:
                    await transport.__aenter__()  # as its siblings were on entering
            response = await transport.handle_async_request(request)
            stream = response.stream
            if not isinstance(stream, httpx.AsyncByteStream):
                # Only a broken custom shard gets here; never keep its slot forever, nor
                # its connection: the stream is closed as best it can be.
                await _close_foreign_stream(stream)
                raise TypeError(f"shard returned a response with {type(stream).__name__}")
        except BaseException:
            # Failed, or cancelled mid-request: httpcore has already closed the connection
            # (shielded), so the slot is free again -- but its shard may have no open
            # connection left, so it goes to the cold end: the next request gets a shard
            # with a warm one, which matters when cancellations come in bursts.
            self._release(shard, warm=False)
            raise
        # httpcore's documented "network_stream" extension: the connection's socket.
        network = response.extensions.get("network_stream")
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_SlotReleasingStream(stream, partial(self._return_slot, shard, network, closes)),
            extensions=response.extensions,
        )

    async def _wait_for_slot(self, request: httpx.Request) -> None:
        timeouts = request.extensions.get("timeout", {})
        pool_timeout = timeouts.get("pool") if isinstance(timeouts, dict) else None
        # Semaphore.acquire is cancellation-safe: a waiter cancelled before it is handed
        # a slot takes none, so a cancelled request leaves the account untouched.
        with trio.move_on_after(math.inf if pool_timeout is None else pool_timeout):
            await self._slots.acquire()
            return
        raise httpx.PoolTimeout(
            f"no free connection among {self._max_connections} within {pool_timeout} s",
            request=request,
        )

    async def _return_slot(self, shard: int, network: object, closes: int) -> None:
        """A response is closed: its slot is free, and if the transport was closed while
        the request was out (``closes``: the count of closes when it was sent), its
        connection (``network``, the response's ``network_stream``) is closed too.

        A request still connecting when the transport closed (a session left with a call
        in another nursery) finished on a connection its shard's pool had already
        forgotten: httpcore closed the pool's connections, not the one being opened,
        and the socket stayed open for good.
        """
        self._release(shard)
        aclose = getattr(network, "aclose", None)
        if self._closes != closes and callable(aclose):
            with trio.CancelScope(shield=True):  # as httpcore shields its own closes
                await aclose()

    def _release(self, shard: int, *, warm: bool = True) -> None:
        self._in_flight_per_shard[shard] -= 1
        if warm:
            self._free.append(shard)
        else:
            self._free.appendleft(shard)
        self._slots.release()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._entered = True
        try:
            for shard in self._built():
                await shard.__aenter__()
        except BaseException:
            await self.aclose()
            raise
        return self

    def _built(self) -> list[httpx.AsyncBaseTransport]:
        """The shards built so far (a copy: a request may build one meanwhile)."""
        return [shard for shard in self._shards if shard is not None]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every shard's connections (each close is attempted even if one fails).

        Raises:
            BaseException: the first error a shard raised while closing (a
                ``KeyboardInterrupt`` included), once every shard was closed.

        .. versionadded:: 0.1.0
        """
        self._closes += 1
        first_error: BaseException | None = None
        # Shielded, like httpcore's own closes: leaving a client by cancellation must
        # still close its sockets, and a half-closed set of shards would leak the rest.
        # Any exception, not only Exception: a KeyboardInterrupt raised in the first
        # shard's close left every other shard's sockets open.
        with trio.CancelScope(shield=True):
            for shard in self._built():
                try:
                    await shard.aclose()
                except BaseException as exc:
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error


async def _close_foreign_stream(stream: object) -> None:
    """Close a stream of the wrong kind (sync, or not a stream): ``aclose()`` or
    ``close()``, whichever it has, shielded, as httpcore closes connections."""
    with trio.CancelScope(shield=True):
        aclose = getattr(stream, "aclose", None)
        if callable(aclose):
            await aclose()
            return
        close = getattr(stream, "close", None)
        if callable(close):
            close()
