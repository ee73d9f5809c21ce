"""The ready paginators end to end: every style, sequential and crawled, on the Trio server.

The server (``tests/servers/collections.py``) serves records ``{"id": i}``; every walk
is checked against the exact id sequence it must yield, and against the requests the
server saw.  Faults are injected deterministically; retries use a tiny backoff.  No
test asserts how long anything took, and every walk is bounded in records and time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
from box import Box
from servers import RecordedRequest, Respond, TrioTestServer, respond
from servers.collections import Faults, PagedCollection

from trestfly import BudgetSettings, TrioAPISession, errors
from trestfly._pages import Page, PaginationError, Position
from trestfly._paginators import (
    CrawlProgress,
    CursorIterator,
    LinkIterator,
    OffsetIterator,
    PagedIterator,
    PageNumberIterator,
)

LIMIT = 20.0
BIG = 10_000  # the size: 100 pages of 100


class API(TrioAPISession):
    _retries = 10
    _backoff = 0.01
    _timeout = 5.0
    # Faults are injected on purpose: learn no rate from them, spend no budget on them.
    _adaptive = False
    _retry_budget = BudgetSettings(enabled=False)


# How an SDK author configures each style: class attributes only.
class Items(OffsetIterator):
    path = "/offset"


class Pages(PageNumberIterator):
    path = "/pages"
    items_key = "data"
    total_key = "meta.total"
    total_pages_key = "meta.total_pages"


class Cursors(CursorIterator):
    path = "/cursor"
    items_key = "results"
    cursor_key = "meta.next_cursor"
    limit = 100


class Links(LinkIterator):
    path = "/link"
    limit = 100


STYLES: dict[str, type[PagedIterator]] = {
    "offset": Items,
    "pages": Pages,
    "cursor": Cursors,
    "link": Links,
}
MODES = [None, 1, 8]  # None: plain ``async for``; a number: crawl(prefetch=N)


def serve(server: TrioTestServer, size: int = 1000, **options: Any) -> PagedCollection:
    collection = PagedCollection(size=size, **options)
    collection.install(server.app)
    return collection


async def walk(
    iterator: PagedIterator,
    prefetch: int | None,
    *,
    bound: int = BIG * 2,
    into: list[int] | None = None,
) -> list[int]:
    """The ids the iterator yields; fails instead of looping forever.  ``into``: the
    list to append them to, which keeps those yielded before the walk raised."""
    ids: list[int] = [] if into is None else into
    if prefetch is None:
        async for record in iterator:
            ids.append(record["id"])
            assert len(ids) <= bound, "the walk did not stop"
    else:
        async with iterator.crawl(prefetch=prefetch) as records:
            async for record in records:
                ids.append(record["id"])
                assert len(ids) <= bound, "the crawl did not stop"
    return ids


# ------------------------------------------------------------------ exact walks


@pytest.mark.parametrize("prefetch", MODES)
@pytest.mark.parametrize("style", STYLES)
async def test_every_style_yields_every_record_once_in_order(
    trio_server: TrioTestServer, style: str, prefetch: int | None
) -> None:
    collection = serve(trio_server, BIG)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = STYLES[style](api)
            assert await walk(iterator, prefetch) == list(range(BIG))
            assert api.stats.in_flight == 0
    assert iterator.count == BIG
    assert iterator.num_pages == 100
    assert iterator.position.done
    # Totals and next links are trusted: no page past the end is requested.
    assert len(collection.served) == 100


@pytest.mark.parametrize("prefetch", [1, 8])
@pytest.mark.parametrize("style", STYLES)
async def test_429s_503s_resets_and_slow_pages_lose_and_double_nothing(
    trio_server: TrioTestServer, style: str, prefetch: int
) -> None:
    # Slow pages too: with prefetch, later pages then arrive before earlier ones.
    seed = sorted(STYLES).index(style) * 10 + prefetch
    faults = Faults(every=4, seed=seed, slow_every=5, slow_seconds=0.01)
    collection = serve(trio_server, BIG, faults=faults)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            assert await walk(STYLES[style](api), prefetch) == list(range(BIG))
            assert api.stats.retries == sum(1 for s in collection.served if s.fault)
    kinds = {s.fault for s in collection.served if s.fault}
    assert kinds == {"429", "503", "reset"}  # each kind was survived


@pytest.mark.parametrize("prefetch", [None, 8])
@pytest.mark.parametrize("style", STYLES)
async def test_pages_are_plain_dicts_unless_box_is_asked_for(
    trio_server: TrioTestServer, style: str, prefetch: int | None
) -> None:
    serve(trio_server, 150)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url, box=True) as api:  # a boxing session
            plain = STYLES[style](api)
            boxed = STYLES[style](api, box=True)
            records = [r async for r in plain] if prefetch is None else None
            if records is None:
                async with plain.crawl(prefetch=prefetch or 1) as stream:
                    records = [r async for r in stream]
            boxes = [r async for r in boxed]
    assert {type(r) for r in records} == {dict}
    assert {type(r) for r in boxes} == {Box}
    assert [b.id for b in boxes] == [r["id"] for r in records] == list(range(150))


# ------------------------------------------------------------------ limits

LIMIT_CASES = [
    (0, None),
    (None, 0),
    (1, None),
    (None, 1),
    (100, None),
    (101, None),
    (250, None),
    (None, 3),
    (250, 2),
    (5000, None),
    (None, 50),
]


@pytest.mark.parametrize(("max_items", "max_pages"), LIMIT_CASES)
@pytest.mark.parametrize("prefetch", [None, 8])
@pytest.mark.parametrize("style", STYLES)
async def test_max_items_and_max_pages_are_exact_and_fetch_no_extra_page(
    trio_server: TrioTestServer,
    style: str,
    prefetch: int | None,
    max_items: int | None,
    max_pages: int | None,
) -> None:
    collection = serve(trio_server, 1000)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = STYLES[style](api, max_items=max_items, max_pages=max_pages)
            ids = await walk(iterator, prefetch)
    expected = list(range(1000))
    if max_pages is not None:
        expected = expected[: max_pages * 100]
    if max_items is not None:
        expected = expected[:max_items]
    assert ids == expected
    pages = 0 if max_items == 0 or max_pages == 0 else max(1, -(-len(expected) // 100))
    assert len(collection.served) == pages
    assert iterator.num_pages == pages


@pytest.mark.parametrize("prefetch", MODES)
@pytest.mark.parametrize("style", STYLES)
async def test_an_empty_collection_yields_nothing_after_one_request(
    trio_server: TrioTestServer, style: str, prefetch: int | None
) -> None:
    collection = serve(trio_server, 0)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = STYLES[style](api)
            assert await walk(iterator, prefetch) == []
    assert len(collection.served) == 1
    assert iterator.position.done


@pytest.mark.parametrize("prefetch", [None, 8])
async def test_without_a_total_a_short_page_ends_the_walk(
    trio_server: TrioTestServer, prefetch: int | None
) -> None:
    collection = serve(trio_server, 1050)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = Items(api, total_key=None)
            assert await walk(iterator, prefetch) == list(range(1050))
    # Never more than the prefetch window past the short page.
    assert len(collection.served) <= 11 + (prefetch or 0)


@pytest.mark.parametrize("final_size", [650, 1250])
@pytest.mark.parametrize("prefetch", [None, 1, 8])
@pytest.mark.parametrize("style", STYLES)
async def test_a_total_that_changes_mid_crawl_stops_at_the_real_end(
    trio_server: TrioTestServer, style: str, prefetch: int | None, final_size: int
) -> None:
    # The collection shrinks or grows right after the first page was served.
    collection = serve(trio_server, 1000, resize_at={1: final_size})
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            ids = await walk(STYLES[style](api), prefetch)
    assert ids == list(range(final_size))
    assert len(collection.served) <= -(-final_size // 100) + (prefetch or 0) + 1


# ------------------------------------------------------------------ resuming


@pytest.mark.parametrize("stop_after", [1, 99, 100, 101, 555])
@pytest.mark.parametrize("prefetch", [None, 8])
@pytest.mark.parametrize("style", STYLES)
async def test_a_stopped_walk_resumes_exactly_where_it_stopped(
    trio_server: TrioTestServer, style: str, prefetch: int | None, stop_after: int
) -> None:
    serve(trio_server, 1000)
    first: list[int] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = STYLES[style](api)
            if prefetch is None:
                async for record in iterator:
                    first.append(record["id"])
                    if len(first) == stop_after:
                        break
            else:
                async with iterator.crawl(prefetch=prefetch) as records:
                    async for record in records:
                        first.append(record["id"])
                        if len(first) == stop_after:
                            break
            # A position is plain data: it survives being stored and rebuilt.
            stored = dataclasses.asdict(iterator.position)
            resumed = STYLES[style](api, position=Position(**stored))
            rest = await walk(resumed, prefetch)
    assert first == list(range(stop_after))
    assert rest == list(range(stop_after, 1000))
    assert resumed.position.done


@pytest.mark.parametrize(
    ("source", "target"),
    [("pages", "offset"), ("offset", "pages"), ("cursor", "link"), ("link", "cursor")],
)
async def test_a_position_of_another_style_is_refused(
    trio_server: TrioTestServer, source: str, target: str
) -> None:
    # An offset and a page number are both integers: a page-number walk's Position(2, 5)
    # resumed an offset walk at record 7, eight records handed out twice, no error.
    serve(trio_server, 300)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = STYLES[source](api)
            async for _ in iterator:
                if iterator.count == 150:
                    break
            stored = dataclasses.asdict(iterator.position)
            assert stored["style"] == {"pages": "page"}.get(source, source)
            with pytest.raises(PaginationError, match="resume it with an iterator of its own"):
                STYLES[target](api, position=Position(**stored))
            # Without its style (stored before it existed), it is taken as given.
            del stored["style"]
            assert Position(**stored) == iterator.position
            resumed = STYLES[source](api, position=Position(**stored))
            assert (await walk(resumed, None))[0] == 150


@pytest.mark.parametrize("style", STYLES)
async def test_a_finished_position_resumes_to_nothing(
    trio_server: TrioTestServer, style: str
) -> None:
    collection = serve(trio_server, 120)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = STYLES[style](api)
            await walk(iterator, 4)
            served = len(collection.served)
            assert await walk(STYLES[style](api, position=iterator.position), None) == []
    assert len(collection.served) == served


async def test_a_crawl_and_plain_iteration_continue_each_other(
    trio_server: TrioTestServer,
) -> None:
    serve(trio_server, 1000)
    ids: list[int] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = Cursors(api)
            async for record in iterator:
                ids.append(record["id"])
                if len(ids) == 150:
                    break
            async with iterator.crawl(prefetch=3) as records:
                async for record in records:
                    ids.append(record["id"])
                    if len(ids) == 420:
                        break
            async with iterator.crawl(prefetch=2) as records:
                async for record in records:
                    ids.append(record["id"])
                    if len(ids) == 777:
                        break
            ids.extend([record["id"] async for record in iterator])
    assert ids == list(range(1000))


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("prefetch", [None, 8])
@pytest.mark.parametrize("style", ["offset", "pages"])
async def test_a_server_capping_the_page_size_raises_instead_of_skipping(
    trio_server: TrioTestServer, style: str, prefetch: int | None
) -> None:
    serve(trio_server, 1000, max_page_size=50)
    with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="caps the page size"):
        async with API(url=trio_server.base_url) as api:
            await walk(STYLES[style](api), prefetch)


@pytest.mark.parametrize("prefetch", [None, 8])
async def test_a_failing_page_raises_as_itself_after_every_record_before_it(
    trio_server: TrioTestServer, prefetch: int | None
) -> None:
    collection = serve(trio_server, 1000)
    offsets = collection._offset  # the collection's own handler, broken at one offset

    def broken(request: RecordedRequest) -> Any:
        if request.params["offset"] == ["300"]:
            return respond(404, json={"error": "gone"})
        return offsets(request)

    trio_server.app.script("/offset", broken)
    ids: list[int] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = Items(api)
            with pytest.raises(errors.NotFoundError):
                await walk(iterator, prefetch, into=ids)
    assert ids == list(range(300))
    assert iterator.position == Position(300)


def _loop_handler(kind: str) -> Callable[[RecordedRequest], Respond]:
    def handler(request: RecordedRequest) -> Respond:
        again = f"http://{request.header('host')}/loop?page=2"
        second = request.query != ""
        records = [{"id": i} for i in (range(10, 20) if second else range(10))]
        if kind == "cursor":
            return respond(json={"items": records, "next_cursor": "same"})
        return respond(json=records, headers={"link": f'<{again}>; rel="next"'})

    return handler


@pytest.mark.parametrize("prefetch", [None, 4])
@pytest.mark.parametrize("kind", ["cursor", "link"])
async def test_a_repeated_cursor_or_link_raises_instead_of_looping(
    trio_server: TrioTestServer, kind: str, prefetch: int | None
) -> None:
    trio_server.app.script("/loop", _loop_handler(kind))
    iterator: PagedIterator
    with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="again"):
        async with API(url=trio_server.base_url) as api:
            if kind == "cursor":
                iterator = CursorIterator(api, path="/loop")
            else:
                iterator = LinkIterator(api, path="/loop")
            await walk(iterator, prefetch, bound=100)
    assert iterator.count == 20  # both distinct pages, then the repeat was refused
    assert len(trio_server.requests) <= 3 + (prefetch or 0)


# Slack's conversations.list and Google's list calls: pages 1 and 2 are empty, but each
# names the next page, and the records go on after them.
SPARSE = [list(range(10)), [], [], list(range(10, 20)), list(range(20, 25))]


def _sparse_handler(kind: str, loop_at: int | None = None) -> Callable[[RecordedRequest], Respond]:
    """The SPARSE pages by cursor (``?cursor=N``) or by next link; ``loop_at``: the
    empty page 1 names page ``loop_at`` next instead of page 2."""

    def handler(request: RecordedRequest) -> Respond:
        number = int(request.params.get("cursor", request.params.get("page", ["0"]))[0])
        following = number + 1 if number + 1 < len(SPARSE) else None
        if number == 1 and loop_at is not None:
            following = loop_at
        records = [{"id": i} for i in SPARSE[number]]
        if kind == "cursor":
            return respond(json={"items": records, "next_cursor": following})
        link = f'<http://{request.header("host")}/sparse?page={following}>; rel="next"'
        return respond(json=records, headers={"link": link} if following else None)

    return handler


def _sparse_iterator(api: API, kind: str, **attrs: Any) -> PagedIterator:
    if kind == "cursor":
        return CursorIterator(api, path="/sparse", **attrs)
    return LinkIterator(api, path="/sparse", **attrs)


async def _walk_sparse(
    server: TrioTestServer, kind: str, prefetch: int | None, **attrs: Any
) -> tuple[list[int], PagedIterator]:
    """The ids a walk of the SPARSE pages yields, and its iterator."""
    server.app.script("/sparse", _sparse_handler(kind))
    with trio.fail_after(LIMIT):
        async with API(url=server.base_url) as api:
            iterator = _sparse_iterator(api, kind, **attrs)
            return await walk(iterator, prefetch, bound=100), iterator


@pytest.mark.parametrize("prefetch", MODES)
@pytest.mark.parametrize("kind", ["cursor", "link"])
async def test_empty_pages_naming_a_next_page_are_walked_through(
    trio_server: TrioTestServer, kind: str, prefetch: int | None
) -> None:
    ids, iterator = await _walk_sparse(trio_server, kind, prefetch)
    assert ids == list(range(25))
    assert len(trio_server.requests) == len(SPARSE)
    assert iterator.num_pages == len(SPARSE)
    assert iterator.position.done


@pytest.mark.parametrize("prefetch", MODES)
@pytest.mark.parametrize("kind", ["cursor", "link"])
async def test_empty_page_ends_stops_a_feed_at_its_first_empty_page(
    trio_server: TrioTestServer, kind: str, prefetch: int | None
) -> None:
    ids, iterator = await _walk_sparse(trio_server, kind, prefetch, empty_page_ends=True)
    assert ids == list(range(10))
    assert len(trio_server.requests) == 2  # nothing fetched past the empty page
    assert iterator.position.done


@pytest.mark.parametrize("prefetch", [None, 4])
@pytest.mark.parametrize("kind", ["cursor", "link"])
async def test_an_empty_page_naming_an_earlier_page_raises_instead_of_looping(
    trio_server: TrioTestServer, kind: str, prefetch: int | None
) -> None:
    trio_server.app.script("/sparse", _sparse_handler(kind, loop_at=1))
    ids: list[int] = []
    with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="again"):
        async with API(url=trio_server.base_url) as api:
            await walk(_sparse_iterator(api, kind), prefetch, bound=100, into=ids)
    assert ids == list(range(10))
    assert len(trio_server.requests) <= 3 + (prefetch or 0)


def test_empty_page_ends_must_be_a_bool() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="empty_page_ends='yes'"):
        CursorIterator(API(url="http://test.local"), empty_page_ends="yes")


def _mock_api(handler: Callable[[httpx.Request], httpx.Response]) -> API:
    return API(url="http://test.local", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ({"records": []}, "no key 'items' in the page"),
        ({"items": [{"id": 1}], "total": "unknown"}, "total must be a count"),
        ({"items": {"id": 1}, "total": 30}, "'items' holds dict, not a list"),
    ],
)
async def test_a_malformed_page_is_named_with_its_paging_query(
    page: dict[str, Any], problem: str
) -> None:
    # "no key 'items' in the page" said nothing of which page, in a crawl of thousands;
    # the path alone ("items") not either.  The walk's own query stays redacted.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["offset"] == "0":
            return httpx.Response(200, json={"items": [{"id": i} for i in range(10)], "total": 30})
        return httpx.Response(200, json=page)

    async with _mock_api(handler) as api:
        walk = OffsetIterator(api, path="items", limit=10, params={"api_key": "S3CRET"})
        with trio.fail_after(LIMIT), pytest.raises(PaginationError) as failed:
            async for _ in walk:
                pass
    message = str(failed.value)
    assert problem in message and "offset=10&limit=10" in message
    assert message.startswith("items?api_key=REDACTED&offset=10")
    assert "S3CRET" not in message


@pytest.mark.parametrize("style", STYLES)
async def test_a_page_that_makes_no_box_is_a_response_decode_error_in_every_style(
    style: str,
) -> None:
    # box_dots=True refuses a key such as "10.0.0.1".  The link style boxed the page
    # itself and let python-box's bare BoxKeyError out; the others go through the
    # session, which says which response it was.
    def handler(request: httpx.Request) -> httpx.Response:
        records = [{"id": 1, "10.0.0.1": "up"}]
        body: Any = records if style == "link" else {"items": records, "total": 1}
        if style == "pages":
            body = {"data": records, "meta": {"total": 1}}
        return httpx.Response(200, json=body)

    async with API(
        url="http://test.local",
        transport=httpx.MockTransport(handler),
        box_attrs={"box_dots": True},
    ) as api:
        with pytest.raises(errors.ResponseDecodeError, match="does not make a Box"):
            await walk(STYLES[style](api, box=True), None, bound=10)


async def test_a_link_walk_on_an_international_host_follows_its_own_links() -> None:
    # The collection's origin came from the URL as written ("bücher.example"), the
    # links' from the responses, whose URL httpx had encoded ("xn--bcher-kva.example"):
    # the first next link, though relative, was refused as leading to another origin.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=[{"id": 3}])
        return httpx.Response(
            200, json=[{"id": 1}], headers={"Link": '</v1/items?page=2>; rel="next"'}
        )

    async with API(url="https://bücher.example/v1", transport=httpx.MockTransport(handler)) as api:
        assert await walk(LinkIterator(api, path="items"), None, bound=10) == [1, 3]


async def test_a_cursor_under_a_credential_name_is_hidden_in_messages() -> None:
    # The DEBUG line hid a pageToken's value; the loop error and the crawl's WARNING
    # (through _shown_position) quoted it.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": 1}], "next_cursor": "S3CRET-CURSOR"})

    async with _mock_api(handler) as api:
        iterator = CursorIterator(api, path="/loop", cursor_param="pageToken")
        with pytest.raises(PaginationError, match="'REDACTED' as the next page") as looped:
            await walk(iterator, None, bound=10)
        assert "S3CRET" not in str(looped.value)
        assert "S3CRET" not in iterator._shown_position()
        plain = CursorIterator(api, path="/loop")  # a cursor named "cursor" is shown
        with pytest.raises(PaginationError, match="'S3CRET-CURSOR' as the next page"):
            await walk(plain, None, bound=10)


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_a_link_back_to_the_first_page_hands_out_nothing_twice(
    prefetch: int | None,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # A one-page collection whose next link is the page's own URL.
        link = f'<{request.url}>; rel="next"'
        return httpx.Response(200, json=[{"id": 1}, {"id": 2}], headers={"link": link})

    async with _mock_api(handler) as api:
        iterator = LinkIterator(api, path="/items", limit=2)
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="per_page=2' as"):
            await walk(iterator, prefetch, bound=100)
    assert iterator.count == 2  # the first page once, then the loop was refused


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_a_cursor_loop_longer_than_any_window_is_caught(prefetch: int | None) -> None:
    period = 150  # pages in the loop: far more than the 64 addresses once remembered

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("cursor", "0"))
        after = page + 1 if page + 1 < period else 1  # the last page points back at "1"
        return httpx.Response(200, json={"items": [{"id": page}], "next_cursor": str(after)})

    async with _mock_api(handler) as api:
        iterator = CursorIterator(api, path="/cycle")
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="'1' as the next"):
            await walk(iterator, prefetch, bound=2 * period)
    assert iterator.count == period  # every page once, then the repeat was refused
    assert iterator.position == Position("1")


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (respond(body="<html>", headers={"content-type": "text/html"}), "not JSON"),
        (respond(json={"data": []}), "no key 'items'"),
        (respond(json={"items": {"a": 1}}), "not a list"),
        (respond(json={"items": [], "total": "many"}), "total must be a count"),
    ],
)
async def test_a_page_of_the_wrong_shape_raises(
    trio_server: TrioTestServer, answer: Respond, match: str
) -> None:
    trio_server.app.script("/odd", answer)
    with trio.fail_after(LIMIT), pytest.raises(PaginationError, match=match):
        async with API(url=trio_server.base_url) as api:
            await walk(OffsetIterator(api, path="/odd"), None)


KEY = "k3y-echoed-in-links"


@pytest.mark.parametrize("prefetch", [None, 4])
@pytest.mark.parametrize(
    ("second", "match"),
    [
        (lambda: httpx.Response(200, text="<html>", headers={"content-type": "text/html"}), "JSON"),
        (lambda: httpx.Response(200, json={"a": 1}), "not a list"),
        (None, "again"),  # the second page links to itself
    ],
)
async def test_a_key_echoed_in_next_links_stays_out_of_pagination_errors(
    second: Callable[[], httpx.Response] | None, match: str, prefetch: int | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/second" and second is not None:
            return second()
        link = f'<http://test.local/second?api_key={KEY}&page=2>; rel="next"'
        return httpx.Response(200, json=[{"id": 1}], headers={"link": link})

    async with _mock_api(handler) as api:
        iterator = LinkIterator(api, path="/first", params={"api_key": KEY})
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match=match) as caught:
            await walk(iterator, prefetch, bound=100)
    assert KEY not in str(caught.value)
    assert "second?api_key=REDACTED&page=2" in str(caught.value)
    # The position keeps the real link: it is what a resumed walk requests.
    assert isinstance(iterator.position.page, str) and KEY in iterator.position.page


@pytest.mark.parametrize("prefetch", [None, 4])
@pytest.mark.parametrize(
    ("start", "link", "origin"),
    [
        ("https://api.test", "https://evil.test/steal", "https://evil.test:443"),  # host
        ("https://api.test", "https://api.test:8443/items", "https://api.test:8443"),  # port
        ("https://api.test", "http://api.test/items", "http://api.test:80"),  # downgrade
    ],
)
async def test_a_next_link_to_another_origin_is_refused_before_any_request(
    start: str, link: str, origin: str, prefetch: int | None
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        headers = {"link": f'<{link}?api_key={KEY}>; rel="next"'}
        return httpx.Response(200, json=[{"id": 1}, {"id": 2}], headers=headers)

    async with API(url=start, transport=httpx.MockTransport(handler)) as api:
        api._session.headers["X-Api-Key"] = KEY  # as an SDK's _authenticate does
        iterator = LinkIterator(api, path="/items")
        ids: list[int] = []
        with (
            trio.fail_after(LIMIT),
            pytest.raises(PaginationError, match="another origin") as caught,
        ):
            await walk(iterator, prefetch, into=ids)
    # Nothing went to the other origin; the first page's records were handed out.
    assert [str(request.url) for request in sent] == [f"{start}/items"]
    assert ids == [1, 2]
    message = str(caught.value)
    assert f"({origin}) than the collection's ({start}:443)" in message
    assert KEY not in message and "api_key=REDACTED" in message
    # The position is the refused link: a walk allowed to follow it resumes there.
    assert iterator.position == Position(f"{link}?api_key={KEY}")


async def test_allow_cross_origin_follows_links_to_other_origins() -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.host)
        if request.url.host == "api.test":
            link = '<https://cdn.test/items?page=2>; rel="next"'
            return httpx.Response(200, json=[{"id": 1}], headers={"link": link})
        return httpx.Response(200, json=[{"id": 2}])

    class CdnLinks(LinkIterator):
        allow_cross_origin = True

    async with API(url="https://api.test", transport=httpx.MockTransport(handler)) as api:
        for iterator in (
            CdnLinks(api, path="/items"),
            LinkIterator(api, path="/items", allow_cross_origin=True),
        ):
            assert await walk(iterator, None, bound=10) == [1, 2]
        # A refused walk resumes at the refused link only with the opt-in: a saved
        # position is no way around the check.
        refused = Position("https://cdn.test/items?page=2")
        with pytest.raises(PaginationError, match=r"\(https://cdn.test:443\) than"):
            await walk(LinkIterator(api, path="/items", position=refused), None, bound=10)
        resumed = LinkIterator(api, path="/items", position=refused, allow_cross_origin=True)
        assert await walk(resumed, None, bound=10) == [2]
    assert requested == ["api.test", "cdn.test", "api.test", "cdn.test", "cdn.test"]
    assert LinkIterator.allow_cross_origin is False
    with pytest.raises(errors.UnexpectedValueError, match="allow_cross_origin='yes'"):
        LinkIterator(None, allow_cross_origin="yes")


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_an_empty_page_while_the_total_says_more_raises(prefetch: int | None) -> None:
    served = 20  # records the server holds, while every page says total=30

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        records = [{"id": i} for i in range(offset, min(offset + 10, served))]
        return httpx.Response(200, json={"items": records, "total": 30})

    async with _mock_api(handler) as api:
        iterator = Items(api, limit=10)
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="empty page"):
            await walk(iterator, prefetch, bound=100)
    assert iterator.count == served
    assert iterator.position == Position(20)  # the refused page: not done


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_an_empty_page_reporting_a_smaller_total_ends_the_walk(prefetch: int | None) -> None:
    offsets: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # The collection shrank to 20 under the walk: the empty page at 20 says so.
        offset = int(request.url.params["offset"])
        offsets.append(offset)
        records = [{"id": i} for i in range(offset, min(offset + 10, 20))]
        return httpx.Response(200, json={"items": records, "total": 30 if offset < 20 else 20})

    async with _mock_api(handler) as api:
        iterator = Items(api, limit=10)
        with trio.fail_after(LIMIT):
            assert await walk(iterator, prefetch, bound=100) == list(range(20))
    assert sorted(offsets) == [0, 10, 20]
    assert iterator.position.done


@pytest.mark.parametrize("prefetch", [None, 4])
@pytest.mark.parametrize("total", [None, 1000], ids=["no-total", "total"])
@pytest.mark.parametrize("style", ["offset", "pages"])
async def test_a_server_ignoring_the_offset_or_page_number_raises_instead_of_repeating(
    style: str, total: int | None, prefetch: int | None
) -> None:
    # The first page whatever was asked: without a total the walk would never end, with
    # one it would hand out the same ten records a hundred times.
    def handler(request: httpx.Request) -> httpx.Response:
        records = [{"id": i} for i in range(10)]
        if style == "offset":
            return httpx.Response(200, json={"items": records, "total": total})
        meta = {"total": total, "total_pages": None if total is None else total // 10}
        return httpx.Response(200, json={"data": records, "meta": meta})

    async with _mock_api(handler) as api:
        iterator = STYLES[style](api, limit=10)
        ids: list[int] = []
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="same 10 records"):
            await walk(iterator, prefetch, bound=100, into=ids)
    assert ids == list(range(10))  # the first page once, then the refusal
    second = Position(10) if style == "offset" else Position(2)
    assert iterator.position == second  # the refused page: not done


@pytest.mark.parametrize("style", ["offset", "pages"])
async def test_equal_pages_of_one_record_are_walked_as_data(style: str) -> None:
    # A page of one record repeating the one before is data that repeats, not a loop
    # anyone could tell from it: the walk goes on to the total.
    def handler(request: httpx.Request) -> httpx.Response:
        records = [{"value": "same"}]
        if style == "offset":
            return httpx.Response(200, json={"items": records, "total": 3})
        return httpx.Response(200, json={"data": records, "meta": {"total": 3}})

    async with _mock_api(handler) as api:
        iterator = STYLES[style](api, limit=1)
        with trio.fail_after(LIMIT):
            records = [record async for record in iterator]
    assert records == [{"value": "same"}] * 3


def _zeros_handler(style: str, samples: list[int]) -> Callable[[httpx.Request], httpx.Response]:
    """A metric's samples, plain numbers, by offset or page number, with a total."""

    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if style == "offset":
            start, size = int(params["offset"]), int(params["limit"])
        else:
            size = int(params["per_page"])
            start = (int(params["page"]) - 1) * size
        page = samples[start : start + size]
        if style == "offset":
            return httpx.Response(200, json={"items": page, "total": len(samples)})
        return httpx.Response(200, json={"data": page, "meta": {"total": len(samples)}})

    return handler


@pytest.mark.parametrize("prefetch", [None, 4])
@pytest.mark.parametrize("style", ["offset", "pages"])
async def test_allow_repeated_pages_walks_equal_pages_of_plain_values(
    style: str, prefetch: int | None
) -> None:
    # Samples of a quiet metric: pages 2 and 3 are both ten zeros.  By default the
    # second of them reads as a server that ignores the offset; allowed, it is data.
    samples = list(range(1, 11)) + [0] * 20 + list(range(5))
    async with _mock_api(_zeros_handler(style, samples)) as api:
        refused: list[Any] = []
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="allow_repeated_pages"):
            async for value in STYLES[style](api, limit=10):
                refused.append(value)
        assert refused == samples[:20]
        iterator = STYLES[style](api, limit=10, allow_repeated_pages=True)
        walked: list[Any] = []
        with trio.fail_after(LIMIT):
            if prefetch is None:
                walked = [value async for value in iterator]
            else:
                async with iterator.crawl(prefetch=prefetch) as values:
                    walked = [value async for value in values]
    assert walked == samples
    assert iterator.position.done


@pytest.mark.parametrize("style", [CursorIterator, LinkIterator])
@pytest.mark.parametrize("name", ["", "  ", 5])
def test_a_chains_limit_param_must_be_a_name(style: type[PagedIterator], name: object) -> None:
    # Only its type was checked: limit_param="" sent ?=5 on every page.
    with pytest.raises(errors.UnexpectedValueError, match="limit_param"):
        style(API(url="http://test.local"), limit=5, limit_param=name)


@pytest.mark.parametrize("prefetch", [None, 2])
@pytest.mark.parametrize("cross_origin", [False, True])
async def test_a_next_link_whose_host_does_not_decode_is_a_pagination_error(
    prefetch: int | None, cross_origin: bool
) -> None:
    # "xn--" is no IDNA label: a bare idna.IDNAError came out of the walk.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=[1, 2], headers={"link": '<https://xn--/x?c=1>; rel="next"'}
        )

    values: list[Any] = []
    async with _mock_api(handler) as api:
        iterator = LinkIterator(api, path="x", allow_cross_origin=cross_origin)
        with trio.fail_after(LIMIT), pytest.raises(PaginationError, match="does not decode"):
            if prefetch is None:
                async for value in iterator:
                    values.append(value)
            else:
                async with iterator.crawl(prefetch=prefetch) as records:
                    async for value in records:
                        values.append(value)
    assert values == [1, 2]


def test_allow_repeated_pages_must_be_a_bool() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="allow_repeated_pages=1"):
        OffsetIterator(API(url="http://test.local"), allow_repeated_pages=1)


# ------------------------------------------------------------------ progress


@pytest.mark.parametrize("prefetch", [None, 4])
async def test_progress_is_reported_once_per_page(
    trio_server: TrioTestServer, prefetch: int | None
) -> None:
    serve(trio_server, 1000)
    reports: list[CrawlProgress] = []
    unknown: list[CrawlProgress] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            await walk(Items(api, max_items=950, progress=reports.append), prefetch)
            await walk(Cursors(api, max_pages=2, progress=unknown.append), prefetch)
    assert [r.records for r in reports] == [*range(100, 1000, 100), 950]
    assert [r.pages for r in reports] == list(range(1, 11))
    assert {r.total for r in reports} == {950}  # the total, capped by max_items
    elapsed = [r.elapsed for r in reports]
    assert elapsed == sorted(elapsed) and all(r.rate >= 0 for r in reports)
    # Unknown until the last page, which makes it known (a bar then completes).
    assert [(r.records, r.total) for r in unknown] == [(100, None), (200, 200)]


@pytest.mark.parametrize("prefetch", MODES)
async def test_the_last_page_reports_the_total_of_a_walk_without_one(
    trio_server: TrioTestServer, prefetch: int | None
) -> None:
    # A cursor walk (no total) reported total=None to its end: a progress bar of it
    # never completed, though the walk knew it had ended.
    serve(trio_server, 250)
    reports: list[CrawlProgress] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            walked = await walk(Cursors(api, progress=reports.append), prefetch)
    assert len(walked) == 250
    assert [(r.records, r.total) for r in reports] == [(100, None), (200, None), (250, 250)]


@pytest.mark.parametrize("prefetch", MODES)
async def test_progress_total_counts_only_the_pages_max_pages_lets_through(
    trio_server: TrioTestServer, prefetch: int | None
) -> None:
    # It reported the collection's 1,000 for a walk cut at 250: a bar never completed.
    serve(trio_server, 1000)
    reports: list[CrawlProgress] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            walked = await walk(Items(api, max_pages=3, progress=reports.append), prefetch)
    assert len(walked) == 300
    assert [(r.records, r.total) for r in reports] == [(100, 300), (200, 300), (300, 300)]


@pytest.mark.parametrize("prefetch", MODES)
async def test_a_progress_callback_raising_stop_async_iteration_fails_the_walk(
    trio_server: TrioTestServer, prefetch: int | None
) -> None:
    # A spent iterator's anext() in the callback, say.  Out of a crawl's __anext__ it
    # ended the walk as if it were over: 100 of 300 records and no error.
    serve(trio_server, 300)

    def report(progress: CrawlProgress) -> None:
        if progress.pages == 2:
            raise StopAsyncIteration

    got: list[int] = []
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            with pytest.raises(errors.TrestflyError, match="progress callback raised") as caught:
                await walk(Items(api, progress=report), prefetch, into=got)
    assert isinstance(caught.value.__cause__, StopAsyncIteration)
    assert got == list(range(100))


# ------------------------------------------------------------------ configuration


async def test_class_attributes_are_defaults_and_keywords_override_them(
    trio_server: TrioTestServer,
) -> None:
    collection = serve(trio_server, 1000)
    caller_params = {"tag": "a"}
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = Items(api, limit=250, params=caller_params, max_pages=1)
            caller_params["tag"] = "changed later"  # the iterator kept its own copy
            assert await walk(iterator, None) == list(range(250))
    assert trio_server.requests[0].params == {"tag": ["a"], "offset": ["0"], "limit": ["250"]}
    assert collection.served[0].size == 250
    assert Items.limit == 100 and Items.params == {}  # the class is untouched


def test_defaults_are_immutable_and_unknown_or_bad_settings_are_refused() -> None:
    with pytest.raises(TypeError):
        PagedIterator.params["x"] = 1  # type: ignore[index]
    with pytest.raises(errors.UnexpectedValueError, match="no attribute 'pagesize'"):
        Items(None, pagesize=10)
    for bad in (
        {"limit": 0},
        {"limit": True},
        {"items_key": 5},
        {"params": "a=b"},
        {"max_items": -1},
        {"box": "yes"},
    ):
        with pytest.raises(errors.UnexpectedValueError, match="invalid setting"):
            Items(None, **bad)
    with pytest.raises(errors.UnexpectedValueError, match="position must be a Position"):
        Items(None, position={"page": 3})  # type: ignore[arg-type]
    with pytest.raises(PaginationError):
        Items(None, position=Position("cursor"))
    # The server's figure: given by hand it capped offset walks and not cursor walks.
    with pytest.raises(errors.UnexpectedValueError, match="total cannot be set by keyword"):
        Items(None, total=150)
    # Read back as text, "false" is truthy: the walk resumed as finished, sending nothing.
    with pytest.raises(PaginationError, match="done must be True or False, got a str"):
        Items(None, position=Position(0, 0, done="false"))  # type: ignore[arg-type]


def test_a_subclass_declares_its_own_settings() -> None:
    class TeamMembers(OffsetIterator):
        team: str = ""

        def _target(self, address: Any) -> tuple[str, dict[str, Any] | None]:
            _, params = super()._target(address)
            return f"teams/{self.team}/members", params

    iterator = TeamMembers(API(url="http://api.test"), team="core")  # never sent through
    assert iterator._target(200) == ("teams/core/members", {"offset": 200, "limit": 100})


@pytest.mark.parametrize("api", [None, "https://api.test", API])
def test_a_paginator_is_given_a_session_instance(api: Any) -> None:
    # The first page failed with a bare AttributeError ('NoneType' object has no
    # attribute 'get'), or a TypeError for the class where an instance belongs.
    with pytest.raises(errors.UnexpectedValueError, match="walks through a session"):
        Items(api)
    with pytest.raises(errors.UnexpectedValueError, match="walks through a session"):
        LinkIterator(api, path="items")

    class OwnFetch(OffsetIterator):  # fetches its pages its own way: anything goes
        async def _fetch(self, address: Any) -> Page:
            return Page(records=[])

    OwnFetch(api)


@pytest.mark.parametrize(
    ("style", "setting"),
    [
        (OffsetIterator, {"offset_param": ""}),
        (OffsetIterator, {"limit_param": " "}),
        (PageNumberIterator, {"page_param": ""}),
        (CursorIterator, {"cursor_param": ""}),
    ],
)
def test_an_empty_parameter_name_is_refused(style: Any, setting: dict[str, str]) -> None:
    # It was sent: ?=0&limit=2.
    with pytest.raises(errors.UnexpectedValueError, match="invalid setting"):
        style(API(url="http://api.test"), **setting)


def test_progress_must_be_callable() -> None:
    for bad in (5, "report"):
        with pytest.raises(errors.UnexpectedValueError, match="progress must be a callable"):
            Items(None, progress=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "counter", [{"count": -5}, {"page_count": 7}, {"num_pages": "x"}, {"page": [1, 2]}]
)
def test_the_walks_own_counters_are_not_keywords(counter: dict[str, Any]) -> None:
    # The walk keeps them in step with its position: a resumed walk passes position=.
    (name,) = counter
    with pytest.raises(errors.UnexpectedValueError, match=f"{name} cannot be set"):
        Items(None, **counter)


def test_a_refused_setting_never_quotes_a_key() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="params of type str") as caught:
        Items(None, params=f"api_key={KEY}")
    assert KEY not in str(caught.value)
    link = f"https://api.example.com/items?api_key={KEY}"
    # A stored position (its dict, its tuple) passed as it is: only its kind is named.
    for stored in (link, {"page": link, "index": 0, "done": False}, (link, 0, False)):
        with pytest.raises(
            errors.UnexpectedValueError, match="must be a Position, got a"
        ) as caught:
            Items(None, position=stored)  # type: ignore[arg-type]
        assert KEY not in str(caught.value)
    with pytest.raises(errors.UnexpectedValueError, match="path of type URL") as caught:
        Items(None, path=httpx.URL(link))  # type: ignore[arg-type]
    assert KEY not in str(caught.value)


def test_an_async_progress_callback_is_refused() -> None:
    # It would be called and never awaited: no progress, a RuntimeWarning per page.
    async def report(progress: CrawlProgress) -> None:
        pass

    with pytest.raises(errors.UnexpectedValueError, match="progress must be a plain function"):
        Items(None, progress=report)  # type: ignore[arg-type]


async def test_a_progress_callback_that_returns_an_awaitable_is_refused_at_its_first_page() -> None:
    # An object with an async __call__ passes the constructor's check.
    class Reporter:
        async def __call__(self, progress: CrawlProgress) -> None:
            pass

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": 1}], "total": 1})

    async with _mock_api(handler) as api:
        items = Items(api, progress=Reporter())
        with pytest.raises(errors.UnexpectedValueError, match="returned a coroutine"):
            async for _ in items:
                pass


async def test_prefetch_must_be_a_positive_integer() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(errors.UnexpectedValueError, match="prefetch"):
            async with Items(API(url="http://api.test")).crawl(prefetch=bad):  # type: ignore[arg-type]
                pass


@pytest.mark.parametrize("last", [0, "0"])
@pytest.mark.parametrize("prefetch", [None, 4])
async def test_a_next_cursor_of_zero_ends_the_walk(last: object, prefetch: int | None) -> None:
    # Twitter's next_cursor is 0 on the last page ("0" as next_cursor_str): taken as a
    # token it asked for the first page again, handed out twice before the loop check.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor") == "17":
            return httpx.Response(200, json={"items": [{"id": 3}], "next_cursor": last})
        return httpx.Response(200, json={"items": [{"id": 1}, {"id": 2}], "next_cursor": 17})

    async with _mock_api(handler) as api:
        iterator = CursorIterator(api, path="/items", items_key="items")
        with trio.fail_after(LIMIT):
            await walk(iterator, prefetch, bound=100)
    assert iterator.count == 3 and iterator.position.done


@pytest.mark.parametrize(
    ("cursor", "kind"), [({"state": "S3CRET"}, "dict"), (["S3CRET"], "list"), (True, "bool")]
)
async def test_a_next_cursor_that_is_no_token_is_named_by_kind_not_quoted(
    cursor: object, kind: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"id": 1}], "next_cursor": cursor})

    async with _mock_api(handler) as api:
        iterator = CursorIterator(api, path="/items", items_key="items")
        with trio.fail_after(LIMIT), pytest.raises(errors.PaginationError) as caught:
            await walk(iterator, None, bound=100)
    assert f"the next cursor is a {kind}, not a token" in str(caught.value)
    assert "S3CRET" not in str(caught.value)


@pytest.mark.parametrize("prefetch", [None, 2])
@pytest.mark.parametrize(("name", "value"), [("max_items", "2"), ("max_pages", -1)])
async def test_a_paged_limit_set_after_construction_is_checked_before_the_first_page(
    name: str, value: object, prefetch: int | None
) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"items": [{"id": 1}], "total": 1})

    async with _mock_api(handler) as api:
        iterator = OffsetIterator(api, path="x")
        setattr(iterator, name, value)
        with pytest.raises(errors.UnexpectedValueError, match=f"invalid setting\\(s\\) {name}="):
            await walk(iterator, prefetch)
    assert requests == []


@pytest.mark.parametrize("prefetch", [None, 2])
async def test_a_page_size_or_first_page_set_after_construction_is_used(
    prefetch: int | None,
) -> None:
    # The page size was fixed at construction while the query read the new one: a page
    # of 2 against a planned 100 read as the last, and the walk ended with 2 records of
    # 5, silently.  A first_page=0 set late still asked for page 1.
    records = [{"id": n} for n in range(5)]
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(request.url.query.decode())
        params = request.url.params
        if "offset" in params:
            start, size = int(params["offset"]), int(params["limit"])
        else:
            size = int(params["per_page"])
            start = int(params["page"]) * size  # a 0-based API
        return httpx.Response(200, json={"items": records[start : start + size]})

    class Users(OffsetIterator):
        path = "users"
        total_key = None

        def __init__(self, api: Any, **attrs: Any) -> None:
            super().__init__(api, **attrs)
            self.limit = 2  # RESTfly's way: after super().__init__()

    class Orders(PageNumberIterator):
        path = "orders"

        def __init__(self, api: Any, **attrs: Any) -> None:
            super().__init__(api, **attrs)
            self.limit, self.first_page = 2, 0

    async with _mock_api(handler) as api:
        with trio.fail_after(LIMIT):
            assert await walk(Users(api), prefetch, bound=100) == [0, 1, 2, 3, 4]
            # (A crawl asks for pages ahead, in any order.)
            assert {"offset=0&limit=2", "offset=2&limit=2", "offset=4&limit=2"} <= set(queries)
            assert all(query.endswith("&limit=2") for query in queries)
            queries.clear()
            assert await walk(Orders(api), prefetch, bound=100) == [0, 1, 2, 3, 4]
            assert "page=0&per_page=2" in queries


async def test_a_setting_made_invalid_after_construction_is_refused_before_a_request() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"items": []})

    class Bad(OffsetIterator):
        path = "users"

        def __init__(self, api: Any, **attrs: Any) -> None:
            super().__init__(api, **attrs)
            self.limit = 0

    async with _mock_api(handler) as api:
        with pytest.raises(errors.UnexpectedValueError, match="limit=0"):
            await walk(Bad(api), None, bound=100)
    assert requests == []
