"""Visit and on-call alerts: raise, route, acknowledge, escalate. No HTTP here.

* A **visit alert** goes to one colleague of the structure, or to everyone of the team who is
  ``en_visite`` right now (the raiser excepted). It does not escalate.
* An **on-call alert** goes to the first person on call now (rota order). Not acknowledged within
  ``alerts.escalation_delay_s``, it escalates to the next person on call, then (last step, or when
  nobody else is on call) to the titulaire and managers; then it stops escalating and stays open.
  The rota is read again at each step, so a shift that starts meanwhile counts.
* The text is encrypted at rest (:mod:`backend.alerts.crypto`) and only recipients and the raiser
  may read it. Audit events, logs, errors and notify hooks carry identifiers only.

Several instances may run :meth:`AlertService.run_due` at once: each step is a compare-and-set on
``alert.step`` (and a row lock on PostgreSQL), so a step happens once.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.alerts import members
from backend.alerts.crypto import AlertCipher, SealedText, UnreadableTextError
from backend.alerts.rota import on_call_order
from contracts.alerts import SCOPE_RAISE_ONCALL, SCOPE_RAISE_VISIT, AlertKind, AlertStatus, AvailabilityMode
from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import (
    Alert,
    AlertStep,
    Availability,
    Membership,
    MembershipStatus,
    Professional,
    ServiceClient,
)
from core.device_registry import Actor
from core.errors import ConflictError, DomainError, ForbiddenError, NotFoundError
from core.logging import get_logger
from core.settings import AlertSettings

log = get_logger("mssc.alerts")

ACTIVE = (AlertStatus.OPEN, AlertStatus.ESCALATED)


class Reason:
    """Why someone was notified (``AlertStep.reason``)."""

    TARGET = "target"
    TEAM = "team"
    ONCALL = "oncall"
    MANAGER = "manager"


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """What notify hooks receive: identifiers and state only, never the text (nor its ciphertext)."""

    id: uuid.UUID
    kind: AlertKind
    structure_id: uuid.UUID
    status: AlertStatus
    step: int
    #: Why these recipients: ``target``, ``team``, ``oncall`` or ``manager``.
    reason: str


#: ``callback(alert, recipients, step)``: recipients are professional ids.
NotifyHook = Callable[[AlertNotice, tuple[uuid.UUID, ...], int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Raiser:
    """Who raises an alert, for which structure: a professional (phone or web) or a service client."""

    structure_id: uuid.UUID
    professional_id: uuid.UUID | None = None
    idnat: str | None = None
    device_id: uuid.UUID | None = None
    service_client_id: uuid.UUID | None = None
    #: A service client's scopes; ``None`` for a professional (membership is checked instead).
    scopes: frozenset[str] | None = None

    @classmethod
    def professional(cls, actor: Actor) -> Raiser:
        structure_id, professional_id = members.require_structure(actor)
        return cls(structure_id, professional_id, actor.idnat, actor.device_id)

    @property
    def actor_kind(self) -> str:
        return "service" if self.service_client_id else "professional"

    @property
    def actor(self) -> str | None:
        return str(self.service_client_id) if self.service_client_id else self.idnat


@dataclass(slots=True)
class AlertRecord:
    """An alert as its readers see it, without its text: the row, who was notified, their names."""

    alert: Alert
    steps: list[AlertStep]
    names: dict[uuid.UUID, str] = field(default_factory=dict)
    service_name: str | None = None

    def notified(self, professional_id: uuid.UUID) -> bool:
        return any(s.professional_id == professional_id for s in self.steps)

    def awaiting(self, professional_id: uuid.UUID) -> bool:
        return self.alert.status in ACTIVE and self.notified(professional_id)


def uuid7() -> uuid.UUID:
    """RFC 9562 version 7 (time-ordered, like the other primary keys): the id is needed before the
    insert, as the associated data of the text's encryption."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value & ((1 << 128) - 1))


def notice(alert: Alert, reason: str) -> AlertNotice:
    return AlertNotice(
        id=alert.id,
        kind=AlertKind(alert.kind),
        structure_id=alert.structure_id,
        status=AlertStatus(alert.status),
        step=alert.step,
        reason=reason,
    )


class AlertService:
    def __init__(self, *, db: Database, audit: AuditTrail, cipher: AlertCipher, settings: AlertSettings) -> None:
        self._db = db
        self._audit = audit
        self._cipher = cipher
        self.settings = settings
        self._hooks: list[NotifyHook] = []

    # hooks -----------------------------------------------------------------------------------

    def on_notify(self, hook: NotifyHook) -> None:
        """``hook(alert, recipients, step)`` after each notification is committed (raise, escalation)."""
        self._hooks.append(hook)

    async def _notify(self, alert: AlertNotice, recipients: Sequence[uuid.UUID], step: int) -> None:
        for hook in self._hooks:
            try:
                await hook(alert, tuple(recipients), step)
            except Exception as exc:  # noqa: BLE001 - a push failing must not undo the alert
                log.error("alert_hook_failed", alert_id=str(alert.id), error_type=type(exc).__name__)

    # raising ---------------------------------------------------------------------------------

    def _clean_text(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "the alert needs a text")
        if len(text) > self.settings.text_max_length:
            raise DomainError(
                ErrorCode.VALIDATION_FAILED, f"the text is limited to {self.settings.text_max_length} characters"
            )
        if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "the text holds control characters")
        return text

    @staticmethod
    def _check_scope(raiser: Raiser, scope: str) -> None:
        if raiser.scopes is not None and scope not in raiser.scopes:
            raise ForbiddenError(ErrorCode.INSUFFICIENT_SCOPE, f"this key lacks the {scope} scope")

    async def _check_raiser(self, session: AsyncSession, raiser: Raiser) -> None:
        if (
            raiser.professional_id is not None
            and raiser.service_client_id is None
            and await members.membership(session, raiser.structure_id, raiser.professional_id) is None
        ):
            raise ForbiddenError(ErrorCode.FORBIDDEN, "not an active member of this structure")

    async def _new_alert(
        self, session: AsyncSession, raiser: Raiser, kind: AlertKind, text: str, **fields: Any
    ) -> Alert:
        alert_id = uuid7()
        sealed = self._cipher.seal(text, alert_id=alert_id, structure_id=raiser.structure_id)
        alert = Alert(
            id=alert_id,
            kind=kind,
            structure_id=raiser.structure_id,
            raised_by_professional_id=raiser.professional_id,
            raised_by_device_id=raiser.device_id,
            raised_by_service_id=raiser.service_client_id,
            text_nonce=sealed.nonce,
            text_ciphertext=sealed.ciphertext,
            status=AlertStatus.OPEN,
            step=0,
            **fields,
        )
        session.add(alert)
        await session.flush()
        return alert

    async def _add_steps(
        self, session: AsyncSession, alert: Alert, recipients: Sequence[uuid.UUID], reason: str, at: dt.datetime
    ) -> list[str]:
        for professional_id in recipients:
            session.add(
                AlertStep(
                    alert_id=alert.id, professional_id=professional_id, step=alert.step, reason=reason, notified_at=at
                )
            )
        await session.flush()
        idnats = await session.execute(
            select(Professional.id, Professional.idnat).where(Professional.id.in_(recipients))
        )
        by_id = dict(idnats.tuples().all())
        return [by_id[p] for p in recipients if p in by_id]

    async def raise_visit(
        self,
        raiser: Raiser,
        *,
        text: str,
        target_id: uuid.UUID | None = None,
        target_rpps: str | None = None,
        team: bool = False,
        now: dt.datetime | None = None,
    ) -> AlertNotice:
        """For one colleague (``target_id`` or ``target_rpps``) or the team on visit (``team``)."""
        self._check_scope(raiser, SCOPE_RAISE_VISIT)
        text = self._clean_text(text)
        has_target = target_id is not None or target_rpps is not None
        if has_target == team:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "name one colleague, or the team")
        at = now or dt.datetime.now(dt.UTC)
        async with self._db.transaction() as session:
            await self._check_raiser(session, raiser)
            if team:
                recipients = await self._team_on_visit(session, raiser)
                reason = Reason.TEAM
            else:
                recipients = [await self._target(session, raiser, target_id, target_rpps)]
                reason = Reason.TARGET
            alert = await self._new_alert(
                session,
                raiser,
                AlertKind.VISIT,
                text,
                target_professional_id=None if team else recipients[0],
                to_team=team,
            )
            notified = await self._add_steps(session, alert, recipients, reason, at)
            await self._record(
                session, "alert.raised", raiser, alert, {"kind": "visit", "team": team, "notified": notified}
            )
            result = notice(alert, reason)
        await self._notify(result, recipients, 0)
        return result

    async def raise_oncall(self, raiser: Raiser, *, text: str, now: dt.datetime | None = None) -> AlertNotice:
        """For whoever of the structure is on call now (the titulaire and managers when nobody is)."""
        self._check_scope(raiser, SCOPE_RAISE_ONCALL)
        text = self._clean_text(text)
        at = now or dt.datetime.now(dt.UTC)
        async with self._db.transaction() as session:
            await self._check_raiser(session, raiser)
            rota = [p for p in await on_call_order(session, raiser.structure_id, at) if p != raiser.professional_id]
            if rota:
                recipients, reason = rota[:1], Reason.ONCALL
            else:
                recipients = [
                    p for p in await members.managers(session, raiser.structure_id) if p != raiser.professional_id
                ]
                reason = Reason.MANAGER
            if not recipients:
                raise ConflictError(ErrorCode.ALERT_NO_RECIPIENT, "nobody is on call and no manager can be reached")
            alert = await self._new_alert(
                session,
                raiser,
                AlertKind.ONCALL,
                text,
                next_escalation_at=at + dt.timedelta(seconds=self.settings.escalation_delay_s),
            )
            notified = await self._add_steps(session, alert, recipients, reason, at)
            await self._record(
                session, "alert.raised", raiser, alert, {"kind": "oncall", "reason": reason, "notified": notified}
            )
            result = notice(alert, reason)
        await self._notify(result, recipients, 0)
        return result

    async def _team_on_visit(self, session: AsyncSession, raiser: Raiser) -> list[uuid.UUID]:
        team = [m.professional_id for m in await members.active_members(session, raiser.structure_id)]
        on_visit = set(
            (
                await session.scalars(
                    select(Availability.professional_id).where(
                        Availability.professional_id.in_(team), Availability.mode == AvailabilityMode.EN_VISITE
                    )
                )
            ).all()
        )
        recipients = [p for p in team if p in on_visit and p != raiser.professional_id]
        if not recipients:
            raise ConflictError(ErrorCode.ALERT_NO_RECIPIENT, "nobody of the team is on visit")
        return recipients

    async def _target(
        self, session: AsyncSession, raiser: Raiser, target_id: uuid.UUID | None, target_rpps: str | None
    ) -> uuid.UUID:
        if target_id is None:
            target_id = await session.scalar(select(Professional.id).where(Professional.idnat == f"8{target_rpps}"))
        if target_id is None or await members.membership(session, raiser.structure_id, target_id) is None:
            raise NotFoundError(ErrorCode.MEMBER_NOT_FOUND, "the target is not an active member of this structure")
        if target_id == raiser.professional_id:
            raise ConflictError(ErrorCode.ALERT_NO_RECIPIENT, "an alert is for someone else")
        return target_id

    async def _record(
        self, session: AsyncSession, action: str, raiser: Raiser, alert: Alert, details: dict[str, Any]
    ) -> None:
        await self._audit.record(
            action,
            actor=raiser.actor,
            actor_kind=raiser.actor_kind,
            structure_id=alert.structure_id,
            device_id=raiser.device_id,
            target=str(alert.id),
            details=details,
            session=session,
        )

    # reading ---------------------------------------------------------------------------------

    async def _load(self, session: AsyncSession, alert_id: uuid.UUID, professional_id: uuid.UUID) -> AlertRecord:
        """The alert if this professional was notified of it or raised it; else ``alert_not_found``."""
        alert = await session.get(Alert, alert_id)
        if alert is None:
            raise NotFoundError(ErrorCode.ALERT_NOT_FOUND, "no such alert")
        records = await self._records(session, [alert])
        record = records[0]
        if not record.notified(professional_id) and alert.raised_by_professional_id != professional_id:
            raise NotFoundError(ErrorCode.ALERT_NOT_FOUND, "no such alert")
        if await members.membership(session, alert.structure_id, professional_id) is None:
            raise NotFoundError(ErrorCode.ALERT_NOT_FOUND, "no such alert")  # left the team since
        return record

    async def _records(self, session: AsyncSession, alerts: Sequence[Alert]) -> list[AlertRecord]:
        ids = [a.id for a in alerts]
        steps = (
            await session.scalars(select(AlertStep).where(AlertStep.alert_id.in_(ids)).order_by(AlertStep.step))
        ).all()
        by_alert: dict[uuid.UUID, list[AlertStep]] = {i: [] for i in ids}
        for s in steps:
            by_alert[s.alert_id].append(s)
        people: set[uuid.UUID] = {s.professional_id for s in steps}
        for a in alerts:
            people.update(
                p for p in (a.raised_by_professional_id, a.target_professional_id, a.acknowledged_by) if p is not None
            )
        names = await members.names(session, list(people))
        services = {a.raised_by_service_id for a in alerts if a.raised_by_service_id}
        service_names: dict[uuid.UUID, str] = {}
        if services:
            rows = await session.execute(
                select(ServiceClient.id, ServiceClient.name).where(ServiceClient.id.in_(services))
            )
            service_names = dict(rows.tuples().all())
        return [
            AlertRecord(
                a,
                by_alert[a.id],
                names,
                service_names.get(a.raised_by_service_id) if a.raised_by_service_id else None,
            )
            for a in alerts
        ]

    async def get(self, alert_id: uuid.UUID, professional_id: uuid.UUID) -> AlertRecord:
        async with self._db.read() as session:
            return await self._load(session, alert_id, professional_id)

    async def text_for(self, alert_id: uuid.UUID, professional_id: uuid.UUID, *, actor: Actor | None = None) -> str:
        """The decrypted text, for a recipient or the raiser only. Each reading is audited."""
        async with self._db.transaction() as session:
            record = await self._load(session, alert_id, professional_id)
            alert = record.alert
            try:
                text = self._cipher.open(
                    SealedText(alert.text_nonce, alert.text_ciphertext),
                    alert_id=alert.id,
                    structure_id=alert.structure_id,
                )
            except UnreadableTextError:
                log.warning("alert_text_unreadable", alert_id=str(alert.id))
                raise DomainError(
                    ErrorCode.ALERT_TEXT_UNREADABLE, "the alert text can no longer be read (the server key changed)"
                ) from None
            await self._audit.record(
                "alert.read",
                actor=actor.idnat if actor else None,
                structure_id=alert.structure_id,
                device_id=actor.device_id if actor else None,
                target=str(alert.id),
                session=session,
            )
        return text

    async def list_for(
        self, professional_id: uuid.UUID, now: dt.datetime | None = None, *, limit: int = 100
    ) -> list[AlertRecord]:
        """Alerts this professional was notified of or raised, in structures they still belong to:
        active ones, then recent ones; newest first."""
        at = now or dt.datetime.now(dt.UTC)
        since = at - dt.timedelta(days=self.settings.recent_days)
        mine = select(AlertStep.alert_id).where(AlertStep.professional_id == professional_id)
        teams = select(Membership.structure_id).where(
            Membership.professional_id == professional_id, Membership.status == MembershipStatus.ACTIVE
        )
        async with self._db.read() as session:
            alerts = list(
                (
                    await session.scalars(
                        select(Alert)
                        .where(
                            or_(Alert.id.in_(mine), Alert.raised_by_professional_id == professional_id),
                            Alert.structure_id.in_(teams),
                            or_(Alert.status.in_(ACTIVE), Alert.created_at >= since),
                        )
                        .order_by(Alert.created_at.desc())
                        .limit(limit)
                    )
                ).all()
            )
            alerts.sort(key=lambda a: a.status not in ACTIVE)  # stable: newest first within each group
            return await self._records(session, alerts) if alerts else []

    # acknowledging ---------------------------------------------------------------------------

    async def acknowledge(
        self,
        alert_id: uuid.UUID,
        professional: Actor,
        device_id: uuid.UUID | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> AlertRecord:
        """ "Je prends": a notified professional takes the alert; escalation stops."""
        if professional.professional_id is None:
            raise ForbiddenError(ErrorCode.FORBIDDEN, "only a professional acknowledges an alert")
        me = professional.professional_id
        device_id = device_id or professional.device_id
        at = now or dt.datetime.now(dt.UTC)
        async with self._db.transaction() as session:
            record = await self._load(session, alert_id, me)
            alert = record.alert
            if not record.notified(me):  # the raiser sees the alert but does not take it
                raise ForbiddenError(ErrorCode.FORBIDDEN, "only a notified professional takes the alert")
            if alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == me:
                return record  # idempotent
            done = cast(
                "CursorResult[Any]",
                await session.execute(
                    update(Alert)
                    .where(Alert.id == alert.id, Alert.status.in_(ACTIVE))
                    .values(
                        status=AlertStatus.ACKNOWLEDGED,
                        acknowledged_by=me,
                        acknowledged_device_id=device_id,
                        acknowledged_at=at,
                        next_escalation_at=None,
                    )
                    .execution_options(synchronize_session=False)
                ),
            )
            if done.rowcount != 1:
                raise ConflictError(ErrorCode.ALERT_NOT_OPEN, "the alert was already taken or closed")
            step = next(s for s in record.steps if s.professional_id == me)
            step.acknowledged_at = at
            await self._audit.record(
                "alert.acknowledged",
                actor=professional.idnat,
                structure_id=alert.structure_id,
                device_id=device_id,
                target=str(alert.id),
                details={"kind": alert.kind, "step": alert.step},
                session=session,
            )
            await session.refresh(alert)
            record.names.update(await members.names(session, [me]))
        return record

    # escalating ------------------------------------------------------------------------------

    async def due_escalations(self, now: dt.datetime | None = None, *, limit: int = 100) -> list[uuid.UUID]:
        """On-call alerts not acknowledged within the delay, oldest deadline first."""
        at = now or dt.datetime.now(dt.UTC)
        async with self._db.read() as session:
            rows = await session.scalars(
                select(Alert.id)
                .where(Alert.status.in_(ACTIVE), Alert.next_escalation_at.is_not(None), Alert.next_escalation_at <= at)
                .order_by(Alert.next_escalation_at)
                .limit(limit)
            )
            return list(rows.all())

    async def escalate(self, alert: uuid.UUID | AlertNotice, now: dt.datetime | None = None) -> AlertNotice | None:
        """One escalation step, if still due: the next person on call, else the titulaire and managers.

        Returns the step's notice, or ``None`` when there was nothing to do (acknowledged meanwhile,
        another instance did it, or nobody is left: then escalation stops and the alert stays open).
        """
        alert_id = alert.id if isinstance(alert, AlertNotice) else alert
        at = now or dt.datetime.now(dt.UTC)
        async with self._db.transaction() as session:
            row = await session.get(Alert, alert_id, with_for_update=True)
            if row is None or row.status not in ACTIVE or row.next_escalation_at is None or row.next_escalation_at > at:
                return None
            seen_step = row.step
            notified = set(
                (await session.scalars(select(AlertStep.professional_id).where(AlertStep.alert_id == row.id))).all()
            )
            exclude = notified | ({row.raised_by_professional_id} if row.raised_by_professional_id else set())
            recipients, reason = await self._next_recipients(session, row, seen_step + 1, exclude, at)
            if not recipients:
                stopped = await self._cas(session, row, seen_step, next_escalation_at=None)
                if stopped:
                    await self._audit.record(
                        "alert.escalation_exhausted",
                        actor=None,
                        actor_kind="system",
                        structure_id=row.structure_id,
                        target=str(row.id),
                        details={"step": seen_step},
                        session=session,
                    )
                return None
            moved = await self._cas(
                session,
                row,
                seen_step,
                step=seen_step + 1,
                status=AlertStatus.ESCALATED,
                next_escalation_at=at + dt.timedelta(seconds=self.settings.escalation_delay_s),
            )
            if not moved:
                return None
            await session.refresh(row)
            idnats = await self._add_steps(session, row, recipients, reason, at)
            await self._audit.record(
                "alert.escalated",
                actor=None,
                actor_kind="system",
                structure_id=row.structure_id,
                target=str(row.id),
                details={"step": row.step, "reason": reason, "notified": idnats},
                session=session,
            )
            result = notice(row, reason)
        await self._notify(result, recipients, result.step)
        return result

    async def _next_recipients(
        self, session: AsyncSession, alert: Alert, step: int, exclude: set[uuid.UUID], at: dt.datetime
    ) -> tuple[list[uuid.UUID], str]:
        if step > self.settings.max_steps:
            return [], ""
        if step < self.settings.max_steps:  # the last step is kept for the managers
            rota = [p for p in await on_call_order(session, alert.structure_id, at) if p not in exclude]
            if rota:
                return rota[:1], Reason.ONCALL
        managers = [p for p in await members.managers(session, alert.structure_id) if p not in exclude]
        return managers, Reason.MANAGER

    @staticmethod
    async def _cas(session: AsyncSession, alert: Alert, seen_step: int, **values: Any) -> bool:
        """Change the alert only if nobody moved it since we read it (one step happens once)."""
        result = cast(
            "CursorResult[Any]",
            await session.execute(
                update(Alert)
                .where(Alert.id == alert.id, Alert.step == seen_step, Alert.status.in_(ACTIVE))
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        return result.rowcount == 1

    async def run_due(self, now: dt.datetime | None = None) -> list[AlertNotice]:
        """Every escalation due now (the background loop calls this)."""
        done = []
        for alert_id in await self.due_escalations(now):
            step = await self.escalate(alert_id, now)
            if step is not None:
                done.append(step)
        return done
