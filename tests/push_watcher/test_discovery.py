"""Which mailboxes are watched: those with a pushable device, by the token-scope rules (SQLite and
PostgreSQL, through the root ``database`` fixture)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from core.db.engine import Database
from core.db.models import (
    Device,
    Mailbox,
    MailboxGrant,
    MailboxKind,
    Membership,
    MembershipStatus,
    Professional,
    Structure,
)
from push.watcher import push_enabled_mailboxes

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def person() -> Professional:
    return Professional(idnat=f"8{secrets.randbelow(10**11):011d}")


def device(owner: Professional, structure: Structure | None, *, token: str | None = "tok", **extra: object) -> Device:
    return Device(
        professional_id=owner.id,
        structure_id=None if structure is None else structure.id,
        name="phone",
        platform="ios",
        binding="es256",
        jkt=secrets.token_urlsafe(32),
        public_jwk={"kty": "EC"},
        push_provider="apns" if token else None,
        push_token=token,
        **extra,
    )


async def test_only_mailboxes_with_a_pushable_device_are_watched(database: Database) -> None:
    async with database.transaction() as session:
        s1, s2 = Structure(idnat="1" + uuid.uuid4().hex[:9]), Structure(idnat="1" + uuid.uuid4().hex[:9])
        titulaire, no_token, revoked, dead, member = (person() for _ in range(5))
        session.add_all([s1, s2, titulaire, no_token, revoked, dead, member])
        await session.flush()

        def nominative(owner: Professional, address: str) -> Mailbox:
            return Mailbox(address=address, kind=MailboxKind.NOMINATIVE, professional_id=owner.id)

        def organisational(structure: Structure, address: str) -> Mailbox:
            return Mailbox(address=address, kind=MailboxKind.ORGANISATIONAL, structure_id=structure.id)

        watched = nominative(titulaire, "helene.garnier@pharmacien.mssante.fr")
        team = organisational(s1, "pharmacie.tilleuls@pharmacie.mssante.fr")
        unread = organisational(s1, "compta@pharmacie.mssante.fr")
        elsewhere = organisational(s2, "autre@pharmacie.mssante.fr")
        nobody = organisational(s1, "vide@pharmacie.mssante.fr")
        session.add_all(
            [
                watched,
                nominative(no_token, "sans.jeton@pharmacien.mssante.fr"),
                nominative(revoked, "revoque@pharmacien.mssante.fr"),
                nominative(dead, "jeton.mort@pharmacien.mssante.fr"),
                team,
                unread,
                elsewhere,
                nobody,
            ]
        )
        await session.flush()
        session.add_all(
            [
                device(titulaire, s1),
                device(no_token, None, token=None),
                device(revoked, None, revoked_at=NOW),
                device(dead, None, push_token_dead_at=NOW),
                # the member reads the team mailbox from a phone enrolled for that structure
                device(member, s1),
                Membership(structure_id=s1.id, professional_id=member.id, status=MembershipStatus.ACTIVE),
                Membership(structure_id=s2.id, professional_id=member.id, status=MembershipStatus.REMOVED),
                MailboxGrant(mailbox_id=team.id, professional_id=member.id, can_read=True),
                MailboxGrant(mailbox_id=unread.id, professional_id=member.id, can_read=False, can_send=True),
                MailboxGrant(mailbox_id=elsewhere.id, professional_id=member.id, can_read=True),
            ]
        )

    found = await push_enabled_mailboxes(database)
    assert sorted(m.address for m in found) == sorted([watched.address, team.address])
    assert {m.id for m in found} == {str(watched.id), str(team.id)}
    assert "helene" not in repr(found)  # addresses stay out of logs and tracebacks
