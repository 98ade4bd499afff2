""" "Mon équipe": the titulaire's view of members, grants, devices and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.device_registry import DeviceRegistry, RevokeReason
from core.errors import DomainError
from enrolment.team_service import TeamService
from enrolment.web.deps import actor_of, checked_form, page, parse_uuid, require_web
from enrolment.web.sessions import SessionStore

FLASH = {
    "ajoute": "Membre ajouté.",
    "accepte": "Membre accepté.",
    "retire": "Accès retiré.",
    "droits": "Droits mis à jour.",
    "revoque": "Appareil révoqué.",
    "messagerie": "Messagerie déclarée.",
}

AUDIT_LABELS = {
    "login": "Connexion CPS / e-CPS",
    "session.acting_for": "Connexion pour la structure",
    "enrolment.opened": "QR code affiché",
    "enrolment.claimed": "QR scanné",
    "enrolment.bound": "Clé du téléphone prouvée",
    "enrolment.confirmed": "Code confirmé",
    "enrolment.refused": "Enrôlement refusé",
    "enrolment.bad_secret": "QR invalide présenté",
    "device.enrolled": "Appareil enrôlé",
    "device.renamed": "Appareil renommé",
    "device.revoked": "Appareil révoqué",
    "device.wipe_acknowledged": "Effacement confirmé par l'appareil",
    "token.issued": "Jetons délivrés",
    "token.refresh_reused": "Réutilisation d'un jeton détectée",
    "member.added": "Membre ajouté",
    "member.approved": "Membre accepté",
    "member.removed": "Accès retiré",
    "grant.changed": "Droits modifiés",
    "mailbox.added": "Messagerie déclarée",
    "alert.raised": "Alerte émise",
    "alert.read": "Alerte consultée",
    "alert.acknowledged": "Alerte prise en charge",
    "alert.escalated": "Alerte transmise au suivant",
    "alert.escalation_exhausted": "Alerte sans preneur",
    "rota.shift_added": "Garde ajoutée",
    "rota.shift_removed": "Garde retirée",
    "service_client.created": "Clé de service créée",
    "service_client.revoked": "Clé de service révoquée",
    "availability.changed": "Disponibilité modifiée",
    "mail.list": "Liste des messages",
    "mail.read": "Message lu",
    "mail.attachment": "Pièce jointe ouverte",
    "mail.send": "Message envoyé",
    "mail.flags": "Message marqué",
    "mail.move": "Message déplacé",
    "mail.delete": "Message supprimé",
    "mail.receipt": "Accusé de lecture envoyé",
    "mail.search": "Recherche",
    "mail.changes": "Synchronisation",
    "mail.folders": "Dossiers consultés",
}


@get("/equipe", name="team")
async def team_page(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], teams: NamedDependency[TeamService]
) -> Template:
    web = await require_web(request, sessions)
    structure = await teams.require_titulaire(actor_of(web))
    team = await teams.team(structure.id)
    return page("team.html", web, team=team, nav="team", flash=FLASH.get(request.query_params.get("ok", "")))


@post("/equipe/membres", status_code=303)
async def add_member(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], teams: NamedDependency[TeamService]
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    await teams.add_by_rpps(form.get("rpps", ""), actor_of(web))
    return Redirect("/equipe?ok=ajoute", status_code=303)


@post("/equipe/membres/{membership_id:str}/accepter", status_code=303)
async def approve_member(
    request: Request[Any, Any, Any],
    membership_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    teams: NamedDependency[TeamService],
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    await teams.approve(parse_uuid(membership_id, ErrorCode.MEMBER_NOT_FOUND), actor_of(web))
    return Redirect("/equipe?ok=accepte", status_code=303)


@post("/equipe/membres/{membership_id:str}/retirer", status_code=303)
async def remove_member(
    request: Request[Any, Any, Any],
    membership_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    teams: NamedDependency[TeamService],
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    await teams.remove(parse_uuid(membership_id, ErrorCode.MEMBER_NOT_FOUND), actor_of(web))
    return Redirect("/equipe?ok=retire", status_code=303)


@post("/equipe/droits", status_code=303)
async def set_grant(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], teams: NamedDependency[TeamService]
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    await teams.set_grant(
        mailbox_id=parse_uuid(form.get("mailbox", ""), ErrorCode.MAILBOX_NOT_FOUND),
        professional_id=parse_uuid(form.get("professional", ""), ErrorCode.MEMBER_NOT_FOUND),
        can_read=form.get("read") == "1",
        can_send=form.get("send") == "1",
        actor=actor_of(web),
    )
    return Redirect("/equipe?ok=droits", status_code=303)


@post("/equipe/messageries", status_code=303)
async def add_mailbox(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], teams: NamedDependency[TeamService]
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    await teams.add_mailbox(address=form.get("address", ""), display_name=form.get("name", ""), actor=actor_of(web))
    return Redirect("/equipe?ok=messagerie", status_code=303)


@post("/equipe/appareils/{device_id:str}/revoquer", status_code=303)
async def revoke_member_device(
    request: Request[Any, Any, Any],
    device_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    teams: NamedDependency[TeamService],
    devices: NamedDependency[DeviceRegistry],
) -> Redirect:
    """The titulaire revokes a team member's phone: effective on every instance at once."""
    web = await require_web(request, sessions)
    await checked_form(request, web)
    actor = actor_of(web)
    structure = await teams.require_titulaire(actor)
    device = await devices.get(parse_uuid(device_id, ErrorCode.DEVICE_NOT_FOUND))
    team = await teams.team(structure.id)
    if device.professional_id not in {m.professional.id for m in team.members}:
        raise DomainError(ErrorCode.DEVICE_NOT_FOUND, "no such device in this team")
    await devices.revoke(device.id, actor, RevokeReason.BY_TITULAIRE)
    return Redirect("/equipe?ok=revoque", status_code=303)


@get("/equipe/journal", name="audit")
async def audit_page(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    teams: NamedDependency[TeamService],
    audit: NamedDependency[AuditTrail],
) -> Template:
    web = await require_web(request, sessions)
    structure = await teams.require_titulaire(actor_of(web))
    check = await audit.verify(str(structure.id))
    events = await audit.recent(chain=str(structure.id), limit=200)
    team = await teams.team(structure.id)
    names = {m.professional.idnat: m.professional.display_name for m in team.members}
    return page(
        "audit.html", web, structure=structure, check=check, events=events, labels=AUDIT_LABELS, names=names, nav="team"
    )


@get("/equipe/journal.jsonl", name="audit_export")
async def audit_export(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    teams: NamedDependency[TeamService],
    audit: NamedDependency[AuditTrail],
) -> Stream:
    web = await require_web(request, sessions)
    structure = await teams.require_titulaire(actor_of(web))

    async def lines() -> AsyncIterator[bytes]:
        async for line in audit.export_jsonl(chain=str(structure.id)):
            yield line

    return Stream(
        lines(),
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="audit-{structure.idnat}.jsonl"'},
    )


team_router = Router(
    path="/",
    route_handlers=[
        team_page,
        add_member,
        approve_member,
        remove_member,
        set_grant,
        add_mailbox,
        revoke_member_device,
        audit_page,
        audit_export,
    ],
    include_in_schema=False,
)
