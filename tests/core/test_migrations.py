"""The Alembic revisions build exactly the schema the models declare (a forgotten migration fails here)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db.engine import Database
from core.db.models import Device
from core.settings import DatabaseSettings


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    path = tmp_path / "schema.sqlite3"
    db = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    await db.migrate()
    await db.dispose()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            # SQLite reflects column types loosely (a GUID comes back NUMERIC): tables, columns, indexes
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            diff = compare_metadata(context, Device.metadata)
    finally:
        engine.dispose()
    assert diff == []
