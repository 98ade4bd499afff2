"""The mail API against the real operator (Dovecot): read, sync, attachments, send, grants, rules."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
from typing import Any

import pytest

from phone.client import PhoneError
from tests.harness import ADJOINT, ALL_ROLES, NURSE, TITULAIRE
from tests.mail_api.conftest import MailWorld
from tests.mail_mime.corpus import corpus_message, corpus_messages


def _simple(
    subject: str,
    body: str = "Bonjour,\r\nMessage de test.\r\n",
    *,
    sender: str = "dr.martin@ch-exemple.mssante.fr",
    extra: str = "",
) -> bytes:
    message_id = hashlib.sha256(subject.encode()).hexdigest()[:24]
    return (
        f"From: Dr Martin <{sender}>\r\nTo: equipe@pharmacie.mssante.fr\r\nSubject: {subject}\r\n"
        f"Date: Sun, 22 Nov 2026 08:00:00 +0100\r\nMessage-ID: <{message_id}@ch-exemple>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}\r\n{body}"
    ).encode()


async def test_read_the_inbox_with_its_attachments(mail_world: Any) -> None:
    async with mail_world() as w:
        w: MailWorld
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        w.deliver_corpus("nurse", "01-lettre-sortie-pdf.eml")
        w.deliver_corpus("nurse", "05-windows-1252.eml")
        page = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages?limit=10")
        assert len(page["items"]) == 2
        letter = next(m for m in page["items"] if m["hasAttachments"])
        detail = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{letter['id']}")
        pdf = next(a for a in detail["attachments"] if a["contentType"] == "application/pdf")
        response = await phone.request(
            "GET", f"/api/v1/mailboxes/{mailbox}/messages/{letter['id']}/attachments/{pdf['part']}", auth=True
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/pdf")
        assert "attachment;" in response.headers["content-disposition"]
        assert response.content.startswith(b"%PDF")
        legacy = next(m for m in page["items"] if not m["hasAttachments"])
        text = (await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{legacy['id']}"))["text"]
        assert "Ã" not in text and "\ufffd" not in text


async def test_every_corpus_message_is_readable_through_the_api(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        corpus = corpus_messages()
        for _, raw in corpus:
            w.deliver("nurse", raw)
        page = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages?limit=50")
        assert len(page["items"]) == len(corpus)
        for item in page["items"]:
            detail = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{item['id']}")
            assert isinstance(detail["text"], str)
            assert "<script" not in (detail["html"] or "")


async def test_delta_sync_reports_new_and_deleted_messages(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        for i in range(4):
            w.deliver("nurse", _simple(f"Ancien {i}"))
        first = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages")
        gone = first["items"][:2]
        for item in gone:
            await phone.call("DELETE", f"/api/v1/mailboxes/{mailbox}/messages/{item['id']}")
        for i in range(3):
            w.deliver("nurse", _simple(f"Nouveau {i}"))
        await phone.call(
            "PATCH", f"/api/v1/mailboxes/{mailbox}/messages/{first['items'][2]['id']}", json={"flagged": True}
        )
        changes = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/changes?since={first['state']}")
        assert sorted(m["subject"] for m in changes["created"]) == ["Nouveau 0", "Nouveau 1", "Nouveau 2"]
        assert sorted(changes["destroyed"]) == sorted(i["id"] for i in gone)
        assert any(u["id"] == first["items"][2]["id"] and u["flagged"] for u in changes["updated"])
        again = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/changes?since={changes['state']}")
        assert again["created"] == [] and again["destroyed"] == []  # a deleted message never comes back


async def test_pagination_is_newest_first_without_gaps(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        for i in range(12):
            w.deliver("nurse", _simple(f"Message {i:02d}"))
        seen: list[str] = []
        cursor = None
        while True:
            query = f"?limit=5&cursor={cursor}" if cursor else "?limit=5"
            page = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages{query}")
            seen += [m["subject"] for m in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == [f"Message {i:02d}" for i in reversed(range(12))]


async def test_send_reply_and_read_back(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        sent = await phone.call(
            "POST",
            f"/api/v1/mailboxes/{mailbox}/messages",
            json={
                "to": [w.address["doctor"]],
                "subject": "Pansement de M. Test",
                "text": "Plaie propre, à revoir jeudi.",
                "requestReadReceipt": True,
            },
        )
        assert sent["recipients"] == 1 and sent["sentCopy"] == "Sent"
        raw = await _wait_for_mail(w, "doctor")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["Subject"] == "Pansement de M. Test"
        assert message["X-MSS-NIL"] and message["Disposition-Notification-To"]
        assert message["Message-ID"] == sent["messageId"]
        folders = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/folders")
        assert next(f for f in folders if f["role"] == "sent")["total"] == 1


async def test_untrusted_recipient_is_refused(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        with pytest.raises(PhoneError) as err:
            await phone.call(
                "POST",
                f"/api/v1/mailboxes/{mailbox}/messages",
                json={"to": ["someone@gmail.com"], "subject": "x", "text": "y"},
            )
        assert err.value.code == "recipient_not_trusted" and "gmail" not in str(err.value.problem)


async def test_grants_are_enforced(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(ADJOINT)
        adjoint = await w.h.enrol_phone()
        pharmacy = await w.mailbox_id(adjoint, "pharmacy")
        w.deliver("pharmacy", _simple("Ordonnance"))
        assert len((await adjoint.call("GET", f"/api/v1/mailboxes/{pharmacy}/messages"))["items"]) == 1
        with pytest.raises(PhoneError) as err:  # a read grant cannot send
            await adjoint.call(
                "POST",
                f"/api/v1/mailboxes/{pharmacy}/messages",
                json={"to": [w.address["doctor"]], "subject": "x", "text": "y"},
            )
        assert err.value.code == "mailbox_forbidden"
        w.h.web.cookies.clear()
        await w.h.login(NURSE)
        nurse = await w.h.enrol_phone()
        with pytest.raises(PhoneError) as err:  # a token for mailbox A cannot touch B
            await nurse.call("GET", f"/api/v1/mailboxes/{pharmacy}/messages")
        assert err.value.code == "mailbox_not_found"


async def test_titulaire_sends_from_the_pharmacy_and_the_member_is_traced(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(TITULAIRE)
        phone = await w.h.enrol_phone()
        pharmacy = await w.mailbox_id(phone, "pharmacy")
        await phone.call(
            "POST",
            f"/api/v1/mailboxes/{pharmacy}/messages",
            json={"to": [w.address["doctor"]], "subject": "Rupture", "text": "Produit indisponible."},
        )
        message = email.message_from_bytes(await _wait_for_mail(w, "doctor"), policy=email.policy.default)
        assert message["X-MSSC-Acting-IdNat"] == TITULAIRE
        assert "x-mssc-idnat" in w.dovecot.log_text().lower()  # the IMAP ID names the acting professional


async def test_read_receipt_only_when_asked(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        w.deliver(
            "nurse",
            _simple(
                "Avec accusé",
                sender=w.address["doctor"],
                extra=f"Disposition-Notification-To: {w.address['doctor']}\r\n",
            ),
        )
        w.deliver("nurse", _simple("Sans accusé"))
        items = (await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages"))["items"]
        asked = next(m for m in items if m["subject"] == "Avec accusé")
        assert asked["mss"]["readReceiptRequested"]
        await phone.call("POST", f"/api/v1/mailboxes/{mailbox}/messages/{asked['id']}/receipt", json={})
        report = email.message_from_bytes(await _wait_for_mail(w, "doctor"), policy=email.policy.default)
        assert report.get_content_type() == "multipart/report"
        assert [p.get_content_type() for p in report.iter_parts()][:2] == [
            "text/plain",
            "message/disposition-notification",
        ]
        plain = next(m for m in items if m["subject"] == "Sans accusé")
        with pytest.raises(PhoneError) as err:
            await phone.call("POST", f"/api/v1/mailboxes/{mailbox}/messages/{plain['id']}/receipt", json={})
        assert err.value.code == "mdn_not_requested"


async def test_operator_down_is_a_clear_503(mail_world: Any, operator_settings: Any) -> None:
    from dataclasses import replace

    from core.settings import WatcherSettings
    from tests.peers.ports import free_port

    down = replace(operator_settings, imap_port=free_port(), connect_timeout_s=1.0)
    async with mail_world(operator=down, watcher=WatcherSettings(mode="off")) as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        started = asyncio.get_running_loop().time()
        response = await phone.request("GET", f"/api/v1/mailboxes/{mailbox}/messages", auth=True)
        assert response.status_code == 503
        assert response.json()["code"] == "operator_unavailable" and response.headers["Retry-After"]
        assert asyncio.get_running_loop().time() - started < 5


async def _wait_for_mail(w: MailWorld, role: str, *, timeout_s: float = 5.0) -> bytes:
    """The newest message of a mailbox, read over IMAP as the gateway (not through the API)."""
    from backend.mail.operator.connector import OperatorConnector

    connector = OperatorConnector(w.h.settings.operator)
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            async with connector.session(mailbox=w.address[role], idnat="800000000000", device_id="test") as imap:
                selected = await imap.select("INBOX", readonly=True)
                if selected.exists:
                    uids = await imap.uid_search("ALL")
                    return await imap.uid_fetch_raw(max(uids))
            assert asyncio.get_running_loop().time() < deadline, "no message arrived"
            await asyncio.sleep(0.1)
    finally:
        await connector.aclose()


del corpus_message


async def test_patient_conversation_end_and_reply_threading(mail_world: Any) -> None:
    patient = "185057800608491@patient.mssante.fr"
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        w.deliver("nurse", _simple("Question sur le traitement", sender=w.address["doctor"]))
        original = (await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages"))["items"][0]
        await phone.call(
            "POST",
            f"/api/v1/mailboxes/{mailbox}/messages",
            json={
                "to": [w.address["doctor"]],
                "subject": "Re: Question sur le traitement",
                "text": "Réponse.",
                "inReplyTo": original["id"],
                "mode": "reply",
            },
        )
        reply = email.message_from_bytes(await _wait_for_mail(w, "doctor"), policy=email.policy.default)
        assert reply["In-Reply-To"] and reply["References"]
        await phone.call(
            "POST",
            f"/api/v1/mailboxes/{mailbox}/messages",
            json={
                "to": [patient],
                "subject": "[FIN]",
                "text": "Fin de la conversation.",
                "endPatientConversation": True,
            },
        )
        sent = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages?folder=Sent")
        last = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{sent['items'][0]['id']}")
        assert last["summary"]["mss"]["conversationClosed"] and last["summary"]["mss"]["endOfConversation"]


async def test_forward_move_and_search(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        w.deliver_corpus("nurse", "01-lettre-sortie-pdf.eml")
        w.deliver("nurse", _simple("Planning de garde"))
        items = (await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages"))["items"]
        letter = next(m for m in items if m["hasAttachments"])
        await phone.call(
            "POST",
            f"/api/v1/mailboxes/{mailbox}/messages",
            json={
                "to": [w.address["doctor"]],
                "subject": "Tr: lettre",
                "text": "Pour information.",
                "inReplyTo": letter["id"],
                "mode": "forward",
            },
        )
        forwarded = email.message_from_bytes(await _wait_for_mail(w, "doctor"), policy=email.policy.default)
        assert any(p.get_content_type() == "message/rfc822" for p in forwarded.iter_attachments())
        found = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/search?subject=Planning")
        assert [m["subject"] for m in found] == ["Planning de garde"]
        await phone.call("POST", f"/api/v1/mailboxes/{mailbox}/messages/{found[0]['id']}/move", json={"folder": "Junk"})
        junk = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages?folder=Junk")
        assert [m["subject"] for m in junk["items"]] == ["Planning de garde"]


async def test_directory_search_hides_the_liste_rouge(mail_world: Any) -> None:
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        found = await phone.call("GET", "/api/v1/directory?name=Tilleuls")
        addresses = [m["address"] for e in found["entries"] for m in e["mailboxes"]]
        assert "pharmacie.tilleuls@pharmacie.mssante.fr" in addresses
        from backend.mail.directory.sandbox_data import HIDDEN_ADDRESSES  # the sandbox's own liste rouge

        seen: set[str] = set(addresses)
        for query in ("profession=60", "profession=10", "profession=21", "city=Paris", "name=martin", "name=cohen"):
            page = await phone.call("GET", f"/api/v1/directory?{query}&limit=50")
            seen |= {m["address"] for e in page["entries"] for m in e["mailboxes"]}
        assert len(seen) > 3
        assert not seen & HIDDEN_ADDRESSES


async def test_a_big_message_opens_with_its_text_and_streams_its_attachment(mail_world: Any) -> None:
    import base64
    import os

    from backend.mail import service

    blob = os.urandom(service.WHOLE_MESSAGE_MAX)  # bigger than what is fetched whole once encoded
    raw = (
        (
            b"From: Imagerie <imagerie@ch-exemple.mssante.fr>\r\nTo: x@infirmier.mssante.fr\r\n"
            b"Subject: Scanner complet\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="z"\r\n\r\n'
            b"--z\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
        )
        + "Compte rendu joint, à lire.\r\n".encode("iso-8859-1")
        + (
            b"--z\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="scanner.dcm"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n"
        )
        + base64.encodebytes(blob).replace(b"\n", b"\r\n")
        + b"--z--\r\n"
    )
    async with mail_world() as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        w.deliver("nurse", raw)
        item = (await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages"))["items"][0]
        detail = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{item['id']}")
        assert "à lire" in detail["text"]
        [scan] = detail["attachments"]
        assert scan["filename"] == "scanner.dcm"
        response = await phone.request(
            "GET", f"/api/v1/mailboxes/{mailbox}/messages/{item['id']}/attachments/{scan['part']}", auth=True
        )
        assert response.content == blob


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_new_mail_pushes_the_phone_without_content(mail_world: Any) -> None:
    """Delivery at the operator → IDLE → event → policy → content-free push, all in the running app."""
    from contracts.push import AlertClass
    from core.settings import WatcherSettings

    async with mail_world(
        roles=ALL_ROLES, watcher=WatcherSettings(discover_every_s=0.3, coalesce_s=0.05, lease_ttl_s=1.2)
    ) as w:
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone(push_provider="apns", push_token="c" * 64)
        await phone.call("PUT", "/api/v1/me/availability", json={"mode": "en_visite"})
        mailbox = await w.mailbox_id(phone, "nurse")
        await asyncio.sleep(1.5)  # the watcher discovers the new push-enabled mailbox and starts IDLE
        w.deliver("nurse", _simple("Résultat CANARY77 urgent"))
        sink = w.h.container.providers.sink
        assert sink is not None
        [push] = await sink.wait_for(phone.state.device_id or "", timeout_s=10)
        assert push.alert_class == AlertClass.MAIL
        assert push.payload["mailboxId"].replace("-", "") == mailbox.replace("-", "")
        assert "CANARY77" not in repr(push)
