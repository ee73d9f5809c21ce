"""RedisCoordination against a real redis-server: a gate longer than the store holds
is announced once, not at every sync."""

from __future__ import annotations

import uuid

import httpx
import pytest
import trio

from benchmarks.redis_server import RedisServer
from trestfly import RedisCoordination, TrioAPISession, errors


class CountingRedis(RedisCoordination):
    def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.announced: list[float] = []

    async def _store_sync(self, key, request):  # type: ignore[no-untyped-def]
        if request.close_for is not None:
            self.announced.append(request.close_for)
        return await super()._store_sync(key, request)


async def test_redis_a_gate_longer_than_the_store_holds_is_announced_once(
    redis_server: RedisServer,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "99999999999"})

    coordination = CountingRedis(
        redis_server.url, prefix=f"s26-{uuid.uuid4().hex[:8]}", timeout=2.0
    )
    async with (
        coordination,
        TrioAPISession(
            url="https://api.example.test",
            transport=httpx.MockTransport(handler),
            retries=0,
            coordination=coordination,
        ) as api,
    ):
        with pytest.raises(errors.APIError):
            await api.get("x")
        await trio.sleep(0.5)
        assert coordination.stats.healthy
    assert len(coordination.announced) == 1, (
        len(coordination.announced),
        coordination.announced[:3],
    )
