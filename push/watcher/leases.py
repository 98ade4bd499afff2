"""Leases: which watcher process watches which mailbox, so several share the mailboxes without overlap.

A lease is a key per mailbox holding its owner's id, set only if absent and expiring after
``ttl_s`` unless the owner renews it (every third of it). A watcher that dies stops renewing: its
leases expire and the others take the mailboxes over. Every step is atomic and batched: one Lua
script acquires up to N free mailboxes, one renews (compare-and-extend) every lease held, one
releases them (compare-and-delete), so a watcher can never extend or drop a lease it lost.

Watchers also announce themselves (a heartbeat with the same expiry) so each can aim at its fair
share: ``ceil(mailboxes / live watchers)``.

Two backends: :class:`MemoryLeases` (one process: the embedded default; watchers of one process
share a :class:`MemoryLeaseTable`) and :class:`RedisLeases` (several processes). In Redis every key
carries the ``{watcher-leases}`` hash tag, so the multi-key scripts also run on a cluster.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from core.settings import StoreSettings

# KEYS = candidate leases; ARGV = owner, ttl ms, how many to take. Returns the 1-based indexes taken.
_ACQUIRE = """
local taken = {}
local limit = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  if #taken >= limit then break end
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then taken[#taken + 1] = i end
end
return taken
"""

# KEYS = leases held; ARGV = owner, ttl ms. Extends only the owner's; returns the indexes still held.
_RENEW = """
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    held[#held + 1] = i
  end
end
return held
"""

# KEYS = leases; ARGV = owner. Deletes only the owner's.
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then n = n + redis.call('DEL', key) end
end
return n
"""

# KEYS = members sorted set; ARGV = owner, ttl ms. Server time: watchers' clocks may disagree.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 3)
return redis.call('ZCARD', KEYS[1])
"""

#: Lua scripts take this many keys at a time (bounded script run time and argument size).
_BATCH = 500


class LeaseManager(ABC):
    """One watcher's leases. ``owner`` must be unique per watcher process (host, pid, random)."""

    def __init__(self, owner: str, ttl_s: float) -> None:
        if not owner or ttl_s <= 0:
            raise ValueError("owner must be set and ttl_s positive")
        self.owner = owner
        self.ttl_s = ttl_s

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    @abstractmethod
    async def acquire(self, mailbox_ids: Sequence[str], limit: int) -> list[str]:
        """Take up to ``limit`` of these mailboxes that nobody holds, in the order given."""

    @abstractmethod
    async def renew(self, mailbox_ids: Sequence[str]) -> set[str]:
        """Extend the leases still ours; returns those (the others were lost: stop watching them)."""

    @abstractmethod
    async def release(self, mailbox_ids: Sequence[str]) -> None:
        """Give up the leases still ours, so another watcher may take them at once."""

    @abstractmethod
    async def holders(self, mailbox_ids: Sequence[str]) -> dict[str, str | None]:
        """Who holds each lease now (inspection and tests)."""

    @abstractmethod
    async def heartbeat(self) -> int:
        """Say this watcher is alive (for ``ttl_s``); how many watchers are alive, this one included."""

    @abstractmethod
    async def leave(self) -> None:
        """This watcher stops: no longer counted among the live ones."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


# --- in-process ----------------------------------------------------------------------------------
@dataclass(slots=True)
class MemoryLeaseTable:
    """Leases and live watchers of one process (shared by the watchers it runs)."""

    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    members: dict[str, float] = field(default_factory=dict)

    def owner_of(self, mailbox_id: str, now: float) -> str | None:
        entry = self.leases.get(mailbox_id)
        if entry is None:
            return None
        if entry[1] <= now:
            del self.leases[mailbox_id]
            return None
        return entry[0]


class MemoryLeases(LeaseManager):
    """The embedded default. Every method runs without awaiting: atomic for the event loop."""

    def __init__(self, owner: str, ttl_s: float, table: MemoryLeaseTable | None = None) -> None:
        super().__init__(owner, ttl_s)
        self.table = table if table is not None else MemoryLeaseTable()

    async def acquire(self, mailbox_ids: Sequence[str], limit: int) -> list[str]:
        now = time.monotonic()
        taken: list[str] = []
        for mailbox_id in mailbox_ids:
            if len(taken) >= limit:
                break
            if self.table.owner_of(mailbox_id, now) is None:
                self.table.leases[mailbox_id] = (self.owner, now + self.ttl_s)
                taken.append(mailbox_id)
        return taken

    async def renew(self, mailbox_ids: Sequence[str]) -> set[str]:
        now = time.monotonic()
        held = {m for m in mailbox_ids if self.table.owner_of(m, now) == self.owner}
        for mailbox_id in held:
            self.table.leases[mailbox_id] = (self.owner, now + self.ttl_s)
        return held

    async def release(self, mailbox_ids: Sequence[str]) -> None:
        now = time.monotonic()
        for mailbox_id in mailbox_ids:
            if self.table.owner_of(mailbox_id, now) == self.owner:
                del self.table.leases[mailbox_id]

    async def holders(self, mailbox_ids: Sequence[str]) -> dict[str, str | None]:
        now = time.monotonic()
        return {m: self.table.owner_of(m, now) for m in mailbox_ids}

    async def heartbeat(self) -> int:
        now = time.monotonic()
        members = self.table.members
        for owner in [o for o, until in members.items() if until <= now]:
            del members[owner]
        members[self.owner] = now + self.ttl_s
        return len(members)

    async def leave(self) -> None:
        self.table.members.pop(self.owner, None)


# --- Redis ---------------------------------------------------------------------------------------
class RedisLeases(LeaseManager):
    """Several watcher processes over one Redis. Keys: ``<namespace>:watcher:{watcher-leases}:…``."""

    def __init__(self, client: Redis, namespace: str, owner: str, ttl_s: float, *, owns_client: bool = False) -> None:
        super().__init__(owner, ttl_s)
        self._r = client
        self._prefix = f"{namespace}:watcher:{{watcher-leases}}"
        self._owns_client = owns_client
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._heartbeat = client.register_script(_HEARTBEAT)

    @classmethod
    def from_url(cls, url: str, namespace: str, owner: str, ttl_s: float) -> RedisLeases:
        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, namespace, owner, ttl_s, owns_client=True)

    def _key(self, mailbox_id: str) -> str:
        return f"{self._prefix}:lease:{mailbox_id}"

    @property
    def _members(self) -> str:
        return f"{self._prefix}:members"

    async def acquire(self, mailbox_ids: Sequence[str], limit: int) -> list[str]:
        taken: list[str] = []
        for start in range(0, len(mailbox_ids), _BATCH):
            if len(taken) >= limit:
                break
            batch = list(mailbox_ids[start : start + _BATCH])
            indexes = await self._acquire(
                keys=[self._key(m) for m in batch], args=[self.owner, self.ttl_ms, limit - len(taken)]
            )
            taken += [batch[int(i) - 1] for i in indexes]
        return taken

    async def renew(self, mailbox_ids: Sequence[str]) -> set[str]:
        held: set[str] = set()
        for start in range(0, len(mailbox_ids), _BATCH):
            batch = list(mailbox_ids[start : start + _BATCH])
            indexes = await self._renew(keys=[self._key(m) for m in batch], args=[self.owner, self.ttl_ms])
            held.update(batch[int(i) - 1] for i in indexes)
        return held

    async def release(self, mailbox_ids: Sequence[str]) -> None:
        for start in range(0, len(mailbox_ids), _BATCH):
            batch = list(mailbox_ids[start : start + _BATCH])
            await self._release(keys=[self._key(m) for m in batch], args=[self.owner])

    async def holders(self, mailbox_ids: Sequence[str]) -> dict[str, str | None]:
        if not mailbox_ids:
            return {}
        values = await self._r.mget([self._key(m) for m in mailbox_ids])
        return {
            m: None if v is None else (v.decode() if isinstance(v, bytes) else str(v))
            for m, v in zip(mailbox_ids, values, strict=True)
        }

    async def heartbeat(self) -> int:
        return int(await self._heartbeat(keys=[self._members], args=[self.owner, self.ttl_ms]))

    async def leave(self) -> None:
        await self._r.zrem(self._members, self.owner)

    async def close(self) -> None:
        if self._owns_client:
            await self._r.aclose()


def create_leases(store: StoreSettings, *, owner: str, ttl_s: float, client: Redis | None = None) -> LeaseManager:
    """Memory for ``store.url == "memory"``, else Redis (``client`` reuses an existing connection pool)."""
    if store.is_redis:
        if client is not None:
            return RedisLeases(client, store.namespace, owner, ttl_s)
        return RedisLeases.from_url(store.url, store.namespace, owner, ttl_s)
    if store.url != "memory":
        raise ValueError(f"unsupported lease store URL scheme: {store.url.split(':', 1)[0]!r}")
    return MemoryLeases(owner, ttl_s)
