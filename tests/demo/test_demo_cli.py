"""``mssc-phone`` mail commands against the demo: inbox, read, save, send, receipt (French output).

The CLI runs in the test's event loop (``phone.cli.run``) and reaches the app in-process; its
profile lives under a temporary ``XDG_CONFIG_HOME``, as after ``mssc-phone enrol``.
"""

# ruff: noqa: RUF001 - French typography (dashes, curly apostrophes) is what the demo shows

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from phone import cli
from phone.client import PhoneClient, PhoneState
from tests.demo.conftest import HELENE, JULIEN, PHARMACY, DemoApp
from tests.harness import BASE, TITULAIRE, Harness

_ID = re.compile(r"^    id : (\S+)$", re.MULTILINE)


def _in_process(h: Harness) -> type[PhoneClient]:
    class InProcessPhone(PhoneClient):
        def __init__(self, state: PhoneState, **kwargs: Any) -> None:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url=BASE)  # type: ignore[arg-type]
            super().__init__(state, http=http, **kwargs)

    return InProcessPhone


def _id_of(listing: str, subject: str) -> str:
    """The id printed under the listing line of the message with ``subject``."""
    lines = listing.splitlines()
    index = next(i for i, line in enumerate(lines) if subject in line)
    found = _ID.match(lines[index + 1])
    assert found is not None
    return found.group(1)


async def _mssc_phone(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    await cli.run(cli.parse_args(["--profile", "demo", *argv]))
    return capsys.readouterr().out


async def test_mail_commands(
    demo_app: DemoApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    async with demo_app() as h:
        await h.login(TITULAIRE)
        phone = await h.enrol_phone(name="Pixel d'Hélène")
        cli.save(phone, "demo")
        await phone.aclose()
        monkeypatch.setattr(cli, "PhoneClient", _in_process(h))

        out = await _mssc_phone(capsys, "inbox", "--limit", "3")
        assert out.startswith(f"{HELENE} — INBOX : 3 messages\n")
        assert "CR de biologie structuré – Mme Odette EXEMPLE [PJ] [CDA 11502-2] [INS]" in out
        assert "Préparation des doses à administrer – semaine prochaine [accusé de lecture demandé]" in out
        assert "Messages plus anciens : mssc-phone inbox --cursor " in out
        newest, read_receipt, _ = _ID.findall(out)

        out = await _mssc_phone(capsys, "inbox", "--mailbox", PHARMACY.upper())
        assert out.startswith(f"{PHARMACY} — INBOX : 6 messages\n")
        assert "Martine Exemple" in out and "[patient]" in out
        letter_id = _id_of(out, "Conciliation médicamenteuse de sortie")

        out = await _mssc_phone(capsys, "read", letter_id, "--mailbox", PHARMACY)
        assert "De : Dr Claire Fictive – PUI CH d'Exemple <claire.fictive@ch-exemple.mssante.fr>" in out
        assert f"À : PHARMACIE DES TILLEULS <{PHARMACY}>" in out
        assert "Objet : Conciliation médicamenteuse de sortie – M. Gérard FICTIF" in out
        assert "INTRODUCTION de l'apixaban" in out
        assert "Pièces jointes :\n  2  Lettre de liaison - M. FICTIF.pdf  (application/pdf, " in out

        target = tmp_path / "lettre.pdf"
        out = await _mssc_phone(capsys, "save", letter_id, "2", "--out", str(target), "--mailbox", PHARMACY)
        assert out.startswith(f"Enregistré : {target} (")
        assert target.read_bytes().startswith(b"%PDF-1.4")
        with pytest.raises(SystemExit, match="existe déjà"):
            await _mssc_phone(capsys, "save", letter_id, "2", "--out", str(target), "--mailbox", PHARMACY)

        out = await _mssc_phone(capsys, "read", newest)
        assert "MSSanté : CDA 11502-2, INS" in out
        assert "IHE_XDM.zip  (application/zip, " in out and "archive IHE XDM" in out

        out = await _mssc_phone(capsys, "read", read_receipt)
        assert f"L'expéditeur demande un accusé de lecture : mssc-phone receipt {read_receipt}" in out
        out = await _mssc_phone(capsys, "receipt", read_receipt)
        assert out == "Accusé de lecture envoyé.\n"

        out = await _mssc_phone(
            capsys, "send", "--to", JULIEN, "--subject", "Inventaire", "--text", "Bonjour Julien, inventaire lundi."
        )
        assert out == f"Envoyé depuis {HELENE} à 1 destinataire(s), copie dans Sent.\n"
        out = await _mssc_phone(capsys, "inbox", "--folder", "Sent")
        assert "Inventaire" in out

        with pytest.raises(SystemExit, match="Boîte inconnue pour ce téléphone"):
            await _mssc_phone(capsys, "inbox", "--mailbox", JULIEN)
