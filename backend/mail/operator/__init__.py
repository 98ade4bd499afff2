"""Connector to the MSSanté operator: gateway login, IMAP sessions, SMTP submission, pooling.

Start at :class:`OperatorConnector` (or :class:`OperatorPool` / :class:`SubmissionClient`); the
results are the typed records of :mod:`.models`; failures are the domain errors of :mod:`.errors`.
"""

from backend.mail.operator.auth import (
    BearerJwtAuth,
    ClientCertificateAuth,
    GatewayAuth,
    MasterUserAuth,
    gateway_auth_from_settings,
)
from backend.mail.operator.bearer import BearerTokenIssuer, load_bearer_keys
from backend.mail.operator.bodystructure import MimePart
from backend.mail.operator.circuit import Circuit
from backend.mail.operator.connector import OperatorConnector
from backend.mail.operator.errors import (
    FolderNotFoundError,
    MessageNotFoundError,
    MessageRejectedError,
    OperatorAuthError,
    OperatorBusyError,
    OperatorCommandError,
    OperatorProtocolError,
    OperatorUnavailableError,
    OperatorUnreachableError,
)
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.imap_session import ImapSession
from backend.mail.operator.models import (
    SUMMARY_HEADERS,
    AppendedMessage,
    Capabilities,
    CopiedUids,
    FlagState,
    Folder,
    MailboxChanges,
    MessageSummary,
    SelectedMailbox,
)
from backend.mail.operator.mutf7 import quote
from backend.mail.operator.pool import OperatorPool, PoolStats
from backend.mail.operator.sasl import SaslLogin
from backend.mail.operator.smtp import SubmissionClient, SubmissionResult
from backend.mail.operator.tls import client_ssl_context, ssl_context_from_settings

__all__ = [
    "SUMMARY_HEADERS",
    "ActingIdentity",
    "AppendedMessage",
    "BearerJwtAuth",
    "BearerTokenIssuer",
    "Capabilities",
    "Circuit",
    "ClientCertificateAuth",
    "CopiedUids",
    "FlagState",
    "Folder",
    "FolderNotFoundError",
    "GatewayAuth",
    "ImapSession",
    "MailboxChanges",
    "MasterUserAuth",
    "MessageNotFoundError",
    "MessageRejectedError",
    "MessageSummary",
    "MimePart",
    "OperatorAuthError",
    "OperatorBusyError",
    "OperatorCommandError",
    "OperatorConnector",
    "OperatorPool",
    "OperatorProtocolError",
    "OperatorUnavailableError",
    "OperatorUnreachableError",
    "PoolStats",
    "SaslLogin",
    "SelectedMailbox",
    "SubmissionClient",
    "SubmissionResult",
    "client_ssl_context",
    "gateway_auth_from_settings",
    "load_bearer_keys",
    "quote",
    "ssl_context_from_settings",
]
