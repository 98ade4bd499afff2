"""``PscClient`` against a hostile identity provider that returns crafted tokens.

The peer is a small Litestar app speaking just enough OIDC (discovery, JWKS, token, userinfo);
each test says what it should lie about. The authorization step is skipped: the client is handed
a code directly, which is all a forged callback can do anyway.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar import Litestar, Request, Response, get, post
from litestar.testing import AsyncTestClient
from psc_helpers import CLIENT_ID, CLIENT_SECRET, psc_settings

from contracts.errors import ErrorCode
from core.errors import DomainError
from enrolment.psc import PscClient, PscLogin

ORIGIN = "http://hostile.local"
ISSUER = f"{ORIGIN}/auth/realms/esante-wallet"
REALM = "/auth/realms/esante-wallet"
SUB = "f:00000000-0000-0000-0000-000000000000:810001234565"
DROP = object()

GOOD_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = (
        jwt.algorithms.ECAlgorithm if isinstance(key, ec.EllipticCurvePublicKey) else jwt.algorithms.RSAAlgorithm
    )
    return {**algorithm.to_jwk(key, as_dict=True), "kid": kid, "use": "sig"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class Hostile:
    """What the peer answers. Tests change the fields before calling the client."""

    nonce: str = ""
    signing: str = "es256"
    claims: dict[str, Any] = field(default_factory=dict)
    userinfo: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": SUB,
            "SubjectNameID": "810001234565",
            "given_name": "HÉLÈNE",
            "family_name": "GARNIER",
            "SubjectRefPro": {
                "exercices": [
                    {
                        "codeProfession": "21",
                        "activities": [
                            {
                                "codeModeExercice": "L",
                                "codeSectionPharmacien": "A",
                                "numeroFinessSite": "750000001",
                                "identifiantTechniqueDeLaStructure": "F750000001",
                                "raisonSocialeSite": "PHARMACIE DES TILLEULS",
                            }
                        ],
                    }
                ]
            },
        }
    )
    userinfo_mode: str = "json"
    userinfo_status: int = 200
    token_status: int = 200
    token_extra: dict[str, Any] = field(default_factory=dict)
    discovery_issuer: str = ISSUER
    requests: list[str] = field(default_factory=list)

    def id_token_claims(self) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": SUB,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "exp": now + 120,
            "iat": now,
            "auth_time": now - 5,
            "nonce": self.nonce,
            "acr": "eidas3",
            "authMode": "CARD",
        }
        claims.update(self.claims)
        return {k: v for k, v in claims.items() if v is not DROP}

    def sign(self, claims: dict[str, Any], how: str) -> str:
        match how:
            case "es256":
                return jwt.encode(claims, GOOD_KEY, algorithm="ES256", headers={"kid": "good"})
            case "es256-no-kid":
                return jwt.encode(claims, GOOD_KEY, algorithm="ES256")
            case "rs256":
                return jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "rsa"})
            case "other-key":
                return jwt.encode(claims, OTHER_KEY, algorithm="ES256", headers={"kid": "unknown"})
            case "other-key-same-kid":
                return jwt.encode(claims, OTHER_KEY, algorithm="ES256", headers={"kid": "good"})
            case "hs256":
                return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256")
            case "hs256-wrong-secret":
                return jwt.encode(claims, "another-secret-that-is-long-enough-for-hs256", algorithm="HS256")
            case "hs256-public-key":
                # Algorithm confusion: the public key (known to all) used as an HMAC secret.
                pem = GOOD_KEY.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                header = _b64({"alg": "HS256", "kid": "good"})
                body = _b64(claims)
                signature = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
                    f"{header}.{body}".encode(), pem
                )
                return f"{header}.{body}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
            case "none":
                return f"{_b64({'alg': 'none'})}.{_b64(claims)}."
            case "tampered":
                signed_header, _, signed = self.sign(claims, "es256").split(".")
                return f"{signed_header}.{_b64({**claims, 'sub': 'someone-else'})}.{signed}"
        raise AssertionError(how)


def hostile_app(state: Hostile) -> Litestar:
    @get(f"{REALM}/.well-known/wallet-openid-configuration")
    async def discovery() -> dict[str, Any]:
        state.requests.append("discovery")
        base = f"{ISSUER}/protocol/openid-connect"
        return {
            "issuer": state.discovery_issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/certs",
            "end_session_endpoint": f"{base}/logout",
        }

    @get(f"{REALM}/protocol/openid-connect/certs")
    async def certs() -> dict[str, Any]:
        state.requests.append("certs")
        return {"keys": [_jwk(GOOD_KEY.public_key(), "good"), _jwk(RSA_KEY.public_key(), "rsa")]}

    @post(f"{REALM}/protocol/openid-connect/token")
    async def token() -> Response[Any]:
        state.requests.append("token")
        if state.token_status != 200:
            return Response({"error": "invalid_grant"}, status_code=state.token_status)
        body = {
            "access_token": "at",
            "token_type": "Bearer",
            "expires_in": 120,
            "refresh_token": "rt",
            "id_token": state.sign(state.id_token_claims(), state.signing),
            **state.token_extra,
        }
        return Response({k: v for k, v in body.items() if v is not DROP}, status_code=200)

    @get(f"{REALM}/protocol/openid-connect/userinfo")
    async def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
        state.requests.append("userinfo")
        assert request.headers["authorization"] == "Bearer at"
        if state.userinfo_status != 200:
            return Response({"error": "invalid_token"}, status_code=state.userinfo_status)
        match state.userinfo_mode:
            case "json":
                return Response(state.userinfo, status_code=200)
            case "text":
                return Response("<html></html>", status_code=200, media_type="text/html")
            case mode:
                how, _, aud = mode.partition(":")
                claims = {**state.userinfo, "iss": ISSUER, "aud": aud or CLIENT_ID}
                return Response(state.sign(claims, how), status_code=200, media_type="application/jwt")

    return Litestar(route_handlers=[discovery, certs, token, userinfo])


@pytest.fixture
def hostile() -> Hostile:
    return Hostile()


@pytest.fixture
async def client(hostile: Hostile) -> AsyncIterator[PscClient]:
    async with AsyncTestClient(app=hostile_app(hostile), base_url=ORIGIN) as http:
        yield PscClient(psc_settings(issuer=ISSUER), redirect_uri=f"{ORIGIN}/cb", http=http, jwks_min_refresh_s=0)


async def complete(client: PscClient, hostile: Hostile, *, nonce: str | None = None) -> PscLogin:
    auth = await client.begin()
    hostile.nonce = auth.nonce if nonce is None else nonce
    return await client.complete(
        code="any",
        state=auth.state,
        expected_state=auth.state,
        nonce=auth.nonce,
        code_verifier=auth.code_verifier,
    )


async def refused(client: PscClient, hostile: Hostile, code: ErrorCode, *, nonce: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await complete(client, hostile, nonce=nonce)
    assert caught.value.code is code, caught.value.detail
    return caught.value


@pytest.mark.parametrize("signing", ["es256", "es256-no-kid", "rs256", "hs256"])
async def test_accepted_signatures(client: PscClient, hostile: Hostile, signing: str) -> None:
    hostile.signing = signing
    result = await complete(client, hostile)
    assert result.identity.sub == SUB
    assert result.identity.activities[0].is_titulaire
    assert (result.acr, result.auth_mode) == ("eidas3", "CARD")


@pytest.mark.parametrize(
    "signing",
    ["other-key", "other-key-same-kid", "hs256-wrong-secret", "hs256-public-key", "none", "tampered"],
)
async def test_bad_id_token_signature_is_refused(client: PscClient, hostile: Hostile, signing: str) -> None:
    hostile.signing = signing
    await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)
    assert "userinfo" not in hostile.requests


async def test_unknown_kid_refetches_the_jwks_once(client: PscClient, hostile: Hostile) -> None:
    hostile.signing = "other-key"
    await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)
    assert hostile.requests.count("certs") == 2


async def test_bad_nonce_is_refused(client: PscClient, hostile: Hostile) -> None:
    await refused(client, hostile, ErrorCode.PSC_NONCE_MISMATCH, nonce="replayed-nonce")


async def test_missing_nonce_is_refused(client: PscClient, hostile: Hostile) -> None:
    hostile.claims["nonce"] = DROP
    await refused(client, hostile, ErrorCode.PSC_NONCE_MISMATCH)


@pytest.mark.parametrize("acr", ["eidas0", "", DROP, 3])
async def test_low_or_missing_acr_is_refused(client: PscClient, hostile: Hostile, acr: object) -> None:
    hostile.claims["acr"] = acr
    error = await refused(client, hostile, ErrorCode.PSC_ACR_TOO_LOW)
    assert error.status == 403


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},
        {"iat": int(time.time()) + 3600},
        {"exp": DROP},
        {"iss": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"},
        {"aud": "another-client"},
        {"aud": ["another-client", CLIENT_ID], "azp": "another-client"},
        {"azp": "another-client"},
        {"sub": DROP},
    ],
)
async def test_bad_id_token_claims_are_refused(client: PscClient, hostile: Hostile, claims: dict[str, Any]) -> None:
    hostile.claims.update(claims)
    await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)


async def test_audience_list_with_our_client_as_azp_is_accepted(client: PscClient, hostile: Hostile) -> None:
    hostile.claims.update({"aud": [CLIENT_ID, "account"], "azp": CLIENT_ID})
    assert (await complete(client, hostile)).identity.sub == SUB


async def test_userinfo_sub_must_match_the_id_token(client: PscClient, hostile: Hostile) -> None:
    hostile.userinfo["sub"] = "f:00000000-0000-0000-0000-000000000000:810009999999"
    error = await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)
    assert "sub" in str(error.detail)


@pytest.mark.parametrize("mode", ["other-key", "hs256-wrong-secret", "none", "es256:another-client"])
async def test_bad_signed_userinfo_is_refused(client: PscClient, hostile: Hostile, mode: str) -> None:
    hostile.userinfo_mode = mode
    await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)


@pytest.mark.parametrize("mode", ["es256", "rs256", "hs256"])
async def test_signed_userinfo_is_accepted(client: PscClient, hostile: Hostile, mode: str) -> None:
    hostile.userinfo_mode = mode
    assert (await complete(client, hostile)).identity.idnat == "810001234565"


async def test_userinfo_of_another_type_is_refused(client: PscClient, hostile: Hostile) -> None:
    hostile.userinfo_mode = "text"
    await refused(client, hostile, ErrorCode.PSC_ERROR)


async def test_userinfo_refusing_the_token(client: PscClient, hostile: Hostile) -> None:
    hostile.userinfo_status = 401
    await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)


async def test_userinfo_without_idnat_is_refused(client: PscClient, hostile: Hostile) -> None:
    del hostile.userinfo["SubjectNameID"]
    await refused(client, hostile, ErrorCode.PSC_INVALID_TOKEN)


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, ErrorCode.PSC_UNAVAILABLE), (500, ErrorCode.PSC_UNAVAILABLE), (400, ErrorCode.PSC_ERROR)],
)
async def test_token_endpoint_failures(client: PscClient, hostile: Hostile, status: int, code: ErrorCode) -> None:
    hostile.token_status = status
    await refused(client, hostile, code)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"id_token": DROP}, ErrorCode.PSC_INVALID_TOKEN),
        ({"id_token": "not-a-jwt"}, ErrorCode.PSC_INVALID_TOKEN),
        ({"access_token": DROP}, ErrorCode.PSC_ERROR),
        ({"token_type": "mac"}, ErrorCode.PSC_ERROR),
    ],
)
async def test_malformed_token_responses(
    client: PscClient, hostile: Hostile, extra: dict[str, Any], code: ErrorCode
) -> None:
    hostile.token_extra = extra
    await refused(client, hostile, code)


async def test_discovery_of_another_issuer_is_refused(client: PscClient, hostile: Hostile) -> None:
    hostile.discovery_issuer = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"
    with pytest.raises(DomainError) as caught:
        await client.discover()
    assert caught.value.code is ErrorCode.PSC_ERROR


async def test_missing_auth_time_and_auth_mode(client: PscClient, hostile: Hostile) -> None:
    hostile.claims.update({"auth_time": DROP, "authMode": DROP})
    hostile.userinfo["authMode"] = "MOBILE"
    before = int(time.time())
    result = await complete(client, hostile)
    assert result.auth_time >= before
    assert result.auth_mode == "MOBILE"
