"""The device registry: list, rename, revoke and expire devices.

Revocation is a DB fact (permanent) plus hooks the app assembly wires: the store denylist that
makes every instance refuse the device's tokens at once, the fan-out that closes its streams, and
(later) the wipe push. Hooks run after the commit, so a revoked row never depends on them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Device, RefreshToken
from core.errors import NotFoundError
from core.logging import get_logger

log = get_logger("mssc.devices")

RevokedHook = Callable[[Device, str], Awaitable[None]]


class RevokeReason:
    BY_OWNER = "owner"
    BY_TITULAIRE = "titulaire"
    MEMBER_REMOVED = "member_removed"
    IDLE_EXPIRED = "idle_expired"
    REFRESH_REUSED = "refresh_reused"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a professional (from a web session or a device) or the system."""

    idnat: str | None
    professional_id: uuid.UUID | None = None
    structure_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    kind: str = "professional"


SYSTEM = Actor(idnat=None, kind="system")


class DeviceRegistry:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit
        self._on_revoked: list[RevokedHook] = []

    def on_revoked(self, hook: RevokedHook) -> None:
        self._on_revoked.append(hook)

    async def of_professional(self, professional_id: uuid.UUID, *, include_revoked: bool = False) -> list[Device]:
        async with self._db.read() as session:
            query = select(Device).where(Device.professional_id == professional_id)
            if not include_revoked:
                query = query.where(Device.revoked_at.is_(None))
            return list((await session.scalars(query.order_by(Device.created_at.desc()))).all())

    async def of_professionals(self, professional_ids: Sequence[uuid.UUID]) -> list[Device]:
        async with self._db.read() as session:
            return list(
                (
                    await session.scalars(
                        select(Device)
                        .where(Device.professional_id.in_(professional_ids), Device.revoked_at.is_(None))
                        .order_by(Device.created_at.desc())
                    )
                ).all()
            )

    async def get(self, device_id: uuid.UUID) -> Device:
        async with self._db.read() as session:
            device = await session.get(Device, device_id)
        if device is None:
            raise NotFoundError(ErrorCode.DEVICE_NOT_FOUND, "no such device")
        return device

    async def rename(self, device_id: uuid.UUID, name: str, actor: Actor) -> Device:
        async with self._db.transaction() as session:
            device = await session.get(Device, device_id)
            if device is None or device.professional_id != actor.professional_id or device.revoked_at:
                raise NotFoundError(ErrorCode.DEVICE_NOT_FOUND, "no such device")
            device.name = name
            await self._audit.record(
                "device.renamed",
                actor=actor.idnat,
                structure_id=device.structure_id,
                device_id=device.id,
                target=str(device.id),
                session=session,
            )
        return device

    async def revoke(self, device_id: uuid.UUID, actor: Actor, reason: str) -> Device:
        """Revoke now. Idempotent: revoking a revoked device changes nothing and calls no hook."""
        async with self._db.transaction() as session:
            device = await session.get(Device, device_id, with_for_update=True)
            if device is None:
                raise NotFoundError(ErrorCode.DEVICE_NOT_FOUND, "no such device")
            if device.revoked_at is not None:
                return device
            device.revoked_at = dt.datetime.now(dt.UTC)
            device.revoked_by = actor.professional_id
            device.revoke_reason = reason
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.device_id == device_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=device.revoked_at)
            )
            await self._audit.record(
                "device.revoked",
                actor=actor.idnat,
                actor_kind=actor.kind,
                structure_id=device.structure_id,
                device_id=device.id,
                target=str(device.id),
                details={"reason": reason},
                session=session,
            )
        for hook in self._on_revoked:
            try:
                await hook(device, reason)
            except Exception as exc:  # noqa: BLE001 - a hook failing must not undo the revocation
                log.error("revocation_hook_failed", device_id=str(device.id), error_type=type(exc).__name__)
        return device

    async def acknowledge_wipe(self, device_id: uuid.UUID) -> None:
        async with self._db.transaction() as session:
            device = await session.get(Device, device_id)
            if device is None or device.revoked_at is None:
                raise NotFoundError(ErrorCode.DEVICE_NOT_FOUND, "no revoked device to wipe")
            if device.wipe_acknowledged_at is None:
                device.wipe_acknowledged_at = dt.datetime.now(dt.UTC)
                await self._audit.record(
                    "device.wipe_acknowledged",
                    actor=None,
                    actor_kind="device",
                    structure_id=device.structure_id,
                    device_id=device.id,
                    target=str(device.id),
                    session=session,
                )

    async def touch(self, device_id: uuid.UUID) -> None:
        """Record use, at most once a minute per device (callers throttle)."""
        async with self._db.transaction() as session:
            await session.execute(
                update(Device).where(Device.id == device_id).values(last_seen_at=dt.datetime.now(dt.UTC))
            )

    async def expire_idle(self, *, idle_days: int) -> list[uuid.UUID]:
        """Revoke devices unused for ``idle_days`` (never used: counted from enrolment)."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=idle_days)
        async with self._db.read() as session:
            ids = list(
                (
                    await session.scalars(
                        select(Device.id).where(
                            Device.revoked_at.is_(None),
                            ((Device.last_seen_at.is_not(None)) & (Device.last_seen_at < cutoff))
                            | ((Device.last_seen_at.is_(None)) & (Device.created_at < cutoff)),
                        )
                    )
                ).all()
            )
        for device_id in ids:
            await self.revoke(device_id, SYSTEM, RevokeReason.IDLE_EXPIRED)
        return ids
