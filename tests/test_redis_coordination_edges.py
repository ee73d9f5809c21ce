"""RedisCoordination against a real redis-server: a gate longer than the store holds
is announced once, not at every sync."""

from __future__ import annotations

import contextlib
import functools
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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tat", "nan"),  # Lua's tonumber() reads it: the shared pacing stopped
        ("tat", "inf"),  # no slot ever came: every call waited, the key kept for ages
        ("gate", "inf"),  # the origin closed for good
        ("holes", "junk"),  # the script failed: the store down for every origin
        ("rate", "abc"),  # handed to every worker, whose parse failed: the same
        ("succ", "1.5"),  # HINCRBY failed on it
    ],
)
async def test_redis_a_field_written_by_someone_else_is_read_as_absent(
    redis_server: RedisServer, field: str, value: str
) -> None:
    import coredis

    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(trio.current_time())
        return httpx.Response(200)

    prefix = f"s30-{uuid.uuid4().hex[:8]}"
    # Two workers on one quota: each keeps its own rate_limit alone, the store both.
    first, second = (RedisCoordination(redis_server.url, prefix=prefix, timeout=2.0) for _ in "ab")
    sessions = [
        TrioAPISession(
            url="https://api.example.test",
            transport=httpx.MockTransport(handler),
            rate_limit=50,
            coordination=coordination,
        )
        for coordination in (first, second)
    ]
    other = coredis.Redis.from_url(redis_server.url)
    async with other, first, second, sessions[0] as one, sessions[1] as two:
        await one.get("x")  # the hash exists, with the fields trestfly writes
        await other.hset(first.redis_key("https://api.example.test"), {field: value})
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for api in (one, two):
                    nursery.start_soon(api.map, lambda _, api=api: api.get("x"), range(10))
        for coordination in (first, second):
            assert coordination.stats.healthy and coordination.stats.failures == 0
    # Paced together: 20 more at 50/s take 19 intervals at least.
    assert sent[-1] - sent[1] >= 19 / 50 * 0.9


async def test_redis_a_connection_gone_dead_without_a_fin_is_dropped(
    redis_server: RedisServer,
) -> None:
    # A flow a NAT or a load balancer dropped: nothing comes back, nothing closes it.
    # coredis keeps a connection whose call was cut off by the timeout, so every later
    # call queued behind a reply that never came, and the coordination stayed local-only
    # while a new connection answered at once.
    flows: list[list[bool]] = []  # per connection through the proxy: still relayed?

    async def relay(
        source: trio.SocketStream, target: trio.SocketStream, alive: list[bool]
    ) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async for data in source:
                if alive[0]:
                    await target.send_all(data)  # else dropped on the floor

    async def proxy(client: trio.SocketStream) -> None:
        alive = [True]
        flows.append(alive)
        upstream = await trio.open_tcp_stream("127.0.0.1", redis_server.port)
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(relay, client, upstream, alive)
            nursery.start_soon(relay, upstream, client, alive)

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, proxy, 0, host="127.0.0.1")
        (listener,) = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        coordination = RedisCoordination(
            f"redis://127.0.0.1:{port}/0",
            prefix=f"s30-{uuid.uuid4().hex[:8]}",
            timeout=0.2,
            retry_interval=0.1,
        )
        async with (
            coordination,
            TrioAPISession(
                url="https://api.example.test",
                transport=httpx.MockTransport(lambda request: httpx.Response(200)),
                rate_limit=100,
                coordination=coordination,
            ) as api,
        ):
            for _ in range(5):
                await api.get("x")
            assert coordination.stats.healthy and len(flows) == 1
            flows[0][0] = False  # the flow goes dead
            with trio.move_on_after(10):  # bounded: recovery takes a few retry intervals
                while coordination.stats.failures == 0 or not coordination.stats.healthy:
                    await api.get("x")
                    await trio.sleep(0.05)
            assert coordination.stats.failures > 0 and coordination.stats.healthy
            assert len(flows) >= 2  # a connection of its own, not the dead one
        nursery.cancel_scope.cancel()
