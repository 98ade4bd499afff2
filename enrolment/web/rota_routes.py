""" "Gardes et alertes" (titulaire / manager): the on-call rota and the service clients' keys; and
"Ma disponibilité" (everyone): availability mode, quiet hours, raising an alert from the web.

Times are entered and shown in Europe/Paris (``datetime-local`` and ``time`` fields) and stored in
UTC. A service client's key is shown once, in the answer to the form that created it (pages are
``no-store``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from backend.alerts import AlertService, AvailabilityService, Raiser, RotaService, ServiceClients, Shift
from contracts.alerts import SCOPE_RAISE_ONCALL, SCOPE_RAISE_VISIT, AvailabilityMode
from contracts.errors import ErrorCode
from core.errors import DomainError
from enrolment.web.deps import actor_of, checked_form, page, parse_uuid, require_web
from enrolment.web.sessions import SessionStore, WebSession

PARIS = ZoneInfo("Europe/Paris")
ROTA_DAYS = 30

MODES = {
    AvailabilityMode.AU_CABINET: ("Au cabinet / à l'officine", "Pas de notification de messagerie sur le téléphone."),
    AvailabilityMode.EN_VISITE: ("En visite", "Notifications pour les messages et les alertes de visite."),
    AvailabilityMode.DE_GARDE: ("De garde", "Alertes de garde prioritaires, messages et alertes de visite."),
    AvailabilityMode.ABSENT: ("Absent", "Rien, sauf les alertes de garde quand vous êtes au planning de garde."),
}
SCOPES = {
    SCOPE_RAISE_VISIT: "Alertes de visite (un membre ou l'équipe en visite)",
    SCOPE_RAISE_ONCALL: "Alertes de garde (la personne de garde, puis escalade)",
}
FLASH = {
    "ajoute": "Créneau de garde ajouté.",
    "supprime": "Créneau de garde supprimé.",
    "revoque": "Clé de service révoquée.",
    "disponibilite": "Disponibilité enregistrée.",
    "alerte": "Alerte envoyée.",
}
_DAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")


def local(value: dt.datetime) -> str:
    """``lun. 23/11 08:00`` in Europe/Paris."""
    at = value.astimezone(PARIS)
    return f"{_DAYS[at.weekday()]} {at:%d/%m %H:%M}"


def _datetime(value: str) -> dt.datetime:
    """A ``datetime-local`` field (``2026-11-23T08:00``), read in Europe/Paris."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "a date and time are needed") from None
    if parsed.tzinfo is not None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "a local date and time are needed")
    return parsed.replace(tzinfo=PARIS)


def _time(value: str) -> dt.time | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = dt.time.fromisoformat(value)
    except ValueError:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "a time is written HH:MM") from None
    return parsed.replace(second=0, microsecond=0, tzinfo=None)


def _rank(value: str) -> int:
    value = value.strip() or "0"
    if not value.isdigit() or len(value) > 2:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "the rank is between 0 and 99")
    return int(value)


def _shift_row(shift: Shift, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": shift.id,
        "name": shift.name,
        "start": local(shift.starts_at),
        "end": local(shift.ends_at),
        "rank": shift.rank,
        "now": shift.covers(now),
    }


async def _rota_page(
    web: WebSession,
    rota: RotaService,
    service_clients: ServiceClients,
    *,
    flash: str | None = None,
    new_key: str | None = None,
    new_key_name: str | None = None,
) -> Template:
    actor = actor_of(web)
    structure = await rota.require_manager(actor)
    now = dt.datetime.now(dt.UTC)
    overview = await rota.overview(actor, now=now, days=ROTA_DAYS)
    clients = await service_clients.of_structure(actor)
    return page(
        "rota.html",
        web,
        structure=structure,
        shifts=[_shift_row(s, now) for s in overview.shifts],
        on_call_now=[name for _, name in overview.on_call_now],
        members=overview.members,
        clients=clients,
        scopes=SCOPES,
        days=ROTA_DAYS,
        new_key=new_key,
        new_key_name=new_key_name,
        local=local,
        nav="rota",
        flash=flash,
    )


@get("/equipe/garde", name="rota")
async def rota_page(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    rota: NamedDependency[RotaService],
    service_clients: NamedDependency[ServiceClients],
) -> Template:
    web = await require_web(request, sessions)
    return await _rota_page(web, rota, service_clients, flash=FLASH.get(request.query_params.get("ok", "")))


@post("/equipe/garde/creneaux", status_code=303)
async def add_shift(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], rota: NamedDependency[RotaService]
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    await rota.add_shift(
        actor_of(web),
        professional_id=parse_uuid(form.get("professional", ""), ErrorCode.MEMBER_NOT_FOUND),
        starts_at=_datetime(form.get("start", "")),
        ends_at=_datetime(form.get("end", "")),
        rank=_rank(form.get("rank", "")),
    )
    return Redirect("/equipe/garde?ok=ajoute", status_code=303)


@post("/equipe/garde/creneaux/{shift_id:str}/supprimer", status_code=303)
async def remove_shift(
    request: Request[Any, Any, Any],
    shift_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    rota: NamedDependency[RotaService],
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    await rota.remove_shift(actor_of(web), parse_uuid(shift_id, ErrorCode.SHIFT_NOT_FOUND))
    return Redirect("/equipe/garde?ok=supprime", status_code=303)


@post("/equipe/garde/services", status_code=200)
async def create_service_client(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    rota: NamedDependency[RotaService],
    service_clients: NamedDependency[ServiceClients],
) -> Template:
    """Creates the key and shows it in this answer only: it is not kept anywhere."""
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    chosen = [scope for scope in SCOPES if form.get(f"scope:{scope}") == "1"]
    issued = await service_clients.create(actor_of(web), name=form.get("name", ""), scopes=chosen)
    return await _rota_page(
        web,
        rota,
        service_clients,
        flash="Clé de service créée : copiez-la maintenant, elle ne sera plus affichée.",
        new_key=issued.key,
        new_key_name=issued.client.name,
    )


@post("/equipe/garde/services/{client_id:str}/revoquer", status_code=303)
async def revoke_service_client(
    request: Request[Any, Any, Any],
    client_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    service_clients: NamedDependency[ServiceClients],
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    await service_clients.revoke(actor_of(web), parse_uuid(client_id, ErrorCode.SERVICE_CLIENT_NOT_FOUND))
    return Redirect("/equipe/garde?ok=revoque", status_code=303)


@get("/disponibilite", name="availability")
async def availability_page(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    availability: NamedDependency[AvailabilityService],
    rota: NamedDependency[RotaService],
    alerts: NamedDependency[AlertService],
) -> Template:
    web = await require_web(request, sessions)
    actor = actor_of(web)
    me = actor.professional_id
    state = await availability.get(me) if me else None
    now = dt.datetime.now(dt.UTC)
    my_shifts: list[dict[str, Any]] = []
    colleagues: list[tuple[Any, str]] = []
    if actor.structure_id is not None:
        try:
            overview = await rota.overview(actor, now=now, days=ROTA_DAYS)
        except DomainError:  # not (yet) an active member of the structure: no rota, no alert form
            overview = None
        if overview is not None:
            my_shifts = [_shift_row(s, now) for s in overview.shifts if s.professional_id == me]
            colleagues = [(p, name) for p, name in overview.members if p != me]
    window = state.quiet_hours if state else None
    return page(
        "availability.html",
        web,
        state=state,
        modes=MODES,
        quiet_start=window[0].strftime("%H:%M") if window else "",
        quiet_end=window[1].strftime("%H:%M") if window else "",
        my_shifts=my_shifts,
        colleagues=colleagues,
        can_alert=bool(colleagues),
        text_max=alerts.settings.text_max_length,
        nav="availability",
        flash=FLASH.get(request.query_params.get("ok", "")),
    )


@post("/disponibilite", status_code=303)
async def set_availability(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    availability: NamedDependency[AvailabilityService],
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    try:
        mode = AvailabilityMode(form.get("mode", ""))
    except ValueError:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "choose one of the modes") from None
    start, end = _time(form.get("quiet_start", "")), _time(form.get("quiet_end", ""))
    if (start is None) != (end is None):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "quiet hours need a start and an end")
    actor = actor_of(web)
    if actor.professional_id is None:
        raise DomainError(ErrorCode.LOGIN_REQUIRED, "please log in")
    await availability.set(
        actor.professional_id,
        mode=mode,
        quiet_hours=(start, end) if start is not None and end is not None else None,
        actor=actor,
        source="web",
    )
    return Redirect("/disponibilite?ok=disponibilite", status_code=303)


@post("/alertes", status_code=303)
async def raise_alert(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], alerts: NamedDependency[AlertService]
) -> Redirect:
    """A visit alert for a colleague or the team on visit, or an on-call alert, from the web."""
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    raiser = Raiser.professional(actor_of(web))
    target = form.get("target", "")
    # The text may be longer than the other fields (``checked_form`` cuts those): the service checks it.
    raw = (await request.form()).get("text")
    text = raw if isinstance(raw, str) else ""
    if target == "garde":
        await alerts.raise_oncall(raiser, text=text)
    elif target == "equipe":
        await alerts.raise_visit(raiser, text=text, team=True)
    else:
        await alerts.raise_visit(raiser, text=text, target_id=parse_uuid(target, ErrorCode.MEMBER_NOT_FOUND))
    return Redirect("/disponibilite?ok=alerte", status_code=303)


rota_router = Router(
    path="/",
    route_handlers=[
        rota_page,
        add_shift,
        remove_shift,
        create_service_client,
        revoke_service_client,
        availability_page,
        set_availability,
        raise_alert,
    ],
    include_in_schema=False,
)
