"""Shared fixtures: the scriptable Trio test server and a session-wide httpbin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from servers import TrioTestServer, open_trio_server, run_httpbin


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
