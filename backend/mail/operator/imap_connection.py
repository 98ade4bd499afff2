"""The IMAP connection under a session: connect, secure, log in, announce, and run commands.

:meth:`ImapConnection.open` connects (plain, STARTTLS or implicit TLS ≥ 1.2), logs in with the
gateway strategy, announces the acting professional and device with ``ID`` (RFC 2971) so the
operator's logs say who acted on an organisational mailbox, and enables QRESYNC (or CONDSTORE)
when offered. Every command is bounded by ``command_timeout_s`` and runs one at a time: a session
belongs to one request at a time (the pool sees to it), the lock only guards against a caller that
forgets.

A timeout, a lost connection or a cancelled command leaves the protocol state unknown: the
connection closes itself (``closed``) and the pool drops it. Failures surface as the domain errors
of :mod:`errors`, never as raw socket, TLS or aioimaplib exceptions.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Self, TypeVar

import structlog
from aioimaplib import aioimaplib as aio

from backend.mail.operator import sasl
from backend.mail.operator.auth import GatewayAuth
from backend.mail.operator.errors import (
    FolderNotFoundError,
    OperatorAuthError,
    OperatorCommandError,
    OperatorProtocolError,
    OperatorUnavailableError,
    OperatorUnreachableError,
)
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.imap_parse import (
    ImapParseError,
    as_text,
    capabilities_from,
    group_responses,
    parse_values,
    response_code,
)
from backend.mail.operator.imap_protocol import AuthenticateCommand, ConnectionLostError, GatewayImapProtocol
from backend.mail.operator.imap_results import NOT_FOUND_CODES, TRANSIENT_CODES, tagged_text
from backend.mail.operator.models import Capabilities, SelectedMailbox
from backend.mail.operator.mutf7 import quote
from core.settings import OperatorSettings

log = structlog.get_logger(__name__)

CLIENT_NAME = "mss-companion"

P = ParamSpec("P")
R = TypeVar("R")


def parsing(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A response we cannot parse is the operator's fault: ``operator_error``, not a crash."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except ImapParseError as exc:
            raise OperatorProtocolError("malformed response from the operator") from exc

    return wrapper


class ImapConnection:
    """Use :meth:`open`; close with :meth:`logout` (polite) or :meth:`abort` (now)."""

    def __init__(self, protocol: GatewayImapProtocol, *, identity: ActingIdentity, settings: OperatorSettings) -> None:
        self._protocol = protocol
        self._identity = identity
        self._command_timeout_s = settings.command_timeout_s
        self._lock = asyncio.Lock()
        self._closed = False
        self._capabilities = Capabilities(frozenset())
        self._selected: SelectedMailbox | None = None
        self.server_id: dict[str, str | None] = {}

    # --- opening --------------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        *,
        settings: OperatorSettings,
        auth: GatewayAuth,
        identity: ActingIdentity,
        ssl_context: ssl.SSLContext | None = None,
        local_addr: tuple[str, int] | None = None,
        client_version: str | None = None,
    ) -> Self:
        """Connect, secure, authenticate, announce (``ID``) and enable CONDSTORE/QRESYNC.

        Raises :class:`OperatorUnreachableError` (refused, no route, no greeting in time, TLS handshake
        failed), :class:`OperatorUnavailableError` (lost or timing out after the greeting),
        :class:`OperatorAuthError` (login refused) or :class:`OperatorProtocolError`.
        """
        if settings.tls != "plain" and ssl_context is None:
            raise ValueError("TLS modes need an ssl_context (see tls.ssl_context_from_settings)")
        if auth.requires_client_certificate and settings.tls == "plain":
            raise ValueError("certificate login needs TLS")
        loop = asyncio.get_running_loop()
        holder: list[ImapConnection] = []

        def on_lost(_exc: Exception | None) -> None:
            for owner in holder:
                owner._mark_closed()

        protocol = GatewayImapProtocol(loop, on_lost=on_lost)
        session = cls(protocol, identity=identity, settings=settings)
        holder.append(session)
        host, port = settings.imap_host, settings.imap_port
        try:
            await session._connect(settings, ssl_context, local_addr)
            if protocol.state != aio.NONAUTH or not protocol.capabilities:
                # PREAUTH would log us in as whoever the server chose; BYE means it will not serve us
                raise OperatorProtocolError("unexpected greeting")
            if settings.tls == "starttls" and ssl_context is not None:
                await session._starttls(ssl_context, host)
            await session._authenticate(auth.login(identity, host=host, port=port))
            await session._announce(client_version or _own_version())
            await session._enable_sync_extensions()
        except ssl.SSLError as exc:
            session.abort()
            log.warning("operator.tls_failed", error=type(exc).__name__, reason=getattr(exc, "reason", None))
            raise OperatorUnreachableError(1, "TLS handshake with the operator failed") from None
        except (OSError, TimeoutError):
            session.abort()
            raise OperatorUnavailableError(1, "operator connection failed") from None
        except BaseException:
            session.abort()
            raise
        return session

    async def _connect(
        self, settings: OperatorSettings, ssl_context: ssl.SSLContext | None, local_addr: tuple[str, int] | None
    ) -> None:
        """TCP (+ TLS for ``implicit``) and the greeting, within ``connect_timeout_s``."""
        protocol = self._protocol
        loop = protocol.loop
        host, port = settings.imap_host, settings.imap_port
        try:
            async with asyncio.timeout(settings.connect_timeout_s):
                await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    ssl=ssl_context if settings.tls == "implicit" else None,
                    server_hostname=host if settings.tls == "implicit" else None,
                    local_addr=local_addr,
                )
                await protocol.wait("AUTH|NONAUTH|LOGOUT")
        except ssl.SSLError:
            raise  # reported by open()
        except (OSError, TimeoutError):
            raise OperatorUnreachableError(1, "operator unreachable") from None

    async def _starttls(self, context: ssl.SSLContext, host: str) -> None:
        if "STARTTLS" not in self._protocol.capabilities:
            # never fall back to clear text: the server (or someone in between) removed STARTTLS
            raise OperatorProtocolError("operator does not offer STARTTLS")
        response = await self._execute(aio.Command("STARTTLS", self._protocol.new_tag(), loop=self._protocol.loop))
        self._check(response, "STARTTLS")
        await self._guarded(self._protocol.start_tls(context, host))
        await self._guarded(self._protocol.capability())

    @parsing
    async def _authenticate(self, login: sasl.SaslLogin) -> None:
        announced = {c.upper() for c in self._protocol.capabilities}
        offered = {c.split("=", 1)[1] for c in announced if c.startswith("AUTH=")}
        if login.mechanism not in offered:
            raise OperatorAuthError(f"operator does not offer {login.mechanism}")
        command = AuthenticateCommand(
            self._protocol.new_tag(), login, sasl_ir="SASL-IR" in announced, loop=self._protocol.loop
        )
        response = await self._execute(command)
        if response.result != "OK":
            code = response_code(tagged_text(response))
            if code is not None and code[0] in TRANSIENT_CODES:
                raise OperatorUnavailableError(1, "operator authentication service unavailable")
            status = sasl.bearer_error_status(command.challenges[0]) if command.challenges else None
            detail = f"{login.mechanism} login refused" + (f" ({status})" if status else "")
            log.info(
                "operator.login_refused", mechanism=login.mechanism, status=status, device=self._identity.device_id
            )
            raise OperatorAuthError(detail)
        self._protocol.state = aio.AUTH
        code = response_code(tagged_text(response))
        if code is not None and code[0] == "CAPABILITY":
            self._protocol.capabilities = set(capabilities_from(code[1]))
        else:
            await self._guarded(self._protocol.capability())
        self._capabilities = Capabilities(frozenset(self._protocol.capabilities))

    @parsing
    async def _announce(self, client_version: str) -> None:
        """``ID``: the operator logs who acts (IdNat) from which device, per session."""
        if "ID" not in self._capabilities:
            return
        fields = {
            "name": CLIENT_NAME,
            "version": client_version,
            "x-mssc-idnat": self._identity.idnat,
            "x-mssc-device": self._identity.device_id,
        }
        params = "(" + " ".join(f"{quote(k)} {quote(v)}" for k, v in fields.items()) + ")"
        response = await self._execute(aio.Command("ID", self._protocol.new_tag(), params, loop=self._protocol.loop))
        self._check(response, "ID")
        for group in group_responses(response.lines[:-1]):
            values = parse_values(group)
            if len(values) == 2 and as_text(values[0]).upper() == "ID" and isinstance(values[1], list):
                items = values[1]
                self.server_id = {
                    as_text(items[i]): None if items[i + 1] is None else as_text(items[i + 1])
                    for i in range(0, len(items) - 1, 2)
                }

    @parsing
    async def _enable_sync_extensions(self) -> None:
        wanted = [c for c in ("QRESYNC", "CONDSTORE") if c in self._capabilities]
        if not wanted or "ENABLE" not in self._capabilities:
            return
        # QRESYNC implies CONDSTORE (RFC 7162 §3.2.3); ask for the best one only
        response = await self._execute(
            aio.Command("ENABLE", self._protocol.new_tag(), wanted[0], loop=self._protocol.loop)
        )
        self._check(response, "ENABLE")
        enabled: set[str] = set()
        for group in group_responses(response.lines[:-1]):
            words = group[0].decode("ascii", "replace").upper().split()
            if words and words[0] == "ENABLED":
                enabled.update(words[1:])
        if "QRESYNC" in enabled:
            enabled.add("CONDSTORE")
        self._capabilities = Capabilities(self._capabilities.announced, frozenset(enabled))

    # --- state ----------------------------------------------------------------------------------
    @property
    def identity(self) -> ActingIdentity:
        return self._identity

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def selected(self) -> SelectedMailbox | None:
        return self._selected

    @property
    def closed(self) -> bool:
        return self._closed or self._protocol.lost

    def _mark_closed(self) -> None:
        self._closed = True

    def abort(self) -> None:
        """Drop the connection now (no LOGOUT): after a timeout, on shutdown, for a revoked device."""
        self._closed = True
        transport = self._protocol.transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    async def logout(self, *, timeout_s: float = 2.0) -> None:
        """``LOGOUT`` politely when the session is healthy, then close; never raises."""
        if not self.closed:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._execute(aio.Command("LOGOUT", self._protocol.new_tag(), loop=self._protocol.loop))
            except Exception as exc:  # noqa: BLE001 - closing anyway: nothing to report to the caller
                log.debug("operator.logout_failed", error=type(exc).__name__)
        self.abort()

    async def noop(self) -> None:
        """A round trip: proves the session alive and collects pending server news."""
        response = await self._execute(aio.Command("NOOP", self._protocol.new_tag(), loop=self._protocol.loop))
        self._check(response, "NOOP")

    # --- plumbing -------------------------------------------------------------------------------
    async def _guarded(self, awaitable: Any) -> Any:
        """Run a protocol coroutine (not a command of ours) under the same timeout and lock."""
        async with self._lock:
            return await self._bounded(awaitable)

    async def _execute(self, command: Any) -> Any:
        """Send one command and wait for its tagged answer, bounded by ``command_timeout_s``."""
        if self.closed:
            raise OperatorUnavailableError(1, "operator session closed")
        async with self._lock:
            return await self._bounded(self._protocol.execute(command))

    async def _bounded(self, awaitable: Any) -> Any:
        done = False
        try:
            async with asyncio.timeout(self._command_timeout_s):
                result = await awaitable
            done = True
            return result
        except TimeoutError:
            raise OperatorUnavailableError(5, "operator timed out") from None
        except ConnectionLostError:
            raise OperatorUnavailableError(1, "operator connection lost") from None
        except aio.AioImapException as exc:
            raise OperatorProtocolError(type(exc).__name__) from None
        finally:
            if not done:
                self.abort()  # state unknown (or cancelled mid-command): never reuse this session

    def _check(self, response: Any, what: str) -> None:
        if response.result == "OK":
            return
        code = response_code(tagged_text(response))
        name = code[0] if code else None
        if name in NOT_FOUND_CODES:
            raise FolderNotFoundError()
        if name in TRANSIENT_CODES:
            raise OperatorUnavailableError(1, f"{what}: operator temporarily unable")
        raise OperatorCommandError(what, str(response.result), name)


def _own_version() -> str:
    try:
        return importlib.metadata.version("mss-companion")
    except importlib.metadata.PackageNotFoundError:
        return "0"
