"""The demo's local MSSanté operator (dev only): a private Dovecot, a submission server, demo mail.

``create_app`` starts it when ``MSSC_OPERATOR_KIND=sandbox`` (the dev default) and Dovecot is
installed, before the services are built, so the operator connector uses the ports it really got.
"""

from __future__ import annotations

from backend.mail.sandbox_operator.dovecot import SandboxOperatorError, SandboxOperatorUnavailable, dovecot_binary
from backend.mail.sandbox_operator.sandbox import (
    SandboxMailbox,
    SandboxOperator,
    SeedReport,
    sandbox_mailboxes,
    start_sandbox_operator,
)

__all__ = [
    "SandboxMailbox",
    "SandboxOperator",
    "SandboxOperatorError",
    "SandboxOperatorUnavailable",
    "SeedReport",
    "dovecot_binary",
    "sandbox_mailboxes",
    "start_sandbox_operator",
]
