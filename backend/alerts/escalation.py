"""The escalation loop: every instance looks for due on-call alerts every ``alerts.check_every_s``.

No leader election: a step is a compare-and-set (:meth:`AlertService.escalate`), so two instances
racing on one alert make one step. Failures are logged by type and retried at the next round.
"""

from __future__ import annotations

import asyncio

from backend.alerts.service import AlertService
from core.logging import get_logger
from core.tasks import cancel_and_wait, stop_if_cancelled

log = get_logger("mssc.alerts")


class EscalationLoop:
    def __init__(self, alerts: AlertService, *, every_s: float) -> None:
        self._alerts = alerts
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        steps = await self._alerts.run_due()
        if steps:
            log.info("alerts_escalated", steps=len(steps))
        return len(steps)

    async def _loop(self) -> None:
        while True:
            stop_if_cancelled()
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - next round retries
                log.error("escalation_failed", error_type=type(exc).__name__)
            await asyncio.sleep(self._every_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="alert-escalation")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
