"""Rotating refresh tokens (OAuth 2.0 Security BCP §4.14.2), one family per device login.

The token is opaque: ``mssc_rt_`` + 256 random bits. Only its SHA-256 is stored (``RefreshToken``).
Each use marks the token used and issues its successor in the same family. A used token that comes
back means two parties hold the family (a stolen copy, or a clone of the phone's storage): the whole
family is revoked, and the device has to enrol again once its access token runs out.

**Transactions.** The caller owns the transaction (``session`` is passed in), so a reuse cannot be
signalled by raising inside it: the rollback would undo the family revocation. :meth:`rotate`
therefore *returns* a :class:`RefreshTokenReuse` after revoking the family in the session; the
caller commits, then raises :meth:`RefreshTokenReuse.error`. The return type is a union so a type
checker makes every caller look at it::

    async with db.transaction() as session:
        outcome = await refresh_tokens.rotate(session, presented=token, device_id=device.id)
    if isinstance(outcome, RefreshTokenReuse):
        raise outcome.error()          # the revocation above is committed
    new_token, family_id = outcome

Every other failure (unknown, expired, revoked, another device's token) writes nothing and raises
``AuthError(INVALID_GRANT)`` at once. Marking a token used is one conditional ``UPDATE … WHERE
used_at IS NULL``: of two concurrent rotations of one token, exactly one wins and the other is
handled as a reuse (on PostgreSQL the loser's update waits for the winner's commit and sees it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import ErrorCode
from core.db.models import RefreshToken
from core.errors import AuthError

TOKEN_PREFIX = "mssc_rt_"  # noqa: S105 - a prefix, not a secret
_RANDOM_BYTES = 32  # 256 bits
_TOKEN_LEN = len(TOKEN_PREFIX) + 43


class RotatedRefreshToken(NamedTuple):
    """The successor token (show it once, never store it) and its family."""

    token: str
    family_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RefreshTokenReuse:
    """A used token was presented again; its family is revoked in the session (commit it)."""

    device_id: uuid.UUID
    family_id: uuid.UUID
    #: Tokens of the family that this call revoked.
    revoked: int

    def error(self) -> AuthError:
        return AuthError(ErrorCode.REFRESH_TOKEN_REUSED, "refresh token already used; sign-in revoked")


def hash_refresh_token(token: str) -> str:
    """The stored form: hex SHA-256 (the token has 256 random bits, so no salt or KDF is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    """Refresh token service; ``ttl_s`` is ``TokenSettings.refresh_ttl_s`` (sliding: rotation renews it)."""

    def __init__(self, *, ttl_s: int) -> None:
        if ttl_s <= 0:
            raise ValueError("refresh token ttl must be positive")
        self.ttl_s = ttl_s

    async def issue(
        self,
        session: AsyncSession,
        *,
        device_id: uuid.UUID,
        family_id: uuid.UUID | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        """Store a new token for ``device_id``; ``family_id=None`` starts a new family (a new login)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
        issued = _now(now)
        session.add(
            RefreshToken(
                device_id=device_id,
                family_id=family_id or uuid.uuid4(),
                token_hash=hash_refresh_token(token),
                expires_at=issued + dt.timedelta(seconds=self.ttl_s),
            )
        )
        await session.flush()
        return token

    async def rotate(
        self, session: AsyncSession, *, presented: str, device_id: uuid.UUID, now: dt.datetime | None = None
    ) -> RotatedRefreshToken | RefreshTokenReuse:
        """Spend ``presented`` and return its successor, or a :class:`RefreshTokenReuse` (see module doc).

        Raises ``AuthError(INVALID_GRANT)`` for an unknown, expired or revoked token, or one of
        another device (that device cannot use it without this device's key, so nothing is revoked).
        """
        if not presented.startswith(TOKEN_PREFIX) or len(presented) != _TOKEN_LEN:
            raise _invalid_grant()
        current = _now(now)
        row = (
            await session.execute(
                select(
                    RefreshToken.id,
                    RefreshToken.device_id,
                    RefreshToken.family_id,
                    RefreshToken.expires_at,
                    RefreshToken.used_at,
                    RefreshToken.revoked_at,
                ).where(RefreshToken.token_hash == hash_refresh_token(presented))
            )
        ).one_or_none()
        if row is None or row.device_id != device_id or row.revoked_at is not None:
            raise _invalid_grant()
        if row.used_at is not None:
            return await self._reused(session, device_id, row.family_id, current)
        if row.expires_at <= current:
            raise _invalid_grant()
        spent = cast(
            "CursorResult[Any]",
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
                .values(used_at=current)
                .execution_options(synchronize_session=False)
            ),
        )
        if spent.rowcount != 1:  # a concurrent rotation spent it first
            return await self._reused(session, device_id, row.family_id, current)
        token = await self.issue(session, device_id=device_id, family_id=row.family_id, now=current)
        return RotatedRefreshToken(token, row.family_id)

    async def revoke_family(
        self, session: AsyncSession, family_id: uuid.UUID, *, now: dt.datetime | None = None
    ) -> int:
        """Revoke every live token of a family; returns how many."""
        result = cast(
            "CursorResult[Any]",
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=_now(now))
                .execution_options(synchronize_session=False)
            ),
        )
        return result.rowcount

    async def revoke_device(
        self, session: AsyncSession, device_id: uuid.UUID, *, now: dt.datetime | None = None
    ) -> int:
        """Revoke every token of a device (device revoked or signed out); returns how many."""
        result = cast(
            "CursorResult[Any]",
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.device_id == device_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=_now(now))
                .execution_options(synchronize_session=False)
            ),
        )
        return result.rowcount

    async def purge_expired(self, session: AsyncSession, *, before: dt.datetime) -> int:
        """Delete tokens that expired before ``before`` (keep a margin: used rows detect reuse)."""
        result = cast(
            "CursorResult[Any]",
            await session.execute(
                delete(RefreshToken)
                .where(RefreshToken.expires_at < before)
                .execution_options(synchronize_session=False)
            ),
        )
        return result.rowcount

    async def _reused(
        self, session: AsyncSession, device_id: uuid.UUID, family_id: uuid.UUID, now: dt.datetime
    ) -> RefreshTokenReuse:
        revoked = await self.revoke_family(session, family_id, now=now)
        return RefreshTokenReuse(device_id=device_id, family_id=family_id, revoked=revoked)


def _now(now: dt.datetime | None) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if now is None else now


def _invalid_grant() -> AuthError:
    return AuthError(ErrorCode.INVALID_GRANT, "refresh token invalid")


__all__ = ["TOKEN_PREFIX", "RefreshTokenReuse", "RefreshTokens", "RotatedRefreshToken", "hash_refresh_token"]
