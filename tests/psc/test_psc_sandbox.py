"""The PSC sandbox as an identity provider: what it enforces, seen from HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from psc_helpers import CLIENT_ID, CLIENT_SECRET, ISSUER, REDIRECT_URI, Clock, browser_login, parse_page

from enrolment.psc_sandbox import PROFESSIONALS, create_psc_sandbox_router

OIDC = f"{ISSUER}/protocol/openid-connect"
NURSE = "810003456786"


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(verifier: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid scope_all",
        "state": "st-123",
        "nonce": "n-456",
        "acr_values": "eidas1",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return f"{OIDC}/auth?" + urlencode({k: v for k, v in params.items() if v is not None})


async def get_code(http: httpx.AsyncClient, verifier: str, **overrides: str | None) -> str:
    callback = await browser_login(http, authorize_url(verifier, **overrides), professional=NURSE, auth_mode="card")
    assert callback["state"] == "st-123"
    assert callback["iss"] == ISSUER
    return callback["code"]


def token_form(code: str, verifier: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **extra,
    }


BASIC = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)


async def redeem(http: httpx.AsyncClient, code: str, verifier: str, **extra: str) -> httpx.Response:
    return await http.post(f"{OIDC}/token", data=token_form(code, verifier, **extra), auth=BASIC)


@pytest.fixture
def verifier() -> str:
    return secrets.token_urlsafe(48)


@pytest.mark.parametrize("name", ["openid-configuration", "wallet-openid-configuration"])
async def test_discovery_on_both_paths(http: httpx.AsyncClient, name: str) -> None:
    document = (await http.get(f"{ISSUER}/.well-known/{name}")).json()
    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == f"{OIDC}/auth"
    assert document["jwks_uri"] == f"{OIDC}/certs"
    assert document["end_session_endpoint"] == f"{OIDC}/logout"
    assert document["code_challenge_methods_supported"] == ["S256"]


async def test_jwks_publishes_one_es256_key(http: httpx.AsyncClient) -> None:
    [key] = (await http.get(f"{OIDC}/certs")).json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert key["kid"]
    assert "d" not in key


async def test_login_page_is_accessible_and_stable(http: httpx.AsyncClient, verifier: str) -> None:
    response = await http.get(authorize_url(verifier, login_hint=NURSE, sandbox_auth_mode="ecps"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page = parse_page(response.text)
    assert page.lang == "fr"
    assert "psc-sandbox-submit" in page.ids
    [form] = page.forms
    assert form.method == "post"
    visible = [i for i in form.inputs if i.get("type") != "hidden"]
    assert all(i["id"] in page.label_for for i in visible)
    assert "userinfo-format" in page.label_for
    radios = {(i["name"], i["value"]): i for i in visible}
    assert {idnat for name, idnat in radios if name == "professional"} == {p.idnat for p in PROFESSIONALS}
    assert {mode for name, mode in radios if name == "auth_mode"} == {"card", "ecps", "weak"}
    assert "checked" in radios[("professional", NURSE)]
    assert "checked" in radios[("auth_mode", "ecps")]
    hidden = {i["name"]: i["value"] for i in form.inputs if i.get("type") == "hidden"}
    assert hidden["state"] == "st-123"
    assert hidden["code_challenge"] == challenge(verifier)


async def test_login_page_escapes_what_it_echoes(http: httpx.AsyncClient, verifier: str) -> None:
    response = await http.get(authorize_url(verifier, state='"><script>alert(1)</script>'))
    assert "<script>" not in response.text


async def test_unknown_client_or_redirect_uri_gets_a_page_not_a_redirect(
    http: httpx.AsyncClient, verifier: str
) -> None:
    for overrides in ({"client_id": "intruder"}, {"redirect_uri": "https://evil.example/cb"}):
        response = await http.get(authorize_url(verifier, **overrides), follow_redirects=False)
        assert response.status_code == 400
        assert "location" not in response.headers


async def test_missing_pkce_is_sent_back_to_the_client(http: httpx.AsyncClient, verifier: str) -> None:
    response = await http.get(authorize_url(verifier, code_challenge=None), follow_redirects=False)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["st-123"]


async def test_cancel_returns_access_denied(http: httpx.AsyncClient, verifier: str) -> None:
    page = parse_page((await http.get(authorize_url(verifier))).text)
    data = {i["name"]: i["value"] for i in page.forms[0].inputs if i.get("type") == "hidden"}
    response = await http.post(f"{OIDC}/auth", data={**data, "action": "cancel"}, follow_redirects=False)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert "code" not in query


async def test_submit_without_a_choice_shows_the_page_again(http: httpx.AsyncClient, verifier: str) -> None:
    page = parse_page((await http.get(authorize_url(verifier))).text)
    data = {i["name"]: i["value"] for i in page.forms[0].inputs if i.get("type") == "hidden"}
    response = await http.post(f"{OIDC}/auth", data={**data, "action": "login"}, follow_redirects=False)
    assert response.status_code == 400
    assert 'role="alert"' in response.text


async def test_code_exchange_and_userinfo_json(http: httpx.AsyncClient, verifier: str) -> None:
    response = await redeem(http, await get_code(http, verifier), verifier)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 120)
    header = jwt.get_unverified_header(tokens["id_token"])
    assert header["alg"] == "ES256"
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["nonce"], claims["acr"], claims["authMode"], claims["aud"]) == (
        "n-456",
        "eidas3",
        "CARD",
        CLIENT_ID,
    )
    userinfo = await http.get(f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.headers["content-type"].startswith("application/json")
    assert userinfo.json()["sub"] == claims["sub"]
    assert userinfo.json()["SubjectNameID"] == NURSE


async def test_userinfo_jwt_on_request(http: httpx.AsyncClient, verifier: str) -> None:
    code = await get_code(http, verifier, sandbox_userinfo="jwt")
    tokens = (await redeem(http, code, verifier)).json()
    userinfo = await http.get(f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.headers["content-type"].startswith("application/jwt")
    [key] = (await http.get(f"{OIDC}/certs")).json()["keys"]
    claims = jwt.decode(userinfo.text, jwt.PyJWK(key), algorithms=["ES256"], audience=CLIENT_ID, issuer=ISSUER)
    assert claims["SubjectNameID"] == NURSE


async def test_client_secret_post_and_not_both(http: httpx.AsyncClient, verifier: str) -> None:
    code = await get_code(http, verifier)
    posted = token_form(code, verifier, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    both = await http.post(f"{OIDC}/token", data=posted, auth=BASIC)
    assert both.json()["error"] == "invalid_request"
    ok = await http.post(f"{OIDC}/token", data=posted)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "auth", [httpx.BasicAuth(CLIENT_ID, "wrong"), httpx.BasicAuth("other", CLIENT_SECRET), httpx.Auth()]
)
async def test_client_authentication_is_required(http: httpx.AsyncClient, verifier: str, auth: httpx.Auth) -> None:
    code = await get_code(http, verifier)
    response = await http.post(f"{OIDC}/token", data=token_form(code, verifier), auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_wrong_pkce_verifier_burns_the_code(http: httpx.AsyncClient, verifier: str) -> None:
    code = await get_code(http, verifier)
    wrong = await redeem(http, code, secrets.token_urlsafe(48))
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    retry = await redeem(http, code, verifier)
    assert retry.json()["error"] == "invalid_grant"


async def test_redirect_uri_must_match(http: httpx.AsyncClient, verifier: str) -> None:
    code = await get_code(http, verifier)
    form = {**token_form(code, verifier), "redirect_uri": REDIRECT_URI + "/other"}
    response = await http.post(f"{OIDC}/token", data=form, auth=BASIC)
    assert response.json()["error"] == "invalid_grant"


async def test_reused_code_revokes_its_tokens(http: httpx.AsyncClient, verifier: str) -> None:
    code = await get_code(http, verifier)
    first = (await redeem(http, code, verifier)).json()
    second = await redeem(http, code, verifier)
    assert second.json()["error"] == "invalid_grant"
    userinfo = await http.get(f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo.headers["www-authenticate"]


async def test_access_token_lives_120_seconds(http: httpx.AsyncClient, sandbox_clock: Clock, verifier: str) -> None:
    tokens = (await redeem(http, await get_code(http, verifier), verifier)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    sandbox_clock.offset = 119
    assert (await http.get(f"{OIDC}/userinfo", headers=headers)).status_code == 200
    sandbox_clock.offset = 121
    assert (await http.get(f"{OIDC}/userinfo", headers=headers)).status_code == 401


async def test_only_the_code_grant(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{OIDC}/token", data={"grant_type": "password"}, auth=BASIC)
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 200),
        ({"post_logout_redirect_uri": "https://evil.example/"}, 200),
        ({"post_logout_redirect_uri": "http://testserver.local/bye"}, 302),
    ],
)
async def test_logout(http: httpx.AsyncClient, params: dict[str, Any], status: int) -> None:
    response = await http.get(f"{OIDC}/logout", params=params, follow_redirects=False)
    assert response.status_code == status


def test_issuer_must_be_under_the_router_path() -> None:
    with pytest.raises(ValueError, match="not under the router path"):
        create_psc_sandbox_router(issuer="http://x/auth/realms/esante-wallet", client_id="c", client_secret="s")
