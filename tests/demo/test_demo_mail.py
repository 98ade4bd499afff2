"""``make demo`` has mail: the sandbox operator starts with the app, seeds every sandbox mailbox, and
phones read, download and send through the real mail API, as the demo's visitors will."""

# ruff: noqa: RUF001 - French typography (dashes, curly apostrophes) is what the demo shows

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

from backend.mail.sandbox_operator import SandboxOperator, sandbox_mailboxes
from backend.mail.sandbox_operator.demo_messages import MESSAGES_DIR, load_demo_messages
from contracts.mail import MessageSummary, OutgoingMessage
from tests.demo.conftest import CAMILLE, HELENE, JULIEN, PATIENT, PHARMACY, DemoApp, mailbox_ids, second_browser
from tests.harness import ADJOINT, TITULAIRE, Harness

DEMO_COUNT = len(load_demo_messages())


def _sandbox(h: Harness) -> SandboxOperator:
    sandbox = h.app.state.sandbox_operator
    assert isinstance(sandbox, SandboxOperator), "the sandbox operator did not start"
    return sandbox


def _by_subject(items: list[MessageSummary], start: str) -> MessageSummary:
    return next(m for m in items if m.subject.startswith(start))


def _demo_pdf() -> bytes:
    raw = (MESSAGES_DIR / "01-lettre-de-liaison-sortie.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    pdf = next(part for part in message.walk() if part.get_content_type() == "application/pdf")
    content = pdf.get_content()
    assert isinstance(content, bytes)
    return content


async def test_the_operator_starts_before_the_services_and_seeds_every_mailbox(demo_app: DemoApp) -> None:
    async with demo_app() as demo:
        sandbox = _sandbox(demo)
        operator = demo.container.settings.operator
        # the connector was built with the ports the sandbox really got
        assert operator == sandbox.operator_settings
        assert (operator.kind, operator.tls, operator.auth, operator.master_user) == (
            "sandbox",
            "plain",
            "master",
            "mssc-gateway",
        )
        addresses = {m.address for m in sandbox.mailboxes}
        assert addresses == {m.address for m in sandbox_mailboxes()}
        assert {HELENE, JULIEN, CAMILLE, PHARMACY} <= addresses
        for address in addresses:
            assert sandbox.count(address) == DEMO_COUNT
        # idempotent: a restarted demo does not deliver the demo mail twice
        again = sandbox.seed()
        assert (again.seeded, again.delivered, again.messages) == (0, 0, DEMO_COUNT * len(addresses))


async def test_the_titulaire_reads_her_mail_and_the_pharmacy_mailbox(demo_app: DemoApp) -> None:
    async with demo_app() as demo:
        await demo.login(TITULAIRE)
        phone = await demo.enrol_phone(name="Pixel d'Hélène")
        ids = await mailbox_ids(phone)
        assert set(ids) == {HELENE, PHARMACY}
        now = dt.datetime.now(dt.UTC)
        for address, mailbox_id in ids.items():
            page = await phone.messages(mailbox_id, limit=20)
            assert len(page.items) == DEMO_COUNT
            assert page.next_cursor is None
            # addressed to this mailbox, dated from the seeding (newest first, minutes ago)
            assert all(m.to[0].email == address for m in page.items)
            dates = [dt.datetime.fromisoformat(m.date) for m in page.items if m.date]
            assert len(dates) == DEMO_COUNT
            assert dates == sorted(dates, reverse=True)
            assert now - dt.timedelta(hours=1) < dates[0] < now
            assert now - dt.timedelta(days=7) < dates[-1]

            xdm = page.items[0]
            assert xdm.subject == "CR de biologie structuré – Mme Odette EXEMPLE"
            assert xdm.has_attachments
            assert (xdm.mss.code_cda, xdm.mss.ins) == ("11502-2", True)
            assert _by_subject(page.items, "Préparation des doses").mss.read_receipt_requested
            assert _by_subject(page.items, "Renouvellement").from_[0].email == PATIENT
            assert _by_subject(page.items, "Conciliation").has_attachments
            assert not _by_subject(page.items, "Résultat INR").has_attachments

        items = (await phone.messages(ids[HELENE])).items
        letter = await phone.message(ids[HELENE], _by_subject(items, "Conciliation").id)
        assert "apixaban 2,5 mg matin et soir" in letter.text
        assert letter.summary.mss.nil == "DPI-EXEMPLE-5.1"
        assert letter.html is not None
        [pdf] = letter.attachments
        assert (pdf.filename, pdf.content_type) == ("Lettre de liaison - M. FICTIF.pdf", "application/pdf")
        chunks = [chunk async for chunk in phone.attachment(ids[HELENE], letter.summary.id, pdf.part)]
        content = b"".join(chunks)
        assert content == _demo_pdf()
        assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")

        legacy = await phone.message(ids[HELENE], _by_subject(items, "Ordonnance renouvelée").id)
        assert "Chère consœur" in legacy.text
        assert "reste à charge : 0,00 € (ALD)" in legacy.text
        assert "d’« observance »" in legacy.text

        structured = await phone.message(ids[HELENE], items[0].id)
        [archive] = structured.attachments
        assert archive.filename == "IHE_XDM.zip"
        assert archive.ihe_xdm
        await phone.aclose()


async def test_a_message_sent_from_one_phone_lands_in_another_sandbox_mailbox(demo_app: DemoApp) -> None:
    async with demo_app() as demo:
        sandbox = _sandbox(demo)
        await demo.login(TITULAIRE)
        helene = await demo.enrol_phone(name="Pixel d'Hélène")
        ids = await mailbox_ids(helene)

        sent = await helene.send(
            ids[HELENE],
            OutgoingMessage(
                to=[JULIEN],
                subject="Garde de samedi",
                text="Bonjour Julien,\n\nPeux-tu assurer l'ouverture samedi à 8 h 30 ?\n\nHélène",
            ),
        )
        assert (sent.recipients, sent.sent_copy) == (1, "Sent")
        assert sandbox.count(JULIEN) == DEMO_COUNT + 1
        # from the pharmacy's mailbox (the titulaire may send from it), with an attachment
        sent = await helene.send(
            ids[PHARMACY],
            OutgoingMessage(to=[CAMILLE], subject="Piluliers de Mme FICTIF", text="Bonjour, voici le plan de prise."),
            attachments=[("plan-de-prise.txt", "Mélatonine 2 mg LP : 1 au coucher.\n".encode(), "text/plain")],
        )
        assert sent.recipients == 1
        assert sandbox.count(CAMILLE) == DEMO_COUNT + 1
        sent_folder = await helene.messages(ids[HELENE], folder="Sent")
        assert [m.subject for m in sent_folder.items] == ["Garde de samedi"]

        # Julien, at another browser, enrols his phone and reads it
        julien_web = second_browser(demo)
        await julien_web.login(ADJOINT)
        julien = await julien_web.enrol_phone(name="iPhone de Julien")
        julien_ids = await mailbox_ids(julien)
        assert set(julien_ids) == {JULIEN, PHARMACY}
        newest = (await julien.messages(julien_ids[JULIEN], limit=1)).items[0]
        assert newest.subject == "Garde de samedi"
        assert newest.from_[0].email == HELENE
        assert not newest.seen
        detail = await julien.message(julien_ids[JULIEN], newest.id)
        assert "l'ouverture samedi à 8 h 30" in detail.text
        mailboxes = {m.address: m for m in await julien.mailboxes()}
        assert mailboxes[PHARMACY].can_read and not mailboxes[PHARMACY].can_send
        for client in (helene, julien):
            await client.aclose()
        await julien_web.web.aclose()
