from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from backend.auth.access_tokens import AccessTokenIssuer, require_scope
from backend.auth.jwk import b64url_decode, b64url_encode
from backend.auth.jws import sign_es256
from backend.auth.scopes import DEVICE, format_scopes, mailbox_rights, mailbox_scope
from backend.auth.signing_keys import SigningKeys, ensure_dev_key, rotate
from contracts.errors import ErrorCode
from core.errors import AuthError, ForbiddenError

ISS = "https://api.mss-companion.test"
AUD = "https://api.mss-companion.test"
MAILBOX = uuid.UUID("0190f0b4-7d5e-7000-8000-000000000001")


@pytest.fixture
def issuer(signing_keys: SigningKeys) -> AccessTokenIssuer:
    return AccessTokenIssuer(signing_keys, issuer=ISS, audience=AUD, ttl_s=300)


def _issue(issuer: AccessTokenIssuer, *, now: int | None = None, jkt: str = "A" * 43) -> str:
    return issuer.issue(
        device_id="0190f0b4-0000-7000-8000-00000000d001",
        professional_idnat="810000000001",
        jkt=jkt,
        scopes=[DEVICE, mailbox_scope(MAILBOX, "read")],
        structure_id="st-1",
        now=now,
    ).token


def _code(exc: pytest.ExceptionInfo[AuthError]) -> ErrorCode:
    return exc.value.code


def test_issue_and_verify(issuer: AccessTokenIssuer, signing_keys: SigningKeys) -> None:
    issued = issuer.issue(
        device_id="dev-1",
        professional_idnat="810000000001",
        jkt="A" * 43,
        scopes=[DEVICE, mailbox_scope(MAILBOX, "read"), DEVICE],
        structure_id="st-1",
    )
    assert issued.expires_in == 300
    assert issued.scope == f"device mbx:{MAILBOX}:read"
    verified = issuer.verify(issued.token, skew_s=5)
    assert verified.device_id == "dev-1"
    assert verified.idnat == "810000000001"
    assert verified.jkt == "A" * 43
    assert verified.scopes == frozenset({"device", f"mbx:{MAILBOX}:read"})
    assert verified.structure_id == "st-1"
    assert verified.jti == issued.jti
    assert verified.exp - verified.iat == 300

    # The token is a standard RFC 9068 JWT: an independent library reads it the same way.
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": signing_keys.signing_key.kid}
    claims = jwt.decode(
        issued.token,
        signing_keys.signing_key.public_key,
        algorithms=["ES256"],
        audience=AUD,
        issuer=ISS,
        options={"require": ["exp", "iat", "nbf", "jti", "sub"]},
    )
    assert claims["cnf"] == {"jkt": "A" * 43}
    assert claims["client_id"] == claims["sub"] == "dev-1"
    assert claims["sid"] == "st-1"


def test_structure_is_optional(issuer: AccessTokenIssuer) -> None:
    issued = issuer.issue(device_id="d", professional_idnat="8", jkt="A" * 43, scopes=[DEVICE], structure_id=None)
    assert "sid" not in jwt.decode(issued.token, options={"verify_signature": False})
    assert issuer.verify(issued.token, skew_s=0).structure_id is None


def test_expired_token(issuer: AccessTokenIssuer) -> None:
    token = _issue(issuer, now=int(time.time()) - 400)
    with pytest.raises(AuthError) as exc:
        issuer.verify(token, skew_s=5)
    assert _code(exc) == ErrorCode.TOKEN_EXPIRED
    assert exc.value.status == 401
    # Within the skew, it still passes.
    just_expired = _issue(issuer, now=int(time.time()) - 302)
    assert issuer.verify(just_expired, skew_s=5)


def test_token_from_the_future_refused(issuer: AccessTokenIssuer) -> None:
    token = _issue(issuer, now=int(time.time()) + 60)
    with pytest.raises(AuthError) as exc:
        issuer.verify(token, skew_s=5)
    assert _code(exc) == ErrorCode.INVALID_TOKEN


def test_token_signed_by_an_unknown_key(issuer: AccessTokenIssuer, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    ensure_dev_key(other_dir)
    stranger = AccessTokenIssuer(SigningKeys.load(other_dir), issuer=ISS, audience=AUD, ttl_s=300)
    with pytest.raises(AuthError, match="unknown signing key") as exc:
        issuer.verify(_issue(stranger), skew_s=5)
    assert _code(exc) == ErrorCode.INVALID_TOKEN


def test_token_signed_by_another_key_under_our_kid(issuer: AccessTokenIssuer, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    ensure_dev_key(other_dir)
    other_key = SigningKeys.load(other_dir).signing_key.private_key
    claims = jwt.decode(_issue(issuer), options={"verify_signature": False})
    forged = sign_es256(header={"typ": "at+jwt", "kid": issuer.keys.signing_key.kid}, payload=claims, key=other_key)
    with pytest.raises(AuthError, match="bad signature"):
        issuer.verify(forged, skew_s=5)


def test_tampered_claims_refused(issuer: AccessTokenIssuer) -> None:
    h, p, s = _issue(issuer).split(".")
    claims = json.loads(b64url_decode(p))
    claims["scope"] = f"device mbx:{MAILBOX}:send"
    tampered = ".".join([h, b64url_encode(json.dumps(claims).encode()), s])
    with pytest.raises(AuthError) as exc:
        issuer.verify(tampered, skew_s=5)
    assert _code(exc) == ErrorCode.INVALID_TOKEN


@pytest.mark.parametrize(("issuer_name", "audience"), [(ISS, "https://elsewhere"), ("https://elsewhere", AUD)])
def test_wrong_issuer_or_audience(
    signing_keys: SigningKeys, issuer: AccessTokenIssuer, issuer_name: str, audience: str
) -> None:
    other = AccessTokenIssuer(signing_keys, issuer=issuer_name, audience=audience, ttl_s=300)
    with pytest.raises(AuthError, match="wrong") as exc:
        issuer.verify(_issue(other), skew_s=5)
    assert _code(exc) == ErrorCode.INVALID_TOKEN


def test_alg_none_and_hs256_refused(issuer: AccessTokenIssuer, signing_keys: SigningKeys) -> None:
    claims = jwt.decode(_issue(issuer), options={"verify_signature": False})
    kid = signing_keys.signing_key.kid
    none_header = b64url_encode(b'{"alg":"none","typ":"at+jwt","kid":"%s"}' % kid.encode())
    none_token = f"{none_header}.{b64url_encode(json.dumps(claims).encode())}."
    # Key confusion: HMAC keyed with the public key PEM, which anyone can fetch from the JWKS.
    public_pem = signing_keys.signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_token = _hs256(claims, kid, public_pem)
    for token in (none_token, hs_token):
        with pytest.raises(AuthError, match="unsupported alg") as exc:
            issuer.verify(token, skew_s=5)
        assert _code(exc) == ErrorCode.INVALID_TOKEN


def _hs256(claims: dict[str, object], kid: str, secret: bytes) -> str:
    h = b64url_encode(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    p = b64url_encode(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url_encode(sig)}"


def test_other_jwt_types_signed_by_our_keys_refused(issuer: AccessTokenIssuer, signing_keys: SigningKeys) -> None:
    """A JWT our keys signed for another purpose (e.g. an operator bearer token) is no access token."""
    claims = jwt.decode(_issue(issuer), options={"verify_signature": False})
    for typ in ("JWT", "dpop+jwt", None):
        header = {"kid": signing_keys.signing_key.kid} | ({"typ": typ} if typ else {})
        token = sign_es256(header=header, payload=claims, key=signing_keys.signing_key.private_key)
        with pytest.raises(AuthError, match="not an access token"):
            issuer.verify(token, skew_s=5)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "e30.e30.", "!!.e30.AA", "x" * 9000])
def test_malformed_tokens_refused(issuer: AccessTokenIssuer, token: str) -> None:
    with pytest.raises(AuthError) as exc:
        issuer.verify(token, skew_s=5)
    assert _code(exc) == ErrorCode.INVALID_TOKEN


def test_missing_binding_refused(issuer: AccessTokenIssuer, signing_keys: SigningKeys) -> None:
    claims = jwt.decode(_issue(issuer), options={"verify_signature": False})
    del claims["cnf"]
    token = sign_es256(
        header={"typ": "at+jwt", "kid": signing_keys.signing_key.kid},
        payload=claims,
        key=signing_keys.signing_key.private_key,
    )
    with pytest.raises(AuthError, match="missing claims"):
        issuer.verify(token, skew_s=5)


def test_require_scope(issuer: AccessTokenIssuer) -> None:
    verified = issuer.verify(_issue(issuer), skew_s=5)
    require_scope(verified, DEVICE)
    require_scope(verified, mailbox_scope(MAILBOX, "read"))
    with pytest.raises(ForbiddenError) as exc:
        require_scope(verified, mailbox_scope(MAILBOX, "send"))
    assert exc.value.code == ErrorCode.INSUFFICIENT_SCOPE
    assert exc.value.status == 403


def test_scope_vocabulary(issuer: AccessTokenIssuer) -> None:
    assert mailbox_scope(str(MAILBOX).upper(), "send") == f"mbx:{MAILBOX}:send"
    assert mailbox_rights([DEVICE, mailbox_scope(MAILBOX, "read"), mailbox_scope(MAILBOX, "send")]) == {
        MAILBOX: frozenset({"read", "send"})
    }
    for bad in (["admin"], [f"mbx:{MAILBOX}:delete"], ["mbx:not-a-uuid:read"], ["device mbx"]):
        with pytest.raises(ValueError, match="unknown scope"):
            format_scopes(bad)
        with pytest.raises(ValueError, match="unknown scope"):
            issuer.issue(device_id="d", professional_idnat="8", jkt="A" * 43, scopes=bad, structure_id=None)
    with pytest.raises(TypeError):
        issuer.issue(device_id="d", professional_idnat="8", jkt="A" * 43, scopes="device", structure_id=None)


def test_ttl_capped_at_five_minutes(signing_keys: SigningKeys) -> None:
    with pytest.raises(ValueError, match="ttl"):
        AccessTokenIssuer(signing_keys, issuer=ISS, audience=AUD, ttl_s=301)


def test_verified_token_cache_still_checks_time_and_key(keys_dir: Path) -> None:
    keys = SigningKeys.load(keys_dir)
    issuer = AccessTokenIssuer(keys, issuer=ISS, audience=AUD, ttl_s=300, cache_size=2)
    now = int(time.time())
    token = _issue(issuer, now=now)
    first = issuer.verify(token, skew_s=5, now=now)
    assert issuer.verify(token, skew_s=5, now=now + 10) is first  # served from the cache
    with pytest.raises(AuthError) as exc:
        issuer.verify(token, skew_s=5, now=now + 305)
    assert _code(exc) == ErrorCode.TOKEN_EXPIRED
    with pytest.raises(AuthError) as exc:
        issuer.verify(token, skew_s=5, now=now - 60)
    assert _code(exc) == ErrorCode.INVALID_TOKEN
    # The cache is bounded.
    for _ in range(3):
        issuer.verify(_issue(issuer, now=now), skew_s=5, now=now)
    assert len(issuer._verified) == 2
    # A retired key takes its cached tokens with it.
    issuer.verify(token, skew_s=5, now=now)
    rotate(keys_dir)
    (keys_dir / f"{first_kid(token)}.pem").unlink()
    keys.reload()
    with pytest.raises(AuthError, match="unknown signing key"):
        issuer.verify(token, skew_s=5, now=now)


def first_kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])
