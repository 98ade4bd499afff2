"""Web helpers shared by the page routes: the session, CSRF-checked forms, the acting person."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.response import Template

from contracts.errors import ErrorCode
from core.device_registry import Actor
from core.errors import AuthError, DomainError
from enrolment.web.sessions import SessionStore, WebSession

#: Form fields are short; anything longer is refused before it is parsed further.
MAX_FIELD = 512


async def load_web(request: Request[Any, Any, Any], sessions: SessionStore) -> WebSession | None:
    return await sessions.load(request.cookies.get(sessions.cookie_name))


async def require_web(request: Request[Any, Any, Any], sessions: SessionStore, *, recent: bool = False) -> WebSession:
    web = await load_web(request, sessions)
    if web is None or not web.logged_in:
        raise AuthError(ErrorCode.LOGIN_REQUIRED, "please log in with Pro Santé Connect")
    if recent and not web.recent_login(sessions.settings.recent_login_s):
        raise AuthError(ErrorCode.RECENT_LOGIN_REQUIRED, "a recent CPS or e-CPS login is required")
    return web


async def checked_form(request: Request[Any, Any, Any], web: WebSession) -> dict[str, str]:
    """The submitted form, after its CSRF token matched the session's."""
    form = await request.form()
    fields = {k: str(v)[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    if not web.csrf_ok(fields.get("csrf_token")):
        raise DomainError(ErrorCode.CSRF_FAILED, "the form expired, reload the page")
    if any("\x00" in value for value in fields.values()):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "a field holds a NUL character")
    return fields


def actor_of(web: WebSession) -> Actor:
    return Actor(
        idnat=web.idnat,
        professional_id=uuid.UUID(web.professional_id or ""),
        structure_id=uuid.UUID(web.structure_id) if web.structure_id else None,
    )


def parse_uuid(value: str, code: ErrorCode = ErrorCode.NOT_FOUND) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise DomainError(code, "unknown identifier") from None


def page(name: str, web: WebSession | None, **context: Any) -> Template:
    return Template(template_name=name, context={"web": web, **context})
