"""Durable state: professionals, structures, memberships, mailboxes, grants, devices, audit.

Message content is never stored. Identifiers follow the Annuaire Santé: ``idnat`` is ``8`` + RPPS
(or ``0`` + ADELI) for people, ``1`` + FINESS (or ``3`` + SIRET) for structures.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from contracts.alerts import AlertStatus, AvailabilityMode

JsonB = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MembershipRole(StrEnum):
    TITULAIRE = "titulaire"  # pharmacist section A owning the officine: manages the team
    MANAGER = "manager"  # delegated by the titulaire (rota, alerts)
    MEMBER = "member"


class MembershipStatus(StrEnum):
    PENDING = "pending"  # asked to join after a PSC login for this structure
    ACTIVE = "active"
    REMOVED = "removed"


class MailboxKind(StrEnum):
    NOMINATIVE = "nominative"
    ORGANISATIONAL = "organisational"
    APPLICATIVE = "applicative"


class BindingKind(StrEnum):
    WEBAUTHN = "webauthn"
    ES256 = "es256"


class Professional(UUIDv7AuditBase):
    __tablename__ = "professional"

    idnat: Mapped[str] = mapped_column(String(32), unique=True)
    rpps: Mapped[str | None] = mapped_column(String(16), index=True)
    psc_sub: Mapped[str | None] = mapped_column(String(128))
    given_name: Mapped[str] = mapped_column(String(128), default="")
    family_name: Mapped[str] = mapped_column(String(128), default="")
    profession_code: Mapped[str | None] = mapped_column(String(8))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    @property
    def display_name(self) -> str:
        """French administrative form, whatever case PSC sent: "Hélène GARNIER"."""
        return f"{self.given_name.title()} {self.family_name.upper()}".strip() or self.idnat


class Structure(UUIDv7AuditBase):
    __tablename__ = "structure"

    idnat: Mapped[str] = mapped_column(String(32), unique=True)
    finess: Mapped[str | None] = mapped_column(String(16))
    siret: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256), default="")


class Membership(UUIDv7AuditBase):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("structure_id", "professional_id"),)

    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"))
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=MembershipRole.MEMBER)
    status: Mapped[str] = mapped_column(String(16), default=MembershipStatus.PENDING)

    structure: Mapped[Structure] = relationship(lazy="joined", innerjoin=True)
    professional: Mapped[Professional] = relationship(lazy="joined", innerjoin=True)


class Mailbox(UUIDv7AuditBase):
    __tablename__ = "mailbox"

    address: Mapped[str] = mapped_column(String(320), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    professional_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("professional.id", ondelete="CASCADE"), index=True
    )
    structure_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")


class MailboxGrant(UUIDv7AuditBase):
    """A member's rights on an organisational mailbox, given by the titulaire."""

    __tablename__ = "mailbox_grant"
    __table_args__ = (UniqueConstraint("mailbox_id", "professional_id"),)

    mailbox_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"), index=True)
    can_read: Mapped[bool] = mapped_column(Boolean, default=True)
    can_send: Mapped[bool] = mapped_column(Boolean, default=False)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professional.id"))


class Device(UUIDv7AuditBase):
    """A phone: a key the professional proved, plus a push address. Never holds mail."""

    __tablename__ = "device"

    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"), index=True)
    #: The structure the professional acted for when enrolling (scopes its organisational grants).
    structure_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("structure.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    binding: Mapped[str] = mapped_column(String(16))
    #: RFC 7638 thumbprint of the device's ES256 proof key (DPoP ``cnf.jkt``).
    jkt: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JsonB)
    webauthn_credential_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    webauthn_public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    webauthn_sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    webauthn_aaguid: Mapped[str | None] = mapped_column(String(36))
    webauthn_device_type: Mapped[str | None] = mapped_column(String(16))
    attestation_format: Mapped[str | None] = mapped_column(String(32))
    push_provider: Mapped[str | None] = mapped_column(String(16))
    push_token: Mapped[str | None] = mapped_column(String(512))
    #: When the phone gave us this token: APNs says since when a token is invalid (410), and a token
    #: given again after that is kept.
    push_token_registered_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    #: Set when the push provider said the token is dead; the phone is asked for a new one.
    push_token_dead_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professional.id"))
    revoke_reason: Mapped[str | None] = mapped_column(String(32))
    wipe_acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    professional: Mapped[Professional] = relationship(lazy="joined", innerjoin=True, foreign_keys=[professional_id])

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class RefreshToken(UUIDv7AuditBase):
    """Rotating refresh tokens; only a hash is kept. Reuse of a used one revokes its family."""

    __tablename__ = "refresh_token"

    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class _AuditBase(DeclarativeBase):
    registry = orm_registry


class AuditEvent(_AuditBase):
    """Append-only, hash-chained per ``chain`` (a structure id, or ``global``)."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("chain", "seq"), Index("ix_audit_event_structure_at", "structure_id", "at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    structure_id: Mapped[str | None] = mapped_column(String(36))
    device_id: Mapped[str | None] = mapped_column(String(36))
    target: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


metadata = UUIDv7AuditBase.metadata


# ------------------------------------------------------------------------------------------------
# Availability, on-call rota, visit and on-call alerts, service clients (issue "Content-free push")
# ------------------------------------------------------------------------------------------------


class Availability(UUIDv7AuditBase):
    """How a professional wants to be reached, whatever structure they act for."""

    __tablename__ = "availability"

    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"), unique=True)
    mode: Mapped[str] = mapped_column(String(16), default=AvailabilityMode.AU_CABINET)
    #: Quiet hours, local times in ``timezone``; the window may span midnight (22:00 → 07:00).
    quiet_start: Mapped[dt.time | None] = mapped_column(Time())
    quiet_end: Mapped[dt.time | None] = mapped_column(Time())
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")


class OnCallShift(UUIDv7AuditBase):
    """One person on call for a structure between two instants; lower ``rank`` is called first."""

    __tablename__ = "oncall_shift"
    __table_args__ = (Index("ix_oncall_shift_structure_time", "structure_id", "starts_at", "ends_at"),)

    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"))
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    rank: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professional.id", ondelete="SET NULL"))

    professional: Mapped[Professional] = relationship(lazy="joined", innerjoin=True, foreign_keys=[professional_id])


class ServiceClient(UUIDv7AuditBase):
    """A structure's software (or another service) that raises alerts with its own scoped API key.

    The key is ``mssc_sk_<key_id>.<secret>``; only the SHA-256 of the 256-bit secret is kept.
    """

    __tablename__ = "service_client"

    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    #: Space-separated, e.g. ``alerts:raise alerts:oncall``.
    scopes: Mapped[str] = mapped_column(String(256), default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professional.id", ondelete="SET NULL"))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class Alert(UUIDv7AuditBase):
    """A visit or on-call alert. Its text is AES-GCM encrypted (``backend.alerts.crypto``)."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_due", "status", "next_escalation_at"),)

    kind: Mapped[str] = mapped_column(String(8))
    structure_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"), index=True)
    #: A visit alert for one colleague; ``None`` with ``to_team`` for everyone of the team on visit.
    target_professional_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"))
    to_team: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_by_professional_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("professional.id", ondelete="SET NULL"), index=True
    )
    raised_by_device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    raised_by_service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_client.id", ondelete="SET NULL"))
    #: AES-256-GCM: 96-bit nonce, ciphertext with its tag; the alert id is the associated data.
    text_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    text_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN)
    #: Current escalation step (0: the first notification).
    step: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professional.id", ondelete="SET NULL"))
    acknowledged_device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class AlertStep(UUIDv7AuditBase):
    """Who was notified of an alert, at which escalation step and why, and whether they took it."""

    __tablename__ = "alert_step"
    __table_args__ = (UniqueConstraint("alert_id", "professional_id"),)

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professional.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    #: ``target``, ``team``, ``oncall`` (rota order) or ``manager`` (titulaire / manager, last resort).
    reason: Mapped[str] = mapped_column(String(16))
    notified_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
