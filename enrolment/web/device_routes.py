""" "Mes appareils": the professional's own devices."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from contracts.errors import ErrorCode
from core.device_registry import DeviceRegistry, RevokeReason
from core.errors import DomainError
from core.settings import Settings
from enrolment.web.deps import actor_of, checked_form, page, parse_uuid, require_web
from enrolment.web.sessions import SessionStore

PLATFORMS = {"ios": "iPhone (iOS)", "android": "Android", "web": "Navigateur"}


@get("/appareils", name="devices")
async def devices_page(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    devices: NamedDependency[DeviceRegistry],
    settings: NamedDependency[Settings],
) -> Template:
    web = await require_web(request, sessions)
    mine = await devices.of_professional(uuid.UUID(web.professional_id or ""))
    flash = {"revoque": "Appareil révoqué.", "renomme": "Appareil renommé."}.get(request.query_params.get("ok", ""))
    return page(
        "devices.html",
        web,
        devices=mine,
        platforms=PLATFORMS,
        nav="devices",
        flash=flash,
        max_devices=settings.enrolment.max_devices_per_professional,
        # dev: pushes go to the sink, and /dev/notifications shows them (see backend.dev)
        dev_notifications="sink" in settings.push.providers,
    )


@post("/appareils/{device_id:str}/renommer", status_code=303)
async def rename(
    request: Request[Any, Any, Any],
    device_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    devices: NamedDependency[DeviceRegistry],
) -> Redirect:
    web = await require_web(request, sessions)
    form = await checked_form(request, web)
    name = form.get("name", "").strip()
    if not 1 <= len(name) <= 64:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "a device name has 1 to 64 characters")
    await devices.rename(parse_uuid(device_id, ErrorCode.DEVICE_NOT_FOUND), name, actor_of(web))
    return Redirect("/appareils?ok=renomme", status_code=303)


@post("/appareils/{device_id:str}/revoquer", status_code=303)
async def revoke(
    request: Request[Any, Any, Any],
    device_id: FromPath[str],
    sessions: NamedDependency[SessionStore],
    devices: NamedDependency[DeviceRegistry],
) -> Redirect:
    web = await require_web(request, sessions)
    await checked_form(request, web)
    actor = actor_of(web)
    device = await devices.get(parse_uuid(device_id, ErrorCode.DEVICE_NOT_FOUND))
    if device.professional_id != actor.professional_id:
        raise DomainError(ErrorCode.DEVICE_NOT_FOUND, "no such device")
    await devices.revoke(device.id, actor, RevokeReason.BY_OWNER)
    return Redirect("/appareils?ok=revoque", status_code=303)


device_router = Router(path="/", route_handlers=[devices_page, rename, revoke], include_in_schema=False)
