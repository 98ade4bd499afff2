"""QR enrolment, from the web page's QR to the phone's first tokens.

Order: the web opens a rendezvous → the phone claims it with a fresh key and a proof of the QR
secret → the phone binds (WebAuthn registration or ES256 signature) → the person confirms on the
web that both screens show the same check code → the device exists → the phone completes and gets
its first tokens. Binding and confirmation may come in either order; the device is created by
whichever comes second, exactly once.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import func, select

from contracts.enrolment import (
    QR_PATH_PREFIX,
    BindingChallenge,
    BindingMethod,
    BindRequest,
    ClaimRequest,
    ClaimResponse,
    EnrolmentStatus,
    PushProvider,
    RendezvousState,
    TokenResponse,
    check_code,
    claim_proof,
)
from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Device, Professional
from core.ephemeral import Ephemeral
from core.errors import ConflictError, DomainError, ForbiddenError, RateLimitedError
from core.phone_key import PhoneKey
from core.settings import Settings
from enrolment.binding import (
    b64u,
    b64u_decode,
    verify_es256_binding,
    verify_webauthn_binding,
    webauthn_creation_options,
)
from enrolment.rendezvous import FINISH_S, Rendezvous, RendezvousStore, refuse_finished

MintTokens = Callable[[uuid.UUID], Awaitable[TokenResponse]]


@dataclass(frozen=True, slots=True)
class WebOwner:
    """Who is looking at the QR page (from the web session)."""

    professional_id: str
    idnat: str
    structure_id: str | None
    web_session: str


class EnrolmentService:
    def __init__(
        self, *, settings: Settings, ephemeral: Ephemeral, db: Database, audit: AuditTrail, mint_tokens: MintTokens
    ) -> None:
        self._settings = settings
        self._cfg = settings.enrolment
        self._eph = ephemeral
        self._db = db
        self._audit = audit
        self._mint = mint_tokens
        self.store = RendezvousStore(ephemeral, ttl_s=self._cfg.rendezvous_ttl_s)

    # web side ---------------------------------------------------------------------------------

    def qr_url(self, rdv: Rendezvous) -> str:
        """Universal link: the rendezvous id in the path, the secret in the fragment (never logged)."""
        return f"{self._settings.app.public_url.rstrip('/')}{QR_PATH_PREFIX}{rdv.id}#{rdv.secret}"

    async def open(self, owner: WebOwner) -> Rendezvous:
        rdv = await self.store.open(
            professional_id=owner.professional_id, structure_id=owner.structure_id, web_session=owner.web_session
        )
        await self._audit.record(
            "enrolment.opened", actor=owner.idnat, structure_id=owner.structure_id, target=rdv.id[:8]
        )
        return rdv

    async def for_owner(self, rendezvous_id: str, owner: WebOwner) -> Rendezvous:
        rdv, _ = await self.store.load(rendezvous_id)
        if rdv.professional_id != owner.professional_id or rdv.web_session != owner.web_session:
            raise ForbiddenError(ErrorCode.ENROLMENT_NOT_FOUND, "not your enrolment")
        return rdv

    async def confirm(self, rendezvous_id: str, owner: WebOwner, *, accept: bool) -> Rendezvous:
        """The person compared the codes. Accepting creates the device once the key is bound."""
        await self.for_owner(rendezvous_id, owner)

        def change(rdv: Rendezvous) -> Rendezvous:
            refuse_finished(rdv)
            if rdv.state not in {RendezvousState.CLAIMED, RendezvousState.BOUND} or rdv.confirmed:
                raise ConflictError(ErrorCode.ENROLMENT_WRONG_STATE, "nothing to confirm now")
            if not accept:
                return msgspec.structs.replace(rdv, state=RendezvousState.REJECTED)
            if rdv.state == RendezvousState.BOUND:
                return msgspec.structs.replace(
                    rdv, confirmed=True, state=RendezvousState.CONFIRMED, device_id=str(uuid.uuid4())
                )
            return msgspec.structs.replace(rdv, confirmed=True)

        rdv = await self.store.update(rendezvous_id, change)
        decision: dict[str, Any] = {
            "action": "enrolment.confirmed" if accept else "enrolment.refused",
            "actor": owner.idnat,
            "structure_id": rdv.structure_id,
            "target": rdv.id[:8],
            "details": {"deviceName": rdv.device_name or ""},
        }
        if rdv.state == RendezvousState.CONFIRMED:
            await self._create_device(rdv, also_audit=decision)
        else:
            await self._audit.record(**decision)
        return rdv

    # phone side -------------------------------------------------------------------------------

    async def claim(self, rendezvous_id: str, request: ClaimRequest, key: PhoneKey, *, client_ip: str) -> ClaimResponse:
        await self._rate_limit_ip(client_ip)
        rdv, _ = await self.store.load(rendezvous_id)
        refuse_finished(rdv)
        if rdv.state != RendezvousState.WAITING:
            raise ConflictError(ErrorCode.ENROLMENT_ALREADY_USED, "this QR code was already used")
        expected = claim_proof(rdv.secret_bytes, rdv.id, key.jkt)
        if not hmac.compare_digest(expected.encode(), request.secret_proof.encode()):
            await self._wrong_secret(rdv)
        active, taken = await self._device_facts(uuid.UUID(rdv.professional_id), key.jkt)
        self._refuse_if_full(active)
        if taken:
            raise DomainError(ErrorCode.BINDING_INVALID, "this key is already enrolled")
        challenge = secrets.token_bytes(32)
        user_handle = secrets.token_bytes(16)
        digits = self._cfg.check_code_digits

        def change(current: Rendezvous) -> Rendezvous:
            refuse_finished(current)
            if current.state != RendezvousState.WAITING:
                raise ConflictError(ErrorCode.ENROLMENT_ALREADY_USED, "this QR code was already used")
            return msgspec.structs.replace(
                current,
                state=RendezvousState.CLAIMED,
                jkt=key.jkt,
                jwk=key.jwk,
                device_name=request.device_name,
                platform=request.platform,
                binding=request.binding,
                push_provider=request.push.provider if request.push else PushProvider.NONE,
                push_token=request.push.token if request.push else None,
                challenge=b64u(challenge),
                user_handle=b64u(user_handle),
                check_code=check_code(current.secret_bytes, key.jkt, digits),
                deadline=time.time() + FINISH_S,
            )

        rdv = await self.store.update(rendezvous_id, change)
        await self._audit.record(
            "enrolment.claimed",
            actor=None,
            actor_kind="device",
            structure_id=rdv.structure_id,
            target=rdv.id[:8],
            details={"platform": str(request.platform), "binding": str(request.binding)},
        )
        options = None
        if request.binding == BindingMethod.WEBAUTHN:
            options = webauthn_creation_options(
                rp_id=self._settings.app.rp_id,
                rp_name="MSSanté Companion",
                challenge=challenge,
                user_handle=user_handle,
                device_name=request.device_name,
                attestation_required=self._cfg.attestation == "required",
            )
        return ClaimResponse(
            state=rdv.state,
            expires_in=rdv.expires_in(),
            check_code_digits=digits,
            binding=BindingChallenge(method=request.binding, challenge=b64u(challenge), webauthn_options=options),
        )

    async def bind(self, rendezvous_id: str, request: BindRequest, key: PhoneKey) -> EnrolmentStatus:
        rdv, _ = await self.store.load(rendezvous_id)
        refuse_finished(rdv)
        self._same_key(rdv, key)
        if rdv.state != RendezvousState.CLAIMED:
            raise ConflictError(ErrorCode.ENROLMENT_WRONG_STATE, "the key is already bound")
        webauthn: dict[str, Any] | None = None
        if rdv.binding == BindingMethod.ES256:
            if not request.es256_signature:
                raise DomainError(ErrorCode.BINDING_INVALID, "es256Signature is required")
            verify_es256_binding(
                signature=request.es256_signature,
                jwk=rdv.jwk or {},
                rendezvous_id=rdv.id,
                challenge=rdv.challenge or "",
                audience=self._settings.app.origin,
            )
        else:
            if not request.webauthn_credential:
                raise DomainError(ErrorCode.BINDING_INVALID, "webauthnCredential is required")
            verified = verify_webauthn_binding(
                credential=request.webauthn_credential,
                challenge=b64u_decode(rdv.challenge or ""),
                rp_id=self._settings.app.rp_id,
                origins=[self._settings.app.origin, *self._cfg.extra_origins],
                attestation_required=self._cfg.attestation == "required",
                attestation_roots=[root.encode() for root in self._cfg.attestation_roots],
            )
            webauthn = {
                "credentialId": b64u(verified.credential_id),
                "publicKey": b64u(verified.public_key),
                "signCount": verified.sign_count,
                "aaguid": verified.aaguid,
                "deviceType": verified.device_type,
                "fmt": verified.attestation_format,
            }

        def change(current: Rendezvous) -> Rendezvous:
            refuse_finished(current)
            if current.state != RendezvousState.CLAIMED:
                raise ConflictError(ErrorCode.ENROLMENT_WRONG_STATE, "the key is already bound")
            if current.confirmed:
                return msgspec.structs.replace(
                    current, webauthn=webauthn, state=RendezvousState.CONFIRMED, device_id=str(uuid.uuid4())
                )
            return msgspec.structs.replace(current, webauthn=webauthn, state=RendezvousState.BOUND)

        rdv = await self.store.update(rendezvous_id, change)
        await self._audit.record(
            "enrolment.bound",
            actor=None,
            actor_kind="device",
            structure_id=rdv.structure_id,
            target=rdv.id[:8],
            details={"binding": str(rdv.binding)},
        )
        if rdv.state == RendezvousState.CONFIRMED:
            await self._create_device(rdv)
        return EnrolmentStatus(state=rdv.state, expires_in=rdv.expires_in())

    async def complete(self, rendezvous_id: str, key: PhoneKey) -> TokenResponse:
        """Hand the phone its first tokens, once: afterwards the rendezvous is spent."""
        rdv, _ = await self.store.load(rendezvous_id)
        refuse_finished(rdv)
        self._same_key(rdv, key)
        if rdv.state != RendezvousState.CONFIRMED or rdv.device_id is None:
            raise ConflictError(
                ErrorCode.ENROLMENT_PENDING,
                "waiting for the confirmation on the web page",
                retry_after=1,
                headers={"Retry-After": "1"},
            )

        def change(current: Rendezvous) -> Rendezvous:
            refuse_finished(current)
            if current.state != RendezvousState.CONFIRMED:
                raise ConflictError(ErrorCode.ENROLMENT_WRONG_STATE, "not confirmed")
            return msgspec.structs.replace(current, state=RendezvousState.COMPLETED)

        rdv = await self.store.update(rendezvous_id, change)
        return await self._mint(uuid.UUID(rdv.device_id or ""))

    # internals --------------------------------------------------------------------------------

    @staticmethod
    def _same_key(rdv: Rendezvous, key: PhoneKey) -> None:
        if rdv.jkt is None or not hmac.compare_digest(rdv.jkt, key.jkt):
            raise DomainError(ErrorCode.BINDING_INVALID, "this enrolment was claimed with another key")

    async def _rate_limit_ip(self, client_ip: str) -> None:
        count = await self._eph.incr(f"rl:claim:{client_ip}", 60)
        if count > self._cfg.claims_per_ip_per_minute:
            raise RateLimitedError(retry_after=60, detail="too many enrolment claims from this address")

    async def _wrong_secret(self, rdv: Rendezvous) -> None:
        limit = self._cfg.max_wrong_secrets

        def change(current: Rendezvous) -> Rendezvous:
            count = current.wrong_secrets + 1
            state = RendezvousState.REJECTED if count >= limit else current.state
            return msgspec.structs.replace(current, wrong_secrets=count, state=state)

        updated = await self.store.update(rdv.id, change)
        await self._audit.record(
            "enrolment.bad_secret",
            actor=None,
            actor_kind="device",
            structure_id=rdv.structure_id,
            target=rdv.id[:8],
            details={"attempts": updated.wrong_secrets, "burnt": updated.finished},
        )
        raise DomainError(ErrorCode.ENROLMENT_BAD_SECRET, "the QR secret does not match")

    async def _device_facts(self, professional_id: uuid.UUID, jkt: str) -> tuple[int, bool]:
        """Active devices of the professional, and whether this key is already a device: one query."""
        active = (
            select(func.count(Device.id))
            .where(Device.professional_id == professional_id, Device.revoked_at.is_(None))
            .scalar_subquery()
        )
        taken = select(Device.id).where(Device.jkt == jkt).exists()
        async with self._db.read() as session:
            count, exists = (await session.execute(select(active, taken))).one()
        return int(count or 0), bool(exists)

    def _refuse_if_full(self, active_devices: int) -> None:
        if active_devices >= self._cfg.max_devices_per_professional:
            raise ConflictError(
                ErrorCode.DEVICE_LIMIT_REACHED,
                f"at most {self._cfg.max_devices_per_professional} devices per professional",
            )

    async def _create_device(self, rdv: Rendezvous, *, also_audit: dict[str, Any] | None = None) -> None:
        """Insert the device, exactly once (the rendezvous moved to CONFIRMED by compare-and-set)."""
        professional_id = uuid.UUID(rdv.professional_id)
        try:
            async with self._db.transaction() as session:
                if also_audit is not None:
                    await self._audit.record(**also_audit, session=session)
                count = await session.scalar(
                    select(func.count(Device.id)).where(
                        Device.professional_id == professional_id, Device.revoked_at.is_(None)
                    )
                )
                if int(count or 0) >= self._cfg.max_devices_per_professional:
                    raise ConflictError(ErrorCode.DEVICE_LIMIT_REACHED, "device limit reached")
                professional = await session.get(Professional, professional_id)
                webauthn = rdv.webauthn or {}
                device = Device(
                    id=uuid.UUID(rdv.device_id or ""),
                    professional_id=professional_id,
                    structure_id=uuid.UUID(rdv.structure_id) if rdv.structure_id else None,
                    name=rdv.device_name or "Téléphone",
                    platform=str(rdv.platform),
                    binding=str(rdv.binding),
                    jkt=rdv.jkt or "",
                    public_jwk=rdv.jwk or {},
                    webauthn_credential_id=b64u_decode(webauthn["credentialId"]) if webauthn else None,
                    webauthn_public_key=b64u_decode(webauthn["publicKey"]) if webauthn else None,
                    webauthn_sign_count=int(webauthn.get("signCount", 0)),
                    webauthn_aaguid=webauthn.get("aaguid"),
                    webauthn_device_type=webauthn.get("deviceType"),
                    attestation_format=webauthn.get("fmt"),
                    push_provider=str(rdv.push_provider) if rdv.push_provider else None,
                    push_token=rdv.push_token,
                    push_token_registered_at=dt.datetime.now(dt.UTC) if rdv.push_token else None,
                    last_seen_at=None,
                )
                session.add(device)
                await self._audit.record(
                    "device.enrolled",
                    actor=professional.idnat if professional else None,
                    structure_id=rdv.structure_id,
                    device_id=device.id,
                    target=str(device.id),
                    details={
                        "platform": device.platform,
                        "binding": device.binding,
                        "attestation": device.attestation_format or "none",
                    },
                    session=session,
                )
        except DomainError:
            await self.store.update(rdv.id, lambda r: msgspec.structs.replace(r, state=RendezvousState.REJECTED))
            raise
