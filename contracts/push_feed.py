"""Wire types of the demo's push feed (``GET /api/v1/dev/pushes``): the device simulator's APNs/FCM.

Dev only: the feed exists when the server records pushes in its dev sink instead of sending them to
Apple or Google, and it is left out of the OpenAPI contract, like the PSC sandbox. A real app gets
the same ``payload`` from APNs or FCM; the other fields say how the push would have travelled.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from contracts.push import AlertClass

#: The longest a feed call waits for a push before answering with none (seconds).
MAX_FEED_WAIT_S = 25
#: ``<epoch>.<seq>``: opaque to the phone, which passes back the last one it got.
FeedCursor = Annotated[str, msgspec.Meta(max_length=64)]


class SentPush(msgspec.Struct, rename="camel"):
    """One push the sink recorded for the calling device."""

    push_id: str
    #: When the provider (here the sink) accepted it.
    at: dt.datetime
    alert_class: AlertClass
    #: ``alert`` shows the generic text; ``background`` only wakes the app (the wipe).
    kind: Literal["alert", "background"]
    priority: Literal["high", "normal"]
    #: Pushes with the same collapse id replace each other on the phone (the mailbox or alert id).
    collapse_id: str | None
    expires_at: dt.datetime
    #: Exactly what the phone gets from APNs / FCM (``contracts.push.PushPayload`` on the wire).
    payload: dict[str, str | int]
    #: The feed's cursor just after this push (to stop after it without losing the next ones).
    cursor: FeedCursor


class PushFeed(msgspec.Struct, rename="camel"):
    #: Oldest first; empty when the wait ended without a push.
    pushes: list[SentPush]
    #: Pass it back as ``after`` to get only newer pushes.
    cursor: FeedCursor
