"""Append-only, hash-chained audit trail.

Each event is chained to the previous one of its chain (one chain per structure, plus ``global``):
``hash = sha256(prev_hash || canonical JSON of the event)``. Editing, deleting or reordering a row
breaks every later hash, which ``verify`` reports. Events carry who, acting for which structure,
which device, what and when — never message content.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Table, bindparam, exists, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.db.engine import Database
from core.db.models import AuditEvent

GENESIS = "0" * 64
GLOBAL_CHAIN = "global"

#: Detail keys that could carry health data are refused outright: the trail must never hold them.
_FORBIDDEN_DETAIL_KEYS = frozenset({"subject", "body", "sender", "from", "to", "patient", "filename", "text"})


@dataclass(frozen=True, slots=True)
class ChainCheck:
    chain: str
    events: int
    ok: bool
    #: ``seq`` of the first event whose hash does not match, when not ok.
    first_bad_seq: int | None = None


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "chain": event.chain,
        "seq": event.seq,
        "at": event.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "action": event.action,
        "actor_kind": event.actor_kind,
        "actor": event.actor,
        "structure_id": event.structure_id,
        "device_id": event.device_id,
        "target": event.target,
        "details": event.details,
    }
    return msgspec.json.encode(body, order="sorted")


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event)).hexdigest()


_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]
_WRITTEN = ("chain", "seq", "at", "action", "actor_kind", "actor", "structure_id", "device_id", "target", "details")
_HASHES = ("prev_hash", "hash")
#: The row, as is: the chain's head was just read in the same transaction.
_INSERT = insert(_TABLE).returning(_TABLE.c.id)
#: The row, only if the chain's head still is the one this trail wrote last (``head_seq``,
#: ``prev_hash``), checked by the insert itself: no read of the head first (a database round trip,
#: and ORM work, on every mailbox access). Another writer (another process or trail, a rolled-back
#: transaction) makes it insert nothing; the head is then read and the event chained after it.
_INSERT_AFTER_HEAD = (
    insert(_TABLE)
    .from_select(
        [*_WRITTEN, *_HASHES],
        select(*(bindparam(name, type_=_TABLE.c[name].type) for name in (*_WRITTEN, *_HASHES))).where(
            exists().where(
                _TABLE.c.chain == bindparam("chain"),
                _TABLE.c.seq == bindparam("head_seq"),
                _TABLE.c.hash == bindparam("prev_hash"),
            ),
            ~exists().where(_TABLE.c.chain == bindparam("chain"), _TABLE.c.seq > bindparam("head_seq")),
        ),
    )
    .returning(_TABLE.c.id)
)


def _chain_lock_key(chain: str) -> int:
    return int.from_bytes(hashlib.sha256(chain.encode()).digest()[:8], "big", signed=True)


class AuditTrail:
    """Writes and checks the trail. Writers of one chain are serialised so ``seq`` never forks."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._locks: dict[str, asyncio.Lock] = {}
        #: Per chain, the (seq, hash) of the last event this trail appended.
        self._heads: dict[str, tuple[int, str]] = {}

    async def record(
        self,
        action: str,
        *,
        actor: str | None,
        actor_kind: str = "professional",
        structure_id: uuid.UUID | str | None = None,
        device_id: uuid.UUID | str | None = None,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
        session: AsyncSession | None = None,
    ) -> AuditEvent:
        """Append one event. With ``session``, it commits with the caller's transaction."""
        clean = dict(details or {})
        bad = _FORBIDDEN_DETAIL_KEYS.intersection(k.lower() for k in clean)
        if bad:
            raise ValueError(f"audit details may not carry {sorted(bad)}")
        chain = str(structure_id) if structure_id else GLOBAL_CHAIN
        event = AuditEvent(
            chain=chain,
            action=action,
            actor_kind=actor_kind,
            actor=actor,
            structure_id=str(structure_id) if structure_id else None,
            device_id=str(device_id) if device_id else None,
            target=target,
            details=clean,
        )
        lock = self._locks.setdefault(chain, asyncio.Lock())
        async with lock:
            if session is not None:
                return await self._append(session, event)
            # A Core connection, not an ORM session: one row needs no unit of work.
            async with self._db.engine.begin() as own:
                return await self._append_own(own, event)

    async def _append(self, session: AsyncSession, event: AuditEvent) -> AuditEvent:
        """In the caller's transaction: read the head, add the event, flush it with the caller's changes."""
        await self._lock_chain(session, event.chain)
        self._place(event, await self._head(session, event.chain))
        session.add(event)
        await session.flush()
        self._heads[event.chain] = (event.seq, event.hash)
        return event

    async def _append_own(self, connection: AsyncConnection, event: AuditEvent) -> AuditEvent:
        """In a transaction of its own (the mail API's one per mailbox access): usually one statement."""
        await self._lock_chain(connection, event.chain)
        head = self._heads.get(event.chain)
        if head is not None:
            row = self._place(event, head) | {"head_seq": head[0]}
            inserted = (await connection.execute(_INSERT_AFTER_HEAD, row)).first()
            if inserted is not None:
                return self._placed(event, inserted[0])
        # First event of this chain here, or another writer moved the head: read it.
        row = self._place(event, await self._head(connection, event.chain))
        return self._placed(event, (await connection.execute(_INSERT, row)).one()[0])

    async def _lock_chain(self, session: AsyncSession | AsyncConnection, chain: str) -> None:
        if self._db.dialect == "postgresql":
            # Serialise writers of this chain across processes until the transaction ends.
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _chain_lock_key(chain)})

    @staticmethod
    async def _head(session: AsyncSession | AsyncConnection, chain: str) -> tuple[int, str]:
        """(seq, hash) of the chain's last event; (0, genesis) for a new chain."""
        found = (
            await session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.chain == chain)
                .order_by(AuditEvent.seq.desc())
                .limit(1)
            )
        ).first()
        return (found[0], found[1]) if found else (0, GENESIS)

    @staticmethod
    def _place(event: AuditEvent, head: tuple[int, str]) -> dict[str, Any]:
        """Give the event its place after ``head``: sequence number, time, previous hash, own hash."""
        event.seq, event.prev_hash = head[0] + 1, head[1]
        event.at = dt.datetime.now(dt.UTC)
        event.hash = chain_hash(event.prev_hash, event)
        return {name: getattr(event, name) for name in (*_WRITTEN, *_HASHES)}

    def _placed(self, event: AuditEvent, row_id: int) -> AuditEvent:
        event.id = row_id
        # The head this trail wrote last; a rolled-back transaction leaves it stale, which the guarded
        # insert detects (it then inserts nothing and the head is read).
        self._heads[event.chain] = (event.seq, event.hash)
        return event

    async def verify(self, chain: str = GLOBAL_CHAIN) -> ChainCheck:
        """Recompute the chain from its genesis."""
        prev, count, expected_seq = GENESIS, 0, 1
        async with self._db.read() as session:
            rows = await session.stream_scalars(
                select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
            )
            async for event in rows:
                count += 1
                if event.seq != expected_seq or event.prev_hash != prev or chain_hash(prev, event) != event.hash:
                    return ChainCheck(chain, count, ok=False, first_bad_seq=event.seq)
                prev, expected_seq = event.hash, expected_seq + 1
        return ChainCheck(chain, count, ok=True)

    async def recent(self, *, chain: str, limit: int = 100, before_seq: int | None = None) -> list[AuditEvent]:
        async with self._db.read() as session:
            query = select(AuditEvent).where(AuditEvent.chain == chain)
            if before_seq is not None:
                query = query.where(AuditEvent.seq < before_seq)
            return list((await session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit))).all())

    async def export_jsonl(self, *, chain: str) -> AsyncIterator[bytes]:
        """Every event of a chain, one JSON object a line, with its hashes (verifiable offline)."""
        async with self._db.read() as session:
            rows = await session.stream_scalars(
                select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
            )
            async for event in rows:
                yield msgspec.json.encode(event_record(event)) + b"\n"


def event_record(event: AuditEvent) -> dict[str, Any]:
    return {
        "chain": event.chain,
        "seq": event.seq,
        "at": event.at.isoformat(),
        "action": event.action,
        "actorKind": event.actor_kind,
        "actor": event.actor,
        "structureId": event.structure_id,
        "deviceId": event.device_id,
        "target": event.target,
        "details": event.details,
        "prevHash": event.prev_hash,
        "hash": event.hash,
    }
