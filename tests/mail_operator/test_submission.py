"""SMTP submission through the operator's relay (aiosmtpd → LMTP → Dovecot), read back over IMAP."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from backend.mail.operator import (
    ActingIdentity,
    BearerJwtAuth,
    BearerTokenIssuer,
    GatewayAuth,
    ImapSession,
    MasterUserAuth,
    MessageRejectedError,
    OperatorAuthError,
    OperatorUnavailableError,
    SubmissionClient,
    client_ssl_context,
)
from contracts.errors import ErrorCode
from core.settings import OperatorSettings
from tests.mail_operator.conftest import DEVICE, IDNAT, make_message
from tests.peers.dovecot import DovecotInstance
from tests.peers.fixtures import MailboxFactory
from tests.peers.ports import closed_port
from tests.peers.submission_relay import SubmissionRelay


def identity_of(address: str) -> ActingIdentity:
    return ActingIdentity(mailbox=address, idnat=IDNAT, device_id=DEVICE)


async def inbox_subjects(settings: OperatorSettings, auth: GatewayAuth, address: str) -> list[str]:
    session = await ImapSession.open(settings=settings, auth=auth, identity=identity_of(address))
    try:
        await session.select("INBOX", readonly=True)
        summaries = await session.uid_fetch_summaries(await session.uid_search("ALL"))
        return [str(s.parsed_headers()["Subject"]) for s in summaries]
    finally:
        await session.logout()


@pytest.mark.parametrize(
    ("strategy", "detail"),
    [("master", "dovecot"), ("master", "authzid"), ("bearer", "XOAUTH2"), ("bearer", "OAUTHBEARER")],
)
async def test_send_then_read_back_over_imap(
    operator_settings: OperatorSettings,
    dovecot: DovecotInstance,
    submission_relay: SubmissionRelay,
    bearer_issuer: BearerTokenIssuer,
    mailbox_factory: MailboxFactory,
    master_auth: MasterUserAuth,
    strategy: str,
    detail: str,
) -> None:
    sender = mailbox_factory(domain="pharmacie.mssante.fr")
    recipient = mailbox_factory(domain="pharmacien.mssante.fr")
    auth: GatewayAuth
    if strategy == "master":
        auth = MasterUserAuth(user=dovecot.master_user, password=dovecot.master_password, style=detail)  # type: ignore[arg-type]
    else:
        auth = BearerJwtAuth(issuer=bearer_issuer, mechanism=detail)  # type: ignore[arg-type]
    client = SubmissionClient(operator_settings, auth)
    subject = f"Délivrance {strategy} {detail}"
    raw = make_message(sender=sender.address, to=recipient.address, subject=subject)
    before = len(submission_relay.envelopes)
    result = await client.send(
        raw, envelope_from=sender.address, recipients=[recipient.address], identity=identity_of(sender.address)
    )
    assert result.accepted == (recipient.address,) and not result.refused

    envelope = submission_relay.wait_for_envelopes(before + 1)[before]
    assert envelope.auth_mailbox == sender.address
    assert envelope.auth_mechanism == ("PLAIN" if strategy == "master" else detail)
    assert envelope.delivered == (recipient.address,)
    assert await inbox_subjects(operator_settings, master_auth, recipient.address) == [subject]


async def test_refused_bearer_does_not_hang(
    operator_settings: OperatorSettings, bearer_issuer: BearerTokenIssuer, mailbox_factory: MailboxFactory
) -> None:
    sender, recipient = mailbox_factory(), mailbox_factory()
    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        wrong = BearerTokenIssuer(keys=bearer_issuer.keys, issuer="https://not-the-companion.example", ttl_s=60)
        client = SubmissionClient(operator_settings, BearerJwtAuth(issuer=wrong, mechanism=mechanism))  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(OperatorAuthError) as refused:
            await client.send(
                make_message(sender=sender.address, to=recipient.address),
                envelope_from=sender.address,
                recipients=[recipient.address],
                identity=identity_of(sender.address),
            )
        assert time.monotonic() - started < 3
        assert refused.value.code is ErrorCode.OPERATOR_AUTH_FAILED


async def test_wrong_master_password_is_refused(
    operator_settings: OperatorSettings, dovecot: DovecotInstance, mailbox_factory: MailboxFactory
) -> None:
    sender = mailbox_factory()
    auth = MasterUserAuth(user=dovecot.master_user, password="nope", style="authzid")
    with pytest.raises(OperatorAuthError):
        await SubmissionClient(operator_settings, auth).send(
            make_message(),
            envelope_from=sender.address,
            recipients=["x@pharmacie.mssante.fr"],
            identity=identity_of(sender.address),
        )


async def test_sender_must_be_the_mailbox(
    operator_settings: OperatorSettings, master_auth: MasterUserAuth, mailbox_factory: MailboxFactory
) -> None:
    sender, other = mailbox_factory(), mailbox_factory()
    with pytest.raises(MessageRejectedError) as rejected:
        await SubmissionClient(operator_settings, master_auth).send(
            make_message(),
            envelope_from=other.address,
            recipients=[sender.address],
            identity=identity_of(sender.address),
        )
    assert rejected.value.code is ErrorCode.MESSAGE_REJECTED
    assert rejected.value.smtp_code == 553


async def test_partial_and_total_recipient_refusal(
    operator_settings: OperatorSettings,
    submission_relay: SubmissionRelay,
    master_auth: MasterUserAuth,
    mailbox_factory: MailboxFactory,
) -> None:
    sender, ok, refused = mailbox_factory(), mailbox_factory(), mailbox_factory()
    submission_relay.refuse_recipient(refused.address)
    client = SubmissionClient(operator_settings, master_auth)
    result = await client.send(
        make_message(sender=sender.address),
        envelope_from=sender.address,
        recipients=[ok.address, refused.address],
        identity=identity_of(sender.address),
    )
    assert result.accepted == (ok.address,)
    assert result.refused == {refused.address: 550}
    with pytest.raises(MessageRejectedError):
        await client.send(
            make_message(sender=sender.address),
            envelope_from=sender.address,
            recipients=[refused.address],
            identity=identity_of(sender.address),
        )


async def test_submission_server_down_fails_fast(
    operator_settings: OperatorSettings, master_auth: MasterUserAuth
) -> None:
    settings = dataclasses.replace(operator_settings, smtp_port=closed_port())
    client = SubmissionClient(settings, master_auth)
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(OperatorUnavailableError) as down:
            await client.send(
                make_message(),
                envelope_from="a@pharmacie.mssante.fr",
                recipients=["b@pharmacie.mssante.fr"],
                identity=identity_of("a@pharmacie.mssante.fr"),
            )
        assert time.monotonic() - started < 1
        assert down.value.retry_after is not None and down.value.headers["Retry-After"] == str(down.value.retry_after)
    assert client.circuit.is_open


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_submission_over_tls(
    operator_settings: OperatorSettings,
    dovecot: DovecotInstance,
    master_auth: MasterUserAuth,
    mailbox_factory: MailboxFactory,
    tls: str,
) -> None:
    sender, recipient = mailbox_factory(), mailbox_factory()
    relay = SubmissionRelay(dovecot, tls=tls)  # type: ignore[arg-type]
    await asyncio.to_thread(relay.start)
    try:
        settings = dataclasses.replace(operator_settings, tls=tls, smtp_port=relay.port)  # type: ignore[arg-type]
        client = SubmissionClient(settings, master_auth, ssl_context=client_ssl_context(ca_file=settings.ca_file))
        result = await client.send(
            make_message(sender=sender.address, to=recipient.address, subject=f"via {tls}"),
            envelope_from=sender.address,
            recipients=[recipient.address],
            identity=identity_of(sender.address),
        )
        assert result.accepted == (recipient.address,)
    finally:
        await asyncio.to_thread(relay.stop)
    assert await inbox_subjects(operator_settings, master_auth, recipient.address) == [f"via {tls}"]
