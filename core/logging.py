"""Structured logs (structlog). Log identifiers and outcomes, never message content.

Nothing health-related may reach a log line: no subject, sender, recipient address, patient name
or body. Call sites log ids and codes only; ``redact_event`` is a last guard that drops values
under keys that could carry such data if a future call site forgets.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

#: Keys whose values are never logged, whatever the call site passes.
SENSITIVE_KEYS = frozenset(
    {
        "subject",
        "sender",
        "from",
        "to",
        "cc",
        "bcc",
        "recipient",
        "recipients",
        "body",
        "text",
        "html",
        "filename",
        "patient",
        "address",
        "email",
        "password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "code",
        "authorization",
        "cookie",
        "dpop",
        "check_code",
    }
)


def redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in SENSITIVE_KEYS:
            event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at each write: test runners swap and close it between tests."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure structlog and the standard library once per process."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_event,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # Client libraries log full URLs at INFO; ours never need them, and a URL can carry a query.
    for noisy in ("httpx", "httpcore", "alembic", "aioimaplib", "aiosmtplib", "mail.log"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelNamesMapping().get(level, 20)))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
