from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from backend.auth.refresh_tokens import (
    RefreshTokenReuse,
    RefreshTokens,
    RotatedRefreshToken,
    hash_refresh_token,
)
from contracts.errors import ErrorCode
from core.db.engine import Database
from core.db.models import RefreshToken
from core.errors import AuthError

TTL = 30 * 24 * 3600


@pytest.fixture
def tokens() -> RefreshTokens:
    return RefreshTokens(ttl_s=TTL)


async def _issue(db: Database, tokens: RefreshTokens, device_id: uuid.UUID, **kw: Any) -> str:
    async with db.transaction() as session:
        return await tokens.issue(session, device_id=device_id, **kw)


async def _rotate(
    db: Database, tokens: RefreshTokens, presented: str, device_id: uuid.UUID, **kw: Any
) -> RotatedRefreshToken | RefreshTokenReuse:
    """What the token endpoint does: rotate in a transaction, act on a reuse after the commit."""
    async with db.transaction() as session:
        return await tokens.rotate(session, presented=presented, device_id=device_id, **kw)


async def _rotated(db: Database, tokens: RefreshTokens, presented: str, device_id: uuid.UUID) -> RotatedRefreshToken:
    outcome = await _rotate(db, tokens, presented, device_id)
    assert isinstance(outcome, RotatedRefreshToken)
    return outcome


async def _rows(db: Database, device_id: uuid.UUID) -> list[RefreshToken]:
    async with db.read() as session:
        result = await session.scalars(
            select(RefreshToken).where(RefreshToken.device_id == device_id).order_by(RefreshToken.created_at)
        )
        return list(result)


async def _invalid_grant(db: Database, tokens: RefreshTokens, presented: str, device_id: uuid.UUID, **kw: Any) -> None:
    with pytest.raises(AuthError) as exc:
        await _rotate(db, tokens, presented, device_id, **kw)
    assert exc.value.code == ErrorCode.INVALID_GRANT
    assert exc.value.status == 400


async def test_issue_stores_only_a_hash(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device = await make_device(database)
    token = await _issue(database, tokens, device)
    assert re.fullmatch(r"mssc_rt_[A-Za-z0-9_-]{43}", token)  # 256 random bits
    [row] = await _rows(database, device)
    assert row.token_hash == hash_refresh_token(token) != token
    assert token not in repr(row.__dict__)
    assert row.used_at is None
    assert row.revoked_at is None
    assert row.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)


async def test_rotation(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device = await make_device(database)
    first = await _issue(database, tokens, device)
    outcome = await _rotate(database, tokens, first, device)
    assert isinstance(outcome, RotatedRefreshToken)
    second, family = outcome
    assert second != first
    assert (await _rotated(database, tokens, second, device)).family_id == family
    rows = await _rows(database, device)
    assert [r.family_id for r in rows] == [family] * 3
    assert [r.used_at is not None for r in rows] == [True, True, False]


async def test_reuse_revokes_the_whole_family(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device = await make_device(database)
    first = await _issue(database, tokens, device)
    second, family = await _rotated(database, tokens, first, device)
    third, _ = await _rotated(database, tokens, second, device)
    unrelated = await _issue(database, tokens, device)  # another login of the same device: other family

    # The thief (or the clone) presents the first token again.
    outcome = await _rotate(database, tokens, first, device)
    assert isinstance(outcome, RefreshTokenReuse)
    assert outcome.family_id == family
    assert outcome.device_id == device
    assert outcome.revoked == 3
    error = outcome.error()
    assert error.code == ErrorCode.REFRESH_TOKEN_REUSED
    assert error.status == 400

    # The revocation was committed with the transaction: the live token of the family is dead.
    rows = await _rows(database, device)
    assert all(r.revoked_at is not None for r in rows if r.family_id == family)
    await _invalid_grant(database, tokens, third, device)
    # The other family is untouched.
    assert isinstance(await _rotate(database, tokens, unrelated, device), RotatedRefreshToken)


async def test_reuse_revocation_survives_the_raised_error(
    database: Database, tokens: RefreshTokens, make_device: Any
) -> None:
    """The documented pattern: commit, then raise — the revocation is not rolled back."""
    device = await make_device(database)
    first = await _issue(database, tokens, device)
    second, _ = await _rotated(database, tokens, first, device)

    async def token_endpoint(presented: str) -> str:
        async with database.transaction() as session:
            outcome = await tokens.rotate(session, presented=presented, device_id=device)
        if isinstance(outcome, RefreshTokenReuse):
            raise outcome.error()
        return outcome.token

    with pytest.raises(AuthError) as exc:
        await token_endpoint(first)
    assert exc.value.code == ErrorCode.REFRESH_TOKEN_REUSED
    await _invalid_grant(database, tokens, second, device)


async def test_unknown_token(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device = await make_device(database)
    await _issue(database, tokens, device)
    for presented in ("mssc_rt_" + "A" * 43, "mssc_rt_short", "", "not-ours", "mssc_rt_" + "A" * 1000):
        await _invalid_grant(database, tokens, presented, device)


async def test_expired_token(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device = await make_device(database)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=TTL + 1)
    token = await _issue(database, tokens, device, now=long_ago)
    await _invalid_grant(database, tokens, token, device)
    [row] = await _rows(database, device)
    assert row.used_at is None  # refusing writes nothing


async def test_token_of_another_device(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device, other = await make_device(database), await make_device(database)
    token = await _issue(database, tokens, device)
    await _invalid_grant(database, tokens, token, other)
    # Nothing was spent: the rightful device still rotates it.
    assert isinstance(await _rotate(database, tokens, token, device), RotatedRefreshToken)


async def test_revoked_device(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device, other = await make_device(database), await make_device(database)
    token = await _issue(database, tokens, device)
    token2 = await _issue(database, tokens, device)
    others = await _issue(database, tokens, other)
    async with database.transaction() as session:
        assert await tokens.revoke_device(session, device) == 2
    await _invalid_grant(database, tokens, token, device)
    await _invalid_grant(database, tokens, token2, device)
    assert isinstance(await _rotate(database, tokens, others, other), RotatedRefreshToken)


async def test_purge_expired(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    device = await make_device(database)
    await _issue(database, tokens, device, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=60))
    live = await _issue(database, tokens, device)
    async with database.transaction() as session:
        assert await tokens.purge_expired(session, before=dt.datetime.now(dt.UTC)) == 1
    assert [r.token_hash for r in await _rows(database, device)] == [hash_refresh_token(live)]


async def test_concurrent_rotation_of_one_token(database: Database, tokens: RefreshTokens, make_device: Any) -> None:
    """Two rotations racing on one token: exactly one wins, the other is handled as a reuse."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite serialises writers (Database.write_lock); the race needs PostgreSQL")
    device = await make_device(database)
    token = await _issue(database, tokens, device)
    async with database.sessions() as a, database.sessions() as b:
        await a.begin()
        await b.begin()
        won = await tokens.rotate(a, presented=token, device_id=device)
        assert isinstance(won, RotatedRefreshToken)
        # b read the token as unused; its conditional update now waits for a's row lock.
        racing = asyncio.create_task(tokens.rotate(b, presented=token, device_id=device))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await a.commit()
        lost = await racing
        await b.commit()
    assert isinstance(lost, RefreshTokenReuse)
    await _invalid_grant(database, tokens, won.token, device)
