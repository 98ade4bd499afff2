"""Where each watched mailbox stands, kept in the ephemeral store so any watcher can resume it.

Per mailbox: the INBOX's UIDVALIDITY, the lowest UID not yet announced (``next_uid``), the
HIGHESTMODSEQ seen at the last SELECT, and the batch being announced, if any. A watcher that takes a
mailbox over (after a restart, or from a dead watcher) resumes from here: it announces what arrived
since ``next_uid`` (no gap) and nothing below it (no duplicate).

Every write is a compare-and-set against the bytes the writer last saw, so a watcher that lost its
lease without knowing yet cannot move the state back: its next write fails
(:class:`StateConflictError`) and it stops. An announcement is written in two steps around the
enqueue (``pending`` set, then ``next_uid`` advanced): a crash in between leaves ``pending``, and
the next watcher enqueues exactly the same event again (same id, same dedupe key) before going on.
"""

from __future__ import annotations

import msgspec

from core.ephemeral import Ephemeral

#: States are refreshed at every IDLE refresh (≤ 29 min); an abandoned one goes after this.
STATE_TTL_S = 30 * 24 * 3600
#: Compare-and-set retries when the webhook path races with itself.
_ADVANCE_TRIES = 8


class StateConflictError(Exception):
    """Someone else wrote this mailbox's state: the caller no longer owns the mailbox."""


class PendingAnnouncement(msgspec.Struct, frozen=True, kw_only=True):
    """A batch being announced: enough to enqueue the very same event again."""

    highest_uid: int
    count: int
    unseen: int | None
    at: float


class WatchState(msgspec.Struct, frozen=True, kw_only=True):
    uidvalidity: int
    #: The lowest UID not yet announced.
    next_uid: int
    highestmodseq: int | None = None
    pending: PendingAnnouncement | None = None
    #: The watcher that wrote it last.
    owner: str = ""


_encode = msgspec.json.encode
_decoder = msgspec.json.Decoder(WatchState)


class Versioned(msgspec.Struct, frozen=True):
    """A state and the exact bytes it was read from (the compare-and-set's ``expected``)."""

    state: WatchState | None
    raw: bytes | None


class WatchStateStore:
    """The states of watched mailboxes, under ``watcher:state:<mailbox id>`` in the ephemeral store."""

    def __init__(self, ephemeral: Ephemeral) -> None:
        self._store = ephemeral

    @staticmethod
    def _key(mailbox_id: str) -> str:
        return f"watcher:state:{mailbox_id}"

    async def load(self, mailbox_id: str) -> Versioned:
        raw = await self._store.get(self._key(mailbox_id))
        if raw is None:
            return Versioned(None, None)
        try:
            return Versioned(_decoder.decode(raw), raw)
        except msgspec.DecodeError:
            return Versioned(None, raw)  # unreadable (an older format): start afresh, replacing it

    async def replace(self, mailbox_id: str, expected: bytes | None, state: WatchState) -> bytes:
        """Write ``state`` if the stored bytes are still ``expected``; the new bytes. Else
        :class:`StateConflictError`."""
        raw = _encode(state)
        if not await self._store.compare_and_set(self._key(mailbox_id), expected, raw, ttl_s=STATE_TTL_S):
            raise StateConflictError(mailbox_id)
        return raw

    async def advance(self, mailbox_id: str, *, uidvalidity: int, uid: int, owner: str) -> None:
        """Record that ``uid`` was announced (the webhook path): ``next_uid`` becomes at least ``uid + 1``."""
        for _ in range(_ADVANCE_TRIES):
            current = await self.load(mailbox_id)
            state = current.state
            if state is not None and state.uidvalidity == uidvalidity:
                if state.next_uid > uid:
                    return
                new = msgspec.structs.replace(state, next_uid=uid + 1, owner=owner)
            else:
                new = WatchState(uidvalidity=uidvalidity, next_uid=uid + 1, owner=owner)
            try:
                await self.replace(mailbox_id, current.raw, new)
            except StateConflictError:
                continue
            return
        raise StateConflictError(mailbox_id)
