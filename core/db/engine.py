"""The database: one async engine per app, SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.db.migrate import upgrade_head
from core.settings import DatabaseSettings


class Database:
    """Engine plus session factory. Services open short transactions with ``db.transaction()``."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        kwargs: dict[str, Any] = {"echo": settings.echo}
        if settings.is_postgres:
            # A server may drop idle connections (restart, failover): test each before use. A SQLite
            # file cannot, and the ping costs a thread round trip on every checkout.
            kwargs |= {"pool_size": settings.pool_size, "max_overflow": settings.pool_size, "pool_pre_ping": True}
        self.engine: AsyncEngine = create_async_engine(settings.url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        #: SQLite allows one writer; this keeps our own writers from tripping over each other.
        self.write_lock = asyncio.Lock() if self.engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only."""
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade_head)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
