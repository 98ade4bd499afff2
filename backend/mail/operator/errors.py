"""What can go wrong with the operator, as domain errors with stable codes.

The connector never lets a raw ``OSError``, ``ssl.SSLError``, ``TimeoutError`` or aioimaplib /
aiosmtplib exception escape: callers (the mail API, the watcher) switch on these codes. Details
never name a mailbox, a folder or a recipient (``core.errors`` rule); server texts are kept out of
``detail`` too, since an operator may echo an address in them.
"""

from __future__ import annotations

import math

from contracts.errors import ErrorCode
from core.errors import DomainError, NotFoundError


class OperatorUnavailableError(DomainError):
    """The operator is down, unreachable or too slow: retry after ``retry_after`` seconds.

    Raised fast (the circuit is open, the connection was refused) so a phone request never hangs on
    an operator outage; ``Retry-After`` tells the phone when trying again makes sense.
    """

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            ErrorCode.OPERATOR_UNAVAILABLE, detail, retry_after=seconds, headers={"Retry-After": str(seconds)}
        )


class OperatorUnreachableError(OperatorUnavailableError):
    """Not even a greeting: connection refused, no route, TLS handshake failed, greeting timed out.

    Only this opens the circuit (:mod:`circuit`): a session lost *after* the operator greeted us
    (a per-user connection limit, a restart) says nothing about the next connection.
    """


class OperatorBusyError(DomainError):
    """Every pooled session for this mailbox, professional and device is in use."""

    def __init__(self, retry_after: float = 1, detail: str | None = None) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(ErrorCode.OPERATOR_BUSY, detail, retry_after=seconds, headers={"Retry-After": str(seconds)})


class OperatorAuthError(DomainError):
    """The operator refused the gateway login. Not retried: the same credentials fail again."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(ErrorCode.OPERATOR_AUTH_FAILED, detail)


class OperatorProtocolError(DomainError):
    """The operator answered something unusable: a malformed response, a missing capability."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(ErrorCode.OPERATOR_ERROR, detail)


class OperatorCommandError(OperatorProtocolError):
    """An IMAP command was answered ``NO`` or ``BAD``; ``response_code`` is the bracketed code, if any.

    Examples of ``response_code``: ``NONEXISTENT``, ``TRYCREATE``, ``OVERQUOTA``, ``LIMIT``.
    """

    def __init__(self, command: str, result: str, response_code: str | None) -> None:
        super().__init__(f"{command} answered {result}" + (f" [{response_code}]" if response_code else ""))
        self.command = command
        self.result = result
        self.response_code = response_code


class FolderNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.FOLDER_NOT_FOUND)


class MessageNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.MESSAGE_NOT_FOUND)


class MessageRejectedError(DomainError):
    """The submission server refused the message or every recipient (``smtp_code`` kept for logs)."""

    def __init__(self, smtp_code: int, detail: str | None = None) -> None:
        super().__init__(ErrorCode.MESSAGE_REJECTED, detail, smtp_code=smtp_code)
        self.smtp_code = smtp_code
