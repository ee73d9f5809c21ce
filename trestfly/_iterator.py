"""APIIterator: RESTfly's page-at-a-time iterator, as an async iterator.

Subclasses implement :meth:`APIIterator._get_page`, which fills ``self.page`` (and may set
``self.total``); the base class walks the records and decides when to stop
(:func:`limit_reached` is the one rule for ``total``, ``max_items`` and ``max_pages``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from types import FunctionType
from typing import TYPE_CHECKING, Any, Generic, Self

from ._hook_keywords import check_async_hooks
from .errors import TrestflyError, UnexpectedValueError

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    #: The type of the records a walk hands out.  Its default (PEP 696, for type
    #: checkers only) keeps an SDK's plain ``class Users(OffsetIterator)`` as it was,
    #: records of ``Any``, with no "missing type parameters" under ``--strict``.
    R = TypeVar("R", default=Any)
else:
    from typing import TypeVar

    R = TypeVar("R")


def limit_reached(count: int, limit: int | None) -> bool:
    """Whether ``count`` has reached ``limit``.

    ``None`` means unlimited; ``0`` means none at all (not unlimited).
    """
    return limit is not None and count >= limit


def is_count(value: Any) -> bool:
    """Whether ``value`` is an integer >= 0 (``True`` is no count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_method(cls: type, name: str) -> bool:
    """Whether ``name`` is a method (or property) of ``cls``, which a keyword must never
    replace.  Not whether its value is callable: a setting may hold a class or a
    function (``record_type: type = dict``), and was refused as undeclared."""
    try:
        attribute = inspect.getattr_static(cls, name)
    except AttributeError:
        return False
    return isinstance(
        attribute, FunctionType | staticmethod | classmethod | property
    ) or inspect.ismethoddescriptor(attribute)


def _is_annotated(cls: type, name: str) -> bool:
    """Whether ``name`` is declared by an annotation alone (``page_size: int``) on
    ``cls`` or a base: a declaration too, refused before as "no attribute"."""
    return any(name in vars(klass).get("__annotations__", {}) for klass in cls.__mro__)


def stopped_page_fetch(where: str, stop: StopAsyncIteration) -> TrestflyError:
    """A ``StopAsyncIteration`` raised by a page fetch (a spent ``await anext(...)`` in
    an override of ``where``), as the error it is: out of ``__anext__`` it would end the
    walk as if it were over, records missing (PEP 479's reason)."""
    error = TrestflyError(f"{where} raised StopAsyncIteration: a page fetch failed")
    error.__cause__ = stop
    return error


class APIIterator(Generic[R]):
    """Iterate over every record of a paginated collection, one page at a time.

    Attributes:
        count: records returned so far.
        page_count: records returned from the current page.
        num_pages: pages fetched so far.
        page: the current page's records.
        total: the number of records available, when known (None: unknown).
        max_items: stop after this many records (None: unlimited).
        max_pages: fetch at most this many pages (None: unlimited).

    Args:
        api: the session the pages are fetched through (kept as ``self._api``).
        attrs: values for attributes declared on the class (the ones above, and any a
            subclass declares, such as ``page_size: int = 100``).

    Raises:
        UnexpectedValueError: a keyword names no declared data attribute (or a method);
            a counter or limit is not an integer >= 0 (``None`` for the limits and
            ``total``), or ``page`` is not a sequence.

    Use ``async for record in iterator``.  Iteration stops at ``total``, ``max_items``,
    ``max_pages`` or at the first empty page.  ``iterator[i]`` and ``iterator.get(i)``
    index the current page.  ``num_pages`` is incremented after :meth:`_get_page`
    returns, so inside it ``num_pages`` is the number of pages fetched before.

    .. versionadded:: 0.1.0
    """

    count: int = 0
    page_count: int = 0
    num_pages: int = 0
    total: int | None = None
    max_items: int | None = None
    max_pages: int | None = None
    # Set by an empty page: the walk is over for good, with no further fetch.  (A class
    # default, immutable, so a subclass __init__ that skips super() still has it.)
    _exhausted: bool = False
    # Set while a page is fetched: a second task calling in meanwhile would hand out
    # the same records again, or skip some.
    _fetching: bool = False

    def __init__(self, api: Any, **attrs: Any) -> None:
        check_async_hooks(type(self), APIIterator, ("_get_page",))
        self._api = api
        self.page: Sequence[R] = []
        for key, value in attrs.items():
            # Only data attributes may be set: a keyword must never replace a method.
            if (
                _is_method(type(self), key)  # first: hasattr would run a property
                or not (hasattr(self, key) or _is_annotated(type(self), key))
                or key in ("_api", "_exhausted", "_fetching")
            ):
                raise UnexpectedValueError(
                    f"{type(self).__name__} has no attribute {key!r} to set "
                    "(declare it on the class to accept it as a keyword)"
                )
            setattr(self, key, value)
        self._check_counters()

    def _check_initialised(self) -> None:
        # An SDK __init__ that skipped super().__init__(api, ...) failed at the first
        # page with a bare AttributeError naming "page" or "_api".
        missing = [name for name in ("_api", "page") if not hasattr(self, name)]
        if missing:
            raise TrestflyError(
                f"{type(self).__name__} has no {' or '.join(missing)}: its __init__ must "
                "call super().__init__(api, **attrs) before the walk"
            )

    def _check_counters(self) -> None:
        # Checked here, not where they are compared: a negative count would hand out
        # more than max_items, and a string would fail only after the first page.
        optional = {"total": self.total, "max_items": self.max_items, "max_pages": self.max_pages}
        wrong = [
            name for name, value in optional.items() if value is not None and not is_count(value)
        ]
        wrong += [
            name
            for name in ("count", "page_count", "num_pages")
            if not is_count(getattr(self, name))
        ]
        if isinstance(self.page, str | bytes) or not isinstance(self.page, Sequence):
            wrong.append("page")
        if wrong:
            shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in wrong)
            raise UnexpectedValueError(
                f"{type(self).__name__}: invalid setting(s) {shown} (expected integers >= 0; "
                "None for total, max_items and max_pages; a sequence for page)"
            )

    def _check_fetched(self) -> None:
        """What ``_get_page`` left must be walkable: checked as the constructor checks
        them, else a page of None or a dict failed with a bare TypeError or KeyError, a
        string page handed out its characters, and a negative total ended the walk
        silently."""
        page, total = self.page, self.total
        if isinstance(total, float) and total.is_integer() and total >= 0:
            self.total = total = int(total)  # 3.0 from a JSON number: a count, as before
        if isinstance(page, str | bytes) or not isinstance(page, Sequence):
            problem = f"page to a {type(page).__name__} (expected a sequence of records)"
        elif total is not None and not is_count(total):
            problem = f"total to {total!r} (expected an integer >= 0, or None)"
        else:
            return
        raise UnexpectedValueError(f"{type(self).__name__}._get_page() set {problem}")

    def _check_page_set(
        self, returned: object, previous: Sequence[Any], previous_records: list[Any]
    ) -> None:
        """``_get_page`` must set ``self.page``: one that returned its records (a
        RESTfly port's slip) ended the walk with none, and one that left the last page
        in place handed it out again, for ever without a total or a limit."""
        name = f"{type(self).__name__}._get_page()"
        if returned is not None:
            raise UnexpectedValueError(
                f"{name} returned a {type(returned).__name__}: set self.page to the "
                "records instead (what it returns is not read)"
            )
        page = self.page
        if (
            page is previous
            and previous_records
            and len(page) == len(previous_records)
            and all(now is before for now, before in zip(page, previous_records, strict=True))
        ):
            raise UnexpectedValueError(
                f"{name} left self.page as it was: set it to the next page's records, "
                "or to an empty sequence when there are no more (the last page would be "
                "handed out again)"
            )

    async def _get_page(self) -> None:
        """Fetch the next page into ``self.page`` (and may set ``self.total``).

        Subclasses must implement it.  An empty page ends the iteration.

        Raises:
            NotImplementedError: the subclass did not implement it.

        .. versionadded:: 0.1.0
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _get_page()")

    # Walked with ``async for`` only.  Without this, __getitem__ made a plain ``for``
    # (or ``list()``, or ``in``) fall back to the old sequence protocol over the empty
    # first page: no records and no error, a RESTfly loop ported without ``async``
    # silently lost every record.  None is Python's way to say "not iterable"
    # (a TypeError naming the class), and keeps isinstance(..., Iterable) false.
    __iter__ = None

    def __getitem__(self, index: int) -> R:
        record: R = self.page[index]
        return record

    def get(self, index: int, default: Any = None) -> Any:
        """The record at ``index`` of the current page, or ``default``.

        Args:
            index: a position in ``self.page``.
            default: returned when there is no record at ``index``.

        .. versionadded:: 0.1.0
        """
        try:
            return self.page[index]
        except IndexError:
            return default

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> R:
        if self.num_pages == 0 and self.count == 0:
            # Before the first page, checked again: an SDK __init__ that sets max_items
            # after super().__init__() got a bare TypeError ("2"), or nothing (-1).
            self._check_initialised()
            self._check_counters()
        if (
            self._exhausted
            or limit_reached(self.count, self.total)
            or limit_reached(self.count, self.max_items)
        ):
            raise StopAsyncIteration
        if self.page_count >= len(self.page):
            if limit_reached(self.num_pages, self.max_pages):
                raise StopAsyncIteration
            if self._fetching:
                raise TrestflyError(
                    f"{type(self).__name__} is already fetching a page for another task: "
                    "one walk at a time"
                )
            previous, previous_total, self._fetching = self.page, self.total, True
            # Its records by identity: a page refilled in place holds new ones.
            previous_records = list(previous)
            try:
                try:
                    # Typed None, but a port may return its records (checked below).
                    returned: object = await self._get_page()  # type: ignore[func-returns-value]
                except StopAsyncIteration as stop:
                    raise stopped_page_fetch(f"{type(self).__name__}._get_page()", stop) from stop
                self._check_fetched()
                self._check_page_set(returned, previous, previous_records)
            except BaseException:
                # Cancelled or failed after setting self.page (a second call for the
                # total, say): with the counters unmoved, that page's records would be
                # handed out and then fetched again.  The next call fetches it afresh.
                # The records handed out, not the list: a page refilled in place is
                # that same list, holding the next page's records by now (its tail
                # was handed out, then the page fetched again).
                self.page, self.total = previous_records, previous_total
                raise
            finally:
                self._fetching = False
            self.page_count = 0
            self.num_pages += 1
            if len(self.page) == 0:
                # The other stopping rules hold by themselves (the counters no longer
                # move); an empty page must be remembered, or the next call fetches again.
                self._exhausted = True
                raise StopAsyncIteration
            if limit_reached(self.count, self.total):
                raise StopAsyncIteration
        record = self.page[self.page_count]
        self.count += 1
        self.page_count += 1
        return record
