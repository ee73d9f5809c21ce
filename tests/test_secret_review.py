"""Secrets a review found in messages, logs, redirects and configuration errors."""

from __future__ import annotations

import copy
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trestfly import CursorIterator, LinkIterator, TrioAPISession, crawl_many, errors
from trestfly._client import check_cert
from trestfly._origins import drop_credentials_off_origin
from trestfly._pages import PaginationError
from trestfly._proxies import check_proxies
from trestfly._redact import describe_attempt, is_restricted, is_secret_header
from trestfly._safe_url import is_secret_name, safe_url
from trestfly._urls import check_url

SECRET = "S3CR3T"


def describe(url: str, request_kwargs: dict[str, Any], **kw: Any) -> str:
    arguments: dict[str, Any] = {
        "method": "POST",
        "url": url,
        "attempt": 1,
        "request_kwargs": request_kwargs,
        "restricted_paths": frozenset(),
        "redact_fields": (),
        "redact_value": "REDACTED",
    }
    arguments.update(kw)
    return repr(describe_attempt(**arguments))


# ------------------------------------------------ paginators and restricted paths


class Search(TrioAPISession):
    _url = "http://api.test"
    _restricted_paths = ("search",)
    _retries = 0


def _link_pages(second: Callable[[], httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    link = f'<http://api.test/search?q={SECRET}&page=2>; rel="next"'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return second()
        return httpx.Response(200, json=[1], headers={"link": link})

    return handler


SECOND_PAGES: dict[str, Callable[[], httpx.Response]] = {
    "bad JSON": lambda: httpx.Response(
        200, headers={"content-type": "application/json"}, content=b"{bad"
    ),
    "HTML": lambda: httpx.Response(200, headers={"content-type": "text/html"}, content=b"<p>"),
    "304": lambda: httpx.Response(304),
    "the same link again": lambda: httpx.Response(
        200, json=[2], headers={"link": f'<http://api.test/search?q={SECRET}&page=2>; rel="next"'}
    ),
}


@pytest.mark.parametrize("second", SECOND_PAGES.values(), ids=list(SECOND_PAGES))
async def test_paginator_messages_hide_a_restricted_paths_query(
    second: Callable[[], httpx.Response], caplog: pytest.LogCaptureFixture
) -> None:
    # A direct call to the restricted path shows "search?REDACTED": so must a walk's
    # failed page, the crawl's WARNING about it and the iterator's repr.
    shown: list[str] = []
    async with Search(transport=httpx.MockTransport(_link_pages(second))) as api:
        it = LinkIterator(api, path="search", params={"q": SECRET})
        with caplog.at_level(logging.WARNING, logger="trestfly.crawl"):
            async with crawl_many({"s": it}, on_error="collect") as records:
                async for _ in records:
                    shown.append(repr(it))
            failure = records.errors["s"]
    assert isinstance(failure, errors.ResponseDecodeError | PaginationError)
    shown += [str(failure), repr(failure), repr(it), caplog.text]
    assert "search?REDACTED" in str(failure)
    assert not [text for text in shown if SECRET in text]


async def test_a_cursor_on_a_restricted_path_is_hidden_like_its_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The page's URL showed "export?REDACTED", and the cursor, a value of that query,
    # beside it in the repr, the loop error and the crawl's WARNING.
    class Export(CursorIterator):
        path = "export"
        limit = 2

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [1, 2], "next_cursor": SECRET})  # loops

    class Exports(TrioAPISession):
        _url = "http://api.test"
        _restricted_paths = ("export",)

    shown: list[str] = []
    async with Exports(transport=httpx.MockTransport(handler)) as api:
        it = Export(api)
        with caplog.at_level(logging.WARNING, logger="trestfly.crawl"):
            async with crawl_many({"e": it}, on_error="collect") as records:
                async for _ in records:
                    shown.append(repr(it))
            failure = records.errors["e"]
    assert isinstance(failure, PaginationError)
    shown += [str(failure), repr(it), caplog.text]
    assert len(shown) > 3 and not [text for text in shown if SECRET in text]


def test_a_url_given_where_the_session_belongs_is_not_quoted() -> None:
    # repr(api)[:40] quoted the URL, password and all.
    for given in (f"https://svc:{SECRET}@api.io/v1", f"https://api.io/?api_key={SECRET}"):
        with pytest.raises(errors.UnexpectedValueError, match=r"got a str$") as caught:
            LinkIterator(given, path="search")
        assert SECRET not in str(caught.value)


async def test_paginator_judges_a_path_as_joined_to_the_base_path() -> None:
    # The session restricts "v1/search"; the walk names "search" under base_path "v1".
    class Versioned(TrioAPISession):
        _url = "http://api.test"
        _base_path = "v1"
        _restricted_paths = ("v1/search",)
        _retries = 0

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<p>")

    async with Versioned(transport=httpx.MockTransport(handler)) as api:
        it = LinkIterator(api, path=f"search?q={SECRET}")
        assert SECRET not in repr(it)
        with pytest.raises(PaginationError) as caught:
            async for _ in it:
                pass
    assert "search?REDACTED" in str(caught.value)


# ------------------------------------------------------------ APIError's state


class Login(TrioAPISession):
    _url = "http://api.test"
    _restricted_paths = ("auth/login",)
    _retries = 0


async def _failed_call(path: str, **kw: Any) -> errors.APIError:
    transport = httpx.MockTransport(lambda request: httpx.Response(500, text="x"))
    async with Login(transport=transport) as api:
        with pytest.raises(errors.APIError) as caught:
            await api.post(path, **kw)
    return caught.value


@pytest.mark.parametrize(
    ("path", "kw"),
    [
        (f"items?MyKey={SECRET}", {"redact_fields": ["mykey"]}),
        (f"auth/login?mfa={SECRET}", {}),
    ],
)
async def test_api_error_keeps_no_unredacted_message(path: str, kw: dict[str, Any]) -> None:
    error = await _failed_call(path, **kw)
    state = {key: value for key, value in vars(error).items() if key != "response"}
    assert SECRET not in repr(state)
    for clone in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert SECRET not in repr({k: v for k, v in vars(clone).items() if k != "response"})
        assert str(clone) == str(error)


async def test_api_error_subclass_message_is_kept() -> None:
    # A subclass's own message is not rewritten with the session's URL.
    class Mine(errors.APIError):
        def __init__(self, response: httpx.Response, **kw: Any) -> None:
            super().__init__(response, **kw)
            self.msg = "mine"

    request = httpx.Request("GET", f"http://api.test/x?MyKey={SECRET}")
    error = Mine(httpx.Response(500, text="x", request=request))
    error._show_url("http://api.test/x?MyKey=REDACTED")
    assert str(error) == "mine"
    plain = errors.APIError(httpx.Response(500, text="x", request=request))
    plain._show_url("http://api.test/x?MyKey=REDACTED")
    assert "MyKey=REDACTED" in str(plain)


# --------------------------------------------------- restricted path spellings


@pytest.mark.parametrize(
    "path",
    [
        "auth/login;jsessionid=1",
        "auth/login/..;/",
        "auth/login%20",
        "auth/login%09",
        "auth/%6Cogin",
        "auth/login.json",
        "AUTH/LOGIN.XML",
    ],
)
def test_restricted_path_spellings(path: str) -> None:
    url = f"http://api.test/{path}?user=alice&mfa={SECRET}"
    assert is_restricted(url, {"auth/login"})
    text = describe(url, {"json": {"mfa": SECRET}}, restricted_paths=frozenset({"auth/login"}))
    assert SECRET not in text


async def test_restricted_path_spelling_in_an_error_message() -> None:
    error = await _failed_call(f"auth/login;jsessionid=1?mfa={SECRET}")
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    "path", ["auth/loginx", "auth/login/history", "auth/login.json/more", "auth/log.in"]
)
def test_restricted_path_other_paths_are_not_restricted(path: str) -> None:
    assert not is_restricted(f"http://api.test/{path}", {"auth/login"})


def test_restricted_path_naming_its_extension_matches_only_it() -> None:
    assert is_restricted("http://api.test/oauth/token.json", {"oauth/token.json"})
    assert not is_restricted("http://api.test/oauth/token.xml", {"oauth/token.json"})


# ------------------------------------------------------------ secret names


@pytest.mark.parametrize(
    "name",
    [
        "auth_key",
        "license_key",
        "pass",
        "pin",
        "sessionkey",
        "session_key",
        "device_code",
        "bearer",
    ],
)
def test_secret_names_in_urls_and_bodies(name: str) -> None:
    assert is_secret_name(name)
    assert SECRET not in safe_url(f"http://api.test/x?{name}={SECRET}&page=2")
    assert "page=2" in safe_url(f"http://api.test/x?{name}={SECRET}&page=2")
    text = describe("http://api.test/x", {"data": {name: SECRET}, "params": {name: SECRET}})
    assert SECRET not in text


@pytest.mark.parametrize("name", ["pins", "keys", "sort_key", "code", "country_code", "passes"])
def test_names_that_stay_visible(name: str) -> None:
    assert not is_secret_name(name)


def test_oauth_code_is_hidden_beside_its_grant_or_state_only() -> None:
    token_request = {"grant_type": "authorization_code", "code": SECRET, "client_id": "app"}
    assert SECRET not in describe("http://api.test/token", {"data": token_request})
    assert SECRET not in describe("http://api.test/token", {"params": token_request})
    assert SECRET not in safe_url(f"http://app.test/cb?code={SECRET}&state=xyz")
    assert SECRET not in safe_url(
        f"http://api.test/token?grant_type=authorization_code&code={SECRET}"
    )
    # Elsewhere a code is a country's, a currency's: shown.
    assert "code=FR" in safe_url("http://api.test/x?code=FR&page=2")
    assert "FR" in describe("http://api.test/x", {"json": {"code": "FR"}})


@pytest.mark.parametrize(
    "name", ["X-OTP", "X-Passcode", "X-Api-Key-V2", "X-Hub-Signature-256", "X-Pin", "X-Pass"]
)
def test_secret_headers_are_logged_redacted_and_dropped_off_origin(name: str) -> None:
    assert is_secret_header(name, ())
    assert SECRET not in describe("http://api.test/x", {"headers": {name: SECRET}})
    request = httpx.Request("GET", "http://evil.test/y", headers={name: SECRET})
    request.extensions["trestfly.first_url"] = httpx.URL("http://api.test/x")
    drop_credentials_off_origin(request)
    assert name not in request.headers


@pytest.mark.parametrize("name", ["x-otp", "x_api_key_v2", "api-key-2", "X-Passcode"])
def test_query_names_agree_with_header_names(name: str) -> None:
    # The header rule is the query rule and more: what it strips (an "X-" prefix, a
    # version) the query rule strips too.
    assert is_secret_name(name)
    assert is_secret_header(name, ())


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "X-Request-Id", "X-Page-2"])
def test_plain_headers_stay_visible(name: str) -> None:
    assert not is_secret_header(name, ())


@pytest.mark.parametrize(
    "query",
    [
        f"a=1;token={SECRET}",
        f"a=1;api_key={SECRET};b=2",
        f"a;key={SECRET}",
        f"token=abc;{SECRET}",
        f"a=1;token=x;{SECRET}=1",
        f"a; key={SECRET}",  # spaces around a name, in the name part
        f"a=1;state=xyz&code={SECRET}",  # an OAuth code's context in a ;-part
        f"a=1;state=xyz;code={SECRET}",
        f"grant_type=authorization_code;code={SECRET}",
    ],
)
def test_semicolon_separated_queries_are_redacted(query: str) -> None:
    shown = safe_url(f"http://api.test/items?{query}")
    assert SECRET not in shown
    assert shown.startswith("http://api.test/items?")
    assert SECRET not in describe(f"http://api.test/items?{query}", {})


def test_semicolons_in_harmless_values_are_kept() -> None:
    assert safe_url("http://api.test/items?fields=a;b;c") == "http://api.test/items?fields=a;b;c"


# --------------------------------------------------- configuration errors


def _refusal(action: Callable[[], object]) -> str:
    with pytest.raises(errors.UnexpectedValueError) as caught:
        action()
    return str(caught.value)


def test_proxies_key_holding_a_url_is_not_quoted() -> None:
    message = _refusal(lambda: check_proxies({f"http://user:{SECRET}@proxy:3128": "http://p:1"}))
    assert SECRET not in message
    assert "keys must be" in message
    assert "'ftp'" in _refusal(lambda: check_proxies({"ftp": "http://proxy:3128"}))


def test_cert_password_in_the_key_files_place_is_not_quoted(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("x")
    message = _refusal(lambda: check_cert((str(pem), f"{SECRET}certpw")))
    assert SECRET not in message
    assert "cert[1]" in message
    # The certificate's own path, first and never a password, is still quoted.
    assert "missing.pem" in _refusal(lambda: check_cert((str(tmp_path / "missing.pem"), str(pem))))


def test_url_whose_password_reads_as_a_port_is_not_quoted() -> None:
    message = _refusal(lambda: check_url("http://user:98765432/x@api.test"))
    assert "98765432" not in message
    assert "port" in message
    # A port that is one is still quoted.
    assert "port 70000" in _refusal(lambda: check_url("http://alice:pw@127.0.0.1:70000"))
    assert "port 70000" in _refusal(lambda: check_url("http://127.0.0.1:70000"))


@pytest.mark.parametrize(
    "value", [f"auth/login?otp={SECRET}", [f"auth/login?otp={SECRET}".encode()]]
)
def test_restricted_paths_values_are_not_quoted(value: Any) -> None:
    message = _refusal(lambda: Search(restricted_paths=value))
    assert SECRET not in message
    assert "restricted_paths" in message


async def test_walk_without_secrets_still_shows_its_url() -> None:
    # Nothing to hide: the message names the page as before.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<p>")

    async with Search(transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(PaginationError, match=r"items\?page=1"):
            async for _ in LinkIterator(api, path="items?page=1"):
                pass
    await trio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    "name",
    ["x-" * 1000 + "a", "a" + "-1" * 1000, "X-" * 1000 + "OTP"],
    ids=["x- prefixes", "-1 suffixes", "X- prefixes"],
)
def test_a_server_made_name_of_many_wrappings_is_judged_without_recursion(name: str) -> None:
    # Each x- prefix or -1 suffix was stripped by a recursive call: RecursionError, out
    # of safe_url for a redirect's query.
    assert not is_secret_name(name)
    assert safe_url(f"http://api.test/x?{name}=1").startswith("http://api.test/x?")
    assert is_secret_name("X-OTP") and is_secret_name("x-api-key-v2")


@pytest.mark.parametrize(
    "url",
    [f"https://admin:2024/{SECRET}@api.example.com", httpx.URL("https://api.test"), b"x", 5],
    ids=["password with a slash", "httpx.URL", "bytes", "int"],
)
def test_a_session_whose_init_failed_has_a_safe_repr(url: object) -> None:
    # A traceback formatting its locals reprs the half-built session: the refused URL
    # was kept and shown whole (its password read as a path), and an httpx.URL or bytes
    # made the repr itself raise AttributeError or TypeError.
    session = TrioAPISession.__new__(TrioAPISession)
    with pytest.raises(errors.UnexpectedValueError):
        session.__init__(url=url)  # type: ignore[misc]
    shown = repr(session)
    assert shown.startswith("<TrioAPISession url=None") and SECRET not in shown
