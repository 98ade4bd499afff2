"""The operator's SMTP submission server, for tests: aiosmtpd in front of Dovecot.

Pytest-agnostic: ``SubmissionRelay(dovecot).start()`` … ``stop()``. It behaves like an operator's
submission service in the ways the companion depends on:

* **AUTH is checked by Dovecot itself.** PLAIN (with or without authzid, ``mailbox*master``),
  XOAUTH2 and OAUTHBEARER payloads are replayed to Dovecot's IMAP ``AUTHENTICATE``; the answer
  decides. A bearer error challenge from Dovecot is passed to the SMTP client as ``334 …`` and the
  client's reply is passed back, so a client that does not answer error challenges hangs here too.
* **The sender must be the mailbox logged into** (``enforce_sender``), as operators require.
* **Accepted mail is delivered by LMTP** to Dovecot, so a sent message can be read back over
  IMAP. Every transaction is recorded (:class:`RelayedEnvelope`) for assertions.
* ``refuse_recipient(address)`` makes RCPT answer ``550`` for it (partial-refusal tests).

TLS: ``plain`` (default), ``starttls`` or ``implicit``, with a certificate from Dovecot's CA.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.peers.dovecot import DovecotInstance
from tests.peers.ports import free_port


@dataclass(frozen=True, slots=True)
class RelayedEnvelope:
    """One accepted transaction."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_mechanism: str
    #: The mailbox the client logged in for (authzid, ``mailbox*master``, ``user=``, ``a=``).
    auth_mailbox: str
    #: Recipients Dovecot accepted over LMTP (others would leave the operator: not simulated).
    delivered: tuple[str, ...] = ()


@dataclass(slots=True)
class _Login:
    mechanism: str
    mailbox: str


@dataclass(slots=True)
class _State:
    envelopes: list[RelayedEnvelope] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    auth_attempts: list[tuple[str, bool]] = field(default_factory=list)


class SubmissionRelay:
    """An aiosmtpd submission server on a free loopback port, delivering to ``dovecot``."""

    def __init__(
        self,
        dovecot: DovecotInstance,
        *,
        host: str = "127.0.0.1",
        tls: Literal["plain", "starttls", "implicit"] = "plain",
        enforce_sender: bool = True,
    ) -> None:
        self.dovecot = dovecot
        self.host = host
        self.tls = tls
        self.enforce_sender = enforce_sender
        self.port = 0
        self._state = _State()
        self._changed = threading.Condition()
        self._controller: Controller | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._controller is not None:
            return
        self.port = free_port(self.host)
        kwargs: dict[str, Any] = {}
        if self.tls != "plain":
            if self.dovecot.ca is None:
                raise RuntimeError("start Dovecot first (its CA signs the relay's certificate)")
            issued = self.dovecot.ca.issue_server("smtp", hosts=("localhost", self.host))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(issued.cert_file, issued.key_file)
            if self.tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            # AUTH is required by handle_MAIL: aiosmtpd's own auth_required warns on every
            # connection of the plain (loopback) mode, whose point is AUTH without TLS
            auth_required=False,
            auth_require_tls=self.tls == "starttls",
            auth_exclude_mechanism=["LOGIN"],
            server_hostname="submission.mssante.test",
            ready_timeout=10,
            **kwargs,
        )
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SubmissionRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls and observations ------------------------------------------------------------
    def refuse_recipient(self, address: str, code: int = 550) -> None:
        self._state.refused[address.lower()] = code

    @property
    def envelopes(self) -> tuple[RelayedEnvelope, ...]:
        with self._changed:
            return tuple(self._state.envelopes)

    @property
    def auth_attempts(self) -> tuple[tuple[str, bool], ...]:
        """(mechanism, accepted) of every AUTH, in order."""
        with self._changed:
            return tuple(self._state.auth_attempts)

    def wait_for_envelopes(self, count: int, *, timeout_s: float = 5.0) -> tuple[RelayedEnvelope, ...]:
        with self._changed:
            self._changed.wait_for(lambda: len(self._state.envelopes) >= count, timeout=timeout_s)
            return tuple(self._state.envelopes)

    def _record(self, envelope: RelayedEnvelope | None = None, attempt: tuple[str, bool] | None = None) -> None:
        with self._changed:
            if envelope is not None:
                self._state.envelopes.append(envelope)
            if attempt is not None:
                self._state.auth_attempts.append(attempt)
            self._changed.notify_all()


class _Handler:
    """aiosmtpd hooks: ``auth_<MECH>`` replace the built-in mechanisms, ``handle_*`` the verbs."""

    def __init__(self, relay: SubmissionRelay) -> None:
        self._relay = relay

    # --- AUTH: replay the SASL payload to Dovecot -------------------------------------------------
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        payload = await _initial(server, args)
        if payload is None:
            return AuthResult(success=False, handled=True)
        parts = payload.split(b"\0")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False)
        authzid, authcid = parts[0].decode(errors="replace"), parts[1].decode(errors="replace")
        mailbox = authzid or authcid.split("*", 1)[0]
        return await self._verify(server, "PLAIN", payload, mailbox)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        payload = await _initial(server, args)
        if payload is None:
            return AuthResult(success=False, handled=True)
        fields = dict(f.split("=", 1) for f in payload.decode(errors="replace").split("\x01") if "=" in f)
        return await self._verify(server, "XOAUTH2", payload, fields.get("user", ""))

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        payload = await _initial(server, args)
        if payload is None:
            return AuthResult(success=False, handled=True)
        gs2 = payload.decode(errors="replace").split("\x01", 1)[0]
        mailbox = next((p[2:] for p in gs2.split(",") if p.startswith("a=")), "")
        mailbox = mailbox.replace("=2C", ",").replace("=3D", "=")
        return await self._verify(server, "OAUTHBEARER", payload, mailbox)

    async def _verify(self, server: SMTP, mechanism: str, payload: bytes, mailbox: str) -> AuthResult:
        dovecot = self._relay.dovecot
        reader, writer = await asyncio.open_connection(dovecot.host, dovecot.imap_port)
        try:
            await reader.readline()  # greeting
            initial = base64.b64encode(payload) or b"="
            writer.write(b"A1 AUTHENTICATE " + mechanism.encode() + b" " + initial + b"\r\n")
            line = await reader.readline()
            while line.startswith(b"+"):
                # Dovecot's error challenge goes to the SMTP client; its reply goes back to Dovecot
                reply = await server.challenge_auth(line[1:].strip(), encode_to_b64=False)
                if not isinstance(reply, bytes):
                    writer.write(b"*\r\n")
                    await reader.readline()
                    self._relay._record(attempt=(mechanism, False))
                    return AuthResult(success=False, handled=True)
                writer.write(base64.b64encode(reply) + b"\r\n")
                line = await reader.readline()
            ok = line.startswith(b"A1 OK")
            if ok:
                writer.write(b"A2 LOGOUT\r\n")
        finally:
            writer.close()
        self._relay._record(attempt=(mechanism, ok))
        if not ok:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=_Login(mechanism, mailbox.lower()))

    # --- transaction --------------------------------------------------------------------------
    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        login = session.auth_data
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self._relay.enforce_sender and (not isinstance(login, _Login) or address.lower() != login.mailbox):
            return "553 5.7.1 Sender address does not match the authenticated mailbox"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        code = self._relay._state.refused.get(address.lower())
        if code is not None:
            return f"{code} 5.1.1 Recipient refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data
        data = envelope.original_content or envelope.content
        raw = data if isinstance(data, bytes) else str(data).encode()
        delivered = await asyncio.get_running_loop().run_in_executor(
            None, _deliver, self._relay.dovecot, envelope.mail_from or "", list(envelope.rcpt_tos), raw
        )
        self._relay._record(
            RelayedEnvelope(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=raw,
                auth_mechanism=login.mechanism if isinstance(login, _Login) else "",
                auth_mailbox=login.mailbox if isinstance(login, _Login) else "",
                delivered=tuple(delivered),
            )
        )
        return "250 2.0.0 OK queued"


async def _initial(server: SMTP, args: list[str]) -> bytes | None:
    """The initial response (``AUTH MECH <b64>``, ``=`` for empty), or asked for with ``334``."""
    if len(args) > 1:
        if args[1] == "=":
            return b""
        try:
            return base64.b64decode(args[1], validate=True)
        except ValueError:
            await server.push("501 5.5.2 Can't decode base64")
            return None
    reply = await server.challenge_auth("")
    return reply if isinstance(reply, bytes) else None


def _deliver(dovecot: DovecotInstance, mail_from: str, recipients: list[str], raw: bytes) -> list[str]:
    """LMTP to Dovecot, recipient by recipient; returns those it accepted."""
    delivered: list[str] = []
    with smtplib.LMTP(dovecot.host, dovecot.lmtp_port, timeout=10) as lmtp:
        for rcpt in recipients:
            try:
                lmtp.sendmail(mail_from or "<>", [rcpt], raw)
            except smtplib.SMTPRecipientsRefused:
                continue
            delivered.append(rcpt)
    return delivered
