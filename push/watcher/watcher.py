"""The watcher role: learn within seconds that mail arrived in a push-enabled mailbox, and say so.

:class:`Watcher` runs one loop, every third of the lease TTL:

* every ``discover_every_s``, ask the database which mailboxes have a pushable device
  (:func:`push_enabled_mailboxes`);
* renew the leases it holds (a lease lost means another watcher has the mailbox: that watch is
  cancelled at once); announce itself alive and count the live watchers;
* stop watching mailboxes that no longer need it, and give back leases above its fair share
  (``ceil(mailboxes / live watchers)``, at most ``max_mailboxes_per_watcher``), so a watcher that
  joins gets work;
* take free leases up to that share and start a :class:`MailboxWatch` for each.

A watcher that dies stops renewing: within ``lease_ttl_s`` (plus one tick) its leases expire and the
others take the mailboxes over, resuming each from its stored state. ``stop()`` ends every IDLE
politely and releases the leases, so the others take over at their next tick.

In ``webhook`` mode nothing runs: the operator calls ``/operator/webhook/new-mail`` on delivery
(``backend.mail.webhook``), which lands in :meth:`Watcher.operator_notified`. ``off``: neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.mail.operator.connector import OperatorConnector
from backend.mail.operator.tls import ssl_context_from_settings
from core.db.engine import Database
from core.ephemeral import Ephemeral, RedisEphemeral
from core.logging import get_logger
from core.queue import DurableQueue
from core.settings import Settings, WatcherSettings
from core.tasks import cancel_and_wait, stop_if_cancelled
from push.watcher.discovery import WatchedMailbox, push_enabled_mailboxes
from push.watcher.events import EVENTS_STREAM, MailArrived, enqueue_mail_arrived, mail_arrived
from push.watcher.leases import LeaseManager, create_leases
from push.watcher.state import StateConflictError, WatchStateStore
from push.watcher.watch import EventHook, MailboxWatch, SessionOpener, session_opener

log = get_logger("mssc.watcher")

Discover = Callable[[], Awaitable[list[WatchedMailbox]]]

#: A watch asked to stop gets this long to end IDLE and log out before it is cancelled.
STOP_GRACE_S = 2.0
#: At most this many leases above the fair share are given back per tick (smooth rebalancing).
REBALANCE_STEP = 8


def default_watcher_id() -> str:
    """Unique per process: host, pid and a random suffix (a restarted process is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WatcherStats:
    watching: int
    connected: int
    wanted: int
    live_watchers: int
    announced: int


@dataclass(slots=True)
class _Running:
    watch: MailboxWatch
    task: asyncio.Task[None]


class Watcher:
    """See the module docstring. Build with :meth:`create` (from the app's services) or directly."""

    def __init__(
        self,
        *,
        settings: WatcherSettings,
        queue: DurableQueue,
        ephemeral: Ephemeral,
        leases: LeaseManager,
        discover: Discover,
        opener: SessionOpener | None,
        watcher_id: str | None = None,
        stream: str = EVENTS_STREAM,
        on_event: EventHook | None = None,
    ) -> None:
        self.settings = settings
        self.id = watcher_id or leases.owner
        self._queue = queue
        self._states = WatchStateStore(ephemeral)
        self._leases = leases
        self._discover = discover
        self._opener = opener
        self._stream = stream
        self._on_event = on_event
        self._running: dict[str, _Running] = {}
        #: Watches asked to stop, logging out in the background; their leases go once they are done.
        self._retiring: dict[str, asyncio.Task[None]] = {}
        self._wanted: dict[str, WatchedMailbox] = {}
        self._live = 1
        self._announced = 0
        self._renewed_at = time.monotonic()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        db: Database,
        ephemeral: Ephemeral,
        queue: DurableQueue,
        connector: OperatorConnector,
        watcher_id: str | None = None,
    ) -> Watcher:
        """The app's watcher: the connector's gateway login and TLS, leases where the store is."""
        owner = watcher_id or default_watcher_id()
        client = ephemeral.client if isinstance(ephemeral, RedisEphemeral) else None
        leases = create_leases(settings.store, owner=owner, ttl_s=settings.watcher.lease_ttl_s, client=client)
        opener = None
        if settings.watcher.mode == "idle":
            ssl_context = ssl_context_from_settings(connector.settings)
            opener = session_opener(connector.settings, connector.auth, ssl_context)

        async def discover() -> list[WatchedMailbox]:
            return await push_enabled_mailboxes(db)

        return cls(
            settings=settings.watcher,
            queue=queue,
            ephemeral=ephemeral,
            leases=leases,
            discover=discover,
            opener=opener,
            watcher_id=owner,
        )

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def tick_s(self) -> float:
        return self.settings.lease_ttl_s / 3

    async def start(self) -> None:
        """Start watching (``idle`` mode only; the other modes have nothing to run)."""
        if self.settings.mode != "idle" or self._loop_task is not None:
            return
        if self._opener is None:
            raise ValueError("idle mode needs a session opener")
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._loop(), name=f"watcher:{self.id}")
        log.info("watcher.started", watcher=self.id, max_mailboxes=self.settings.max_mailboxes_per_watcher)

    async def stop(self) -> None:
        """End every IDLE politely, give the leases back, leave the live watchers. Final: the leases'
        own connection (if any) is closed."""
        self._stopping.set()
        task, self._loop_task = self._loop_task, None
        await cancel_and_wait([task])
        self._retire(list(self._running))
        await asyncio.gather(*self._retiring.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._leases.leave()
        await self._leases.close()
        if task is not None:
            log.info("watcher.stopped", watcher=self.id)

    # --- inspection ----------------------------------------------------------------------------
    @property
    def watching(self) -> frozenset[str]:
        """Ids of the mailboxes this watcher watches now."""
        return frozenset(self._running)

    def watch_of(self, mailbox_id: str) -> MailboxWatch | None:
        running = self._running.get(mailbox_id)
        return None if running is None else running.watch

    def stats(self) -> WatcherStats:
        return WatcherStats(
            watching=len(self._running),
            connected=sum(1 for r in self._running.values() if r.watch.connected),
            wanted=len(self._wanted),
            live_watchers=self._live,
            announced=self._announced,
        )

    # --- the webhook path ------------------------------------------------------------------------
    async def operator_notified(self, mailbox_id: str, *, uidvalidity: int, uid: int, unseen: int | None) -> bool:
        """The operator says message ``uid`` arrived (webhook mode): announce it once. ``False`` when
        this watcher is not in webhook mode (the call is ignored)."""
        if self.settings.mode != "webhook":
            return False
        event = mail_arrived(
            mailbox_id=mailbox_id, uidvalidity=uidvalidity, highest_uid=uid, new_count=1, unseen=unseen, at=time.time()
        )
        await enqueue_mail_arrived(self._queue, event, stream=self._stream)
        self._count(event)
        # so that switching to IDLE later starts after what the webhook announced
        await self._states.advance(mailbox_id, uidvalidity=uidvalidity, uid=uid, owner=self.id)
        log.info("watcher.mail_arrived", mailbox_id=mailbox_id, count=1, event_id=event.id, via="webhook")
        return True

    def _count(self, event: MailArrived) -> None:
        self._announced += 1
        if self._on_event is not None:
            self._on_event(event)

    # --- the loop ------------------------------------------------------------------------------
    async def _loop(self) -> None:
        next_discovery = 0.0
        while not self._stopping.is_set():
            stop_if_cancelled()
            now = time.monotonic()
            if now >= next_discovery:
                try:
                    found = await self._discover()
                    self._wanted = {m.id: m for m in found}
                    next_discovery = now + self.settings.discover_every_s
                except Exception as exc:  # noqa: BLE001 - keep watching what we have; retry next tick
                    log.warning("watcher.discovery_failed", error=type(exc).__name__)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: the next tick tries again
                log.warning("watcher.tick_failed", error=type(exc).__name__)
                if time.monotonic() - self._renewed_at > self.settings.lease_ttl_s:
                    # our leases may have expired: someone else may be watching these mailboxes now
                    await self._drop([*self._running, *self._retiring])
            try:
                async with asyncio.timeout(self.tick_s):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _tick(self) -> None:
        # 1. keep what is ours (retiring watches too, until they are done); drop at once what is not
        held = [*self._running, *self._retiring]
        if held:
            kept = await self._leases.renew(held)
            lost = [m for m in held if m not in kept]
            if lost:
                log.warning("watcher.leases_lost", watcher=self.id, count=len(lost))
                await self._drop(lost)
        self._renewed_at = time.monotonic()
        self._live = max(1, await self._leases.heartbeat())
        # 2. watches that ended by themselves (another watcher wrote the state): give them back
        ended = [m for m, r in self._running.items() if r.task.done()]
        if ended:
            self._retire(ended)
        # 3. mailboxes no longer wanted
        unwanted = [m for m in self._running if m not in self._wanted]
        if unwanted:
            self._retire(unwanted)
        # 4. fair share: give back extras, take free ones
        share = min(self.settings.max_mailboxes_per_watcher, math.ceil(len(self._wanted) / self._live))
        extra = len(self._running) - share
        if extra > 0:
            self._retire(list(self._running)[-min(extra, REBALANCE_STEP) :])
        room = share - len(self._running)
        if room > 0:
            candidates = [m for m in self._wanted if m not in self._running and m not in self._retiring]
            random.shuffle(candidates)  # spread watchers that start together over different mailboxes
            for mailbox_id in await self._leases.acquire(candidates, room):
                self._start_watch(self._wanted[mailbox_id])

    def _start_watch(self, mailbox: WatchedMailbox) -> None:
        if self._opener is None:
            raise ValueError("idle mode needs a session opener")
        watch = MailboxWatch(
            mailbox,
            opener=self._opener,
            states=self._states,
            queue=self._queue,
            settings=self.settings,
            owner=self.id,
            stream=self._stream,
            on_event=self._count,
        )
        task = asyncio.create_task(self._run_watch(watch), name=f"watch:{mailbox.id}")
        self._running[mailbox.id] = _Running(watch, task)

    async def _run_watch(self, watch: MailboxWatch) -> None:
        try:
            await watch.run()
        except StateConflictError:
            log.warning("watcher.state_taken_over", watcher=self.id, mailbox_id=watch.id)

    def _retire(self, mailbox_ids: list[str]) -> None:
        """Stop these watches politely, in the background (the tick must keep renewing on time); each
        lease is released once its session has logged out (or after ``STOP_GRACE_S``)."""
        for mailbox_id in mailbox_ids:
            running = self._running.pop(mailbox_id, None)
            if running is not None:
                running.watch.stop()
                self._retiring[mailbox_id] = asyncio.create_task(self._finish(mailbox_id, running))

    async def _finish(self, mailbox_id: str, running: _Running) -> None:
        try:
            _, late = await asyncio.wait({running.task}, timeout=STOP_GRACE_S)
            await cancel_and_wait(late)
            await self._leases.release([mailbox_id])
        except asyncio.CancelledError:
            running.task.cancel()  # dropped (the lease was lost): no time for a polite logout
            raise
        except Exception as exc:  # noqa: BLE001 - the lease expires by itself anyway
            log.warning("watcher.release_failed", error=type(exc).__name__)
        finally:
            self._retiring.pop(mailbox_id, None)

    async def _drop(self, mailbox_ids: list[str]) -> None:
        """Cancel these watches now, leases untouched: they are no longer ours (or may not be)."""
        tasks: list[asyncio.Task[None]] = []
        for mailbox_id in mailbox_ids:
            running = self._running.pop(mailbox_id, None)
            if running is not None:
                tasks.append(running.task)
            retiring = self._retiring.get(mailbox_id)
            if retiring is not None:
                tasks.append(retiring)
        await cancel_and_wait(tasks)
