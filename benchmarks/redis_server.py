"""A throwaway local Redis for the benchmarks and the tests: ``redis-server`` on 127.0.0.1.

Sessions in several processes share their throttling state through Redis
(``trestfly.RedisCoordination``); measuring that, or testing it, needs a Redis that
nobody else uses, that writes nothing outside a temporary directory and that is gone
afterwards whatever happened.  ::

    with running_redis() as redis:        # a free port, a fresh empty server
        redis.url                         # "redis://127.0.0.1:PORT/0"
        redis.stop()                      # a test's outage: Redis goes away ...
        redis.start()                     # ... and comes back, empty, on the same port

The launcher needs only the ``redis-server`` binary (Debian/Ubuntu: ``apt-get install
redis-server``; macOS: ``brew install redis``), not a Redis client library: readiness is
an ``INFO`` on a raw socket whose process id is ours (:func:`ping` serves tests).  The
server runs without persistence (``--save '' --appendonly no``) in a temporary
``--dir``, bound to 127.0.0.1 only.  Every wait is bounded in time and in passes; the
process is terminated, then killed, when the context exits, and on Linux also when
the process that started it dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .server import stop_server

__all__ = [
    "HOST",
    "INSTALL_HINT",
    "STARTUP_TIMEOUT",
    "RedisNotInstalled",
    "RedisServer",
    "RedisStartError",
    "find_redis_server",
    "free_port",
    "ping",
    "running_redis",
    "server_info",
    "server_pid",
]

HOST = "127.0.0.1"
#: Seconds until a started server must answer PING (it takes a few milliseconds).
STARTUP_TIMEOUT = 10.0
INSTALL_HINT = (
    "install it with 'apt-get install redis-server' (Debian/Ubuntu) or "
    "'brew install redis' (macOS), or put its directory on PATH"
)
_POLL_INTERVAL = 0.02
_PING_TIMEOUT = 0.5
#: A PING answer is ``+PONG\r\n`` (or an error line such as ``-LOADING ...``).
_MAX_REPLY = 1024
#: ``INFO server`` is about 1.5 kB.
_MAX_INFO = 64 * 1024
#: Fresh ports tried when another process takes the free port before Redis binds it.
_PORT_ATTEMPTS = 3
_LOG_TAIL = 4000
_PR_SET_PDEATHSIG = 1


class RedisNotInstalled(RuntimeError):
    """``redis-server`` is not on this machine (the message says how to install it)."""


class RedisStartError(RuntimeError):
    """``redis-server`` exited at start-up or did not answer PING in time."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(f"{message}\n{log}" if log else message)
        self.log = log


def find_redis_server(executable: str | None = None) -> str:
    """The path of ``redis-server`` (``executable`` if given, else from ``PATH``).

    Raises:
        RedisNotInstalled: not found.
    """
    found = shutil.which(executable or "redis-server")
    if found is None:
        raise RedisNotInstalled(f"{executable or 'redis-server'} not found: {INSTALL_HINT}")
    return found


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def ping(port: int, *, timeout: float = _PING_TIMEOUT) -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING with PONG now.

    Raw RESP on a socket, so that neither the launcher nor its tests need a client
    library.  A server still loading answers ``-LOADING``, which is not ready.
    """
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = b""
            # Bounded by the reply's length: each pass reads a byte at least, or stops.
            while b"\r\n" not in reply and len(reply) < _MAX_REPLY:
                chunk = connection.recv(_MAX_REPLY)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"+PONG\r\n")


def server_info(port: int, *, timeout: float = _PING_TIMEOUT) -> dict[str, str] | None:
    """The ``INFO server`` fields of the Redis on 127.0.0.1:``port`` (``redis_version``,
    ``process_id``, ...), None when nothing answers or the server is not ready."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            connection.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            reply = b""
            # A bulk string, ``$<length>\r\n<text>\r\n``; bounded by _MAX_INFO bytes.
            while len(reply) < _MAX_INFO:
                chunk = connection.recv(_MAX_INFO)
                if not chunk:
                    break
                reply += chunk
                if not reply.startswith(b"$"):
                    return None  # an error line (-LOADING ...): not ready
                header, separator, body = reply.partition(b"\r\n")
                if separator and len(body) >= int(header[1:]):
                    break
    except (OSError, ValueError):
        return None
    fields: dict[str, str] = {}
    for line in reply.decode(errors="replace").splitlines()[1:]:
        name, colon, value = line.partition(":")
        if colon and not name.startswith("#"):
            fields[name] = value.strip()
    return fields


def server_pid(port: int) -> int | None:
    """The process id of the Redis answering on 127.0.0.1:``port``, None if none does.

    A PONG alone does not prove that the server we started answered: if another Redis
    already held the port, ours exits while the other one says PONG.
    """
    info = server_info(port)
    try:
        return int(info["process_id"]) if info is not None else None
    except (KeyError, ValueError):
        return None


def _child_setup(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` run in the child before ``redis-server``: pin it to ``cpu``, and
    have it receive SIGTERM when its parent dies.  None when there is nothing to do.

    The parent-death signal (Linux, ``prctl(PR_SET_PDEATHSIG)``) covers what no
    ``finally`` can: a benchmark killed with SIGKILL, or SIGTERM without a handler,
    would otherwise leave Redis running.  It is set only from the main thread, because
    the signal is sent when the *thread* that forked exits, and a worker thread may exit
    long before the program does.  Pinning is best effort, as in :mod:`benchmarks._cpu`.
    The libc function is looked up here, in the parent, so the child only calls it.
    """
    prctl: Callable[..., int] | None = None
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl
    can_pin = cpu is not None and hasattr(os, "sched_setaffinity")
    if prctl is None and not can_pin:
        return None

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if can_pin and cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {cpu})

    return setup


class RedisServer:
    """One ``redis-server`` process on a fixed port; :meth:`start` and :meth:`stop` at will.

    Made by :func:`running_redis`, which owns the temporary directory and stops the
    server at the end.  Restarting keeps the port, so that clients configured with
    :attr:`url` reconnect to the new process; the new server is empty (no persistence).
    """

    def __init__(
        self,
        port: int,
        directory: Path,
        *,
        executable: str,
        startup_timeout: float = STARTUP_TIMEOUT,
        cpu: int | None = None,
    ) -> None:
        self.port = port
        self.directory = directory
        self.executable = executable
        self.startup_timeout = startup_timeout
        #: The CPU the server is pinned to (None: unpinned).
        self.cpu = cpu
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = directory / f"redis-{port}.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``: what ``RedisCoordination`` takes."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The running server's process id, None when stopped."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (not whether it answers: see :meth:`ping`)."""
        return self._process is not None and self._process.poll() is None

    def ping(self) -> bool:
        """Whether the server answers PING now."""
        return ping(self.port)

    def info(self) -> dict[str, str] | None:
        """Its ``INFO server`` fields (``redis_version``...), None when it does not answer."""
        return server_info(self.port)

    def command(self) -> list[str]:
        """The ``redis-server`` command line: 127.0.0.1 only, nothing written outside
        :attr:`directory`, no snapshot or append-only file at all."""
        return [
            self.executable,
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip

    def start(self) -> None:
        """Start the server (again, on the same port) and return once it answers (the
        process id in its ``INFO`` is ours: not another Redis that holds the port).

        Raises:
            RedisStartError: it exited (the port was taken, a bad option) or did not
                answer within :attr:`startup_timeout` seconds; it is stopped first.
        """
        if self.running:
            return
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C reaches only us, and we stop it in order.
                start_new_session=True,
                preexec_fn=_child_setup(self.cpu),
            )
        process = self._process
        deadline = time.monotonic() + self.startup_timeout
        # Bounded by count as well as by the deadline.
        for _ in range(int(self.startup_timeout / _POLL_INTERVAL) + 2):
            if process.poll() is not None:
                raise RedisStartError(
                    f"redis-server exited with code {process.returncode} at start-up "
                    f"(port {self.port})",
                    self.log_tail(),
                )
            if server_pid(self.port) == process.pid:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_INTERVAL)
        self.stop()
        raise RedisStartError(
            f"redis-server did not answer on port {self.port} within {self.startup_timeout:g} s",
            self.log_tail(),
        )

    def stop(self) -> None:
        """Terminate the server (SIGTERM; SIGKILL after a few seconds) and wait for it.

        A no-op when it is not running.  Tests call it to take Redis away mid-run.
        """
        process, self._process = self._process, None
        if process is not None:
            stop_server(process)

    def log_tail(self) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self._log_path.read_bytes()[-_LOG_TAIL:]
        except OSError:
            return ""
        return text.decode(errors="replace")


@contextmanager
def running_redis(
    *,
    port: int | None = None,
    executable: str | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    cpu: int | None = None,
) -> Iterator[RedisServer]:
    """Start a fresh ``redis-server`` on 127.0.0.1, yield it, always stop it.

    Args:
        port: the port to use (None: a free one, chosen by the kernel).
        executable: ``redis-server``'s name or path (None: from ``PATH``).
        startup_timeout: seconds until it must answer PING.
        cpu: pin the server to this CPU (None: leave it where the OS puts it); the
            benchmark puts it beside the storm server, away from the clients.

    Raises:
        RedisNotInstalled: ``redis-server`` is not installed.
        RedisStartError: it did not come up.
    """
    binary = find_redis_server(executable)
    with tempfile.TemporaryDirectory(prefix="trestfly-redis-") as directory:
        server: RedisServer | None = None
        try:
            for attempt in range(1 if port is not None else _PORT_ATTEMPTS):
                server = RedisServer(
                    port if port is not None else free_port(),
                    Path(directory),
                    executable=binary,
                    startup_timeout=startup_timeout,
                    cpu=cpu,
                )
                try:
                    server.start()
                except RedisStartError as error:
                    # The free port was taken between our probe and Redis's bind.
                    last = port is not None or attempt == _PORT_ATTEMPTS - 1
                    if last or "in use" not in error.log:
                        raise
                else:
                    break
            assert server is not None
            yield server
        finally:
            if server is not None:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    server.stop()
