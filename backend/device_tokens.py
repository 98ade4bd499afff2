"""The token endpoint's logic: a device proves its key, gets a short access token and a refresh token.

Scopes come from the professional's current rights (``core.grants``), recomputed at every issue,
so a grant removed by the titulaire is gone from the next token. Every issue is audited.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from typing import Any

from sqlalchemy import select
from webauthn import generate_authentication_options, options_to_json, verify_authentication_response
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from backend.auth.access_tokens import AccessTokenIssuer
from backend.auth.jwk import b64url_encode as b64u
from backend.auth.refresh_tokens import RefreshTokenReuse, RefreshTokens
from contracts.auth import GrantType, TokenRequest, WebauthnChallenge
from contracts.enrolment import TokenResponse
from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Device, Professional
from core.device_registry import DeviceRegistry
from core.ephemeral import Ephemeral
from core.errors import AuthError, DomainError
from core.grants import mailbox_rights, scope_string
from core.phone_key import PhoneKey
from core.settings import Settings

CHALLENGE_TTL_S = 120


class DeviceTokens:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        audit: AuditTrail,
        access: AccessTokenIssuer,
        refresh: RefreshTokens,
        registry: DeviceRegistry,
        ephemeral: Ephemeral,
    ) -> None:
        self._settings = settings
        self._db = db
        self._audit = audit
        self._access = access
        self._refresh = refresh
        self._registry = registry
        self._eph = ephemeral

    async def mint(
        self, device_id: uuid.UUID, *, family_id: uuid.UUID | None = None, refresh_token: str | None = None
    ) -> TokenResponse:
        """Issue an access token (and a refresh token unless a rotated one is given)."""
        async with self._db.transaction() as session:
            device = await session.get(Device, device_id)
            if device is None or device.revoked_at is not None:
                raise AuthError(ErrorCode.DEVICE_REVOKED, "device revoked", wipe=True)
            self._refuse_idle(device)
            professional = await session.get(Professional, device.professional_id)
            rights = await mailbox_rights(
                session, professional_id=device.professional_id, structure_id=device.structure_id
            )
            access = self._access.issue(
                device_id=str(device.id),
                professional_idnat=professional.idnat if professional else "",
                jkt=device.jkt,
                scopes=scope_string(rights),
                structure_id=str(device.structure_id) if device.structure_id else None,
            )
            if refresh_token is None:
                refresh_token = await self._refresh.issue(session, device_id=device.id, family_id=family_id)
            device.last_seen_at = dt.datetime.now(dt.UTC)
            push_token_needed = device.push_token_dead_at is not None or (
                device.push_provider not in (None, "none") and not device.push_token
            )
            await self._audit.record(
                "token.issued",
                actor=None,
                actor_kind="device",
                structure_id=device.structure_id,
                device_id=device.id,
                target=access.jti,
                details={"mailboxes": len(rights)},
                session=session,
            )
        return TokenResponse(
            access_token=access.token,
            token_type="DPoP",  # noqa: S106 - a token type, not a secret
            expires_in=access.expires_in,
            refresh_token=refresh_token,
            scope=access.scope,
            device_id=str(device_id),
            push_token_needed=push_token_needed,
        )

    def _refuse_idle(self, device: Device) -> None:
        idle = dt.timedelta(days=self._settings.enrolment.device_idle_expiry_days)
        last = device.last_seen_at or device.created_at
        if last is not None and dt.datetime.now(dt.UTC) - last > idle:
            raise AuthError(ErrorCode.DEVICE_EXPIRED, "device unused for too long, enrol it again")

    async def _device_for_key(self, key: PhoneKey) -> Device:
        async with self._db.read() as session:
            device = await session.scalar(select(Device).where(Device.jkt == key.jkt))
        if device is None:
            raise AuthError(ErrorCode.INVALID_GRANT, "unknown device key")
        if device.revoked_at is not None:
            raise AuthError(ErrorCode.DEVICE_REVOKED, "device revoked", wipe=True)
        return device

    async def grant(self, request: TokenRequest, key: PhoneKey) -> TokenResponse:
        device = await self._device_for_key(key)
        if request.grant_type == GrantType.REFRESH_TOKEN:
            return await self._refresh_grant(device, request.refresh_token)
        if request.grant_type == GrantType.DEVICE_KEY:
            if device.binding != "es256":
                raise AuthError(ErrorCode.INVALID_GRANT, "this device signs in with WebAuthn")
            self._refuse_idle(device)
            return await self.mint(device.id)
        if device.binding != "webauthn":
            raise AuthError(ErrorCode.INVALID_GRANT, "this device signs in with its app key")
        await self._verify_assertion(device, request.webauthn_assertion)
        return await self.mint(device.id)

    async def _refresh_grant(self, device: Device, presented: str | None) -> TokenResponse:
        if not presented:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "refreshToken is required")
        async with self._db.transaction() as session:
            outcome = await self._refresh.rotate(session, presented=presented, device_id=device.id)
            if isinstance(outcome, RefreshTokenReuse):
                await self._audit.record(
                    "token.refresh_reused",
                    actor=None,
                    actor_kind="system",
                    structure_id=device.structure_id,
                    device_id=device.id,
                    target=str(outcome.family_id),
                    details={"revoked": outcome.revoked},
                    session=session,
                )
        if isinstance(outcome, RefreshTokenReuse):
            # The grant needs the device key too, so a reuse is most likely the phone retrying after a lost
            # answer: the family dies (audited, visible to the titulaire) and the phone signs in again with
            # its key (WebAuthn: with user verification). A stolen key is a revocation matter, not this one.
            raise outcome.error()
        return await self.mint(device.id, family_id=outcome.family_id, refresh_token=outcome.token)

    async def webauthn_challenge(self, key: PhoneKey) -> WebauthnChallenge:
        device = await self._device_for_key(key)
        if device.binding != "webauthn" or device.webauthn_credential_id is None:
            raise AuthError(ErrorCode.INVALID_GRANT, "this device signs in with its app key")
        challenge = secrets.token_bytes(32)
        await self._eph.set(f"wa:token:{device.id}", challenge, CHALLENGE_TTL_S)
        options = generate_authentication_options(
            rp_id=self._settings.app.rp_id,
            challenge=challenge,
            timeout=CHALLENGE_TTL_S * 1000,
            allow_credentials=[PublicKeyCredentialDescriptor(id=device.webauthn_credential_id)],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return WebauthnChallenge(challenge=b64u(challenge), webauthn_options=json.loads(options_to_json(options)))

    async def _verify_assertion(self, device: Device, assertion: dict[str, Any] | None) -> None:
        if not assertion:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "webauthnAssertion is required")
        challenge = await self._eph.take(f"wa:token:{device.id}")
        if challenge is None:
            raise AuthError(ErrorCode.INVALID_GRANT, "ask for a WebAuthn challenge first")
        try:
            verified = verify_authentication_response(
                credential=assertion,
                expected_challenge=challenge,
                expected_rp_id=self._settings.app.rp_id,
                expected_origin=[self._settings.app.origin, *self._settings.enrolment.extra_origins],
                credential_public_key=device.webauthn_public_key or b"",
                credential_current_sign_count=device.webauthn_sign_count,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise AuthError(ErrorCode.INVALID_GRANT, "the WebAuthn assertion does not verify") from exc
        async with self._db.transaction() as session:
            row = await session.get(Device, device.id)
            if row is not None:
                row.webauthn_sign_count = verified.new_sign_count
