"""The sandbox operator on its own: where it keeps its tree, dev only, and its submission server's rules."""

from __future__ import annotations

import base64
import os
import smtplib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.mail.sandbox_operator import SandboxMailbox, SandboxOperator, SandboxOperatorError
from backend.mail.sandbox_operator.demo_messages import load_demo_messages
from core.settings import AppSettings, OperatorSettings, Settings

PHARMACY = SandboxMailbox("officine@pharmacie.mssante.fr", "Pharmacie de test")
NURSE = SandboxMailbox("ide@infirmier.mssante.fr", "Infirmière de test")


def _settings(data_dir: Path, **operator: object) -> Settings:
    return Settings(app=AppSettings(data_dir=str(data_dir)), operator=OperatorSettings(**operator)).checked()  # type: ignore[arg-type]


@pytest.fixture
def sandbox(demo_data_dir: Path) -> Iterator[SandboxOperator]:
    operator = SandboxOperator(_settings(demo_data_dir), mailboxes=[PHARMACY, NURSE])
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


def _plain(authzid: str, authcid: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def test_dev_only() -> None:
    with pytest.raises(SandboxOperatorError, match="dev only"):
        SandboxOperator(Settings(app=AppSettings(mode="production")))
    with pytest.raises(SandboxOperatorError, match="not the sandbox"):
        SandboxOperator(Settings(operator=OperatorSettings(kind="remote")))


def test_a_data_dir_dovecot_cannot_reach_gets_a_temporary_tree(tmp_path: Path) -> None:
    operator = SandboxOperator(_settings(tmp_path), mailboxes=[PHARMACY])
    operator.start()
    root = operator.root
    assert root is not None
    try:
        if os.geteuid() == 0:  # pytest's tmp_path sits in a 0700 directory: not for Dovecot's users
            assert root.parent == Path("/tmp")
            assert stat.S_IMODE(root.stat().st_mode) == 0o755
        assert operator.seed().messages == len(load_demo_messages())
    finally:
        operator.stop()
    if os.geteuid() == 0:
        assert not root.exists()


def test_the_tree_is_kept_in_a_reachable_data_dir_and_seeding_is_idempotent(demo_data_dir: Path) -> None:
    first = SandboxOperator(_settings(demo_data_dir), mailboxes=[PHARMACY])
    first.start()
    try:
        assert first.root == demo_data_dir.resolve() / "sandbox-operator"
        assert first.seed().delivered == len(load_demo_messages())
    finally:
        first.stop()
    # a restarted demo finds its mail again and delivers nothing twice
    again = SandboxOperator(_settings(demo_data_dir), mailboxes=[PHARMACY])
    again.start()
    try:
        report = again.seed()
        assert (report.delivered, report.messages) == (0, len(load_demo_messages()))
    finally:
        again.stop()
    assert not again.running


def test_submission_logs_in_as_the_gateway_and_sends_as_the_mailbox(sandbox: SandboxOperator) -> None:
    settings = sandbox.operator_settings
    assert settings is not None
    raw = b"From: officine@pharmacie.mssante.fr\r\nTo: ide@infirmier.mssante.fr\r\nSubject: test\r\n\r\nBonjour\r\n"
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        # a wrong password, an unknown mailbox, a mailbox's own name without the master user
        for bad in (
            _plain(PHARMACY.address, "mssc-gateway", "wrong"),
            _plain("", "nobody@pharmacie.mssante.fr*mssc-gateway", "sandbox-gateway-password"),
            _plain("", PHARMACY.address, "sandbox-gateway-password"),
        ):
            assert smtp.docmd("AUTH", f"PLAIN {bad}")[0] == 535
        # authzid style
        assert (
            smtp.docmd("AUTH", f"PLAIN {_plain(PHARMACY.address, 'mssc-gateway', 'sandbox-gateway-password')}")[0]
            == 235
        )
        assert smtp.docmd("MAIL", "FROM:<ide@infirmier.mssante.fr>")[0] == 553
        refused = smtp.sendmail(PHARMACY.address, [NURSE.address, "outside@medecin.mssante.fr"], raw)
        assert refused == {}
    assert sandbox.count(NURSE.address) == 1
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        # dovecot style: mailbox*master
        login = _plain("", f"{NURSE.address}*mssc-gateway", "sandbox-gateway-password")
        assert smtp.docmd("AUTH", f"PLAIN {login}")[0] == 235
        smtp.sendmail(NURSE.address, [PHARMACY.address], raw)
    assert sandbox.count(PHARMACY.address) == 1
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.docmd("MAIL", f"FROM:<{PHARMACY.address}>")[0] == 530
