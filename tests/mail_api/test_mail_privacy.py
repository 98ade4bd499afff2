"""No message content leaves the relay's path: not in logs, not in the audit trail, not in errors."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from core.db.models import AuditEvent
from phone.client import PhoneError
from tests.harness import NURSE
from tests.mail_api.conftest import MailWorld

CANARY = "CANARY9f3e"
PATIENT = "185057800608491@patient.mssante.fr"  # a valid NIR with its key

MESSAGE = (
    f'From: "Patient {CANARY}Nom" <{PATIENT}>\r\n'
    "To: infirmiere@infirmier.mssante.fr\r\n"
    f"Subject: Resultats {CANARY}Sujet\r\n"
    "Date: Sun, 22 Nov 2026 08:00:00 +0100\r\n"
    "Message-ID: <canary-1@patient.mssante.fr>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    f"Bonjour, voici mes resultats {CANARY}Corps.\r\n"
    "--b\r\nContent-Type: application/pdf\r\n"
    f'Content-Disposition: attachment; filename="bilan-{CANARY}Fichier.pdf"\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJeLjz9MK\r\n--b--\r\n"
).encode()


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_canaries_never_reach_logs_audit_or_errors(
    mail_world: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    async with mail_world() as w:
        w: MailWorld
        await w.h.login(NURSE)
        phone = await w.h.enrol_phone()
        mailbox = await w.mailbox_id(phone, "nurse")
        w.deliver("nurse", MESSAGE)
        page = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages")
        item = page["items"][0]
        assert CANARY in item["subject"]  # the phone does get its content
        detail = await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{item['id']}")
        part = detail["attachments"][0]["part"]
        await phone.request("GET", f"/api/v1/mailboxes/{mailbox}/messages/{item['id']}/attachments/{part}", auth=True)
        await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/search?subject={CANARY}Sujet")
        await phone.call(
            "POST",
            f"/api/v1/mailboxes/{mailbox}/messages",
            json={
                "to": [PATIENT],
                "subject": f"Re: {CANARY}Reponse",
                "text": f"{CANARY}Texte",
                "endPatientConversation": True,
            },
        )
        for bad in ([f"{CANARY}Dest@gmail.com"], [f"{CANARY}@patient.mssante.fr"]):
            with pytest.raises(PhoneError) as err:
                await phone.call(
                    "POST",
                    f"/api/v1/mailboxes/{mailbox}/messages",
                    json={"to": bad, "subject": f"{CANARY}Sujet", "text": "x"},
                )
            errors.append(msgspec.json.encode(err.value.problem).decode())
        with pytest.raises(PhoneError) as err:
            await phone.call("GET", f"/api/v1/mailboxes/{mailbox}/messages/{CANARY}")
        errors.append(msgspec.json.encode(err.value.problem).decode())
        async with w.h.container.db.read() as session:
            rows = (await session.scalars(select(AuditEvent))).all()
        audit = "\n".join(
            msgspec.json.encode({c.name: str(getattr(r, c.name)) for c in AuditEvent.__table__.columns}).decode()
            for r in rows
        )
        assert any(r.action == "mail.read" for r in rows) and any(r.action == "mail.send" for r in rows)
    out, err_text = capfd.readouterr()
    logs = out + err_text + "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for where, text in (("logs", logs), ("audit", audit), ("errors", "\n".join(errors))):
        assert CANARY not in text, f"a canary reached the {where}"
        assert PATIENT not in text, f"a patient address reached the {where}"
