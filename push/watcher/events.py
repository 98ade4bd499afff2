"""The ``mail.arrived`` event the watcher puts on the durable queue: ids and counts, never content.

One event announces a batch of new messages of one mailbox: how many, the highest UID, and the
folder's unseen count (the badge). Its dedupe key and its id derive from (mailbox id, UIDVALIDITY,
highest UID), so announcing the same batch again (a watcher restarted between the enqueue and the
state write, an operator webhook retried) adds nothing to the queue within the dedupe window, and
yields the same event id after it (phones de-duplicate by it).

The payload is a superset of :class:`contracts.events.Event`: a consumer that decodes it as an
``Event`` (the push pipeline) reads ``id``, ``type``, ``at``, ``mailbox_id`` and ``unseen`` (the
badge) and ignores the batch's UIDVALIDITY, highest UID and count.
"""

from __future__ import annotations

import uuid
from typing import Final

import msgspec

from contracts.events import Event, EventType
from core.queue import DurableQueue

#: The durable queue's stream for events between rooms.
EVENTS_STREAM: Final = "events"

#: Namespace of event ids derived from the dedupe key.
_EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1c2a4e-8b0d-4d7e-9c35-1a2b3c4d5e6f")


class MailArrived(Event, kw_only=True, omit_defaults=True):
    """``mail.arrived``: new messages in a mailbox's INBOX."""

    uidvalidity: int
    #: The highest UID of the batch (its messages are the UIDs announced since the previous batch).
    highest_uid: int
    #: How many new messages the batch holds.
    new_count: int
    # ``unseen`` (the badge: unseen messages in the INBOX after the batch) is the contract's own field.


def dedupe_key(mailbox_id: str, uidvalidity: int, uid: int) -> str:
    return f"mail.arrived:{mailbox_id}:{uidvalidity}:{uid}"


def event_id(mailbox_id: str, uidvalidity: int, uid: int) -> str:
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, dedupe_key(mailbox_id, uidvalidity, uid)))


def mail_arrived(
    *, mailbox_id: str, uidvalidity: int, highest_uid: int, new_count: int, unseen: int | None, at: float
) -> MailArrived:
    return MailArrived(
        id=event_id(mailbox_id, uidvalidity, highest_uid),
        type=EventType.MAIL_ARRIVED,
        at=at,
        mailbox_id=mailbox_id,
        uidvalidity=uidvalidity,
        highest_uid=highest_uid,
        new_count=new_count,
        unseen=unseen,
    )


async def enqueue_mail_arrived(queue: DurableQueue, event: MailArrived, *, stream: str = EVENTS_STREAM) -> str:
    """Put the event on the queue once per (mailbox, UIDVALIDITY, highest UID); the message id."""
    if event.mailbox_id is None:
        raise ValueError("mail.arrived needs a mailbox id")
    key = dedupe_key(event.mailbox_id, event.uidvalidity, event.highest_uid)
    return await queue.enqueue(stream, msgspec.json.encode(event), dedupe_key=key)


def decode_mail_arrived(payload: bytes) -> MailArrived:
    return msgspec.json.decode(payload, type=MailArrived)
