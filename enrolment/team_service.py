"""Structures and their teams: members, join requests, grants on organisational mailboxes.

The titulaire (pharmacist, section A, of the officine) manages the team. Every change is audited;
a change of grants makes the member's devices refresh their tokens at once (``on_grants_changed``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import (
    Device,
    Mailbox,
    MailboxGrant,
    MailboxKind,
    Membership,
    MembershipRole,
    MembershipStatus,
    Professional,
    Structure,
)
from core.device_registry import Actor
from core.errors import ConflictError, DomainError, ForbiddenError, NotFoundError

GrantsChanged = Callable[[uuid.UUID], Awaitable[None]]
RPPS = re.compile(r"^[0-9]{11}$")
MSSANTE_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")


@dataclass(slots=True)
class MemberView:
    membership: Membership
    professional: Professional
    devices: list[Device] = field(default_factory=list)
    grants: dict[uuid.UUID, MailboxGrant] = field(default_factory=dict)


@dataclass(slots=True)
class TeamView:
    structure: Structure
    members: list[MemberView]
    mailboxes: list[Mailbox]


class TeamService:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit
        self._grants_changed: list[GrantsChanged] = []

    def on_grants_changed(self, hook: GrantsChanged) -> None:
        self._grants_changed.append(hook)

    async def _notify(self, professional_id: uuid.UUID) -> None:
        for hook in self._grants_changed:
            await hook(professional_id)

    async def require_titulaire(self, actor: Actor) -> Structure:
        """The actor is the active titulaire (or manager) of the structure they act for."""
        if actor.structure_id is None or actor.professional_id is None:
            raise ForbiddenError(ErrorCode.NOT_TITULAIRE, "choose the structure you act for first")
        async with self._db.read() as session:
            membership = await session.scalar(
                select(Membership).where(
                    Membership.structure_id == actor.structure_id,
                    Membership.professional_id == actor.professional_id,
                    Membership.status == MembershipStatus.ACTIVE,
                    Membership.role.in_([MembershipRole.TITULAIRE, MembershipRole.MANAGER]),
                )
            )
        if membership is None:
            raise ForbiddenError(ErrorCode.NOT_TITULAIRE, "only the titulaire manages the team")
        return membership.structure

    async def team(self, structure_id: uuid.UUID) -> TeamView:
        async with self._db.read() as session:
            structure = await session.get(Structure, structure_id)
            if structure is None:
                raise NotFoundError(ErrorCode.STRUCTURE_NOT_FOUND, "no such structure")
            memberships = list(
                (
                    await session.scalars(
                        select(Membership)
                        .where(Membership.structure_id == structure_id, Membership.status != MembershipStatus.REMOVED)
                        .order_by(Membership.created_at)
                    )
                )
                .unique()
                .all()
            )
            mailboxes = list(
                (
                    await session.scalars(
                        select(Mailbox)
                        .where(Mailbox.structure_id == structure_id, Mailbox.kind == MailboxKind.ORGANISATIONAL)
                        .order_by(Mailbox.address)
                    )
                ).all()
            )
            people = [m.professional_id for m in memberships]
            devices = list(
                (
                    await session.scalars(
                        select(Device)
                        .where(Device.professional_id.in_(people), Device.revoked_at.is_(None))
                        .order_by(Device.created_at)
                    )
                )
                .unique()
                .all()
            )
            grants = list(
                (
                    await session.scalars(
                        select(MailboxGrant).where(MailboxGrant.mailbox_id.in_([m.id for m in mailboxes]))
                    )
                ).all()
            )
        members = [MemberView(m, m.professional) for m in memberships]
        by_person = {v.professional.id: v for v in members}
        for device in devices:
            if device.professional_id in by_person:
                by_person[device.professional_id].devices.append(device)
        for grant in grants:
            if grant.professional_id in by_person:
                by_person[grant.professional_id].grants[grant.mailbox_id] = grant
        return TeamView(structure, members, mailboxes)

    async def add_by_rpps(self, rpps: str, actor: Actor) -> Membership:
        rpps = rpps.strip()
        if not RPPS.match(rpps):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "an RPPS number has 11 digits")
        structure = await self.require_titulaire(actor)
        async with self._db.transaction() as session:
            idnat = f"8{rpps}"
            professional = await session.scalar(select(Professional).where(Professional.idnat == idnat))
            if professional is None:  # not logged in yet: names are filled at their first PSC login
                professional = Professional(idnat=idnat, rpps=rpps)
                session.add(professional)
                await session.flush()
            membership = await session.scalar(
                select(Membership).where(
                    Membership.structure_id == structure.id, Membership.professional_id == professional.id
                )
            )
            if membership is not None and membership.status == MembershipStatus.ACTIVE:
                raise ConflictError(ErrorCode.ALREADY_MEMBER, "already a member of this structure")
            if membership is None:
                membership = Membership(structure_id=structure.id, professional_id=professional.id)
                session.add(membership)
            membership.status = MembershipStatus.ACTIVE
            await session.flush()
            await self._audit.record(
                "member.added", actor=actor.idnat, structure_id=structure.id, target=idnat, session=session
            )
        return membership

    async def approve(self, membership_id: uuid.UUID, actor: Actor) -> None:
        structure = await self.require_titulaire(actor)
        async with self._db.transaction() as session:
            membership = await session.get(Membership, membership_id)
            if membership is None or membership.structure_id != structure.id:
                raise NotFoundError(ErrorCode.MEMBER_NOT_FOUND, "no such member")
            membership.status = MembershipStatus.ACTIVE
            await self._audit.record(
                "member.approved",
                actor=actor.idnat,
                structure_id=structure.id,
                target=membership.professional.idnat,
                session=session,
            )

    async def remove(self, membership_id: uuid.UUID, actor: Actor) -> uuid.UUID:
        """End a member's access: membership removed, grants deleted, devices refresh at once."""
        structure = await self.require_titulaire(actor)
        async with self._db.transaction() as session:
            membership = await session.get(Membership, membership_id)
            if membership is None or membership.structure_id != structure.id:
                raise NotFoundError(ErrorCode.MEMBER_NOT_FOUND, "no such member")
            if membership.professional_id == actor.professional_id:
                raise ConflictError(ErrorCode.FORBIDDEN, "the titulaire cannot remove themself")
            membership.status = MembershipStatus.REMOVED
            org_boxes = select(Mailbox.id).where(Mailbox.structure_id == structure.id)
            await session.execute(
                delete(MailboxGrant).where(
                    MailboxGrant.professional_id == membership.professional_id, MailboxGrant.mailbox_id.in_(org_boxes)
                )
            )
            person = membership.professional_id
            await self._audit.record(
                "member.removed",
                actor=actor.idnat,
                structure_id=structure.id,
                target=membership.professional.idnat,
                session=session,
            )
        await self._notify(person)
        return person

    async def set_grant(
        self, *, mailbox_id: uuid.UUID, professional_id: uuid.UUID, can_read: bool, can_send: bool, actor: Actor
    ) -> None:
        structure = await self.require_titulaire(actor)
        async with self._db.transaction() as session:
            mailbox = await session.get(Mailbox, mailbox_id)
            if mailbox is None or mailbox.structure_id != structure.id:
                raise NotFoundError(ErrorCode.MAILBOX_NOT_FOUND, "no such mailbox")
            member = await session.scalar(
                select(Membership).where(
                    Membership.structure_id == structure.id,
                    Membership.professional_id == professional_id,
                    Membership.status == MembershipStatus.ACTIVE,
                )
            )
            if member is None:
                raise NotFoundError(ErrorCode.MEMBER_NOT_FOUND, "not an active member")
            grant = await session.scalar(
                select(MailboxGrant).where(
                    MailboxGrant.mailbox_id == mailbox_id, MailboxGrant.professional_id == professional_id
                )
            )
            can_read = can_read or can_send  # sending from a mailbox one cannot read makes no sense
            if grant is None:
                grant = MailboxGrant(
                    mailbox_id=mailbox_id, professional_id=professional_id, granted_by=actor.professional_id
                )
                session.add(grant)
            grant.can_read, grant.can_send = can_read, can_send
            await self._audit.record(
                "grant.changed",
                actor=actor.idnat,
                structure_id=structure.id,
                target=member.professional.idnat,
                details={"mailbox": str(mailbox_id), "read": can_read, "send": can_send},
                session=session,
            )
        await self._notify(professional_id)

    async def add_mailbox(self, *, address: str, display_name: str, actor: Actor) -> Mailbox:
        structure = await self.require_titulaire(actor)
        address = address.strip().lower()
        if not MSSANTE_ADDRESS.match(address):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "not a valid mailbox address")
        async with self._db.transaction() as session:
            if await session.scalar(select(Mailbox.id).where(Mailbox.address == address)) is not None:
                raise ConflictError(ErrorCode.VALIDATION_FAILED, "this mailbox is already registered")
            mailbox = Mailbox(
                address=address,
                kind=MailboxKind.ORGANISATIONAL,
                structure_id=structure.id,
                display_name=display_name.strip()[:256] or structure.name,
            )
            session.add(mailbox)
            await session.flush()
            await self._audit.record(
                "mailbox.added", actor=actor.idnat, structure_id=structure.id, target=str(mailbox.id), session=session
            )
        return mailbox
