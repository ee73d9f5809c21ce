"""Pure page planning for paginated collections: no I/O, no clock, no Trio.

Everything the paginators (:mod:`trestfly._paginators`) and the crawler
(:mod:`trestfly._crawl`) decide is decided here, from plain values:

* where a value lives in a page (:func:`extract`, dotted key paths);
* where the next page is (:func:`parse_link_header` for RFC 8288 ``Link`` headers, and
  the *schemes*: :class:`OffsetScheme`, :class:`PageNumberScheme`, :class:`ChainScheme`),
  and whether a next link leaves the walk's origin (:func:`origin_of`);
* which records of a page to hand out and whether it is the last (:func:`judge_page`);
* how many pages a crawl can need, and which it may request now (:func:`pages_for`,
  :func:`last_page_index`, :func:`may_request`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeAlias
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from ._iterator import is_count
from .errors import PaginationError

__all__ = [
    "Address",
    "ChainScheme",
    "KeyPath",
    "Link",
    "OffsetScheme",
    "Page",
    "PageNumberScheme",
    "PaginationError",
    "Position",
    "Request",
    "Scheme",
    "Verdict",
    "as_count",
    "checked_page",
    "extract",
    "find_link",
    "judge_page",
    "key_path",
    "known_last_page",
    "last_page_index",
    "may_request",
    "origin_of",
    "pages_for",
    "parse_link_header",
]

#: Where a value lives in a page: ``"data"``, ``"meta.total"``, a tuple of keys (for
#: keys holding dots), or None for the page itself.
KeyPath: TypeAlias = str | tuple[str, ...] | None
#: What identifies a page: an offset or page number (int), a cursor or URL (str), or
#: None for the first page of a cursor or link collection.
Address: TypeAlias = int | str | None

_MISSING: Any = object()


# ------------------------------------------------------------------ key paths


def key_path(path: KeyPath) -> tuple[str, ...]:
    """The keys of ``path``: ``"a.b"`` is ``("a", "b")``; None and ``""`` are ``()``."""
    if path is None:
        return ()
    if isinstance(path, str):
        return tuple(path.split(".")) if path else ()
    return tuple(path)


def extract(document: Any, path: KeyPath, default: Any = _MISSING) -> Any:
    """The value at ``path`` in a parsed JSON ``document``.

    Keys are looked up with ``[]``, never as attributes: on a ``Box``, ``.items`` is the
    dict method, not the ``"items"`` key.  A key made of digits indexes a list.

    Args:
        document: a page as parsed from JSON (dicts, lists, or Box/BoxList).
        path: a key path (see :data:`KeyPath`).
        default: returned when a key is missing; without it a missing key raises.

    Raises:
        PaginationError: a key is missing and no default was given.
    """
    value = document
    keys = key_path(path)
    for depth, key in enumerate(keys):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
            continue
        if (
            isinstance(value, Sequence)
            and not isinstance(value, str | bytes)
            and key.isdecimal()
            # Compared by length first: int() of 4,300 digits or more is a ValueError
            # (leading zeros included).
            and len(index := key.lstrip("0") or "0") <= len(str(len(value)))
            and int(index) < len(value)
        ):
            value = value[int(index)]
            continue
        if default is not _MISSING:
            return default
        where = ".".join(keys[:depth]) or "the page"
        raise PaginationError(f"no key {key!r} in {where} (looking for {'.'.join(keys)!r})")
    return value


def as_count(value: Any, what: str) -> int | None:
    """A non-negative count from a page (an int, or digits as some APIs send); None stays.

    Raises:
        PaginationError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdecimal():
        try:
            return int(value)
        except ValueError:  # past Python's limit on digits converted (4,300)
            raise PaginationError(
                f"{what} must be a count (an integer >= 0), got a string of {len(value)} digits"
            ) from None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    raise PaginationError(f"{what} must be a count (an integer >= 0), got {value!r}")


# ------------------------------------------------------------------ Link headers


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a ``Link`` header (RFC 8288).

    Attributes:
        target: the URI reference between ``<`` and ``>``, as sent (maybe relative).
        params: the link's parameters, names lower-cased; the first of a repeated name.
        rels: the relation types of ``rel``, lower-cased (``rel="next last"`` has two).
    """

    target: str
    params: Mapping[str, str]
    rels: frozenset[str]


def _skip_spaces(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t":
        at += 1
    return at


def _skip_to_comma(text: str, at: int) -> int:
    """The index just past the next comma outside ``<...>`` and quotes (or the end)."""
    quoted = bracketed = False
    while at < len(text):
        char = text[at]
        if quoted:
            if char == "\\":
                at += 1
            elif char == '"':
                quoted = False
        elif bracketed:
            bracketed = char != ">"
        elif char == '"':
            quoted = True
        elif char == "<":
            bracketed = True
        elif char == ",":
            return at + 1
        at += 1
    return at


def _read_quoted(text: str, at: int) -> tuple[str, int]:
    """A quoted-string starting at ``text[at] == '"'``: its value and the index after it."""
    value: list[str] = []
    at += 1
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text):
            value.append(text[at + 1])
            at += 2
            continue
        if char == '"':
            return "".join(value), at + 1
        value.append(char)
        at += 1
    return "".join(value), at  # unterminated: take what there is


def _read_params(text: str, at: int) -> tuple[dict[str, str], int]:
    """``; name=value`` parameters from ``at`` up to the comma ending the link."""
    params: dict[str, str] = {}
    while True:
        at = _skip_spaces(text, at)
        if at >= len(text) or text[at] == ",":
            return params, at + 1
        if text[at] != ";":
            return params, _skip_to_comma(text, at)  # garbage: drop the rest of this link
        at = _skip_spaces(text, at + 1)
        start = at
        while at < len(text) and text[at] not in "=;, \t":
            at += 1
        name = text[start:at].lower()
        value = ""
        at = _skip_spaces(text, at)
        if at < len(text) and text[at] == "=":
            at = _skip_spaces(text, at + 1)
            if at < len(text) and text[at] == '"':
                value, at = _read_quoted(text, at)
            else:
                start = at
                while at < len(text) and text[at] not in ";,":
                    at += 1
                value = text[start:at].strip()
        # RFC 8288 3.3: occurrences of a parameter after the first are ignored.
        if name and name not in params:
            params[name] = value


def parse_link_header(values: str | Iterable[str]) -> list[Link]:
    """Every link of one or more ``Link`` header values, in order.

    Tolerant of what servers send: several links per value and several values, commas
    and semicolons inside ``<...>`` and inside quoted parameters, escaped quotes,
    unquoted values, odd spacing and case.  A malformed link is skipped, never fatal.

    Args:
        values: one header value, or all of them (``response.headers.get_list("link")``).
    """
    texts = [values] if isinstance(values, str) else list(values)
    links: list[Link] = []
    for text in texts:
        at = 0
        # Bounded: every pass moves past at least one character.
        while at < len(text):
            at = _skip_spaces(text, at)
            if at >= len(text):
                break
            if text[at] == ",":
                at += 1
                continue
            if text[at] != "<":
                at = _skip_to_comma(text, at)
                continue
            end = text.find(">", at + 1)
            if end < 0:
                break  # an unterminated target: nothing after it can be trusted
            target = text[at + 1 : end].strip()
            params, at = _read_params(text, end + 1)
            rels = frozenset(params.get("rel", "").lower().split())
            links.append(Link(target, MappingProxyType(params), rels))
    return links


def find_link(
    values: str | Iterable[str], rel: str = "next", base: str | None = None
) -> str | None:
    """The target of the first link with relation ``rel``, made absolute against ``base``.

    Args:
        values: ``Link`` header value(s).
        rel: the relation type to look for (case-insensitive).
        base: the URL of the response the header came with; relative targets are
            resolved against it (RFC 8288 3.2).

    Returns:
        The URL, or None when no link has that relation.  A link whose ``anchor``
        names another resource (RFC 8288 3.2: the anchor is the link's context) is not
        this response's: "the next page of another collection" is skipped.  A target
        that cannot be resolved (``https://[::1/x``) is returned as it stands: skipped,
        it would end a walk with records missing; the walk refuses it by name.
    """
    wanted = rel.lower()
    for link in parse_link_header(values):
        if wanted in link.rels and not _anchored_elsewhere(link, base):
            return _resolved(link.target, base)
    return None


def _resolved(reference: str, base: str | None) -> str:
    """``reference`` made absolute against ``base``, or as it stands when either is
    not a URL urllib can read (it raises ValueError on an unclosed IPv6 bracket)."""
    if not base:
        return reference
    try:
        return urljoin(base, reference)
    except ValueError:
        return reference


def _anchored_elsewhere(link: Link, base: str | None) -> bool:
    """Whether the link's ``anchor`` names another resource than ``base``: another
    origin or path.  The query is not compared: an anchor naming the collection
    (``/issues``) for a page of it (``/issues?page=2``) is this walk's context; and
    URLs are compared as origins and decoded paths, since ``:443``, an upper-case host
    or another percent-encoding name the same resource (compared as text, they ended
    the walk with records missing).  An anchor that cannot be read names no resource:
    the link is kept (its target is still checked before it is followed)."""
    anchor = link.params.get("anchor")
    if anchor is None or base is None:
        return False
    try:
        target = urljoin(base, anchor)
        return origin_of(target) != origin_of(base) or _path_of(target) != _path_of(base)
    except ValueError:
        return False


def _path_of(url: str) -> str:
    return unquote(urlsplit(url).path).rstrip("/")


#: Ports a URL without one uses, by scheme: ``https://h`` and ``https://h:443`` are one
#: origin.
_DEFAULT_PORTS: Mapping[str, int] = MappingProxyType({"http": 80, "https": 443})


def origin_of(url: str) -> str | None:
    """The origin (RFC 6454) of an absolute ``url``: ``scheme://host:port``, lower-cased,
    the default port written out.  Two URLs share an origin when these are equal; no user
    information, path or query is kept, so the origin can be quoted in messages.

    Returns:
        None for a URL with no scheme or host, or an invalid port: an origin nothing
        shares.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not parts.scheme or not host:
        return None
    if not host.isascii():
        # As httpx sends it (IDNA): the collection's URL as written says
        # "bücher.example", the responses' "xn--bcher-kva.example", and every next
        # link, a relative one too, was refused as leading to another origin.
        try:
            host = httpx.URL(f"{parts.scheme}://{host}").raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError):
            return None
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme)
    shown = f"[{host}]" if ":" in host else host  # IPv6
    return f"{parts.scheme}://{shown}" + ("" if port is None else f":{port}")


# ------------------------------------------------------------------ pages and positions


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page, reduced to what pagination needs.

    Attributes:
        records: the page's records, in order.
        total: records in the whole collection, as this page reports it (None: not said).
        total_pages: pages in the whole collection, as this page reports it.
        next: the next page's cursor or URL (chain styles); None when there is none.
    """

    records: Sequence[Any]
    total: int | None = None
    total_pages: int | None = None
    next: str | None = None


def checked_page(page: object, where: str) -> Page:
    """``page``, as a ``_fetch`` (named by ``where``) returned it, if a walk can use it.

    The built-in ``_fetch`` makes pages through ``_page_from``, which checks them; an
    override may return anything.  Unchecked, ``Page(records=None)``, a total as a
    string or a dict failed with a bare TypeError or AttributeError deep in the walk
    (in a crawl, in its fetch task: the consumer was cancelled at once, the records
    before that page lost, and ``on_error="collect"`` never saw it).

    Raises:
        PaginationError: ``page`` is not a :class:`Page`, its records are not a
            sequence, or its ``total`` or ``total_pages`` is not a count (an integer >=
            0) or None; naming ``where`` and what is wrong.
    """
    if not isinstance(page, Page):
        raise PaginationError(f"{where} returned a {type(page).__name__}, expected a Page")
    records = page.records
    # As _page_from refuses them: a string is a sequence, of characters.
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
        raise PaginationError(
            f"{where} returned a Page whose records are a {type(records).__name__}, "
            "expected a sequence (a list)"
        )
    for name in ("total", "total_pages"):
        value = getattr(page, name)
        if value is not None and not is_count(value):
            raise PaginationError(
                f"{where} returned a Page whose {name} is {value!r}, expected a count "
                "(an integer >= 0) or None"
            )
    return page


@dataclass(frozen=True, slots=True)
class Position:
    """Where a walk stands, to resume it exactly with a new iterator.

    Attributes:
        page: the page to read next: an offset (offset style, then ``index`` is always
            0), a page number, a cursor or a URL (None: the first page of a cursor or
            link collection).
        index: records of that page already handed out.
        done: the walk reached the end of the data; a resumed iterator yields nothing.
        style: the style of the walk it is from (``"offset"``, ``"page"``, ``"cursor"``,
            ``"link"``): an iterator of another style refuses it, where an offset read
            as a page number resumed elsewhere, records repeated.  None (a position
            built by hand, or stored before it existed) is not checked.  Not compared:
            ``Position(10)`` equals an offset walk's ``Position(10, style="offset")``.

    Plain values only, so a position can be stored (``dataclasses.asdict``) and rebuilt.

    .. versionadded:: 0.1.0
    """

    page: Address = None
    index: int = 0
    done: bool = False
    style: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Request:
    """A page to fetch: its address, and how many of its records were handed out before."""

    address: Address
    skip: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a fetched page (see :func:`judge_page`).

    Attributes:
        start: index of the first record to hand out.
        stop: index after the last record to hand out.
        size: records the page holds (all of them belong to the walk: a page holding
            more than its total leaves room for is refused).
        end: the page is the end of the data.
        last: no page after this one is needed (end of data, or a limit reached).
    """

    start: int
    stop: int
    size: int
    end: bool
    last: bool


# ------------------------------------------------------------------ schemes


class Scheme:
    """How a pagination style addresses pages.

    Attributes:
        page_size: the records every page but the last holds, for the styles that
            address pages by number or offset; None for chains, where the server decides.
        addressable: any page's address is known without fetching the one before.
    """

    page_size: int | None = None
    addressable: bool = False
    #: The style its positions carry (see Position.style).
    style: str = ""

    def first_record(self, address: Address) -> int | None:
        """Index in the collection of the page's first record (None: not knowable)."""
        return None

    def address_at(self, start: Address, pages: int) -> Address:
        """The address ``pages`` pages after ``start`` (addressable styles only)."""
        raise TypeError(f"{type(self).__name__} pages are not addressable")

    def after(self, address: Address, page: Page) -> Address:
        """The address of the page after ``page`` (None: there is none)."""
        raise NotImplementedError

    def more(self, address: Address, page: Page) -> bool | None:
        """Whether the page says another follows: True, False, or None (not said)."""
        return None

    def position(self, address: Address, index: int, *, done: bool = False) -> Position:
        """The position of record ``index`` of the page at ``address``."""
        return Position(address, index, done, self.style)

    def check(self, position: Position) -> Request:
        """The request resuming at ``position``.

        Raises:
            PaginationError: the position does not belong to this style.
        """
        if isinstance(position.index, bool) or not isinstance(position.index, int):
            raise PaginationError(f"position index must be an integer, got {position.index!r}")
        if position.index < 0:
            raise PaginationError(f"position index must be >= 0, got {position.index}")
        if not isinstance(position.done, bool):
            # A stored position read back as text ("false" from Redis, a CSV, the
            # environment) is truthy: the walk resumed as finished, fetching nothing.
            raise PaginationError(
                f"position done must be True or False, got a {type(position.done).__name__}"
            )
        style = position.style
        if style is not None and style != self.style:
            shown = repr(style) if isinstance(style, str) else f"a {type(style).__name__}"
            raise PaginationError(
                f"this position is from a walk of style {shown}, not {self.style!r}: resume "
                "it with an iterator of its own style (an offset read as a page number, or "
                "a cursor as a link, resumes elsewhere)"
            )
        return Request(position.page, position.index)


def _int_address(position: Position, minimum: int, what: str) -> int:
    page = position.page
    if isinstance(page, bool) or not isinstance(page, int) or page < minimum:
        # A link's position holds a URL, which may carry a key: named by its kind only.
        shown = repr(page) if isinstance(page, int) else f"a {type(page).__name__}"
        raise PaginationError(f"this position needs {what} >= {minimum}, got {shown}")
    return page


@dataclass(frozen=True, slots=True)
class OffsetScheme(Scheme):
    """``?offset=N&limit=M``: a page's address is the index of its first record."""

    page_size: int
    addressable: bool = True
    style: str = "offset"

    def first_record(self, address: Address) -> int | None:
        assert isinstance(address, int)
        return address

    def address_at(self, start: Address, pages: int) -> Address:
        assert isinstance(start, int)
        return start + pages * self.page_size

    def after(self, address: Address, page: Page) -> Address:
        assert isinstance(address, int)
        return address + self.page_size

    def position(self, address: Address, index: int, *, done: bool = False) -> Position:
        # Any offset is addressable, so a position is just the next record's offset.
        assert isinstance(address, int)
        return Position(address + index, 0, done, self.style)

    def check(self, position: Position) -> Request:
        request = Scheme.check(self, position)
        return Request(_int_address(position, 0, "an offset") + request.skip, 0)


@dataclass(frozen=True, slots=True)
class PageNumberScheme(Scheme):
    """``?page=N&per_page=M``: pages numbered from ``first_page``."""

    page_size: int
    first_page: int = 1
    addressable: bool = True
    style: str = "page"

    def first_record(self, address: Address) -> int | None:
        assert isinstance(address, int)
        return (address - self.first_page) * self.page_size

    def address_at(self, start: Address, pages: int) -> Address:
        assert isinstance(start, int)
        return start + pages

    def after(self, address: Address, page: Page) -> Address:
        assert isinstance(address, int)
        return address + 1

    def more(self, address: Address, page: Page) -> bool | None:
        if page.total_pages is None:
            return None
        assert isinstance(address, int)
        return address - self.first_page + 1 < page.total_pages

    def check(self, position: Position) -> Request:
        request = Scheme.check(self, position)
        if request.skip > self.page_size:
            # Past the page: the records between its end and the index were skipped.
            raise PaginationError(
                f"position index {request.skip} is past the end of a page of "
                f"{self.page_size} records (a position of a walk with another limit?)"
            )
        return Request(_int_address(position, self.first_page, "a page number"), request.skip)


@dataclass(frozen=True, slots=True)
class ChainScheme(Scheme):
    """Cursor and next-link styles: each page names the next one."""

    style: str = "cursor"  # or "link"

    def after(self, address: Address, page: Page) -> Address:
        return page.next

    def more(self, address: Address, page: Page) -> bool | None:
        return page.next is not None

    def check(self, position: Position) -> Request:
        request = Scheme.check(self, position)
        if position.page is not None and not isinstance(position.page, str):
            # Only the kind: a non-str page may still hold a URL with a key in it.
            raise PaginationError(
                f"this position needs a cursor or URL, got a {type(position.page).__name__}"
            )
        return request


# ------------------------------------------------------------------ judging a page


def judge_page(
    size: int,
    *,
    skip: int,
    page_size: int | None,
    room: int | None,
    more: bool | None,
    items_left: int | None,
    pages_left: int | None,
) -> Verdict:
    """Which records of a fetched page to hand out, and whether it is the last page.

    Args:
        size: records the page holds.
        skip: records at its start handed out before (a resumed walk).
        page_size: records asked for (offset and page-number styles), or None.
        room: records the collection's total leaves from the page's first record on
            (``total - first_record``), or None when either is unknown.
        more: whether the page says another follows (next cursor/link, page count).
        items_left: records still allowed by ``max_items`` (None: unlimited).
        pages_left: pages still allowed by ``max_pages``, this one included.

    The end of the data is a page saying nothing follows, a page reaching the total, or
    (total unknown) a page shorter than asked for, or an empty one -- unless it says
    another follows: a chain's empty page naming a next page is not the end (Slack's and
    Google's APIs send them mid-collection, and ending there lost the records after it).

    Raises:
        PaginationError: the server sent more records than asked for, or than its
            total leaves room for, or fewer (none included) while saying more follow:
            the next page's offset or number would then skip or repeat records, or the
            walk would end short or drop records, so it cannot be exact.
    """
    if page_size is not None and size > page_size:
        raise PaginationError(
            f"the server sent {size} records for a page of {page_size}: it ignores the "
            "page size, so offsets would repeat records; set limit to what it sends"
        )
    if room is not None and size > max(room, 0):
        # Cut at the total, the records past it were dropped and the walk ended "done":
        # a collection that grew after the one page that reported its total lost its
        # new records, silently and for good (a resume would not fetch them either).
        raise PaginationError(
            f"the server sent {size} records on a page where its total leaves room for "
            f"{max(room, 0)}: the total is stale (reported on an earlier page, and the "
            "collection grew) or wrong; stopping rather than dropping records (set "
            "total_key=None to walk to a short or empty page instead)"
        )
    short = page_size is not None and size < page_size
    says_more = more is True or (room is not None and room > size)
    # An empty page is a short one: a total saying more would otherwise end the walk
    # with records missing.  A page reporting a smaller total of its own says no more.
    if short and size == 0 and says_more:
        raise PaginationError(
            f"the server sent an empty page for a page of {page_size} but says more "
            "follow (its total or page count): the collection changed under the walk, or "
            "the total is wrong; stopping rather than ending with records missing"
        )
    if short and says_more:
        raise PaginationError(
            f"the server sent {size} records for a page of {page_size} but says more "
            "follow: it caps the page size below limit (set limit to its maximum), or the "
            "collection changed under the walk; stopping rather than skipping records"
        )
    if page_size is not None and more is False and room is not None and room > size:
        # Page numbers with both counts: a page count that says this is the last page
        # while the total says more records follow ended the walk with them missing.
        raise PaginationError(
            f"the server's page count says this is the last page, but its total says "
            f"{room - size} more records follow: one of them is wrong, or the collection "
            "changed under the walk; stopping rather than ending with records missing"
        )
    start = min(skip, size)
    stop = size if items_left is None else min(size, start + max(items_left, 0))
    end = (size == 0 and more is not True) or more is False or short
    end = end or (room is not None and room <= size)
    limited = (items_left is not None and stop - start >= items_left) or (
        pages_left is not None and pages_left <= 1
    )
    return Verdict(start=start, stop=stop, size=size, end=end, last=end or limited)


# ------------------------------------------------------------------ planning


def pages_for(records: int, page_size: int, skip: int = 0) -> int:
    """Pages of ``page_size`` holding ``records`` records after ``skip`` on the first."""
    if records <= 0:
        return 0
    # Whole numbers throughout: a float quotient overflows past 1e308 (a total the
    # server sends, a user's max_items) and rounds off past 2**53.
    return -(-(records + skip) // page_size)


def last_page_index(
    *,
    page_size: int | None,
    skip: int = 0,
    items_left: int | None = None,
    pages_left: int | None = None,
    room: int | None = None,
) -> int | None:
    """The last page (0 for the first) a walk may need, counted from where it starts.

    Args:
        page_size: records per page, or None when the server decides (then only
            ``pages_left`` bounds the walk).
        skip: records of the first page handed out before.
        items_left: records still allowed by ``max_items``.
        pages_left: pages still allowed by ``max_pages``.
        room: records the total leaves from the first page's first record on.

    Returns:
        The index, -1 when no page is needed, None when nothing bounds the walk.
    """
    bounds: list[int] = []
    if pages_left is not None:
        bounds.append(pages_left - 1)
    if page_size is not None:
        if items_left is not None:
            bounds.append(pages_for(items_left, page_size, skip) - 1)
        if room is not None:
            bounds.append(pages_for(room - skip, page_size, skip) - 1)
    return min(bounds) if bounds else None


def may_request(
    index: int,
    *,
    handed: int,
    prefetch: int,
    needed: int,
    limit_last: int | None,
    stop_at: int | None,
    speculate_last: int | None,
) -> bool:
    """Whether page ``index`` (counted from the walk's start) may be requested now.

    Args:
        index: the page.
        handed: the last page handed to the consumer (-1: none yet).
        prefetch: pages that may be in flight or waiting ahead of the consumer.
        needed: the page the consumer is known to need next.
        limit_last: the last page ``max_items``/``max_pages`` allow (None: unbounded).
        stop_at: a fetched page already known to end the walk (None: none yet).
        speculate_last: the last page worth fetching before it is needed (from the
            known total); None: unbounded.

    Never more than ``prefetch`` pages ahead of the consumer, never past a limit or a
    known end; within that, pages the consumer needs, and pages the total says exist.
    """
    if limit_last is not None and index > limit_last:
        return False
    if stop_at is not None and index > stop_at:
        return False
    if index > handed + prefetch:
        return False
    return index <= needed or speculate_last is None or index <= speculate_last


def known_last_page(
    scheme: Scheme, start: Request, *, total: int | None, total_pages: int | None
) -> int | None:
    """The last page, counted from ``start``, that the reported totals say holds records.

    Args:
        scheme: the style's addressing (only addressable styles have such a page).
        start: the walk's first page.
        total: the collection's record count, if reported.
        total_pages: its page count, if reported (page-number style).

    Returns:
        The index (-1: none), or None when the totals say nothing about it.
    """
    bounds: list[int] = []
    first = scheme.first_record(start.address)
    if total is not None and first is not None and scheme.page_size is not None:
        bounds.append(pages_for(total - first - start.skip, scheme.page_size, start.skip) - 1)
    if total_pages is not None and isinstance(scheme, PageNumberScheme):
        assert isinstance(start.address, int)
        bounds.append(total_pages - (start.address - scheme.first_page) - 1)
    # A start past the last page is "none" (-1), as the total's bound says it.
    return max(-1, min(bounds)) if bounds else None
