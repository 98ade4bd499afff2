"""The ephemeral store's contract, over the in-process backend and a real Redis."""

from __future__ import annotations

import asyncio

from core.ephemeral import Ephemeral


async def test_set_get_delete_and_expiry(ephemeral: Ephemeral) -> None:
    await ephemeral.set("a", b"1", ttl_s=0.2)
    assert await ephemeral.get("a") == b"1"
    assert 0 < (await ephemeral.ttl("a") or 0) <= 0.2
    await asyncio.sleep(0.3)
    assert await ephemeral.get("a") is None
    await ephemeral.set("b", b"2")
    assert await ephemeral.ttl("b") is None
    await ephemeral.delete("b")
    assert await ephemeral.get_many(["a", "b"]) == [None, None]


async def test_add_is_set_if_absent(ephemeral: Ephemeral) -> None:
    assert await ephemeral.add("jti", b"x", 5)
    assert not await ephemeral.add("jti", b"y", 5)
    assert await ephemeral.get("jti") == b"x"


async def test_take_is_single_use(ephemeral: Ephemeral) -> None:
    await ephemeral.set("challenge", b"c", 5)
    results = await asyncio.gather(*(ephemeral.take("challenge") for _ in range(5)))
    assert results.count(b"c") == 1


async def test_incr_window(ephemeral: Ephemeral) -> None:
    counts = [await ephemeral.incr("rl", 0.3) for _ in range(3)]
    assert counts == [1, 2, 3]
    await asyncio.sleep(0.4)
    assert await ephemeral.incr("rl", 0.3) == 1


async def test_compare_and_set_lets_one_writer_win(ephemeral: Ephemeral) -> None:
    assert await ephemeral.compare_and_set("rdv", None, b"v1", 10)
    assert not await ephemeral.compare_and_set("rdv", None, b"other", 10)
    outcomes = await asyncio.gather(*(ephemeral.compare_and_set("rdv", b"v1", f"v2-{i}".encode()) for i in range(6)))
    assert outcomes.count(True) == 1
    assert (await ephemeral.get("rdv") or b"").startswith(b"v2-")
    assert 9 < (await ephemeral.ttl("rdv") or 0) <= 10  # KEEPTTL when no new TTL is given


async def test_json_helpers_and_clear(ephemeral: Ephemeral) -> None:
    await ephemeral.set_json("j", {"a": [1, 2]}, 5)
    assert await ephemeral.get_json("j") == {"a": [1, 2]}
    await ephemeral.clear()
    assert await ephemeral.get("j") is None


async def test_add_and_get_many_in_one_step(ephemeral: Ephemeral) -> None:
    await ephemeral.set("deny:1", b"revoked", 5)
    added, values = await ephemeral.add_and_get_many("jti:a", b"1", 5, ["deny:1", "deny:2"])
    assert added and values == [b"revoked", None]
    again, _ = await ephemeral.add_and_get_many("jti:a", b"1", 5, ["deny:1"])
    assert not again
