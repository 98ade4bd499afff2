"""The operator as the rest of the backend sees it: pooled IMAP sessions and SMTP submission.

Built once per app from :class:`OperatorSettings` (start-up fails on a missing key, password or
certificate), closed on shutdown. IMAP and SMTP have separate circuits: a submission outage must
not stop people from reading mail, and the other way round.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from backend.mail.operator.auth import GatewayAuth, gateway_auth_from_settings
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.imap_session import ImapSession
from backend.mail.operator.pool import OperatorPool
from backend.mail.operator.smtp import SubmissionClient, SubmissionResult
from backend.mail.operator.tls import ssl_context_from_settings
from core.settings import OperatorSettings


class OperatorConnector:
    def __init__(
        self, settings: OperatorSettings, *, auth: GatewayAuth | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.settings = settings
        self.auth = auth or gateway_auth_from_settings(settings)
        context = ssl_context if ssl_context is not None else ssl_context_from_settings(settings)
        self.pool = OperatorPool(settings, self.auth, ssl_context=context)
        self.submission = SubmissionClient(settings, self.auth, ssl_context=context)

    def session(self, *, mailbox: str, idnat: str, device_id: str) -> AbstractAsyncContextManager[ImapSession]:
        """A pooled IMAP session (see :meth:`OperatorPool.session`)."""
        return self.pool.session(mailbox=mailbox, idnat=idnat, device_id=device_id)

    async def send(
        self, raw: bytes, *, mailbox: str, idnat: str, device_id: str, envelope_from: str, recipients: Sequence[str]
    ) -> SubmissionResult:
        """Submit a message for ``mailbox`` on behalf of the professional and device."""
        identity = ActingIdentity(mailbox=mailbox, idnat=idnat, device_id=device_id)
        return await self.submission.send(raw, envelope_from=envelope_from, recipients=recipients, identity=identity)

    async def device_revoked(self, device_id: str) -> int:
        """Cut every session of a revoked device, whatever the mailbox; returns how many."""
        return await self.pool.close_for(device_id=device_id)

    async def aclose(self) -> None:
        await self.pool.aclose()
