"""Device key binding: a WebAuthn registration or an app-held ES256 key signing the challenge.

Pure, keyword-only checks in py_webauthn's style: each returns a ``Verified…`` value or raises
``DomainError(BINDING_INVALID | ATTESTATION_REQUIRED)``. No HTTP here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from webauthn import generate_registration_options, options_to_json, verify_registration_response
from webauthn.helpers import parse_attestation_object
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from contracts.errors import ErrorCode
from core.errors import DomainError

BIND_JWS_TYP = "mssc-bind+jwt"


@dataclass(frozen=True, slots=True)
class VerifiedWebauthnBinding:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    device_type: str
    attestation_format: str


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def webauthn_creation_options(
    *, rp_id: str, rp_name: str, challenge: bytes, user_handle: bytes, device_name: str, attestation_required: bool
) -> dict[str, Any]:
    """Creation options for the phone. The user name is generic: the claimant is not yet trusted."""
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_handle,
        user_name=f"mss-companion · {device_name}",
        user_display_name=device_name,
        challenge=challenge,
        timeout=120_000,
        attestation=(
            AttestationConveyancePreference.DIRECT if attestation_required else AttestationConveyancePreference.NONE
        ),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED
        ),
        supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256],
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def verify_webauthn_binding(
    *,
    credential: dict[str, Any],
    challenge: bytes,
    rp_id: str,
    origins: Sequence[str],
    attestation_required: bool,
    attestation_roots: Sequence[bytes],
) -> VerifiedWebauthnBinding:
    """Check a registration: challenge, origin, RP id, user verification, and attestation policy.

    With ``attestation_required`` the statement must carry a certificate chain (``x5c``) that ends
    at one of ``attestation_roots``: py_webauthn accepts an unchecked chain when given no roots.
    """
    roots = list(attestation_roots)
    if attestation_required and not roots:
        raise DomainError(ErrorCode.ATTESTATION_REQUIRED, "no attestation roots are configured")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=list(origins),
            require_user_verification=True,
            supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256],
            pem_root_certs_bytes_by_fmt=(
                {fmt: roots for fmt in AttestationFormat if fmt != AttestationFormat.NONE}
                if attestation_required
                else None
            ),
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise DomainError(ErrorCode.BINDING_INVALID, "the WebAuthn registration does not verify") from exc
    if attestation_required:
        statement = parse_attestation_object(verified.attestation_object).att_stmt
        if verified.fmt == AttestationFormat.NONE or not statement.x5c:
            raise DomainError(ErrorCode.ATTESTATION_REQUIRED, "an attestation certificate chain is required")
    return VerifiedWebauthnBinding(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        device_type=_text(verified.credential_device_type),
        attestation_format=_text(verified.fmt),
    )


def _text(value: object) -> str:
    """py_webauthn returns enums or plain strings depending on the field and version."""
    return str(getattr(value, "value", value))


def verify_es256_binding(
    *, signature: str, jwk: dict[str, Any], rendezvous_id: str, challenge: str, audience: str
) -> None:
    """The claimed key signed ``{rdv, challenge, aud}``: the app holds the key it claimed with."""
    try:
        header = jwt.get_unverified_header(signature)
        if header.get("typ") != BIND_JWS_TYP or header.get("alg") != "ES256":
            raise DomainError(ErrorCode.BINDING_INVALID, "binding signature header is not ES256 mssc-bind+jwt")
        key = jwt.PyJWK(jwk, algorithm="ES256").key
        claims = jwt.decode(
            signature, key, algorithms=["ES256"], audience=audience, options={"require": ["aud", "rdv", "challenge"]}
        )
    except DomainError:
        raise
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise DomainError(ErrorCode.BINDING_INVALID, "binding signature does not verify") from exc
    if claims.get("rdv") != rendezvous_id or claims.get("challenge") != challenge:
        raise DomainError(ErrorCode.BINDING_INVALID, "binding signature is for another enrolment")
