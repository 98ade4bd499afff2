"""Phone API of availability, alerts and the rota (token + DPoP), and the service clients' door.

Phones act for the structure their device was enrolled for. A service client authenticates with
its own key (``Authorization: Bearer mssc_sk_…``) on ``POST /api/v1/service/alerts`` only; a
phone's DPoP token presented there is checked as such, then refused ``insufficient_scope``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from litestar import Request, Router, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from backend.alerts import views
from backend.alerts.availability import AvailabilityService
from backend.alerts.rota import RotaService
from backend.alerts.service import AlertService, Raiser
from backend.alerts.service_clients import AuthenticatedService
from backend.device_auth import AuthenticatedDevice
from contracts.alerts import (
    AlertDetail,
    AlertKind,
    AlertList,
    AlertStatus,
    AlertSummary,
    AvailabilityUpdate,
    AvailabilityView,
    QuietHours,
    RaiseAlert,
    RotaView,
    ServiceAlertCreated,
    ServiceRaiseAlert,
)
from contracts.errors import ErrorCode
from core.db.engine import Database
from core.db.models import Device
from core.device_registry import Actor
from core.errors import AuthError, DomainError, ForbiddenError


async def _caller(db: Database, device: AuthenticatedDevice) -> tuple[Actor, uuid.UUID]:
    """The professional behind the device (acting for the device's structure), and their id."""
    async with db.read() as session:
        row = await session.get(Device, device.device_id)
    if row is None or row.revoked_at is not None:
        raise AuthError(ErrorCode.DEVICE_REVOKED, "device revoked", wipe=True)
    actor = Actor(
        idnat=device.idnat,
        professional_id=row.professional_id,
        structure_id=device.structure_id,
        device_id=device.device_id,
    )
    return actor, row.professional_id


def _uuid(value: str, code: ErrorCode) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise DomainError(code, "unknown identifier") from None


def _quiet(hours: QuietHours | None) -> tuple[dt.time, dt.time] | None:
    if hours is None:
        return None
    return dt.time.fromisoformat(hours.start), dt.time.fromisoformat(hours.end)


async def _availability_view(availability: AvailabilityService, professional_id: uuid.UUID) -> AvailabilityView:
    now = dt.datetime.now(dt.UTC)
    state = await availability.get(professional_id)
    return views.availability(
        state,
        mail_push_now=bool(await availability.push_allowed(professional_id, "mail", now)),
        on_call_now=await availability.on_call_now(professional_id, now),
    )


# availability -------------------------------------------------------------------------------------


@get("/me/availability", summary="My availability mode and quiet hours")
async def get_availability(
    device: NamedDependency[AuthenticatedDevice],
    db: NamedDependency[Database],
    availability: NamedDependency[AvailabilityService],
) -> AvailabilityView:
    _, me = await _caller(db, device)
    return await _availability_view(availability, me)


@put("/me/availability", status_code=200, summary="Set my availability mode and quiet hours")
async def set_availability(
    data: JSONBody[AvailabilityUpdate],
    device: NamedDependency[AuthenticatedDevice],
    db: NamedDependency[Database],
    availability: NamedDependency[AvailabilityService],
) -> AvailabilityView:
    actor, me = await _caller(db, device)
    await availability.set(me, mode=data.mode, quiet_hours=_quiet(data.quiet_hours), actor=actor, source="phone")
    return await _availability_view(availability, me)


# alerts -------------------------------------------------------------------------------------------


@get("/alerts", summary="My alerts: open and escalated ones first, then the recent ones (no text)")
async def list_alerts(
    device: NamedDependency[AuthenticatedDevice], db: NamedDependency[Database], alerts: NamedDependency[AlertService]
) -> AlertList:
    _, me = await _caller(db, device)
    return AlertList(alerts=[views.summary(r, me) for r in await alerts.list_for(me)])


@get("/alerts/{alert_id:str}", summary="One alert with its text, for a recipient or its raiser")
async def get_alert(
    alert_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    db: NamedDependency[Database],
    alerts: NamedDependency[AlertService],
) -> AlertDetail:
    actor, me = await _caller(db, device)
    key = _uuid(alert_id, ErrorCode.ALERT_NOT_FOUND)
    text = await alerts.text_for(key, me, actor=actor)
    record = await alerts.get(key, me)
    return views.detail(record, text, me)


@post("/alerts", status_code=201, summary="Raise a visit alert (a colleague or the team) or an on-call alert")
async def raise_alert(
    data: JSONBody[RaiseAlert],
    device: NamedDependency[AuthenticatedDevice],
    db: NamedDependency[Database],
    alerts: NamedDependency[AlertService],
) -> AlertSummary:
    actor, me = await _caller(db, device)
    raiser = Raiser.professional(actor)
    if data.kind == AlertKind.VISIT:
        target = _uuid(data.target_professional_id, ErrorCode.MEMBER_NOT_FOUND) if data.target_professional_id else None
        raised = await alerts.raise_visit(raiser, text=data.text, target_id=target, team=data.team)
    else:
        if data.target_professional_id or data.team:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "an on-call alert goes to whoever is on call")
        raised = await alerts.raise_oncall(raiser, text=data.text)
    return views.summary(await alerts.get(raised.id, me), me)


@post("/alerts/{alert_id:str}/ack", status_code=200, summary='Take an alert ("je prends"): escalation stops')
async def acknowledge_alert(
    alert_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    db: NamedDependency[Database],
    alerts: NamedDependency[AlertService],
) -> AlertSummary:
    actor, me = await _caller(db, device)
    record = await alerts.acknowledge(_uuid(alert_id, ErrorCode.ALERT_NOT_FOUND), actor)
    return views.summary(record, me)


# rota ---------------------------------------------------------------------------------------------


@get("/rota", summary="My structure's on-call rota for the next 7 days, and who is on call now")
async def get_rota(
    device: NamedDependency[AuthenticatedDevice], db: NamedDependency[Database], rota: NamedDependency[RotaService]
) -> RotaView:
    return views.rota(await rota.overview((await _caller(db, device))[0], days=7))


# service clients ----------------------------------------------------------------------------------


async def _service_caller(request: Request[Any, Any, Any], state: State) -> AuthenticatedService:
    authorization = request.headers.get("authorization")
    if authorization is not None and authorization.partition(" ")[0].lower() == "dpop":
        # A phone's token: verified like everywhere else (its proof too), then refused here.
        await state.container.authenticator.authenticate(request)
        raise ForbiddenError(ErrorCode.INSUFFICIENT_SCOPE, "phones raise alerts through /api/v1/alerts")
    client_ip = request.client.host if request.client else "unknown"
    service: AuthenticatedService = await state.container.service_clients.authenticate(
        authorization, client_ip=client_ip
    )
    return service


@post(
    "/alerts",
    status_code=201,
    summary="A service client (the structure's software) raises an alert for its structure",
)
async def service_raise_alert(
    data: JSONBody[ServiceRaiseAlert],
    service_caller: NamedDependency[AuthenticatedService],
    alerts: NamedDependency[AlertService],
) -> ServiceAlertCreated:
    raiser = service_caller.raiser()
    if data.kind == AlertKind.VISIT:
        raised = await alerts.raise_visit(raiser, text=data.text, target_rpps=data.target_rpps, team=data.team)
    else:
        if data.target_rpps or data.team:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "an on-call alert goes to whoever is on call")
        raised = await alerts.raise_oncall(raiser, text=data.text)
    return ServiceAlertCreated(
        id=str(raised.id), kind=raised.kind, status=AlertStatus(raised.status), created_at=dt.datetime.now(dt.UTC)
    )


alerts_api_router = Router(
    path="/api/v1",
    route_handlers=[
        get_availability,
        set_availability,
        list_alerts,
        get_alert,
        raise_alert,
        acknowledge_alert,
        get_rota,
    ],
    tags=["alerts"],
)

service_api_router = Router(
    path="/api/v1/service",
    route_handlers=[service_raise_alert],
    dependencies={"service_caller": Provide(_service_caller)},
    tags=["service"],
    security=[{"ServiceKey": []}],
)
