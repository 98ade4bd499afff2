"""Housekeeping that runs inside the app: expire idle devices, purge spent refresh tokens.

Every instance runs it; each step is idempotent (revoking a revoked device changes nothing), so no
leader election is needed. Failures are logged and retried at the next round.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from backend.auth.refresh_tokens import RefreshTokens
from core.db.engine import Database
from core.device_registry import DeviceRegistry
from core.logging import get_logger
from core.tasks import cancel_and_wait, stop_if_cancelled

log = get_logger("mssc.maintenance")

#: Used refresh tokens are kept this long after expiry so a late reuse is still recognised.
REFRESH_GRACE = dt.timedelta(days=7)


class Maintenance:
    def __init__(
        self, *, db: Database, devices: DeviceRegistry, refresh: RefreshTokens, idle_days: int, every_s: float = 3600.0
    ) -> None:
        self._db = db
        self._devices = devices
        self._refresh = refresh
        self._idle_days = idle_days
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> None:
        expired = await self._devices.expire_idle(idle_days=self._idle_days)
        async with self._db.transaction() as session:
            purged = await self._refresh.purge_expired(session, before=dt.datetime.now(dt.UTC) - REFRESH_GRACE)
        if expired or purged:
            log.info("maintenance", devices_expired=len(expired), refresh_tokens_purged=purged)

    async def _loop(self) -> None:
        while True:
            stop_if_cancelled()
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - next round retries
                log.error("maintenance_failed", error_type=type(exc).__name__)
            await asyncio.sleep(self._every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
