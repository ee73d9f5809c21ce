"""trestfly: write API clients (SDKs) on Trio.

The RESTfly model (a session class with a base URL, an error map and retry rules;
endpoints and iterators grafted onto it) with structured concurrency.

Public names: :class:`TrioAPISession`, :class:`APIEndpoint`, :class:`APIIterator`,
``__version__``, the settings :class:`ThrottleSettings` and :class:`BudgetSettings`, the
typed request keywords :class:`RequestOptions` and :class:`TrestflyOptions`, the typed
constructor keywords :class:`SessionOptions`, the
observability records :class:`SessionStats`, :class:`OriginStats` and
:class:`RetryRecord`; the coordinations that share throttling state between sessions
(:class:`MemoryCoordination`, :class:`RedisCoordination`); the modules
:mod:`trestfly.errors` and :mod:`trestfly.utils`.
"""

from . import errors, utils
from ._budget import BudgetSettings
from ._coordination import Coordination, MemoryCoordination
from ._crawl import MergedRecords, Records, crawl_many
from ._endpoint import APIEndpoint
from ._iterator import APIIterator
from ._options import RequestOptions, TrestflyOptions
from ._pages import PaginationError, Position
from ._paginators import (
    CrawlProgress,
    CursorIterator,
    LinkIterator,
    OffsetIterator,
    PagedIterator,
    PageNumberIterator,
    ProgressCallback,
)
from ._redis import RedisCoordination
from ._session import TrioAPISession
from ._session_options import SessionOptions
from ._stats import CoordinationStats, OriginStats, RetryRecord, SessionStats
from ._throttle import ThrottleSettings
from ._transport import ShardedTransport
from ._version import __version__

__all__ = [
    "APIEndpoint",
    "APIIterator",
    "BudgetSettings",
    "Coordination",
    "CoordinationStats",
    "CrawlProgress",
    "CursorIterator",
    "LinkIterator",
    "MemoryCoordination",
    "MergedRecords",
    "OffsetIterator",
    "OriginStats",
    "PageNumberIterator",
    "PagedIterator",
    "PaginationError",
    "Position",
    "ProgressCallback",
    "Records",
    "RedisCoordination",
    "RequestOptions",
    "RetryRecord",
    "SessionOptions",
    "SessionStats",
    "ShardedTransport",
    "ThrottleSettings",
    "TrestflyOptions",
    "TrioAPISession",
    "__version__",
    "crawl_many",
    "errors",
    "utils",
]
