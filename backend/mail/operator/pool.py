"""Pooled IMAP sessions, one pool entry per (mailbox, acting professional, device).

Logging in costs round trips (and for bearer login, a signature); the mail API makes many small
calls. So sessions are kept and reused — but never shared across professionals or devices: each
session announced its professional and device to the operator (``ID``), and a revoked device must
be able to lose its sessions without touching anyone else's (:meth:`OperatorPool.close_for`).

* at most ``pool_max_per_mailbox`` sessions per key at once; further callers queue, and give up
  with :class:`OperatorBusyError` after ``acquire_timeout_s``;
* idle sessions close after ``pool_idle_s`` (a background reaper); a session idle for more than
  ``revalidate_after_s`` is checked with ``NOOP`` before reuse;
* connection attempts go through a :class:`Circuit`: an operator that is down makes requests fail
  within milliseconds with ``operator_unavailable`` and a ``Retry-After``, with exponential backoff
  and jitter between probes;
* a refused login raises ``operator_auth_failed`` and is not retried for that key during
  ``auth_failure_holdoff_s`` (a wrong password or key does not get better by hammering, and
  operators lock accounts that do);
* :meth:`aclose` logs every session out on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from backend.mail.operator.auth import GatewayAuth
from backend.mail.operator.circuit import Circuit
from backend.mail.operator.errors import (
    OperatorAuthError,
    OperatorBusyError,
    OperatorProtocolError,
    OperatorUnavailableError,
)
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.imap_session import ImapSession
from backend.mail.operator.tls import ssl_context_from_settings
from core.settings import OperatorSettings
from core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

Key = tuple[str, str, str]
Connector = Callable[[ActingIdentity], Awaitable[ImapSession]]


@dataclass(slots=True)
class _Idle:
    session: ImapSession
    since: float


@dataclass(slots=True)
class _Slot:
    """Sessions of one key: a semaphore bounds how many exist at once."""

    semaphore: asyncio.Semaphore
    idle: list[_Idle] = field(default_factory=list)
    in_use: set[ImapSession] = field(default_factory=set)
    #: callers holding or waiting for a session (the slot is forgotten when zero and nothing idles)
    users: int = 0


@dataclass(frozen=True, slots=True)
class PoolStats:
    keys: int
    idle: int
    in_use: int
    #: sessions opened since the pool started (reuse keeps it low)
    opened: int


class OperatorPool:
    """``async with pool.session(mailbox=…, idnat=…, device_id=…) as imap: …``"""

    def __init__(
        self,
        settings: OperatorSettings,
        auth: GatewayAuth,
        *,
        ssl_context: ssl.SSLContext | None = None,
        circuit: Circuit | None = None,
        acquire_timeout_s: float | None = None,
        auth_failure_holdoff_s: float = 5.0,
        revalidate_after_s: float = 30.0,
        connector: Connector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._auth = auth
        self._ssl_context = ssl_context if ssl_context is not None else ssl_context_from_settings(settings)
        self._circuit = circuit or Circuit()
        self._acquire_timeout_s = settings.connect_timeout_s if acquire_timeout_s is None else acquire_timeout_s
        self._holdoff_s = auth_failure_holdoff_s
        self._revalidate_after_s = revalidate_after_s
        self._connector = connector or self._open_session
        self._clock = clock
        self._slots: dict[Key, _Slot] = {}
        self._refused_until: dict[Key, float] = {}
        self._retired: set[ImapSession] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._opened = 0
        self._closed = False

    @property
    def circuit(self) -> Circuit:
        return self._circuit

    def stats(self) -> PoolStats:
        return PoolStats(
            keys=len(self._slots),
            idle=sum(len(s.idle) for s in self._slots.values()),
            in_use=sum(len(s.in_use) for s in self._slots.values()),
            opened=self._opened,
        )

    # --- borrowing ------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def session(self, *, mailbox: str, idnat: str, device_id: str) -> AsyncIterator[ImapSession]:
        """A logged-in session for this mailbox, professional and device, returned to the pool after.

        Raises :class:`OperatorUnavailableError`, :class:`OperatorBusyError` or :class:`OperatorAuthError`
        before yielding; errors raised inside the block pass through untouched.
        """
        if self._closed:
            raise OperatorUnavailableError(1, "operator connector is shutting down")
        identity = ActingIdentity(mailbox=mailbox, idnat=idnat, device_id=device_id)
        key: Key = (identity.mailbox, identity.idnat, identity.device_id)
        self._refuse_if_recently_refused(key)
        self._start_reaper()
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Semaphore(self._settings.pool_max_per_mailbox))
        slot.users += 1
        try:
            try:
                async with asyncio.timeout(self._acquire_timeout_s):
                    await slot.semaphore.acquire()
            except TimeoutError:
                raise OperatorBusyError(1, "all sessions for this mailbox and device are busy") from None
            try:
                session = await self._take_or_open(slot, key, identity)
                slot.in_use.add(session)
                try:
                    yield session
                finally:
                    slot.in_use.discard(session)
                    await self._give_back(slot, session)
            finally:
                slot.semaphore.release()
        finally:
            slot.users -= 1
            self._forget_if_unused(key, slot)

    async def _take_or_open(self, slot: _Slot, key: Key, identity: ActingIdentity) -> ImapSession:
        while slot.idle:
            entry = slot.idle.pop()  # most recently used first: the warmest connection
            session = entry.session
            if session.closed:
                continue
            if self._clock() - entry.since >= self._revalidate_after_s:
                try:
                    await session.noop()
                except (OperatorUnavailableError, OperatorProtocolError):
                    session.abort()
                    continue  # the operator dropped it while idle; open a fresh one
            return session
        return await self._open(key, identity)

    async def _open(self, key: Key, identity: ActingIdentity) -> ImapSession:
        try:
            with self._circuit.attempt():
                session = await self._connector(identity)
        except OperatorAuthError:
            self._refused_until[key] = self._clock() + self._holdoff_s
            raise
        self._opened += 1
        self._refused_until.pop(key, None)
        return session

    async def _open_session(self, identity: ActingIdentity) -> ImapSession:
        return await ImapSession.open(
            settings=self._settings, auth=self._auth, identity=identity, ssl_context=self._ssl_context
        )

    async def _give_back(self, slot: _Slot, session: ImapSession) -> None:
        if session in self._retired or self._closed:
            self._retired.discard(session)
            session.abort()
            return
        if session.closed:
            return
        slot.idle.append(_Idle(session, self._clock()))

    def _refuse_if_recently_refused(self, key: Key) -> None:
        until = self._refused_until.get(key)
        if until is None:
            return
        if self._clock() < until:
            raise OperatorAuthError("operator refused this login moments ago; not retried yet")
        del self._refused_until[key]

    def _forget_if_unused(self, key: Key, slot: _Slot) -> None:
        if slot.users == 0 and not slot.idle and not slot.in_use and self._slots.get(key) is slot:
            del self._slots[key]

    # --- closing --------------------------------------------------------------------------------
    async def close_for(
        self, *, mailbox: str | None = None, idnat: str | None = None, device_id: str | None = None
    ) -> int:
        """Close every session matching all the given criteria (a revoked device, a removed grant).

        Idle sessions are logged out; sessions in use are cut at once (their current command fails
        with ``operator_unavailable``) so a revoked device keeps no access. Returns how many.
        """
        if mailbox is None and idnat is None and device_id is None:
            raise ValueError("close_for needs at least one criterion")
        wanted_mailbox = None if mailbox is None else mailbox.lower()
        closing: list[ImapSession] = []
        cut = 0
        for key, slot in list(self._slots.items()):
            box, who, device = key
            if (
                (wanted_mailbox is not None and box != wanted_mailbox)
                or (idnat is not None and who != idnat)
                or (device_id is not None and device != device_id)
            ):
                continue
            closing.extend(entry.session for entry in slot.idle)
            slot.idle.clear()
            for session in slot.in_use:
                self._retired.add(session)
                session.abort()
                cut += 1
            self._forget_if_unused(key, slot)
        await asyncio.gather(*(s.logout() for s in closing))
        if closing or cut:
            log.info("operator.sessions_closed", device=device_id, idle=len(closing), cut=cut)
        return len(closing) + cut

    async def reap_idle(self) -> int:
        """Log out sessions idle for ``pool_idle_s`` or more; returns how many (the reaper calls it)."""
        now = self._clock()
        expired: list[ImapSession] = []
        for key, slot in list(self._slots.items()):
            keep = [e for e in slot.idle if now - e.since < self._settings.pool_idle_s and not e.session.closed]
            expired.extend(e.session for e in slot.idle if e not in keep)
            slot.idle[:] = keep
            self._forget_if_unused(key, slot)
        if expired:
            await asyncio.gather(*(s.logout() for s in expired))
        return len(expired)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever(), name="operator-pool-reaper")

    async def _reap_forever(self) -> None:
        interval = min(max(self._settings.pool_idle_s / 4, 0.05), 5.0)
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.reap_idle()
            except Exception as exc:  # noqa: BLE001 - the reaper must survive anything
                log.warning("operator.reap_failed", error=type(exc).__name__)

    async def aclose(self) -> None:
        """Shutdown: stop the reaper, log out idle sessions, cut those in use."""
        self._closed = True
        if self._reaper is not None:
            await cancel_and_wait([self._reaper])
        idle: list[ImapSession] = []
        for slot in self._slots.values():
            idle.extend(e.session for e in slot.idle)
            slot.idle.clear()
            for session in slot.in_use:
                session.abort()
        await asyncio.gather(*(s.logout() for s in idle))
