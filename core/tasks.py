"""Stopping background tasks for sure.

On Python 3.11, ``asyncio.wait_for`` returns its inner result and drops the cancellation when both
land in the same loop iteration (fixed in 3.12). redis-py wraps every socket write in ``wait_for``,
so a loop cancelled while it writes a command to Redis just goes on with its next round, and
whoever awaits it waits forever. Two defences: every background loop calls :func:`stop_if_cancelled`
at the top of each round (a cancellation swallowed during the round is obeyed there), and
:func:`cancel_and_wait` cancels again until the task has ended (for code that has no such loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

log = structlog.get_logger(__name__)

#: How long a cancelled task may take to notice before it is cancelled again.
RECANCEL_EVERY_S = 0.05


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and something swallowed the request.

    ``Task.cancelling()`` counts cancellation requests not yet handled (``asyncio.timeout`` and task
    groups take back their own): above zero, the task must end."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object] | None], *, give_up_after_s: float = 10.0) -> None:
    """Cancel ``tasks`` and wait until each has ended; a task that swallowed the cancellation is
    cancelled again. Their outcomes (cancellation, errors) are not raised: stopping must go on."""
    pending = {task for task in tasks if task is not None and not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after_s
    while pending:
        for task in pending:
            task.cancel()
        timeout = min(RECANCEL_EVERY_S, max(0.0, deadline - loop.time()))
        done, pending = await asyncio.wait(pending, timeout=timeout)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: asyncio does not warn of an error nobody looked at
        if pending and loop.time() >= deadline:
            log.error("task.not_stopping", tasks=sorted(task.get_name() for task in pending))
            return
