"""Stopping background tasks: a swallowed cancellation (``wait_for`` on Python 3.11) does not hang the stop."""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

from core.tasks import cancel_and_wait, stop_if_cancelled
from tests.conftest import REDIS_URL


async def test_a_task_that_swallows_its_first_cancellation_is_cancelled_again() -> None:
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if rounds > 1:
                    raise  # the second cancellation is obeyed

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task]), timeout=5)
    assert task.cancelled()
    assert rounds == 2


async def test_errors_of_stopped_tasks_are_retrieved_not_raised() -> None:
    async def failing() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await cancel_and_wait([task, None])
    assert isinstance(task.exception(), RuntimeError)


async def test_a_task_that_never_stops_is_given_up_on() -> None:
    deaf_now = True

    async def deaf() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not deaf_now:
                    raise

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    await cancel_and_wait([task], give_up_after_s=0.5)
    assert not task.done()
    deaf_now = False
    await cancel_and_wait([task])
    assert task.cancelled()


async def test_a_swallowed_cancellation_is_obeyed_at_the_next_round() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            stop_if_cancelled()
            rounds += 1
            # what wait_for does on 3.11 when its inner task is done at that moment:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=5)
    assert task.cancelled() and rounds == 1


async def test_a_loop_of_redis_commands_always_stops() -> None:
    """The real case: redis-py writes every command under ``wait_for``; stop it at many points."""
    client = Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        for delay in (0, 0.0005, 0.001, 0.002, 0.005) * 2:

            async def busy() -> None:
                while True:  # as every background loop of the app
                    stop_if_cancelled()
                    await client.ping()

            task = asyncio.create_task(busy())
            await asyncio.sleep(delay)
            await asyncio.wait_for(cancel_and_wait([task]), timeout=5)
            assert task.done()
    finally:
        await client.aclose()
