"""Several origins and redirects: whose gate a redirect target's throttle closes, what a
restricted call shows once redirected, and credentials on an https upgrade."""

from __future__ import annotations

import itertools

import httpx
import pytest
import trio
import trio.testing

from trestfly import TrioAPISession, errors

A = "https://api.example.test"
B = "https://cdn.other.test"


def redirected_429(
    retry_after: str, sent: list[str] | None = None, times: list[float] | None = None
) -> httpx.MockTransport:
    """A's /v1/file answers 302 to B's /blob, which answers 429 with ``retry_after``;
    anything else 200.  ``sent`` collects the URLs, ``times`` when each arrived."""

    def handler(request: httpx.Request) -> httpx.Response:
        if sent is not None:
            sent.append(str(request.url))
        if times is not None:
            times.append(trio.current_time())
        if request.url.host == "api.example.test" and request.url.path == "/v1/file":
            return httpx.Response(302, headers={"Location": f"{B}/blob"})
        if request.url.host == "cdn.other.test" and request.url.path == "/blob":
            return httpx.Response(429, headers={"Retry-After": retry_after})
        return httpx.Response(200, json={})

    return httpx.MockTransport(handler)


def on_a(transport: httpx.MockTransport) -> TrioAPISession:
    return TrioAPISession(url=f"{A}/v1", transport=transport, retries=0)


async def test_a_429_from_a_redirect_target_closes_the_target_origins_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A -> 302 -> B, B answers 429 Retry-After: 10: no request of the session goes to
    B before the instant (a direct call to B went out at once: B had no gate)."""
    sent: list[str] = []
    times: list[float] = []
    async with on_a(redirected_429("10", sent, times)) as api:
        start = trio.current_time()
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("file")
        await api.get(f"{B}/other")
    direct = [t for t, url in zip(times, sent, strict=True) if url == f"{B}/other"]
    assert direct and direct[0] - start >= 10, (sent, api.stats.origins)


async def test_a_429_from_a_redirect_target_is_not_attributed_to_the_first_origin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Same chain: A only answered the redirect, so its gate does not trip."""
    async with on_a(redirected_429("10")) as api:
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("file")
        origins = api.stats.origins
    assert origins[A].gate_trips == 0, origins


async def test_one_429_from_a_redirect_target_trips_one_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """B already has a gate (a direct call went there): one redirected 429, one gate
    trip (the headers hook closed B's, and the feedback closed A's too)."""
    async with on_a(redirected_429("10")) as api:
        await api.get(f"{B}/warm")
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("file")
        stats = api.stats
    assert stats.throttled == 1
    assert stats.gate_trips == 1, stats.origins


async def test_a_call_refused_at_a_gate_a_redirected_429_closed_quotes_that_429(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A redirected 429 from B announcing more than max_retry_after closes B's gate:
    other calls to B fail fast with the error of that 429 (not a bare TimeoutError)."""
    sent: list[str] = []
    async with on_a(redirected_429("1000", sent)) as api:
        await api.get(f"{B}/warm")
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("file")
        with pytest.raises(errors.TrestflyError) as refused:
            await api.get(f"{B}/warm")
    assert sent.count(f"{B}/warm") == 1
    assert isinstance(refused.value, errors.TooManyRequestsError), repr(refused.value)


async def test_a_restricted_paths_query_is_hidden_when_redirected() -> None:
    """login is restricted: its query is hidden whole.  Redirected with its query to a
    path not in the list, the error showed the final URL's query in clear."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/login":
            return httpx.Response(
                307, headers={"Location": f"/v2/signin?{request.url.query.decode()}"}
            )
        return httpx.Response(401, json={"error": "no"})

    async with TrioAPISession(
        url=f"{A}/v1", transport=httpx.MockTransport(handler), restricted_paths=["login"]
    ) as api:
        with pytest.raises(errors.UnauthorizedError) as caught:
            await api.get("login", params={"username": "alice", "tenant": "T-123"})
    assert "alice" not in str(caught.value), str(caught.value)


async def test_a_client_cookie_does_not_follow_a_redirect_to_another_origin() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.test":
            return httpx.Response(302, headers={"Location": f"{B}/blob"})
        seen.append(request.headers)
        return httpx.Response(200, json={})

    class API(TrioAPISession):
        async def _authenticate(self, **kwargs: object) -> None:
            self._session.cookies.set("sid", "SECRET-SID")
            self._session.headers["X-Api-Key"] = "SECRET-KEY"

    async with API(url=f"{A}/v1", transport=httpx.MockTransport(handler)) as api:
        await api.get("file", cookies={"c2": "SECRET2"}) if False else await api.get("file")
    assert "cookie" not in seen[0] and "x-api-key" not in seen[0], seen[0]


async def test_a_client_built_in_build_session_gets_trestflys_hooks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A client an override builds itself had no hooks: the session's follow_redirects
    # took its X-Api-Key to the redirect's host.  Its own hooks still run, first.
    seen: list[httpx.Request] = []
    own_hook: list[str] = []
    transport = redirected_429("30", sent=None)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return transport.handler(request)  # type: ignore[no-any-return]

    async def mine(request: httpx.Request) -> None:
        own_hook.append(str(request.url))

    class API(TrioAPISession):
        def _build_session(self, *args: object, **kwargs: object) -> None:
            self._session = httpx.AsyncClient(
                transport=httpx.MockTransport(handler),
                headers={"X-Api-Key": "SECRET-KEY"},
                event_hooks={"request": [mine]},
            )

    async with API(url=f"{A}/v1", retries=0) as api:
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("file")
        hooks = api._session.event_hooks
        assert hooks["request"][0] is mine and len(hooks["request"]) == 2
        assert len(hooks["response"]) == 1  # trestfly's: throttles seen as headers arrive
        assert not api.stats.origins[B].gate_open
    assert [str(r.url) for r in seen] == [f"{A}/v1/file", f"{B}/blob"]
    assert seen[0].headers["x-api-key"] == "SECRET-KEY"
    assert "x-api-key" not in seen[1].headers
    assert own_hook == [f"{A}/v1/file", f"{B}/blob"]


async def test_a_client_set_in_authenticate_gets_hooks_and_the_sdks_user_agent() -> None:
    # Rebuilt after a login, in _authenticate: the hooks were added only after
    # _build_session, so the X-Api-Key went to the redirect's host; and a client of
    # httpx's own defaults sent "python-httpx/..." instead of the SDK's User-Agent.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example.test":
            return httpx.Response(302, headers={"Location": f"{B}/blob"})
        return httpx.Response(200, json={})

    class API(TrioAPISession):
        _product = "Widgets"

        async def _authenticate(self, **kwargs: object) -> None:
            self._session = httpx.AsyncClient(
                transport=httpx.MockTransport(handler), headers={"X-Api-Key": "SECRET-KEY"}
            )

    async with API(url=f"{A}/v1") as api:
        await api.get("file")
    assert seen[0].headers["x-api-key"] == "SECRET-KEY"
    assert "x-api-key" not in seen[1].headers
    sdk = "Integration/1.0 (unknown; Widgets;"
    assert all(request.headers["user-agent"].startswith(sdk) for request in seen)


async def test_a_user_agent_set_on_the_client_after_it_is_set_is_kept() -> None:
    # RESTfly's pattern: the client set, then its headers updated.  The User-Agent was
    # chosen when the client was set (httpx's default then), and replaced per request.
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["user-agent"])
        return httpx.Response(200, json={})

    class API(TrioAPISession):
        def _build_session(self, *args: object, **kwargs: object) -> None:
            self._session = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            self._session.headers.update({"User-Agent": "MyAgent/1.0"})

    async with API(url=f"{A}/v1") as api:
        await api.get("x")
    assert seen == ["MyAgent/1.0"]


async def test_a_restricted_paths_query_is_hidden_in_a_decode_error_when_redirected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/login":
            return httpx.Response(
                307, headers={"Location": f"/v2/signin?{request.url.query.decode()}"}
            )
        return httpx.Response(
            200, content=b"{not json", headers={"Content-Type": "application/json"}
        )

    async with TrioAPISession(
        url=f"{A}/v1", transport=httpx.MockTransport(handler), restricted_paths=["login"]
    ) as api:
        with pytest.raises(errors.ResponseDecodeError) as caught:
            await api.get("login", params={"username": "alice"}, conv_json=True)
    assert "alice" not in str(caught.value), str(caught.value)


async def test_changing_url_once_open_moves_gate_and_credentials(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent: list[tuple[float, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((trio.current_time(), str(request.url)))
        if request.url.host == "api.example.test":
            return httpx.Response(429, headers={"Retry-After": "10"})
        return httpx.Response(200, json={})

    async with TrioAPISession(
        url=f"{A}/v1", transport=httpx.MockTransport(handler), retries=0
    ) as api:
        with pytest.raises(errors.TooManyRequestsError):
            await api.get("items")
        api._url = "https://eu.example.test"
        await api.get("items")
        origins = set(api.stats.origins)
    assert sent[-1] == (0.0, "https://eu.example.test/items")
    assert origins == {A, "https://eu.example.test"}


async def test_an_https_upgrade_on_an_ipv6_host_keeps_credentials() -> None:
    """The docs: an http to https move on the same host keeps them (as httpx keeps
    Authorization).  For an IPv6 literal host the key was dropped: the first origin is
    bracketed, the comparison is not."""
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return httpx.Response(301, headers={"Location": "https://[::1]/v1/file"})
        seen.append(request.headers)
        return httpx.Response(200, json={})

    class API(TrioAPISession):
        async def _authenticate(self, **kwargs: object) -> None:
            self._session.headers["X-Api-Key"] = "SECRET-KEY"

    async with API(url="http://[::1]/v1", transport=httpx.MockTransport(handler)) as api:
        await api.get("file")
    assert seen[0].get("x-api-key") == "SECRET-KEY", seen[0]


async def test_retries_of_a_call_redirected_to_a_429_wait_its_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A -> 302 -> B, B answers 429 Retry-After: 5 every time: each retry reaches B
    5 s after the answer before (they went in the same instant: the retry is admitted at
    A's gate, which B's delay does not close)."""
    sent: list[str] = []
    times: list[float] = []
    transport = redirected_429("5", sent, times)
    async with TrioAPISession(url=f"{A}/v1", transport=transport, retries=3) as api:
        with pytest.raises(errors.TooManyRequestsError) as caught:
            await api.get("file")
    at_b = [t for t, url in zip(times, sent, strict=True) if url == f"{B}/blob"]
    assert len(at_b) == 4, sent
    assert all(later - earlier >= 5 for earlier, later in itertools.pairwise(at_b))
    assert [record.delay for record in caught.value.history] == [5.0, 5.0, 5.0]
    assert api.stats.sleeps == 3
