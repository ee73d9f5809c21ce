"""A paginated collection served in every pagination style, with deterministic faults.

Records are ``{"id": i}`` for ``i`` in ``0..size-1``; a client that walked the
collection exactly gets the ids in order, each once.  :meth:`PagedCollection.install`
scripts four routes on a :class:`~servers.ScriptedApp` (handlers, no server changes):

========== ================================ ==============================================
route      query                            body
========== ================================ ==============================================
/offset    ``offset``, ``limit``            ``{"items": [...], "total": N}``
/pages     ``page`` (from 1), ``per_page``  ``{"data": [...], "meta": {"total": N,
                                            "total_pages": P}}``
/cursor    ``cursor`` (opaque), ``limit``   ``{"results": [...], "meta":
                                            {"next_cursor": C or null}}``
/link      ``page`` (from 1), ``per_page``  ``[...]`` with a GitHub-style ``Link`` header
========== ================================ ==============================================

Faults (:class:`Faults`) hit every k-th request to the collection, counted over all
routes, so a run is reproducible for a given request order; which fault (429 with
``Retry-After``, 503, connection reset) is drawn from a seeded RNG.  Every request is
recorded in :attr:`PagedCollection.served` with the index of the first record it asked
for, and ``on_request`` lets a test look at each one as it arrives (same Trio run).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .script import Action, RecordedRequest, ScriptedApp, reset, respond, stall

__all__ = ["ROUTES", "Faults", "PagedCollection", "Served"]

ROUTES = ("/offset", "/pages", "/cursor", "/link")
#: The page size the server uses when the client does not ask for one.
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class Faults:
    """Which requests fail, and how.

    Attributes:
        every: the k-th, 2k-th, ... request gets a fault (0: never).
        kinds: the faults drawn from: ``"429"`` (with ``Retry-After``), ``"503"``
            (without), ``"reset"`` (TCP RST, no answer).
        seed: seeds the draw.
        retry_after: seconds announced by the 429s (fractions keep tests fast).
        slow_every: the k-th, 2k-th, ... request is answered after ``slow_seconds``.
        slow_seconds: the delay of slow pages.
    """

    every: int = 0
    kinds: Sequence[str] = ("429", "503", "reset")
    seed: int = 0
    retry_after: float = 0.01
    slow_every: int = 0
    slow_seconds: float = 0.02


@dataclass(frozen=True)
class Served:
    """One request to the collection: the route, the first record asked for, the fault."""

    route: str
    start: int
    size: int
    fault: str | None


@dataclass
class PagedCollection:
    """The collection, its routes and its log; ``size`` may change between requests.

    Attributes:
        size: records in the collection now (ids ``0..size-1``).
        faults: the faults to inject.
        max_page_size: the most records a page holds, whatever the client asks.
        resize_at: ``{n: size}``: after serving the n-th request, the collection has
            ``size`` records (it grew or shrank under the client).
        on_request: called with each :class:`Served` as the request arrives.
    """

    size: int = 10_000
    faults: Faults = field(default_factory=Faults)
    max_page_size: int = 1_000
    resize_at: dict[int, int] = field(default_factory=dict)
    on_request: Callable[[Served], None] | None = None
    served: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.faults.seed)
        self._requests = 0
        self._prefix = ""

    def install(self, app: ScriptedApp, prefix: str = "") -> None:
        """Script the four routes on ``app``, under ``prefix`` (``"/a"``: ``/a/offset``)."""
        self._prefix = prefix
        app.script(f"{prefix}/offset", self._offset)
        app.script(f"{prefix}/pages", self._pages)
        app.script(f"{prefix}/cursor", self._cursor)
        app.script(f"{prefix}/link", self._link)

    def ids(self, start: int = 0, stop: int | None = None) -> list[int]:
        """The ids a walk of records ``start..stop`` should yield, in order."""
        return list(range(start, self.size if stop is None else min(stop, self.size)))

    # ------------------------------------------------------------- the styles

    def _offset(self, request: RecordedRequest) -> Action:
        start = _int(request, "offset", 0)
        size = _int(request, "limit", DEFAULT_PAGE_SIZE)
        return self._serve(
            "/offset",
            start,
            size,
            lambda records: {
                "items": records,
                "total": self.size,
            },
        )

    def _pages(self, request: RecordedRequest) -> Action:
        size = _int(request, "per_page", DEFAULT_PAGE_SIZE)
        page = _int(request, "page", 1)
        return self._serve(
            "/pages",
            (page - 1) * size,
            size,
            lambda records: {
                "data": records,
                "meta": {
                    "total": self.size,
                    "total_pages": -(-self.size // min(size, self.max_page_size)),
                },
            },
        )

    def _cursor(self, request: RecordedRequest) -> Action:
        cursor = request.params.get("cursor", [None])[0]
        start = 0 if cursor is None else _decode_cursor(cursor)
        size = _int(request, "limit", DEFAULT_PAGE_SIZE)

        def body(records: list[dict[str, int]]) -> Any:
            stop = start + len(records)
            following = _encode_cursor(stop) if records and stop < self.size else None
            return {"results": records, "meta": {"next_cursor": following}}

        return self._serve("/cursor", start, size, body)

    def _link(self, request: RecordedRequest) -> Action:
        size = _int(request, "per_page", DEFAULT_PAGE_SIZE)
        page = _int(request, "page", 1)
        start = (page - 1) * size
        base = f"http://{request.header('host')}{self._prefix}/link"
        last = max(1, -(-self.size // size))

        def links() -> str:
            def url(number: int) -> str:
                return f"{base}?per_page={size}&page={number}"

            # GitHub's shape, plus a quoted parameter holding a comma and a semicolon
            # to exercise the client's parser.
            parts = [
                f'<{url(1)}>; rel="first"',
                f'<{url(last)}>; title="end, really; yes"; rel="last"',
            ]
            if page > 1:
                parts.insert(0, f'<{url(page - 1)}>; rel="prev"')
            if page < last and start + size < self.size:
                parts.insert(0, f'<{url(page + 1)}>; rel="next"')
            return ", ".join(parts)

        return self._serve("/link", start, size, lambda records: records, headers=links)

    # ------------------------------------------------------------- common

    def _serve(
        self,
        route: str,
        start: int,
        size: int,
        body: Callable[[list[dict[str, int]]], Any],
        headers: Callable[[], str] | None = None,
    ) -> Action:
        self._requests += 1
        number = self._requests
        fault = self._fault(number)
        served = Served(route, start, size, fault)
        self.served.append(served)
        if self.on_request is not None:
            self.on_request(served)
        if fault == "429":
            action: Action = respond(
                429, json={"error": "slow down"}, retry_after=self.faults.retry_after
            )
        elif fault == "503":
            action = respond(503, json={"error": "unavailable"})
        elif fault == "reset":
            action = reset()
        else:
            stop = min(start + min(size, self.max_page_size), self.size)
            records = [{"id": i} for i in range(max(start, 0), stop)]
            extra = {"link": headers()} if headers is not None else None
            action = respond(json=body(records), headers=extra)
        if number in self.resize_at:
            self.size = self.resize_at[number]
        slow = self.faults.slow_every
        if slow and number % slow == 0:
            return stall(self.faults.slow_seconds, then=action)
        return action

    def _fault(self, number: int) -> str | None:
        every = self.faults.every
        if not every or number % every:
            return None
        return self._rng.choice(list(self.faults.kinds))


def _int(request: RecordedRequest, name: str, default: int) -> int:
    values = request.params.get(name)
    return int(values[0]) if values else default


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"after:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("after:"))
