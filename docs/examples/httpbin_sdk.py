"""An example SDK for the httpbin API, written with trestfly.

httpbin (https://httpbin.org, or ``pip install httpbin`` to run it locally) is an HTTP
request-and-response service: it echoes what it is sent, answers any status code, checks
credentials and serves byte ranges.  That makes it a stand-in for a real vendor API on
which every part of an SDK can be shown and tested:

* :class:`HttpbinAPI`, the session: base URL from the user, User-Agent identity, a bearer
  token from a constructor keyword, a check of every 2xx answer;
* three endpoint groups grafted onto it: ``api.anything``, ``api.status`` and ``api.auth``;
* :class:`ByteRangeIterator`, a paginated collection walked with HTTP range requests.

Usage::

    import trio
    from httpbin_sdk import HttpbinAPI

    async def main() -> None:
        async with HttpbinAPI("https://httpbin.org", token="s3cr3t") as api:
            echo = await api.anything.echo("hello", params={"q": 1})
            print(echo.method, echo.args.q)
            print(await api.auth.bearer())
            print("".join([letter async for letter in api.letters(26, page_size=10)]))

    trio.run(main)
"""

from __future__ import annotations

import sys
from typing import Any, Unpack

import httpx
import trio
from box import Box

from trestfly import (
    APIEndpoint,
    APIIterator,
    RequestOptions,
    SessionOptions,
    TrioAPISession,
    errors,
)

__all__ = [
    "AnythingAPI",
    "AuthAPI",
    "ByteRangeIterator",
    "ErrorDocumentError",
    "HttpbinAPI",
    "StatusAPI",
    "demo",
]


class ErrorDocumentError(errors.APIError):
    """A 2xx answer whose body is an error document (``{"error": ...}``)."""


# ----------------------------------------------------------------------------- endpoints


class AnythingAPI(APIEndpoint):
    """``/anything``: httpbin echoes the request (method, args, headers, body)."""

    _path = "anything"
    _box = True  # every call of this endpoint returns a Box unless it says otherwise

    async def echo(self, path: str | None = None, **kwargs: Unpack[RequestOptions]) -> Box:
        """GET ``/anything[/path]``; returns the echoed request.

        Args:
            path: an optional sub-path (``echo("a/b")`` requests ``/anything/a/b``).
            kwargs: request keywords (``params=``, ``headers=``, trestfly options).
        """
        result: Box = await self._get(path, **kwargs)
        return result

    async def send(
        self, method: str, path: str | None = None, **kwargs: Unpack[RequestOptions]
    ) -> Box:
        """Send ``method`` to ``/anything[/path]`` (``json=``, ``data=``...); returns the echo."""
        result: Box = await self._req(method.upper(), path, **kwargs)
        return result


class StatusAPI(APIEndpoint):
    """``/status/<code>``: httpbin answers with the status code asked for."""

    _path = "status"

    async def check(self, code: int, **kwargs: Unpack[RequestOptions]) -> int:
        """Ask for ``code``; returns it when it is 2xx, else raises the mapped error.

        A 429, 502, 503 or 504 is retried first (the session's ``retries``), as any
        call's would be.

        Raises:
            trestfly.errors.APIError: the subclass mapped to ``code``
                (``NotFoundError`` for 404, ``TooManyRequestsError`` for 429, ...).
        """
        response: httpx.Response = await self._get(str(code), **kwargs)
        return response.status_code


class AuthAPI(APIEndpoint):
    """httpbin's authentication checks: ``/bearer`` and ``/basic-auth/<user>/<passwd>``."""

    async def bearer(self) -> Box:
        """Check the session's bearer token: ``{"authenticated": True, "token": ...}``.

        Raises:
            trestfly.errors.UnauthorizedError: the session has no token.
        """
        result: Box = await self._get("bearer", box=True)
        return result

    async def basic(
        self, username: str, password: str, *, account: tuple[str, str] = ("u", "p")
    ) -> Box:
        """Send HTTP Basic credentials to ``/basic-auth/<user>/<passwd>`` of ``account``.

        httpbin accepts the credentials only when they are the account's, so
        ``basic("u", "p")`` succeeds and ``basic("u", "wrong")`` fails.

        Raises:
            trestfly.errors.UnauthorizedError: the credentials are not the account's.
        """
        user, passwd = account
        result: Box = await self._get(
            f"basic-auth/{user}/{passwd}", auth=httpx.BasicAuth(username, password), box=True
        )
        return result


# ------------------------------------------------------------------------------ iterator


class ByteRangeIterator(APIIterator):
    """Walk the bytes of ``/range/<size>`` one page (an HTTP range request) at a time.

    httpbin serves ``size`` predictable bytes (``abc...xyzabc...``) and honours the
    ``Range`` header: each page asks for the next ``page_size`` bytes and gets a
    ``206 Partial Content`` whose ``Content-Range: bytes 0-9/26`` also says how many bytes
    there are in all, which becomes ``total`` and ends the walk.  Each record is one
    character.

    Keywords (declared below, so the constructor accepts them): ``size``, ``page_size``,
    and the base class's ``max_items``, ``max_pages`` and ``total``.
    """

    size: int = 0
    page_size: int = 10
    offset: int = 0

    async def _get_page(self) -> None:
        last = min(self.offset + self.page_size, self.size) - 1
        if last < self.offset:  # nothing left to ask for
            self.page = []
            return
        response: httpx.Response = await self._api.get(
            f"range/{self.size}", headers={"Range": f"bytes={self.offset}-{last}"}
        )
        # "bytes 0-9/26": the part after the slash is the total size.
        self.total = int(response.headers["content-range"].rsplit("/", 1)[1])
        self.page = list(response.content.decode("ascii"))
        self.offset += len(self.page)


# ------------------------------------------------------------------------------- session


class HttpbinAPI(TrioAPISession):
    """A client of one httpbin server.

    Args:
        url: the server's base URL, e.g. ``"https://httpbin.org"`` or a local one.
        token: a bearer token sent with every request (optional).
        kwargs: any :class:`~trestfly.TrioAPISession` keyword (``retries=``,
            ``backoff=``, ``max_concurrency=``, ...).

    Use it as an async context manager: the token is set on entering, the connections
    are closed on leaving.
    """

    _vendor = "Example Corp"
    _product = "httpbin-sdk"
    _build = "1.0.0"
    _lib_name = "httpbin-sdk"
    _lib_version = "1.0.0"
    _timeout = 10.0
    # Misspelt keywords (``tokn=...``) raise instead of being silently ignored.
    _error_on_unexpected_input = True

    # The session's keywords pass through typed (SessionOptions); the hook's is named.
    def __init__(
        self, url: str, *, token: str | None = None, **kwargs: Unpack[SessionOptions]
    ) -> None:
        super().__init__(url=url, token=token, **kwargs)

    async def _authenticate(self, token: str | None = None) -> None:
        """Set the bearer token on the session's client (awaited on entering)."""
        if token is not None:
            self._session.headers["Authorization"] = f"Bearer {token}"

    async def _resp_error_check(self, response: httpx.Response, **kwargs: Any) -> httpx.Response:
        """Reject a 2xx answer that is an error document.

        httpbin echoes a posted JSON body under ``"json"``; an echo of ``{"error": ...}``
        stands here for the APIs that answer ``200 OK`` with an error in the body.
        """
        # A HEAD answer (or any empty one) has the JSON content type and no body.
        if response.content and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            body = response.json()
            echoed = body.get("json") if isinstance(body, dict) else None
            if isinstance(echoed, dict) and "error" in echoed:
                raise ErrorDocumentError(response)
        return response

    @property
    def anything(self) -> AnythingAPI:
        """The ``/anything`` echo endpoint."""
        return AnythingAPI(self)

    @property
    def status(self) -> StatusAPI:
        """The ``/status/<code>`` endpoint."""
        return StatusAPI(self)

    @property
    def auth(self) -> AuthAPI:
        """The authentication checks."""
        return AuthAPI(self)

    def letters(self, size: int, *, page_size: int = 10, **kwargs: Any) -> ByteRangeIterator:
        """Iterate over the ``size`` characters of ``/range/<size>``, ``page_size`` a page.

        Keywords of :class:`ByteRangeIterator` (``max_items=``, ``max_pages=``) pass through.
        """
        return ByteRangeIterator(self, size=size, page_size=page_size, **kwargs)


# ---------------------------------------------------------------------------------- demo


async def demo(url: str) -> None:
    """One call of each kind, printed: what the tutorial runs."""
    async with HttpbinAPI(url, token="s3cr3t-token") as api:
        echo = await api.anything.echo("hello", params={"lang": "en"})
        print("echo:", echo.method, echo.url)
        print("bearer:", (await api.auth.bearer()).to_dict())
        print("basic:", (await api.auth.basic("u", "p")).to_dict())
        try:
            await api.auth.basic("u", "wrong")
        except errors.UnauthorizedError as exc:
            print("wrong password:", type(exc).__name__, exc.code)
        letters = [letter async for letter in api.letters(26, page_size=10)]
        print("letters:", "".join(letters))
        codes = await api.map(api.status.check, [200, 201, 202, 204], limit=2)
        print("fan-out:", codes)
        print("attempts:", api.stats.attempts, "retries:", api.stats.retries)


if __name__ == "__main__":
    trio.run(demo, sys.argv[1] if len(sys.argv) > 1 else "https://httpbin.org")
