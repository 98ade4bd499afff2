"""Device-bound access tokens: short JWTs (RFC 9068 ``at+jwt``), ES256, bound to the device key.

Claims: ``iss``, ``aud``, ``sub`` and ``client_id`` (the device id), ``idnat`` (the professional),
``sid`` (the structure acted for, when there is one), ``scope`` (space-separated, see
:mod:`backend.auth.scopes`), ``cnf.jkt`` (RFC 9449 §6.1: the thumbprint every DPoP proof must be
signed with), ``iat``, ``nbf``, ``exp`` (at most 5 minutes later) and ``jti``. The header names
the signing key (``kid``) and the type (``typ: at+jwt``), so no other JWT signed by the same keys
can pass as an access token.

A verified token is only half the check: the request's DPoP proof (:mod:`backend.auth.dpop`, with
``expected_jkt=verified.jkt``) and the revocation state (:mod:`backend.auth.revocation`) complete it.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backend.auth.jws import JwsError, parse_compact, sign_es256, verify_es256
from backend.auth.scopes import format_scopes, parse_scopes
from backend.auth.signing_keys import SigningKeys
from contracts.errors import ErrorCode
from core.errors import AuthError, ForbiddenError

#: Longest lifetime an access token may have; revocation fan-out relies on it.
MAX_TTL_S = 300
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
_ACCEPTED_TYP = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    #: Seconds until ``exp`` (the ``expires_in`` of the token response).
    expires_in: int
    jti: str
    #: Space-separated scopes, as in the token and the token response.
    scope: str


@dataclass(frozen=True, slots=True)
class VerifiedAccessToken:
    device_id: str
    idnat: str
    #: Thumbprint of the device key (``cnf.jkt``); the DPoP proof must be signed by this key.
    jkt: str
    scopes: frozenset[str]
    structure_id: str | None
    iat: int
    exp: int
    jti: str


class AccessTokenIssuer:
    """Issues and verifies access tokens with one :class:`SigningKeys` set."""

    def __init__(self, keys: SigningKeys, *, issuer: str, audience: str, ttl_s: int, cache_size: int = 4096) -> None:
        if not 0 < ttl_s <= MAX_TTL_S:
            raise ValueError(f"access token ttl must be within 1..{MAX_TTL_S} s")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        #: Tokens whose signature and claims were verified: token → (kid, nbf, result). A phone
        #: sends the same token for up to 5 minutes; only an identical string (signature included)
        #: hits, and times and the key's presence are checked again on every hit.
        self._verified: OrderedDict[str, tuple[str, int, VerifiedAccessToken]] = OrderedDict()
        self._cache_size = cache_size

    def issue(
        self,
        *,
        device_id: str,
        professional_idnat: str,
        jkt: str,
        scopes: Sequence[str],
        structure_id: str | None,
        now: int | None = None,
    ) -> IssuedAccessToken:
        """Sign a token for a device. ``scopes`` must be in the vocabulary (``ValueError`` otherwise)."""
        if isinstance(scopes, str):
            raise TypeError("scopes is a sequence of scopes, not a string")
        scope = format_scopes(scopes)
        iat = int(time.time()) if now is None else now
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(device_id),
            "client_id": str(device_id),
            "idnat": professional_idnat,
            "scope": scope,
            "cnf": {"jkt": jkt},
            "iat": iat,
            "nbf": iat,
            "exp": iat + self.ttl_s,
            "jti": jti,
        }
        if structure_id is not None:
            claims["sid"] = str(structure_id)
        key = self.keys.signing_key
        token = sign_es256(header={"typ": TOKEN_TYPE, "kid": key.kid}, payload=claims, key=key.private_key)
        return IssuedAccessToken(token=token, expires_in=self.ttl_s, jti=jti, scope=scope)

    def verify(self, token: str, *, skew_s: int, now: int | None = None) -> VerifiedAccessToken:
        """Check type, key, signature, issuer, audience and times; raise ``AuthError`` otherwise.

        ``INVALID_TOKEN`` for anything wrong with the token itself, ``TOKEN_EXPIRED`` for a token that
        was good and has run out (the phone refreshes), checked only after the signature.
        """
        current = int(time.time()) if now is None else now
        cached = self._verified.get(token)
        if cached is not None:
            kid, nbf, verified = cached
            if self.keys.verification_key(kid) is None:  # the key was retired since
                del self._verified[token]
                raise _invalid("unknown signing key")
            _check_times(verified.iat, nbf, verified.exp, current, skew_s)
            self._verified.move_to_end(token)
            return verified
        kid, nbf, verified = self._verify_signed(token)
        _check_times(verified.iat, nbf, verified.exp, current, skew_s)
        self._verified[token] = (kid, nbf, verified)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return verified

    def _verify_signed(self, token: str) -> tuple[str, int, VerifiedAccessToken]:
        """Everything but the clock: format, type, key, signature, issuer, audience, claims."""
        try:
            jws = parse_compact(token)
        except JwsError:
            raise _invalid("malformed token") from None
        header, claims = jws.header, jws.payload
        if header.get("alg") != "ES256":
            raise _invalid("unsupported alg")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
            raise _invalid("not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _invalid("unknown signing key")
        key = self.keys.verification_key(kid)
        if key is None:
            raise _invalid("unknown signing key")
        if not verify_es256(jws, key):
            raise _invalid("bad signature")
        if claims.get("iss") != self.issuer:
            raise _invalid("wrong issuer")
        aud = claims.get("aud")
        if aud != self.audience and not (isinstance(aud, list) and self.audience in aud):
            raise _invalid("wrong audience")
        iat, nbf, exp = _int(claims, "iat"), claims.get("nbf", 0), _int(claims, "exp")
        if type(nbf) is not int:
            raise _invalid("bad nbf")
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        sid = claims.get("sid")
        if not isinstance(jkt, str) or not (sid is None or isinstance(sid, str)):
            raise _invalid("missing claims")
        return (
            kid,
            nbf,
            VerifiedAccessToken(
                device_id=_str(claims, "sub"),
                idnat=_str(claims, "idnat"),
                jkt=jkt,
                scopes=parse_scopes(_str(claims, "scope")),
                structure_id=sid,
                iat=iat,
                exp=exp,
                jti=_str(claims, "jti"),
            ),
        )


def require_scope(verified: VerifiedAccessToken, scope: str) -> None:
    """Raise ``ForbiddenError(INSUFFICIENT_SCOPE)`` unless the token holds ``scope``."""
    if scope not in verified.scopes:
        raise ForbiddenError(ErrorCode.INSUFFICIENT_SCOPE, f"requires scope {scope}", scope=scope)


def _check_times(iat: int, nbf: int, exp: int, now: int, skew_s: int) -> None:
    if now - skew_s >= exp:
        raise AuthError(ErrorCode.TOKEN_EXPIRED, "access token expired")
    if iat > now + skew_s or nbf > now + skew_s:
        raise _invalid("token not yet valid")


def _int(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int:  # bool is an int subclass; floats are not issued here
        raise _invalid(f"bad {name}")
    return value


def _str(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str):
        raise _invalid("missing claims")
    return value


def _invalid(detail: str) -> AuthError:
    return AuthError(ErrorCode.INVALID_TOKEN, detail)


__all__ = ["MAX_TTL_S", "TOKEN_TYPE", "AccessTokenIssuer", "IssuedAccessToken", "VerifiedAccessToken", "require_scope"]
