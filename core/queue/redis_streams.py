"""Redis Streams backend: consumer groups shared by every instance, durable with AOF.

Keys (``{ns}`` the namespace, ``{s}`` the stream, ``{g}`` the group), one hash tag per stream so the
Lua steps that touch several keys also run on a Redis Cluster:

* ``{ns}:queue:{{s}}`` the stream (entries carry one field ``p``, the payload);
* ``{ns}:queue:{{s}}:delayed:{g}`` ZSET of pending ids waiting for a retry, scored by due time (ms);
* ``{ns}:queue:{{s}}:dead:{g}`` the group's dead letters (a stream capped with ``MAXLEN ~``);
* ``{ns}:queue:{{s}}:dedupe:{key}`` the id enqueued under a dedupe key, for the dedupe window.

A retried message never leaves the group's pending entries list (PEL): ``retry_later`` only marks it
in the delayed ZSET, and ``consume`` claims it back (``XCLAIM``, which counts the delivery) once due.
So a retry is as durable as the message, is seen by this group only, keeps its id, and the PEL
delivery counter is the attempts count. Every step that reads then writes is one Lua script.

Durability is Redis's: run production Redis with ``appendonly yes`` (``appendfsync everysec`` loses
at most about a second of acknowledged writes on a crash, ``always`` none) and ``maxmemory-policy
noeviction``. Without persistence (as the default system Redis here) a restart loses every stream;
consumers then re-create their groups (``NOGROUP`` is handled) and carry on with what comes next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ResponseError

from core.queue.base import (
    DeadLetter,
    Delivery,
    Depth,
    DurableQueue,
    QueuePolicy,
    RetryOutcome,
    check_consumer,
    check_count,
    check_id,
    check_name,
)

_T = TypeVar("_T")

#: Longest single ``XREADGROUP BLOCK``: a long ``block_ms`` is waited in slices, so retries scheduled
#: by another instance are noticed within a slice and the socket timeout is never reached.
_BLOCK_SLICE_MS = 1000

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function payload_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'p' then return fields[i + 1] end
  end
  return ''
end
local function deliveries(stream, group, id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] then return p[1][4] end
  return false
end
-- Move a pending message to the group's dead letters (payload copied, then acknowledged).
local function bury(stream, delayed, dead, group, id, attempts, reason, dead_maxlen)
  local e = redis.call('XRANGE', stream, id, id)
  local payload = ''
  if e[1] then payload = payload_of(e[1][2]) end
  local t = redis.call('TIME')
  redis.call('XADD', dead, 'MAXLEN', '~', dead_maxlen, '*', 'id', id, 'p', payload, 'n', attempts,
    'why', reason, 'at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
  redis.call('XACK', stream, group, id)
  redis.call('ZREM', delayed, id)
end
local function info_of(flat)
  local info = {}
  for i = 1, #flat, 2 do info[flat[i]] = flat[i + 1] end
  return info
end
"""

# KEYS[1]=stream KEYS[2]=dedupe ARGV[1]=payload ARGV[2]=maxlen (0: none) ARGV[3]=window ms
_ENQUEUE_ONCE = """
local seen = redis.call('GET', KEYS[2])
if seen then return seen end
local id
if tonumber(ARGV[2]) > 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'p', ARGV[1])
else
  id = redis.call('XADD', KEYS[1], '*', 'p', ARGV[1])
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[3])
return id
"""

# KEYS[1]=stream KEYS[2]=delayed ARGV[1]=group ARGV[2]=consumer ARGV[3]=count
# -> {ms until the next retry is due (-1: none), {id, payload, attempts, ...}}
_PROMOTE = (
    _PRELUDE
    + """
local now = now_ms()
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
  if claimed[1] then
    out[#out + 1] = id
    out[#out + 1] = payload_of(claimed[1][2])
    out[#out + 1] = deliveries(KEYS[1], ARGV[1], id)
  end
end
local wait = -1
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - now) end
return {wait, out}
"""
)

# KEYS[1]=stream KEYS[2]=delayed KEYS[3]=dead
# ARGV[1]=group ARGV[2]=consumer ARGV[3]=min idle ms ARGV[4]=count ARGV[5]=max attempts ARGV[6]=dead maxlen
# -> {id, payload, attempts, ...}
_RECLAIM = (
    _PRELUDE
    + """
local out = {}
local want = tonumber(ARGV[4])
local max_attempts = tonumber(ARGV[5])
local cursor = '0-0'
for _ = 1, 8 do
  -- JUSTID: take ownership without counting a delivery; only what is handed out below counts one.
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', want, 'JUSTID')
  cursor = r[1]
  for _, id in ipairs(r[2]) do
    if not redis.call('ZSCORE', KEYS[2], id) then  -- a message waiting for its retry stays put
      local n = deliveries(KEYS[1], ARGV[1], id)
      if n and n >= max_attempts then
        bury(KEYS[1], KEYS[2], KEYS[3], ARGV[1], id, n, 'max_attempts', ARGV[6])
      elseif n then
        local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
        if claimed[1] then
          out[#out + 1] = id
          out[#out + 1] = payload_of(claimed[1][2])
          out[#out + 1] = n + 1
          want = want - 1
        end
      end
    end
  end
  if want <= 0 or cursor == '0-0' then break end
end
return out
"""
)

# KEYS[1]=stream KEYS[2]=delayed KEYS[3]=dead
# ARGV[1]=group ARGV[2]=id ARGV[3]=delay ms ARGV[4]=max attempts ARGV[5]=dead maxlen
# -> 0 not pending, 1 scheduled, 2 dead-lettered
_RETRY = (
    _PRELUDE
    + """
local n = deliveries(KEYS[1], ARGV[1], ARGV[2])
if not n then return 0 end
if n >= tonumber(ARGV[4]) then
  bury(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], n, 'max_attempts', ARGV[5])
  return 2
end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[3]), ARGV[2])
return 1
"""
)

# KEYS[1]=stream KEYS[2]=delayed KEYS[3]=dead ARGV[1]=group ARGV[2]=id ARGV[3]=reason ARGV[4]=dead maxlen
_BURY = (
    _PRELUDE
    + """
local n = deliveries(KEYS[1], ARGV[1], ARGV[2])
if not n then return 0 end
bury(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], n, ARGV[3], ARGV[4])
return 1
"""
)

# KEYS[1]=stream KEYS[2]=delayed KEYS[3]=dead ARGV[1]=group -> {pending, lag, delayed, dead}
_DEPTH = (
    _PRELUDE
    + """
local delayed = redis.call('ZCARD', KEYS[2])
local dead = redis.call('XLEN', KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, delayed, dead} end
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = info_of(flat)
  if g['name'] == ARGV[1] then
    local lag = g['lag']
    if not lag then  -- Redis cannot tell after some deletions: count (bounded)
      lag = #redis.call('XRANGE', KEYS[1], '(' .. g['last-delivered-id'], '+', 'COUNT', 10000)
    end
    return {g['pending'], lag, delayed, dead}
  end
end
return {0, redis.call('XLEN', KEYS[1]), delayed, dead}
"""
)

# KEYS[1]=stream -> entries dropped. Keeps everything from the oldest id some group still needs:
# its oldest pending entry, or (nothing pending) its last delivered one.
_TRIM = (
    _PRELUDE
    + """
local function older(a, b)
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) < tonumber(bms) end
  return tonumber(aseq) < tonumber(bseq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local floor = false
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = info_of(flat)
  local summary = redis.call('XPENDING', KEYS[1], g['name'])
  local keep = g['last-delivered-id']
  if summary[1] > 0 then keep = summary[2] end
  if not floor or older(keep, floor) then floor = keep end
end
if not floor then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""
)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _field(fields: dict[Any, Any], name: str) -> bytes:
    value = fields.get(name.encode(), fields.get(name, b""))
    return _bytes(value)


def _deliveries(flat: list[Any]) -> list[Delivery]:
    return [Delivery(_str(flat[i]), _bytes(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)]


class RedisStreamQueue(DurableQueue):
    """Redis Streams: any number of instances share each group's work."""

    def __init__(self, client: Redis, namespace: str = "mssc", policy: QueuePolicy | None = None) -> None:
        super().__init__(policy)
        self._r = client
        self._ns = namespace
        self._groups: set[tuple[str, str]] = set()
        self._enqueue_once = client.register_script(_ENQUEUE_ONCE)
        self._promote = client.register_script(_PROMOTE)
        self._reclaim = client.register_script(_RECLAIM)
        self._retry = client.register_script(_RETRY)
        self._bury = client.register_script(_BURY)
        self._depth = client.register_script(_DEPTH)
        self._trim = client.register_script(_TRIM)

    @classmethod
    def from_url(cls, url: str, namespace: str = "mssc", policy: QueuePolicy | None = None) -> RedisStreamQueue:
        """A client that retries a command 3 times (50 ms .. 0.5 s apart) on a dropped connection, so a
        Redis restart or failover costs a pause, not an error. A retried ``XADD`` whose first reply was
        lost may add the message twice: at-least-once already allows it (``dedupe_key`` prevents it)."""
        retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=3)
        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, retry=retry)
        return cls(client, namespace, policy)

    @property
    def client(self) -> Redis:
        return self._r

    @property
    def namespace(self) -> str:
        return self._ns

    # keys
    def _key(self, stream: str) -> str:
        return f"{self._ns}:queue:{{{check_name('stream', stream)}}}"

    def _keys(self, stream: str, group: str) -> list[str]:
        """stream, delayed, dead: the keys most scripts take, in that order."""
        base = self._key(stream)
        check_name("group", group)
        return [base, f"{base}:delayed:{group}", f"{base}:dead:{group}"]

    # groups
    async def ensure_group(self, stream: str, group: str) -> None:
        key = self._keys(stream, group)[0]
        try:
            await self._r.xgroup_create(key, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add((stream, group))

    async def _grouped(self, stream: str, group: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``call`` on an existing group; re-create it once if Redis lost it (restart without AOF)."""
        if (stream, group) not in self._groups:
            await self.ensure_group(stream, group)
        try:
            return await call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        self._groups.discard((stream, group))
        await self.ensure_group(stream, group)
        return await call()

    # producing
    async def enqueue(self, stream: str, payload: bytes, *, dedupe_key: str | None = None) -> str:
        key = self._key(stream)
        maxlen = self.policy.maxlen
        if dedupe_key is None:
            return _str(await self._r.xadd(key, {"p": payload}, maxlen=maxlen, approximate=True))
        args: list[bytes | int] = [payload, maxlen or 0, self.policy.dedupe_window_ms]
        return _str(await self._enqueue_once(keys=[key, f"{key}:dedupe:{dedupe_key}"], args=args))

    async def enqueue_many(self, stream: str, items: Sequence[tuple[bytes, str | None]]) -> list[str]:
        """One round trip: the same commands as :meth:`enqueue`, pipelined (not a transaction: each
        message is added or deduplicated on its own, as one by one)."""
        if not items:
            return []
        key = self._key(stream)
        maxlen = self.policy.maxlen
        async with self._r.pipeline(transaction=False) as pipe:
            for payload, dedupe_key in items:
                if dedupe_key is None:
                    pipe.xadd(key, {"p": payload}, maxlen=maxlen, approximate=True)
                else:
                    args: list[bytes | int] = [payload, maxlen or 0, self.policy.dedupe_window_ms]
                    await self._enqueue_once(keys=[key, f"{key}:dedupe:{dedupe_key}"], args=args, client=pipe)
            return [_str(i) for i in await pipe.execute()]

    # consuming
    async def consume(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int = 10,
        block_ms: int = 0,
    ) -> list[Delivery]:
        check_consumer(consumer)
        check_count(count)
        keys = self._keys(stream, group)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0, block_ms) / 1000

        async def promote() -> list[Any]:
            result: list[Any] = await self._promote(keys=keys[:2], args=[group, consumer, count])
            return result

        while True:
            wait_ms, flat = await self._grouped(stream, group, promote)
            out = _deliveries(flat)
            if len(out) < count:
                block: int | None = None
                remaining_ms = int((deadline - loop.time()) * 1000)
                if not out and remaining_ms > 0:
                    block = min(remaining_ms, _BLOCK_SLICE_MS)
                    if wait_ms >= 0:
                        block = max(1, min(block, int(wait_ms)))
                want = count - len(out)

                async def read_new(block: int | None = block, want: int = want) -> list[Delivery]:
                    return await self._read_new(keys[0], group, consumer, want, block)

                out += await self._grouped(stream, group, read_new)
            if out or loop.time() >= deadline:
                return out

    async def _read_new(self, key: str, group: str, consumer: str, count: int, block: int | None) -> list[Delivery]:
        reply: Any = await self._r.xreadgroup(group, consumer, {key: ">"}, count=count, block=block)
        if isinstance(reply, dict):  # RESP3: {stream: [[entries]]}
            batches = [entries[0] for entries in reply.values() if entries]
        else:  # RESP2: [[stream, [entries]]]
            batches = [entries for _, entries in reply or []]
        return [Delivery(_str(id), _field(fields, "p"), 1) for entries in batches for id, fields in entries]

    async def ack(self, stream: str, group: str, ids: list[str]) -> int:
        if not ids:
            return 0
        stream_key, delayed, _ = self._keys(stream, group)
        ids = [check_id(i) for i in ids]
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.xack(stream_key, group, *ids)
            pipe.zrem(delayed, *ids)
            try:
                acked, _ = await pipe.execute()
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    return 0
                raise
        return int(acked)

    async def reclaim(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        min_idle_ms: int,
        count: int = 10,
    ) -> list[Delivery]:
        check_consumer(consumer)
        check_count(count)
        keys = self._keys(stream, group)
        args: list[str | int] = [
            group,
            consumer,
            max(0, min_idle_ms),
            count,
            self.policy.max_attempts,
            self.policy.dead_maxlen,
        ]

        async def call() -> list[Any]:
            result: list[Any] = await self._reclaim(keys=keys, args=args)
            return result

        return _deliveries(await self._grouped(stream, group, call))

    async def retry_later(self, stream: str, group: str, id: str, delay_ms: int) -> RetryOutcome:
        args: list[str | int] = [
            group,
            check_id(id),
            max(0, delay_ms),
            self.policy.max_attempts,
            self.policy.dead_maxlen,
        ]
        try:
            outcome = int(await self._retry(keys=self._keys(stream, group), args=args))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            outcome = 0
        return (RetryOutcome.NOT_PENDING, RetryOutcome.SCHEDULED, RetryOutcome.DEAD_LETTERED)[outcome]

    async def dead_letter(self, stream: str, group: str, id: str, *, reason: str) -> bool:
        args: list[str | int] = [group, check_id(id), reason, self.policy.dead_maxlen]
        try:
            return bool(await self._bury(keys=self._keys(stream, group), args=args))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return False

    async def dead_letters(self, stream: str, group: str, *, count: int = 100) -> list[DeadLetter]:
        entries: Any = await self._r.xrange(self._keys(stream, group)[2], count=count)
        out: list[DeadLetter] = []
        for _, raw in entries:
            f = {_str(k): v for k, v in raw.items()}
            out.append(DeadLetter(_str(f["id"]), _bytes(f["p"]), int(f["n"]), _str(f["why"]), float(f["at"])))
        return out

    # metrics and housekeeping
    async def depth(self, stream: str, group: str) -> Depth:
        pending, lag, delayed, dead = await self._depth(keys=self._keys(stream, group), args=[group])
        return Depth(pending=int(pending), lag=int(lag), delayed=int(delayed), dead=int(dead))

    async def length(self, stream: str) -> int:
        return int(await self._r.xlen(self._key(stream)))

    async def trim(self, stream: str) -> int:
        return int(await self._trim(keys=[self._key(stream)]))

    async def clear(self) -> None:
        cursor = 0
        while True:
            cursor, keys = await self._r.scan(cursor, match=f"{self._ns}:queue:*", count=500)
            if keys:
                await self._r.delete(*keys)
            if cursor == 0:
                break
        self._groups.clear()

    async def close(self) -> None:
        await self._r.aclose()
