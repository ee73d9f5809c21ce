"""Run httpbin on 127.0.0.1 for the length of a test session (``pip install httpbin``).

Use it from a pytest fixture::

    @pytest.fixture(scope="session")
    def httpbin_url() -> Iterator[str]:
        with run_httpbin() as url:
            yield url
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def run_httpbin(*, startup_timeout: float = 15.0) -> Iterator[str]:
    """Start ``python -m httpbin.core``, wait until it answers, yield its URL, stop it."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "httpbin.core", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if httpx.get(f"{url}/status/200", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"httpbin did not start on {url}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
