"""The documentation's examples, run: the httpbin SDK and the token-refresh client.

``docs/examples/httpbin_sdk.py`` is exercised end to end against the local httpbin
(fixture ``httpbin_url``): every endpoint, the iterator, authentication that succeeds and
fails.  The respx-based tests below are also the code the "Testing your SDK" guide shows
(it includes them by name), so the guide cannot drift from what works.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import trio

from trestfly import errors

# The examples live with the documentation, not in a package: import them from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "examples"))

from httpbin_sdk import ErrorDocumentError, HttpbinAPI, demo
from local_httpbin import run_httpbin
from token_refresh import TokenAPI

# Every test must finish quickly; a hang is a failure, not a wait.
LIMIT = 10.0


def fast(url: str, **kwargs: Any) -> HttpbinAPI:
    """The example SDK with a backoff short enough for retried statuses."""
    return HttpbinAPI(url, backoff=0.01, **kwargs)


# ------------------------------------------------------------------ the session


async def test_user_agent_names_the_sdk(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            echo = await api.anything.echo()
    agent = echo.headers["User-Agent"]
    assert agent.startswith("Integration/1.0 (Example Corp; httpbin-sdk; Build/1.0.0) ")
    assert " httpbin-sdk/1.0.0 (Trestfly/" in agent


def test_a_misspelt_keyword_is_refused(httpbin_url: str) -> None:
    with pytest.raises(errors.UnexpectedValueError, match="tokn"):
        HttpbinAPI(httpbin_url, tokn="s3cr3t")


async def test_the_url_comes_from_the_user(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            echo = await api.anything.echo("where")
    assert echo.url == f"{httpbin_url}/anything/where"


# ------------------------------------------------------------------ api.anything


async def test_anything_echo_sends_params_and_headers(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            echo = await api.anything.echo(
                "a/b", params={"q": "search", "page": 2}, headers={"X-Trace": "t-1"}
            )
    assert echo.method == "GET"
    assert echo.url == f"{httpbin_url}/anything/a/b?q=search&page=2"
    assert echo.args.to_dict() == {"q": "search", "page": "2"}
    assert echo.headers["X-Trace"] == "t-1"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
async def test_anything_send_echoes_every_method_and_body(httpbin_url: str, method: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            echo = await api.anything.send(method, "items", json={"name": "widget", "n": 1})
    assert echo.method == method.upper()
    assert echo.json.to_dict() == {"name": "widget", "n": 1}
    assert echo.url == f"{httpbin_url}/anything/items"


async def test_an_error_document_in_a_200_is_rejected_and_not_retried(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            with pytest.raises(ErrorDocumentError) as caught:
                await api.anything.send("post", json={"error": "out of widgets"})
            ok = await api.anything.send("post", json={"fine": True})
            stats = api.stats
    assert caught.value.code == 200
    assert caught.value.retries == 0
    assert isinstance(caught.value, errors.APIError)
    assert ok.json.fine is True
    assert stats.attempts == 2 and stats.retries == 0


# ------------------------------------------------------------------ api.status


@pytest.mark.parametrize("code", [200, 201, 202, 204])
async def test_status_check_returns_a_2xx(httpbin_url: str, code: int) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            assert await api.status.check(code) == code


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, errors.BadRequestError),
        (404, errors.NotFoundError),
        (418, errors.TeapotResponseError),
        (500, errors.ServerError),
        (501, errors.MethodNotImplementedError),
    ],
)
async def test_status_check_raises_the_mapped_error_without_retrying(
    httpbin_url: str, code: int, error: type[errors.APIError]
) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            with pytest.raises(error) as caught:
                await api.status.check(code)
            attempts = api.stats.attempts
    assert caught.value.code == code
    assert caught.value.retries == 0
    assert attempts == 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (429, errors.TooManyRequestsError),
        (502, errors.BadGatewayError),
        (503, errors.ServiceUnavailableError),
        (504, errors.GatewayTimeoutError),
    ],
)
async def test_status_check_retries_the_default_statuses(
    httpbin_url: str, code: int, error: type[errors.APIError]
) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url, retries=2) as api:
            with pytest.raises(error) as caught:
                await api.status.check(code)
            stats = api.stats
    assert caught.value.retries == 2
    assert [record.status for record in caught.value.history] == [code, code]
    assert stats.attempts == 3 and stats.retries == 2 and stats.failures == 1
    assert stats.by_status == {code: 3}


# ------------------------------------------------------------------ api.auth


async def test_bearer_token_from_the_keyword_is_accepted(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url, token="s3cr3t-token") as api:
            answer = await api.auth.bearer()
    assert answer.to_dict() == {"authenticated": True, "token": "s3cr3t-token"}


async def test_no_token_is_unauthorized(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            with pytest.raises(errors.UnauthorizedError) as caught:
                await api.auth.bearer()
    assert caught.value.code == 401
    assert caught.value.retries == 0
    assert caught.value.response.headers["www-authenticate"] == "Bearer"


async def test_basic_auth_with_the_right_password(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            answer = await api.auth.basic("u", "p")
            other = await api.auth.basic("ann", "pw", account=("ann", "pw"))
    assert answer.to_dict() == {"authenticated": True, "user": "u"}
    assert other.user == "ann"


@pytest.mark.parametrize(("user", "password"), [("u", "wrong"), ("someone", "p"), ("", "")])
async def test_basic_auth_with_wrong_credentials_is_unauthorized(
    httpbin_url: str, user: str, password: str
) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            with pytest.raises(errors.UnauthorizedError) as caught:
                await api.auth.basic(user, password)
    assert caught.value.code == 401


async def test_the_bearer_token_goes_with_every_request(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url, token="tok") as api:
            echo = await api.anything.echo()
    assert echo.headers["Authorization"] == "Bearer tok"


async def test_a_head_request_passes_the_error_document_check(httpbin_url: str) -> None:
    # The check read the empty body of a HEAD answer as JSON: a bare JSONDecodeError.
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            response = await api.head("json")
    assert response.status_code == 200 and response.content == b""


# ------------------------------------------------------------------ the iterator


async def test_letters_walk_every_page(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            letters = api.letters(26, page_size=10)
            text = "".join([letter async for letter in letters])
    assert text == "abcdefghijklmnopqrstuvwxyz"
    assert letters.num_pages == 3  # 10 + 10 + 6: the server's total ends the walk
    assert letters.total == 26
    assert letters.count == 26


async def test_letters_wrap_after_z_and_use_partial_content(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            text = "".join([letter async for letter in api.letters(30, page_size=7)])
            stats = api.stats
    assert text == "abcdefghijklmnopqrstuvwxyzabcd"
    assert stats.by_status == {206: 5}


async def test_one_page_holds_everything(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            letters = api.letters(5, page_size=100)
            text = "".join([letter async for letter in letters])
            stats = api.stats
    assert text == "abcde"
    assert letters.num_pages == 1
    assert stats.by_status == {200: 1}  # the whole range: 200, not 206


@pytest.mark.parametrize(
    ("limits", "expected", "pages"),
    [
        ({"max_items": 12}, "abcdefghijkl", 3),
        ({"max_pages": 2}, "abcdefghij", 2),
        ({"max_items": 0}, "", 0),
        ({"max_pages": 0}, "", 0),
    ],
)
async def test_letters_stop_at_the_limits(
    httpbin_url: str, limits: dict[str, int], expected: str, pages: int
) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            letters = api.letters(26, page_size=5, **limits)
            text = "".join([letter async for letter in letters])
    assert text == expected
    assert letters.num_pages == pages


async def test_an_empty_collection_sends_nothing(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url) as api:
            text = "".join([letter async for letter in api.letters(0)])
            attempts = api.stats.attempts
    assert text == ""
    assert attempts == 0


# ------------------------------------------------------------------ fan-out and the demo


async def test_map_fans_out_over_the_endpoints(httpbin_url: str) -> None:
    with trio.fail_after(LIMIT):
        async with fast(httpbin_url, max_concurrency=4) as api:
            codes = await api.map(api.status.check, [200, 201, 202, 204] * 5)
            seen = set()
            async with api.map_as_completed(api.anything.echo, ["a", "b", "c"]) as results:
                async for path, echo in results:
                    seen.add((path, echo.url.rsplit("/", 1)[1]))
    assert codes == [200, 201, 202, 204] * 5
    assert seen == {("a", "a"), ("b", "b"), ("c", "c")}


async def test_the_tutorial_demo_runs(httpbin_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(LIMIT):
        await demo(httpbin_url)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"echo: GET {httpbin_url}/anything/hello?lang=en",
        "bearer: {'authenticated': True, 'token': 's3cr3t-token'}",
        "basic: {'authenticated': True, 'user': 'u'}",
        "wrong password: UnauthorizedError 401",
        "letters: abcdefghijklmnopqrstuvwxyz",
        "fan-out: [200, 201, 202, 204]",
        "attempts: 11 retries: 0",
    ]


# ------------------------------------------------------------------ testing with respx
# The "Testing your SDK" guide includes the tests below by name.

FAKE = "http://httpbin.test"


async def test_respx_a_429_is_retried_after_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock(base_url=FAKE, assert_all_called=True) as mock:
        route = mock.get("/status/200").mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200)]
        )
        async with HttpbinAPI(FAKE) as api:
            start = trio.current_time()
            assert await api.status.check(200) == 200
            waited = trio.current_time() - start
    assert route.call_count == 2
    assert waited >= 2  # never before the instant the server named (MockClock: no real wait)


async def test_respx_the_iterator_reads_the_total_from_content_range() -> None:
    pages = {
        "bytes=0-2": httpx.Response(206, content=b"abc", headers={"Content-Range": "bytes 0-2/5"}),
        "bytes=3-4": httpx.Response(206, content=b"de", headers={"Content-Range": "bytes 3-4/5"}),
    }
    with respx.mock(base_url=FAKE, assert_all_called=True) as mock:
        route = mock.get("/range/5").mock(side_effect=lambda r: pages[r.headers["range"]])
        async with HttpbinAPI(FAKE) as api:
            letters = [letter async for letter in api.letters(5, page_size=3)]
    assert letters == ["a", "b", "c", "d", "e"]
    assert route.call_count == 2


async def test_respx_the_token_is_sent() -> None:
    with respx.mock(base_url=FAKE) as mock:
        route = mock.get("/bearer").respond(200, json={"authenticated": True, "token": "t"})
        async with HttpbinAPI(FAKE, token="t") as api:
            await api.auth.bearer()
    assert route.calls.last.request.headers["authorization"] == "Bearer t"


async def test_mock_transport_answers_in_process() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/bearer":
            token = request.headers["authorization"].removeprefix("Bearer ")
            return httpx.Response(200, json={"authenticated": True, "token": token})
        return httpx.Response(404)

    transport = httpx.MockTransport(answer)
    async with HttpbinAPI(FAKE, token="t", transport=transport) as api:
        assert (await api.auth.bearer()).token == "t"
        with pytest.raises(errors.NotFoundError):
            await api.status.check(200)


# ------------------------------------------------------------------ a local server


@pytest.fixture(scope="module")
def local_httpbin() -> Iterator[str]:
    with run_httpbin() as url:
        yield url


async def test_against_a_local_httpbin(local_httpbin: str) -> None:
    with trio.fail_after(LIMIT):
        async with HttpbinAPI(local_httpbin, token="t") as api:
            assert (await api.auth.bearer()).token == "t"
            assert await api.status.check(204) == 204


# ------------------------------------------------------------------ token refresh

API = "https://api.example.test"


def token_server(mock: respx.MockRouter, *, expired: set[str]) -> dict[str, Any]:
    """Script the fictitious API of ``token_refresh.py``; returns what it saw."""
    seen: dict[str, Any] = {"logins": 0, "logouts": 0, "me": []}

    def login(request: httpx.Request) -> httpx.Response:
        if b"client_secret=right" not in request.content:
            return httpx.Response(401, json={"error": "bad credentials"})
        seen["logins"] += 1
        return httpx.Response(200, json={"access_token": f"t{seen['logins']}"})

    def logout(request: httpx.Request) -> httpx.Response:
        seen["logouts"] += 1
        return httpx.Response(204)

    def me(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        seen["me"].append(token)
        if token in expired:
            return httpx.Response(401)
        return httpx.Response(200, json={"user": "ann"})

    mock.post(f"{API}/v1/oauth/token").mock(side_effect=login)
    mock.delete(f"{API}/v1/oauth/token").mock(side_effect=logout)
    mock.get(f"{API}/v1/me").mock(side_effect=me)
    return seen


async def test_token_refresh_logs_in_and_out(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        seen = token_server(mock, expired=set())
        async with TokenAPI(url=API, client_id="app", client_secret="right") as api:
            assert await api.me() == {"user": "ann"}
    assert seen == {"logins": 1, "logouts": 1, "me": ["t1"]}


async def test_an_expired_token_is_refreshed_once_for_many_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with respx.mock as mock:
        seen = token_server(mock, expired={"t1"})
        async with TokenAPI(url=API, client_id="app", client_secret="right") as api:
            # More tasks than the default retry budget's 10 tokens: each 401's retry
            # spends one, and with the default budget 40 of these 50 failed.
            answers = await api.map(lambda _: api.me(), range(50))
    assert answers == [{"user": "ann"}] * 50
    assert seen["logins"] == 2  # the first login, then one refresh for all fifty tasks
    assert sorted(seen["me"]) == ["t1"] * 50 + ["t2"] * 50


async def test_wrong_credentials_fail_on_entering(autojump_clock: trio.testing.MockClock) -> None:
    with respx.mock as mock:
        seen = token_server(mock, expired=set())
        with pytest.raises(errors.UnauthorizedError) as caught:
            async with TokenAPI(url=API, client_id="app", client_secret="wrong"):
                pytest.fail("the body must not run")  # pragma: no cover
    assert caught.value.code == 401
    assert seen == {"logins": 0, "logouts": 0, "me": []}
