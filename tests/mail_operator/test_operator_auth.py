"""Gateway login against a real Dovecot: master user, bearer JWT, client certificate — and refusals.

Every refusal must come back as ``operator_auth_failed`` quickly: Dovecot answers a failed bearer
login with a ``+`` challenge and waits; a client that does not answer it hangs (aioimaplib's own
``xoauth2()`` does). Dovecot itself takes ~0.5 s to refuse, so 3 s bounds each attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from backend.auth.signing_keys import SigningKeys, generate_key_file
from backend.mail.operator import (
    ActingIdentity,
    BearerJwtAuth,
    BearerTokenIssuer,
    ClientCertificateAuth,
    GatewayAuth,
    ImapSession,
    MasterUserAuth,
    OperatorAuthError,
    SaslLogin,
    client_ssl_context,
)
from contracts.errors import STATUS, ErrorCode
from core.settings import OperatorSettings
from tests.mail_operator.conftest import DEVICE, IDNAT
from tests.peers.dovecot import DEFAULT_ISSUER, DovecotInstance
from tests.peers.fixtures import MailboxFactory

REFUSAL_BOUND_S = 3.0


async def open_session(settings: OperatorSettings, auth: GatewayAuth, mailbox: str, **kwargs: object) -> ImapSession:
    return await ImapSession.open(
        settings=settings,
        auth=auth,
        identity=ActingIdentity(mailbox=mailbox, idnat=IDNAT, device_id=DEVICE),
        **kwargs,  # type: ignore[arg-type]
    )


async def assert_refused(settings: OperatorSettings, auth: GatewayAuth, mailbox: str, **kwargs: object) -> str:
    started = time.monotonic()
    with pytest.raises(OperatorAuthError) as refused:
        await open_session(settings, auth, mailbox, **kwargs)
    assert time.monotonic() - started < REFUSAL_BOUND_S
    assert refused.value.code is ErrorCode.OPERATOR_AUTH_FAILED
    assert STATUS[refused.value.code] == 502
    assert mailbox not in str(refused.value.detail)
    return str(refused.value.detail)


# --- master user -------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["dovecot", "authzid"])
async def test_master_user_logs_in_as_the_mailbox(
    operator_settings: OperatorSettings, dovecot: DovecotInstance, mailbox_factory: MailboxFactory, style: str
) -> None:
    user = mailbox_factory()
    auth = MasterUserAuth(user=dovecot.master_user, password=dovecot.master_password, style=style)  # type: ignore[arg-type]
    session = await open_session(operator_settings, auth, user.address)
    try:
        assert session.capabilities.qresync and session.capabilities.condstore
        assert (await session.select("INBOX")).exists == 0
    finally:
        await session.logout()
    assert f"Master user logging in as {user.address}" in dovecot.log_text()


async def test_wrong_master_password_is_refused(
    operator_settings: OperatorSettings, dovecot: DovecotInstance, mailbox_factory: MailboxFactory
) -> None:
    user = mailbox_factory()
    wrong = [
        MasterUserAuth(user=dovecot.master_user, password="not-the-password", style="dovecot"),
        MasterUserAuth(user=dovecot.master_user, password="not-the-password", style="authzid"),
        MasterUserAuth(user="not-the-gateway", password=dovecot.master_password, style="authzid"),
    ]
    await asyncio.gather(*(assert_refused(operator_settings, auth, user.address) for auth in wrong))


async def test_unknown_mailbox_is_refused(operator_settings: OperatorSettings, master_auth: MasterUserAuth) -> None:
    await assert_refused(operator_settings, master_auth, "personne.inconnue@pharmacie.mssante.fr")


async def test_id_names_the_acting_professional_and_device(
    operator_settings: OperatorSettings,
    master_auth: MasterUserAuth,
    dovecot: DovecotInstance,
    mailbox_factory: MailboxFactory,
) -> None:
    user = mailbox_factory()
    session = await open_session(operator_settings, master_auth, user.address)
    await session.logout()
    assert session.server_id.get("name") == "Dovecot"
    lines = [line for line in dovecot.log_text().splitlines() if f"imap({user.address})" in line and "ID sent" in line]
    assert len(lines) == 1
    assert "name=mss-companion" in lines[0]
    assert f"x-mssc-idnat={IDNAT}" in lines[0]
    assert f"x-mssc-device={DEVICE}" in lines[0]


# --- bearer JWT --------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
async def test_bearer_login(
    operator_settings: OperatorSettings,
    bearer_issuer: BearerTokenIssuer,
    mailbox_factory: MailboxFactory,
    mechanism: str,
) -> None:
    user = mailbox_factory()
    auth = BearerJwtAuth(issuer=bearer_issuer, mechanism=mechanism)  # type: ignore[arg-type]
    session = await open_session(operator_settings, auth, user.address)
    try:
        assert (await session.select("INBOX", readonly=True)).readonly
    finally:
        await session.logout()


def _token_claims(issuer: BearerTokenIssuer, mailbox: str) -> dict[str, object]:
    import jwt

    token = issuer.mint(ActingIdentity(mailbox=mailbox, idnat=IDNAT, device_id=DEVICE))
    return jwt.decode(token, options={"verify_signature": False})


def test_bearer_claims_name_the_mailbox_professional_and_device(bearer_issuer: BearerTokenIssuer) -> None:
    claims = _token_claims(bearer_issuer, "pharmacie.tilleuls@pharmacie.mssante.fr")
    assert claims["iss"] == DEFAULT_ISSUER
    assert claims["sub"] == "pharmacie.tilleuls@pharmacie.mssante.fr"
    assert claims["idnat"] == IDNAT
    assert claims["device"] == DEVICE
    assert 0 < int(claims["exp"]) - int(claims["iat"]) <= 120  # type: ignore[call-overload]
    assert claims["jti"] != _token_claims(bearer_issuer, "pharmacie.tilleuls@pharmacie.mssante.fr")["jti"]


class _OtherSubject(GatewayAuth):
    """Signs a valid token for another mailbox than the one it logs into."""

    name = "bearer"

    def __init__(self, inner: BearerJwtAuth, other: str) -> None:
        self._inner = inner
        self._other = other

    def login(self, identity: ActingIdentity, *, host: str, port: int) -> SaslLogin:
        forged = self._inner.login(dataclasses.replace(identity, mailbox=self._other), host=host, port=port)
        payload = forged.initial_response.replace(self._other.encode(), identity.mailbox.encode(), 1)
        return dataclasses.replace(forged, initial_response=payload)


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
async def test_bearer_refusals_are_clean_and_fast(
    operator_settings: OperatorSettings,
    dovecot: DovecotInstance,
    bearer_issuer: BearerTokenIssuer,
    mailbox_factory: MailboxFactory,
    tmp_path: Path,
    mechanism: str,
) -> None:
    user, other = mailbox_factory(), mailbox_factory()
    keys = bearer_issuer.keys

    def auth(issuer: BearerTokenIssuer) -> BearerJwtAuth:
        return BearerJwtAuth(issuer=issuer, mechanism=mechanism)  # type: ignore[arg-type]

    # expired: signed ten minutes ago with a two-minute lifetime
    expired = BearerTokenIssuer(keys=keys, issuer=DEFAULT_ISSUER, ttl_s=120, clock=lambda: time.time() - 600)
    # wrong issuer
    stranger = BearerTokenIssuer(keys=keys, issuer="https://not-the-companion.example", ttl_s=120)
    # a key the operator does not know (new kid)
    unknown_dir = tmp_path / "unknown"
    generate_key_file(unknown_dir)
    unknown = BearerTokenIssuer(keys=SigningKeys.load(unknown_dir), issuer=DEFAULT_ISSUER, ttl_s=120)
    # the trusted kid, but signed by another key
    impostor_dir = tmp_path / "impostor"
    impostor_dir.mkdir()
    (unknown_dir / f"{unknown.keys.kids[0]}.pem").rename(impostor_dir / f"{keys.kids[0]}.pem")
    impostor = BearerTokenIssuer(keys=SigningKeys.load(impostor_dir), issuer=DEFAULT_ISSUER, ttl_s=120)
    refusals = [
        auth(expired),
        auth(stranger),
        auth(unknown),
        auth(impostor),
        _OtherSubject(auth(bearer_issuer), other.address),  # a valid token for another mailbox
    ]
    # concurrently: Dovecot takes ~0.5 s per refusal, and the refusals must not get in each other's way
    details = await asyncio.gather(*(assert_refused(operator_settings, a, user.address) for a in refusals))
    assert all(mechanism in detail for detail in details)
    # and the good token still works afterwards (no lockout, no penalty)
    session = await open_session(operator_settings, auth(bearer_issuer), user.address)
    await session.logout()


# --- client certificate (SASL EXTERNAL) ----------------------------------------------------------


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_client_certificate_login(
    operator_settings: OperatorSettings, dovecot: DovecotInstance, mailbox_factory: MailboxFactory, tls: str
) -> None:
    user = mailbox_factory()
    cert = dovecot.issue_client_certificate()
    settings = dataclasses.replace(
        operator_settings,
        tls=tls,  # type: ignore[arg-type]
        imap_port=dovecot.imap_port if tls == "starttls" else dovecot.imaps_port,
        auth="certificate",
        client_cert_file=str(cert.cert_file),
        client_key_file=str(cert.key_file),
    )
    context = client_ssl_context(
        ca_file=settings.ca_file, client_cert_file=settings.client_cert_file, client_key_file=settings.client_key_file
    )
    session = await open_session(settings, ClientCertificateAuth(), user.address, ssl_context=context)
    try:
        assert (await session.select("INBOX")).exists == 0
    finally:
        await session.logout()
    assert "method=EXTERNAL, rip=127.0.0.1, lip=127.0.0.1, mpid" in dovecot.log_text()


async def test_client_certificate_of_someone_else_is_refused(
    operator_settings: OperatorSettings, dovecot: DovecotInstance, mailbox_factory: MailboxFactory
) -> None:
    user = mailbox_factory()
    settings = dataclasses.replace(operator_settings, tls="implicit", imap_port=dovecot.imaps_port)
    stranger = dovecot.issue_client_certificate("not-the-gateway")
    context = client_ssl_context(
        ca_file=settings.ca_file, client_cert_file=str(stranger.cert_file), client_key_file=str(stranger.key_file)
    )
    no_cert = client_ssl_context(ca_file=settings.ca_file)
    await asyncio.gather(
        assert_refused(settings, ClientCertificateAuth(), user.address, ssl_context=context),
        assert_refused(settings, ClientCertificateAuth(), user.address, ssl_context=no_cert),
    )
