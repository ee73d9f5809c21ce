"""Shared fixtures: the scriptable Trio test server, httpbin and a private Redis."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings
from servers import TrioTestServer, open_trio_server, run_httpbin

from benchmarks.redis_server import RedisServer, running_redis

# No per-example wall-clock deadline: timing belongs to the benchmarks, and a loaded
# machine (CI on 2 cores) made Hypothesis fail examples that were merely slow.
settings.register_profile("trestfly", deadline=None)
settings.load_profile("trestfly")

#: Proxy variables httpx (and the session, which honours them) would route loopback
#: traffic through: the tests talk to 127.0.0.1 servers directly.
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    """Base URL (no trailing slash) of httpbin, started once per test session."""
    with run_httpbin() as url:
        yield url


@pytest.fixture
async def trio_server() -> AsyncIterator[TrioTestServer]:
    """A fresh scriptable server in this test's Trio run; closed after the test.

    Script it through ``trio_server.app``; inspect ``trio_server.requests``.
    """
    async with open_trio_server() as server:
        yield server
    # A handler that raised was answered with a 500, which the client under test may
    # have retried past; fail here so the test bug is not hidden.
    if server.handler_errors:
        raise server.handler_errors[0]


def _require_redis_server() -> None:
    """Skip (or fail, under CI) when redis-server is missing.

    A fresh machine with only Python and pip has no redis-server, and the README's test
    command must still pass there; ``.ci/run`` installs it (Debian's package) and sets
    TRESTFLY_REQUIRE_REDIS=1 so that the Redis tests can never be skipped in CI.
    """
    if shutil.which("redis-server") is not None:
        return
    message = "redis-server is not installed (apt-get install redis-server); .ci/run installs it"
    if os.environ.get("TRESTFLY_REQUIRE_REDIS"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on 127.0.0.1 (random port), shared by the session's tests."""
    _require_redis_server()
    with running_redis() as server:
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test alone (it may stop and restart it)."""
    _require_redis_server()
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_server_installed() -> None:
    """For tests of the launcher itself: redis-server must exist (skipped, or failed in CI)."""
    _require_redis_server()
