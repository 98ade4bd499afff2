"""The audit trail appends after the head it remembers, and reads the head when that head moved.

One trail remembers the (seq, hash) of the last event it wrote per chain and inserts the next one
only if that still is the chain's head (one statement instead of a read then an insert). Another
writer, or a transaction rolled back, makes the guarded insert insert nothing: the head is then
read, so the chain never forks and never breaks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import AuditEvent


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", spy)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", spy)


def head_reads(seen: list[str]) -> int:
    return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT") and "audit_event" in s)


async def test_steady_state_is_one_insert_and_the_chain_verifies(database: Database) -> None:
    audit = AuditTrail(database)
    chain = uuid.uuid4()
    first = await audit.record("mail.list", actor="810001234565", structure_id=chain, details={"count": 1})
    assert first.seq == 1 and first.id is not None
    with statements(database) as seen:
        second = await audit.record("mail.list", actor="810001234565", structure_id=chain, details={"count": 2})
    assert head_reads(seen) == 0
    assert [s for s in seen if "INSERT" in s.upper()] != []
    assert second.seq == 2 and second.prev_hash == first.hash and second.id is not None
    async with database.read() as session:
        stored = (await session.scalars(select(AuditEvent).where(AuditEvent.id == second.id))).one()
    assert (stored.seq, stored.hash, stored.prev_hash, stored.details) == (2, second.hash, first.hash, {"count": 2})
    check = await audit.verify(str(chain))
    assert check.ok and check.events == 2


async def test_two_writers_on_one_chain_never_fork_it(database: Database) -> None:
    one, other = AuditTrail(database), AuditTrail(database)
    chain = uuid.uuid4()
    for i in range(6):
        writer = one if i % 3 else other
        await writer.record("mail.read", actor="810001234565", structure_id=chain, target=str(i))
    check = await one.verify(str(chain))
    assert check.ok and check.events == 6
    async with database.read() as session:
        seqs = list(await session.scalars(select(AuditEvent.seq).where(AuditEvent.chain == str(chain))))
    assert sorted(seqs) == [1, 2, 3, 4, 5, 6]


async def test_a_rolled_back_event_leaves_no_gap(database: Database) -> None:
    audit = AuditTrail(database)
    chain = uuid.uuid4()
    await audit.record("member.added", actor="810001234565", structure_id=chain)
    async with database.sessions() as session:
        await session.begin()
        await audit.record("member.added", actor="810001234565", structure_id=chain, session=session)
        await session.rollback()  # the trail remembers a head that never was committed
    with statements(database) as seen:
        after = await audit.record("member.added", actor="810001234565", structure_id=chain)
    assert head_reads(seen) == 1  # the guarded insert declined, the head was read
    assert after.seq == 2
    check = await audit.verify(str(chain))
    assert check.ok and check.events == 2


async def test_with_the_callers_session_the_event_commits_with_it(database: Database) -> None:
    audit = AuditTrail(database)
    chain = uuid.uuid4()
    await audit.record("member.added", actor="810001234565", structure_id=chain)
    async with database.transaction() as session:
        await audit.record("member.removed", actor="810001234565", structure_id=chain, session=session)
        await audit.record("member.added", actor="810001234565", structure_id=chain, session=session)
    check = await audit.verify(str(chain))
    assert check.ok and check.events == 3
