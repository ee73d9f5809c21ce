"""Type-checked, never run: a paginator's records are typed by its type parameter.

CI runs ``mypy --strict tests/typing``.  ``assert_type`` fails the check when a record's
type is not the one named; the ``# type: ignore[...]`` lines must stay errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict, assert_type

from trestfly import (
    CursorIterator,
    LinkIterator,
    OffsetIterator,
    PagedIterator,
    PageNumberIterator,
    TrioAPISession,
    crawl_many,
)


class User(TypedDict):
    id: int
    name: str


@dataclass(frozen=True)
class Ticket:
    number: int


class Users(OffsetIterator[User]):
    path = "users"


class Tickets(CursorIterator[Ticket]):
    path = "tickets"

    def _record(self, record: Any) -> Ticket:
        return Ticket(record["number"])


class Issues(LinkIterator[User]):
    path = "issues"


class Pages(PageNumberIterator[User]):
    path = "pages"


class Untyped(OffsetIterator):  # an SDK as it was: records of Any, no error under --strict
    path = "things"


def any_walk(walk: PagedIterator) -> PagedIterator:  # bare, as before
    return walk


async def walks(api: TrioAPISession) -> None:
    async for user in Users(api):
        assert_type(user, User)
        user["nickname"]  # type: ignore[typeddict-item]
    async for ticket in Tickets(api):
        assert_type(ticket, Ticket)
    async for issue in Issues(api):
        assert_type(issue, User)
    async for page_user in Pages(api):
        assert_type(page_user, User)
    async for thing in Untyped(api):
        assert_type(thing, Any)
    async with Tickets(api).crawl(prefetch=2) as records:
        async for crawled in records:
            assert_type(crawled, Ticket)
    async with crawl_many({"users": Users(api)}) as merged:
        async for key, merged_record in merged:
            assert_type(key, str)
            assert_type(merged_record, Any)  # records of several iterators: Any
    first: Ticket = await anext(Tickets(api))
    wrong: str = await anext(Tickets(api))  # type: ignore[arg-type]
    del first, wrong
