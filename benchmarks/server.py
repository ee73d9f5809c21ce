"""The benchmarks' local HTTP server: a bare ASGI app served by uvicorn in a subprocess.

A client benchmark is only as good as its server: this one is a few lines of ASGI with
precomputed bodies, served by uvicorn's httptools parser, so that the client is what
saturates.  It runs in its own process (pinned to its own core where possible) so its
work never shows up in the client's CPU time, and always on 127.0.0.1.

Parent side::

    with run_server(AppConfig(), cpu=0) as server:
        ...  # requests to f"{server.url}/json"

Child side (started by :func:`run_server`)::

    python -m benchmarks.server --port 0 [--cpu N] [--config JSON]

The child binds the port, prints one JSON line ``{"port": N}`` on stdout, then serves
until it is terminated or its stdin reaches EOF (the parent closed it or died).

Routes live in :func:`routes`, built from an :class:`AppConfig`: a new scenario (such as
a throttling server) adds fields to the config and handlers to the table.

Another app (:mod:`benchmarks.storm_server`, :mod:`benchmarks._pages_app`) gets the same
process, socket and uvicorn setup from two calls: its child entry point calls
:func:`serve_app` with its app, and its parent side is :func:`run_app_server` with its
module name::

    # child: python -m benchmarks.my_app --port 0 [--cpu N]
    def main() -> None:
        args = server_argument_parser("python -m benchmarks.my_app", "...").parse_args()
        serve_app(build_my_app(), port=args.port, cpu=args.cpu)

    # parent
    with run_app_server("benchmarks.my_app", cpu=0) as server:
        ...
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

__all__ = [
    "HOST",
    "PROJECT_ROOT",
    "STARTUP_TIMEOUT",
    "ASGIApp",
    "AppConfig",
    "Handler",
    "Receive",
    "Request",
    "Response",
    "RunningServer",
    "Scope",
    "Send",
    "answers",
    "build_app",
    "delay_seconds",
    "exit_when_parent_goes",
    "json_response",
    "read_log",
    "read_port",
    "routes",
    "run_app_server",
    "run_server",
    "serve",
    "serve_app",
    "server_argument_parser",
    "stop_server",
    "wait_until_answering",
]

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 1.0
_MAX_PORT_LINE = 1024
# `python -m benchmarks.server` must find this package whatever the caller's cwd is.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ the ASGI app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class AppConfig:
    """What the app answers; crosses to the child process as JSON (plain fields only)."""

    #: Upper bound for ``?delay_ms=``, so a typo cannot park a connection for hours.
    max_delay_ms: int = 10_000

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AppConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]

_JSON_TYPE = (b"content-type", b"application/json")


def json_response(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> Response:
    """A JSON response from an already encoded body (encode once, at app build time)."""
    return Response(status, body, (_JSON_TYPE, *extra))


def delay_seconds(query: Mapping[str, list[str]], max_delay_ms: int) -> float | None:
    """``?delay_ms=N`` in seconds; 0.0 when absent; None when not an integer in range."""
    values = query.get("delay_ms")
    if not values:
        return 0.0
    try:
        delay_ms = int(values[-1])
    except ValueError:
        return None
    if not 0 <= delay_ms <= max_delay_ms:
        return None
    return delay_ms / 1000


def routes(config: AppConfig) -> dict[str, Handler]:
    """The route table: exact path -> handler."""
    ok = json_response(200, b'{"ok": true}')
    bad_delay = json_response(
        400, json.dumps({"error": f"delay_ms must be an integer 0..{config.max_delay_ms}"}).encode()
    )

    async def tiny_json(request: Request) -> Response:
        delay = delay_seconds(request.query, config.max_delay_ms)
        if delay is None:
            return bad_delay
        if delay:
            # Imported here: the parent process never needs asyncio for this module.
            import asyncio

            await asyncio.sleep(delay)
        return ok

    return {"/json": tiny_json}


def build_app(config: AppConfig, table: Mapping[str, Handler] | None = None) -> ASGIApp:
    """A bare ASGI app serving ``table`` (default: :func:`routes` of ``config``)."""
    handlers = dict(routes(config) if table is None else table)
    not_found = json_response(404, b'{"error": "not found"}')
    no_query: Mapping[str, list[str]] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs with lifespan="off"; nothing else is expected.
        handler = handlers.get(scope["path"])
        if handler is None:
            response = not_found
        else:
            raw_query: bytes = scope["query_string"]
            # Most benchmark requests have no query: skip parsing for them.
            query = parse_qs(raw_query.decode("latin-1")) if raw_query else no_query
            response = await handler(Request(scope["method"], scope["path"], query))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [*response.headers, (b"content-length", b"%d" % len(response.body))],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    return app


# ------------------------------------------------------------------ child process
#
# Every benchmark server (this module's, benchmarks.storm_server, benchmarks._pages_app)
# is a child process that serves its own ASGI app through serve_app(), started by its
# parent through run_app_server().  The protocol between the two:
#
# * the child binds 127.0.0.1 (listening before it reports, so early probes queue),
#   prints one JSON line {"port": N} on stdout, then writes nothing more there;
# * the parent holds the child's stdin open for the child's whole intended lifetime:
#   EOF (the parent closed it, or died) makes the child exit;
# * the parent waits until GET probe_path answers 200 before yielding the server.


def exit_when_parent_goes() -> None:
    """Block until stdin reaches EOF, then exit the process at once (call in a thread).

    The parent holds our stdin open for our whole intended lifetime.  EOF means it
    closed it or died (even by SIGKILL), so the server never outlives a benchmark.
    """
    sys.stdin.buffer.read()
    os._exit(0)


def serve_app(
    app: ASGIApp,
    *,
    port: int = 0,
    cpu: int | None = None,
    error_log_filters: Sequence[logging.Filter] = (),
) -> None:
    """Child entry point: bind, report the port on stdout, serve ``app`` until told to stop.

    Args:
        app: the ASGI app to serve (uvicorn, httptools parser, no lifespan).
        port: the port to bind on 127.0.0.1, 0 for a free one.
        cpu: pin this process to that CPU first (best effort).
        error_log_filters: filters added to uvicorn's ``uvicorn.error`` logger, for
            messages an app provokes on purpose.
    """
    import uvicorn

    from ._cpu import pin_to

    if cpu is not None:
        pin_to(cpu)
    # proto=IPPROTO_TCP, not the default 0: accepted sockets inherit it, and asyncio
    # only sets TCP_NODELAY on sockets whose proto says TCP.  Without it Nagle holds the
    # body (uvicorn writes headers and body separately) until the client's delayed ACK,
    # and every keep-alive request takes ~40 ms.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    # Listening before reporting: the parent's first probe queues in the backlog instead
    # of being refused while uvicorn starts.
    listener.listen(2048)
    bound_port: int = listener.getsockname()[1]
    sys.stdout.write(json.dumps({"port": bound_port}) + "\n")
    sys.stdout.flush()
    # From now on stdout goes where stderr goes (the parent's log file): nobody reads
    # the pipe any more, and a stray print must never block the server on a full pipe.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    threading.Thread(target=exit_when_parent_goes, daemon=True).start()

    config = uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # Benchmarks leave a pool idle while another client runs; the default 5 s
        # would make the server close it and the next round pay for reconnecting.
        timeout_keep_alive=120,
        timeout_graceful_shutdown=2,
    )
    # After Config, which (re)configures uvicorn's loggers.
    error_log = logging.getLogger("uvicorn.error")
    for log_filter in error_log_filters:
        error_log.addFilter(log_filter)
    uvicorn.Server(config).run(sockets=[listener])


def server_argument_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A child's command line with the options :func:`run_app_server` passes.

    ``--port`` and ``--cpu``; a module adds its own (such as ``--config``) and hands them
    over with ``run_app_server(..., extra_args=...)``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, default=0, help="port, 0 for a free one")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    return parser


def serve(config: AppConfig, *, port: int = 0, cpu: int | None = None) -> None:
    """Child entry point of this module: :func:`serve_app` of :func:`build_app`."""
    serve_app(build_app(config), port=port, cpu=cpu)


def main(argv: list[str] | None = None) -> None:
    parser = server_argument_parser(
        "python -m benchmarks.server",
        "Serve the benchmark app on 127.0.0.1 (started by benchmarks.server).",
    )
    parser.add_argument("--config", default="{}", help="AppConfig as JSON")
    args = parser.parse_args(argv)
    serve(AppConfig.from_json(args.config), port=args.port, cpu=args.cpu)


# ------------------------------------------------------------------ parent side


@dataclass(frozen=True)
class RunningServer:
    """A started server: where it listens, and how it was placed."""

    url: str
    port: int
    pid: int
    cpu: int | None


@contextmanager
def run_app_server(
    module: str,
    *,
    extra_args: Sequence[str] = (),
    cpu: int | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    probe_path: str = "/json",
) -> Iterator[RunningServer]:
    """Start ``python -m module``, wait until it answers HTTP, yield it, always stop it.

    The module's entry point must take ``--port`` and ``--cpu`` (see
    :func:`server_argument_parser`) and call :func:`serve_app`.

    Args:
        module: the child's module, importable from the project root
            (``"benchmarks.storm_server"``).
        extra_args: more command-line arguments for the child (``("--config", json)``).
        cpu: the CPU the child pins itself to (None: unpinned).
        startup_timeout: seconds until the child must answer.
        probe_path: a path the app answers with 200 from the start.

    Raises:
        RuntimeError: the server exited, or did not answer within ``startup_timeout``
            seconds (with the end of its log).
    """
    command = [sys.executable, "-m", module, "--port", "0", *extra_args]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            # Held open for the child's whole life: EOF tells it to exit.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # A file, not a pipe: nobody reads it while the benchmark runs.
            stderr=log,
            # Its own session: Ctrl-C reaches only us, and we stop the server in order
            # (otherwise uvicorn prints its own shutdown noise mid-traceback).
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + startup_timeout
            port = read_port(process, deadline, log)
            wait_until_answering(process, port, deadline, log, probe_path=probe_path)
            yield RunningServer(url=f"http://{HOST}:{port}", port=port, pid=process.pid, cpu=cpu)
        finally:
            stop_server(process)


@contextmanager
def run_server(
    config: AppConfig | None = None,
    *,
    cpu: int | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[RunningServer]:
    """Start this module's server (:func:`build_app` of ``config``): see
    :func:`run_app_server`.

    Raises:
        RuntimeError: the server exited, or did not answer within ``startup_timeout``
            seconds (with the end of its log).
    """
    config = AppConfig() if config is None else config
    with run_app_server(
        "benchmarks.server",
        extra_args=("--config", config.to_json()),
        cpu=cpu,
        startup_timeout=startup_timeout,
    ) as server:
        yield server


def read_port(process: subprocess.Popen[bytes], deadline: float, log: IO[bytes]) -> int:
    """The port the child reports on its stdout (the first line, ``{"port": N}``).

    Raises:
        RuntimeError: the child exited, reported something else, or reported nothing
            by ``deadline`` (a ``time.monotonic()`` instant).
    """
    assert process.stdout is not None
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        # Bounded twice: by the deadline, and by the line length (each pass that is not
        # a timeout reads at least one byte or sees EOF).
        for _ in range(_MAX_PORT_LINE + int((deadline - time.monotonic()) / _POLL_INTERVAL) + 1):
            if b"\n" in line or len(line) > _MAX_PORT_LINE:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not selector.select(min(remaining, _POLL_INTERVAL)):
                continue
            chunk = os.read(process.stdout.fileno(), _MAX_PORT_LINE)
            if not chunk:
                process.wait(timeout=_STOP_TIMEOUT)
                raise RuntimeError(
                    f"benchmark server exited with code {process.returncode} before "
                    f"reporting its port:\n{read_log(log)}"
                )
            line += chunk
    if b"\n" not in line:
        raise RuntimeError(f"benchmark server did not report its port:\n{read_log(log)}")
    try:
        port = json.loads(line.split(b"\n", 1)[0])["port"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"benchmark server reported {line!r}, not a port") from exc
    if not isinstance(port, int):
        raise RuntimeError(f"benchmark server reported {line!r}, not a port")
    return port


def wait_until_answering(
    process: subprocess.Popen[bytes],
    port: int,
    deadline: float,
    log: IO[bytes],
    *,
    probe_path: str = "/json",
) -> None:
    """Return once ``GET probe_path`` on ``port`` answers 200.

    Raises:
        RuntimeError: the child exited, or did not answer by ``deadline``.
    """
    # The socket listens before uvicorn runs, so a connection alone proves nothing: only
    # an HTTP answer shows the app is up.
    for _ in range(int((deadline - time.monotonic()) / _POLL_INTERVAL) + 1):
        if process.poll() is not None:
            raise RuntimeError(
                f"benchmark server exited with code {process.returncode}:\n{read_log(log)}"
            )
        if answers(port, probe_path):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_INTERVAL)
    raise RuntimeError(f"benchmark server did not answer in time:\n{read_log(log)}")


def answers(port: int, probe_path: str = "/json") -> bool:
    """Whether ``GET probe_path`` on 127.0.0.1:``port`` answers 200 now."""
    connection = http.client.HTTPConnection(HOST, port, timeout=_PROBE_TIMEOUT)
    try:
        connection.request("GET", probe_path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Close the child's pipes (its stdin EOF asks it to exit), then terminate it, and
    kill it if it is still there after a few seconds."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT)


def read_log(log: IO[bytes]) -> str:
    """The end of the child's log (its stderr), for error messages."""
    log.seek(0)
    return log.read()[-20_000:].decode(errors="replace")


if __name__ == "__main__":
    main()
