"""IMAP IDLE (RFC 2177) on an operator session: learn within a second that a message arrived.

:meth:`ImapSession.idler` gives an :class:`Idler` for the selected folder. The idler hears every
untagged ``EXISTS`` on the connection (through the protocol's ``untagged_listener``), whatever
command it came with, and :meth:`Idler.wait` idles until the server reports news, the refresh
interval passes (RFC 2177: re-issue IDLE at least every 29 minutes) or the caller asks to stop; it
then ends IDLE with ``DONE`` and waits for the tagged answer, so the session is ready for the next
command (the catch-up ``UID SEARCH``).

The race it closes: a message that arrives while another command runs is reported with that
command's answer, and the server does not report it again when IDLE starts. So :meth:`Idler.wait`
returns at once, without idling, when news was heard since it last returned.

A dead peer is noticed by TCP keepalive (enabled on the socket while idling) or, at the latest, at
the next refresh. Failures are the connector's domain errors; after one the session is closed.

The mailbox watcher (``push.watcher``) is the user: one long-lived session per watched mailbox,
never taken from the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from aioimaplib import aioimaplib as aio

from backend.mail.operator.errors import OperatorCommandError, OperatorProtocolError, OperatorUnavailableError
from backend.mail.operator.imap_connection import ImapConnection
from backend.mail.operator.imap_protocol import ConnectionLostError, GatewayImapProtocol

#: RFC 2177: a client re-issues IDLE at least every 29 minutes (servers may log idlers off after 30).
MAX_IDLE_S = 29 * 60

#: TCP keepalive while idling: a silently dead peer is noticed within about two minutes.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 60, 15, 4

_EXISTS = re.compile(rb"([0-9]{1,10}) EXISTS", re.IGNORECASE)
_COUNT = re.compile(rb"\bCOUNT ([0-9]{1,10})\b", re.IGNORECASE)

Execute = Callable[[Any], Awaitable[Any]]


class IdleOutcome(StrEnum):
    """Why :meth:`Idler.wait` returned."""

    #: The server reported messages (``EXISTS``): look for new UIDs.
    NEWS = "news"
    #: The refresh interval passed without news: IDLE was ended; re-check and idle again.
    REFRESH = "refresh"
    #: The caller's ``stop`` event was set.
    STOPPED = "stopped"


class _IdleCommand(aio.Command):  # type: ignore[misc]
    """``IDLE`` that keeps no response lines: it lasts minutes, and the idler hears them anyway."""

    def __init__(self, tag: str, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__("IDLE", tag, loop=loop)

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        if result != "Pending":
            super().append_to_resp(line, result)


class Idler:
    """IDLE on one session's selected folder. Made by :meth:`ImapSession.idler`; one per session."""

    def __init__(
        self,
        connection: ImapConnection,
        protocol: GatewayImapProtocol,
        lock: asyncio.Lock,
        execute: Execute,
        *,
        command_timeout_s: float,
    ) -> None:
        self._connection = connection
        self._protocol = protocol
        self._lock = lock
        self._execute = execute
        self._command_timeout_s = command_timeout_s
        self._news = asyncio.Event()
        #: The message count the server last reported (``None`` until it reports one).
        self.exists: int | None = None
        protocol.untagged_listener = self._heard

    def _heard(self, line: bytes) -> None:
        match = _EXISTS.fullmatch(line.strip())
        if match is not None:
            self.exists = int(match.group(1))
            self._news.set()

    @property
    def news(self) -> bool:
        """An ``EXISTS`` was heard since :meth:`wait` last returned (or :meth:`forget`)."""
        return self._news.is_set()

    def forget(self) -> None:
        """Drop the news heard so far (the ``EXISTS`` of ``SELECT`` itself)."""
        self._news.clear()

    async def wait(self, *, timeout_s: float, stop: asyncio.Event | None = None, settle_s: float = 0.0) -> IdleOutcome:
        """Idle until news, ``timeout_s`` (≤ 29 min) or ``stop``; ``settle_s`` after the first news
        gathers a burst of deliveries into one answer. Returns at once if news is already waiting."""
        if not 0 < timeout_s <= MAX_IDLE_S:
            raise ValueError("timeout_s must be within (0, 29 min] (RFC 2177)")
        if stop is not None and stop.is_set():
            return IdleOutcome.STOPPED
        if self._news.is_set():
            self._news.clear()
            return IdleOutcome.NEWS
        connection = self._connection
        if connection.closed:
            raise OperatorUnavailableError(1, "operator session closed")
        if connection.selected is None:
            raise RuntimeError("select() a folder first")
        if not connection.capabilities.idle:
            raise OperatorProtocolError("operator does not offer IDLE")
        protocol = self._protocol
        async with self._lock:
            _keepalive(protocol.transport)
            running = asyncio.ensure_future(protocol.execute(_IdleCommand(protocol.new_tag(), loop=protocol.loop)))
            finished = False
            try:
                await self._until_idling(running)
                outcome = await self._until_news(running, timeout_s, stop, settle_s)
                protocol.idle_done()  # DONE
                async with asyncio.timeout(self._command_timeout_s):
                    response = await running
                if response.result != "OK":
                    raise OperatorCommandError("IDLE", str(response.result), None)
                finished = True
                return outcome
            except TimeoutError:
                raise OperatorUnavailableError(5, "operator timed out") from None
            except ConnectionLostError:
                raise OperatorUnavailableError(1, "operator connection lost") from None
            except aio.AioImapException as exc:
                raise OperatorProtocolError(type(exc).__name__) from None
            finally:
                if not finished:
                    running.cancel()
                    connection.abort()  # state unknown (or cancelled while idling): never reuse

    async def _until_idling(self, running: asyncio.Future[Any]) -> None:
        """Wait for the server's ``+ idling`` (or its refusal), within the command timeout."""
        started = asyncio.ensure_future(self._protocol.wait_for_idle_response())
        try:
            async with asyncio.timeout(self._command_timeout_s):
                await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if running.done():
            response = running.result()  # raises ConnectionLostError when the connection went
            raise OperatorCommandError("IDLE", str(response.result), None)

    async def _until_news(
        self, running: asyncio.Future[Any], timeout_s: float, stop: asyncio.Event | None, settle_s: float
    ) -> IdleOutcome:
        news = asyncio.ensure_future(self._news.wait())
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        waiters: set[asyncio.Future[Any]] = {running, news} if stopping is None else {running, news, stopping}
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if running in done:
                _ended_by_server(running)
            if stopping is not None and stopping in done:
                return IdleOutcome.STOPPED
            if news in done:
                if settle_s > 0:
                    await asyncio.wait({running}, timeout=settle_s)
                    if running.done():
                        _ended_by_server(running)
                self._news.clear()
                return IdleOutcome.NEWS
            return IdleOutcome.REFRESH
        finally:
            news.cancel()
            if stopping is not None:
                stopping.cancel()

    async def count_unseen(self) -> int:
        """Unseen messages in the selected folder: ``SEARCH RETURN (COUNT) UNSEEN`` (ESEARCH, RFC 4731),
        else counted from a plain ``SEARCH UNSEEN``. Not while idling (the session runs one command)."""
        protocol = self._protocol
        esearch = "ESEARCH" in self._connection.capabilities
        args = ("RETURN", "(COUNT)", "UNSEEN") if esearch else ("UNSEEN",)
        response = await self._execute(aio.Command("SEARCH", protocol.new_tag(), *args, loop=protocol.loop))
        if response.result != "OK":
            raise OperatorCommandError("SEARCH", str(response.result), None)
        for line in response.lines[:-1]:
            if not isinstance(line, bytes):
                continue
            head = line.lstrip()[:8].upper()
            if esearch and head.startswith(b"ESEARCH"):
                match = _COUNT.search(line)
                return 0 if match is None else int(match.group(1))  # RFC 4731: no COUNT when none match
            if not esearch and head.startswith(b"SEARCH"):
                return sum(1 for word in line.split()[1:] if word.isdigit())
        return 0


def _ended_by_server(running: asyncio.Future[Any]) -> None:
    """IDLE ended without our ``DONE``: the connection was lost, or the server answered on its own."""
    running.result()  # raises ConnectionLostError
    raise OperatorUnavailableError(1, "operator ended IDLE")


def _keepalive(transport: Any) -> None:
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
