"""Walks with a filter in the path, a 304 page, a URL changed at login, a client's
default params, and a next link to another origin that throttles."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trestfly import BudgetSettings, TrioAPISession, crawl_many
from trestfly._pages import PaginationError
from trestfly._paginators import (
    CursorIterator,
    LinkIterator,
    OffsetIterator,
    PageNumberIterator,
)


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


# ---------------------------------------------------------------- a page count on page 1 only


class Orders(PageNumberIterator):
    path = "orders"
    items_key = "results"
    total_pages_key = "pagination.pages"
    limit = 3


def _orders(pages: dict[int, Any], seen: list[int]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        seen.append(page)
        if page not in pages:
            return _json({"message": "no such page"}, status=404)
        return _json(pages[page])

    return httpx.MockTransport(handler)


async def _walk(it: Orders, crawl: bool) -> list[int]:
    got: list[int] = []
    with trio.fail_after(10):
        if crawl:
            async with it.crawl(prefetch=2) as records:
                got.extend([r async for r in records])
        else:
            got.extend([r async for r in it])
    return got


@pytest.mark.parametrize("crawl", [False, True])
@pytest.mark.parametrize("second", [[4], []])
async def test_a_short_page_under_a_page_count_of_an_earlier_page_is_an_error(
    crawl: bool, second: list[int]
) -> None:
    # Page 1 says 4 pages; page 2 leaves the count out and holds fewer than a page.
    seen: list[int] = []
    pages = {1: {"results": [1, 2, 3], "pagination": {"pages": 4}}, 2: {"results": second}}
    async with API(transport=_orders(pages, seen)) as api:
        it = Orders(api)
        with pytest.raises(PaginationError):
            await _walk(it, crawl)
    assert {1, 2} <= set(seen)
    assert not it.position.done


@pytest.mark.parametrize("crawl", [False, True])
async def test_the_walk_ends_at_the_page_count_of_an_earlier_page(crawl: bool) -> None:
    # The last page by page 1's count is full and says nothing: no page past it is asked
    # for (this API answers 404 there).
    seen: list[int] = []
    pages = {1: {"results": [1, 2, 3], "pagination": {"pages": 2}}, 2: {"results": [4, 5, 6]}}
    async with API(transport=_orders(pages, seen)) as api:
        it = Orders(api)
        assert await _walk(it, crawl) == [1, 2, 3, 4, 5, 6]
    assert sorted(seen) == [1, 2]
    assert it.position.done


# ---------------------------------------------------------------- unreadable next links


@pytest.mark.parametrize("crawl", [False, True])
@pytest.mark.parametrize("cross_origin", [False, True])
@pytest.mark.parametrize(
    "link",
    [
        '<https://[::1/items?page=2&api_key=s3cret>; rel="next"',
        '<mailto:ops@example.com?token=s3cret>; rel="next"',
        '<ftp://api.example.com/items?page=2>; rel="next"',
    ],
)
async def test_a_next_link_that_is_no_web_url_fails_after_the_page_naming_it(
    link: str, cross_origin: bool, crawl: bool
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return _json([{"id": 1}, {"id": 2}], {"Link": link})

    got: list[int] = []
    async with API(transport=httpx.MockTransport(handler)) as api:
        it = Links(api, allow_cross_origin=cross_origin)
        with trio.fail_after(10), pytest.raises(PaginationError) as caught:
            if crawl:
                async with it.crawl(prefetch=2) as records:
                    async for record in records:
                        got.append(record["id"])
            else:
                async for record in it:
                    got.append(record["id"])
    assert got == [1, 2]  # the page that named it was handed out
    assert seen == ["https://api.example.com/issues"]
    assert "is not an http or https URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


async def test_a_next_links_unreadable_anchor_does_not_drop_the_link() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return _json([{"id": 3}])
        return _json(
            [{"id": 1}, {"id": 2}],
            {"Link": '</issues?page=2>; rel="next"; anchor="https://[::1/x"'},
        )

    async with API(transport=httpx.MockTransport(handler)) as api:
        with trio.fail_after(10):
            got = [record["id"] async for record in Links(api)]
    assert got == [1, 2, 3]


# ---------------------------------------------------------------- a stale total


class Grown(OffsetIterator):
    path = "items"
    limit = 10


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_records_past_a_stale_total_are_never_dropped(prefetch: int | None) -> None:
    # The total comes on the first page only (allowed: the last one reported holds),
    # and the collection grew from 15 to 30 meanwhile: ids 15-19 of the second page
    # were cut at the total, and the walk ended done with 15 records missing.
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        body: dict[str, Any] = {"items": [{"id": i} for i in range(offset, min(offset + 10, 30))]}
        if offset == 0:
            body["total"] = 15
        return _json(body)

    got: list[int] = []
    async with API(transport=httpx.MockTransport(handler)) as api:
        walk = Grown(api)
        with trio.fail_after(10), pytest.raises(PaginationError, match="room for 5"):
            if prefetch is None:
                async for record in walk:
                    got.append(record["id"])
            else:
                async with walk.crawl(prefetch=prefetch) as records:
                    async for record in records:
                        got.append(record["id"])
    assert got == list(range(10))  # the first page, then the refusal
    assert walk.position is not None and not walk.position.done


# ------------------------------------------------- a walk ended on a full page


def _forty_seven(request: httpx.Request) -> httpx.Response:
    start = int(request.url.params.get("cursor", "0"))
    following = start + 10 if start + 10 < 47 else None
    records = list(range(start, min(start + 10, 47)))
    if request.url.path == "/link":
        url = f"https://api.example.com/link?cursor={following}"
        headers = {"Link": f'<{url}>; rel="next"'} if following else {}
        return _json(records, headers)
    cursor = None if following is None else str(following)
    return _json({"data": records, "meta": {"next_cursor": cursor}})


class Tickets(CursorIterator):
    path = "tickets"
    items_key = "data"
    cursor_key = "meta.next_cursor"
    limit = 10


class MistypedCursor(Tickets):
    cursor_key = "meta.nextCursor"


class Linked(LinkIterator):
    path = "link"
    limit = 10


class MistypedRel(Linked):
    rel = "nxt"


@pytest.mark.parametrize(
    ("iterator", "records", "told"),
    [
        (Tickets, 47, None),
        (MistypedCursor, 10, "has no key 'meta.nextCursor'"),
        (Linked, 47, None),
        (MistypedRel, 10, "has no link of rel 'nxt'"),
    ],
)
async def test_a_walk_ended_on_a_full_page_says_so(
    caplog: pytest.LogCaptureFixture,
    iterator: type[Tickets | Linked],
    records: int,
    told: str | None,
) -> None:
    # A mistyped cursor_key or rel ended every walk after its first page, done, without
    # a word: 10 records of 47.
    caplog.set_level(logging.WARNING, logger="trestfly.pagination")
    async with API(transport=httpx.MockTransport(_forty_seven)) as api:
        got = [record async for record in iterator(api)]
    assert len(got) == records
    warnings = [r for r in caplog.records if r.name == "trestfly.pagination"]
    if told is None:
        assert warnings == []  # the last page (7 records) is not full
        return
    assert len(warnings) == 1 and told in warnings[0].getMessage()
    assert "holds a full page of 10 records: the walk ends there" in warnings[0].getMessage()
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].trestfly_records == 10  # type: ignore[attr-defined]


# ------------------------------------------------------- records of your own type


@dataclass(frozen=True)
class Ticket:
    number: int


class TicketPages(Tickets):
    def _record(self, record: Any) -> Ticket:
        if record == 25:
            raise ValueError("ticket 25 is malformed")
        return Ticket(record)


async def test_records_are_made_your_own_type_however_the_walk_goes() -> None:
    # Overriding __anext__ reached `async for` only: crawl() handed out the raw records.
    async with API(transport=httpx.MockTransport(_forty_seven)) as api:
        walked = [record async for record in TicketPages(api, max_items=20)]
        async with TicketPages(api, max_items=20).crawl(prefetch=2) as records:
            crawled = [record async for record in records]
        async with crawl_many({"t": TicketPages(api, max_items=20)}) as merged:
            merged_records = [record async for _, record in merged]
    expected = [Ticket(number) for number in range(20)]
    assert walked == crawled == merged_records == expected


@pytest.mark.parametrize("crawled", [False, True])
async def test_a_record_that_fails_fails_the_walk_at_its_page(crawled: bool) -> None:
    async with API(transport=httpx.MockTransport(_forty_seven)) as api:
        walk = TicketPages(api)
        got: list[Ticket] = []
        with pytest.raises(ValueError, match="ticket 25"):
            if crawled:
                async with walk.crawl(prefetch=2) as records:
                    got.extend([record async for record in records])
            else:
                got.extend([record async for record in walk])
    assert got == []  # a comprehension hands out nothing when it fails
    assert walk.count == 20 and walk.position.page == "20" and walk.position.index == 0


async def test_a_paginator_typed_by_its_records_walks_as_any_other() -> None:
    # The type parameter is for type checkers (tests/typing/records.py): at run time a
    # subscripted base is an ordinary class, settings and keywords as before.
    class TypedTickets(CursorIterator[Ticket]):
        path = "tickets"
        items_key = "data"
        cursor_key = "meta.next_cursor"
        limit = 10

        def _record(self, record: Any) -> Ticket:
            return Ticket(record)

    async with API(transport=httpx.MockTransport(_forty_seven)) as api:
        walk = TypedTickets(api, max_items=12)
        got = [record async for record in walk]
    assert got == [Ticket(number) for number in range(12)]
