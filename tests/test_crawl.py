"""Crawls: bounded prefetch, Trio-correct cancellation, and the fan-out over many sources.

The server runs in the test's own Trio run, so its request hook sees exactly what the
consumer has read when each request arrives: that is how "never more than ``prefetch``
pages ahead" is checked, with a consumer that waits until the crawler got that far.
No test asserts a duration; every loop is bounded in count and in time.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import RecordedRequest, TrioTestServer, respond, stall
from servers.collections import PagedCollection, Served

from trestfly import APIIterator, BudgetSettings, TrioAPISession, errors
from trestfly._crawl import crawl_many
from trestfly._pages import Page, Position
from trestfly._paginators import (
    CrawlProgress,
    CursorIterator,
    LinkIterator,
    OffsetIterator,
    PagedIterator,
    PageNumberIterator,
)

LIMIT = 10.0
PAGE = 100


class API(TrioAPISession):
    _retries = 5
    _backoff = 0.01
    _timeout = 5.0
    _adaptive = False
    _retry_budget = BudgetSettings(enabled=False)


def make(style: str, api: Any, prefix: str = "", **options: Any) -> PagedIterator:
    if style == "offset":
        return OffsetIterator(api, path=f"{prefix}/offset", **options)
    if style == "pages":
        return PageNumberIterator(
            api, path=f"{prefix}/pages", items_key="data", total_key="meta.total", **options
        )
    if style == "cursor":
        return CursorIterator(
            api,
            path=f"{prefix}/cursor",
            items_key="results",
            cursor_key="meta.next_cursor",
            limit=PAGE,
            **options,
        )
    return LinkIterator(api, path=f"{prefix}/link", limit=PAGE, **options)


STYLES = ["offset", "pages", "cursor", "link"]


def crawl_tasks() -> list[str]:
    """Names of the crawl's tasks still alive anywhere in this Trio run."""
    names: list[str] = []
    root = trio.lowlevel.current_root_task()
    assert root is not None
    pending = [root]
    for _ in range(10_000):  # bounded walk of the task tree
        if not pending:
            break
        task = pending.pop()
        names.append(task.name)
        pending.extend(t for n in task.child_nurseries for t in n.child_tasks)
    return [name for name in names if "trestfly._crawl" in name]


def connections_busy(api: TrioAPISession) -> int:
    transport = api._session._transport  # type: ignore[union-attr]
    return int(getattr(transport, "in_flight", 0))


# ------------------------------------------------------------------ bounded prefetch


@pytest.mark.parametrize("prefetch", [1, 3])
@pytest.mark.parametrize("style", STYLES)
async def test_the_server_never_sees_a_page_more_than_prefetch_ahead(
    trio_server: TrioTestServer, style: str, prefetch: int
) -> None:
    reading = -1  # the page the consumer is reading
    leads: list[int] = []

    def check(served: Served) -> None:
        leads.append(served.start // PAGE - reading)

    collection = PagedCollection(size=20 * PAGE, on_request=check)
    collection.install(trio_server.app)
    ids: list[int] = []
    with trio.fail_after(LIMIT):
        async with (
            API(url=trio_server.base_url) as api,
            make(style, api).crawl(prefetch=prefetch) as records,
        ):
            async for record in records:
                ids.append(record["id"])
                if record["id"] % PAGE:
                    continue
                reading = record["id"] // PAGE
                # A slow consumer: it waits on each page until the crawler has
                # requested everything it may (the window is then full), so a
                # crawler running further ahead would be caught by `check`.
                ahead = min(reading + prefetch, 19)

                def requested(ahead: int = ahead) -> bool:
                    return any(s.start // PAGE == ahead for s in collection.served)

                await trio_server.wait_until(requested, timeout=5)
    assert ids == list(range(20 * PAGE))
    assert max(leads) == prefetch  # the window was used in full, and never exceeded


async def test_a_total_first_then_the_window_in_full(trio_server: TrioTestServer) -> None:
    # Offset pages with a total: the first page alone, then `prefetch` pages at once.
    held = trio.Event()
    arrived: list[int] = []

    async def offsets(request: RecordedRequest) -> Any:
        start = int(request.params["offset"][0])
        arrived.append(start)
        if start:
            await held.wait()
        return respond(
            json={"items": [{"id": i} for i in range(start, start + PAGE)], "total": 1000}
        )

    trio_server.app.script("/held", offsets)
    with trio.fail_after(LIMIT):
        async with (
            API(url=trio_server.base_url) as api,
            OffsetIterator(api, path="/held").crawl(prefetch=4) as records,
        ):
            first = await records.__anext__()
            await trio_server.wait_until(lambda: len(arrived) == 5, timeout=5)
            assert sorted(arrived) == [0, 100, 200, 300, 400]
            held.set()
            rest = [record["id"] async for record in records]
    assert [first["id"], *rest] == list(range(1000))


# ------------------------------------------------------------------ cancellation


def stalled_after_first_page(server: TrioTestServer) -> None:
    def offsets(request: RecordedRequest) -> Any:
        start = int(request.params["offset"][0])
        page = respond(
            json={"items": [{"id": i} for i in range(start, start + PAGE)], "total": 10**6}
        )
        return page if start == 0 else stall(30, then=page)

    server.app.script("/stalled", offsets)


async def assert_nothing_left(api: TrioAPISession, server: TrioTestServer) -> None:
    assert crawl_tasks() == []
    assert api.stats.in_flight == 0
    assert connections_busy(api) == 0
    # Every connection slot is usable again: a request that needs one gets it.
    server.app.script("/ping", respond(json={"ok": True}))
    assert await api.get("ping", conv_json=True) == {"ok": True}


async def test_an_outer_cancel_scope_stops_every_fetch(trio_server: TrioTestServer) -> None:
    stalled_after_first_page(trio_server)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url, max_concurrency=4) as api:
            iterator = OffsetIterator(api, path="/stalled")
            with trio.CancelScope() as scope:
                async with iterator.crawl(prefetch=4) as records:
                    async for _ in records:
                        if iterator.count == PAGE:
                            # Page 0 read; pages 1..4 hang on the server.
                            await trio_server.wait_until(lambda: len(trio_server.requests) == 5)
                            assert api.stats.in_flight == 4
                            scope.cancel()
            assert scope.cancelled_caught
            await assert_nothing_left(api, trio_server)
    assert iterator.position == Position(PAGE)


async def test_a_cancel_while_waiting_for_a_page(trio_server: TrioTestServer) -> None:
    stalled_after_first_page(trio_server)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url, max_concurrency=2) as api:
            iterator = OffsetIterator(api, path="/stalled")

            async def cancel_when_stuck(scope: trio.CancelScope) -> None:
                await trio_server.wait_until(lambda: len(trio_server.requests) == 3)
                for _ in range(1000):  # until the consumer has read page 0
                    if iterator.count == PAGE:
                        break
                    await trio.sleep(0.001)
                await trio.testing.wait_all_tasks_blocked()  # it now waits for page 1
                scope.cancel()

            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cancel_when_stuck, scope)
                    async with iterator.crawl(prefetch=2) as records:
                        async for _ in records:  # hangs on page 1
                            pass
            assert scope.cancelled_caught
            await assert_nothing_left(api, trio_server)
    assert iterator.count == PAGE and iterator.position == Position(PAGE)


async def test_break_stops_every_fetch(trio_server: TrioTestServer) -> None:
    stalled_after_first_page(trio_server)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url, max_concurrency=3) as api:
            iterator = OffsetIterator(api, path="/stalled")
            async with iterator.crawl(prefetch=3) as records:
                async for record in records:
                    if record["id"] == 42:
                        await trio_server.wait_until(lambda: len(trio_server.requests) == 4)
                        break
            await assert_nothing_left(api, trio_server)
            assert iterator.position == Position(43)
            with pytest.raises(errors.TrestflyError, match="block has ended"):
                await records.__anext__()


async def test_an_exception_in_the_block_is_raised_as_itself(
    trio_server: TrioTestServer,
) -> None:
    stalled_after_first_page(trio_server)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url, max_concurrency=3) as api:
            with pytest.raises(KeyError, match="mine") as caught:  # not an ExceptionGroup
                async with OffsetIterator(api, path="/stalled").crawl(prefetch=3) as records:
                    async for _ in records:
                        await trio_server.wait_until(lambda: len(trio_server.requests) == 4)
                        raise KeyError("mine") from ValueError("the cause")
            assert isinstance(caught.value.__cause__, ValueError)  # kept, not cut
            await assert_nothing_left(api, trio_server)


def _mock_api(failing: str | None = None) -> API:
    """30 offset records at any path; the page at offset 10 of ``failing`` answers 404."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        if request.url.path == failing and offset == 10:
            return httpx.Response(404, json={"error": "gone"})
        records = [{"id": i} for i in range(offset, min(offset + 10, 30))]
        return httpx.Response(200, json={"items": records, "total": 30})

    return API(url="http://test.local", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("many", [False, True])
async def test_a_group_raised_in_the_block_comes_out_whole(many: bool) -> None:
    leaf = KeyError("k")
    async with _mock_api() as api:
        iterator = OffsetIterator(api, path="/a", limit=10)
        with trio.fail_after(LIMIT), pytest.raises(ExceptionGroup) as caught:
            crawl = crawl_many({"a": iterator}) if many else iterator.crawl()
            async with crawl as records:
                async for _ in records:
                    raise ExceptionGroup("my batch failed", [ExceptionGroup("inner", [leaf])])
    # The caller's own group, not its leaf nor a nursery's wrapper.
    assert caught.value.message == "my batch failed"
    (inner,) = caught.value.exceptions
    assert isinstance(inner, ExceptionGroup)
    assert inner.message == "inner"
    assert inner.exceptions == (leaf,)


async def test_a_crawl_never_ends_silently_after_raising_a_failed_page() -> None:
    got: list[int] = []
    async with _mock_api(failing="/a") as api:
        iterator = OffsetIterator(api, path="/a", limit=10)
        with trio.fail_after(LIMIT):
            async with iterator.crawl(prefetch=2) as records:
                with pytest.raises(errors.NotFoundError):
                    async for record in records:
                        got.append(record["id"])
                # The loop caught it and asks again: an error each time, never an end.
                for _ in range(2):
                    with pytest.raises(errors.TrestflyError, match="earlier failure") as again:
                        await records.__anext__()
                    assert "resume from Position(page=10, index=0" in str(again.value)
                    assert isinstance(again.value.__cause__, errors.NotFoundError)
    assert got == list(range(10))
    assert iterator.position == Position(10)


KEY = "k3y-echoed-in-links"


def _keyed_link_api(second: Callable[[], httpx.Response]) -> API:
    """A link collection whose next link echoes the caller's api_key; ``second`` is
    the answer for the page it links to."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/second":
            return second()
        link = f'<http://test.local/second?api_key={KEY}&page=2>; rel="next"'
        return httpx.Response(200, json=[{"id": 1}], headers={"link": link})

    return API(url="http://test.local", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("many", [False, True])
async def test_a_stopped_crawl_names_where_to_resume_without_the_key(many: bool) -> None:
    async with _keyed_link_api(lambda: httpx.Response(404)) as api:
        iterator = LinkIterator(api, path="/first", params={"api_key": KEY})
        with trio.fail_after(LIMIT):
            crawl = crawl_many({"a": iterator}) if many else iterator.crawl()
            async with crawl as records:
                with pytest.raises(errors.NotFoundError):
                    async for _ in records:
                        pass
                with pytest.raises(errors.TrestflyError, match="earlier failure") as again:
                    await records.__anext__()
    assert "from Position(page='http://test.local/second?api_key=REDACTED&page=2'" in str(
        again.value
    )
    assert KEY not in str(again.value)
    # The position itself keeps the real link: it is what a resumed walk requests.
    assert isinstance(iterator.position.page, str) and KEY in iterator.position.page


async def test_a_collected_failure_is_logged_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def html() -> httpx.Response:
        return httpx.Response(200, text="<html>", headers={"content-type": "text/html"})

    async with _keyed_link_api(html) as api:
        iterator = LinkIterator(api, path="/first", params={"api_key": KEY})
        with trio.fail_after(LIMIT), caplog.at_level(logging.WARNING, logger="trestfly.crawl"):
            async with crawl_many({"a": iterator}, on_error="collect") as records:
                async for _ in records:
                    pass
    assert isinstance(records.errors["a"], errors.PaginationError)
    assert "crawl of source 'a' failed" in caplog.text
    assert "second?api_key=REDACTED&page=2" in caplog.text
    assert KEY not in caplog.text


async def test_one_walk_at_a_time(trio_server: TrioTestServer) -> None:
    PagedCollection(size=300).install(trio_server.app)
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            iterator = make("offset", api)
            async with iterator.crawl(prefetch=2) as records:
                with pytest.raises(errors.TrestflyError, match="already being iterated"):
                    await iterator.__anext__()
                with pytest.raises(errors.TrestflyError, match="already being iterated"):
                    async with iterator.crawl():
                        pass
                assert len([r async for r in records]) == 300


# ------------------------------------------------------------------ crawl_many


def three_sources(server: TrioTestServer, **options: Any) -> dict[str, PagedCollection]:
    collections = {
        "a": PagedCollection(size=1000, **options),
        "b": PagedCollection(size=777, **options),
        "c": PagedCollection(size=1234, **options),
    }
    for key, collection in collections.items():
        collection.install(server.app, prefix=f"/{key}")
    return collections


async def test_crawl_many_merges_records_tagged_by_source(trio_server: TrioTestServer) -> None:
    collections = three_sources(trio_server)
    got: dict[str, list[int]] = {key: [] for key in collections}
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            sources = {
                "a": make("offset", api, "/a"),
                "b": make("cursor", api, "/b"),
                "c": make("link", api, "/c"),
            }
            async with crawl_many(sources, limit=3, prefetch=2) as records:
                async for source, record in records:
                    got[source].append(record["id"])
            assert api.stats.in_flight == 0
    assert got == {key: list(range(c.size)) for key, c in collections.items()}
    assert sorted(records.finished) == ["a", "b", "c"] and records.errors == {}
    assert all(it.position.done for it in sources.values())


async def test_crawl_many_keeps_at_most_limit_sources_in_flight(
    trio_server: TrioTestServer,
) -> None:
    started: list[str] = []
    records_view: list[Any] = []
    worst = 0

    def hook(key: str) -> Any:
        def on_request(served: Served) -> None:
            nonlocal worst
            if key not in started:
                started.append(key)
            done = set(records_view[0].finished) if records_view else set()
            worst = max(worst, len(set(started) - done))

        return on_request

    keys = [f"s{n}" for n in range(6)]
    for key in keys:
        PagedCollection(size=250, on_request=hook(key)).install(trio_server.app, prefix=f"/{key}")
    got: dict[str, list[int]] = {key: [] for key in keys}
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            sources = {key: make(STYLES[n % 4], api, f"/{key}") for n, key in enumerate(keys)}
            async with crawl_many(sources, limit=2, prefetch=2) as records:
                records_view.append(records)
                async for source, record in records:
                    got[source].append(record["id"])
    assert got == {key: list(range(250)) for key in keys}
    assert sorted(started) == keys
    assert worst == 2


def fail_source_b(server: TrioTestServer, collections: dict[str, PagedCollection]) -> None:
    """Source b (cursor style) answers 404 for its third page, for good."""
    cursors = collections["b"]._cursor

    def broken(request: RecordedRequest) -> Any:
        if len([r for r in server.requests if r.path == "/b/cursor"]) >= 3:
            return respond(404, json={"error": "gone"})
        return cursors(request)

    server.app.script("/b/cursor", broken)


async def test_crawl_many_cancels_everything_on_a_failure_by_default(
    trio_server: TrioTestServer,
) -> None:
    collections = three_sources(trio_server)
    fail_source_b(trio_server, collections)
    got: dict[str, list[int]] = {key: [] for key in collections}
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            sources = {
                "a": make("offset", api, "/a"),
                "b": make("cursor", api, "/b"),
                "c": make("pages", api, "/c"),
            }
            with pytest.raises(errors.NotFoundError) as caught:
                async with crawl_many(sources, limit=3, prefetch=2) as records:
                    async for source, record in records:
                        got[source].append(record["id"])
            assert crawl_tasks() == []
            assert api.stats.in_flight == 0
            requests = len(trio_server.requests)
            await trio.sleep(0.05)
    assert "while crawling source 'b'" in (caught.value.__notes__ or [""])[0]
    assert got["b"] == list(range(200))  # everything before the failed page
    assert len(trio_server.requests) == requests  # nothing runs after the block


async def test_crawl_many_stays_stopped_after_raising_a_failure() -> None:
    got: dict[str, list[int]] = {"a": [], "b": []}
    async with _mock_api(failing="/a") as api:
        sources = {key: OffsetIterator(api, path=f"/{key}", limit=10) for key in got}
        with trio.fail_after(LIMIT):
            async with crawl_many(sources, limit=2) as records:
                with pytest.raises(errors.NotFoundError):
                    async for key, record in records:
                        got[key].append(record["id"])
                # Caught, and iterated again: the failed source must not just vanish.
                with pytest.raises(errors.TrestflyError, match="earlier failure") as again:
                    await records.__anext__()
    assert "resume source 'a' from Position(page=10, index=0" in str(again.value)
    assert isinstance(again.value.__cause__, errors.NotFoundError)
    assert got["a"] == list(range(10))
    assert sources["a"].position == Position(10)


async def test_crawl_many_can_collect_failures_per_source(
    trio_server: TrioTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    collections = three_sources(trio_server)
    fail_source_b(trio_server, collections)
    got: dict[str, list[int]] = {key: [] for key in collections}
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            sources = {
                "a": make("offset", api, "/a"),
                "b": make("cursor", api, "/b"),
                "c": make("link", api, "/c"),
            }
            with caplog.at_level(logging.WARNING, logger="trestfly.crawl"):
                async with crawl_many(sources, limit=2, on_error="collect") as records:
                    async for source, record in records:
                        got[source].append(record["id"])
            # The failed source resumes where it failed, once the server is fixed.
            collections["b"].install(trio_server.app, prefix="/b")
            resumed = make("cursor", api, "/b", position=sources["b"].position)
            rest = [record["id"] async for record in resumed]
    assert got == {"a": list(range(1000)), "b": list(range(200)), "c": list(range(1234))}
    assert list(records.errors) == ["b"]
    assert isinstance(records.errors["b"], errors.NotFoundError)
    assert sorted(records.finished) == ["a", "c"]
    assert rest == list(range(200, 777))
    assert "crawl of source 'b' failed" in caplog.text


async def test_crawl_many_of_nothing_and_bad_arguments() -> None:
    nothing: dict[str, PagedIterator] = {}
    async with crawl_many(nothing) as records:
        assert [item async for item in records] == []
    iterator = OffsetIterator(TrioAPISession(url="http://api.test"))  # never sent through
    with pytest.raises(errors.UnexpectedValueError, match="same iterator"):
        async with crawl_many({"a": iterator, "b": iterator}):
            pass
    bad: dict[str, Any]
    for bad in ({"limit": 0}, {"prefetch": 0}, {"on_error": "ignore"}):
        with pytest.raises(errors.UnexpectedValueError):
            async with crawl_many({"a": iterator}, **bad):
                pass
    assert not iterator._busy  # refused without claiming it
    not_sources: Any
    for not_sources, needle in (
        ([iterator], "mapping of key to paged iterator, got list"),
        ({"a": iterator, "plain": APIIterator(None)}, r"sources \['plain'\] are not paged"),
    ):
        with pytest.raises(errors.UnexpectedValueError, match=needle):
            async with crawl_many(not_sources):
                pass
    assert not iterator._busy


def test_crawl_many_hands_out_the_rest_of_a_page_begun_before_it() -> None:
    """A source walked in part gives the rest of its page first, as a lone crawl does
    (the page taken next used to replace it: records lost, the source still done)."""

    async def main() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        sources: dict[str, PagedIterator] = {
            "offsets": MemoryOffsets(None, size=23, limit=10, seed=1),
            "cursors": MemoryCursors(None, size=17, limit=5, seed=2),
        }
        for iterator in sources.values():
            async for record in iterator:
                if record["id"] == 2:
                    break  # three records into the first page
        first: list[tuple[str, int]] = []
        async with crawl_many(sources, prefetch=2) as records:
            async for key, record in records:
                first.append((key, record["id"]))
                if len(first) == 12:
                    break  # again in the middle of pages
        rest: list[tuple[str, int]] = []
        async with crawl_many(sources, prefetch=2) as records:
            rest = [(key, record["id"]) async for key, record in records]
        assert all(iterator.position.done for iterator in sources.values())
        assert [iterator.count for iterator in sources.values()] == [23, 17]
        return first, rest

    first, rest = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    got = first + rest
    for key, size in (("offsets", 23), ("cursors", 17)):
        assert [number for source, number in got if source == key] == list(range(3, size))


class _CancelAfterNotify(trio.abc.Instrument):
    """Cancels ``scope`` as the task named ``page 2`` exits: after it set its page and
    woke the consumer (waiting for page 1), before the consumer runs."""

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("page 2"):
            self.scope.cancel()


class StuckSecondPage(OffsetIterator):
    """Page 0 at once, page 1 never, page 2 once its turn comes (see _CancelAfterNotify)."""

    limit = 10

    async def _fetch(self, address: Any) -> Page:
        if address == 10:
            await trio.sleep_forever()
        if address == 20:
            trio.lowlevel.current_task().name = "page 2"
            await trio.sleep(0.1)
        return Page([{"id": i} for i in range(address, address + 10)], total=100)


@pytest.mark.parametrize("many", [False, True], ids=["crawl", "crawl_many"])
async def test_a_cancel_that_wakes_the_consumer_late_cancels_it_cleanly(
    many: bool, autojump_clock: trio.testing.MockClock
) -> None:
    # Page 2 arrives and wakes the consumer waiting for page 1; the scope is cancelled
    # before the consumer runs; page 1's fetch ends cancelled, with no page.  A consumer
    # that ran first (batch order is random) took it and raised "a page the walk needs
    # was cancelled (a bug in trestfly)" out of the move_on_after; 23 runs in 1,000 of a
    # random stress.  Forty rounds: each ordering comes up.
    for _ in range(40):
        iterator = StuckSecondPage(None)
        got: list[int] = []
        with trio.fail_after(LIMIT), trio.CancelScope() as scope:
            instrument = _CancelAfterNotify(scope)
            trio.lowlevel.add_instrument(instrument)
            try:
                if many:
                    async with crawl_many({"a": iterator}, prefetch=3) as pairs:
                        async for _, record in pairs:
                            got.append(record["id"])
                else:
                    async with iterator.crawl(prefetch=3) as records:
                        async for record in records:
                            got.append(record["id"])
            finally:
                trio.lowlevel.remove_instrument(instrument)
        assert scope.cancelled_caught
        assert got == list(range(10))
        assert iterator.position == Position(10)


class HugeTotal(OffsetIterator):
    """Short pages under a total no float holds (10**400)."""

    async def _fetch(self, address: Any) -> Page:
        return Page([{"id": address}], total=10**400)


async def test_a_total_past_float_range_is_a_pagination_error_in_a_crawl() -> None:
    for iterator in (HugeTotal(None, limit=2), HugeTotal(None, limit=2, max_items=10**400)):
        with pytest.raises(errors.PaginationError, match="says more follow"):
            async with iterator.crawl(prefetch=2) as records:
                async for _ in records:
                    pass  # the first page is short: the walk stops there


# ------------------------------------------------------------------ rich


async def test_a_failing_progress_callback_is_raised_not_collected(
    trio_server: TrioTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug of the caller's, not a source's failure: collected, it failed every source
    # one by one behind a WARNING each, and the crawl ended as if finished.
    three_sources(trio_server)

    def broken(progress: CrawlProgress) -> None:
        raise ZeroDivisionError("a bug in my progress callback")

    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            sources = {key: make("offset", api, f"/{key}", progress=broken) for key in "ab"}
            with pytest.raises(ZeroDivisionError, match="a bug in my progress callback") as bug:
                async with crawl_many(sources, on_error="collect") as records:
                    async for _ in records:
                        pass
    assert any("while crawling source" in note for note in bug.value.__notes__)
    assert "crawl of source" not in caplog.text  # not collected as a source's failure


async def test_the_rich_adapter_draws_one_bar_per_crawl(trio_server: TrioTestServer) -> None:
    from rich.console import Console  # the test extra installs rich

    from trestfly.contrib.rich import RichProgress

    three_sources(trio_server)
    output = io.StringIO()
    with trio.fail_after(LIMIT):
        async with API(url=trio_server.base_url) as api:
            with RichProgress(console=Console(file=output, width=120)) as bars:
                sources = {
                    "a": make("offset", api, "/a", progress=bars.track("a")),
                    "b": make("cursor", api, "/b", progress=bars.track("b")),
                }
                async with crawl_many(sources) as records:
                    async for _ in records:
                        pass
    a, b = bars.progress.tasks
    assert (a.completed, a.total, a.fields["pages"]) == (1000, 1000, 10)
    # The cursor walk has no total until its last page, which completes its bar.
    assert (b.completed, b.total, b.fields["pages"]) == (777, 777, 8)
    assert "1000/1000" in output.getvalue()


@pytest.mark.parametrize("label", ["C:\\exports\\", "deploy:rocket:"])
def test_the_rich_adapter_shows_a_label_exactly_as_given(label: str) -> None:
    from rich.console import Console

    from trestfly.contrib.rich import RichProgress

    # Escaped as markup, a trailing backslash was doubled and ":rocket:" became an emoji.
    output = io.StringIO()
    with RichProgress(console=Console(file=output, width=100)) as bars:
        bars.track(label)(CrawlProgress(records=1, pages=1, total=2, elapsed=1.0, rate=1.0))
        bars.progress.refresh()
    last = output.getvalue().strip().splitlines()[-1]
    assert last.startswith(label + " "), repr(last)


def test_the_rich_adapter_shows_a_label_as_written_not_as_markup() -> None:
    from rich.console import Console

    from trestfly.contrib.rich import RichProgress

    # Read as markup, "groups[/]" crashed the display and "team[admin]" lost "[admin]".
    output = io.StringIO()
    with RichProgress(console=Console(file=output, width=120)) as bars:
        for label in ("groups[/]", "team[admin]"):
            bars.track(label)(CrawlProgress(records=5, pages=1, total=10, elapsed=1.0, rate=5.0))
        bars.progress.refresh()
    shown = output.getvalue()
    assert "groups[/]" in shown and "team[admin]" in shown


# ------------------------------------------------------------------ the model


class MemoryOffsets(OffsetIterator):
    """Offset pages from memory, each after a delay drawn per page (on a mock clock)."""

    size: int = 0
    seed: int = 0
    start_offset: int = 0

    def __init__(self, api: Any, **attrs: Any) -> None:
        super().__init__(api, **attrs)
        self.fetched: list[int] = []
        self.reading = -1
        self.lead = 0

    async def _fetch(self, address: Any) -> Page:
        page = (address - self.start_offset) // self.limit
        self.lead = max(self.lead, page - self.reading)
        self.fetched.append(address)
        await trio.sleep(random.Random(self.seed * 7919 + address).random())
        records = [{"id": i} for i in range(address, min(address + self.limit, self.size))]
        return Page(records, total=self.size)


class MemoryCursors(CursorIterator):
    """Cursor pages from memory: the cursor is the next offset, as a string."""

    size: int = 0
    seed: int = 0
    limit: int | None = 10

    def __init__(self, api: Any, **attrs: Any) -> None:
        super().__init__(api, **attrs)
        self.fetched: list[Any] = []

    async def _fetch(self, address: Any) -> Page:
        self.fetched.append(address)
        start = int(address or 0)
        await trio.sleep(random.Random(self.seed * 7919 + start).random())
        assert self.limit is not None
        stop = min(start + self.limit, self.size)
        records = [{"id": i} for i in range(start, stop)]
        return Page(records, next=str(stop) if stop < self.size else None)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(0, 300),
    limit=st.integers(1, 40),
    prefetch=st.integers(1, 6),
    start=st.integers(0, 320),
    max_items=st.none() | st.integers(0, 320),
    max_pages=st.none() | st.integers(0, 12),
    stop_after=st.none() | st.integers(0, 320),
    chain=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_any_walk_matches_the_model(
    size: int,
    limit: int,
    prefetch: int,
    start: int,
    max_items: int | None,
    max_pages: int | None,
    stop_after: int | None,
    chain: bool,
    seed: int,
) -> None:
    """Crawl, stop, resume: always exactly the records the model says, in order."""
    common = {"size": size, "limit": limit, "seed": seed}
    if chain:
        start = min(start, size)
        first: PagedIterator = MemoryCursors(
            None, position=Position(str(start) if start else None), **common
        )
    else:
        first = MemoryOffsets(None, position=Position(start), start_offset=start, **common)
    first.max_items, first.max_pages = max_items, max_pages
    expected = list(range(start, size))
    if max_pages is not None:
        expected = expected[: max_pages * limit]
    if max_items is not None:
        expected = expected[:max_items]

    async def main() -> tuple[list[int], list[int]]:
        got: list[int] = []
        async with first.crawl(prefetch=prefetch) as records:
            async for record in records:
                got.append(record["id"])
                if isinstance(first, MemoryOffsets):
                    first.reading = (record["id"] - start) // limit
                if len(got) == stop_after:
                    break
        rest: list[int] = []
        if stop_after is not None and len(got) == stop_after:
            # The rest of the walk, from the position, with what the limits leave.
            cls = type(first)
            options: dict[str, Any] = dict(common)
            if isinstance(first, MemoryOffsets):
                position = first.position
                assert isinstance(position.page, int)
                options["start_offset"] = position.page
            resumed = cls(None, position=first.position, **options)
            if max_items is not None:
                resumed.max_items = max_items - len(got)
            async with resumed.crawl(prefetch=prefetch) as records:
                rest = [record["id"] async for record in records]
            if max_pages is not None:
                rest = rest[: len(expected) - len(got)]
        return got, rest

    got, rest = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert got + rest == expected
    if isinstance(first, MemoryOffsets):
        assert first.lead <= prefetch  # never further ahead than the window
        needed = 0 if max_items == 0 or max_pages == 0 else max(1, -(-len(got) // limit))
        if stop_after is None:
            # Known total: no page past the end, none past the limits.
            assert len(first.fetched) == needed
    assert isinstance(first, MemoryOffsets | MemoryCursors)
    assert len(set(first.fetched)) == len(first.fetched)  # no page fetched twice


def _offsets(total: int) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        records = list(range(offset, min(offset + PAGE, total)))
        return httpx.Response(200, json={"items": records, "total": total})

    return handler


async def test_two_tasks_reading_one_crawl_get_every_record_once() -> None:
    # One task took the next page while the other still handed out the current one:
    # the rest of that page was thrown away, and the walk still ended done (202 of 300).
    api = API(url="http://t.local", transport=httpx.MockTransport(_offsets(300)))
    got: list[int] = []

    async def consume(records: Any) -> None:
        async for record in records:
            got.append(record)
            await trio.lowlevel.checkpoint()  # any checkpoint in the loop body

    async with api:
        iterator = OffsetIterator(api, path="/items")
        with trio.fail_after(LIMIT):
            async with iterator.crawl(prefetch=2) as records, trio.open_nursery() as nursery:
                nursery.start_soon(consume, records)
                nursery.start_soon(consume, records)
    assert sorted(got) == list(range(300))
    assert iterator.position.done


@pytest.mark.parametrize("how", ["async for", "crawl", "crawl_many"])
async def test_a_page_fetch_raising_stop_async_iteration_fails_the_walk(how: str) -> None:
    # A spent `await anext(...)` in an override of _fetch: out of __anext__ the
    # StopAsyncIteration ended the walk silently, 200 of 500 records (PEP 479's reason).
    class Items(OffsetIterator):
        async def _fetch(self, address: Any) -> Page:
            if address == 200:
                raise StopAsyncIteration
            return await super()._fetch(address)

    got: list[Any] = []
    async with API(url="http://t.local", transport=httpx.MockTransport(_offsets(500))) as api:
        iterator = Items(api, path="/items")
        with trio.fail_after(LIMIT), pytest.raises(errors.TrestflyError) as failed:
            if how == "async for":
                async for record in iterator:
                    got.append(record)
            elif how == "crawl":
                async with iterator.crawl(prefetch=2) as records:
                    async for record in records:
                        got.append(record)
            else:
                async with crawl_many({"a": iterator}, on_error="cancel") as merged:
                    async for _, record in merged:
                        got.append(record)
    assert isinstance(failed.value.__cause__, StopAsyncIteration)
    assert got == list(range(200))
    assert not iterator.position.done


# ------------------------------------------------------------------ interrupts


def _interrupting(interrupt: type[BaseException], at_offset: int) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        if offset == at_offset:
            raise interrupt
        return httpx.Response(200, json={"items": list(range(offset, offset + 10)), "total": 100})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("many", [False, True])
async def test_an_interrupt_in_a_page_fetch_comes_out_of_a_crawl_as_itself(
    many: bool, interrupt: type[BaseException]
) -> None:
    # The slot was marked done with no page: the waiting consumer raised "a page the
    # walk needs was cancelled (a bug in trestfly)" beside the interrupt, in a group
    # (crawl_many: the interrupt in a group of its own inside it).
    transport = _interrupting(interrupt, at_offset=0)
    async with TrioAPISession(url="http://t.local", transport=transport) as api:
        iterator = OffsetIterator(api, path="/items", limit=10)
        crawl = crawl_many({"a": iterator}) if many else iterator.crawl(prefetch=2)
        with trio.fail_after(LIMIT), pytest.raises(interrupt):
            async with crawl as records:
                async for _ in records:
                    pass


async def test_crawl_many_raises_a_fetchs_interrupt_as_itself_while_the_loop_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with TrioAPISession(
        url="http://t.local", transport=_interrupting(KeyboardInterrupt, at_offset=10)
    ) as api:
        iterator = OffsetIterator(api, path="/items", limit=10)
        with pytest.raises(KeyboardInterrupt):
            async with crawl_many({"a": iterator}, prefetch=2) as records:
                async for _ in records:
                    await trio.sleep(1)  # busy with each record, not waiting for a page


# ------------------------------------------------------------------ malformed pages


BAD_PAGES: dict[str, tuple[Any, str]] = {
    # What a _fetch override returned for the third page, and what the error names.
    "records None": (Page(None), "records are a NoneType"),  # type: ignore[arg-type]
    "total as text": (Page(list(range(20, 30)), total="50"), "total is '50'"),  # type: ignore[arg-type]
    "negative total": (Page(list(range(20, 30)), total=-1), "total is -1"),
    "total_pages bool": (Page(list(range(20, 30)), total_pages=True), "total_pages is True"),
    "a dict": ({"items": list(range(20, 30)), "total": 50}, "returned a dict, expected a Page"),
}


class BadOffsets(OffsetIterator):
    """50 records, 10 a page; the page at offset 20 is ``bad``."""

    bad: Any = None

    async def _fetch(self, address: Any) -> Any:
        await trio.lowlevel.checkpoint()
        if address == 20:
            return self.bad
        return Page(list(range(address, min(address + 10, 50))), total=50)


class BadCursors(CursorIterator):
    """50 records, 10 a page, chained; the third page is ``bad``."""

    bad: Any = None
    limit: int | None = 10

    async def _fetch(self, address: Any) -> Any:
        await trio.lowlevel.checkpoint()
        start = int(address or 0)
        if start == 20:
            return self.bad
        return Page(list(range(start, start + 10)), next=str(start + 10) if start < 40 else None)


def _bad(chain: bool, kind: str) -> PagedIterator:
    bad, _ = BAD_PAGES[kind]
    if chain:
        return BadCursors(None, bad=bad)
    return BadOffsets(None, limit=10, bad=bad)


@pytest.mark.parametrize("kind", list(BAD_PAGES))
@pytest.mark.parametrize("chain", [False, True])
async def test_a_malformed_page_is_a_pagination_error_where_the_loop_reaches_it(
    chain: bool, kind: str
) -> None:
    # Unchecked, it crashed the fetch task: a bare TypeError (or AttributeError) cancelled
    # the consumer at once, after 1 of the 20 records before the page.
    iterator = _bad(chain, kind)
    got: list[int] = []
    with trio.fail_after(LIMIT), pytest.raises(errors.PaginationError) as failed:
        async with iterator.crawl(prefetch=4) as records:
            async for record in records:
                got.append(record)
                await trio.lowlevel.checkpoint()  # the fetches ahead arrive meanwhile
    assert got == list(range(20))
    assert type(iterator).__name__ in str(failed.value)
    assert BAD_PAGES[kind][1] in str(failed.value)
    assert iterator.position.page == ("20" if chain else 20)
    assert not iterator.position.done


@pytest.mark.parametrize("kind", list(BAD_PAGES))
@pytest.mark.parametrize("chain", [False, True])
async def test_a_malformed_page_fails_a_plain_walk_as_a_crawl(chain: bool, kind: str) -> None:
    # Without a crawl the walk failed with a bare TypeError or AttributeError.
    iterator = _bad(chain, kind)
    got: list[int] = []
    with trio.fail_after(LIMIT), pytest.raises(errors.PaginationError) as failed:
        async for record in iterator:
            got.append(record)
    assert got == list(range(20))
    assert BAD_PAGES[kind][1] in str(failed.value)


@pytest.mark.parametrize("kind", ["records None", "total as text", "a dict"])
@pytest.mark.parametrize("chain", [False, True])
async def test_crawl_many_collects_a_malformed_page_and_finishes_the_others(
    chain: bool, kind: str
) -> None:
    # The bad page's TypeError came out of the block and cancelled the healthy source.
    got: dict[str, list[int]] = {"bad": [], "good": []}
    # The good source stops before its own page at offset 20 (None).
    good = BadOffsets(None, limit=10, max_items=20, bad=None)
    sources = {"bad": _bad(chain, kind), "good": good}
    with trio.fail_after(LIMIT):
        async with crawl_many(sources, prefetch=4, on_error="collect") as records:
            async for key, record in records:
                got[key].append(record)
    assert got == {"bad": list(range(20)), "good": list(range(20))}
    assert records.finished == ["good"]
    assert isinstance(records.errors["bad"], errors.PaginationError)
    assert BAD_PAGES[kind][1] in str(records.errors["bad"])


# ------------------------------------------------------------------ entered once


async def test_a_crawl_block_is_entered_once() -> None:
    # A second entry of the spent generator context manager raised a bare AttributeError.
    iterator = BadOffsets(None, limit=10, bad=Page(list(range(20, 30)), total=50))
    crawl = iterator.crawl(prefetch=2)
    with trio.fail_after(LIMIT):
        async with crawl as records:
            async for record in records:
                if record == 4:
                    break
        with pytest.raises(errors.TrestflyError, match=r"crawl\(\.\.\.\) block can be entered"):
            async with crawl:
                pass
        # A new crawl goes on where the iterator stands.
        async with iterator.crawl(prefetch=2) as records:
            assert [record async for record in records] == list(range(5, 50))


async def test_a_crawl_many_block_is_entered_once() -> None:
    crawl = crawl_many({"a": BadOffsets(None, limit=10, max_items=20, bad=None)})
    with trio.fail_after(LIMIT):
        async with crawl as records:
            assert [record async for _, record in records] == list(range(20))
        with pytest.raises(errors.TrestflyError, match=r"crawl_many\(\.\.\.\) block can be"):
            async with crawl:
                pass
