"""The audit trail is append-only and hash-chained: an edited, deleted or reordered row is detected."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import delete, update

from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import AuditEvent


async def test_chain_verifies_and_detects_an_edited_row(database: Database) -> None:
    audit = AuditTrail(database)
    structure = uuid.uuid4()
    for i in range(5):
        await audit.record(
            "device.enrolled", actor="810001234565", structure_id=structure, device_id=uuid.uuid4(), details={"n": i}
        )
    check = await audit.verify(str(structure))
    assert check.ok and check.events == 5

    async with database.transaction() as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == str(structure), AuditEvent.seq == 3)
            .values(actor="899999999999")
        )
    broken = await audit.verify(str(structure))
    assert not broken.ok
    assert broken.first_bad_seq == 3


async def test_deleted_row_is_detected(database: Database) -> None:
    audit = AuditTrail(database)
    for i in range(4):
        await audit.record("token.issued", actor=None, actor_kind="device", details={"n": i})
    async with database.transaction() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.chain == "global", AuditEvent.seq == 2))
    check = await audit.verify("global")
    assert not check.ok and check.first_bad_seq == 3


async def test_concurrent_writers_never_fork_the_chain(database: Database) -> None:
    audit = AuditTrail(database)
    structure = uuid.uuid4()
    await asyncio.gather(*(audit.record("login", actor=f"8{i:011d}", structure_id=structure) for i in range(20)))
    check = await audit.verify(str(structure))
    assert check.ok and check.events == 20


async def test_export_is_json_lines_with_hashes(database: Database) -> None:
    audit = AuditTrail(database)
    structure = uuid.uuid4()
    await audit.record("member.added", actor="810001234565", structure_id=structure, target="810002345675")
    lines = [json.loads(line) async for line in audit.export_jsonl(chain=str(structure))]
    assert lines[0]["action"] == "member.added"
    assert lines[0]["prevHash"] == "0" * 64 and len(lines[0]["hash"]) == 64


async def test_details_may_not_carry_message_content(database: Database) -> None:
    audit = AuditTrail(database)
    with pytest.raises(ValueError, match="subject"):
        await audit.record("mail.read", actor="810001234565", details={"subject": "Résultats"})
