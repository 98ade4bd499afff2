"""Alerts, availability and the rota as the phone sees them (``contracts.alerts``)."""

from __future__ import annotations

import datetime as dt
import uuid

from backend.alerts.availability import AvailabilityState
from backend.alerts.rota import RotaOverview
from backend.alerts.service import AlertRecord
from contracts.alerts import (
    AlertDetail,
    AlertKind,
    AlertStatus,
    AlertStepView,
    AlertSummary,
    AvailabilityView,
    PersonRef,
    QuietHours,
    RotaView,
    ShiftView,
)


def person(professional_id: uuid.UUID | None, names: dict[uuid.UUID, str]) -> PersonRef | None:
    if professional_id is None:
        return None
    return PersonRef(id=str(professional_id), name=names.get(professional_id, ""))


def _person(professional_id: uuid.UUID, names: dict[uuid.UUID, str]) -> PersonRef:
    return PersonRef(id=str(professional_id), name=names.get(professional_id, ""))


def summary(record: AlertRecord, me: uuid.UUID) -> AlertSummary:
    alert = record.alert
    if alert.raised_by_service_id is not None:
        raised_by_kind, raised_by = "service", record.service_name or "Logiciel de la structure"
    else:
        raised_by_kind = "professional"
        raised_by = record.names.get(alert.raised_by_professional_id, "") if alert.raised_by_professional_id else ""
    return AlertSummary(
        id=str(alert.id),
        kind=AlertKind(alert.kind),
        status=AlertStatus(alert.status),
        structure_id=str(alert.structure_id),
        created_at=alert.created_at,
        raised_by_kind=raised_by_kind,
        raised_by=raised_by,
        target=person(alert.target_professional_id, record.names),
        to_team=alert.to_team,
        step=alert.step,
        awaiting_me=record.awaiting(me),
        acknowledged_by=person(alert.acknowledged_by, record.names),
        acknowledged_at=alert.acknowledged_at,
    )


def detail(record: AlertRecord, text: str, me: uuid.UUID) -> AlertDetail:
    return AlertDetail(
        alert=summary(record, me),
        text=text,
        steps=[
            AlertStepView(
                step=s.step,
                reason=s.reason,
                professional=_person(s.professional_id, record.names),
                notified_at=s.notified_at,
                acknowledged_at=s.acknowledged_at,
            )
            for s in record.steps
        ],
    )


def _hhmm(value: dt.time) -> str:
    return value.strftime("%H:%M")


def availability(state: AvailabilityState, *, mail_push_now: bool, on_call_now: bool) -> AvailabilityView:
    window = state.quiet_hours
    return AvailabilityView(
        mode=state.mode,
        quiet_hours=QuietHours(start=_hhmm(window[0]), end=_hhmm(window[1])) if window else None,
        timezone=state.timezone,
        mail_push_now=mail_push_now,
        on_call_now=on_call_now,
    )


def rota(view: RotaOverview) -> RotaView:
    return RotaView(
        structure_id=str(view.structure_id),
        starts_at=view.starts_at,
        ends_at=view.ends_at,
        shifts=[
            ShiftView(
                id=str(s.id),
                professional=PersonRef(id=str(s.professional_id), name=s.name),
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                rank=s.rank,
            )
            for s in view.shifts
        ],
        on_call_now=[PersonRef(id=str(p), name=n) for p, n in view.on_call_now],
        members=[PersonRef(id=str(p), name=n) for p, n in view.members],
    )
