"""RedisCoordination against a real redis-server on 127.0.0.1 (started by the fixtures).

The Lua scripts must do what :mod:`trestfly._shared_state` does (the pure reference);
sessions must share a gate through them; a Redis that goes away must cost nothing but
a warning; keys must expire on their own; and four worker processes against the local
throttling server must share one quota.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import coredis
import httpx
import pytest
import trio
from servers import TrioTestServer
from servers.script import RecordedRequest, Respond, json_status, respond

from benchmarks._scenarios import FixedWindow
from benchmarks.redis_server import RedisServer, free_port
from benchmarks.storm_server import install_scenario, run_storm_server
from trestfly import RedisCoordination, TrioAPISession, errors
from trestfly._redis import sync_arguments
from trestfly._retry_after import TOO_LONG
from trestfly._shared_state import (
    MAX_CLOSE_FOR,
    MAX_HOLES,
    RateProposal,
    Reservation,
    SharedQuota,
    SyncRequest,
)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[coredis.Redis[bytes]]:
    client: coredis.Redis[bytes] = coredis.Redis.from_url(redis_server.url)
    async with client:
        yield client


def fresh_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


#: For tests of what the scripts compute, which call the store directly (a failed call
#: raises there): the default 50 ms budget of a call is for production, where a slow
#: Redis means "throttle locally", and two loaded cores can miss it once in a while
#: (a connect that timed out failed a CI run).
SCRIPT_TIMEOUT = 2.0


async def test_the_sync_script_matches_the_reference(
    redis_server: RedisServer, redis: coredis.Redis[bytes]
) -> None:
    """Random sequences of syncs give the same shared state in Lua and in Python."""
    rng = random.Random(7)
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        for sequence in range(20):
            key = f"seq-{sequence}"
            reference = SharedQuota()
            start = trio.current_time()
            for _ in range(12):
                version = reference.version
                proposal = None
                if rng.random() < 0.4:
                    based_on = version if rng.random() < 0.7 else max(0, version - 1)
                    ceiling = rng.choice([None, rng.uniform(1, 100)])
                    proposal = RateProposal(rng.uniform(1, 100), ceiling, based_on)
                request = SyncRequest(
                    close_for=rng.choice([None, rng.uniform(0, 5)]),
                    proposal=proposal,
                    rate_delta=rng.choice([0.0, rng.uniform(-1, 3)]),
                    based_on=rng.choice([version, version + 1]),
                    successes=rng.randrange(0, 5),
                )
                lua = await coordination._store_sync(key, request)
                python = reference.sync(trio.current_time() - start, request, 300.0)
                assert lua.accepted == python.accepted
                assert lua.version == python.version
                assert lua.successes == python.successes
                if python.rate is None:
                    assert lua.rate is None
                else:
                    assert lua.rate == pytest.approx(python.rate, rel=1e-9)
                if python.ceiling is None:
                    assert lua.ceiling is None
                else:
                    assert lua.ceiling == pytest.approx(python.ceiling, rel=1e-9)
                if python.gate_remaining > 0:
                    # Both clocks run; they differ by the time the calls took.
                    assert lua.gate_remaining == pytest.approx(python.gate_remaining, abs=0.25)
                else:
                    assert lua.gate_remaining <= 0.25


async def test_giving_slots_back_matches_the_reference(
    redis_server: RedisServer, redis: coredis.Redis[bytes]
) -> None:
    """Random reservations, slots given back and schedules restarted (a gate closed for
    0 s) give the same waits in Lua and in Python, and keep the same holes."""
    rng = random.Random(11)
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        for sequence in range(10):
            key = f"seq-{sequence}"
            reference = SharedQuota()
            start = trio.current_time()
            held: list[tuple[Reservation, Reservation]] = []
            for _ in range(30):
                step = rng.random()
                if step < 0.5:
                    # Waits are whole seconds less the time the calls took: bounds at
                    # half seconds are never a close call between the two clocks.
                    max_wait = rng.choice([math.inf, 0.5, 2.5])
                    lua = await coordination._store_reserve_within(key, 1.0, 2, max_wait)
                    now = trio.current_time() - start
                    python = reference.reserve(now, 1.0, 2, 300.0, max_wait)
                    assert lua.reserved == python.reserved
                    assert lua.wait == pytest.approx(python.wait, abs=0.25)
                    assert (lua.slot is None) == (python.slot is None)
                    assert lua.schedule == python.schedule
                    if python.reserved:
                        held.append((lua, python))
                elif step < 0.85 and held:
                    lua, python = held.pop(rng.randrange(len(held)))
                    assert lua.slot is not None and python.slot is not None
                    kept = await coordination._store_give_back(key, lua.slot, lua.schedule)
                    now = trio.current_time() - start
                    assert kept == reference.give_back(now, python.slot, python.schedule)
                elif step >= 0.85:
                    await coordination._store_sync(key, SyncRequest(close_for=0.0))
                    reference.sync(trio.current_time() - start, SyncRequest(close_for=0.0), 300.0)
                holes = await redis.hget(coordination.redis_key(key), "holes")
                assert len([h for h in (holes or b"").split(b",") if h]) == len(reference.holes)


async def test_the_slots_given_back_are_bounded_and_expire_with_the_key(
    redis_server: RedisServer, redis: coredis.Redis[bytes]
) -> None:
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT, key_ttl=30.0
    ) as coordination:
        held = [await coordination._store_reserve("k", 1.0, 1) for _ in range(MAX_HOLES + 11)]
        for reservation in held[1:]:
            assert reservation.slot is not None
            await coordination._store_give_back("k", reservation.slot, reservation.schedule)
        key = coordination.redis_key("k")
        holes = (await redis.hget(key, "holes") or b"").split(b",")
        assert len(holes) == MAX_HOLES  # the earliest dropped
        assert [float(h) for h in holes] == sorted(float(h) for h in holes)
        taken = await coordination._store_reserve("k", 1.0, 1)
        assert taken.slot == pytest.approx(held[11].slot, abs=1e-6)  # slots 1-10 dropped
        # One hash, one expiry: the holes go with the key (kept past the schedule's end).
        assert (MAX_HOLES + 11) * 1000 < await redis.pttl(key) <= (MAX_HOLES + 11 + 30) * 1000
        # A slot given back to a key that is gone does not make it again (no expiry).
        await redis.delete([key])
        assert not await coordination._store_give_back("k", held[-1].slot or 0.0, 0)
        assert not await redis.exists([key])


async def test_slots_of_cancelled_waiters_are_given_back_through_redis(
    redis_server: RedisServer, trio_server: TrioTestServer
) -> None:
    """End to end (the memory store's test in test_coordination.py): at 5/s, four
    waiters cancelled; the next request goes at the first slot they left (0.2 s after
    the first send), not after theirs (1 s)."""
    trio_server.app.script("/ok", [json_status(200)])
    prefix = fresh_prefix()
    async with (
        RedisCoordination(redis_server.url, prefix=prefix, timeout=2.0) as coordination,
        TrioAPISession(url=trio_server.base_url, coordination=coordination, rate_limit=5.0) as api,
    ):
        await api.get("ok")
        start = trio.current_time()
        await api.get("ok")  # paced: its slot was reserved from Redis
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(api.get, "ok")
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        await api.get("ok")
        took = trio.current_time() - start
        assert api.stats.coordination is not None and api.stats.coordination.healthy
    # About 0.4 s (two slots of 0.2 s); 1.2 s behind the four cancelled waiters' slots.
    assert took < 0.8, f"the next request waited {took:.2f} s behind cancelled waiters"


async def test_the_gate_only_extends(redis_server: RedisServer) -> None:
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        first = await coordination._store_sync("k", SyncRequest(close_for=5.0))
        shorter = await coordination._store_sync("k", SyncRequest(close_for=0.5))
        assert first.gate_remaining == pytest.approx(5.0, abs=0.2)
        assert shorter.gate_remaining == pytest.approx(5.0, abs=0.2)
        blocked = await coordination._store_reserve("k", 0.1, 1)
        assert blocked.gate_remaining == pytest.approx(5.0, abs=0.2)
        longer = await coordination._store_sync("k", SyncRequest(close_for=9.0))
        assert longer.gate_remaining == pytest.approx(9.0, abs=0.2)


async def test_a_slot_past_max_wait_is_quoted_not_reserved(redis_server: RedisServer) -> None:
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        await coordination._store_reserve("k", 1.0, 1)  # now; the next slot is 1 s away
        quoted = await coordination._store_reserve_within("k", 1.0, 1, 0.5)
        assert not quoted.reserved and quoted.wait == pytest.approx(1.0, abs=0.1)
        again = await coordination._store_reserve_within("k", 1.0, 1, 0.5)
        assert again.wait == pytest.approx(1.0, abs=0.1)  # not pushed to 2 s
        taken = await coordination._store_reserve_within("k", 1.0, 1, 5.0)
        assert taken.reserved and taken.wait == pytest.approx(1.0, abs=0.1)


async def test_a_free_slot_is_reserved_when_max_wait_is_zero(redis_server: RedisServer) -> None:
    """As SharedQuota.reserve: a slot 0 s away is within max_wait=0 (max_retry_after=0)."""
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        free = await coordination._store_reserve_within("k", 1.0, 1, 0.0)
        assert free.reserved and free.wait == 0.0
        quoted = await coordination._store_reserve_within("k", 1.0, 1, 0.0)
        assert not quoted.reserved and quoted.wait == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("rate", [700.0, 3000.0, 25000.0])
async def test_the_reserve_script_matches_the_reference_at_high_rates(
    redis_server: RedisServer, redis: coredis.Redis[bytes], rate: float
) -> None:
    """While the schedule is ahead of the clock, each reservation moves it by exactly
    one interval, in Lua as in Python.  Stored with tostring() (14 digits: 0.1 ms on a
    clock of 1.7e12 ms), each step was rounded: 700/s paced at 714/s, 25,000/s not at
    all."""
    reservations = 300
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        reference = SharedQuota()
        for _ in range(2):  # the schedule is now a second ahead of the clock
            await coordination._store_reserve("k", 1.0, 1)
            reference.reserve(0.0, 1.0, 1, 300.0)
        key = coordination.redis_key("k")
        before, python_before = float(await redis.hget(key, "tat") or b"nan"), reference.tat
        for _ in range(reservations):
            await coordination._store_reserve("k", 1.0 / rate, 1)
            reference.reserve(0.0, 1.0 / rate, 1, 300.0)
        moved = (float(await redis.hget(key, "tat") or b"nan") - before) / 1000.0
    assert reference.tat - python_before == pytest.approx(reservations / rate, rel=1e-9)
    # Left: the rounding of a double at 1.7e12 ms (0.12 us a step, 0.3% at 25,000/s).
    assert moved == pytest.approx(reference.tat - python_before, rel=0.005)


def test_sync_arguments_announce_a_gate_for_at_most_max_close_for() -> None:
    assert sync_arguments(SyncRequest(close_for=TOO_LONG), 300.0)[0] == repr(MAX_CLOSE_FOR * 1000)
    assert sync_arguments(SyncRequest(close_for=2.5), 300.0)[0] == repr(2500.0)


async def test_an_absurd_gate_or_key_ttl_keeps_the_key_expiring(
    redis_server: RedisServer, redis: coredis.Redis[bytes]
) -> None:
    """A gate of TOO_LONG (1e300 s) made PEXPIRE fail on a float after the gate was
    written: the key never expired and every later sync of it failed."""
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        closed = await coordination._store_sync("k", SyncRequest(close_for=TOO_LONG))
        assert closed.gate_remaining == pytest.approx(MAX_CLOSE_FOR, rel=1e-6)
        later = await coordination._store_sync("k", SyncRequest(successes=1))
        assert later.successes == 1
        assert await redis.pttl(coordination.redis_key("k")) > MAX_CLOSE_FOR * 1000
    # A key_ttl too long for Redis (any positive finite one is accepted) is clamped.
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT, key_ttl=1e300
    ) as forever:
        await forever._store_sync("k", SyncRequest(successes=1))
        await forever._store_reserve("k", 0.1, 1)
        assert await redis.pttl(forever.redis_key("k")) > 0


async def test_an_absurd_retry_after_leaves_the_coordination_healthy(
    redis_server: RedisServer, redis: coredis.Redis[bytes], trio_server: TrioTestServer
) -> None:
    """End to end: one 429 with a 20-digit Retry-After (valid delay-seconds)."""
    trio_server.app.script("/x", [respond(429, retry_after="9" * 20)])
    coordination = RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT, retry_interval=0.2
    )
    async with (
        coordination,
        TrioAPISession(url=trio_server.base_url, coordination=coordination) as api,
    ):
        with pytest.raises(errors.APIError):
            await api.get("x")
        await trio.sleep(0.5)  # many syncs of the closed gate
        assert coordination.healthy and coordination.stats.failures == 0
        [origin] = api._gates
    assert await redis.pttl(coordination.redis_key(origin)) > 0


async def test_the_gcra_admits_at_the_configured_rate(redis_server: RedisServer) -> None:
    """Reservations made at once are spaced by the interval, after the burst."""
    async with RedisCoordination(
        redis_server.url, prefix=fresh_prefix(), timeout=SCRIPT_TIMEOUT
    ) as coordination:
        # Each wait counts from the moment the script ran, somewhere within its call:
        # the slot it gives is bracketed by the call's start and end.  (Comparing the
        # waits alone failed when the machine stalled 0.1 s between two calls.)  The
        # schedule starts when the first call's script ran, within that call too: a
        # first call that took 14 ms (loading the scripts) shifted every slot by that.
        interval, start = 1.0, trio.current_time()
        waits, slots = [], []
        for _ in range(10):
            called = trio.current_time() - start
            wait = (await coordination._store_reserve("k", interval, 2)).wait
            waits.append(wait)
            slots.append((called + wait, trio.current_time() - start + wait))
        first_called, first_returned = slots[0]  # its wait is 0: the call itself
        expected = [0.0, 0.0] + [interval * i for i in range(1, 9)]
        for (earliest, latest), offset in zip(slots, expected, strict=True):
            if offset > 0:
                # The slot lies in [earliest, latest] and in the first call's span
                # shifted by offset: the two must meet.
                assert earliest - 0.01 <= first_returned + offset
                assert first_called + offset <= latest + 0.01
        assert waits[:2] == [0.0, 0.0]
        assert all(b > a for a, b in itertools.pairwise(waits[1:]))


async def test_keys_expire_on_their_own(
    redis_server: RedisServer, redis: coredis.Redis[bytes]
) -> None:
    prefix = fresh_prefix()
    async with RedisCoordination(
        redis_server.url, prefix=prefix, key_ttl=2.0, timeout=SCRIPT_TIMEOUT
    ) as coordination:
        await coordination._store_sync("k", SyncRequest(successes=1))
        key = coordination.redis_key("k")
        ttl = await redis.pttl(key)
        assert 0 < ttl <= 2000
        await coordination._store_sync("k", SyncRequest(close_for=10.0))
        assert 10_000 < await redis.pttl(key) <= 12_000  # kept while the gate is closed
    assert key == f"{prefix}:{{k}}"  # a hash tag: one key, one Redis Cluster slot


async def test_sessions_share_a_gate_through_redis(
    redis_server: RedisServer, trio_server: TrioTestServer
) -> None:
    """A 429 seen by one session closes the gate of another (two "workers")."""
    announced: list[float] = []

    def handler(request: RecordedRequest) -> Respond:
        if request.header("x-worker") == "a" and not announced:
            announced.append(trio.current_time() + 1.0)
            return respond(429, retry_after=1)
        return json_status(200)

    trio_server.app.script("/ok", [handler])
    prefix = fresh_prefix()
    async with (
        # A generous timeout: on a loaded test machine a slow call must not send the
        # coordination local-only, which is not what this test is about.
        RedisCoordination(redis_server.url, prefix=prefix, timeout=2.0) as one,
        RedisCoordination(redis_server.url, prefix=prefix, timeout=2.0) as two,
        TrioAPISession(url=trio_server.base_url, coordination=one, retries=3) as a,
        TrioAPISession(url=trio_server.base_url, coordination=two, retries=3) as b,
    ):
        a._per_request_headers = {"x-worker": "a"}
        b._per_request_headers = {"x-worker": "b"}
        await b.get("ok")  # b's origin joins the key

        async def b_keeps_sending() -> None:
            for _ in range(30):
                await b.get("ok")
                await trio.sleep(0.02)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(b_keeps_sending)
            await trio.sleep(0.1)
            await a.get("ok")  # 429, then the retry after the gate
        assert b.stats.coordination is not None
        assert b.stats.coordination.remote_closures >= 1
    [until] = announced
    early = [
        request
        for request in trio_server.requests
        if request.header("x-worker") == "b" and until - 1.0 < request.arrived_at < until
    ]
    # b learns of the gate within a sync (20 ms) plus a round trip: the request it had
    # in flight and the one it sent before the sync came arrive early, a few more on a
    # loaded machine; without the shared gate, some 25 of its sends every 20 ms would.
    assert len(early) <= 5


async def test_a_redis_that_goes_away_costs_only_a_warning(
    own_redis_server: RedisServer, trio_server: TrioTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    trio_server.app.script("/ok", [json_status(200)])
    caplog.set_level(logging.INFO, logger="trestfly.coordination")
    # A stopped Redis refuses at once; the timeout is generous so that a slow call on a
    # loaded test machine does not start a second episode.
    coordination = RedisCoordination(
        own_redis_server.url, prefix=fresh_prefix(), retry_interval=0.2, timeout=1.0
    )
    # A client-side rate limit paces every request, so each one asks Redis for a slot.
    async with TrioAPISession(
        url=trio_server.base_url, coordination=coordination, rate_limit=200.0, retries=0
    ) as api:
        for _ in range(20):
            await api.get("ok")
        assert api.stats.coordination is not None
        assert api.stats.coordination.reservations >= 10
        own_redis_server.stop()
        for _ in range(100):  # every request still succeeds, none stalls
            with trio.fail_after(2.0):
                await api.get("ok")
        assert not api.stats.coordination.healthy
        own_redis_server.start()
        with trio.fail_after(10.0):
            while not api.stats.coordination.healthy:
                await api.get("ok")
                await trio.sleep(0.05)
        reserved = api.stats.coordination.reservations
        for _ in range(5):
            await api.get("ok")
        assert api.stats.coordination.reservations > reserved  # shared again
    messages = [record.getMessage() for record in caplog.records]
    assert (
        messages.count("shared throttling state unavailable, continuing with local-only throttling")
        == 1
    )
    assert messages.count("shared throttling state reachable again") == 1
    assert own_redis_server.url not in caplog.text


async def test_an_unreachable_redis_at_start_is_not_an_error(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/ok", [json_status(200)])
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with TrioAPISession(
        url=trio_server.base_url, coordination=RedisCoordination(dead), rate_limit=500.0
    ) as api:
        for _ in range(10):
            await api.get("ok")
        assert api.stats.coordination is not None
        assert not api.stats.coordination.healthy


def test_bad_redis_settings_are_named() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="url= or client="):
        RedisCoordination()
    with pytest.raises(errors.UnexpectedValueError, match="prefix"):
        RedisCoordination("redis://127.0.0.1:1/0", prefix="{x}")
    with pytest.raises(errors.UnexpectedValueError, match="timeout"):
        RedisCoordination("redis://127.0.0.1:1/0", timeout=-1)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("notaurl", "no scheme"),
        ("", "no scheme"),
        ("http://127.0.0.1:1", "scheme 'http'"),
        ("redis://:s3cret-pw@/0", "without a host"),
        ("redis://:s3cret-pw@127.0.0.1:99999/0", "does not parse"),
        ("unix://", "without a path"),
        # coredis reads these as database 15, database 0 and port 6379.
        ("redis://:s3cret-pw@127.0.0.1:6379/1/5", "not a database number"),
        ("redis://:s3cret-pw@127.0.0.1:6379/abc", "not a database number"),
        ("redis://:s3cret-pw@127.0.0.1:0/0", "port 0"),
        ("redis://:s3cret-pw@127.0.0.1:6379/0?db=abc", "db= that is not a number"),
        # Taken over the coordination's own: every call then failed once connected.
        ("redis://:s3cret-pw@127.0.0.1:6379/0?noreply=1", "without noreply="),
        ("redis://:s3cret-pw@127.0.0.1:6379/0?connect_timeout=0", "without connect_timeout="),
        # Every call failed in coredis's parser: local-only for good, one warning.
        ("redis://:s3cret-pw@127.0.0.1:6379/0?decode_responses=yes", "without decode_responses="),
        ("redis://:s3cret-pw@127.0.0.1:6379/0?client_name=a%20b", "client_name= without"),
    ],
)
def test_a_url_that_is_not_a_redis_url_is_refused_at_once(url: str, problem: str) -> None:
    # coredis takes these and fails (or connects elsewhere) only when the session runs.
    with pytest.raises(errors.UnexpectedValueError, match=f"url must be .*{problem}") as caught:
        RedisCoordination(url)
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize("options", ["ssl_cert_reqs=bogus", "ssl_ca_certs=/nonexistent/ca.pem"])
def test_url_options_coredis_cannot_use_are_named_at_once(options: str) -> None:
    # They were raised bare (KeyError, FileNotFoundError) from the background task
    # on entering.
    with pytest.raises(errors.UnexpectedValueError, match="options coredis cannot use") as caught:
        RedisCoordination(f"rediss://:s3cret-pw@127.0.0.1:6379/0?{options}")
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret-pw/x@127.0.0.1/0",  # a password with "/": read as the port
        "rediss://:s3cret-pw@127.0.0.1:6379/0?ssl_cert_reqs=bogus",
    ],
)
def test_a_refused_url_keeps_no_error_quoting_it(url: str) -> None:
    # `from None` hid the cause from tracebacks, but it stayed the __context__: urllib's
    # "Port could not be cast to integer value as 's3cret-pw'".
    with pytest.raises(errors.UnexpectedValueError) as caught:
        RedisCoordination(url)
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_neither_url_nor_client_and_a_wrong_client_are_named() -> None:
    with pytest.raises(errors.UnexpectedValueError, match="got neither"):
        RedisCoordination()
    with pytest.raises(errors.UnexpectedValueError, match="not both"):
        RedisCoordination("redis://127.0.0.1:1/0", client=coredis.Redis())
    with pytest.raises(errors.UnexpectedValueError, match="client must be a coredis"):
        RedisCoordination(client="notaclient")  # type: ignore[arg-type]
    for url in (
        "redis://127.0.0.1:1/0",
        "redis://127.0.0.1:1/0/",  # coredis reads a trailing slash as the same database
        "rediss://redis.internal",
        "unix:///tmp/redis.sock",
    ):
        RedisCoordination(url)


def test_four_worker_processes_share_one_quota(redis_server: RedisServer) -> None:
    """Four processes, one fixed window of 30 per second: one quota, learned together."""
    workers, requests, concurrency = 4, 120, 5
    prefix = fresh_prefix()
    with run_storm_server() as server:

        async def install() -> None:
            async with httpx.AsyncClient() as client:
                await install_scenario(client, server.url, FixedWindow(limit=30, window=1.0))

        trio.run(install)
        start_at = time.time() + 1.5  # every worker ready before it
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks._storm_worker",
                    "--url",
                    server.url,
                    "--path",
                    "item",
                    "--requests",
                    str(requests // workers),
                    "--concurrency",
                    str(concurrency),
                    "--client-id",
                    f"w{index}",
                    "--start-at",
                    str(start_at),
                    "--time-limit",
                    "40",
                    "--redis-url",
                    redis_server.url,
                    "--prefix",
                    prefix,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for index in range(workers)
        ]
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))

        async def stats() -> dict[str, object]:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"{server.url}/__stats")
                return response.json()  # type: ignore[no-any-return]

        totals = trio.run(stats)["totals"]
    assert isinstance(totals, dict)
    assert totals["successes"] == requests
    assert totals["violations"] == 0
    assert totals["arrivals"] / requests <= 1.5

    async def shared_state() -> dict[bytes, bytes]:
        client: coredis.Redis[bytes] = coredis.Redis.from_url(redis_server.url)
        async with client:
            return await client.hgetall(f"{prefix}:{{http://127.0.0.1:{server.port}}}")

    state = trio.run(shared_state)
    # Every worker's successes were counted in one place, and the rate was learned there.
    assert int(state[b"succ"]) == requests
    assert int(state[b"ver"]) >= 1
