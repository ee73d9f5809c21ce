"""APIIterator semantics: limits, counters, indexing, construction; one end-to-end walk.

Most tests serve pages from a list through a fake ``_get_page`` (no I/O).  The last ones
walk an offset/limit collection on the Trio test server through a real session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import RecordedRequest, Respond, TrioTestServer, respond

from trestfly import APIIterator, OffsetIterator, TrioAPISession, errors

DATA: tuple[int, ...] = tuple(range(100, 110))  # 10 records


class ListIterator(APIIterator):
    """Serves ``_data`` in pages of ``_sizes[n]`` records; no sizes left means empty pages."""

    _data: Sequence[Any] = ()
    _sizes: Sequence[int] = ()
    _offset: int = 0
    _report_total: int | None = None

    def __init__(self, api: Any, **attrs: Any) -> None:
        super().__init__(api, **attrs)
        self.fetches: list[tuple[int, int]] = []  # (offset, size) of every _get_page call

    async def _get_page(self) -> None:
        number = len(self.fetches)
        size = self._sizes[number] if number < len(self._sizes) else 0
        self.fetches.append((self._offset, size))
        self.page = list(self._data[self._offset : self._offset + size])
        self._offset += size
        if self._report_total is not None:
            self.total = self._report_total  # as an API announcing its total would


async def collect(iterator: APIIterator, *, bound: int = 1000) -> list[Any]:
    """Every record the iterator yields; fails instead of looping forever."""
    records: list[Any] = []
    async for record in iterator:
        records.append(record)
        assert len(records) <= bound, "iterator did not stop"
    return records


def pages_of(size: int, count: int = 20) -> list[int]:
    return [size] * count


# ------------------------------------------------------------------ stopping rules


async def test_walks_every_page_until_an_empty_one() -> None:
    it = ListIterator(None, _data=DATA, _sizes=[4, 4, 2])
    assert await collect(it) == list(DATA)
    # The fourth fetch returned an empty page, which ends the iteration.
    assert it.fetches == [(0, 4), (4, 4), (8, 2), (10, 0)]
    assert it.num_pages == 4
    assert it.count == 10


async def test_a_get_page_that_returns_its_records_is_refused() -> None:
    # A RESTfly port's slip: the returned list was dropped, and the walk ended empty.
    class Returns(APIIterator):
        async def _get_page(self) -> Any:
            return [1, 2]

    with pytest.raises(
        errors.UnexpectedValueError, match=r"Returns\._get_page\(\) returned a list"
    ):
        await collect(Returns(None))


async def test_a_get_page_that_leaves_the_last_page_is_refused() -> None:
    # No `self.page = []` on the last call: the same page was handed out for ever.
    class Stale(APIIterator):
        calls = 0

        async def _get_page(self) -> None:
            self.calls += 1
            if self.calls == 1:
                self.page = [1, 2]

    iterator = Stale(None)
    with pytest.raises(errors.UnexpectedValueError, match=r"left self\.page as it was"):
        await collect(iterator)
    assert iterator.count == 2  # the first page's records, once


async def test_a_subclass_init_that_skips_super_is_named() -> None:
    # The walk failed with a bare AttributeError: 'Skips' object has no attribute 'page'.
    class Skips(APIIterator):
        def __init__(self, api: Any) -> None:
            self.api = api  # no super().__init__(api)

        async def _get_page(self) -> None:
            self.page = [1]

    with pytest.raises(
        errors.TrestflyError,
        match=r"Skips has no _api or page: its __init__ must call super\(\)\.__init__\(api",
    ):
        await collect(Skips(None))

    class Users(OffsetIterator):
        path = "users"

        def __init__(self, api: Any) -> None:
            self.limit = 2  # no super().__init__(api)

    with pytest.raises(errors.TrestflyError, match=r"Users has no _api or page"):
        await collect(Users(TrioAPISession(url="http://api.test")))


async def test_a_page_refilled_in_place_is_a_new_page() -> None:
    pages = [[1, 2], [3], []]

    class InPlace(APIIterator):
        async def _get_page(self) -> None:
            self.page.clear()  # type: ignore[attr-defined]
            self.page.extend(pages.pop(0))  # type: ignore[attr-defined]

    iterator = InPlace(None)
    iterator.page = []
    assert await collect(iterator) == [1, 2, 3]


async def test_a_page_refilled_in_place_is_put_back_when_its_fetch_fails() -> None:
    # The page put back was the same list, holding the next page's records by then:
    # its tail was handed out, then the page fetched again (1, 2, 3, 7, 8, 4, ...).
    pages = [[1, 2, 3], [4, 5, 6, 7, 8], [4, 5, 6, 7, 8], []]
    fail = [False, True, False, False]

    class InPlace(APIIterator):
        async def _get_page(self) -> None:
            self.page.clear()  # type: ignore[attr-defined]
            self.page.extend(pages.pop(0))  # type: ignore[attr-defined]
            if fail.pop(0):
                self.total = "oops"  # type: ignore[assignment]

    iterator = InPlace(None)
    iterator.page = []
    got = []
    with pytest.raises(errors.UnexpectedValueError, match="set total to 'oops'"):
        async for record in iterator:
            got.append(record)
    got += await collect(iterator)
    assert got == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_ready_paginator_refuses_a_get_page_override() -> None:
    # Its walk never saw the override's pages: an empty one looped for ever, beyond
    # the reach of any cancel scope.
    class Users(OffsetIterator):
        path = "users"

        async def _get_page(self) -> None:
            self.page = []

    with pytest.raises(errors.UnexpectedValueError, match="Users overrides _get_page"):
        Users(TrioAPISession(url="http://api.test"))


async def test_stops_at_total_given_to_the_constructor() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(3), total=5)
    assert await collect(it) == list(DATA[:5])
    assert it.count == 5
    assert it.num_pages == 2  # the page holding record 5 is the last one fetched


async def test_stops_at_total_reported_by_the_page() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(4), _report_total=6)
    assert await collect(it) == list(DATA[:6])
    assert it.num_pages == 2
    assert it.total == 6


async def test_total_exactly_at_a_page_end_fetches_no_further_page() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(5), _report_total=10)
    assert await collect(it) == list(DATA)
    assert it.fetches == [(0, 5), (5, 5)]


async def test_reported_total_of_zero_yields_nothing() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(4), _report_total=0)
    assert await collect(it) == []
    assert it.num_pages == 1
    assert it.count == 0


async def test_stops_at_max_items() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(3), max_items=7)
    assert await collect(it) == list(DATA[:7])
    assert it.count == 7
    assert it.num_pages == 3


async def test_stops_at_max_pages() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(3), max_pages=2)
    assert await collect(it) == list(DATA[:6])
    assert it.num_pages == 2
    assert len(it.fetches) == 2


async def test_the_first_limit_reached_wins() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(2), total=9, max_items=5, max_pages=4)
    assert await collect(it) == list(DATA[:5])
    it = ListIterator(None, _data=DATA, _sizes=pages_of(2), total=9, max_items=8, max_pages=3)
    assert await collect(it) == list(DATA[:6])


async def test_none_means_unlimited() -> None:
    it = ListIterator(
        None, _data=DATA, _sizes=pages_of(1), total=None, max_items=None, max_pages=None
    )
    assert await collect(it) == list(DATA)
    assert it.num_pages == 11  # ten one-record pages, then the empty page


@pytest.mark.parametrize("limit", ["total", "max_items", "max_pages"])
async def test_zero_means_none_not_unlimited(limit: str) -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(3), **{limit: 0})
    assert await collect(it) == []
    assert it.fetches == []  # nothing was even fetched
    assert (it.count, it.page_count, it.num_pages) == (0, 0, 0)


async def test_an_exhausted_iterator_stays_exhausted() -> None:
    it = ListIterator(None, _data=DATA, _sizes=[2], max_items=2)
    assert await collect(it) == list(DATA[:2])
    for _ in range(3):
        with pytest.raises(StopAsyncIteration):
            await it.__anext__()
    assert it.count == 2


async def test_an_empty_page_ends_the_walk_for_good() -> None:
    # The source would answer again after its empty page: it must not be asked.
    it = ListIterator(None, _data=DATA, _sizes=[2, 0, 3])
    assert await collect(it) == list(DATA[:2])
    for _ in range(3):
        with pytest.raises(StopAsyncIteration):
            await it.__anext__()
    assert it.fetches == [(0, 2), (2, 0)]
    assert (it.count, it.num_pages) == (2, 2)


async def test_a_page_fetch_that_fails_after_setting_the_page_is_fetched_again() -> None:
    class SecondCallFails(APIIterator):
        """Sets the page, then fails once in a second call (for the total, say)."""

        failed = False

        async def _get_page(self) -> None:
            number = self.num_pages
            self.page = list(range(number * 3, number * 3 + 3)) if number < 3 else []
            if number == 0 and not self.failed:
                self.failed = True
                raise errors.TrestflyError("the call for the total failed")

    it = SecondCallFails(None)
    records = []
    with pytest.raises(errors.TrestflyError):
        async for record in it:
            records.append(record)
    records += await collect(it)  # resumed: the failed page comes whole, once
    assert records == list(range(9))


@pytest.mark.parametrize(
    ("page", "total", "needle"),
    [
        (None, None, "set page to a NoneType"),  # was a bare TypeError
        ({"items": [1]}, None, "set page to a dict"),  # was a bare KeyError
        ("abc", None, "set page to a str"),  # handed out "a", "b", "c"
        ([1, 2], "5", r"set total to '5'"),  # was a bare TypeError
        ([1, 2], -1, "set total to -1"),  # ended the walk silently
    ],
)
async def test_what_get_page_sets_is_checked(page: Any, total: Any, needle: str) -> None:
    class Careless(APIIterator):
        async def _get_page(self) -> None:
            self.page, self.total = page, total

    it = Careless(None)
    with pytest.raises(errors.UnexpectedValueError, match=rf"Careless._get_page\(\) {needle}"):
        await it.__anext__()
    assert (it.page, it.total, it.count) == ([], None, 0)  # as before the fetch


async def test_an_integral_float_total_from_get_page_is_a_count() -> None:
    class FromJSON(APIIterator):
        async def _get_page(self) -> None:
            self.page, self.total = [1, 2, 3], 3.0  # a JSON number

    it = FromJSON(None)
    assert [record async for record in it] == [1, 2, 3]
    assert it.total == 3 and isinstance(it.total, int)


async def test_two_tasks_cannot_walk_one_iterator_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class SlowPages(APIIterator):
        async def _get_page(self) -> None:
            number = self.num_pages
            await trio.sleep(1)
            self.page = list(range(number * 3, number * 3 + 3)) if number < 3 else []

    it = SlowPages(None)
    records: list[Any] = []

    async def walk() -> None:
        records.extend(await collect(it))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(walk)
        await trio.testing.wait_all_tasks_blocked()  # the walk waits for its first page
        with pytest.raises(errors.TrestflyError, match="one walk at a time"):
            await it.__anext__()
    assert records == list(range(9))  # the walk itself went on undisturbed


# ------------------------------------------------------------ counters and indexing


async def test_counters_at_every_step() -> None:
    it = ListIterator(None, _data=DATA, _sizes=[3, 2, 4])
    assert (it.count, it.page_count, it.num_pages) == (0, 0, 0)
    seen: list[tuple[int, int, int]] = []
    async for _ in it:
        seen.append((it.count, it.page_count, it.num_pages))
    assert seen == [
        (1, 1, 1),
        (2, 2, 1),
        (3, 3, 1),
        (4, 1, 2),
        (5, 2, 2),
        (6, 1, 3),
        (7, 2, 3),
        (8, 3, 3),
        (9, 4, 3),
    ]
    # The empty fourth page was fetched and counted, and reset the page position.
    assert (it.count, it.page_count, it.num_pages) == (9, 0, 4)


async def test_indexing_reads_the_current_page() -> None:
    it = ListIterator(None, _data=DATA, _sizes=[3, 3])
    assert it.get(0) is None  # no page yet
    assert it.get(0, "empty") == "empty"
    with pytest.raises(IndexError):
        it[0]

    first = await it.__anext__()
    assert first == DATA[0]
    assert (it[0], it[1], it[2], it[-1]) == (*DATA[0:3], DATA[2])
    assert it.get(2) == DATA[2]
    assert it.get(3) is None
    assert it.get(3, -1) == -1
    with pytest.raises(IndexError):
        it[3]

    for _ in range(3):
        await it.__anext__()  # the fourth record is the first of page two
    assert it[0] == DATA[3]
    assert it.get(-1) == DATA[5]
    assert it.get(-4, "none") == "none"


# ------------------------------------------------------------------ construction


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="no attribute 'limit'"):
        ListIterator(None, limit=10)
    with pytest.raises(errors.UnexpectedValueError):
        APIIterator(None, _offset=3)  # the base class declares no _offset


def test_declared_attributes_are_accepted() -> None:
    it = ListIterator(None, _offset=4, total=7, max_items=3, max_pages=2)
    assert (it._offset, it.total, it.max_items, it.max_pages) == (4, 7, 3, 2)
    assert ListIterator._offset == 0  # set on the instance, never on the class


def test_a_setting_holding_a_class_or_function_is_accepted_and_methods_are_not() -> None:
    # Any callable value was taken for a method: record_type=list was refused as
    # "no attribute" though the class declares it.
    class Typed(ListIterator):
        record_type: type = dict
        sort_key: Any = None

        @property
        def first(self) -> Any:
            return self.page[0]

        @staticmethod
        def helper() -> None: ...

    it = Typed(None, record_type=list, sort_key=len)
    assert (it.record_type, it.sort_key) == (list, len)
    for method in ("_get_page", "first", "helper", "get"):
        with pytest.raises(errors.UnexpectedValueError, match=f"no attribute '{method}'"):
            Typed(None, **{method: lambda: None})


@pytest.mark.parametrize(
    "bad",
    [
        {"max_items": -1},
        {"max_items": float("nan")},
        {"max_items": True},
        {"max_pages": "2"},
        {"total": "x"},
        {"count": -5},
        {"page_count": 1.5},
        {"num_pages": "x"},
        {"page": 5},
    ],
)
def test_bad_counters_and_limits_are_refused_at_construction(bad: dict[str, Any]) -> None:
    # Otherwise -1 silently yields nothing, nan means unlimited, a negative count lets
    # more than max_items through, and a string fails only after the first page.
    (name,) = bad
    with pytest.raises(errors.UnexpectedValueError, match=f"invalid setting.*{name}="):
        ListIterator(None, _data=DATA, _sizes=pages_of(2), **bad)


async def test_a_subclass_offset_keyword_starts_the_walk_there() -> None:
    it = ListIterator(None, _data=DATA, _sizes=pages_of(4), _offset=6)
    assert await collect(it) == list(DATA[6:])


async def test_base_get_page_is_not_implemented() -> None:
    it = APIIterator(None)
    with pytest.raises(NotImplementedError, match="APIIterator must implement _get_page"):
        await it.__anext__()

    class Forgetful(APIIterator):
        pass

    with pytest.raises(NotImplementedError, match="Forgetful"):
        async for _ in Forgetful(None):
            pass


def test_api_may_be_none_and_is_kept() -> None:
    assert ListIterator(None)._api is None
    marker = object()
    assert ListIterator(marker)._api is marker


async def test_page_is_per_instance() -> None:
    one = ListIterator(None, _data=DATA, _sizes=[2])
    two = ListIterator(None, _data=DATA, _sizes=[5])
    assert one.page is not two.page
    await one.__anext__()
    assert list(one.page) == list(DATA[:2])
    assert list(two.page) == []
    assert APIIterator(None).page == []  # the class never accumulated a page


async def test_iterator_is_its_own_async_iterator() -> None:
    it = ListIterator(None)
    assert it.__aiter__() is it


# ------------------------------------------------------------------ property


def expected_walk(
    data: Sequence[int],
    sizes: Sequence[int],
    total: int | None,
    max_items: int | None,
    max_pages: int | None,
) -> tuple[list[int], int]:
    """The records a correct iterator yields, and the pages it needs to fetch."""
    limits = [limit for limit in (total, max_items) if limit is not None]
    wanted = min(limits) if limits else len(data) + sum(sizes) + 1
    records: list[int] = []
    pages = offset = 0
    while len(records) < wanted and (max_pages is None or pages < max_pages):
        size = sizes[pages] if pages < len(sizes) else 0
        page = list(data[offset : offset + size])
        offset += size
        pages += 1
        if not page:
            break
        records += page
    return records[:wanted], pages


optional_limit = st.none() | st.integers(min_value=0, max_value=30)


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.integers(), max_size=25),
    sizes=st.lists(st.integers(min_value=0, max_value=8), max_size=10),
    total=optional_limit,
    max_items=optional_limit,
    max_pages=st.none() | st.integers(min_value=0, max_value=12),
)
async def test_yields_the_expected_prefix(
    data: list[int],
    sizes: list[int],
    total: int | None,
    max_items: int | None,
    max_pages: int | None,
) -> None:
    it = ListIterator(
        None, _data=data, _sizes=sizes, total=total, max_items=max_items, max_pages=max_pages
    )
    records = await collect(it)
    want, pages = expected_walk(data, sizes, total, max_items, max_pages)
    assert records == want
    assert records == data[: len(records)]  # always a prefix of the collection
    assert it.count == len(records)
    assert it.num_pages == pages == len(it.fetches)


# ------------------------------------------------------------------ end to end

ITEMS = [{"id": n, "name": f"item-{n}"} for n in range(10)]


class ItemsAPI(TrioAPISession):
    _retries = 0
    _timeout = 5.0

    def items(self, **attrs: Any) -> ItemsIterator:
        return ItemsIterator(self, **attrs)


class ItemsIterator(APIIterator):
    """``GET /items?offset=&limit=`` answering ``{"items": [...], "total": N}``."""

    _offset: int = 0
    _limit: int = 3

    async def _get_page(self) -> None:
        body = await self._api.get(
            "items", params={"offset": self._offset, "limit": self._limit}, box=True
        )
        self.page = body["items"]
        self.total = body["total"]
        self._offset += self._limit


def serve_items(request: RecordedRequest) -> Respond:
    offset = int(request.params["offset"][0])
    limit = int(request.params["limit"][0])
    return respond(json={"items": ITEMS[offset : offset + limit], "total": len(ITEMS)})


async def test_end_to_end_walk_over_offset_pages(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/items", serve_items)
    async with ItemsAPI(url=trio_server.base_url) as api:
        it = api.items()
        records = await collect(it)

    assert [record.id for record in records] == list(range(10))
    assert records[3].name == "item-3"  # Box records
    assert (it.count, it.num_pages, it.total) == (10, 4, 10)
    # Stopped at the announced total: no request for a fifth, empty page.
    assert [r.params for r in trio_server.requests] == [
        {"offset": [str(offset)], "limit": ["3"]} for offset in (0, 3, 6, 9)
    ]


async def test_end_to_end_limits(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/items", serve_items)
    async with ItemsAPI(url=trio_server.base_url) as api:
        by_items = await collect(api.items(_limit=4, max_items=5))
        by_pages = await collect(api.items(_offset=2, max_pages=1))

    assert [record.id for record in by_items] == [0, 1, 2, 3, 4]
    assert [record.id for record in by_pages] == [2, 3, 4]
    assert [r.params["offset"] for r in trio_server.requests] == [["0"], ["4"], ["2"]]


def test_keywords_cannot_replace_methods() -> None:
    from trestfly import APIIterator, errors

    for name in ("get", "_get_page", "_api", "__anext__"):
        with pytest.raises(errors.UnexpectedValueError, match=name):
            APIIterator(None, **{name: 1})


async def test_stop_async_iteration_from_get_page_fails_the_walk() -> None:
    # A spent `await anext(...)` inside _get_page: out of __anext__ it ended the walk as
    # if it were over (PEP 479's reason), with records missing.
    class Spent(ListIterator):
        async def _get_page(self) -> None:
            if self.fetches:
                raise StopAsyncIteration
            await super()._get_page()

    walk = Spent(None, _data=DATA, _sizes=(5, 5))
    got = []
    with pytest.raises(errors.TrestflyError, match="StopAsyncIteration") as failed:
        async for record in walk:
            got.append(record)
    assert got == list(DATA[:5]) and isinstance(failed.value.__cause__, StopAsyncIteration)


def test_a_plain_for_loop_is_refused() -> None:
    # __getitem__ let `for` fall back to the sequence protocol over the empty first
    # page: a RESTfly loop ported without `async` got no records and no error.
    walk = ListIterator(None, _data=DATA, _sizes=[10])
    with pytest.raises(TypeError, match="not iterable"):
        list(walk)
    with pytest.raises(TypeError, match="not iterable"):
        assert 100 not in walk


def test_a_setting_declared_by_an_annotation_alone_is_a_keyword() -> None:
    class Sized(ListIterator):
        page_size: int

    assert Sized(None, page_size=50).page_size == 50
    with pytest.raises(errors.UnexpectedValueError, match="no attribute 'page_sise'"):
        Sized(None, page_sise=50)


@pytest.mark.parametrize(
    ("name", "value"), [("max_items", "2"), ("max_items", -1), ("max_pages", 1.5)]
)
async def test_a_limit_set_after_construction_is_checked_before_the_first_page(
    name: str, value: object
) -> None:
    # An SDK __init__ setting it after super().__init__(): "2" failed with a bare
    # TypeError, and -1 yielded nothing without a word.
    iterator = ListIterator(None, _data=DATA, _sizes=pages_of(3))
    setattr(iterator, name, value)
    with pytest.raises(errors.UnexpectedValueError, match=f"invalid setting\\(s\\) {name}="):
        await collect(iterator)
    assert iterator.fetches == []
