"""Walks with a filter in the path, a 304 page, a URL changed at login, a client's
default params, and a next link to another origin that throttles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trestfly import BudgetSettings, TrioAPISession, crawl_many
from trestfly._pages import PaginationError
from trestfly._paginators import CursorIterator, LinkIterator, OffsetIterator


class API(TrioAPISession):
    _url = "https://api.example.com"
    _retries = 3
    _backoff = 0.01
    _timeout = 5.0
    _adaptive = False
    _retry_budget = BudgetSettings(enabled=False)


def _json(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers or {})


# ---------------------------------------------------------------- path queries


class Active(OffsetIterator):
    path = "items?status=active&sort=id"
    limit = 10


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_offset_path_filter_every_page(prefetch: int | None) -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        seen.append(str(request.url))
        assert q["status"] == "active" and q["sort"] == "id"
        off, lim = int(q["offset"]), int(q["limit"])
        ids = list(range(off, min(off + lim, 35)))
        return _json({"items": [{"id": i} for i in ids], "total": 35})

    async with API(transport=httpx.MockTransport(handler)) as api:
        it = Active(api, params={"region": "eu"})
        got = []
        with trio.fail_after(10):
            if prefetch is None:
                got = [r["id"] async for r in it]
            else:
                async with it.crawl(prefetch=prefetch) as recs:
                    got = [r["id"] async for r in recs]
    assert got == list(range(35))
    assert len(seen) == 4


# ---------------------------------------------------------------- 304 on a page


class Links(LinkIterator):
    path = "issues"


async def test_link_page_answered_304_is_not_a_silent_end() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page", "1")
        if page == "1":
            return _json(
                [{"id": 1}, {"id": 2}],
                {"Link": '<https://api.example.com/issues?page=2>; rel="next"'},
            )
        # A cache or server answering 304 (with its representation's headers).
        return httpx.Response(304, headers={"Content-Type": "application/json", "ETag": '"x"'})

    async with API(transport=httpx.MockTransport(handler)) as api:
        it = Links(api)
        got = []
        with trio.fail_after(10):
            with pytest.raises(PaginationError, match="304 Not Modified"):
                async for r in it:
                    got.append(r["id"])
        assert got == [1, 2]
        assert not it.position.done


async def test_cursor_page_answered_304_message() -> None:
    class C(CursorIterator):
        path = "c"

    def handler(request: httpx.Request) -> httpx.Response:
        if "cursor" not in request.url.params:
            return _json({"items": [{"id": 1}], "next_cursor": "abc"})
        return httpx.Response(304, headers={"Content-Type": "application/json"})

    async with API(transport=httpx.MockTransport(handler)) as api:
        it = C(api)
        with trio.fail_after(10):
            with pytest.raises(PaginationError, match="304 Not Modified"):
                async for _ in it:
                    pass
        assert not it.position.done


# ---------------------------------------------------------------- _url changed once open


def three_regional_pages(request: httpx.Request) -> httpx.Response:
    """Three pages linked by next links, all on the regional host."""
    assert request.url.host == "eu.example.com"
    page = int(request.url.params.get("page", "1"))
    headers = {}
    if page < 3:
        headers["Link"] = f'<https://eu.example.com/issues?page={page + 1}>; rel="next"'
    return _json([{"id": page}], headers)


async def test_link_walk_after_url_changed_once_open() -> None:
    async with API(transport=httpx.MockTransport(three_regional_pages)) as api:
        it = Links(api)  # made before the login below
        api._url = "https://eu.example.com"  # the account's regional URL, read at login
        got = []
        with trio.fail_after(10):
            async for r in it:
                got.append(r["id"])
    assert got == [1, 2, 3]


async def test_link_walk_iterator_built_before_open_url_changed_at_login() -> None:
    api = API(transport=httpx.MockTransport(three_regional_pages))
    sources = {"a": Links(api)}
    async with api:
        api._url = "https://eu.example.com"
        got = []
        with trio.fail_after(10):
            async with crawl_many(sources) as recs:
                async for _, r in recs:
                    got.append(r["id"])
    assert got == [1, 2, 3]


# ---------------------------------------------------------------- client-level params


async def test_link_next_query_kept_with_client_params() -> None:
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        page = int(request.url.params.get("page", "1"))
        headers = {}
        if page < 3:
            headers["Link"] = (
                f'<https://api.example.com/issues?page={page + 1}&api_key=K>; rel="next"'
            )
        return _json([{"id": page}], headers)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), params={"api_key": "K"})
    async with client, API(session=client) as api:
        got = []
        with trio.fail_after(10):
            async for r in Links(api):
                got.append(r["id"])
                assert got == sorted(set(got)), sent  # no record twice
                assert len(got) < 10
    assert got == [1, 2, 3], sent


# ---------------------------------------------------------------- 429 on another origin


async def test_cross_origin_next_link_429_closes_its_own_gate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    answered = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.com":
            if "page" in request.url.params:
                return _json([{"id": 9}])
            return _json([{"id": 1}], {"Link": '<https://cdn.example.com/issues?p=2>; rel="next"'})
        answered["n"] += 1
        if answered["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "30"})
        return _json([{"id": 2}])

    async with API(transport=httpx.MockTransport(handler)) as api:
        got = []
        with trio.fail_after(100):
            async for r in Links(api, allow_cross_origin=True):
                got.append(r["id"])
        start = trio.current_time()
        await api.get("issues", params={"page": 1})
        home_wait = trio.current_time() - start
        stats = api.stats
    assert got == [1, 2]
    assert home_wait < 1
    assert stats.origins[next(k for k in stats.origins if "cdn" in k)].gate_trips == 1
    assert stats.origins[next(k for k in stats.origins if "api." in k)].gate_trips == 0
