"""Ready paginators: offset/limit, page number, cursor and ``Link`` header styles.

Each is a small :class:`~trestfly.APIIterator` subclass that an SDK author configures
rather than rewrites: class attributes are the defaults, constructor keywords override
them per iterator::

    class Users(OffsetIterator):
        path = "users"
        items_key = "data"
        total_key = "meta.total"
        limit = 200

    async for user in Users(api, max_items=1000):
        ...
    async with Users(api).crawl(prefetch=8) as users:  # pages fetched ahead, in order
        async for user in users:
            ...

Every decision (which records of a page to hand out, whether it is the last, where the
next page is) is made by the pure functions of :mod:`trestfly._pages`; this module only
fetches pages and keeps the iterator's state.  Plain ``async for`` and
:meth:`PagedIterator.crawl` drive the same state, so they stop at the same record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx
import trio

from ._convert import convert_response, is_json_content_type
from ._iterator import APIIterator, R, is_count, limit_reached, stopped_page_fetch
from ._options import CallOptions
from ._pages import (
    Address,
    ChainScheme,
    KeyPath,
    OffsetScheme,
    Page,
    PageNumberScheme,
    PaginationError,
    Position,
    Request,
    Scheme,
    Verdict,
    as_count,
    checked_page,
    extract,
    find_link,
    judge_page,
    origin_of,
)
from ._redact import is_restricted, without_query
from ._safe_url import is_secret_name, safe_url
from ._urls import parse_url
from .errors import TrestflyError, UnexpectedValueError

#: Says when a walk ends on a full page for want of a next cursor or link (a mistyped
#: ``cursor_key`` or ``rel`` ended every walk after its first page without a word).
pagination_log = logging.getLogger("trestfly.pagination")

if TYPE_CHECKING:
    from ._crawl import Records

__all__ = [
    "CrawlProgress",
    "CursorIterator",
    "LinkIterator",
    "OffsetIterator",
    "PageNumberIterator",
    "PagedIterator",
    "ProgressCallback",
]


def _fingerprint(address: Address) -> int:
    """A 64-bit digest of a cursor or URL, for remembering every page a walk followed.

    A chain walk must catch a server that loops back to *any* earlier page, however long
    the loop, so it keeps every address, not just the recent ones; a digest (under 100
    bytes each in a set) keeps that small however long the cursors or URLs.  Two of a
    walk's addresses share a digest only past ~2**32 pages.  ``repr`` tells ``5`` from
    ``"5"`` and None.
    """
    digest = hashlib.blake2b(repr(address).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class CrawlProgress:
    """What a progress callback receives, once per page, as the page is handed out.

    Attributes:
        records: records of every page handed out so far, this one included.
        pages: pages handed out so far.
        total: records this iterator will yield in all, when known (from the reported
            total, the resume position, ``max_items``, and ``max_pages`` at the size of
            the page just handed out); None when unknown.
        elapsed: seconds since the iterator's first request.
        rate: ``records / elapsed``, in records per second (0.0 at first).

    .. versionadded:: 0.1.0
    """

    records: int
    pages: int
    total: int | None
    elapsed: float
    rate: float


#: Called with a :class:`CrawlProgress` for every page, in the consumer's task.
ProgressCallback = Callable[[CrawlProgress], object]


@dataclass(frozen=True, slots=True)
class _Current:
    """The page being handed out: where it came from and what was decided about it."""

    address: Address
    verdict: Verdict
    after: Address


def _is_key_path(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, tuple) and all(isinstance(key, str) for key in value))
    )


def _is_count(value: Any, minimum: int) -> bool:
    return is_count(value) and value >= minimum


def _safe_address(
    address: Address, *, secret: bool = False, show_url: Callable[[str], str] = safe_url
) -> Address:
    """``address`` as messages may quote it: a URL (a link's next page) through
    ``show_url`` (the session's way, see PagedIterator._show_url), since APIs echo the
    caller's ``api_key=`` into their next links; any other string (a cursor) hidden
    when ``secret`` (its parameter has a credential's name, ``pageToken``: the DEBUG log
    hides it, and so must every message)."""
    if isinstance(address, str):
        try:
            is_url = httpx.URL(address).is_absolute_url
        except httpx.InvalidURL:
            is_url = False
        if is_url:
            return show_url(address)
        if secret:
            return "REDACTED"
    return address


class PagedIterator(APIIterator[R]):
    """Base of the ready paginators: one GET per page, records from a key path.

    Subclasses choose the style (:meth:`_scheme_for`, :meth:`_query`); SDK authors set
    the class attributes below on a subclass, or pass them as constructor keywords.
    Defaults are immutable: ``params`` is copied into every instance.

    Attributes:
        path: the collection's path (joined to the session URL) or absolute URL.
        params: query parameters sent with every page (the paging ones are added).
        items_key: key path of the records in a page (``"data"``, ``"results"``);
            None when the page itself is the list.
        total_key: key path of the collection's record count (``"total"``,
            ``"pagination.total"``); None when the API does not say.
        box: read pages as Box (attribute access for the records, at a cost: Box is
            about 25 times slower than ``json.loads`` on large pages).  Off by default:
            pages are read with ``conv_json=True`` as plain dicts and lists.
        empty_page_ends: (cursor and link styles) end the walk at an empty page even
            when it names a next page.  Off by default: such a page is followed, as
            Slack's and Google's APIs send empty pages mid-collection.  Set it for a
            feed whose empty page means "nothing more for now" yet names the cursor to
            poll next (an endless walk otherwise).  Offset and page-number walks end at
            an empty page either way (or raise, when the total says more follow).
        allow_repeated_pages: (offset and page-number styles) take a page that holds
            the same records as the page before.  Off by default: such a page raises
            :class:`~trestfly.PaginationError`, as a server that ignores the offset or
            page number sends the first page again and again.  Set it for records with
            no identity of their own (numbers, plain strings: a run of zeros fills two
            pages alike); give such a walk a total or ``max_pages`` then, as nothing
            else stops a server that ignores the offset.

    Args:
        api: the session pages are fetched through.
        position: resume where another iterator's :attr:`position` stood.
        progress: called with a :class:`CrawlProgress` after each page is handed out.
        attrs: values for declared attributes: the ones above, the style's own (such as
            ``limit``), ``max_items``, ``max_pages``, and any a subclass declares.

    Raises:
        UnexpectedValueError: an undeclared keyword, a setting of the wrong kind, a
            ``progress`` that is not callable, or a keyword for the walk's own counters
            (``count``, ``page_count``, ``num_pages``, ``page``).
        PaginationError: ``position`` belongs to another style.

    ``async for record in iterator`` fetches one page at a time; :meth:`crawl` fetches
    ahead.  Both leave :attr:`position` exact, so a stopped walk can be resumed.
    ``count``, ``max_items`` and ``max_pages`` count what *this* iterator yields and
    fetches (a resumed iterator starts from zero).

    .. versionadded:: 0.1.0
    """

    path: str = ""
    params: Mapping[str, Any] = MappingProxyType({})
    items_key: KeyPath = "items"
    total_key: KeyPath = None
    box: bool = False
    empty_page_ends: bool = False
    allow_repeated_pages: bool = False

    def __init__(
        self,
        api: Any,
        *,
        position: Position | None = None,
        progress: ProgressCallback | None = None,
        **attrs: Any,
    ) -> None:
        if type(self)._get_page is not PagedIterator._get_page:
            # RESTfly's habit: the ready paginator's walk never saw the override's pages
            # (an empty one looped for ever, at no checkpoint a cancel scope could
            # reach; None was a bare TypeError; a filtered page moved the position).
            raise UnexpectedValueError(
                f"{type(self).__name__} overrides _get_page, which a ready paginator "
                "runs itself: override _record (each record) or _fetch (each page's "
                "request), or subclass APIIterator for a walk of your own"
            )
        # The walk keeps these in step with its pages and position: set from outside,
        # they would skip or repeat records (resume with position= instead).
        counters = [name for name in ("count", "page_count", "num_pages", "page") if name in attrs]
        if counters:
            raise UnexpectedValueError(
                f"{type(self).__name__}: {', '.join(counters)} cannot be set by keyword: "
                "the walk keeps them (pass position= to resume a walk)"
            )
        if "total" in attrs:
            # The server's figure, read from total_key: given by hand it capped an offset
            # or page-number walk, and a cursor walk only reported it (each style its way).
            raise UnexpectedValueError(
                f"{type(self).__name__}: total cannot be set by keyword: it is what the "
                "server reports (total_key); to stop after N records, pass max_items=N"
            )
        if progress is not None and not callable(progress):
            raise UnexpectedValueError(
                f"progress must be a callable taking a CrawlProgress, got {type(progress).__name__}"
            )
        if inspect.iscoroutinefunction(progress):
            # Called, never awaited: no progress at all, and a RuntimeWarning per page.
            raise UnexpectedValueError(
                "progress must be a plain function: it is called, not awaited (an async "
                "def callback would never run)"
            )
        super().__init__(api, **attrs)
        self._check_settings()
        # A copy, read-only: the caller's dict (or a class default) is never shared.
        self.params = MappingProxyType(dict(self.params))
        if position is not None and not isinstance(position, Position):
            # Only the kind: a stored position (a dict, a tuple) holds a next link, and
            # links echo the caller's api_key=.
            raise UnexpectedValueError(
                f"position must be a Position, got a {type(position).__name__} (a stored "
                "position is rebuilt with Position(**fields))"
            )
        self._position_given = position
        self._plan(position)
        self._current: _Current | None = None
        self._progress = progress
        # Set when the progress callback raised: a bug of the caller's, which crawl_many
        # raises whatever its on_error (see _crawl), not a source's failure to collect.
        self._progress_failed = False
        self._started_at: float | None = None
        # Fingerprints of every chain page this iterator walked (see _fingerprint).
        self._followed: set[int] = set()
        self._failure: PaginationError | None = None
        # The records of the page accepted last (see _accept): a server that ignores the
        # offset or page number sends them again.
        self._last_records: Sequence[Any] | None = None
        # The page count an earlier page reported (page-number style): like the total,
        # many APIs report it on the first page only, and a later page that leaves it
        # out is still bound by it.
        self._total_pages: int | None = None
        self._busy = False
        fetches_through_api = type(self)._fetch.__module__ == __name__  # not overridden
        if fetches_through_api and (api is None or isinstance(api, type | str | bytes)):
            # As APIEndpoint refuses them (checked last: every setting is named first):
            # the first page failed far from here, with a bare AttributeError
            # ('NoneType' object has no attribute 'get'), or a TypeError for the
            # session class where an instance belongs.  A subclass fetching pages its
            # own way may pass what it likes.
            # A str is named by its kind only: it may be the URL, credentials and all.
            given = "None" if api is None else f"a {type(api).__name__}"
            if isinstance(api, type):
                given = f"the class {api.__name__}"
            raise UnexpectedValueError(
                f"{type(self).__name__} walks through a session: pass the open session "
                f"(an instance of your TrioAPISession subclass) first, got {given}"
            )

    # ------------------------------------------------------------- configuration

    def _plan(self, position: Position | None) -> None:
        """The walk's addressing and first request, from the settings as they are now
        (``limit``, ``first_page``) and the position to resume from."""
        self._scheme: Scheme = self._scheme_for()
        start = self._start() if position is None else self._scheme.check(position)
        self._request: Request | None = None if position and position.done else start
        self._start_position = position or self._scheme.position(start.address, start.skip)
        first = self._scheme.first_record(start.address)
        self._origin: int | None = first + start.skip if first is not None else None
        if not self._scheme.addressable and position is None:
            self._origin = 0  # a chain started from its first page: the total applies
        self._planned_with = self._plan_settings()

    def _plan_settings(self) -> tuple[Any, ...]:
        """The settings :meth:`_plan` reads."""
        return (getattr(self, "limit", None), getattr(self, "first_page", None))

    def _replan_if_changed(self) -> None:
        """Before the first page: the settings checked, and the plan made again when an
        SDK's __init__ set ``limit`` or ``first_page`` after ``super().__init__()``.
        The page size was fixed at construction while the query read the new one: a
        2-record page against a planned 100 read as the last, and the walk ended with
        2 records of 5, silently; a first_page=0 set late still asked for page 1."""
        self._check_settings()
        if self._plan_settings() != self._planned_with:
            self._plan(self._position_given)

    def _check_settings(self) -> None:
        """Validate the settings; subclasses extend it for their own.

        Raises:
            UnexpectedValueError: a setting of the wrong kind.
        """
        checks = {
            "path": isinstance(self.path, str),
            "params": isinstance(self.params, Mapping),
            "items_key": _is_key_path(self.items_key),
            "total_key": _is_key_path(self.total_key),
            "box": isinstance(self.box, bool),
            "empty_page_ends": isinstance(self.empty_page_ends, bool),
            "allow_repeated_pages": isinstance(self.allow_repeated_pages, bool),
        }
        self._reject([name for name, ok in checks.items() if not ok])

    def _reject(self, names: Sequence[str]) -> None:
        if names:
            # Not the value of params: a query string there may carry a key.
            # Nor path's, which is refused for not being a str: an httpx.URL with a key.
            shown = ", ".join(
                f"{name} of type {type(getattr(self, name)).__name__}"
                if name in ("params", "path")
                else f"{name}={getattr(self, name)!r}"
                for name in names
            )
            raise UnexpectedValueError(f"{type(self).__name__}: invalid setting(s) {shown}")

    def _scheme_for(self) -> Scheme:
        """The style's addressing (see :mod:`trestfly._pages`)."""
        raise NotImplementedError

    def _start(self) -> Request:
        """The first page of a walk that is not resumed."""
        return Request(None)

    def _query(self, address: Address) -> dict[str, Any]:
        """The paging query parameters of the page at ``address``."""
        raise NotImplementedError

    def _reports_total(self) -> bool:
        """Whether pages say how big the collection is (then a crawl waits for the
        first page before fetching ahead, instead of guessing)."""
        return self.total_key is not None

    # ------------------------------------------------------------- fetching

    def _target(self, address: Address) -> tuple[str, dict[str, Any] | None]:
        """The path (or URL) and query parameters of the page at ``address``."""
        return self.path, {**self.params, **self._query(address)}

    def _read_options(self) -> dict[str, Any]:
        # Explicit on both: a session whose default is box=True must not box pages the
        # author asked to read as plain JSON (box wins when both are set).
        return {"box": True} if self.box else {"box": False, "conv_json": True}

    async def _fetch(self, address: Address) -> Page:
        """Fetch and parse the page at ``address``; override to send it differently.

        Raises:
            PaginationError: the answer is not a page this iterator understands.
        """
        target, params = self._target(address)
        document = await self._api.get(target, params=params, **self._read_options())
        # Named with its paging query in errors: the path alone did not say which page.
        return self._page_from(document, _with_query(target, params))

    def _page_from(self, document: Any, target: str, next_address: str | None = None) -> Page:
        """Reduce a parsed page to a :class:`Page` (records, total, next); ``target``
        names the page in errors (its URL, or its path with the paging query)."""
        if isinstance(document, httpx.Response):
            _refuse_not_modified(document, target, self._show_url)
            kind = document.headers.get("content-type") or "no content type"
            raise PaginationError(f"{self._show_url(target)}: the page is not JSON ({kind})")
        records = self._read(target, extract, document, self.items_key)
        if records is None:
            records = ()
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
            raise PaginationError(
                f"{self._show_url(target)}: {self.items_key!r} holds {type(records).__name__}, "
                "not a list"
            )
        return Page(
            records=records,
            total=self._read(target, self._count_at, document, self.total_key, "total"),
            next=next_address,
        )

    def _read(self, target: str, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)``, its PaginationError naming the page (``target``): "no key
        'items' in the page" said nothing of which one, in a crawl of thousands."""
        try:
            return read(*args)
        except PaginationError as exc:
            failure = exc
        raise PaginationError(f"{self._show_url(target)}: {failure}")

    @staticmethod
    def _count_at(document: Any, key: KeyPath, what: str) -> int | None:
        if key is None:
            return None
        # Missing is allowed: many APIs report the total on the first page only.
        return as_count(extract(document, key, None), what)

    # ------------------------------------------------------------- the walk

    def _left_in_page(self) -> int:
        return len(self.page) - self.page_count

    def _items_left(self) -> int | None:
        if self.max_items is None:
            return None
        return self.max_items - self.count - self._left_in_page()

    def _pages_left(self) -> int | None:
        return None if self.max_pages is None else self.max_pages - self.num_pages

    def _next_request(self) -> Request | None:
        """The page to fetch after the current one, or None when the walk needs no more."""
        if (
            self._request is None
            or limit_reached(self.num_pages, self.max_pages)
            or limit_reached(self.count + self._left_in_page(), self.max_items)
        ):
            return None
        return self._request

    def _accept(self, request: Request, page: Page) -> None:
        """Make ``page`` (fetched for ``request``) the current page.

        Raises:
            PaginationError: the page cannot be walked exactly (see ``judge_page``), it
                holds the same records as the page before (the server ignores the
                offset or page number), or its next cursor or link was seen before.
        """
        scheme = self._scheme
        total = page.total if page.total is not None else self.total
        if page.total_pages is None and self._total_pages is not None:
            page = dataclasses.replace(page, total_pages=self._total_pages)
        first = scheme.first_record(request.address)
        verdict = judge_page(
            len(page.records),
            skip=request.skip,
            page_size=scheme.page_size,
            room=None if total is None or first is None else total - first,
            more=False if self._ends_at(page) else scheme.more(request.address, page),
            items_left=self._items_left(),
            pages_left=self._pages_left(),
        )
        records = page.records
        if (
            scheme.addressable
            and not self.allow_repeated_pages
            and len(records) > 1
            and records == self._last_records
        ):
            # The first page again and again: records repeated up to the total, or
            # without one a walk that never ends.  (Compared whole, this costs one
            # record's comparison on any other page: the first records differ.)
            raise PaginationError(
                f"the server sent the page at {request.address!r} with the same "
                f"{len(records)} records as the page before: it ignores the offset or page "
                "number it is asked for (see offset_param or page_param); stopping rather "
                "than repeating records (set allow_repeated_pages=True if the collection "
                "does hold equal pages in a row)"
            )
        whole = verdict.start == 0 and verdict.stop == len(records)
        kept = records if whole else records[verdict.start : verdict.stop]
        if type(self)._record is not PagedIterator._record:
            # Here, not in __anext__: crawl() and crawl_many() hand out the page's
            # records without it, and got the raw dicts where `async for` got models.
            # Before any state moves: a record that fails leaves the page to fetch again.
            kept = [self._record(record) for record in kept]
        self._last_records = records
        after = None if verdict.end else scheme.after(request.address, page)
        if not scheme.addressable and not verdict.last:
            self._followed.add(_fingerprint(self._identity(request.address)))
            if _fingerprint(after) in self._followed:
                # This page's records are new: hand them out, fail when going further.
                self._failure = PaginationError(
                    f"the server sent {self._shown_address(after)!r} as the next page again: "
                    "stopping "
                    "instead of looping"
                )
        self.total = total
        self._total_pages = page.total_pages
        self.num_pages += 1
        self.page = kept
        self.page_count = 0
        self._current = _Current(request.address, verdict, after)
        self._request = None if verdict.last else Request(after)
        self._report()

    def _ends_at(self, page: Page) -> bool:
        """Whether ``page`` ends the walk by ``empty_page_ends``, whatever it names next."""
        return self.empty_page_ends and not page.records and not self._scheme.addressable

    def _record(self, record: Any) -> R:
        """What the walk hands out for one record of a page, as it was parsed (a dict,
        or a Box with ``box``): override to make your own type of it, for ``async for``,
        :meth:`crawl` and :func:`~trestfly.crawl_many` alike.  Called for each record
        of a page when the page is taken (after the page's checks), those a walk stops
        before included, and again for a page fetched again on resuming; an exception
        fails the walk at that page, as a failed fetch does.

        .. versionadded:: 0.1.0
        """
        # Unchanged: the type parameter says what the API sends (OffsetIterator[User],
        # User a TypedDict), as an annotation of the parsed JSON would.
        as_declared: R = record
        return as_declared

    def _identity(self, address: Address) -> Address:
        """The cursor or URL a page is known by, for loop detection.

        The first page of a chain has no address (None); a style whose next pages can
        name the first one again overrides this to give it the name they would use.
        """
        return address

    def _check_failure(self) -> None:
        """Raise what keeps the walk from going past the current page, if anything.

        Raises:
            PaginationError: the next page is one already walked (a loop).
        """
        if self._failure is not None:
            raise self._failure

    def _mark_started(self) -> None:
        if self._started_at is None:
            self._started_at = trio.current_time()

    def _expected_records(self, records: int) -> int | None:
        """The records the walk will yield in all, as of a page handed out with
        ``records`` so far (see CrawlProgress.total)."""
        if self._request is None:
            # The page handed out is the walk's last: what it yields is known now, with
            # no total too (a cursor walk's bar never completed).
            return records
        if self.total is None or self._origin is None:
            return None
        expected = max(0, self.total - self._origin)
        if self.max_items is not None:
            expected = min(expected, self.max_items)
        if self.max_pages is not None:
            # The pages left, at this page's size: without it a walk cut at max_pages
            # reported the whole collection, and its progress bar never completed.
            pages_left = max(0, self.max_pages - self.num_pages)
            expected = min(expected, records + pages_left * len(self.page))
        return expected

    def _report(self) -> None:
        if self._progress is None:
            return
        now = trio.current_time()
        elapsed = now - (self._started_at if self._started_at is not None else now)
        records = self.count + len(self.page)
        report = CrawlProgress(
            records=records,
            pages=self.num_pages,
            total=self._expected_records(records),
            elapsed=elapsed,
            rate=records / elapsed if elapsed > 0 else 0.0,
        )
        try:
            result: object = self._progress(report)
        except StopAsyncIteration as stop:
            self._progress_failed = True
            # Out of a crawl's __anext__ it ended the walk as if it were over, records
            # missing (PEP 479's reason); the plain walk blamed a page fetch for it.
            raise TrestflyError(
                "the progress callback raised StopAsyncIteration (a spent iterator's "
                "anext(), say): the walk stops here"
            ) from stop
        except BaseException:
            self._progress_failed = True
            raise
        if inspect.isawaitable(result):
            # An object with an async __call__, or a lambda returning a coroutine: the
            # constructor's check cannot see those, and they would never run.
            if inspect.iscoroutine(result):
                result.close()
            self._progress_failed = True
            raise UnexpectedValueError(
                "progress must be a plain function: it is called, not awaited (it "
                f"returned a {type(result).__name__})"
            )

    @property
    def position(self) -> Position:
        """Where the walk stands: pass it as ``position=`` to a new iterator to resume.

        It moves with every record handed out (by ``async for`` or by a crawl), so after
        a ``break``, an exception or a cancellation the next record is exactly the one
        the resumed iterator yields first.

        .. versionadded:: 0.1.0
        """
        current, scheme = self._current, self._scheme
        if current is None:
            return self._start_position
        verdict = current.verdict
        index = verdict.start + self.page_count
        if index < verdict.stop:
            return scheme.position(current.address, index)
        if verdict.end and verdict.stop >= verdict.size:
            return scheme.position(current.address, verdict.stop, done=True)
        if verdict.stop < verdict.size:  # max_items stopped inside the page
            return scheme.position(current.address, verdict.stop)
        return scheme.position(current.after, 0)

    def __repr__(self) -> str:
        # The path and where the walk stands; the position as messages show it.
        path = getattr(self, "path", None)
        shown = self._show_url(path) if isinstance(path, str) else path  # it may hold a key
        return f"<{type(self).__name__} path={shown!r} count={self.count} " + (
            f"position={self._shown_position()}>" if hasattr(self, "_scheme") else "unready>"
        )

    def _shown_position(self) -> str:
        """:attr:`position` as messages quote it, a URL without its secrets (the
        position itself keeps the real URL: it is what a resumed walk requests)."""
        position = self.position
        return repr(dataclasses.replace(position, page=self._shown_address(position.page)))

    def _shown_address(self, address: Address) -> Address:
        """``address`` as this iterator's messages quote it (see _safe_address)."""
        return _safe_address(address, show_url=self._show_url)

    def _show_url(self, url: str | httpx.URL) -> str:
        """``url`` (a page's path or link) as the session's own calls show it in messages:
        its ``redact_fields`` too, and the whole query of one of its restricted paths.

        A page's query is the walk's ``params`` (``q=`` of a search): with safe_url alone,
        a restricted path's query was quoted in a failed page's error, a crawl's
        WARNING and the iterator's repr, which a direct call to the path never shows.
        """
        options = self._session_options()
        if options is None:  # no trestfly session: its rules unknown
            return safe_url(url)
        shown = options.shown_url(url)
        if options.restricted_paths:
            # A path is judged as sent, joined to the session's URL and base path: a
            # restricted "v1/search" must cover the walk of path="search" too.
            joined = self._joined(str(url), options.use_base)
            if joined is not None and is_restricted(joined, options.restricted_paths):
                shown = without_query(shown, options.redact_value)
        return shown

    def _walks_restricted_path(self) -> bool:
        """Whether ``path`` is one of the session's restricted paths, as sent."""
        options = self._session_options()
        if options is None or not options.restricted_paths:
            return False
        joined = self._joined(str(self.path), options.use_base)
        return joined is not None and is_restricted(joined, options.restricted_paths)

    def _session_options(self) -> CallOptions | None:
        """The session's call options, or None when ``api`` is no trestfly session."""
        options = getattr(getattr(self, "_api", None), "_defaults", None)
        return options if isinstance(options, CallOptions) else None

    def _restricted_paths(self) -> frozenset[str]:
        options = self._session_options()
        return options.restricted_paths if options is not None else frozenset()

    def _joined(self, url: str, use_base: bool) -> str | None:
        """``url`` as the session sends it, or None when it cannot tell."""
        url_for = getattr(self._api, "_url_for", None)
        try:
            joined = url_for(url, use_base)[0] if callable(url_for) else None
        except Exception:  # a message is being written: no error of the session's here
            return None
        return joined if isinstance(joined, str) else None

    def _claim(self) -> None:
        try:
            busy = self._busy
        except AttributeError:
            self._check_initialised()  # an __init__ that skipped super().__init__()
            raise
        if busy:
            raise TrestflyError(
                f"{type(self).__name__} is already being iterated (by a crawl or another "
                "task): one walk at a time"
            )
        if self._current is None and not self.num_pages:
            # Before the first page, checked again: a max_items="2" set after
            # super().__init__() failed with a bare TypeError, and -1 yielded nothing.
            self._check_counters()
            self._replan_if_changed()
        self._busy = True

    def _release(self) -> None:
        self._busy = False

    async def _get_page(self) -> None:
        """Fetch the next page into ``self.page`` (empty when the walk needs no more).

        ``self.page`` holds the records to hand out (a resumed page without the ones
        handed out before, the last page cut at ``max_items`` or at the total).
        """
        request = self._next_request()
        if request is None:
            self.page, self.page_count = [], 0
            return
        self._check_failure()
        self._mark_started()
        page = await self._fetch(request.address)
        self._accept(request, checked_page(page, self._fetch_site(request.address)))

    def _fetch_site(self, address: Address) -> str:
        """``_fetch(address)`` as messages name it (see checked_page)."""
        return f"{type(self).__name__}._fetch({self._shown_address(address)!r})"

    async def __anext__(self) -> R:
        self._claim()
        try:
            # Bounded: each pass fetches the page after the last, or stops.
            while self.page_count >= len(self.page):
                if self._next_request() is None:
                    raise StopAsyncIteration
                try:
                    await self._get_page()
                except StopAsyncIteration as stop:
                    where = f"{type(self).__name__}._fetch() or _get_page()"
                    raise stopped_page_fetch(where, stop) from stop
        finally:
            self._release()
        record = self.page[self.page_count]
        self.page_count += 1
        self.count += 1
        return record

    def crawl(self, *, prefetch: int = 4) -> AbstractAsyncContextManager[Records[R]]:
        """Walk the collection with up to ``prefetch`` pages fetched ahead, in order::

            async with iterator.crawl(prefetch=8) as records:
                async for record in records:
                    ...

        Offset and page-number pages are fetched concurrently (once the total is known,
        or, without a total, until a short or empty page); cursor and link pages one
        after the other while the consumer works.  Never more than ``prefetch`` pages are
        in flight or waiting ahead of the page being read, so memory stays bounded and
        ``max_items``/``max_pages`` are honoured without fetching pages they exclude.

        The fetchers live in a nursery owned by the ``async with`` block: leaving it
        (at the end, by ``break``, an exception or a cancellation) stops them all.  A
        page that fails after the session's retries is raised, as itself, when the
        consumer reaches it, after every record before it.  The iterator's
        :attr:`position` stays exact, and a crawl continues where the iterator stands.

        Args:
            prefetch: pages fetched ahead of the one being read (at least 1).

        Raises:
            UnexpectedValueError: ``prefetch`` is not an integer >= 1.
            TrestflyError: the iterator is already being walked.

        .. versionadded:: 0.1.0
        """
        from ._crawl import open_crawl  # here: _crawl imports this module

        return open_crawl(self, prefetch=prefetch)


# ------------------------------------------------------------------ the styles


class OffsetIterator(PagedIterator[R]):
    """``?offset=N&limit=M`` pages, the total read from the page.

    Attributes:
        limit: records per page (at most what the server sends per page).
        offset_param: the offset's query parameter.
        limit_param: the page size's query parameter (None: not sent, the server's
            page size is ``limit``).
        total_key: key path of the total (default ``"total"``; None when there is none:
            a short or empty page then ends the walk).

    A page shorter than ``limit`` ends the walk; a short page whose total says more
    records follow raises :class:`~trestfly.PaginationError`, as does a page longer
    than ``limit``: either would skip or repeat records.  So does a page of two or more
    records equal to the page before: the server ignores ``offset_param``.

    .. versionadded:: 0.1.0
    """

    limit: int = 100
    offset_param: str = "offset"
    limit_param: str | None = "limit"
    total_key: KeyPath = "total"

    def _check_settings(self) -> None:
        super()._check_settings()
        self._reject(
            [
                name
                for name, ok in {
                    "limit": _is_count(self.limit, 1),
                    "offset_param": _is_name(self.offset_param),
                    "limit_param": self.limit_param is None or _is_name(self.limit_param),
                }.items()
                if not ok
            ]
        )

    def _scheme_for(self) -> Scheme:
        return OffsetScheme(self.limit)

    def _start(self) -> Request:
        return Request(0)

    def _query(self, address: Address) -> dict[str, Any]:
        query: dict[str, Any] = {self.offset_param: address}
        if self.limit_param is not None:
            query[self.limit_param] = self.limit
        return query


class PageNumberIterator(PagedIterator[R]):
    """``?page=N&per_page=M`` pages numbered from ``first_page``.

    Attributes:
        limit: records per page.
        page_param: the page number's query parameter.
        limit_param: the page size's query parameter (None: not sent).
        first_page: the number of the first page (1, or 0 for some APIs).
        total_key: key path of the record count, if the API reports one.
        total_pages_key: key path of the page count, if the API reports one.

    A page of two or more records equal to the page before raises
    :class:`~trestfly.PaginationError`: the server ignores ``page_param``.

    .. versionadded:: 0.1.0
    """

    limit: int = 100
    page_param: str = "page"
    limit_param: str | None = "per_page"
    first_page: int = 1
    total_pages_key: KeyPath = None

    def _check_settings(self) -> None:
        super()._check_settings()
        self._reject(
            [
                name
                for name, ok in {
                    "limit": _is_count(self.limit, 1),
                    "page_param": _is_name(self.page_param),
                    "limit_param": self.limit_param is None or _is_name(self.limit_param),
                    "first_page": _is_count(self.first_page, 0),
                    "total_pages_key": _is_key_path(self.total_pages_key),
                }.items()
                if not ok
            ]
        )

    def _scheme_for(self) -> Scheme:
        return PageNumberScheme(self.limit, self.first_page)

    def _reports_total(self) -> bool:
        return self.total_key is not None or self.total_pages_key is not None

    def _start(self) -> Request:
        return Request(self.first_page)

    def _query(self, address: Address) -> dict[str, Any]:
        query: dict[str, Any] = {self.page_param: address}
        if self.limit_param is not None:
            query[self.limit_param] = self.limit
        return query

    def _page_from(self, document: Any, target: str, next_address: str | None = None) -> Page:
        page = super()._page_from(document, target, next_address)
        pages = self._read(target, self._count_at, document, self.total_pages_key, "total pages")
        return Page(page.records, page.total, pages, page.next)


class CursorIterator(PagedIterator[R]):
    """``?cursor=TOKEN`` pages, each naming the next page's cursor.

    Attributes:
        cursor_param: the cursor's query parameter (not sent for the first page).
        cursor_key: key path of the next cursor in a page (``"meta.next_cursor"``); a
            missing, null, empty, false or 0 (``"0"``) cursor ends the walk.
        limit: records per page to ask for (None: the server's default, not sent).
        limit_param: the page size's query parameter.

    .. versionadded:: 0.1.0
    """

    cursor_param: str = "cursor"
    cursor_key: KeyPath = "next_cursor"
    limit: int | None = None
    limit_param: str = "limit"

    def _check_settings(self) -> None:
        super()._check_settings()
        self._reject(
            [
                name
                for name, ok in {
                    "cursor_param": _is_name(self.cursor_param),
                    "cursor_key": _is_key_path(self.cursor_key),
                    "limit": self.limit is None or _is_count(self.limit, 1),
                    "limit_param": _is_name(self.limit_param),
                }.items()
                if not ok
            ]
        )

    def _scheme_for(self) -> Scheme:
        return ChainScheme()

    def _shown_address(self, address: Address) -> Address:
        # On a restricted path the cursor is a value of the query the session hides
        # (the page's URL showed export?REDACTED beside the cursor itself).
        secret = is_secret_name(self.cursor_param) or self._walks_restricted_path()
        return _safe_address(address, secret=secret, show_url=self._show_url)

    def _query(self, address: Address) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if address is not None:
            query[self.cursor_param] = address
        if self.limit is not None:
            query[self.limit_param] = self.limit
        return query

    def _page_from(self, document: Any, target: str, next_address: str | None = None) -> Page:
        page = super()._page_from(document, target, next_address)  # checks the page first
        cursor = self._read(target, extract, document, self.cursor_key, _ABSENT)
        if cursor is _ABSENT:
            _tell_if_full(self, page, target, f"no key {self.cursor_key!r}", "cursor_key")
            return page
        # null, "" and false all mean "no next page" in the APIs seen in the wild, and
        # so does 0 (Twitter's next_cursor, "0" in its next_cursor_str): taken as a
        # token, it asked for the first page again, handed out twice before the loop
        # check stopped the walk.  A next page is never at cursor 0.
        if cursor is None or cursor == "" or cursor is False or cursor in (0, "0"):
            return page
        if isinstance(cursor, bool) or not isinstance(cursor, str | int):
            # Its kind only: an object may hold anything (a signed state, a session).
            raise PaginationError(
                f"{self._show_url(target)}: the next cursor is a {type(cursor).__name__}, "
                "not a token (a string or an integer)"
            )
        return Page(page.records, page.total, page.total_pages, str(cursor))


class LinkIterator(PagedIterator[R]):
    """Pages linked by ``Link: <url>; rel="next"`` headers (RFC 8288, GitHub style).

    The first page is ``path`` with ``params``; each next page is the URL of the link
    whose relation is ``rel``, resolved against the page's URL and requested as it is
    (it carries its own query).  No such link ends the walk.

    Next pages are requested through the session, with its default headers (API keys,
    tokens): so a next link to another origin than the collection's (another scheme,
    host or port than ``path``, or the session URL it is joined to) is refused with
    :class:`~trestfly.PaginationError` before it is requested, after every record
    before it, unless ``allow_cross_origin`` is set.  A resumed walk's ``position``
    is checked the same way.

    Attributes:
        items_key: key path of the records (default None: the page is the list).
        limit: records per page to ask for on the first request (None: not sent).
        limit_param: the page size's query parameter.
        rel: the relation type of the next link.
        allow_cross_origin: follow next links to other origins too (off by default: a
            server, or whoever can inject a header, would otherwise get the session's
            credentials, even over plain http).  Set it only for an API that is known
            to page across its own hosts.

    .. versionadded:: 0.1.0
    """

    items_key: KeyPath = None
    limit: int | None = None
    limit_param: str = "per_page"
    rel: str = "next"
    allow_cross_origin: bool = False

    def __init__(
        self,
        api: Any,
        *,
        position: Position | None = None,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api, position=position, progress=progress, **options)
        # The URL the first page was served from (its address is None), once fetched.
        self._first_url: str | None = None
        # The origin next links must share: the collection's, read when the walk starts
        # (a resumed walk starts at a link), from the session's URL as it is then (an
        # SDK may set it at login, after the iterator was made).  None when the session
        # has no URL to tell: then the first page's, as served.
        self._home: str | None = None
        self._home_read = False

    def _check_settings(self) -> None:
        super()._check_settings()
        self._reject(
            [
                name
                for name, ok in {
                    "limit": self.limit is None or _is_count(self.limit, 1),
                    "limit_param": _is_name(self.limit_param),
                    "rel": isinstance(self.rel, str) and bool(self.rel),
                    "allow_cross_origin": isinstance(self.allow_cross_origin, bool),
                }.items()
                if not ok
            ]
        )

    def _scheme_for(self) -> Scheme:
        return ChainScheme(style="link")

    def _identity(self, address: Address) -> Address:
        # A next link back to the first page names it by its URL: so must the walk, or
        # that page is fetched, and its records handed out, a second time.
        return self._first_url if address is None else address

    def _query(self, address: Address) -> dict[str, Any]:
        return {} if self.limit is None else {self.limit_param: self.limit}

    def _target(self, address: Address) -> tuple[str, dict[str, Any] | None]:
        if address is None:
            return super()._target(address)
        assert isinstance(address, str)
        return address, None  # the link carries its own query

    def _check_origin(self, address: Address) -> None:
        """Refuse to request a link outside the collection's origin (unless allowed).

        Checked before the request, not when the link arrives: a crawl fetches the
        next page before the consumer takes the one naming it.

        Raises:
            PaginationError: ``address`` is on another origin than the collection, or
                is no http(s) URL (even with ``allow_cross_origin``).
        """
        if isinstance(address, str) and _scheme_of(origin_of(address)) not in _WEB_SCHEMES:
            # An unclosed IPv6 bracket, mailto:, ftp://: no page of a web API.  Quoted
            # through _show_url only (which shows an unreadable URL as "<invalid URL>"):
            # the link may echo the caller's api_key=.
            raise PaginationError(
                f"the next link {self._show_url(address)!r} is not an http or https URL: "
                "stopping rather than sending it"
            )
        if isinstance(address, str):
            try:
                parse_url(address, "the next link")  # its host decoded too
            except UnexpectedValueError:
                # "https://xn--/x": the session refused it as the call's own bad path.
                raise PaginationError(
                    f"the next link {self._show_url(address)!r} is no URL a request can go "
                    "to (its host does not decode): stopping rather than sending it"
                ) from None
        if not self._home_read:
            self._home_read = True
            first_target = self._target(None)[0]
            self._home = origin_of(first_target) or origin_of(
                str(getattr(self._api, "_url", None) or "")
            )
        if self._home is None or self.allow_cross_origin or not isinstance(address, str):
            return
        origin = origin_of(address)
        if origin != self._home:
            # The link as messages show it: APIs echo the caller's api_key= into links.
            raise PaginationError(
                f"the next link {self._shown_address(address)!r} leads to another origin "
                f"({origin or 'unreadable'}) than the collection's ({self._home}): not sending "
                "the session's headers there (set allow_cross_origin=True to follow it)"
            )

    async def _fetch(self, address: Address) -> Page:
        self._check_origin(address)
        target, params = self._target(address)
        # The raw response: the next link is in its headers, not its body.
        response: httpx.Response = await self._api.get(
            target, params=params, box=False, conv_json=False
        )
        _refuse_not_modified(response, target, self._show_url)
        if address is None:
            self._first_url = str(response.url)
        if self._home is None:
            self._home = origin_of(str(response.url))
        if not is_json_content_type(response.headers.get("content-type")):
            return self._page_from(response, target)
        # As the session converts it: a document python-box refuses is the response's
        # ResponseDecodeError, not a bare BoxKeyError.
        document = convert_response(
            response,
            box=self.box,
            box_attrs=getattr(self._api, "_box_attrs", {}),
            conv_json=True,
            show_url=self._show_url,
            restricted_paths=self._restricted_paths(),
        )
        next_url = find_link(response.headers.get_list("link"), self.rel, str(response.url))
        page = self._page_from(document, target, next_url)
        if next_url is None:
            _tell_if_full(self, page, target, f"no link of rel {self.rel!r}", "rel")
        return page


#: A cursor key absent from the page (not null: absent).
_ABSENT: Any = object()


def _tell_if_full(
    iterator: CursorIterator | LinkIterator, page: Page, target: str, lacks: str, setting: str
) -> None:
    """A WARNING when a page that ends the walk for want of a next cursor or link was
    full (``limit`` records or more): most likely ``setting`` names nothing the API
    sends, and every walk stops after its first page.  Where the API does leave the
    cursor out of its last page, that page is full only when the records end at a page
    boundary, so the warning is rare there."""
    limit = iterator.limit
    if limit is None or len(page.records) < limit:
        return
    shown = iterator._show_url(target)
    pagination_log.warning(
        "the page %s has %s but holds a full page of %d records: the walk ends there; check %s",
        shown,
        lacks,
        len(page.records),
        setting,
        extra={
            "trestfly_url": shown,
            "trestfly_records": len(page.records),
            "trestfly_setting": setting,
        },
    )


def _is_name(value: object) -> bool:
    """A query parameter's name: a non-empty str (an empty one sent ``?=0&limit=2``)."""
    return isinstance(value, str) and bool(value.strip())


#: The schemes a next link may have: anything else is no page of a web API.
_WEB_SCHEMES = frozenset({"http", "https"})


def _scheme_of(origin: str | None) -> str | None:
    return None if origin is None else origin.partition("://")[0]


def _with_query(target: str, params: Mapping[str, Any] | None) -> str:
    """``target`` with ``params`` as the query it is sent with (for messages)."""
    if not params:
        return target
    return f"{target}{'&' if '?' in target else '?'}{httpx.QueryParams(params)}"


def _refuse_not_modified(
    response: httpx.Response, target: str, show_url: Callable[[str], str]
) -> None:
    """A 304 (the session returns it, as the answer to a conditional request) is no page:
    taken as one, its empty body ended a walk as if the collection had, records missing.
    ``show_url``: how the iterator shows ``target`` (PagedIterator._show_url)."""
    if response.status_code == 304:
        raise PaginationError(
            f"{show_url(target)}: the page was answered 304 Not Modified, which holds no "
            "records (a conditional header on the walk's requests?)"
        )
