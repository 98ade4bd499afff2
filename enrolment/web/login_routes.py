"""CPS / e-CPS login through Pro Santé Connect, structure choice, logout."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.errors import DomainError
from core.settings import Settings
from enrolment.identity_service import IdentityService
from enrolment.psc.client import PscClient
from enrolment.web.deps import checked_form, load_web, page, require_web
from enrolment.web.sessions import ActivityChoice, SessionStore, WebSession


def _safe_next(target: str | None) -> str:
    """Only local paths: an open redirect after login would be a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_cookie(response: Redirect | Template, sessions: NamedDependency[SessionStore], web: WebSession) -> Any:
    response.set_cookie(sessions.cookie_name, web.id, **sessions.cookie_kwargs())
    return response


@get("/connexion", name="login")
async def login(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    psc: NamedDependency[PscClient],
    settings: NamedDependency[Settings],
) -> Redirect:
    web = await load_web(request, sessions) or await sessions.create()
    auth = await psc.begin(redirect_uri=f"{settings.app.public_url.rstrip('/')}/auth/psc/callback")
    web.oidc_state, web.oidc_nonce, web.oidc_verifier = auth.state, auth.nonce, auth.code_verifier
    web.next_url = _safe_next(request.query_params.get("next"))
    await sessions.save(web)
    return _with_cookie(Redirect(auth.url), sessions, web)  # type: ignore[no-any-return]


@get("/auth/psc/callback", name="psc_callback")
async def psc_callback(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    psc: NamedDependency[PscClient],
    identity: NamedDependency[IdentityService],
    settings: NamedDependency[Settings],
    audit: NamedDependency[AuditTrail],
) -> Redirect:
    web = await load_web(request, sessions)
    params = request.query_params
    if web is None or not web.oidc_state:
        raise DomainError(ErrorCode.PSC_STATE_MISMATCH, "no login in progress, start again")
    psc.check_callback(dict(params))
    login_result = await psc.complete(
        code=params.get("code", ""),
        state=params.get("state", ""),
        expected_state=web.oidc_state,
        nonce=web.oidc_nonce or "",
        code_verifier=web.oidc_verifier or "",
        redirect_uri=f"{settings.app.public_url.rstrip('/')}/auth/psc/callback",
    )
    logged = await identity.record_login(login_result.identity, auth_mode=login_result.auth_mode, acr=login_result.acr)
    web = await sessions.rotate(web)
    next_url = web.next_url or "/"
    web.oidc_state = web.oidc_nonce = web.oidc_verifier = web.next_url = None
    professional = logged.professional
    web.professional_id, web.idnat = str(professional.id), professional.idnat
    web.display_name, web.profession_code = professional.display_name, professional.profession_code
    web.auth_time, web.auth_mode = float(login_result.auth_time), login_result.auth_mode
    web.psc_id_token = login_result.id_token
    web.activities = [
        ActivityChoice(
            structure_idnat=a.structure_idnat,
            name=a.name,
            city=a.city,
            is_titulaire=a.is_titulaire,
            structure_id=str(a.structure_id),
        )
        for a in logged.activities
    ]
    if len(web.activities) == 1:
        await _choose(web, web.activities[0], audit)
    await sessions.save(web)
    target = "/connexion/structure?next=" + next_url if len(web.activities) > 1 else next_url
    return _with_cookie(Redirect(target), sessions, web)  # type: ignore[no-any-return]


async def _choose(web: WebSession, activity: ActivityChoice, audit: AuditTrail) -> None:
    """Act for this structure from now on; the structure's trail shows who logged in for it."""
    web.structure_id, web.structure_name = activity.structure_id, activity.name
    web.is_titulaire = activity.is_titulaire
    await audit.record(
        "session.acting_for",
        actor=web.idnat,
        structure_id=activity.structure_id,
        details={"authMode": web.auth_mode or ""},
    )


@get("/connexion/structure", name="choose_structure")
async def choose_structure_page(request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore]) -> Template:
    web = await require_web(request, sessions)
    return page("choose_structure.html", web, next=_safe_next(request.query_params.get("next")))


@post("/connexion/structure", status_code=303)
async def choose_structure(
    request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore], audit: NamedDependency[AuditTrail]
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    chosen = next((a for a in web.activities if a.structure_idnat == form.get("structure")), None)
    if chosen is None:
        raise DomainError(ErrorCode.NO_ACTIVITY, "choose one of your places of practice")
    await _choose(web, chosen, audit)
    await sessions.save(web)
    return Redirect(_safe_next(form.get("next")), status_code=303)


@post("/deconnexion", status_code=303)
async def logout(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    psc: NamedDependency[PscClient],
    settings: NamedDependency[Settings],
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    await sessions.destroy(web)
    target = "/"
    if web.psc_id_token:
        target = (
            psc.end_session_url(
                id_token_hint=web.psc_id_token, post_logout_redirect_uri=f"{settings.app.public_url.rstrip('/')}/"
            )
            or "/"
        )
    response = Redirect(target, status_code=303)
    response.delete_cookie(sessions.cookie_name, path="/")
    return response


@get("/", name="home")
async def home(request: Request[Any, Any, Any], sessions: NamedDependency[SessionStore]) -> Template:
    return page("home.html", await load_web(request, sessions))


login_router = Router(
    path="/",
    route_handlers=[login, psc_callback, choose_structure_page, choose_structure, logout, home],
    include_in_schema=False,
)
