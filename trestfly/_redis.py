"""The Redis store of a :class:`~trestfly._coordination.Coordination` (``trestfly[redis]``).

Each quota key is one Redis hash, ``<prefix>:{<quota key>}`` (the braces make it a
hash tag: in a Redis Cluster the whole state of a key lives in one slot, and the
scripts touch only that key).  Three Lua scripts update it atomically (sync, reserve,
give back), timed by the Redis
server's clock (``TIME``) so that workers' clocks never matter; they implement exactly
:class:`trestfly._shared_state.SharedQuota` (tests run both on the same inputs).
Times are milliseconds in Redis; floats travel as strings, since Redis truncates Lua
numbers to integers.  The scripts write them with 17 significant digits (``num``):
Lua's ``tostring`` keeps 14, a tenth of a millisecond on a clock of 1.7e12 ms, which
rounded every step of a pacer faster than a few hundred requests a second (700/s paced
at 714/s, 25,000/s not at all).  A key's expiry is an integer number of milliseconds
(``PEXPIRE``), clamped to what Redis accepts (``ttl_ms``): a number it refuses would
fail the script after it wrote the gate, leaving a key that never expires.  The slots
given back are one field of the hash (``holes``, at most MAX_HOLES numbers joined by
commas, earliest first), so they expire with the key and a new schedule clears them in
the same write that restarts it.

The client is coredis (6+): it is built on anyio and runs natively under Trio, where
redis.asyncio does not run at all (see the deployment guide for the measurements).
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ._coordination import Coordination
from ._shared_state import (
    CUT_SETTLE,
    MAX_CLOSE_FOR,
    MAX_HOLES,
    Reservation,
    SyncReply,
    SyncRequest,
)
from .errors import TrestflyError, UnexpectedValueError

if TYPE_CHECKING:
    import coredis

#: The longest key expiry the scripts set, in milliseconds (about 31,700 years): above
#: MAX_CLOSE_FOR plus any sensible key_ttl, far below what overflows Redis's clock.
MAX_PEXPIRE_MS = 10**15

# Lua helpers of the scripts: a number as a string that reads back as the same double,
# a key expiry as the integer PEXPIRE takes, and the slots given back (the ``holes``
# field) read without those already due, and written back.
_LUA_HELPERS = f"""
-- The server's clock in milliseconds: every worker's times are on the one clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function num(x)
  return string.format('%.17g', x)
end
-- A field read as a finite number, or nil: anything else written into the hash (by
-- another program on the prefix, another version) is absent.  tonumber() takes 'nan'
-- and 'inf': a tat of nan stopped all pacing, a gate of inf closed the origin for good.
local function fin(x)
  local n = tonumber(x)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    return nil
  end
  return n
end
-- A gate read back is never further than the longest the workers write.
local function gate_of(x, now)
  return math.min(fin(x) or -1, now + {MAX_CLOSE_FOR} * 1000)
end
local function ttl_ms(x)
  return string.format('%d', math.max(1, math.min(math.ceil(x), {MAX_PEXPIRE_MS})))
end
local function ahead(holes, now)
  local kept = {{}}
  for x in string.gmatch(holes or '', '[^,]+') do
    local h = fin(x)
    if h and h > now then
      kept[#kept + 1] = h
    end
  end
  return kept
end
local function joined(kept)
  local out = {{}}
  for i = math.max(1, #kept - {MAX_HOLES} + 1), #kept do
    out[#out + 1] = num(kept[i])
  end
  return table.concat(out, ',')
end
"""

# KEYS[1]: the hash.  ARGV: close_for_ms (-1: none), proposed rate ('' none), proposed
# ceiling ('' none), based_on, rate_delta, successes, ttl_ms, settle_ms (CUT_SETTLE).
SYNC_SCRIPT = (
    _LUA_HELPERS
    + """
local key = KEYS[1]
local now = now_ms()
local close_ms = tonumber(ARGV[1])
local p_rate, p_ceil = ARGV[2], ARGV[3]
local based = tonumber(ARGV[4])
local delta = tonumber(ARGV[5])
local succ = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local settle = tonumber(ARGV[8])
local s = redis.call('HMGET', key, 'gate', 'tat', 'rate', 'ceil', 'ver', 'succ', 'cut',
                    'sched')
local gate = gate_of(s[1], now)
local tat = fin(s[2]) or -1
-- Rates stay text (passed on as written), but only numbers: junk was handed to every
-- worker, whose parse failed, and the store went down for every origin.
local rate = fin(s[3]) and s[3] or nil
local ceil = fin(s[4]) and s[4] or nil
local ver = fin(s[5]) or 0
local counted = fin(s[6])
local total = counted or 0
local cut_at = fin(s[7]) or -1e300
local sched = fin(s[8]) or 0
if s[6] and (not counted or counted ~= math.floor(counted)) then
  redis.call('HSET', key, 'succ', 0)  -- HINCRBY fails on anything but an integer
end
-- A new schedule: the reservations and the slots given back are void.
local function restart(at)
  tat = at
  sched = sched + 1
  redis.call('HSET', key, 'tat', num(tat), 'sched', sched, 'holes', '')
end
if close_ms >= 0 and now + close_ms > gate then
  gate = now + close_ms
  redis.call('HSET', key, 'gate', num(gate))
  restart(gate)
end
local accepted = 0
if p_rate ~= '' and based == ver and now >= cut_at + settle then
  rate = p_rate
  ceil = p_ceil
  ver = ver + 1
  accepted = 1
  redis.call('HSET', key, 'rate', rate, 'ceil', ceil, 'ver', ver, 'cut', num(now))
  restart(math.max(now, gate))
elseif p_rate ~= '' and p_ceil == '' and (not ceil or ceil == '') and rate and rate ~= ''
       and tonumber(p_rate) > tonumber(rate) then
  rate = p_rate
  ver = ver + 1
  accepted = 1
  redis.call('HSET', key, 'rate', rate, 'ver', ver)
  restart(math.max(now, gate))
elseif p_rate == '' and delta ~= 0 and rate and based == ver then
  rate = num(math.max(tonumber(rate) + delta, 0))
  redis.call('HSET', key, 'rate', rate)
end
if succ > 0 then
  total = redis.call('HINCRBY', key, 'succ', succ)
elseif not s[6] then
  redis.call('HSET', key, 'succ', 0)
end
redis.call('PEXPIRE', key, ttl_ms(math.max(now, gate, tat) - now + ttl))
return {num(gate - now), rate or '', ceil or '', ver, total, accepted}
"""
)

# KEYS[1]: the hash.  ARGV: interval_ms, burst, ttl_ms, max_wait_ms (-1: none).  Returns
# gate_remaining, wait, reserved, and when reserved the slot and its schedule.
RESERVE_SCRIPT = (
    _LUA_HELPERS
    + """
local key = KEYS[1]
local now = now_ms()
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local s = redis.call('HMGET', key, 'gate', 'tat', 'sched', 'holes')
local gate = gate_of(s[1], now)
if gate > now then
  return {num(gate - now), '0'}
end
local sched = fin(s[3]) or 0
local tat = math.max(fin(s[2]) or -1, now)
local holes = ahead(s[4], now)
local send_at = math.max(now, tat - (burst - 1) * interval)
if #holes > 0 then
  send_at = holes[1]
end
if max_wait >= 0 and send_at - now > max_wait then
  return {'0', num(send_at - now), '0'}
end
if #holes > 0 then
  table.remove(holes, 1)
  redis.call('HSET', key, 'holes', joined(holes))
else
  tat = math.max(tat, send_at) + interval
  redis.call('HSET', key, 'tat', num(tat))
  if s[4] and s[4] ~= '' then
    redis.call('HSET', key, 'holes', '')
  end
end
redis.call('PEXPIRE', key, ttl_ms(math.max(now, gate, tat) - now + ttl))
return {'0', num(send_at - now), '1', num(send_at), sched}
"""
)

# KEYS[1]: the hash.  ARGV: slot_ms, schedule.  Returns 1 if the slot was kept.  Writes
# only into a key that exists (with its expiry), and never moves the expiry: the slot
# is before ``tat``, which the expiry already outlives.
GIVE_BACK_SCRIPT = (
    _LUA_HELPERS
    + """
local key = KEYS[1]
local now = now_ms()
local slot = tonumber(ARGV[1])
local sched = tonumber(ARGV[2])
local s = redis.call('HMGET', key, 'tat', 'sched', 'holes')
local tat = fin(s[1])
if not tat or (fin(s[2]) or 0) ~= sched or slot <= now or slot >= tat then
  return 0
end
local holes = ahead(s[3], now)
local at = #holes + 1
for i = 1, #holes do
  if slot < holes[i] then
    at = i
    break
  end
end
table.insert(holes, at, slot)
redis.call('HSET', key, 'holes', joined(holes))
return 1
"""
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional_float(value: Any) -> float | None:
    text = _text(value)
    return float(text) if text else None


def parse_sync_reply(raw: Any) -> SyncReply:
    """The sync script's answer as a :class:`SyncReply` (milliseconds to seconds)."""
    gate, rate, ceiling, version, successes, accepted = raw
    return SyncReply(
        gate_remaining=float(_text(gate)) / 1000.0,
        rate=_optional_float(rate),
        ceiling=_optional_float(ceiling),
        version=int(version),
        successes=int(successes),
        accepted=bool(int(accepted)),
    )


def parse_reserve_reply(raw: Any) -> Reservation:
    """The reserve script's answer as a :class:`Reservation` (milliseconds to seconds)."""
    gate, wait, *rest = raw
    reserved = not rest or _text(rest[0]) == "1"
    return Reservation(
        gate_remaining=float(_text(gate)) / 1000.0,
        wait=float(_text(wait)) / 1000.0,
        reserved=reserved,
        slot=float(_text(rest[1])) / 1000.0 if len(rest) > 1 else None,
        schedule=int(rest[2]) if len(rest) > 2 else 0,
    )


def sync_arguments(request: SyncRequest, ttl: float) -> list[str]:
    """The sync script's ARGV for a :class:`SyncRequest` (seconds to milliseconds)."""
    proposal = request.proposal
    close_for = request.close_for
    return [
        # Capped as SharedQuota.sync caps it: the Lua adds it to a clock of 1.7e12 ms.
        repr(min(close_for, MAX_CLOSE_FOR) * 1000.0) if close_for is not None else "-1",
        repr(proposal.rate) if proposal is not None else "",
        repr(proposal.ceiling) if proposal is not None and proposal.ceiling is not None else "",
        str(proposal.based_on if proposal is not None else request.based_on),
        repr(request.rate_delta),
        str(request.successes),
        repr(ttl * 1000.0),
        repr(CUT_SETTLE * 1000.0),
    ]


#: URL options the coordination sets itself (see _check_url).
_COORDINATION_OPTIONS = frozenset(
    # decode_responses: the scripts' replies are read as coredis gives them by default;
    # =yes failed every call in coredis's parser ("bool object expected; got str").
    {"noreply", "connect_timeout", "stream_timeout", "decode_responses"}
)


def _check_url(url: object) -> None:
    """Refuse a URL coredis would take and fail on later, or read as another.

    The messages never quote the URL: it may hold the Redis password.

    Raises:
        UnexpectedValueError: ``url`` is not a ``redis://`` or ``rediss://`` URL with a
            host, nor a ``unix://`` URL with a path.
    """
    if not isinstance(url, str):
        raise UnexpectedValueError(f"url must be a string, got {type(url).__name__}")
    expected = "a redis://host:port/db, rediss://host:port/db or unix:///path URL"
    # Raised out of the except blocks here: `from None` hides the cause from a
    # traceback, but it stays the error's __context__, and urllib's ValueError quotes the
    # port it read, a password holding "/" (redis://:pa/ss@host).
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsed on access: a bad port raises ValueError)
        parsed = True
    except ValueError:
        parsed = False
    if not parsed:
        raise UnexpectedValueError(f"url must be {expected}, got one that does not parse")
    if parts.scheme not in ("redis", "rediss", "unix"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise UnexpectedValueError(f"url must be {expected}, got {scheme}")
    if parts.scheme == "unix" and not parts.path:
        raise UnexpectedValueError(f"url must be {expected}, got a unix:// URL without a path")
    if parts.scheme != "unix" and not parts.hostname:
        raise UnexpectedValueError(
            f"url must be {expected}, got a {parts.scheme}:// URL without a host"
        )
    if parts.scheme != "unix":
        # coredis reads "/1/5" as database 15, "/abc" as 0, and port 0 as 6379.
        if parts.port == 0:
            raise UnexpectedValueError(f"url must be {expected}, got port 0")
        if parts.path not in ("", "/") and not re.fullmatch(r"/\d+/?", parts.path):
            raise UnexpectedValueError(
                f"url must be {expected}, got a path that is not a database number"
            )
    for name, value in parse_qsl(parts.query):
        if name == "db" and not value.isdigit():
            raise UnexpectedValueError(f"url must be {expected}, got a db= that is not a number")
        # Options coredis takes over the coordination's own, each of which failed every
        # call once connected (connect_timeout=0 timed out, noreply=1 made every script
        # reply None, a client_name with a space was refused by the server): the store
        # was "unavailable" for good, one warning and local-only throttling.
        if name in _COORDINATION_OPTIONS:
            raise UnexpectedValueError(
                f"url must be {expected} without {name}=: the coordination sets it (its "
                "timeouts: timeout=)"
            )
        if name == "client_name" and not re.fullmatch(r"[!-~]+", value):
            raise UnexpectedValueError(
                f"url must be {expected} with a client_name= without spaces or control "
                "characters (Redis refuses them)"
            )


class RedisCoordination(Coordination):
    """Shares throttling state through Redis: one quota across processes and machines.

    ::

        coordination = trestfly.RedisCoordination("redis://redis.internal:6379/0")
        async with coordination, MyAPI(coordination=coordination) as api:
            ...

    Args:
        url: a Redis URL (``redis://[[user]:password@]host:port/db``, ``rediss://`` for
            TLS, ``unix:///path/to/redis.sock`` for a socket).  Give either this or
            ``client``.
        client: an existing ``coredis.Redis`` client, already open (``async with``); the
            coordination neither opens nor closes it.
        prefix: prepended to every key (``<prefix>:{<quota key>}``).
        quota_key, sync_interval, timeout, retry_interval, key_ttl: as for
            :class:`~trestfly.Coordination`.

    Raises:
        trestfly.errors.UnexpectedValueError: neither or both of ``url`` and ``client``;
            ``url`` is not a ``redis://`` or ``rediss://`` URL with a host nor a
            ``unix://`` URL with a path; ``client`` is not a coredis client.
        trestfly.errors.TrestflyError: coredis is not installed
            (``pip install 'trestfly[redis]'``).

    .. versionadded:: 0.1.0
    """

    backend_name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: coredis.Redis[Any] | None = None,
        prefix: str = "trestfly",
        quota_key: Callable[[str], str] | None = None,
        sync_interval: float = 0.02,
        timeout: float = 0.05,
        retry_interval: float = 1.0,
        key_ttl: float = 300.0,
    ) -> None:
        super().__init__(
            quota_key=quota_key,
            sync_interval=sync_interval,
            timeout=timeout,
            retry_interval=retry_interval,
            key_ttl=key_ttl,
        )
        if url is None and client is None:
            raise UnexpectedValueError("RedisCoordination needs url= or client=, got neither")
        if url is not None and client is not None:
            raise UnexpectedValueError("RedisCoordination needs either url= or client=, not both")
        if url is not None:
            _check_url(url)
        # What the coordination calls on it; a wrong object would fail only on entering.
        if client is not None and not callable(getattr(client, "register_script", None)):
            raise UnexpectedValueError(
                f"client must be a coredis.Redis client, got {type(client).__name__}"
            )
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise UnexpectedValueError(f"prefix must be a string without braces, got {prefix!r}")
        if importlib.util.find_spec("coredis") is None:
            raise TrestflyError("RedisCoordination needs coredis: pip install 'trestfly[redis]'")
        import coredis

        if url is not None:
            refused: type[Exception] | None = None
            try:
                # Builds the client without connecting: options coredis cannot use
                # (ssl_cert_reqs=bogus, a missing ssl_ca_certs file) are named now, not
                # raised bare from the background task on entering.
                coredis.Redis.from_url(url)
            except Exception as exc:
                refused = type(exc)
            if refused is not None:  # raised out of the except block (see _check_url)
                raise UnexpectedValueError(
                    f"url has options coredis cannot use ({refused.__name__})"
                )
        self._url = url
        self._client = client
        # The client built from `url` while the coordination is entered (see
        # _after_failure): a `client=` of the caller's is never touched.
        self._owned: coredis.Redis[Any] | None = None
        self._prefix = prefix
        self._sync_script: Any = None
        self._reserve_script: Any = None
        self._give_back_script: Any = None

    def redis_key(self, quota_key: str) -> str:
        """The Redis key of a quota key's state.

        .. versionadded:: 0.1.0
        """
        return f"{self._prefix}:{{{quota_key}}}"

    @asynccontextmanager
    async def _store_connection(self) -> AsyncIterator[object]:
        import coredis
        from coredis.retry import NoRetryPolicy

        client = self._client
        if client is not None:
            self._register_scripts(client)
            yield client
            return
        assert self._url is not None
        # No retries of its own: a failed call means "go local now", and the background
        # sync tries again later.  Connecting fails within `timeout`.
        owned: coredis.Redis[Any] = coredis.Redis.from_url(
            self._url,
            retry_policy=NoRetryPolicy(),
            connect_timeout=self.timeout,
            stream_timeout=self.timeout,
        )
        # Entering does not connect: an unreachable Redis is found by the first call,
        # which then falls back to local-only throttling.
        async with owned:
            self._register_scripts(owned)
            self._owned = owned
            try:
                yield owned
            finally:
                self._owned = None

    def _after_failure(self) -> None:
        """Drop the owned client's connections: the next call connects afresh.

        A call cut off by ``timeout`` stays first in its connection's queue of replies,
        and coredis keeps the connection: on a flow that died without a FIN (a NAT or a
        load balancer dropped it, a virtual IP moved), every later call queued behind a
        reply that never came, and the coordination stayed local-only for as long as
        the kernel kept the socket (forever behind a middlebox that acknowledges), while
        a new connection to the same Redis answered at once.
        """
        if self._owned is not None:
            self._owned.connection_pool.disconnect()

    def _register_scripts(self, client: coredis.Redis[Any]) -> None:
        self._sync_script = client.register_script(SYNC_SCRIPT)
        self._reserve_script = client.register_script(RESERVE_SCRIPT)
        self._give_back_script = client.register_script(GIVE_BACK_SCRIPT)

    async def _store_sync(self, key: str, request: SyncRequest) -> SyncReply:
        raw = await self._sync_script(
            keys=[self.redis_key(key)], args=sync_arguments(request, self.key_ttl)
        )
        return parse_sync_reply(raw)

    async def _store_reserve(self, key: str, interval: float, burst: int) -> Reservation:
        return await self._store_reserve_within(key, interval, burst, math.inf)

    async def _store_reserve_within(
        self, key: str, interval: float, burst: int, max_wait: float
    ) -> Reservation:
        # A slot more than max_wait away is only quoted (SharedQuota.reserve); -1: none.
        bound = repr(max(max_wait, 0.0) * 1000.0) if math.isfinite(max_wait) else "-1"
        raw = await self._reserve_script(
            keys=[self.redis_key(key)],
            args=[repr(interval * 1000.0), str(burst), repr(self.key_ttl * 1000.0), bound],
        )
        return parse_reserve_reply(raw)

    async def _store_give_back(self, key: str, slot: float, schedule: int) -> bool:
        kept = await self._give_back_script(
            keys=[self.redis_key(key)], args=[repr(slot * 1000.0), str(schedule)]
        )
        return bool(int(kept))
