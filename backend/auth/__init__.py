"""Device authentication: device-bound access tokens, DPoP proofs, refresh tokens, revocation.

Pure, typed, keyword-only checks in the py_webauthn style: each returns a ``Verified…`` value or
raises one ``core.errors.AuthError`` (or ``ForbiddenError``) with a stable code. No HTTP in here;
the API layer reads the headers and maps the errors. A phone request is accepted when, in order::

    token = issuer.verify(access_token, skew_s=s.clock_skew_s)                # INVALID_TOKEN / TOKEN_EXPIRED
    await verify_dpop_proof(proof=..., method=..., url=..., access_token=access_token,
                            nonces=nonces, replay=ephemeral, max_age_s=s.dpop_max_age_s,
                            skew_s=s.clock_skew_s, expected_jkt=token.jkt)     # DPOP_* / USE_DPOP_NONCE
    await revocations.check(token)                                             # DEVICE_REVOKED / TOKEN_STALE
    require_scope(token, mailbox_scope(mailbox_id, "read"))                    # INSUFFICIENT_SCOPE

Modules: ``jwk`` (keys, thumbprints, base64url), ``jws`` (compact ES256), ``signing_keys`` (server
keys and rotation), ``dpop``, ``access_tokens``, ``scopes``, ``refresh_tokens``, ``revocation``.
"""

from backend.auth.access_tokens import (
    AccessTokenIssuer,
    IssuedAccessToken,
    VerifiedAccessToken,
    require_scope,
)
from backend.auth.dpop import DpopNonces, VerifiedDpopProof, verify_dpop_proof
from backend.auth.jwk import JwkError, jwk_thumbprint, public_jwk, validate_public_jwk
from backend.auth.refresh_tokens import RefreshTokenReuse, RefreshTokens, RotatedRefreshToken
from backend.auth.revocation import DeviceRevocations
from backend.auth.scopes import DEVICE, mailbox_scope
from backend.auth.signing_keys import SigningKeys, ensure_dev_key, rotate

__all__ = [
    "DEVICE",
    "AccessTokenIssuer",
    "DeviceRevocations",
    "DpopNonces",
    "IssuedAccessToken",
    "JwkError",
    "RefreshTokenReuse",
    "RefreshTokens",
    "RotatedRefreshToken",
    "SigningKeys",
    "VerifiedAccessToken",
    "VerifiedDpopProof",
    "ensure_dev_key",
    "jwk_thumbprint",
    "mailbox_scope",
    "public_jwk",
    "require_scope",
    "rotate",
    "validate_public_jwk",
    "verify_dpop_proof",
]
