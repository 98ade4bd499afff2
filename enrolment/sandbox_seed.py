"""Demo data for the PSC sandbox: the sandbox people, their mailboxes, the pharmacy and its team.

Idempotent: run at every start in dev. Production never runs it (the sandbox is refused there).
The pharmacy's titulaire manages the team; the adjoint is an active member who may read the
pharmacy's organisational mailbox, so the team page and the grants have something to show.
"""

from __future__ import annotations

from sqlalchemy import select

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
from enrolment.psc_sandbox.people import JULIEN_LEFEVRE, PROFESSIONALS, STRUCTURES


async def seed_sandbox(db: Database) -> None:
    async with db.transaction() as session:
        structures: dict[str, Structure] = {}
        for s in STRUCTURES:
            structure = await session.scalar(select(Structure).where(Structure.idnat == s.idnat))
            if structure is None:
                structure = Structure(idnat=s.idnat, finess=s.finess or None, siret=s.siret or None, name=s.name)
                session.add(structure)
                await session.flush()
            structures[s.idnat] = structure
            if s.mailbox and await session.scalar(select(Mailbox.id).where(Mailbox.address == s.mailbox)) is None:
                session.add(Mailbox(address=s.mailbox, kind=MailboxKind.ORGANISATIONAL, structure_id=structure.id,
                                    display_name=s.name))
        await session.flush()
        for p in PROFESSIONALS:
            person = await session.scalar(select(Professional).where(Professional.idnat == p.idnat))
            if person is None:
                person = Professional(idnat=p.idnat, rpps=p.rpps, given_name=p.given_name,
                                      family_name=p.family_name, profession_code=p.profession_code)
                session.add(person)
                await session.flush()
            if await session.scalar(select(Mailbox.id).where(Mailbox.address == p.mailbox)) is None:
                session.add(Mailbox(address=p.mailbox, kind=MailboxKind.NOMINATIVE, professional_id=person.id,
                                    display_name=p.display_name))
            for activity in p.activities:
                structure = structures[activity.structure.idnat]
                membership = await session.scalar(select(Membership).where(
                    Membership.structure_id == structure.id, Membership.professional_id == person.id))
                if membership is not None:
                    continue
                titulaire = p.profession_code == "21" and activity.section_pharmacien == "A"
                seeded_member = titulaire or p is JULIEN_LEFEVRE
                session.add(Membership(
                    structure_id=structure.id, professional_id=person.id,
                    role=MembershipRole.TITULAIRE if titulaire else MembershipRole.MEMBER,
                    status=MembershipStatus.ACTIVE if seeded_member else MembershipStatus.PENDING))
                if p is JULIEN_LEFEVRE and activity.structure.mailbox:
                    await session.flush()
                    mailbox = await session.scalar(select(Mailbox).where(Mailbox.address == activity.structure.mailbox))
                    if mailbox is not None:
                        session.add(MailboxGrant(mailbox_id=mailbox.id, professional_id=person.id,
                                                 can_read=True, can_send=False))
        for p in PROFESSIONALS:  # titulaires read and send from their pharmacy's mailbox
            for activity in p.activities:
                if not (p.profession_code == "21" and activity.section_pharmacien == "A" and activity.structure.mailbox):
                    continue
                person = await session.scalar(select(Professional).where(Professional.idnat == p.idnat))
                mailbox = await session.scalar(select(Mailbox).where(Mailbox.address == activity.structure.mailbox))
                if person and mailbox and await session.scalar(select(MailboxGrant.id).where(
                        MailboxGrant.mailbox_id == mailbox.id, MailboxGrant.professional_id == person.id)) is None:
                    session.add(MailboxGrant(mailbox_id=mailbox.id, professional_id=person.id, can_read=True,
                                             can_send=True))
