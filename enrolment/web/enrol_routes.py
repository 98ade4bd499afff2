"""The "Enrôler un téléphone" page: QR code, live status, check-code confirmation."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from contracts.enrolment import RendezvousState
from contracts.errors import ErrorCode
from core.errors import DomainError, NotFoundError
from enrolment.enrolment_service import EnrolmentService, WebOwner
from enrolment.qr import qr_svg_base64
from enrolment.rendezvous import Rendezvous
from enrolment.web.deps import checked_form, page, require_web
from enrolment.web.sessions import SessionStore, WebSession

_RDV = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _checked(rdv_id: str) -> str:
    if not _RDV.match(rdv_id):
        raise NotFoundError(ErrorCode.ENROLMENT_NOT_FOUND, "unknown enrolment")
    return rdv_id


#: The page swaps in a fresh QR this many seconds before the shown one expires.
REPLACE_BEFORE_S = 5

ERRORS = {
    "device_limit_reached": "Nombre maximal d'appareils atteint : révoquez-en un avant d'en enrôler un autre.",
    "enrolment_expired": "Le délai est dépassé : recommencez l'enrôlement.",
    "enrolment_wrong_state": "Cet enrôlement ne peut plus être confirmé.",
    "enrolment_rejected": "Cet enrôlement a été annulé.",
}


def _owner(web: WebSession) -> WebOwner:
    return WebOwner(
        professional_id=web.professional_id or "",
        idnat=web.idnat or "",
        structure_id=web.structure_id,
        web_session=web.id,
    )


def _context(enrolment: NamedDependency[EnrolmentService], rdv: Rendezvous) -> dict[str, Any]:
    context: dict[str, Any] = {"rdv": rdv, "nav": "enrol"}
    if rdv.state == RendezvousState.WAITING:
        context["qr_url"] = enrolment.qr_url(rdv)
        context["qr_svg_b64"] = qr_svg_base64(context["qr_url"])
    return context


@get("/enrolement", name="enrol")
async def enrol_page(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    enrolment: NamedDependency[EnrolmentService],
) -> Template:
    web = await require_web(request, sessions, recent=True)
    rdv = await enrolment.open(_owner(web))
    return page("enrol.html", web, **_context(enrolment, rdv))


@get("/enrolement/{rdv_id:str}", name="enrol_existing")
async def enrol_existing(
    request: Request[Any, Any, Any],
    rdv_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    enrolment: NamedDependency[EnrolmentService],
) -> Template:
    web = await require_web(request, sessions)
    rdv = await enrolment.for_owner(_checked(rdv_id), _owner(web))
    flash = ERRORS.get(request.query_params.get("erreur", ""))
    return page("enrol.html", web, flash=flash, **_context(enrolment, rdv))


@get("/enrolement/{rdv_id:str}/statut", name="enrol_status")
async def enrol_status(
    request: Request[Any, Any, Any],
    rdv_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    enrolment: NamedDependency[EnrolmentService],
) -> Template:
    """The status fragment. An unclaimed QR about to expire is replaced by a new rendezvous."""
    web = await require_web(request, sessions)
    owner = _owner(web)
    rdv = await enrolment.for_owner(_checked(rdv_id), owner)
    unclaimed = rdv.state == RendezvousState.WAITING or (rdv.state == RendezvousState.EXPIRED and rdv.jkt is None)
    if unclaimed and rdv.expires_in() <= REPLACE_BEFORE_S and web.recent_login(sessions.settings.recent_login_s):
        rdv = await enrolment.open(owner)
    return page("_enrol_status.html", web, **_context(enrolment, rdv))


async def _decide(
    request: Request[Any, Any, Any],
    rdv_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    enrolment: NamedDependency[EnrolmentService],
    *,
    accept: bool,
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    _checked(rdv_id)
    try:
        await enrolment.confirm(rdv_id, _owner(web), accept=accept)
    except DomainError as exc:  # the page shows the resulting state and why
        return Redirect(f"/enrolement/{rdv_id}?erreur={exc.code.value}", status_code=303)
    return Redirect(f"/enrolement/{rdv_id}", status_code=303)


@post("/enrolement/{rdv_id:str}/confirmer", status_code=303)
async def confirm(
    request: Request[Any, Any, Any],
    rdv_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    enrolment: NamedDependency[EnrolmentService],
) -> Redirect:
    return await _decide(request, rdv_id, sessions, enrolment, accept=True)


@post("/enrolement/{rdv_id:str}/refuser", status_code=303)
async def reject(
    request: Request[Any, Any, Any],
    rdv_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    enrolment: NamedDependency[EnrolmentService],
) -> Redirect:
    return await _decide(request, rdv_id, sessions, enrolment, accept=False)


enrol_router = Router(
    path="/", route_handlers=[enrol_page, enrol_existing, enrol_status, confirm, reject], include_in_schema=False
)
