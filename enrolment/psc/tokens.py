"""Verification of the JWTs PSC returns: the ID token and, optionally, a signed userinfo.

Pure keyword-only functions that return a verified value or raise one ``DomainError``. PSC may
sign with a JWKS key (ES256/RS256…) or with the client secret (HS256): the header's ``alg``
decides which key family is tried, never both, and ``none`` is never accepted.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import msgspec

from contracts.errors import ErrorCode
from core.errors import DomainError

ASYMMETRIC_ALGS = frozenset({"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
HMAC_ALGS = frozenset({"HS256", "HS384", "HS512"})


@dataclass(frozen=True, slots=True)
class JoseHeader:
    alg: str
    kid: str | None

    @property
    def uses_client_secret(self) -> bool:
        return self.alg in HMAC_ALGS


@dataclass(frozen=True, slots=True)
class VerifiedIdToken:
    """An ID token whose signature, issuer, audience, lifetime, nonce and acr were checked."""

    sub: str
    acr: str
    auth_time: int | None
    #: PSC's ``authMode`` claim (``CARD`` for a CPS card), when present.
    auth_mode: str | None
    claims: Mapping[str, Any] = field(repr=False)


def read_header(token: str) -> JoseHeader:
    """The unverified JOSE header; only tells which key to verify with."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token is not a JWS") from None
    alg = header.get("alg")
    kid = header.get("kid")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGS | HMAC_ALGS:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token uses an unaccepted algorithm")
    return JoseHeader(alg=alg, kid=kid if isinstance(kid, str) else None)


def candidate_keys(jwks: Sequence[Mapping[str, Any]], *, header: JoseHeader) -> list[jwt.PyJWK]:
    """Signing keys of the set that may have produced a token with this header.

    Each key is bound to the header's ``alg`` (PyJWT then refuses a key of another type), so a
    JWKS key can never be used as an HMAC secret.
    """
    keys: list[jwt.PyJWK] = []
    for raw in jwks:
        if raw.get("use") not in (None, "sig") or raw.get("alg") not in (None, header.alg):
            continue
        if header.kid is not None and raw.get("kid") != header.kid:
            continue
        try:
            keys.append(jwt.PyJWK(dict(raw), algorithm=header.alg))
        except jwt.PyJWTError:
            continue
    return keys


def verify_jws(token: str, *, header: JoseHeader, keys: Sequence[jwt.PyJWK], client_secret: str) -> dict[str, Any]:
    """Check the signature and return the JSON payload; no claim is checked here."""
    payload: bytes | None = None
    jws = jwt.PyJWS()
    if header.uses_client_secret:
        if not client_secret:
            raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "HMAC-signed PSC token but no client secret")
        try:
            payload = jws.decode(token, key=client_secret.encode(), algorithms=[header.alg])
        except jwt.PyJWTError:
            payload = None
    else:
        for key in keys:
            try:
                payload = jws.decode(token, key=key, algorithms=[header.alg])
                break
            except jwt.PyJWTError:
                continue
    if payload is None:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token signature is invalid")
    try:
        claims = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        claims = None
    if not isinstance(claims, dict):
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token payload is not a JSON object")
    return claims


def check_id_token(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    accepted_acr: Collection[str],
    now: float,
    leeway_s: float,
) -> VerifiedIdToken:
    """OIDC Core §3.1.3.7 checks, then PSC's authentication level."""
    _check_issuer_audience(claims, issuer=issuer, client_id=client_id, required=True)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "ID token has no sub")
    exp = _number(claims.get("exp"))
    iat = _number(claims.get("iat"))
    if exp is None or iat is None:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "ID token lacks exp or iat")
    if now > exp + leeway_s:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "ID token has expired")
    if iat > now + leeway_s:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "ID token is issued in the future")
    nbf = _number(claims.get("nbf"))
    if nbf is not None and nbf > now + leeway_s:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "ID token is not valid yet")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not nonce or not _same(token_nonce, nonce):
        raise DomainError(ErrorCode.PSC_NONCE_MISMATCH, "ID token nonce does not match the login request")
    acr = claims.get("acr")
    if not isinstance(acr, str) or acr not in accepted_acr:
        raise DomainError(ErrorCode.PSC_ACR_TOO_LOW, "authentication level is below what is required")
    auth_time = _number(claims.get("auth_time"))
    auth_mode = claims.get("authMode")
    return VerifiedIdToken(
        sub=sub,
        acr=acr,
        auth_time=int(auth_time) if auth_time is not None else None,
        auth_mode=auth_mode if isinstance(auth_mode, str) and auth_mode else None,
        claims=claims,
    )


def check_userinfo_claims(claims: Mapping[str, Any], *, issuer: str, client_id: str) -> None:
    """A signed userinfo SHOULD carry ``iss`` and ``aud`` (OIDC Core §5.3.2); if present they must match."""
    _check_issuer_audience(claims, issuer=issuer, client_id=client_id, required=False)


def _check_issuer_audience(claims: Mapping[str, Any], *, issuer: str, client_id: str, required: bool) -> None:
    iss = claims.get("iss")
    if (required or iss is not None) and (not isinstance(iss, str) or iss.rstrip("/") != issuer.rstrip("/")):
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token issuer is not the configured issuer")
    aud = claims.get("aud")
    if aud is None and not required:
        return
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token is not meant for this client")
    azp = claims.get("azp")
    if (azp is not None or len(audiences) > 1) and azp != client_id:
        raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC token was issued to another party")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
