"""Phone API of the device itself: tokens, who am I, push address, wipe acknowledgement, JWKS."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Router, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy import select

from backend.auth.signing_keys import SigningKeys
from backend.device_auth import AuthenticatedDevice, DeviceAuthenticator
from backend.device_tokens import DeviceTokens
from contracts.auth import (
    DeviceSelf,
    MailboxAccess,
    PushTokenUpdate,
    TokenRequest,
    WebauthnChallenge,
    WipeAck,
)
from contracts.enrolment import Platform, PushProvider, TokenResponse
from contracts.errors import ErrorCode
from core.db.engine import Database
from core.db.models import Device, Structure
from core.device_registry import DeviceRegistry
from core.errors import AuthError
from core.grants import mailbox_rights, scope_string
from core.phone_key import PhoneKey


@post("/token", status_code=200, summary="Exchange a proof of the device key (or a refresh token) for tokens")
async def token(
    data: JSONBody[TokenRequest], phone_key: NamedDependency[PhoneKey], device_tokens: NamedDependency[DeviceTokens]
) -> TokenResponse:
    return await device_tokens.grant(data, phone_key)


@post("/token/webauthn-challenge", status_code=200, summary="Challenge for a WebAuthn device's assertion")
async def webauthn_challenge(
    phone_key: NamedDependency[PhoneKey], device_tokens: NamedDependency[DeviceTokens]
) -> WebauthnChallenge:
    return await device_tokens.webauthn_challenge(phone_key)


@get("/whoami", summary="Authenticated no-op: what the access token says, no database access")
async def whoami(device: NamedDependency[AuthenticatedDevice]) -> dict[str, Any]:
    return {"deviceId": str(device.device_id), "idnat": device.idnat, "scope": sorted(device.scopes)}


@get("/me", summary="The device, its professional and the mailboxes it may use")
async def me(device: NamedDependency[AuthenticatedDevice], db: NamedDependency[Database]) -> DeviceSelf:
    async with db.read() as session:
        row = await session.get(Device, device.device_id)
        if row is None:
            raise AuthError(ErrorCode.DEVICE_REVOKED, "device revoked", wipe=True)
        rights = await mailbox_rights(session, professional_id=row.professional_id, structure_id=row.structure_id)
        structure_name = (
            await session.scalar(select(Structure.name).where(Structure.id == row.structure_id))
            if row.structure_id
            else None
        )
    return DeviceSelf(
        device_id=str(row.id),
        name=row.name,
        platform=Platform(row.platform),
        professional=row.professional.display_name,
        idnat=row.professional.idnat,
        structure_id=str(row.structure_id) if row.structure_id else None,
        structure_name=structure_name,
        mailboxes=[
            MailboxAccess(
                id=str(r.mailbox_id), address=r.address, kind=r.kind, can_read=r.can_read, can_send=r.can_send
            )
            for r in rights
        ],
        scope=" ".join(scope_string(rights)),
        push_provider=PushProvider(row.push_provider) if row.push_provider else None,
        push_token_needed=row.push_token_dead_at is not None
        or (row.push_provider not in (None, "none") and not row.push_token),
    )


@put("/me/push", status_code=200, summary="Register (or replace) the device's push token")
async def update_push(
    data: JSONBody[PushTokenUpdate], device: NamedDependency[AuthenticatedDevice], db: NamedDependency[Database]
) -> dict[str, str]:
    async with db.transaction() as session:
        row = await session.get(Device, device.device_id)
        if row is None:
            raise AuthError(ErrorCode.DEVICE_REVOKED, "device revoked", wipe=True)
        row.push_provider, row.push_token, row.push_token_dead_at = str(data.provider), data.token, None
        row.push_token_registered_at = dt.datetime.now(dt.UTC)
    return {"status": "registered"}


@post("/me/wipe-ack", status_code=200, summary="A revoked device confirms it erased its keys and data")
async def wipe_ack(
    request: Request[Any, Any, Any],
    authenticator: NamedDependency[DeviceAuthenticator],
    devices: NamedDependency[DeviceRegistry],
) -> WipeAck:
    device = await authenticator.authenticate(request, allow_revoked=True)
    await devices.acknowledge_wipe(device.device_id)
    return WipeAck(device_id=str(device.device_id), acknowledged=True)


@get("/.well-known/jwks.json", summary="Public keys that sign access tokens", tags=["keys"])
async def jwks(signing_keys: NamedDependency[SigningKeys]) -> dict[str, Any]:
    return signing_keys.jwks()


device_api_router = Router(
    path="/api/v1", route_handlers=[token, webauthn_challenge, whoami, me, update_push, wipe_ack], tags=["device"]
)
