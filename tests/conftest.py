"""Shared fixtures: the same tests over the embedded backends and over Redis + PostgreSQL.

Real services only. Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, trust auth) must run:
``make test`` and ``.ci/run`` start them. A missing service fails the run, it is never faked.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from core.db.engine import Database
from core.ephemeral import Ephemeral, MemoryEphemeral, RedisEphemeral
from core.settings import DatabaseSettings, StoreSettings

#: The real peers: one Dovecot operator and one submission relay for the whole run.
pytest_plugins = ["tests.peers.fixtures", "tests.peers.push_fixtures"]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@dataclass(frozen=True, slots=True)
class Backends:
    """Where durable and ephemeral state live for one test."""

    name: str
    db: DatabaseSettings
    store: StoreSettings


async def _fresh_pg_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop_pg_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["embedded", "redis+postgres"])
async def backends(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backends]:
    """SQLite file + in-process store, or a fresh PostgreSQL database + a Redis namespace."""
    if request.param == "embedded":
        yield Backends(
            "embedded",
            DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'mssc.sqlite3'}"),
            StoreSettings(url="memory"),
        )
        return
    name = await _fresh_pg_database("mssc_test")
    namespace = f"mssc-test-{uuid.uuid4().hex[:12]}"
    try:
        yield Backends(
            "redis+postgres",
            DatabaseSettings(url=PG_URL.format(name=name)),
            StoreSettings(url=REDIS_URL, namespace=namespace),
        )
    finally:
        store = RedisEphemeral.from_url(REDIS_URL, namespace)
        await store.clear()
        await store.close()
        await _drop_pg_database(name)


@pytest.fixture
async def ephemeral(backends: Backends) -> AsyncIterator[Ephemeral]:
    if not backends.store.is_redis:
        yield MemoryEphemeral("test")
        return
    store = RedisEphemeral.from_url(backends.store.url, backends.store.namespace)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def database(backends: Backends) -> AsyncIterator[Database]:
    """A migrated database (the Alembic revisions, as production runs them)."""
    db = Database(backends.db)
    await db.migrate()
    try:
        yield db
    finally:
        await db.dispose()
