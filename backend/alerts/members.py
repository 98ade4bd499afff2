"""Who belongs to a structure, and who manages it: the checks the alert services share.

Only active memberships count. The titulaire and the managers they named run the rota, create
service clients and are the last step of an on-call escalation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import ErrorCode
from core.db.models import Membership, MembershipRole, MembershipStatus, Professional, Structure
from core.device_registry import Actor
from core.errors import ForbiddenError

MANAGING_ROLES = (MembershipRole.TITULAIRE, MembershipRole.MANAGER)


def require_structure(actor: Actor) -> tuple[uuid.UUID, uuid.UUID]:
    """The structure the actor acts for, and the actor's professional id."""
    if actor.structure_id is None or actor.professional_id is None:
        raise ForbiddenError(ErrorCode.STRUCTURE_REQUIRED, "act for a structure first")
    return actor.structure_id, actor.professional_id


async def membership(session: AsyncSession, structure_id: uuid.UUID, professional_id: uuid.UUID) -> Membership | None:
    """The active membership of this person in this structure, if any."""
    found: Membership | None = await session.scalar(
        select(Membership).where(
            Membership.structure_id == structure_id,
            Membership.professional_id == professional_id,
            Membership.status == MembershipStatus.ACTIVE,
        )
    )
    return found


async def require_member(session: AsyncSession, actor: Actor) -> Membership:
    structure_id, professional_id = require_structure(actor)
    found = await membership(session, structure_id, professional_id)
    if found is None:
        raise ForbiddenError(ErrorCode.FORBIDDEN, "not an active member of this structure")
    return found


async def require_manager(session: AsyncSession, actor: Actor) -> Structure:
    """The actor is the active titulaire (or a manager) of the structure they act for."""
    found = await require_member(session, actor)
    if found.role not in MANAGING_ROLES:
        raise ForbiddenError(ErrorCode.NOT_TITULAIRE, "only the titulaire or a manager may do this")
    return found.structure


async def active_members(session: AsyncSession, structure_id: uuid.UUID) -> list[Membership]:
    rows = await session.scalars(
        select(Membership)
        .where(Membership.structure_id == structure_id, Membership.status == MembershipStatus.ACTIVE)
        .order_by(Membership.created_at)
    )
    return list(rows.unique().all())


async def managers(session: AsyncSession, structure_id: uuid.UUID) -> list[uuid.UUID]:
    """Titulaire first, then managers, each in the order they joined."""
    members = [m for m in await active_members(session, structure_id) if m.role in MANAGING_ROLES]
    members.sort(key=lambda m: (m.role != MembershipRole.TITULAIRE, m.created_at))
    return [m.professional_id for m in members]


async def names(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.scalars(select(Professional).where(Professional.id.in_(set(ids))))
    return {p.id: p.display_name for p in rows.all()}
