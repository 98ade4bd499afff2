"""The device simulator's push feed: the dev sink's records for one device, after a cursor.

No HTTP here (``backend.dev.routes`` serves it). A cursor is ``<sink epoch>.<sequence number>``;
one from another epoch (the server restarted, its sink is new) starts again from what the sink
holds, so the phone sees every push it has not seen rather than none.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Final

from contracts.errors import ErrorCode
from contracts.push_feed import PushFeed, SentPush
from core.errors import DomainError
from push.providers.sink import SinkProvider, SinkRecord

_CURSOR: Final = re.compile(r"^([0-9a-f]{1,16})\.([0-9]{1,18})$")


def cursor_position(cursor: str | None, *, epoch: str) -> int:
    """The sequence number to read after: 0 without a cursor or for another epoch's cursor."""
    if not cursor:
        return 0
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise DomainError(ErrorCode.INVALID_CURSOR, "the cursor is not one this feed gave")
    return int(match.group(2)) if match.group(1) == epoch else 0


def sent_push(record: SinkRecord, *, epoch: str) -> SentPush:
    return SentPush(
        push_id=record.push_id,
        at=dt.datetime.fromtimestamp(record.at, dt.UTC),
        alert_class=record.alert_class,
        kind=record.kind.value,
        priority=record.priority.value,
        collapse_id=record.collapse_id,
        expires_at=dt.datetime.fromtimestamp(record.expires_at, dt.UTC),
        payload=dict(record.payload),
        cursor=f"{epoch}.{record.seq}",
    )


async def device_feed(sink: SinkProvider, device_id: uuid.UUID, *, after: str | None, wait_s: float) -> PushFeed:
    """The pushes recorded for ``device_id`` after ``after``, waiting up to ``wait_s`` for one.

    The returned cursor is the sink's newest sequence number: nothing for this device lies between
    the last push returned and it (no ``await`` between reading the records and the number).
    """
    records = await sink.wait_after(cursor_position(after, epoch=sink.epoch), (str(device_id),), timeout_s=wait_s)
    return PushFeed(pushes=[sent_push(r, epoch=sink.epoch) for r in records], cursor=f"{sink.epoch}.{sink.last_seq}")
