"""The on-call rota: who of a structure is on call when. Managed by the titulaire or a manager.

An on-call alert goes to the people on call *now*, in rota order: lower ``rank`` first, then the
earlier shift, then the one entered first. Only active members count (someone removed from the
team drops off the rota at once, without their shifts being deleted).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.alerts import members
from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Membership, MembershipStatus, OnCallShift, Structure
from core.device_registry import Actor
from core.errors import DomainError, NotFoundError

MAX_SHIFT = dt.timedelta(days=31)
MAX_RANK = 99


@dataclass(frozen=True, slots=True)
class Shift:
    id: uuid.UUID
    professional_id: uuid.UUID
    name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    rank: int

    def covers(self, at: dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "times need a time zone")
    return value.astimezone(dt.UTC)


async def on_call_order(session: AsyncSession, structure_id: uuid.UUID, at: dt.datetime) -> list[uuid.UUID]:
    """Who is on call at ``at``, in the order they are called (one entry per person)."""
    rows = await session.execute(
        select(OnCallShift.professional_id)
        .join(
            Membership,
            (Membership.structure_id == OnCallShift.structure_id)
            & (Membership.professional_id == OnCallShift.professional_id),
        )
        .where(
            OnCallShift.structure_id == structure_id,
            OnCallShift.starts_at <= at,
            OnCallShift.ends_at > at,
            Membership.status == MembershipStatus.ACTIVE,
        )
        .order_by(OnCallShift.rank, OnCallShift.starts_at, OnCallShift.created_at, OnCallShift.id)
    )
    return list(dict.fromkeys(row[0] for row in rows.all()))


@dataclass(frozen=True, slots=True)
class RotaOverview:
    structure_id: uuid.UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    shifts: list[Shift]
    #: Who an on-call alert reaches now, in order: (id, name).
    on_call_now: list[tuple[uuid.UUID, str]]
    #: Active members of the structure: (id, name), in the order they joined.
    members: list[tuple[uuid.UUID, str]]


class RotaService:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    async def require_manager(self, actor: Actor) -> Structure:
        """The structure the actor manages (titulaire or manager), or ``not_titulaire``."""
        async with self._db.read() as session:
            return await members.require_manager(session, actor)

    async def add_shift(
        self,
        actor: Actor,
        *,
        professional_id: uuid.UUID,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        rank: int = 0,
        now: dt.datetime | None = None,
    ) -> Shift:
        starts_at, ends_at = _aware(starts_at), _aware(ends_at)
        if ends_at <= starts_at:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a shift ends after it starts")
        if ends_at - starts_at > MAX_SHIFT:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a shift lasts at most 31 days")
        if ends_at <= (now or dt.datetime.now(dt.UTC)):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "this shift is already over")
        if not 0 <= rank <= MAX_RANK:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "the rank is between 0 and 99")
        async with self._db.transaction() as session:
            structure = await members.require_manager(session, actor)
            member = await members.membership(session, structure.id, professional_id)
            if member is None:
                raise NotFoundError(ErrorCode.MEMBER_NOT_FOUND, "not an active member")
            shift = OnCallShift(
                structure_id=structure.id,
                professional_id=professional_id,
                starts_at=starts_at,
                ends_at=ends_at,
                rank=rank,
                created_by=actor.professional_id,
            )
            session.add(shift)
            await session.flush()
            await self._audit.record(
                "rota.shift_added",
                actor=actor.idnat,
                structure_id=structure.id,
                device_id=actor.device_id,
                target=member.professional.idnat,
                details={
                    "shift": str(shift.id),
                    "start": starts_at.isoformat(),
                    "end": ends_at.isoformat(),
                    "rank": rank,
                },
                session=session,
            )
            name = member.professional.display_name
        return Shift(shift.id, professional_id, name, starts_at, ends_at, rank)

    async def remove_shift(self, actor: Actor, shift_id: uuid.UUID) -> None:
        async with self._db.transaction() as session:
            structure = await members.require_manager(session, actor)
            shift = await session.get(OnCallShift, shift_id)
            if shift is None or shift.structure_id != structure.id:
                raise NotFoundError(ErrorCode.SHIFT_NOT_FOUND, "no such shift")
            target = shift.professional.idnat
            await session.delete(shift)
            await self._audit.record(
                "rota.shift_removed",
                actor=actor.idnat,
                structure_id=structure.id,
                device_id=actor.device_id,
                target=target,
                details={"shift": str(shift_id)},
                session=session,
            )

    async def shifts(self, structure_id: uuid.UUID, start: dt.datetime, end: dt.datetime) -> list[Shift]:
        """Shifts overlapping ``[start, end)``, by start then rank."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(OnCallShift)
                .where(
                    OnCallShift.structure_id == structure_id,
                    OnCallShift.ends_at > start,
                    OnCallShift.starts_at < end,
                )
                .order_by(OnCallShift.starts_at, OnCallShift.rank, OnCallShift.created_at)
            )
            return [
                Shift(s.id, s.professional_id, s.professional.display_name, s.starts_at, s.ends_at, s.rank)
                for s in rows.unique().all()
            ]

    async def on_call_now(self, structure_id: uuid.UUID, now: dt.datetime | None = None) -> list[uuid.UUID]:
        """Who an on-call alert of this structure goes to now, first to last."""
        async with self._db.read() as session:
            return await on_call_order(session, structure_id, now or dt.datetime.now(dt.UTC))

    async def overview(self, actor: Actor, *, now: dt.datetime | None = None, days: int = 7) -> RotaOverview:
        """The rota of the actor's structure from now on, for an active member of it."""
        at = now or dt.datetime.now(dt.UTC)
        async with self._db.read() as session:
            membership = await members.require_member(session, actor)
            team = await members.active_members(session, membership.structure_id)
            order = await on_call_order(session, membership.structure_id, at)
        people = [(m.professional_id, m.professional.display_name) for m in team]
        names = dict(people)
        end = at + dt.timedelta(days=days)
        return RotaOverview(
            structure_id=membership.structure_id,
            starts_at=at,
            ends_at=end,
            shifts=await self.shifts(membership.structure_id, at, end),
            on_call_now=[(p, names.get(p, "")) for p in order],
            members=people,
        )
