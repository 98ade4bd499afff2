"""From a PSC login to our records: the professional, their structures, their memberships.

PSC does not pick a profile: the person may practise in several places. Each activity with a
usable structure id becomes a structure the person can act for. A pharmacist in section A is that
officine's titulaire (an active ``titulaire`` membership); others ask to join, and the titulaire
approves (or added them by RPPS beforehand).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Membership, MembershipRole, MembershipStatus, Professional, Structure
from enrolment.psc.claims import PscActivity, PscIdentity


@dataclass(frozen=True, slots=True)
class Activity:
    structure_id: uuid.UUID
    structure_idnat: str
    name: str
    city: str | None
    is_titulaire: bool
    membership_status: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    professional: Professional
    activities: list[Activity]


class IdentityService:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    async def record_login(self, identity: PscIdentity, *, auth_mode: str | None, acr: str | None) -> LoggedIn:
        now = dt.datetime.now(dt.UTC)
        async with self._db.transaction() as session:
            professional = await session.scalar(select(Professional).where(Professional.idnat == identity.idnat))
            if professional is None:
                professional = Professional(idnat=identity.idnat)
                session.add(professional)
            professional.rpps = identity.rpps or professional.rpps
            professional.psc_sub = identity.sub
            professional.given_name = identity.given_name or professional.given_name or ""
            professional.family_name = identity.family_name or professional.family_name or ""
            professional.profession_code = identity.profession_code or professional.profession_code
            professional.last_login_at = now
            await session.flush()
            activities: list[Activity] = []
            seen: set[str] = set()
            for activity in identity.activities:
                if not activity.structure_idnat or activity.structure_idnat in seen:
                    continue
                seen.add(activity.structure_idnat)
                structure = await self._structure(session, activity)
                membership = await session.scalar(
                    select(Membership).where(
                        Membership.structure_id == structure.id, Membership.professional_id == professional.id
                    )
                )
                if membership is None:
                    membership = Membership(
                        structure_id=structure.id,
                        professional_id=professional.id,
                        role=MembershipRole.MEMBER,
                        status=MembershipStatus.PENDING,
                    )
                    session.add(membership)
                elif membership.status == MembershipStatus.REMOVED:
                    membership.status = MembershipStatus.PENDING  # asks again; the titulaire decides
                if activity.is_titulaire:
                    membership.role = MembershipRole.TITULAIRE
                    membership.status = MembershipStatus.ACTIVE
                await session.flush()
                activities.append(
                    Activity(
                        structure.id,
                        structure.idnat,
                        structure.name,
                        activity.city,
                        activity.is_titulaire,
                        membership.status,
                    )
                )
            await self._audit.record(
                "login",
                actor=professional.idnat,
                session=session,
                details={"authMode": auth_mode or "", "acr": acr or "", "activities": len(activities)},
            )
        return LoggedIn(professional, activities)

    @staticmethod
    async def _structure(session: AsyncSession, activity: PscActivity) -> Structure:
        structure = await session.scalar(select(Structure).where(Structure.idnat == activity.structure_idnat))
        if structure is None:
            structure = Structure(
                idnat=activity.structure_idnat or "",
                finess=activity.finess,
                siret=activity.siret,
                name=activity.raison_sociale or "",
            )
            session.add(structure)
            await session.flush()
        elif activity.raison_sociale and structure.name != activity.raison_sociale:
            structure.name = activity.raison_sociale
        return structure
