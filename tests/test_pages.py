"""Pure page planning (trestfly._pages): key paths, Link headers, judging, arithmetic.

No I/O and no Trio: every function takes plain values.  Hypothesis checks the planning
arithmetic against a straightforward simulation of a walk over full pages.
"""

from __future__ import annotations

import dataclasses

import pytest
from box import Box
from hypothesis import given, settings
from hypothesis import strategies as st

from trestfly._pages import (
    ChainScheme,
    OffsetScheme,
    Page,
    PageNumberScheme,
    PaginationError,
    Position,
    Request,
    as_count,
    extract,
    find_link,
    judge_page,
    key_path,
    known_last_page,
    last_page_index,
    may_request,
    origin_of,
    pages_for,
    parse_link_header,
)

# ------------------------------------------------------------------ key paths


def test_key_paths_split_on_dots_and_accept_tuples() -> None:
    assert key_path("pagination.total") == ("pagination", "total")
    assert key_path(("meta", "next.cursor")) == ("meta", "next.cursor")
    assert key_path(None) == key_path("") == ()


def test_extract_walks_dicts_and_list_indices() -> None:
    page = {"data": [{"id": 1}], "meta": {"total": 5, "next.cursor": "x"}, "rows": [[7, 8]]}
    assert extract(page, "data") == [{"id": 1}]
    assert extract(page, "meta.total") == 5
    assert extract(page, ("meta", "next.cursor")) == "x"
    assert extract(page, "rows.0.1") == 8
    assert extract(page, None) is page
    assert extract(page, "meta.missing", None) is None
    assert extract(page, "rows.5", "d") == "d"


def test_extract_names_the_missing_key() -> None:
    with pytest.raises(PaginationError, match=r"no key 'totl' in meta"):
        extract({"meta": {"total": 1}}, "meta.totl")
    with pytest.raises(PaginationError, match="in the page"):
        extract([], "items")
    with pytest.raises(PaginationError, match="no key '\u00b2'"):
        extract([1, 2, 3], "\u00b2")  # a digit to str.isdigit, not an index


def test_extract_takes_an_index_of_any_length_for_a_missing_key() -> None:
    # int() of 4,300 digits or more raised a bare ValueError, default or not.
    page = {"rows": [7, 8]}
    assert extract(page, ("rows", "9" * 5000), None) is None
    with pytest.raises(PaginationError, match="no key"):
        extract(page, ("rows", "9" * 5000))
    assert extract(page, "rows.01") == 8  # leading zeros are still an index
    assert extract(page, ("rows", "0" * 5000 + "1")) == 8
    assert extract(page, ("rows", "0" * 5000 + "9"), None) is None


def test_a_start_past_the_last_page_has_no_last_page_index() -> None:
    scheme = PageNumberScheme(10, 1)
    assert known_last_page(scheme, Request(5), total=None, total_pages=2) == -1
    assert known_last_page(scheme, Request(2), total=None, total_pages=2) == 0


def test_extract_reads_box_keys_not_attributes() -> None:
    # Box.items is the dict method: a key path must reach the "items" key.
    page = Box({"items": [{"id": 1}], "values": 3})
    assert extract(page, "items") == [{"id": 1}]
    assert extract(page, "values") == 3


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (12, 12), ("34", 34), (5.0, 5), (None, None)]
)
def test_counts_accept_integers_and_digit_strings(value: object, expected: int | None) -> None:
    assert as_count(value, "total") == expected


# "²" is a digit to str.isdigit but not to int().
# "9" * 5000 is past Python's limit on digits int() converts.
@pytest.mark.parametrize(
    "value",
    [
        True,
        -1,
        "12a",
        2.5,
        [],
        {},
        "\u00b2",
        float("inf"),
        pytest.param("9" * 5000, id="5000-digits"),
    ],
)
def test_counts_reject_anything_else(value: object) -> None:
    with pytest.raises(PaginationError, match="total must be a count"):
        as_count(value, "total")


# ------------------------------------------------------------------ Link headers

GITHUB = (
    '<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", '
    '<https://api.github.com/repositories/1300192/issues?page=4>; rel="next", '
    '<https://api.github.com/repositories/1300192/issues?page=515>; rel="last", '
    '<https://api.github.com/repositories/1300192/issues?page=1>; rel="first"'
)


def test_github_link_header() -> None:
    links = parse_link_header(GITHUB)
    assert [sorted(link.rels) for link in links] == [["prev"], ["next"], ["last"], ["first"]]
    assert find_link(GITHUB) == "https://api.github.com/repositories/1300192/issues?page=4"
    assert (
        find_link(GITHUB, "LAST") == "https://api.github.com/repositories/1300192/issues?page=515"
    )


def test_links_with_commas_semicolons_quotes_and_odd_spacing() -> None:
    header = (
        '</a?x=1,2;3>;rel=next;title="one, two; three",'
        '  < /b >  ;  REL = "Prev  Last" ; title="say \\"hi\\"" ; rel="ignored", '
        "<c>; title*=UTF-8'de'n%c3%a4chstes"
    )
    first, second, third = parse_link_header(header)
    assert (first.target, first.rels) == ("/a?x=1,2;3", frozenset({"next"}))
    assert first.params["title"] == "one, two; three"
    assert (second.target, second.rels) == ("/b", frozenset({"prev", "last"}))
    assert second.params["title"] == 'say "hi"'
    assert second.params["rel"] == "Prev  Last"  # a repeated parameter: the first counts
    assert third.params["title*"] == "UTF-8'de'n%c3%a4chstes" and not third.rels


def test_several_header_values_and_relative_targets() -> None:
    values = ['<https://x.test/p?page=1>; rel="prev"', '</items?page=3>; rel="next"']
    assert find_link(values, base="https://x.test/items?page=2") == "https://x.test/items?page=3"
    assert find_link(values) == "/items?page=3"  # no base: as sent


def test_a_link_anchored_on_another_resource_is_not_this_pages_next() -> None:
    # RFC 8288 3.2: the anchor is the link's context.  The walk followed "the next page
    # of another collection".
    base = "https://x.test/issues?page=1"
    other = '<https://x.test/issues?page=99>; rel="next"; anchor="https://x.test/other"'
    own = '</issues?page=2>; rel="next"; anchor="/issues?page=1#list"'
    assert find_link([other], base=base) is None
    assert find_link([other, own], base=base) == "https://x.test/issues?page=2"
    assert find_link([other]) == "https://x.test/issues?page=99"  # no base: cannot tell
    # The same resource spelled otherwise, or the collection itself, is this page's
    # context: compared as text, these ended the walk with records missing.
    for same in (
        "https://x.test:443/issues?page=1",
        "https://X.TEST/issues?page=1",
        "https://x.test/%69ssues?page=1",
        "https://x.test/issues",
    ):
        spelled = f'</issues?page=2>; rel="next"; anchor="{same}"'
        assert find_link([spelled], base=base) == "https://x.test/issues?page=2", same


@pytest.mark.parametrize(
    "header",
    ["", " , ,", "garbage", '<https://x.test/unterminated; rel="next"', 'nope; rel="next"'],
)
def test_malformed_link_headers_yield_no_next(header: str) -> None:
    assert find_link(header) is None


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://API.Example.com/a?page=2", "https://api.example.com:443"),
        ("https://api.example.com:443/b", "https://api.example.com:443"),
        ("http://user:S3CRET@h:8080/x?api_key=S3CRET", "http://h:8080"),
        ("http://[::1]:99/", "http://[::1]:99"),
        ("HTTP://H", "http://h:80"),
        ("ftp://h/f", "ftp://h"),
        ("/relative?page=2", None),
        ("https://h:99999/", None),
        ("https://h:port/", None),
        # An international name, as httpx sends it: responses name it so.
        ("https://Bücher.example/items", "https://xn--bcher-kva.example:443"),
        ("https://xn--bcher-kva.example/items?page=2", "https://xn--bcher-kva.example:443"),
    ],
)
def test_origin_of_is_scheme_host_and_port_only(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_origins_tell_other_hosts_ports_and_schemes_apart() -> None:
    home = origin_of("https://api.example.com/items")
    assert origin_of("https://api.example.com:443/items?page=2") == home
    for other in (
        "https://evil.example.net/items",
        "https://api.example.com:8443/items",
        "http://api.example.com/items",  # a downgrade: the key in clear text
        "https://api.example.com.evil.net/items",
    ):
        assert origin_of(other) != home


def test_a_malformed_link_does_not_hide_the_next_one() -> None:
    header = 'junk; rel="next", <https://x.test/2>; rel="next"'
    assert find_link(header) == "https://x.test/2"


_targets = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="<>\r\n"), min_size=1, max_size=30
).filter(lambda text: text.strip() == text)
_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
_quoted = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_targets, st.lists(_tokens, min_size=1, max_size=3), _quoted), max_size=5)
)
def test_formatted_links_parse_back(links: list[tuple[str, list[str], str]]) -> None:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = ", ".join(
        f"<{target}>; rel={quote(' '.join(rels))}; title={quote(title)}"
        for target, rels, title in links
    )
    parsed = parse_link_header(header)
    assert [(link.target, link.rels, link.params["title"]) for link in parsed] == [
        (target, frozenset(rels), title) for target, rels, title in links
    ]


# ------------------------------------------------------------------ schemes


def test_offset_positions_are_record_offsets() -> None:
    scheme = OffsetScheme(100)
    assert scheme.position(200, 37) == Position(237, 0)
    assert scheme.check(Position(200, 37)) == Request(237, 0)
    assert scheme.address_at(237, 2) == 437
    assert scheme.first_record(437) == 437


def test_page_number_positions_keep_the_index_in_the_page() -> None:
    scheme = PageNumberScheme(50, first_page=1)
    assert scheme.first_record(3) == 100
    assert scheme.check(Position(3, 20)) == Request(3, 20)
    assert scheme.check(Position(3, 50)) == Request(3, 50)  # the whole page handed out
    assert scheme.more(2, Page([], total_pages=3)) is True
    assert scheme.more(3, Page([], total_pages=3)) is False
    assert scheme.more(3, Page([])) is None


@pytest.mark.parametrize(
    ("scheme", "position"),
    [
        (OffsetScheme(10), Position("abc")),
        (OffsetScheme(10), Position(-1)),
        (PageNumberScheme(10, 1), Position(0)),
        (PageNumberScheme(10, 1), Position(True)),
        (ChainScheme(), Position(5)),
        (ChainScheme(), Position("c", -1)),
        # Past the end of a page of 10: the records between were skipped.
        (PageNumberScheme(10, 1), Position(1, 11)),
    ],
)
def test_a_position_of_another_style_is_refused(
    scheme: OffsetScheme | PageNumberScheme | ChainScheme, position: Position
) -> None:
    with pytest.raises(PaginationError):
        scheme.check(position)


def test_a_link_position_given_to_a_numbered_style_is_not_quoted() -> None:
    # A next link echoes the caller's key; the error names what the position holds.
    with pytest.raises(PaginationError) as raised:
        OffsetScheme(10).check(Position("https://h/items?api_key=S3CRET&page=2"))
    assert "S3CRET" not in str(raised.value)
    assert "got a str" in str(raised.value)
    with pytest.raises(PaginationError) as raised:
        ChainScheme().check(Position({"next": "https://h/items?api_key=S3CRET"}))  # type: ignore[arg-type]
    assert "S3CRET" not in str(raised.value) and "got a dict" in str(raised.value)


def test_positions_are_plain_data() -> None:
    position = Position("cursor-token", 42)
    assert Position(**dataclasses.asdict(position)) == position


# ------------------------------------------------------------------ judging a page


def judge(size: int, **overrides: object) -> tuple[int, int, bool, bool]:
    arguments: dict[str, object] = {
        "skip": 0,
        "page_size": 10,
        "room": None,
        "more": None,
        "items_left": None,
        "pages_left": None,
    }
    arguments.update(overrides)
    verdict = judge_page(size, **arguments)  # type: ignore[arg-type]
    return verdict.start, verdict.stop, verdict.end, verdict.last


def test_full_and_short_pages_without_a_total() -> None:
    assert judge(10) == (0, 10, False, False)
    assert judge(4) == (0, 4, True, True)  # short: the end
    assert judge(0) == (0, 0, True, True)


def test_the_total_ends_the_walk_and_cuts_the_page() -> None:
    assert judge(10, room=25) == (0, 10, False, False)
    assert judge(10, room=10) == (0, 10, True, True)  # exactly at a page boundary
    assert judge(0, room=0) == (0, 0, True, True)  # the data ended at the total
    assert judge(0, room=-20) == (0, 0, True, True)  # ... the page's own, smaller total


@pytest.mark.parametrize(("size", "room"), [(10, 4), (10, 0), (3, -20), (1, 0)])
def test_a_page_holding_more_than_the_total_leaves_room_for_is_refused(
    size: int, room: int
) -> None:
    # Cut at the total, the records past it were dropped and the walk ended done: a
    # collection grown since the one page that reported its total lost its new records.
    with pytest.raises(PaginationError, match=f"sent {size} records on a page where its total"):
        judge(size, room=room)


def test_limits_cut_the_page_and_end_the_walk_without_ending_the_data() -> None:
    assert judge(10, items_left=3) == (0, 3, False, True)
    assert judge(10, items_left=10) == (0, 10, False, True)
    assert judge(10, pages_left=1) == (0, 10, False, True)
    assert judge(10, pages_left=2, items_left=11) == (0, 10, False, False)


def test_a_resumed_page_skips_what_was_handed_out() -> None:
    assert judge(10, skip=7) == (7, 10, False, False)
    assert judge(10, skip=7, items_left=2) == (7, 9, False, True)
    assert judge(5, skip=7) == (5, 5, True, True)


def test_chains_end_on_no_next_or_an_empty_page_naming_none() -> None:
    assert judge(3, page_size=None, more=True) == (0, 3, False, False)
    assert judge(3, page_size=None, more=False) == (0, 3, True, True)
    assert judge(0, page_size=None, more=False) == (0, 0, True, True)
    assert judge(0, page_size=None) == (0, 0, True, True)


def test_a_chains_empty_page_naming_a_next_page_is_not_the_end() -> None:
    # Slack and Google APIs send empty pages mid-collection, with a next cursor: ending
    # there dropped every record after it without a word.
    assert judge(0, page_size=None, more=True) == (0, 0, False, False)
    assert judge(0, page_size=None, more=True, pages_left=1) == (0, 0, False, True)
    # Unless the total says the walk is at its end.
    assert judge(0, page_size=None, more=True, room=0) == (0, 0, True, True)


def test_pages_that_would_skip_or_repeat_records_raise() -> None:
    with pytest.raises(PaginationError, match="ignores the page size"):
        judge(11)
    with pytest.raises(PaginationError, match="caps the page size"):
        judge(4, room=100)
    with pytest.raises(PaginationError, match="caps the page size"):
        judge(4, more=True)


@pytest.mark.parametrize("says_more", [{"room": 10}, {"more": True}])
def test_an_empty_page_while_the_total_says_more_raises(says_more: dict[str, object]) -> None:
    # An empty page is a short one: ending there would lose the records the total
    # (or the page count) still promises, without a word.
    with pytest.raises(PaginationError, match=r"empty page .* says more follow"):
        judge(0, **says_more)
    with pytest.raises(PaginationError, match="empty page"):
        judge(0, skip=3, **says_more)  # a resumed page
    # Chains: the server decides, by its next cursor or link (it may send empty pages
    # mid-collection) or by its total.
    assert judge(0, page_size=None, **says_more)[2] == ("room" in says_more)


def test_a_page_count_that_ends_the_walk_short_of_the_total_raises() -> None:
    # Both counts sent, and they disagree: the page count said "last page" at 200 of 250
    # records, and the walk ended with 50 missing and no error.
    with pytest.raises(PaginationError, match="total says 50 more records follow"):
        judge(10, page_size=10, room=60, more=False)
    assert judge(10, page_size=10, room=10, more=False)[2]  # they agree: the end
    assert judge(10, page_size=None, room=60, more=False)[2]  # a chain: its link decides


# ------------------------------------------------------------------ planning


@given(st.integers(0, 10_000), st.integers(1, 500), st.integers(0, 499))
def test_pages_for_covers_the_records_with_no_spare_page(
    records: int, size: int, skip: int
) -> None:
    skip %= size
    pages = pages_for(records, size, skip)
    if records == 0:
        assert pages == 0
    else:
        assert pages * size >= records + skip > (pages - 1) * size


def test_pages_for_counts_in_whole_numbers_past_float_range() -> None:
    # A float quotient overflowed past 1e308 (a server's total, a user's max_items)
    # and rounded off past 2**53.
    assert pages_for(10**400, 2) == 5 * 10**399
    assert pages_for(2**60 + 1, 1) == 2**60 + 1
    assert pages_for(2**60 + 1, 2**60) == 2


def test_last_page_index_of_nothing_is_minus_one_and_of_no_bound_none() -> None:
    assert last_page_index(page_size=10, items_left=0) == -1
    assert last_page_index(page_size=10, pages_left=0) == -1
    assert last_page_index(page_size=10) is None
    assert last_page_index(page_size=None, items_left=5) is None  # chains: pages unknown
    assert last_page_index(page_size=None, items_left=5, pages_left=3) == 2


@settings(max_examples=500, deadline=None)
@given(
    size=st.integers(0, 600),
    page_size=st.integers(1, 50),
    start=st.integers(0, 700),
    skip=st.integers(0, 60),
    max_items=st.none() | st.integers(0, 700),
    max_pages=st.none() | st.integers(0, 30),
    total_known=st.booleans(),
)
def test_the_plan_and_the_judge_agree_on_the_last_page(
    size: int,
    page_size: int,
    start: int,
    skip: int,
    max_items: int | None,
    max_pages: int | None,
    total_known: bool,
) -> None:
    """Walk a collection of ``size`` records by page numbers from page ``start``.

    The judge decides page by page; the plan decides up front.  Pages the judge walks
    must never lie past what the plan allows, the plan must not stop the walk early, and
    the records handed out must be exactly the ones expected.
    """
    scheme = PageNumberScheme(page_size, first_page=0)
    skip = min(skip, page_size - 1)
    first = Request(start, skip)
    total = size if total_known else None
    limit_last = last_page_index(
        page_size=page_size, skip=skip, items_left=max_items, pages_left=max_pages
    )
    known_last = known_last_page(scheme, first, total=total, total_pages=None)
    handed: list[int] = []
    index = 0
    for index in range(1000):  # bounded: far more pages than any example has
        if (max_items == 0) or (max_pages == 0):
            break
        address = scheme.address_at(start, index)
        first_record = scheme.first_record(address)
        assert first_record is not None
        records = list(range(first_record, min(first_record + page_size, size)))
        verdict = judge_page(
            len(records),
            skip=skip if index == 0 else 0,
            page_size=page_size,
            room=None if total is None else total - first_record,
            more=None,
            items_left=None if max_items is None else max_items - len(handed),
            pages_left=None if max_pages is None else max_pages - index,
        )
        assert limit_last is None or index <= limit_last
        if known_last is not None and not verdict.end:
            assert index < known_last or verdict.last
        handed.extend(records[verdict.start : verdict.stop])
        if verdict.last:
            break
    expected = list(range(start * page_size + skip, size))
    if max_pages is not None:
        expected = expected[: max(0, max_pages * page_size - skip)]
    if max_items is not None:
        expected = expected[:max_items]
    assert handed == expected


@settings(max_examples=300)
@given(
    index=st.integers(0, 60),
    handed=st.integers(-1, 40),
    prefetch=st.integers(1, 10),
    needed=st.integers(-1, 41),
    limit_last=st.none() | st.integers(-1, 60),
    stop_at=st.none() | st.integers(0, 60),
    speculate_last=st.none() | st.integers(-1, 60),
)
def test_may_request_never_leaves_the_window(
    index: int,
    handed: int,
    prefetch: int,
    needed: int,
    limit_last: int | None,
    stop_at: int | None,
    speculate_last: int | None,
) -> None:
    needed = min(needed, handed + 1)  # the consumer needs at most the page after its own
    allowed = may_request(
        index,
        handed=handed,
        prefetch=prefetch,
        needed=needed,
        limit_last=limit_last,
        stop_at=stop_at,
        speculate_last=speculate_last,
    )
    within_bounds = (
        index <= handed + prefetch
        and (limit_last is None or index <= limit_last)
        and (stop_at is None or index <= stop_at)
    )
    if allowed:
        assert within_bounds
        assert index <= needed or speculate_last is None or index <= speculate_last
    if within_bounds and index <= needed:
        assert allowed  # a page the consumer needs is never held back
