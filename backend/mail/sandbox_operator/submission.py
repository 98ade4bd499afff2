"""The sandbox operator's SMTP submission server: aiosmtpd on loopback, delivering by LMTP to Dovecot.

It behaves like an operator's submission service where the companion depends on it:

* **AUTH PLAIN as the gateway**: ``authzid=mailbox`` with the master user's credentials, or
  ``mailbox*master`` as the authentication identity;
* **the sender must be the mailbox logged into**, as operators require;
* accepted mail goes by **LMTP** to the recipients that are sandbox mailboxes (so it can be read
  back over IMAP); other recipients are accepted and dropped (a real operator would relay them):
  the log says how many, never who.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import smtplib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from backend.mail.sandbox_operator.net import free_port
from core.logging import get_logger

log = get_logger("mssc.sandbox_operator")

MAX_RECIPIENTS = 100

#: ``deliver(envelope_from, recipients, raw) -> recipients Dovecot accepted``
Deliver = Callable[[str, list[str], bytes], list[str]]


@dataclass(frozen=True, slots=True)
class _Login:
    mailbox: str


class _QuietLoginData(logging.Filter):
    """aiosmtpd 1.4 warns "Session.login_data is deprecated" on every successful AUTH it itself does."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietLoginData) for f in logger.filters):
        logger.addFilter(_QuietLoginData())


class SubmissionServer:
    """``SubmissionServer(...).start()`` … ``stop()``; ``port`` is where it listens."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        master_user: str,
        master_password: str,
        mailboxes: Collection[str],
        deliver: Deliver,
    ) -> None:
        self.host = host
        self.port = port
        self._master_user = master_user
        self._master_password = master_password
        self._mailboxes = frozenset(m.lower() for m in mailboxes)
        self._deliver = deliver
        self._controller: Controller | None = None

    def start(self) -> None:
        if self._controller is not None:
            return
        self.port = self.port or free_port(self.host)
        _quiet_aiosmtpd()
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            # AUTH is demanded in handle_MAIL: aiosmtpd's own auth_required warns on every plain
            # (loopback) connection, whose point is AUTH without TLS
            auth_required=False,
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN"],
            server_hostname="submission.sandbox.mssante.test",
            ready_timeout=10,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def check_login(self, authzid: str, authcid: str, password: str) -> str | None:
        """The mailbox this PLAIN login acts for (``authzid``, or ``mailbox*master``), or None."""
        if authzid:
            mailbox, master = authzid, authcid
        else:
            mailbox, separator, master = authcid.partition("*")
            if not separator:
                return None
        mailbox = mailbox.lower()
        user_ok = hmac.compare_digest(master.encode(), self._master_user.encode())
        password_ok = hmac.compare_digest(password.encode(), self._master_password.encode())
        return mailbox if user_ok and password_ok and mailbox in self._mailboxes else None

    def is_local(self, address: str) -> bool:
        return address.lower() in self._mailboxes

    def deliver(self, envelope_from: str, recipients: list[str], raw: bytes) -> list[str]:
        return self._deliver(envelope_from, recipients, raw)


class _Handler:
    """aiosmtpd hooks: ``auth_PLAIN`` replaces the built-in mechanism, ``handle_*`` the verbs."""

    def __init__(self, server: SubmissionServer) -> None:
        self._server = server

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's name
        if len(args) > 1:
            encoded: Any = args[1].encode("ascii", "replace")
        else:
            encoded = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(encoded, bytes):
                return AuthResult(success=False, handled=True)
        try:
            payload = b"" if encoded == b"=" else base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return AuthResult(success=False, handled=False)
        parts = payload.split(b"\0")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False)
        authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
        mailbox = self._server.check_login(authzid, authcid, password)
        if mailbox is None:
            log.info("sandbox_operator.smtp_login_refused")
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=_Login(mailbox))

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        login: object = session.auth_data  # aiosmtpd declares it None until a login sets it
        if not session.authenticated or not isinstance(login, _Login):
            return "530 5.7.0 Authentication required"
        if address.lower() != login.mailbox:
            return "553 5.7.1 Sender address does not match the authenticated mailbox"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if "@" not in address:
            return "553 5.1.3 Not a mailbox address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        data = envelope.original_content or envelope.content
        raw = data if isinstance(data, bytes) else str(data).encode()
        recipients = [str(r) for r in envelope.rcpt_tos]
        local = [r for r in recipients if self._server.is_local(r)]
        delivered: list[str] = []
        if local:
            try:
                delivered = await asyncio.get_running_loop().run_in_executor(
                    None, self._server.deliver, str(envelope.mail_from or ""), local, raw
                )
            except (OSError, smtplib.SMTPException):
                log.warning("sandbox_operator.lmtp_unavailable")
                return "451 4.3.0 Mailbox store temporarily unavailable"
        log.info(
            "sandbox_operator.relayed",
            delivered=len(delivered),
            refused=len(local) - len(delivered),
            outside_sandbox=len(recipients) - len(local),
            size=len(raw),
        )
        return "250 2.0.0 OK queued"
