"""The new-mail watcher: IMAP IDLE per push-enabled mailbox (or the operator's webhook) → ``mail.arrived``.

Start at :class:`Watcher` (``create()`` from the app's services, then ``start()`` / ``stop()``).
One :class:`MailboxWatch` per mailbox holds an IDLE session and resumes from the state kept in the
ephemeral store (:mod:`.state`); :mod:`.leases` shares the mailboxes between watcher processes;
:mod:`.events` is the event put on the durable queue (ids and counts, never content).
"""

from push.watcher.discovery import WatchedMailbox, push_enabled_mailboxes
from push.watcher.events import (
    EVENTS_STREAM,
    MailArrived,
    decode_mail_arrived,
    dedupe_key,
    enqueue_mail_arrived,
    event_id,
    mail_arrived,
)
from push.watcher.leases import LeaseManager, MemoryLeases, MemoryLeaseTable, RedisLeases, create_leases
from push.watcher.state import PendingAnnouncement, StateConflictError, WatchState, WatchStateStore
from push.watcher.watch import WATCHER_DEVICE_ID, WATCHER_IDNAT, Backoff, MailboxWatch, session_opener
from push.watcher.watcher import Watcher, WatcherStats, default_watcher_id

__all__ = [
    "EVENTS_STREAM",
    "WATCHER_DEVICE_ID",
    "WATCHER_IDNAT",
    "Backoff",
    "LeaseManager",
    "MailArrived",
    "MailboxWatch",
    "MemoryLeaseTable",
    "MemoryLeases",
    "PendingAnnouncement",
    "RedisLeases",
    "StateConflictError",
    "WatchState",
    "WatchStateStore",
    "WatchedMailbox",
    "Watcher",
    "WatcherStats",
    "create_leases",
    "decode_mail_arrived",
    "dedupe_key",
    "default_watcher_id",
    "enqueue_mail_arrived",
    "event_id",
    "mail_arrived",
    "push_enabled_mailboxes",
    "session_opener",
]
