"""SMTP submission to the operator, logged in with the same gateway strategy as IMAP.

One connection per message: submissions are rare next to reads, and a fresh connection carries
the acting identity of *this* send (the bearer JWT names the professional and device). aiosmtplib
does the transport (STARTTLS or implicit TLS with our context, dot-stuffing, timeouts); the
``AUTH`` exchange is ours because aiosmtplib's PLAIN has no authorization identity, it has no
OAUTHBEARER, and bearer errors need the mechanism's own reply (see :mod:`sasl`).

Outcome: a :class:`SubmissionResult` when at least one recipient was accepted (refused ones are
listed by SMTP code), :class:`MessageRejectedError` when the server refused the sender, the message or
every recipient, :class:`OperatorAuthError`, or :class:`OperatorUnavailableError` (down, timing out,
``4xx``). Connection attempts share a :class:`Circuit` so an outage fails fast.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiosmtplib
import structlog

from backend.mail.operator import sasl
from backend.mail.operator.auth import GatewayAuth
from backend.mail.operator.circuit import Circuit
from backend.mail.operator.errors import (
    MessageRejectedError,
    OperatorAuthError,
    OperatorUnavailableError,
    OperatorUnreachableError,
)
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.tls import ssl_context_from_settings
from core.settings import OperatorSettings

log = structlog.get_logger(__name__)

_MAX_AUTH_ROUNDS = 3
_SMTP_LINE_LIMIT = 512


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """Accepted by the operator for at least one recipient."""

    accepted: tuple[str, ...]
    #: refused recipient → SMTP reply code (the server's text is not kept: it may echo addresses)
    refused: Mapping[str, int] = field(default_factory=dict)


class SubmissionClient:
    """``await client.send(raw, envelope_from=…, recipients=[…], identity=…)``."""

    def __init__(
        self,
        settings: OperatorSettings,
        auth: GatewayAuth,
        *,
        ssl_context: ssl.SSLContext | None = None,
        circuit: Circuit | None = None,
        local_hostname: str = "mss-companion",
    ) -> None:
        self._settings = settings
        self._auth = auth
        self._ssl_context = ssl_context if ssl_context is not None else ssl_context_from_settings(settings)
        self._circuit = circuit or Circuit()
        self._local_hostname = local_hostname

    @property
    def circuit(self) -> Circuit:
        return self._circuit

    async def send(
        self, raw: bytes, *, envelope_from: str, recipients: Sequence[str], identity: ActingIdentity
    ) -> SubmissionResult:
        """Submit ``raw`` (RFC 5322 bytes, CRLF line ends) for ``identity.mailbox``."""
        if not recipients:
            raise ValueError("no recipient")
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.tls == "implicit",
            start_tls=settings.tls == "starttls",
            tls_context=self._ssl_context if settings.tls != "plain" else None,
            timeout=settings.connect_timeout_s,
            local_hostname=self._local_hostname,
        )
        try:
            with self._circuit.attempt():
                await self._connect(client)
                await self._authenticate(client, identity)
            return await self._transaction(client, raw, envelope_from, list(recipients))
        finally:
            if client.is_connected:
                try:
                    await client.quit(timeout=2)
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    async def _connect(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.connect()
            if not client.esmtp_extensions:
                await client.ehlo()  # aiosmtplib only says EHLO on connect when it starts TLS
        except ssl.SSLError as exc:
            log.warning("operator.smtp_tls_failed", error=type(exc).__name__)
            raise OperatorUnreachableError(1, "TLS handshake with the submission server failed") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            raise OperatorUnreachableError(1, "submission server unreachable") from None

    async def _authenticate(self, client: aiosmtplib.SMTP, identity: ActingIdentity) -> None:
        settings = self._settings
        login = self._auth.login(identity, host=settings.smtp_host, port=settings.smtp_port)
        offered = {m.upper() for m in client.server_auth_methods}
        if login.mechanism not in offered:
            raise OperatorAuthError(f"submission server does not offer {login.mechanism}")
        timeout = settings.command_timeout_s
        initial = sasl.encode(login.initial_response).encode("ascii")
        mechanism = login.mechanism.encode("ascii")
        # RFC 4954 §4: an AUTH line longer than SMTP's 512 octets must not carry the initial
        # response (a bearer JWT does not fit); it then goes in answer to the first 334.
        inline = len(b"AUTH " + mechanism + b" " + initial) + 2 <= _SMTP_LINE_LIMIT
        try:
            args = (b"AUTH", mechanism, initial) if inline else (b"AUTH", mechanism)
            response = await client.execute_command(*args, timeout=timeout)
            if not inline and response.code == 334:
                response = await client.execute_command(base64.b64encode(login.initial_response), timeout=timeout)
            status: str | None = None
            rounds = 0
            while response.code == 334 and rounds < _MAX_AUTH_ROUNDS:
                rounds += 1
                status = status or sasl.bearer_error_status(response.message.encode("ascii", "replace"))
                reply = login.challenge_reply
                line = b"*" if reply is None else base64.b64encode(reply)
                response = await client.execute_command(line, timeout=timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError):
            raise OperatorUnavailableError(1, "submission server lost during login") from None
        if response.code == 235:
            return
        if 400 <= response.code < 500:
            raise OperatorUnavailableError(5, "submission server cannot authenticate now")
        log.info("operator.smtp_login_refused", mechanism=login.mechanism, smtp_code=response.code, status=status)
        raise OperatorAuthError(f"{login.mechanism} login refused" + (f" ({status})" if status else ""))

    async def _transaction(
        self, client: aiosmtplib.SMTP, raw: bytes, envelope_from: str, recipients: list[str]
    ) -> SubmissionResult:
        options: list[str] = []
        if not raw.isascii() and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            refused, _message = await client.sendmail(
                envelope_from, recipients, raw, mail_options=options, timeout=self._settings.command_timeout_s
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise _rejected_or_transient(min(codes) if codes else 550, "every recipient was refused") from None
        except aiosmtplib.SMTPSenderRefused as exc:
            raise _rejected_or_transient(exc.code, "the sender was refused") from None
        except aiosmtplib.SMTPDataError as exc:
            raise _rejected_or_transient(exc.code, "the message was refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _rejected_or_transient(exc.code, "the submission failed") from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError):
            raise OperatorUnavailableError(5, "submission server lost during the transaction") from None
        refused_codes = {address: response.code for address, response in refused.items()}
        accepted = tuple(r for r in recipients if r not in refused_codes)
        return SubmissionResult(accepted=accepted, refused=refused_codes)


def _rejected_or_transient(code: int, detail: str) -> MessageRejectedError | OperatorUnavailableError:
    """``4xx`` is the operator's temporary trouble (retry later); ``5xx`` is a refusal."""
    if 400 <= code < 500:
        return OperatorUnavailableError(5, detail)
    return MessageRejectedError(code, detail)
