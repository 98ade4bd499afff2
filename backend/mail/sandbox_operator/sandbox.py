"""The demo's MSSanté operator: Dovecot (IMAP, LMTP) + a submission server, seeded with demo mail.

``SandboxOperator(settings, data_dir).start()`` returns the :class:`OperatorSettings` the
companion must use (the ports actually chosen), ``seed()`` fills every empty sandbox mailbox with
the demo messages, ``stop()`` ends it all. Dev only: it refuses production settings, and settings
refuse ``MSSC_OPERATOR_KIND=sandbox`` in production anyway.

Logs carry counts and ports, never an address, a subject or a body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import imaplib
import os
import shutil
import smtplib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from backend.mail.sandbox_operator.demo_messages import DemoMessage, addressed, delivery_dates, load_demo_messages
from backend.mail.sandbox_operator.dovecot import (
    DovecotServer,
    SandboxOperatorError,
    SandboxOperatorUnavailable,
    choose_root,
    dovecot_binary,
)
from backend.mail.sandbox_operator.net import free_port, pick_port
from backend.mail.sandbox_operator.submission import SubmissionServer
from core.logging import get_logger
from core.settings import OperatorSettings, Settings

log = get_logger("mssc.sandbox_operator")

#: The dev gateway account (``Settings.checked`` fills the same in dev).
DEFAULT_MASTER_USER = "mssc-gateway"
DEFAULT_MASTER_PASSWORD = "sandbox-gateway-password"  # noqa: S105 - the dev operator only


@dataclass(frozen=True, slots=True)
class SandboxMailbox:
    address: str
    display_name: str


@dataclass(frozen=True, slots=True)
class SeedReport:
    #: Sandbox mailboxes on the operator.
    mailboxes: int
    #: Mailboxes that were empty and received the demo messages now.
    seeded: int
    #: Messages delivered now.
    delivered: int
    #: Messages in all the sandbox mailboxes after seeding.
    messages: int


def sandbox_mailboxes() -> tuple[SandboxMailbox, ...]:
    """Every mailbox of the PSC sandbox: the people's own and the structures' organisational ones."""
    from enrolment.psc_sandbox.people import PROFESSIONALS, STRUCTURES  # noqa: PLC0415 - dev only

    found: dict[str, SandboxMailbox] = {}
    for person in PROFESSIONALS:
        found.setdefault(person.mailbox.lower(), SandboxMailbox(person.mailbox.lower(), person.display_name))
    for structure in STRUCTURES:
        if structure.mailbox:
            found.setdefault(structure.mailbox.lower(), SandboxMailbox(structure.mailbox.lower(), structure.name))
    return tuple(found.values())


class SandboxOperator:
    """The local operator of the demo. Blocking methods; ``a*`` twins run them in a thread."""

    def __init__(
        self,
        settings: Settings,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        mailboxes: Sequence[SandboxMailbox] | None = None,
        messages_dir: Path | None = None,
    ) -> None:
        if settings.app.is_production:
            raise SandboxOperatorError("the sandbox operator is for dev only")
        if settings.operator.kind != "sandbox":
            raise SandboxOperatorError("the operator is not the sandbox (MSSC_OPERATOR_KIND)")
        self._base = settings.operator
        self.data_dir = Path(data_dir if data_dir is not None else settings.app.data_dir)
        self.host = host
        self.mailboxes = tuple(mailboxes) if mailboxes is not None else sandbox_mailboxes()
        self._messages_dir = messages_dir
        self.master_user = self._base.master_user or DEFAULT_MASTER_USER
        self._master_password = self._base.master_password or DEFAULT_MASTER_PASSWORD
        self.root: Path | None = None
        self._temporary_root = False
        self._dovecot: DovecotServer | None = None
        self._submission: SubmissionServer | None = None
        self.operator_settings: OperatorSettings | None = None

    @staticmethod
    def available() -> bool:
        return dovecot_binary() is not None

    @property
    def running(self) -> bool:
        return self._dovecot is not None and self._dovecot.running

    @property
    def log_file(self) -> Path | None:
        return None if self._dovecot is None else self._dovecot.log_file

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> OperatorSettings:
        """Start Dovecot and the submission server; the settings the companion must connect with."""
        if self.operator_settings is not None and self.running:
            return self.operator_settings
        binary = dovecot_binary()
        if binary is None:
            raise SandboxOperatorUnavailable("Dovecot is not installed")
        self.root, self._temporary_root = choose_root(self.data_dir)
        dovecot = DovecotServer(
            self.root,
            binary=binary,
            host=self.host,
            imap_port=pick_port(self.host, self._base.imap_port),
            master_user=self.master_user,
            master_password=self._master_password,
            addresses=[m.address for m in self.mailboxes],
        )
        try:
            dovecot.start()
        except BaseException:
            self._remove_temporary_root()
            raise
        self._dovecot = dovecot
        try:
            smtp_port = pick_port(self.host, self._base.smtp_port)
            while smtp_port in (dovecot.imap_port, dovecot.lmtp_port):
                smtp_port = free_port(self.host)
            submission = SubmissionServer(
                host=self.host,
                port=smtp_port,
                master_user=self.master_user,
                master_password=self._master_password,
                mailboxes=[m.address for m in self.mailboxes],
                deliver=self._deliver,
            )
            submission.start()
        except BaseException:
            dovecot.stop()
            self._dovecot = None
            self._remove_temporary_root()
            raise
        self._submission = submission
        self.operator_settings = dataclasses.replace(
            self._base,
            kind="sandbox",
            imap_host=self.host,
            imap_port=dovecot.imap_port,
            smtp_host=self.host,
            smtp_port=submission.port,
            tls="plain",
            ca_file="",
            client_cert_file="",
            client_key_file="",
            auth="master",
            master_user=self.master_user,
            master_password=self._master_password,
        )
        return self.operator_settings

    def stop(self) -> None:
        submission, self._submission = self._submission, None
        dovecot, self._dovecot = self._dovecot, None
        if submission is not None:
            submission.stop()
        if dovecot is not None:
            dovecot.stop()
        self._remove_temporary_root()

    def _remove_temporary_root(self) -> None:
        if self._temporary_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self._temporary_root = False

    async def astart(self) -> OperatorSettings:
        return await asyncio.to_thread(self.start)

    async def aseed(self) -> SeedReport:
        return await asyncio.to_thread(self.seed)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    # --- mail ----------------------------------------------------------------------------------
    def seed(self, *, now: dt.datetime | None = None) -> SeedReport:
        """Give every empty sandbox mailbox the demo messages (INBOX, oldest first). Idempotent."""
        dovecot = self._require_dovecot()
        messages = load_demo_messages(self._messages_dir) if self._messages_dir else load_demo_messages()
        dates = delivery_dates(messages, now or dt.datetime.now(dt.UTC))
        empty = [m for m in self.mailboxes if dovecot.stored_messages(m.address) == 0] if messages else []
        with ThreadPoolExecutor(max_workers=min(8, len(empty) or 1)) as pool:
            delivered = sum(pool.map(lambda mailbox: self._seed_one(mailbox, messages, dates), empty))
        total = sum(dovecot.stored_messages(m.address) for m in self.mailboxes)
        return SeedReport(mailboxes=len(self.mailboxes), seeded=len(empty), delivered=delivered, messages=total)

    def _seed_one(self, mailbox: SandboxMailbox, messages: list[DemoMessage], dates: list[dt.datetime]) -> int:
        dovecot = self._require_dovecot()
        with smtplib.LMTP(dovecot.host, dovecot.lmtp_port, timeout=30) as lmtp:
            for message, date in zip(messages, dates, strict=True):
                raw = addressed(message, to_address=mailbox.address, to_name=mailbox.display_name, date=date)
                lmtp.sendmail(message.sender or "<>", [mailbox.address], raw)
        return len(messages)

    def count(self, address: str) -> int:
        """Messages stored in a sandbox mailbox, all folders."""
        return self._require_dovecot().stored_messages(address)

    def deliver(self, address: str, raw: bytes, *, envelope_from: str = "") -> None:
        """Put one message in a sandbox mailbox's INBOX, as the operator's MTA would."""
        accepted = self._deliver(envelope_from, [address], raw)
        if not accepted:
            raise SandboxOperatorError("the mailbox refused the message")

    def _deliver(self, envelope_from: str, recipients: list[str], raw: bytes) -> list[str]:
        """LMTP, recipient by recipient; the recipients Dovecot accepted."""
        dovecot = self._require_dovecot()
        accepted: list[str] = []
        with smtplib.LMTP(dovecot.host, dovecot.lmtp_port, timeout=30) as lmtp:
            for recipient in recipients:
                try:
                    lmtp.sendmail(envelope_from or "<>", [recipient], raw)
                except smtplib.SMTPRecipientsRefused:
                    continue
                accepted.append(recipient)
        return accepted

    def _require_dovecot(self) -> DovecotServer:
        if self._dovecot is None or not self._dovecot.running:
            raise SandboxOperatorError("the sandbox operator is not running")
        return self._dovecot


async def start_sandbox_operator(settings: Settings) -> tuple[SandboxOperator | None, Settings]:
    """For the app's start-up: start and seed the sandbox operator, return the settings to run with.

    Never fails the app: without Dovecot (or if it cannot start) the demo runs without mail and the
    log says so.
    """
    try:
        sandbox = SandboxOperator(settings)
    except SandboxOperatorError as exc:
        log.warning("sandbox_operator.refused", reason=str(exc))
        return None, settings
    try:
        operator = await sandbox.astart()
        report = await sandbox.aseed()
    except SandboxOperatorUnavailable:
        log.warning(
            "sandbox_operator.unavailable: Dovecot is not installed, the demo runs WITHOUT MAIL",
            fix="install dovecot-imapd and dovecot-lmtpd (as root: make system-packages), then restart",
        )
        return None, settings
    except SandboxOperatorError as exc:
        await sandbox.astop()
        log.warning("sandbox_operator.failed: the demo runs WITHOUT MAIL", reason=str(exc))
        return None, settings
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error) as exc:
        await sandbox.astop()
        # the exception text may quote a server reply (with an address): its type only
        log.warning("sandbox_operator.failed: the demo runs WITHOUT MAIL", error=type(exc).__name__)
        return None, settings
    log.info(
        "sandbox_operator.started",
        imap=f"{operator.imap_host}:{operator.imap_port}",
        smtp=f"{operator.smtp_host}:{operator.smtp_port}",
        mailboxes=report.mailboxes,
        messages=report.messages,
        delivered_now=report.delivered,
        directory=str(sandbox.root),
    )
    return sandbox, dataclasses.replace(settings, operator=operator)
