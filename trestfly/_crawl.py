"""The Trio shell of crawls: pages fetched ahead in a nursery, handed out in order.

A :class:`PageFeed` fetches the pages of one iterator ahead of its consumer: a planner
task decides which page to request next (the pure rules of :mod:`trestfly._pages`) and
one task per page fetches it into a *slot*.  The consumer takes slots strictly in page
order and makes each the iterator's current page, so the iterator's counters and
``position`` move only with what the consumer actually received.  A page that failed is
a slot holding the exception, raised when the consumer reaches it.

Ownership follows Trio's rules: the tasks live in a nursery opened by an
``@asynccontextmanager`` (an async generator must not hold a nursery across a bare
``yield``), so leaving the ``async with`` block, by any way, cancels every fetch and
releases every connection.  :func:`open_crawl` crawls one iterator; :func:`crawl_many`
crawls many, ``limit`` at a time, and merges their records.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar

import trio
import trio.lowlevel

from ._fanout import EnteredOnce, _check_limit, raise_single_error
from ._iterator import R, stopped_page_fetch
from ._pages import (
    PaginationError,
    Request,
    checked_page,
    known_last_page,
    last_page_index,
    may_request,
)
from .errors import TrestflyError, UnexpectedValueError

if TYPE_CHECKING:
    from ._paginators import PagedIterator

__all__ = ["MergedRecords", "OnError", "PageFeed", "Records", "crawl_many", "open_crawl"]

K = TypeVar("K")
#: What :func:`crawl_many` does when a source fails.
OnError = Literal["cancel", "collect"]

crawl_log = logging.getLogger("trestfly.crawl")


class _Notifier:
    """Wakes every task waiting for a change (a page arrived, taken, or planned)."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        # A fresh event for the next change; waiters re-check their condition first,
        # and nothing checkpoints between their check and their wait, so none is missed.
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class _Slot:
    """One requested page: filled by its fetch task, taken by the consumer."""

    __slots__ = ("done", "error", "page", "request", "scope")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.page: Any = None
        self.error: Exception | None = None
        self.done = False
        self.scope = trio.CancelScope()


def _stopped(failure: Exception, resume: str) -> TrestflyError:
    """What a crawl raises when asked for more after it raised ``failure``.

    Not ``failure`` again (a loop that catches it would spin), and never a plain end of
    the records (which would pass for a complete walk): an error that says so, and says
    where to resume (``resume``: "from <position>", naming the source in a crawl_many).
    """
    return TrestflyError(
        f"the crawl was stopped by an earlier failure ({failure!r}): no record after it "
        f"can be handed out; resume {resume}"
    )


class PageFeed:
    """The pages of one iterator, fetched ahead by tasks in a nursery, taken in order.

    Pages are counted from where the iterator stood when the feed was made (0 is the
    next page it needs).  The planner requests page ``i`` only while :func:`may_request`
    allows it: never more than ``prefetch`` pages past the last page taken.
    """

    def __init__(self, iterator: PagedIterator, prefetch: int, notifier: _Notifier) -> None:
        self._it = iterator
        self._prefetch = prefetch
        self._notifier = notifier
        self._scheme = iterator._scheme
        self._slots: dict[int, _Slot] = {}
        self._handed = -1  # the last page taken by the consumer
        self._planned: int | None = None  # the last page the planner will ever open
        self._stop_at: int | None = None  # a fetched page known to end the walk
        self._ended = False
        self._fault: Exception | None = None
        # The failure take() raised, if any: the walk cannot go past it (see _stopped).
        self._failure: Exception | None = None
        first = iterator._next_request()
        self._first = first
        self._needed = -1 if first is None else 0
        if first is None:
            self._planned = -1
        # Fixed at the start: the most the walk can need, whatever the pages say.
        self._items_left = iterator._items_left()
        self._limit_last = last_page_index(
            page_size=self._scheme.page_size,
            skip=0 if first is None else first.skip,
            items_left=self._items_left,
            pages_left=iterator._pages_left(),
        )
        self._expects_total = iterator._reports_total()
        self._known_last: int | None = None
        if first is not None and iterator.total is not None:
            self._known_last = known_last_page(
                self._scheme, first, total=iterator.total, total_pages=None
            )

    # ------------------------------------------------------------- fetching side

    def start(self, nursery: trio.Nursery) -> None:
        """Start the planner (nothing when the walk needs no page)."""
        if self._first is None:
            return
        planner = self._plan_addressable if self._scheme.addressable else self._plan_chain
        nursery.start_soon(self._guarded, planner, nursery)

    async def _guarded(
        self, planner: Callable[[trio.Nursery], Awaitable[None]], nursery: trio.Nursery
    ) -> None:
        try:
            await planner(nursery)
        except Exception as error:  # a bug here must reach the consumer, not vanish
            self._fault = error
            self._notifier.notify()

    def _speculate_last(self) -> int | None:
        if self._known_last is not None:
            return self._known_last
        # Pages will say how many there are: wait for that rather than guess.
        return self._needed if self._expects_total else None

    def _planning_over(self, index: int) -> bool:
        return (
            self._ended
            or (self._limit_last is not None and index > self._limit_last)
            or (self._stop_at is not None and index > self._stop_at)
        )

    async def _plan_addressable(self, nursery: trio.Nursery) -> None:
        assert self._first is not None
        first, index = self._first, 0
        # Bounded by the walk: each pass opens the next page or ends, and waits between
        # passes are cancellable.
        while True:
            while not self._planning_over(index) and not may_request(
                index,
                handed=self._handed,
                prefetch=self._prefetch,
                needed=self._needed,
                limit_last=self._limit_last,
                stop_at=self._stop_at,
                speculate_last=self._speculate_last(),
            ):
                await self._notifier.wait()
            if self._planning_over(index):
                break
            address = self._scheme.address_at(first.address, index)
            slot = self._slots[index] = _Slot(Request(address, first.skip if index == 0 else 0))
            nursery.start_soon(self._fill, index, slot)
            index += 1
        self._planned = index - 1
        self._notifier.notify()

    async def _plan_chain(self, nursery: trio.Nursery) -> None:
        assert self._first is not None
        request, index, arrived = self._first, 0, 0
        # Bounded by the chain: each pass fetches the page the previous one named.
        while True:
            while not self._chain_over(index) and index > self._handed + self._prefetch:
                await self._notifier.wait()
            if self._chain_over(index):
                index -= 1
                break
            slot = self._slots[index] = _Slot(request)
            await self._fill(index, slot)
            page = slot.page
            if page is None:
                break  # failed (the consumer gets the error there) or cancelled
            arrived += max(0, len(page.records) - request.skip)
            enough = self._items_left is not None and arrived >= self._items_left
            # An empty page naming a next one goes on (see judge_page), unless the
            # iterator's empty_page_ends says the feed ends there.
            if page.next is None or enough or self._it._ends_at(page):
                break
            request, index = Request(page.next), index + 1
        self._planned = index
        self._notifier.notify()

    def _chain_over(self, index: int) -> bool:
        return self._ended or (self._limit_last is not None and index > self._limit_last)

    async def _fill(self, index: int, slot: _Slot) -> None:
        interrupted = False
        try:
            with slot.scope:
                try:
                    address = slot.request.address
                    # Checked here, in the try: a malformed page must be this page's
                    # failure (raised in order, collected by crawl_many), not a crash of
                    # _arrived below that cancels the consumer at once.
                    slot.page = checked_page(
                        await self._it._fetch(address), self._it._fetch_site(address)
                    )
                except StopAsyncIteration as stop:
                    slot.error = stopped_page_fetch("_fetch()", stop)
                except Exception as error:
                    # Kept for the consumer, in page order: the records before this page
                    # still reach it, and its position then points at this page.
                    slot.error = error
        except BaseException as exc:
            # A KeyboardInterrupt or SystemExit goes on to the nursery, which cancels the
            # consumer.  Marked done with no page, the slot was taken first for a page
            # cancelled by a bug in trestfly, and that error came out beside it.
            interrupted = not isinstance(exc, trio.Cancelled)
            raise
        finally:
            if not interrupted:
                slot.done = True
                self._arrived(index, slot)
            self._notifier.notify()

    def _arrived(self, index: int, slot: _Slot) -> None:
        if slot.error is not None:
            self._stop(index)
            return
        page = slot.page
        if page is None:
            return  # cancelled: nobody will take it
        if page.total is not None or page.total_pages is not None:
            assert self._first is not None
            self._known_last = known_last_page(
                self._scheme, self._first, total=page.total, total_pages=page.total_pages
            )
        elif self._known_last is None:
            # The pages do not say after all: find the end by a short page, as without
            # a total, rather than fetch one page at a time.
            self._expects_total = False
        if self._scheme.addressable and len(page.records) != self._scheme.page_size:
            # A short or empty page ends the walk (or fails it): later pages are moot.
            self._stop(index)

    def _stop(self, index: int) -> None:
        if self._stop_at is None or index < self._stop_at:
            self._stop_at = index
        for later, slot in self._slots.items():
            if later > index:
                slot.scope.cancel()

    # ------------------------------------------------------------- consumer side

    def ready(self) -> bool:
        """Whether :meth:`take` can answer now."""
        if self._ended or self._fault is not None:
            return True
        slot = self._slots.get(self._handed + 1)
        if slot is not None:
            return slot.done
        return self._planned is not None and self._handed + 1 > self._planned

    def next_was_cancelled(self) -> bool:
        """Whether the next page's fetch ended cancelled, with neither a page nor an
        error.  The consumer checkpoints before taking such a page: the cancel that
        stopped the fetch is its own too, most often, but a consumer woken earlier ran
        on without a checkpoint, took it, and raised "a page the walk needs was
        cancelled (a bug in trestfly)" out of a plain ``move_on_after`` (23 runs in
        1,000), beside a fetch's KeyboardInterrupt in a group."""
        slot = self._slots.get(self._handed + 1)
        return slot is not None and slot.done and slot.page is None and slot.error is None

    def take(self) -> bool:
        """Make the next page the iterator's current page (call only when :meth:`ready`).

        Returns:
            False at the end of the walk.

        Raises:
            Exception: the page's fetch failed (the session's error, as itself), or the
                page cannot be walked exactly (``PaginationError``).
            TrestflyError: a take before this one raised (chained from what it raised).
        """
        if self._failure is not None:
            raise _stopped(self._failure, f"from {self._it._shown_position()}") from self._failure
        if self._fault is not None:
            self._fail(self._fault)
        if self._ended:
            return False
        try:
            self._it._check_failure()
        except Exception as error:
            self._fail(error)
        index = self._handed + 1
        slot = self._slots.pop(index, None)
        if slot is None:
            if self._it._next_request() is not None:
                self._fail(
                    PaginationError("the crawl ended before the walk did (a bug in trestfly)")
                )
            self.end()
            return False
        self._handed = index
        try:
            if slot.error is not None:
                raise slot.error
            if slot.page is None:
                raise PaginationError("a page the walk needs was cancelled (a bug in trestfly)")
            self._it._accept(slot.request, slot.page)
        except Exception as error:
            self._fail(error)
        except BaseException:
            self.end()
            raise
        finally:
            self._notifier.notify()
        if self._it._next_request() is None:
            self.end()
        else:
            self._needed = index + 1
        return True

    def _fail(self, error: Exception) -> NoReturn:
        """End the walk on ``error`` and raise it, remembering it for later takes.

        Without the memory a consumer that catches the error and iterates again would
        find the feed ended and stop as if the walk were complete, records missing.
        """
        self._failure = error
        self.end()
        raise error

    def end(self) -> None:
        """No page will be taken any more: stop planning and cancel pending fetches."""
        self._ended = True
        for slot in self._slots.values():
            slot.scope.cancel()
        self._slots.clear()
        self._notifier.notify()


class Records(Generic[R]):
    """The records of one crawl, in order: ``async for record in records``.

    .. versionadded:: 0.1.0
    """

    def __init__(self, iterator: PagedIterator[R], feed: PageFeed, notifier: _Notifier) -> None:
        self._it = iterator
        self._feed = feed
        self._notifier = notifier
        self._closed = False

    def __aiter__(self) -> Records[R]:
        return self

    async def __anext__(self) -> R:
        it = self._it
        if self._closed or it.page_count >= len(it.page):
            await self._next_page()
        record = it.page[it.page_count]
        it.page_count += 1
        it.count += 1
        return record

    async def _next_page(self) -> None:
        # Every page boundary is a checkpoint: cancellation is seen there, and the
        # fetchers run even if the consumer never waits for anything else.
        await trio.lowlevel.checkpoint()
        it, feed = self._it, self._feed
        if self._closed:
            raise TrestflyError("the crawl's 'async with' block has ended")
        checkpointed = False
        # Bounded: each pass takes one page (pages that hand out nothing are skipped).
        while it.page_count >= len(it.page):
            if not feed.ready():
                # Checked again after every wait: another task reading this same object
                # may have taken the next page meanwhile, and taking one more over it
                # threw the rest of that page away (202 of 300 records, done=True).
                await self._notifier.wait()
                if self._closed:
                    raise TrestflyError("the crawl's 'async with' block has ended")
                continue
            if feed.next_was_cancelled() and not checkpointed:
                # The cancel is the consumer's too, most often; checked again after it,
                # as after any wait (another reader may have taken the page).
                checkpointed = True
                await trio.lowlevel.checkpoint()
                continue
            if not feed.take():
                raise StopAsyncIteration

    def _close(self) -> None:
        self._closed = True
        self._feed.end()


def _check_prefetch(prefetch: int) -> None:
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
        raise UnexpectedValueError(f"prefetch must be an integer >= 1, got {prefetch!r}")


def _reraise_unwrapped(group: BaseExceptionGroup[BaseException]) -> None:
    # The nursery wraps the block's own exception (strict exception groups): raise it
    # as itself, as trestfly's fan-outs do.  Only Cancelled stays a group, which the
    # cancel scope it belongs to knows how to catch.
    raise_single_error(group)


def _again(what: str) -> str:
    """What a second entry of a crawl's block is told to do instead."""
    return f": call {what}() again for another (an iterator goes on from its position)"


def open_crawl(
    iterator: PagedIterator[R], *, prefetch: int
) -> AbstractAsyncContextManager[Records[R]]:
    """Crawl one iterator with pages fetched ahead (see ``PagedIterator.crawl``)."""
    return EnteredOnce("crawl", partial(_open_crawl, iterator, prefetch=prefetch), _again("crawl"))


@asynccontextmanager
async def _open_crawl(iterator: PagedIterator[R], *, prefetch: int) -> AsyncIterator[Records[R]]:
    _check_prefetch(prefetch)
    iterator._claim()
    try:
        iterator._mark_started()
        notifier = _Notifier()
        feed = PageFeed(iterator, prefetch, notifier)
        records = Records(iterator, feed, notifier)
        try:
            async with trio.open_nursery() as nursery:
                feed.start(nursery)
                try:
                    yield records
                finally:
                    records._close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            _reraise_unwrapped(group)
            raise
    finally:
        iterator._release()


class _Source(Generic[K]):
    """One collection of a :func:`crawl_many`: its iterator, feed and cancel scope."""

    def __init__(self, key: K, iterator: PagedIterator) -> None:
        self.key = key
        self.it = iterator
        self.feed: PageFeed | None = None
        self.scope = trio.CancelScope()


class MergedRecords(Generic[K]):
    """The ``(source, record)`` pairs of :func:`crawl_many`, as pages arrive.

    Attributes:
        errors: with ``on_error="collect"``, the failure of each source that failed
            (complete once the ``async for`` loop has ended, and after the block).
        finished: the sources walked to their end, in the order they finished.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        sources: list[_Source[K]],
        *,
        limit: int,
        prefetch: int,
        on_error: OnError,
        notifier: _Notifier,
    ) -> None:
        self.errors: dict[K, Exception] = {}
        self.finished: list[K] = []
        self._pending = sources[::-1]  # popped from the end: started in mapping order
        self._active: list[_Source[K]] = []
        self._current: _Source[K] | None = None
        self._limit = limit
        self._prefetch = prefetch
        self._on_error = on_error
        self._notifier = notifier
        self._nursery: trio.Nursery | None = None
        self._closed = False
        # With on_error="cancel": the source whose failure stopped the crawl, and it.
        self._failed: tuple[_Source[K], Exception] | None = None

    def __aiter__(self) -> MergedRecords[K]:
        return self

    async def __anext__(self) -> tuple[K, Any]:
        source = self._current
        if source is None or self._closed or source.it.page_count >= len(source.it.page):
            source = await self._next_page()
        # The record counts as handed out (position moves) only now, in this task.
        it = source.it
        record = it.page[it.page_count]
        it.page_count += 1
        it.count += 1
        return source.key, record

    def _start_sources(self) -> None:
        assert self._nursery is not None
        while self._pending and len(self._active) < self._limit:
            source = self._pending.pop()
            source.it._mark_started()
            source.feed = PageFeed(source.it, self._prefetch, self._notifier)
            self._active.append(source)
            self._nursery.start_soon(self._run, source)

    async def _run(self, source: _Source[K]) -> None:
        assert source.feed is not None
        with source.scope:
            try:
                async with trio.open_nursery() as nursery:
                    source.feed.start(nursery)
            except BaseExceptionGroup as group:
                # A fetch's KeyboardInterrupt or SystemExit, as itself: the crawl's own
                # nursery then holds it at one level, which the block unwraps (a group
                # in a group came out of crawl_many).
                raise_single_error(group)
                raise

    def _ready_source(self) -> _Source[K] | None:
        for source in self._active:
            assert source.feed is not None
            if source.feed.ready():
                return source
        return None

    async def _next_page(self) -> _Source[K]:
        await trio.lowlevel.checkpoint()  # a page boundary is a checkpoint (see Records)
        self._current = None
        checkpointed = False
        # Bounded: each pass takes one page or ends one source, or waits for a change.
        while True:
            if self._closed:
                raise TrestflyError("the crawl's 'async with' block has ended")
            if self._failed is not None:
                failed, failure = self._failed
                resume = f"source {failed.key!r} from {failed.it._shown_position()}"
                raise _stopped(failure, resume) from failure
            for begun in self._active:
                if begun.it.page_count < len(begun.it.page):
                    # An iterator walked in part before the crawl: what is left of its
                    # page comes first, as in a crawl of it alone.  Taking the next page
                    # over it dropped those records and still ended the source as done.
                    self._current = begun
                    return begun
            source = self._ready_source()
            if source is None:
                if not self._active and not self._pending:
                    raise StopAsyncIteration
                await self._notifier.wait()
                continue
            assert source.feed is not None
            if source.feed.next_was_cancelled() and not checkpointed:
                checkpointed = True  # then checked again (see Records._next_page)
                await trio.lowlevel.checkpoint()
                continue
            try:
                more = source.feed.take()
            except Exception as error:
                # The progress callback's own failure is the caller's bug, not the
                # source's: collected, it failed every source one by one behind a
                # WARNING each, and the crawl "finished" with nothing walked.
                if self._on_error == "cancel" or source.it._progress_failed:
                    # Everything stops, for good: a consumer that catches the error and
                    # iterates again must not get the other sources' records as if the
                    # failed one had simply ended.
                    self._failed = (source, error)
                    self._stop_sources()
                    error.add_note(f"while crawling source {source.key!r}")
                    raise
                self._end_source(source, error)
                continue
            if not more:
                self._end_source(source, None)
                continue
            # To the back of the line: sources with pages ready take turns.
            self._active.remove(source)
            self._active.append(source)
            if source.it.page_count < len(source.it.page):
                self._current = source
                return source

    def _end_source(self, source: _Source[K], error: Exception | None) -> None:
        source.scope.cancel()
        self._active.remove(source)
        if error is None:
            self.finished.append(source.key)
        elif self._on_error == "collect":
            self.errors[source.key] = error
            crawl_log.warning(
                "crawl of source %r failed: %r",
                source.key,
                error,
                extra={"trestfly_source": source.key},
            )
        self._start_sources()
        self._notifier.notify()

    def _stop_sources(self) -> None:
        for source in self._active:
            if source.feed is not None:
                source.feed.end()
            source.scope.cancel()
        self._notifier.notify()

    def _close(self) -> None:
        self._closed = True
        self._stop_sources()


def _check_sources(iterators: object) -> None:
    """A typed error for what would otherwise fail deep inside as an AttributeError."""
    from ._paginators import PagedIterator  # here: that module imports this one

    if not isinstance(iterators, Mapping):
        raise UnexpectedValueError(
            f"crawl_many takes a mapping of key to paged iterator, got {type(iterators).__name__}"
        )
    wrong = [key for key, it in iterators.items() if not isinstance(it, PagedIterator)]
    if wrong:
        raise UnexpectedValueError(
            f"crawl_many's sources {wrong!r} are not paged iterators (OffsetIterator, "
            "PageNumberIterator, CursorIterator, LinkIterator or a subclass)"
        )


def crawl_many(
    iterators: Mapping[K, PagedIterator],
    *,
    limit: int = 4,
    prefetch: int = 1,
    on_error: OnError = "cancel",
) -> AbstractAsyncContextManager[MergedRecords[K]]:
    """Crawl many collections at once and merge their records as they arrive::

        async with crawl_many({"users": users, "groups": groups}, limit=4) as records:
            async for source, record in records:
                ...

    Each record comes tagged with its source's key; each source's records stay in
    order, and sources with pages ready take turns.  At most ``limit`` sources are in
    flight (the others start as those finish), each with up to ``prefetch`` pages
    fetched ahead, so memory is bounded whatever the collections' sizes.  Every
    iterator's ``position`` stays exact: resume any of them after a stop.

    Args:
        iterators: the sources, by key (any hashable; crawled in this order).
        limit: sources in flight at once.
        prefetch: pages fetched ahead per source.
        on_error: ``"cancel"`` (default): a source's failure (after the session's
            retries) cancels everything and is raised as itself, with a note naming
            the source.  ``"collect"``: the failed source stops, the others go on, and
            the failure is kept in ``records.errors[key]`` (and logged as a warning on
            ``trestfly.crawl``); the failed iterator's position points at the page that
            failed.

    Raises:
        UnexpectedValueError: a bad ``limit``, ``prefetch`` or ``on_error``, or the same
            iterator twice.
        TrestflyError: an iterator is already being walked, or the object is entered
            a second time (call ``crawl_many`` again for another crawl).

    Leaving the block (at the end, by ``break``, an exception or a cancellation) stops
    every fetch at once.

    .. versionadded:: 0.1.0
    """
    return EnteredOnce(
        "crawl_many",
        partial(_crawl_many, iterators, limit=limit, prefetch=prefetch, on_error=on_error),
        _again("crawl_many"),
    )


@asynccontextmanager
async def _crawl_many(
    iterators: Mapping[K, PagedIterator],
    *,
    limit: int,
    prefetch: int,
    on_error: OnError,
) -> AsyncIterator[MergedRecords[K]]:
    """The crawl of :func:`crawl_many`, made when its block is entered."""
    _check_limit("limit", limit)
    _check_prefetch(prefetch)
    if on_error not in ("cancel", "collect"):
        raise UnexpectedValueError(f"on_error must be 'cancel' or 'collect', got {on_error!r}")
    _check_sources(iterators)
    sources = [_Source(key, it) for key, it in iterators.items()]
    if len({id(source.it) for source in sources}) != len(sources):
        raise UnexpectedValueError("crawl_many got the same iterator for two sources")
    claimed: list[PagedIterator] = []
    try:
        for source in sources:
            source.it._claim()
            claimed.append(source.it)
        notifier = _Notifier()
        merged = MergedRecords(
            sources, limit=limit, prefetch=prefetch, on_error=on_error, notifier=notifier
        )
        try:
            async with trio.open_nursery() as nursery:
                merged._nursery = nursery
                merged._start_sources()
                try:
                    yield merged
                finally:
                    merged._close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            _reraise_unwrapped(group)
            raise
    finally:
        for it in claimed:
            it._release()
