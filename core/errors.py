"""Domain errors. Services raise these; one handler (``backend.problems``) maps them to problem+json.

A ``detail`` is shown to the caller: it must never contain message content, a subject, a sender,
an address or a patient name. Use identifiers the caller already knows, or nothing.
"""

from __future__ import annotations

from typing import Any

from contracts.errors import STATUS, ErrorCode


class DomainError(Exception):
    """An expected failure with a stable code."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        wipe: bool | None = None,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or code.value)
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.wipe = wipe
        self.retry_after = retry_after
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r})"


class AuthError(DomainError):
    """The caller is not (or no longer) authenticated; answered 401 with ``WWW-Authenticate``."""


class ForbiddenError(DomainError):
    """Authenticated, but not allowed."""


class NotFoundError(DomainError):
    """The thing does not exist, or the caller may not know it does."""


class ConflictError(DomainError):
    """The request does not fit the current state."""


class RateLimitedError(DomainError):
    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(
            ErrorCode.RATE_LIMITED, detail, retry_after=retry_after, headers={"Retry-After": str(retry_after)}
        )
