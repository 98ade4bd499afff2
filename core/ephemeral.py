"""Ephemeral state: sessions, rendezvous, challenges, DPoP replay cache, rate limits, denylist.

One small interface, two backends: in-process (embedded default, one process) and Redis (several
processes). Every step that must be atomic across instances (set-if-absent, counters, state
transitions, single-use take) is one Redis command or one Lua script, so callers never
read-modify-write. Keys are namespaced; values are bytes (callers use the JSON helpers).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import msgspec
from redis.asyncio import Redis

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


class Ephemeral(ABC):
    """Expiring key/value state shared by every instance of the app."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    @abstractmethod
    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Set only if absent; ``False`` when the key exists (replay caches, locks)."""

    @abstractmethod
    async def add_and_get_many(
        self, add_key: str, value: bytes, ttl_s: float, get_keys: list[str]
    ) -> tuple[bool, list[bytes | None]]:
        """``add`` one key and read others in one round trip (replay cache + denylist per request)."""

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def take(self, key: str) -> bytes | None:
        """Get and delete in one step (single-use challenges)."""

    @abstractmethod
    async def incr(self, key: str, ttl_s: float) -> int:
        """Increment a counter; the first increment starts its ``ttl_s`` window."""

    @abstractmethod
    async def compare_and_set(self, key: str, expected: bytes | None, value: bytes, ttl_s: float | None = None) -> bool:
        """Replace ``expected`` by ``value`` atomically; ``ttl_s=None`` keeps the current expiry."""

    @abstractmethod
    async def ttl(self, key: str) -> float | None:
        """Seconds left, ``None`` when the key is absent or has no expiry."""

    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    async def clear(self) -> None:
        """Remove every key of this namespace (tests, demo reset)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # JSON helpers
    async def get_json(self, key: str) -> Any:
        raw = await self.get(key)
        return None if raw is None else _json_decode(raw)

    async def set_json(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        await self.set(key, _json_encode(value), ttl_s)


class MemoryEphemeral(Ephemeral):
    """In-process backend. Correct for one process only: that is the embedded default."""

    def __init__(self, namespace: str = "mssc") -> None:
        self._ns = namespace
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._ops = 0

    def _alive(self, key: str) -> tuple[bytes, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def _sweep(self) -> None:
        self._ops += 1
        if self._ops % 1024:
            return
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]

    @staticmethod
    def _deadline(ttl_s: float | None) -> float | None:
        return None if ttl_s is None else time.monotonic() + ttl_s

    async def get(self, key: str) -> bytes | None:
        item = self._alive(key)
        return None if item is None else item[0]

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [await self.get(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._sweep()
        self._data[key] = (value, self._deadline(ttl_s))

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        if self._alive(key) is not None:
            return False
        await self.set(key, value, ttl_s)
        return True

    async def add_and_get_many(
        self, add_key: str, value: bytes, ttl_s: float, get_keys: list[str]
    ) -> tuple[bool, list[bytes | None]]:
        return await self.add(add_key, value, ttl_s), await self.get_many(get_keys)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def take(self, key: str) -> bytes | None:
        item = self._alive(key)
        self._data.pop(key, None)
        return None if item is None else item[0]

    async def incr(self, key: str, ttl_s: float) -> int:
        item = self._alive(key)
        if item is None:
            await self.set(key, b"1", ttl_s)
            return 1
        count = int(item[0]) + 1
        self._data[key] = (str(count).encode(), item[1])
        return count

    async def compare_and_set(self, key: str, expected: bytes | None, value: bytes, ttl_s: float | None = None) -> bool:
        item = self._alive(key)
        if (None if item is None else item[0]) != expected:
            return False
        deadline = self._deadline(ttl_s) if ttl_s is not None else (item[1] if item else None)
        self._data[key] = (value, deadline)
        return True

    async def ttl(self, key: str) -> float | None:
        item = self._alive(key)
        if item is None or item[1] is None:
            return None
        return max(0.0, item[1] - time.monotonic())

    async def ping(self) -> None:
        return None

    async def clear(self) -> None:
        self._data.clear()


# KEYS[1]=key ARGV[1]=expected ('' with ARGV[4]='1' means absent) ARGV[2]=new ARGV[3]=ttl ms (0 keeps)
_CAS = """
local cur = redis.call('GET', KEYS[1])
if ARGV[4] == '1' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
end
return 1
"""

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisEphemeral(Ephemeral):
    """Redis backend: every instance sees the same state at once."""

    def __init__(self, client: Redis, namespace: str = "mssc") -> None:
        self._r = client
        self._ns = namespace
        self._cas = client.register_script(_CAS)
        self._incr = client.register_script(_INCR)

    @classmethod
    def from_url(cls, url: str, namespace: str = "mssc") -> RedisEphemeral:
        return cls(Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5), namespace)

    @property
    def client(self) -> Redis:
        return self._r

    def _k(self, key: str) -> str:
        return f"{self._ns}:{key}"

    async def get(self, key: str) -> bytes | None:
        return _bytes(await self._r.get(self._k(key)))

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        return [_bytes(v) for v in await self._r.mget([self._k(k) for k in keys])]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await self._r.set(self._k(key), value, px=None if ttl_s is None else max(1, int(ttl_s * 1000)))

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        return bool(await self._r.set(self._k(key), value, px=max(1, int(ttl_s * 1000)), nx=True))

    async def add_and_get_many(
        self, add_key: str, value: bytes, ttl_s: float, get_keys: list[str]
    ) -> tuple[bool, list[bytes | None]]:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.set(self._k(add_key), value, px=max(1, int(ttl_s * 1000)), nx=True)
            pipe.mget([self._k(k) for k in get_keys])
            added, values = await pipe.execute()
        return bool(added), [_bytes(v) for v in values]

    async def delete(self, key: str) -> None:
        await self._r.delete(self._k(key))

    async def take(self, key: str) -> bytes | None:
        return _bytes(await self._r.getdel(self._k(key)))

    async def incr(self, key: str, ttl_s: float) -> int:
        return int(await self._incr(keys=[self._k(key)], args=[max(1, int(ttl_s * 1000))]))

    async def compare_and_set(self, key: str, expected: bytes | None, value: bytes, ttl_s: float | None = None) -> bool:
        args: list[bytes | str | int] = [
            expected or b"",
            value,
            0 if ttl_s is None else max(1, int(ttl_s * 1000)),
            "1" if expected is None else "0",
        ]
        return bool(await self._cas(keys=[self._k(key)], args=args))

    async def ttl(self, key: str) -> float | None:
        ms = await self._r.pttl(self._k(key))
        return None if ms < 0 else ms / 1000

    async def ping(self) -> None:
        await self._r.ping()

    async def clear(self) -> None:
        cursor = 0
        while True:
            cursor, keys = await self._r.scan(cursor, match=f"{self._ns}:*", count=500)
            if keys:
                await self._r.delete(*keys)
            if cursor == 0:
                return

    async def close(self) -> None:
        await self._r.aclose()


def _bytes(value: bytes | str | None) -> bytes | None:
    """The client runs without ``decode_responses``: values are bytes (str only if misconfigured)."""
    return value.encode() if isinstance(value, str) else value


def create_ephemeral(url: str, namespace: str) -> Ephemeral:
    """``memory`` or a Redis URL, as in ``StoreSettings.url``."""
    if url == "memory":
        return MemoryEphemeral(namespace)
    return RedisEphemeral.from_url(url, namespace)


__all__ = ["Ephemeral", "MemoryEphemeral", "RedisEphemeral", "create_ephemeral"]
