"""Demo data for the PSC sandbox: the sandbox people, their mailboxes, the pharmacy and its team.

Idempotent: run at every start in dev. Production never runs it (the sandbox is refused there).
The pharmacy's titulaire manages the team and may read and send from its organisational mailbox;
the adjoint is an active member who may read it, so the team page and the grants have something
to show. Everyone else asks to join when they log in.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import (
    Mailbox,
    MailboxGrant,
    MailboxKind,
    Membership,
    MembershipRole,
    MembershipStatus,
    Professional,
    Structure,
)
from enrolment.psc_sandbox.people import (
    JULIEN_LEFEVRE,
    PROFESSIONALS,
    STRUCTURES,
    SandboxActivity,
    SandboxProfessional,
    SandboxStructure,
)


async def seed_sandbox(db: Database) -> None:
    async with db.transaction() as session:
        structures = {s.idnat: await _structure(session, s) for s in STRUCTURES}
        for person in PROFESSIONALS:
            professional = await _professional(session, person)
            for activity in person.activities:
                await _membership(session, person, professional, structures[activity.structure.idnat], activity)


async def _mailbox(session: AsyncSession, address: str, **fields: object) -> Mailbox:
    mailbox = await session.scalar(select(Mailbox).where(Mailbox.address == address))
    if mailbox is None:
        mailbox = Mailbox(address=address, **fields)
        session.add(mailbox)
        await session.flush()
    return mailbox


async def _structure(session: AsyncSession, sandbox: SandboxStructure) -> Structure:
    structure = await session.scalar(select(Structure).where(Structure.idnat == sandbox.idnat))
    if structure is None:
        structure = Structure(
            idnat=sandbox.idnat, finess=sandbox.finess or None, siret=sandbox.siret or None, name=sandbox.name
        )
        session.add(structure)
        await session.flush()
    if sandbox.mailbox:
        await _mailbox(
            session,
            sandbox.mailbox,
            kind=MailboxKind.ORGANISATIONAL,
            structure_id=structure.id,
            display_name=sandbox.name,
        )
    return structure


async def _professional(session: AsyncSession, person: SandboxProfessional) -> Professional:
    professional = await session.scalar(select(Professional).where(Professional.idnat == person.idnat))
    if professional is None:
        professional = Professional(
            idnat=person.idnat,
            rpps=person.rpps,
            given_name=person.given_name,
            family_name=person.family_name,
            profession_code=person.profession_code,
        )
        session.add(professional)
        await session.flush()
    await _mailbox(
        session,
        person.mailbox,
        kind=MailboxKind.NOMINATIVE,
        professional_id=professional.id,
        display_name=person.display_name,
    )
    return professional


async def _membership(
    session: AsyncSession,
    person: SandboxProfessional,
    professional: Professional,
    structure: Structure,
    activity: SandboxActivity,
) -> None:
    existing = await session.scalar(
        select(Membership.id).where(
            Membership.structure_id == structure.id, Membership.professional_id == professional.id
        )
    )
    if existing is not None:
        return
    titulaire = person.profession_code == "21" and activity.section_pharmacien == "A"
    active = titulaire or person is JULIEN_LEFEVRE
    session.add(
        Membership(
            structure_id=structure.id,
            professional_id=professional.id,
            role=MembershipRole.TITULAIRE if titulaire else MembershipRole.MEMBER,
            status=MembershipStatus.ACTIVE if active else MembershipStatus.PENDING,
        )
    )
    if active and activity.structure.mailbox:
        mailbox = await _mailbox(session, activity.structure.mailbox)
        session.add(
            MailboxGrant(mailbox_id=mailbox.id, professional_id=professional.id, can_read=True, can_send=titulaire)
        )
