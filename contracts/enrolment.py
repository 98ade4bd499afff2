"""Wire types of the QR enrolment: what the QR holds and what the phone sends and receives."""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import StrEnum
from typing import Annotated, Any

import msgspec

#: Path of the universal link in the QR: ``{public_url}/e/{rendezvous_id}#{secret}``.
QR_PATH_PREFIX = "/e/"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
PushToken = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=r"^[\x21-\x7e]+$")]
Opaque = Annotated[str, msgspec.Meta(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


class PushProvider(StrEnum):
    APNS = "apns"
    FCM = "fcm"
    NONE = "none"


class BindingMethod(StrEnum):
    WEBAUTHN = "webauthn"
    ES256 = "es256"


class RendezvousState(StrEnum):
    WAITING = "waiting"  # QR shown, nobody claimed it
    CLAIMED = "claimed"  # a phone claimed it; the web shows the check code
    BOUND = "bound"  # the phone proved its key (WebAuthn or ES256); waiting for the person's confirmation
    CONFIRMED = "confirmed"  # the person confirmed the code on the web; device created
    COMPLETED = "completed"  # the phone fetched its first tokens
    REJECTED = "rejected"
    EXPIRED = "expired"


class PushRegistration(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    provider: PushProvider
    token: PushToken | None = None


class ClaimRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Sent with a DPoP proof signed by the phone's fresh key (the key the device will be)."""

    #: base64url(HMAC-SHA256(secret, "mssc-claim|" + rendezvous_id + "|" + jkt)): proves the QR secret
    #: without sending it, bound to the claiming key.
    secret_proof: Annotated[str, msgspec.Meta(min_length=16, max_length=128)]
    device_name: Name
    platform: Platform
    binding: BindingMethod
    push: PushRegistration | None = None


class BindingChallenge(msgspec.Struct, rename="camel"):
    method: BindingMethod
    #: base64url random challenge: ES256 phones sign it; WebAuthn phones find it in the options.
    challenge: str
    #: PublicKeyCredentialCreationOptions JSON (WebAuthn), as ``navigator.credentials.create`` takes it.
    webauthn_options: dict[str, Any] | None = None


class ClaimResponse(msgspec.Struct, rename="camel"):
    state: RendezvousState
    binding: BindingChallenge
    expires_in: int
    #: How many digits the check code has; the phone computes the code itself and shows it.
    check_code_digits: int


class BindRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    #: ES256: compact JWS (``typ: mssc-bind+jwt``) by the claimed key over ``{rdv, challenge, aud}``.
    es256_signature: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    #: WebAuthn: the RegistrationResponseJSON from ``navigator.credentials.create``.
    webauthn_credential: dict[str, Any] | None = None


class EnrolmentStatus(msgspec.Struct, rename="camel"):
    state: RendezvousState
    expires_in: int


class TokenResponse(msgspec.Struct, rename="camel"):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    scope: str
    device_id: str
    #: The provider said the device's push token is dead (or it has none): register one
    #: (``PUT /api/v1/me/push``). Phones refresh every few minutes, so they learn it soon.
    push_token_needed: bool = False


def check_code(secret: bytes, jkt: str, digits: int) -> str:
    """The short code both screens show: derived from the QR secret and the claiming key."""
    mac = hmac.new(secret, f"mssc-check|{jkt}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(mac[:8], "big") % (10**digits)).zfill(digits)


def claim_proof(secret: bytes, rendezvous_id: str, jkt: str) -> str:
    """What ``ClaimRequest.secret_proof`` must hold (computed by the phone, checked by the server)."""
    mac = hmac.new(secret, f"mssc-claim|{rendezvous_id}|{jkt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
