"""Real OIDC exchanges between ``PscClient`` and the PSC sandbox served by a Litestar app."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from psc_helpers import CLIENT_ID, ISSUER, REDIRECT_URI, Clock, browser_login, parse_page, psc_settings

from contracts.errors import ErrorCode
from core.errors import DomainError
from enrolment.psc import PscClient, PscLogin
from enrolment.psc_sandbox import PROFESSIONALS, find_professional

TITULAIRE = "810001234565"
ADJOINT = "810002345675"
NURSE = "810003456786"
NURSE_TWO_PLACES = "810004567896"
DOCTOR = "810005678908"


async def login(
    psc: PscClient, http: httpx.AsyncClient, idnat: str, mode: str, userinfo_format: str | None = None
) -> PscLogin:
    auth = await psc.begin()
    callback = await browser_login(http, auth.url, professional=idnat, auth_mode=mode, userinfo_format=userinfo_format)
    return await psc.complete(
        code=callback["code"],
        state=callback["state"],
        expected_state=auth.state,
        nonce=auth.nonce,
        code_verifier=auth.code_verifier,
    )


async def test_authorization_url_carries_psc_parameters(psc: PscClient) -> None:
    auth = await psc.begin()
    parts = urlsplit(auth.url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/protocol/openid-connect/auth"
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["scope"] == "openid scope_all"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["acr_values"] == "eidas1"
    assert query["code_challenge_method"] == "S256"
    assert (query["state"], query["nonce"]) == (auth.state, auth.nonce)
    assert query["code_challenge"] != auth.code_verifier
    assert auth.code_verifier not in repr(auth)


@pytest.mark.parametrize(("mode", "acr", "auth_mode"), [("card", "eidas3", "CARD"), ("ecps", "eidas1", "MOBILE")])
@pytest.mark.parametrize("userinfo_format", ["json", "jwt"])
async def test_titulaire_logs_in(
    psc: PscClient, http: httpx.AsyncClient, mode: str, acr: str, auth_mode: str, userinfo_format: str
) -> None:
    result = await login(psc, http, TITULAIRE, mode, userinfo_format)
    identity = result.identity
    assert (result.acr, result.auth_mode) == (acr, auth_mode)
    assert identity.idnat == TITULAIRE
    assert identity.rpps == "10001234565"
    assert identity.sub.endswith(":" + TITULAIRE)
    assert (identity.given_name, identity.family_name) == ("HÉLÈNE", "GARNIER")
    assert identity.profession_code == "21"
    [activity] = identity.activities
    assert activity.structure_idnat == "1750000001"
    assert activity.finess == "750000001"
    assert activity.raison_sociale == "PHARMACIE DES TILLEULS"
    assert activity.city == "PARIS"
    assert (activity.mode_exercice, activity.section_pharmacien) == ("L", "A")
    assert activity.is_titulaire and identity.is_titulaire
    assert result.id_token.count(".") == 2
    assert result.access_token and result.refresh_token
    assert result.expires_in == 120
    assert result.auth_time > 0
    assert result.access_token not in repr(result)


async def test_adjoint_is_not_titulaire(psc: PscClient, http: httpx.AsyncClient) -> None:
    identity = (await login(psc, http, ADJOINT, "ecps")).identity
    [activity] = identity.activities
    assert activity.structure_idnat == "1750000001"
    assert (activity.mode_exercice, activity.section_pharmacien) == ("S", "D")
    assert not activity.is_titulaire


async def test_nurse_with_two_structures(psc: PscClient, http: httpx.AsyncClient) -> None:
    identity = (await login(psc, http, NURSE_TWO_PLACES, "card")).identity
    assert identity.profession_code == "60"
    cabinet, ssiad = identity.activities
    assert cabinet.structure_idnat == "410004567896001"
    assert cabinet.structure_technical_id == "R208713"
    assert cabinet.mode_exercice == "L"
    assert ssiad.structure_idnat == "1690000002"
    assert ssiad.mode_exercice == "S"
    assert {cabinet.city, ssiad.city} == {"LYON"}
    assert not any(a.is_titulaire for a in identity.activities)


async def test_single_activity_nurse(psc: PscClient, http: httpx.AsyncClient) -> None:
    identity = (await login(psc, http, NURSE, "ecps")).identity
    assert [a.raison_sociale for a in identity.activities] == ["CABINET INFIRMIER ROUSSEAU"]


async def test_doctor_gets_signed_userinfo_from_profile(psc: PscClient, http: httpx.AsyncClient) -> None:
    result = await login(psc, http, DOCTOR, "card")
    assert result.identity.profession_code == "10"
    assert result.identity.rpps == "10005678908"


async def test_every_sandbox_professional_parses(psc: PscClient, http: httpx.AsyncClient) -> None:
    for person in PROFESSIONALS:
        identity = (await login(psc, http, person.idnat, "card")).identity
        assert identity.idnat == person.idnat
        assert [a.structure_idnat for a in identity.activities] == [a.structure.idnat for a in person.activities]


async def test_discovery_uses_the_psc_path_and_is_cached(sandbox_app: object, client_clock: Clock) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url.path)

    transport = httpx.ASGITransport(app=sandbox_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, event_hooks={"request": [record]}) as http:
        client = PscClient(psc_settings(), redirect_uri=REDIRECT_URI, http=http, clock=client_clock)
        metadata = await client.discover()
        await client.discover()
        await client.begin()
        assert metadata.issuer == ISSUER
        assert seen == [
            "/psc-sandbox/auth/realms/esante-wallet/.well-known/wallet-openid-configuration",
            "/psc-sandbox/auth/realms/esante-wallet/protocol/openid-connect/certs",
        ]
        client_clock.offset = 3601
        await client.discover()
        assert len(seen) == 4


async def test_standard_discovery_path_also_served(http: httpx.AsyncClient) -> None:
    settings = psc_settings(discovery_path="/.well-known/openid-configuration")
    metadata = await PscClient(settings, redirect_uri=REDIRECT_URI, http=http).discover()
    assert metadata.end_session_endpoint == f"{ISSUER}/protocol/openid-connect/logout"


async def test_client_secret_post(http: httpx.AsyncClient) -> None:
    client = PscClient(psc_settings(), redirect_uri=REDIRECT_URI, http=http, token_auth_method="client_secret_post")
    assert (await login(client, http, NURSE, "card")).identity.idnat == NURSE


async def test_wrong_client_secret_is_a_psc_error(http: httpx.AsyncClient) -> None:
    client = PscClient(psc_settings(client_secret="not-the-secret"), redirect_uri=REDIRECT_URI, http=http)
    with pytest.raises(DomainError) as caught:
        await login(client, http, NURSE, "card")
    assert caught.value.code is ErrorCode.PSC_ERROR
    assert "invalid_client" in str(caught.value.detail)


async def test_lower_acr_is_refused(psc: PscClient, http: httpx.AsyncClient) -> None:
    with pytest.raises(DomainError) as caught:
        await login(psc, http, TITULAIRE, "weak")
    assert caught.value.code is ErrorCode.PSC_ACR_TOO_LOW
    assert caught.value.status == 403


async def test_state_mismatch_is_refused_before_redeeming(psc: PscClient, http: httpx.AsyncClient) -> None:
    auth = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    with pytest.raises(DomainError) as caught:
        await psc.complete(
            code=callback["code"],
            state=callback["state"],
            expected_state="another-state",
            nonce=auth.nonce,
            code_verifier=auth.code_verifier,
        )
    assert caught.value.code is ErrorCode.PSC_STATE_MISMATCH
    # The code was not spent: the right session can still complete.
    result = await psc.complete(
        code=callback["code"],
        state=callback["state"],
        expected_state=auth.state,
        nonce=auth.nonce,
        code_verifier=auth.code_verifier,
    )
    assert result.identity.idnat == NURSE


async def test_nonce_of_another_login_is_refused(psc: PscClient, http: httpx.AsyncClient) -> None:
    auth = await psc.begin()
    other = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    with pytest.raises(DomainError) as caught:
        await psc.complete(
            code=callback["code"],
            state=callback["state"],
            expected_state=auth.state,
            nonce=other.nonce,
            code_verifier=auth.code_verifier,
        )
    assert caught.value.code is ErrorCode.PSC_NONCE_MISMATCH


async def test_reused_code_is_refused(psc: PscClient, http: httpx.AsyncClient) -> None:
    auth = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    kwargs = {
        "code": callback["code"],
        "state": callback["state"],
        "expected_state": auth.state,
        "nonce": auth.nonce,
        "code_verifier": auth.code_verifier,
    }
    await psc.complete(**kwargs)
    with pytest.raises(DomainError) as caught:
        await psc.complete(**kwargs)
    assert caught.value.code is ErrorCode.PSC_ERROR
    assert "invalid_grant" in str(caught.value.detail)


async def test_wrong_pkce_verifier_is_refused(psc: PscClient, http: httpx.AsyncClient) -> None:
    auth = await psc.begin()
    other = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    with pytest.raises(DomainError) as caught:
        await psc.complete(
            code=callback["code"],
            state=callback["state"],
            expected_state=auth.state,
            nonce=auth.nonce,
            code_verifier=other.code_verifier,
        )
    assert caught.value.code is ErrorCode.PSC_ERROR
    assert "invalid_grant" in str(caught.value.detail)


async def test_expired_id_token_is_refused(psc: PscClient, http: httpx.AsyncClient, client_clock: Clock) -> None:
    auth = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    client_clock.offset = 120 + 31  # past exp and the 30 s leeway
    with pytest.raises(DomainError) as caught:
        await psc.complete(
            code=callback["code"],
            state=callback["state"],
            expected_state=auth.state,
            nonce=auth.nonce,
            code_verifier=auth.code_verifier,
        )
    assert caught.value.code is ErrorCode.PSC_INVALID_TOKEN
    assert "expired" in str(caught.value.detail)


async def test_code_expires_after_60_seconds(psc: PscClient, http: httpx.AsyncClient, sandbox_clock: Clock) -> None:
    auth = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    sandbox_clock.offset = 61
    with pytest.raises(DomainError) as caught:
        await psc.complete(
            code=callback["code"],
            state=callback["state"],
            expected_state=auth.state,
            nonce=auth.nonce,
            code_verifier=auth.code_verifier,
        )
    assert caught.value.code is ErrorCode.PSC_ERROR


async def test_end_session_url_logs_out_and_comes_back(psc: PscClient, http: httpx.AsyncClient) -> None:
    result = await login(psc, http, TITULAIRE, "card")
    url = psc.end_session_url(
        id_token_hint=result.id_token, post_logout_redirect_uri="http://testserver.local/", state="bye"
    )
    assert url is not None
    assert url.startswith(f"{ISSUER}/protocol/openid-connect/logout?")
    response = await http.get(url, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "http://testserver.local/?state=bye"
    # The PSC session is over: its access token no longer reads userinfo.
    userinfo = await http.get(
        f"{ISSUER}/protocol/openid-connect/userinfo",
        headers={"Authorization": f"Bearer {result.access_token}"},
    )
    assert userinfo.status_code == 401


async def test_end_session_url_needs_discovery(http: httpx.AsyncClient) -> None:
    client = PscClient(psc_settings(), redirect_uri=REDIRECT_URI, http=http)
    assert client.end_session_url(id_token_hint="x", post_logout_redirect_uri=REDIRECT_URI) is None


async def test_unreachable_psc_is_unavailable() -> None:
    # Port 9 (discard) on loopback: nothing listens there in a test environment.
    settings = psc_settings(issuer="http://127.0.0.1:9/auth/realms/esante-wallet", http_timeout_s=2.0)
    async with PscClient(settings, redirect_uri=REDIRECT_URI) as client:
        with pytest.raises(DomainError) as caught:
            await client.begin()
    assert caught.value.code is ErrorCode.PSC_UNAVAILABLE
    assert caught.value.status == 503


def test_sandbox_people_are_consistent() -> None:
    assert find_professional(TITULAIRE) is not None
    assert len({p.idnat for p in PROFESSIONALS}) == len(PROFESSIONALS)
    for person in PROFESSIONALS:
        assert len(person.rpps) == 11 and person.rpps.startswith("10")
        assert person.idnat == "8" + person.rpps
        assert _luhn_ok(person.rpps)
        domain = {"10": "medecin", "21": "pharmacien", "60": "infirmier"}[person.profession_code]
        assert person.mailbox.endswith(f"@{domain}.mssante.fr")
    titulaire = find_professional(TITULAIRE)
    assert titulaire is not None
    assert titulaire.activities[0].structure.mailbox == "pharmacie.tilleuls@pharmacie.mssante.fr"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


async def test_cancelled_login_is_reported(psc: PscClient, http: httpx.AsyncClient) -> None:
    auth = await psc.begin()
    page = parse_page((await http.get(auth.url)).text)
    data = {i["name"]: i["value"] for i in page.forms[0].inputs if i.get("type") == "hidden"}
    response = await http.post(auth.url.split("?")[0], data={**data, "action": "cancel"}, follow_redirects=False)
    callback = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert callback["state"] == auth.state
    with pytest.raises(DomainError) as caught:
        psc.check_callback(callback)
    assert caught.value.code is ErrorCode.PSC_ERROR
    assert caught.value.extra == {"psc_error": "access_denied"}


async def test_callback_from_another_issuer_is_refused(psc: PscClient, http: httpx.AsyncClient) -> None:
    auth = await psc.begin()
    callback = await browser_login(http, auth.url, professional=NURSE, auth_mode="card")
    psc.check_callback(callback)
    with pytest.raises(DomainError) as caught:
        psc.check_callback({**callback, "iss": "https://idp.example/"})
    assert caught.value.code is ErrorCode.PSC_ERROR
