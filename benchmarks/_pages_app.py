"""A paginated collection for the crawl benchmark, served like :mod:`benchmarks.server`.

Route ``GET /items?offset=N&limit=M&delay_ms=D``: ``{"items": [...], "total": T}`` after
``D`` ms (the added latency of one page), records ``offset..offset+M-1`` of a collection of
``PagesConfig.records`` records, each a small user-like object (a dozen fields, about
200 bytes of JSON, so that parsing and Box are measured on realistic pages).  Bodies are
encoded once per (offset, limit) and cached: the server stays cheap next to the client.
``GET /json`` (the base app's route) answers the startup probe.

The server is started and stopped by :mod:`benchmarks.server`'s
:func:`~benchmarks.server.serve_app` (child) and :func:`~benchmarks.server.run_app_server`
(parent), as :mod:`benchmarks.storm_server` is.

Parent side::

    with run_pages_server(PagesConfig(records=20_000), cpu=0) as server:
        ...  # GET f"{server.url}/items?offset=0&limit=100&delay_ms=20"

Child side: ``python -m benchmarks._pages_app --port 0 [--cpu N] [--config JSON]``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .server import (
    STARTUP_TIMEOUT,
    AppConfig,
    ASGIApp,
    Request,
    Response,
    RunningServer,
    build_app,
    delay_seconds,
    json_response,
    routes,
    run_app_server,
    serve_app,
    server_argument_parser,
)

__all__ = ["PagesConfig", "build_pages_app", "record", "run_pages_server"]

#: Pages cached at most (the benchmark uses a few hundred).
_MAX_CACHED_PAGES = 10_000
#: The largest page the server sends, whatever is asked.
MAX_LIMIT = 1000


@dataclass(frozen=True)
class PagesConfig:
    """The collection; crosses to the child process as JSON."""

    records: int = 20_000
    max_delay_ms: int = 10_000

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PagesConfig:
        return cls(**json.loads(text))


def record(index: int) -> dict[str, object]:
    """Record ``index`` of the collection (deterministic, about 200 bytes of JSON)."""
    return {
        "id": index,
        "name": f"user-{index:06d}",
        "email": f"user{index}@example.test",
        "active": index % 3 != 0,
        "score": round(index * 0.37 % 100, 2),
        "team": {"id": index % 17, "name": f"team-{index % 17}"},
        "tags": ["alpha", "beta"] if index % 2 else ["gamma"],
        "created": f"2024-{index % 12 + 1:02d}-{index % 28 + 1:02d}T12:00:00Z",
        "logins": index % 1000,
        "locale": "en-GB",
    }


def _query_int(query: Mapping[str, list[str]], name: str, default: int) -> int | None:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        return None


def build_pages_app(config: PagesConfig) -> ASGIApp:
    """The benchmark app with ``/items`` added to the base routes."""
    cache: dict[tuple[int, int], Response] = {}
    bad = json_response(400, b'{"error": "offset, limit and delay_ms must be integers"}')

    async def items(request: Request) -> Response:
        offset = _query_int(request.query, "offset", 0)
        limit = _query_int(request.query, "limit", 100)
        delay = delay_seconds(request.query, config.max_delay_ms)
        if offset is None or limit is None or delay is None or offset < 0 or limit < 1:
            return bad
        limit = min(limit, MAX_LIMIT)
        response = cache.get((offset, limit))
        if response is None:
            stop = min(offset + limit, config.records)
            body = {"items": [record(i) for i in range(offset, stop)], "total": config.records}
            response = json_response(200, json.dumps(body).encode())
            if len(cache) < _MAX_CACHED_PAGES:
                cache[(offset, limit)] = response
        if delay:
            import asyncio  # the parent never needs asyncio for this module

            await asyncio.sleep(delay)
        return response

    table = {**routes(AppConfig(max_delay_ms=config.max_delay_ms)), "/items": items}
    return build_app(AppConfig(max_delay_ms=config.max_delay_ms), table)


# ------------------------------------------------------------------ child process


def serve_pages(config: PagesConfig, *, port: int = 0, cpu: int | None = None) -> None:
    """Child entry point: :func:`benchmarks.server.serve_app` of the pages app."""
    serve_app(build_pages_app(config), port=port, cpu=cpu)


def main(argv: list[str] | None = None) -> None:
    parser = server_argument_parser(
        "python -m benchmarks._pages_app",
        "Serve the paginated benchmark app on 127.0.0.1 (started by run_pages_server).",
    )
    parser.add_argument("--config", default="{}", help="PagesConfig as JSON")
    args = parser.parse_args(argv)
    serve_pages(PagesConfig.from_json(args.config), port=args.port, cpu=args.cpu)


# ------------------------------------------------------------------ parent side


@contextmanager
def run_pages_server(
    config: PagesConfig | None = None,
    *,
    cpu: int | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[RunningServer]:
    """Start the server, wait until it answers, yield it, and always stop it.

    Raises:
        RuntimeError: the server exited, or did not answer within ``startup_timeout``.
    """
    config = PagesConfig() if config is None else config
    with run_app_server(
        "benchmarks._pages_app",
        extra_args=("--config", config.to_json()),
        cpu=cpu,
        startup_timeout=startup_timeout,
    ) as server:
        yield server


if __name__ == "__main__":
    main()
