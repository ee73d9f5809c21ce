"""Run the ``httpbin`` Flask app on 127.0.0.1 in a subprocess, for end-to-end tests.

httpbin answers like a real third-party service (redirects, status codes, echoing of
headers and bodies) from a different server implementation than our Trio test
server.  It runs in its own process because Werkzeug's server is blocking and threaded,
which must stay out of the test's Trio run.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from benchmarks.server import stop_server

__all__ = ["run_httpbin"]

HOST = "127.0.0.1"
_CHILD_SCRIPT = Path(__file__).with_name("_httpbin_child.py")
_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 1.0


@contextmanager
def run_httpbin(*, startup_timeout: float = 15.0) -> Iterator[str]:
    """Start httpbin, wait until it answers, yield its base URL, then stop it.

    Raises ``RuntimeError`` (with the server's output) if it exits or does not answer
    ``GET /status/200`` within ``startup_timeout`` seconds.
    """
    with tempfile.TemporaryFile() as log:
        # Bind here and hand the listening socket to the child: the port is known
        # before the child starts and cannot be taken by anyone else meanwhile.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind((HOST, 0))
            listener.listen(128)
            port: int = listener.getsockname()[1]
            process = subprocess.Popen(
                # -P: don't put tests/servers/ first on sys.path, where our module
                # names could shadow the ones httpbin imports.
                [sys.executable, "-P", str(_CHILD_SCRIPT), str(listener.fileno())],
                pass_fds=(listener.fileno(),),
                # The child exits on EOF of stdin, i.e. when we close it or die.
                stdin=subprocess.PIPE,
                # A file, not a pipe: nobody reads the output while tests run, and a
                # full pipe would block the server.
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            base_url = f"http://{HOST}:{port}"
            _wait_until_serving(process, port, startup_timeout, log)
            yield base_url
        finally:
            stop_server(process)


def _wait_until_serving(
    process: subprocess.Popen[bytes], port: int, timeout: float, log: IO[bytes]
) -> None:
    # Connecting alone proves nothing: the socket is listening before the child runs.
    # Only an HTTP answer shows that httpbin imported and its server loop is up.
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / _POLL_INTERVAL) + 1):
        if process.poll() is not None:
            raise RuntimeError(f"httpbin exited with code {process.returncode}:\n{_read_log(log)}")
        if _answers(port):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_INTERVAL)
    raise RuntimeError(f"httpbin did not answer within {timeout}s:\n{_read_log(log)}")


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=_PROBE_TIMEOUT)
    try:
        connection.request("GET", "/status/200")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _read_log(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read()[-20_000:].decode(errors="replace")
