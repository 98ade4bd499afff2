"""One watched mailbox: an IMAP IDLE session on its INBOX, catch-up, reconnects with backoff.

The loop of one connection:

1. log in (the gateway's login, the watcher's own identity: :data:`WATCHER_IDNAT`) and ``EXAMINE``
   the INBOX (read-only: watching changes nothing, not even ``\\Recent``);
2. resume from the stored state (:mod:`.state`): finish an announcement a crash interrupted, then
   announce what arrived since ``next_uid`` (``UID SEARCH UID <next_uid>:*``). The SELECT's UIDNEXT
   and HIGHESTMODSEQ skip the search when nothing can have arrived. A new UIDVALIDITY (the INBOX was
   recreated) starts afresh at UIDNEXT: old UIDs mean nothing any more;
3. IDLE; on ``EXISTS`` end it, announce the new UIDs, idle again (within a burst, the next ones wait
   ``coalesce_s`` for the rest of it, so a burst makes few events; the first is announced at once).
   Every ``idle_refresh_s`` (≤ 29 min) IDLE is re-issued, with a catch-up and a state refresh.

A lost connection, a timeout or an operator error closes the session; the watch reconnects after an
exponential backoff with jitter (reset once a session is up), and the catch-up of step 2 announces
what arrived meanwhile. A refused login waits at least a minute: the same credentials fail again.

Stopping: :meth:`MailboxWatch.stop` ends IDLE politely and logs out; cancelling the task drops the
connection at once (a lost lease). A state write that conflicts (:class:`StateConflictError`) means
another watcher owns the mailbox: :meth:`MailboxWatch.run` raises it and the watch ends.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from backend.mail.operator.auth import GatewayAuth
from backend.mail.operator.errors import OperatorAuthError
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.idle import IdleOutcome, Idler
from backend.mail.operator.imap_session import ImapSession
from backend.mail.operator.models import SelectedMailbox
from core.errors import DomainError
from core.logging import get_logger
from core.queue import DurableQueue
from core.settings import OperatorSettings, WatcherSettings
from push.watcher.discovery import WatchedMailbox
from push.watcher.events import EVENTS_STREAM, MailArrived, enqueue_mail_arrived, mail_arrived
from push.watcher.state import PendingAnnouncement, StateConflictError, WatchState, WatchStateStore

log = get_logger("mssc.watcher")

#: The identity the watcher announces to the operator (IMAP ``ID`` ``x-mssc-idnat``, bearer JWT
#: claims) in place of a professional's IdNat: the operator's logs show the companion service
#: itself watching the mailbox, never a person. Read-only (``EXAMINE``): it changes nothing.
WATCHER_IDNAT: Final = "mss-companion-watcher"
#: The device slot of the watcher's identity (``x-mssc-device``): no phone is behind it.
WATCHER_DEVICE_ID: Final = "watcher"
#: The folder watched: new mail is delivered to INBOX.
FOLDER: Final = "INBOX"
#: After a refused login, wait at least this long (operators lock accounts that hammer).
AUTH_FAILURE_DELAY_S: Final = 60.0

SessionOpener = Callable[[str], Awaitable[ImapSession]]
EventHook = Callable[[MailArrived], None]


def session_opener(operator: OperatorSettings, auth: GatewayAuth, ssl_context: ssl.SSLContext | None) -> SessionOpener:
    """Opens the watcher's session on a mailbox: the connector's gateway login and TLS, its own identity."""

    async def open_session(address: str) -> ImapSession:
        identity = ActingIdentity(mailbox=address, idnat=WATCHER_IDNAT, device_id=WATCHER_DEVICE_ID)
        return await ImapSession.open(settings=operator, auth=auth, identity=identity, ssl_context=ssl_context)

    return open_session


class Backoff:
    """Exponential delays with jitter (50-100 %), from ``min_s`` up to ``max_s``."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s, self.max_s = min_s, max_s
        self.attempts = 0

    def next(self) -> float:
        delay: float = min(self.max_s, self.min_s * 2.0 ** min(self.attempts, 30))
        self.attempts += 1
        return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    def reset(self) -> None:
        self.attempts = 0


class MailboxWatch:
    """Watches one mailbox until stopped; :meth:`run` in a task of its own."""

    def __init__(
        self,
        mailbox: WatchedMailbox,
        *,
        opener: SessionOpener,
        states: WatchStateStore,
        queue: DurableQueue,
        settings: WatcherSettings,
        owner: str,
        stream: str = EVENTS_STREAM,
        on_event: EventHook | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._opener = opener
        self._states = states
        self._queue = queue
        self._settings = settings
        self._owner = owner
        self._stream = stream
        self._on_event = on_event
        self._stopping = asyncio.Event()
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self._state: WatchState | None = None
        self._raw: bytes | None = None
        #: A session is up and idling (or catching up).
        self.connected = False
        #: Sessions opened so far (reconnects are ``sessions - 1``).
        self.sessions = 0
        self.announced = 0
        self._announced_at = float("-inf")

    @property
    def id(self) -> str:
        return self.mailbox.id

    def stop(self) -> None:
        """Ask the watch to end IDLE, log out and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Watch until :meth:`stop`; raises :class:`StateConflictError` when another watcher took over."""
        while not self._stopping.is_set():
            try:
                await self._connected_once()
                continue
            except StateConflictError:
                raise
            except OperatorAuthError:
                delay = max(AUTH_FAILURE_DELAY_S, self._backoff.next())
                log.warning("watcher.login_refused", mailbox_id=self.id, retry_in_s=round(delay, 1))
            except DomainError as exc:
                delay = self._backoff.next()
                log.info("watcher.disconnected", mailbox_id=self.id, code=exc.code, retry_in_s=round(delay, 2))
            except Exception as exc:  # noqa: BLE001 - a watch must outlive any one failure; it reconnects
                delay = self._backoff.next()
                log.warning("watcher.failed", mailbox_id=self.id, error=type(exc).__name__, retry_in_s=round(delay, 2))
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _connected_once(self) -> None:
        session = await self._opener(self.mailbox.address)
        self.sessions += 1
        polite = False
        try:
            selected = await session.select(FOLDER, readonly=True)
            idler = session.idler()
            idler.forget()  # the SELECT's own EXISTS
            await self._resume(session, idler, selected)
            self._backoff.reset()
            self.connected = True
            refresh_s = self._settings.idle_refresh_s
            while True:
                outcome = await idler.wait(timeout_s=refresh_s, stop=self._stopping, settle_s=self._settle_s())
                if outcome is IdleOutcome.STOPPED:
                    polite = True
                    return
                await self._catch_up(session, idler, refresh=outcome is IdleOutcome.REFRESH)
        finally:
            self.connected = False
            if polite and not session.closed:
                await session.logout(timeout_s=1.0)
            else:
                session.abort()

    def _settle_s(self) -> float:
        """Wait for more only within a burst: the first message after a quiet spell is announced at
        once (the phone knows within milliseconds); those right behind it make one batch."""
        coalesce = self._settings.coalesce_s
        return coalesce if time.monotonic() - self._announced_at < coalesce * 2 else 0.0

    # --- state and announcements -----------------------------------------------------------------
    async def _write(self, state: WatchState) -> None:
        self._raw = await self._states.replace(self.id, self._raw, state)
        self._state = state

    async def _resume(self, session: ImapSession, idler: Idler, selected: SelectedMailbox) -> None:
        current = await self._states.load(self.id)
        self._raw, state = current.raw, current.state
        if state is not None and state.uidvalidity == selected.uidvalidity and state.pending is not None:
            # a watcher stopped between enqueueing a batch and recording it: the very same event again
            await self._enqueue(state.uidvalidity, state.pending)
            state = msgspec.structs.replace(
                state, next_uid=max(state.next_uid, state.pending.highest_uid + 1), pending=None
            )
        if state is None or state.uidvalidity != selected.uidvalidity:
            if state is not None:
                log.warning("watcher.uidvalidity_changed", mailbox_id=self.id)
            start = selected.uidnext if selected.uidnext is not None else await _next_uid(session)
            await self._write(
                WatchState(
                    uidvalidity=selected.uidvalidity,
                    next_uid=start,
                    highestmodseq=selected.highestmodseq,
                    owner=self._owner,
                )
            )
            return
        unchanged = state.highestmodseq is not None and state.highestmodseq == selected.highestmodseq
        nothing_new = selected.uidnext is not None and selected.uidnext <= state.next_uid
        if unchanged or nothing_new:
            # taking the state over (owner) also fences off a previous owner that has not noticed yet
            await self._write(msgspec.structs.replace(state, highestmodseq=selected.highestmodseq, owner=self._owner))
            return
        # The new MODSEQ is recorded only once every new UID is announced: recorded before, a catch-up
        # cut short (the store or the operator failing) would make the next reconnect skip it.
        await self._write(msgspec.structs.replace(state, owner=self._owner))
        await self._catch_up(session, idler, refresh=False)
        caught_up = self._state
        if caught_up is not None:
            await self._write(msgspec.structs.replace(caught_up, highestmodseq=selected.highestmodseq))

    async def _catch_up(self, session: ImapSession, idler: Idler, *, refresh: bool) -> None:
        """Announce the UIDs from ``next_uid`` on; on a refresh with nothing new, refresh the state."""
        state = self._state
        if state is None:
            raise RuntimeError("no state to catch up from")
        uids = [uid for uid in await session.uid_search("UID", f"{state.next_uid}:*") if uid >= state.next_uid]
        if not uids:
            if refresh:
                await self._write(state)  # keeps it from expiring; fences a stale owner
            return
        pending = PendingAnnouncement(
            highest_uid=max(uids), count=len(uids), unseen=await idler.count_unseen(), at=time.time()
        )
        await self._write(msgspec.structs.replace(state, pending=pending))
        await self._enqueue(state.uidvalidity, pending)
        await self._write(msgspec.structs.replace(state, next_uid=pending.highest_uid + 1, pending=None))

    async def _enqueue(self, uidvalidity: int, pending: PendingAnnouncement) -> None:
        event = mail_arrived(
            mailbox_id=self.id,
            uidvalidity=uidvalidity,
            highest_uid=pending.highest_uid,
            new_count=pending.count,
            unseen=pending.unseen,
            at=pending.at,
        )
        await enqueue_mail_arrived(self._queue, event, stream=self._stream)
        self._announced_at = time.monotonic()
        self.announced += 1
        log.info("watcher.mail_arrived", mailbox_id=self.id, count=pending.count, event_id=event.id)
        if self._on_event is not None:
            self._on_event(event)


async def _next_uid(session: ImapSession) -> int:
    """UIDNEXT when the server did not say: one above the highest UID present."""
    return max(await session.uid_search("ALL"), default=0) + 1
