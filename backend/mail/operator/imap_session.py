"""One authenticated IMAP session with the operator, for one mailbox, professional and device.

:meth:`ImapSession.open` connects (plain, STARTTLS or implicit TLS ≥ 1.2), logs in with the
gateway strategy, announces the acting professional and device with ``ID`` (RFC 2971) so the
operator's logs say who acted on an organisational mailbox, and enables QRESYNC (or CONDSTORE)
when offered. The helpers return typed results (:mod:`models`); every command is bounded by
``command_timeout_s``. Commands run one at a time: a session belongs to one request at a time (the
pool sees to it), and the lock only guards against a caller that forgets.

A timeout, a lost connection or a cancelled command leaves the protocol state unknown: the
session closes itself (``closed``) and the pool drops it. Failures surface as the domain errors
of :mod:`errors`, never as raw socket, TLS or aioimaplib exceptions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

import structlog
from aioimaplib import aioimaplib as aio

from backend.mail.operator import sasl
from backend.mail.operator.auth import GatewayAuth
from backend.mail.operator.bodystructure import parse_body_structure
from backend.mail.operator.errors import (
    FolderNotFoundError,
    MessageNotFoundError,
    OperatorAuthError,
    OperatorCommandError,
    OperatorProtocolError,
    OperatorUnavailableError,
    OperatorUnreachableError,
)
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.imap_parse import (
    ImapParseError,
    Value,
    as_int,
    as_list,
    as_text,
    capabilities_from,
    format_uid_set,
    group_responses,
    pairs,
    parse_internal_date,
    parse_uid_set,
    parse_values,
    response_code,
)
from backend.mail.operator.imap_protocol import (
    AuthenticateCommand,
    ConnectionLostError,
    FetchCommand,
    GatewayImapProtocol,
)
from backend.mail.operator.models import (
    SPECIAL_USES,
    SUMMARY_HEADERS,
    AppendedMessage,
    Capabilities,
    CopiedUids,
    FlagState,
    Folder,
    MailboxChanges,
    MessageSummary,
    SelectedMailbox,
)
from backend.mail.operator.mutf7 import decode_mailbox, quote, quote_mailbox
from core.settings import OperatorSettings

log = structlog.get_logger(__name__)

#: Partial fetches of this size stream a part: a 10 MB attachment is ~40 round trips, never whole.
DEFAULT_CHUNK = 256 * 1024
#: UIDs per FETCH when listing summaries: bounds one response's size.
SUMMARY_BATCH = 200
CLIENT_NAME = "mss-companion"

_FLAG = re.compile(r"\\?[A-Za-z0-9$_.\-]{1,64}")
_PART = re.compile(r"(?:[1-9][0-9]{0,3}(?:\.[1-9][0-9]{0,3}){0,15})(?:\.(?:HEADER|TEXT|MIME))?|HEADER|TEXT")
_EXISTS = re.compile(rb"^(\d+) EXISTS", re.IGNORECASE)
_NOT_FOUND_CODES = frozenset({"NONEXISTENT", "TRYCREATE"})
_TRANSIENT_CODES = frozenset({"UNAVAILABLE", "INUSE", "SERVERBUG", "LIMIT"})

_SPECIAL_BY_UPPER = {use.upper(): use for use in SPECIAL_USES}

FlagMode = Literal["add", "remove", "replace"]
_STORE_OP: dict[str, str] = {"add": "+FLAGS", "remove": "-FLAGS", "replace": "FLAGS"}


P = ParamSpec("P")
R = TypeVar("R")


def _parsing(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A response we cannot parse is the operator's fault: ``operator_error``, not a crash."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except ImapParseError as exc:
            raise OperatorProtocolError("malformed response from the operator") from exc

    return wrapper


class ImapSession:
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
    ) -> ImapSession:
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
        holder: list[ImapSession] = []

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

    @_parsing
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
            code = response_code(_tagged_text(response))
            if code is not None and code[0] in _TRANSIENT_CODES:
                raise OperatorUnavailableError(1, "operator authentication service unavailable")
            status = sasl.bearer_error_status(command.challenges[0]) if command.challenges else None
            detail = f"{login.mechanism} login refused" + (f" ({status})" if status else "")
            log.info(
                "operator.login_refused", mechanism=login.mechanism, status=status, device=self._identity.device_id
            )
            raise OperatorAuthError(detail)
        self._protocol.state = aio.AUTH
        code = response_code(_tagged_text(response))
        if code is not None and code[0] == "CAPABILITY":
            self._protocol.capabilities = set(capabilities_from(code[1]))
        else:
            await self._guarded(self._protocol.capability())
        self._capabilities = Capabilities(frozenset(self._protocol.capabilities))

    @_parsing
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

    @_parsing
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

    # --- folders --------------------------------------------------------------------------------
    @_parsing
    async def select(self, mailbox: str = "INBOX", *, readonly: bool = False) -> SelectedMailbox:
        """``SELECT`` (or ``EXAMINE`` when ``readonly``): UIDVALIDITY, UIDNEXT, EXISTS, HIGHESTMODSEQ."""
        name = "EXAMINE" if readonly else "SELECT"
        command = aio.Command(name, self._protocol.new_tag(), quote_mailbox(mailbox), loop=self._protocol.loop)
        self._selected = None
        response = await self._execute(command)
        if response.result != "OK":
            self._protocol.state = aio.AUTH
            code = response_code(_tagged_text(response))
            if code is None and response.result == "NO" and not await self._exists(mailbox):
                # Dovecot 2.3 answers a missing folder with a bare NO (no [NONEXISTENT])
                raise FolderNotFoundError()
            self._check(response, name)
        self._protocol.state = aio.SELECTED
        selected = _parse_select(mailbox, response, readonly=readonly)
        if not self._capabilities.condstore:
            selected = dataclasses.replace(selected, highestmodseq=None)
        self._selected = selected
        return selected

    @_parsing
    async def list_folders(self, *, with_counts: bool = True) -> list[Folder]:
        """Every folder with its special use (``\\Sent``, ``\\Trash``…) and, optionally, counts.

        One ``LIST … RETURN (SPECIAL-USE STATUS …)`` when the server has LIST-STATUS (RFC 5819),
        else ``LIST`` then ``STATUS`` per selectable folder.
        """
        caps = self._capabilities
        returns = []
        if "SPECIAL-USE" in caps:
            returns.append("SPECIAL-USE")
        if "CHILDREN" in caps:
            returns.append("CHILDREN")
        inline_status = with_counts and "LIST-STATUS" in caps
        if inline_status:
            returns.append("STATUS (MESSAGES UNSEEN)")
        args = ['""', '"*"']
        if returns and "LIST-EXTENDED" in caps:
            args += ["RETURN", "(" + " ".join(returns) + ")"]
        response = await self._execute(aio.Command("LIST", self._protocol.new_tag(), *args, loop=self._protocol.loop))
        self._check(response, "LIST")
        folders: dict[str, Folder] = {}
        counts: dict[str, tuple[int | None, int | None]] = {}
        for group in group_responses(response.lines[:-1]):
            values = parse_values(group)
            kind = as_text(values[0]).upper() if values else ""
            if kind == "LIST" and len(values) >= 4:
                folder = _parse_list_entry(values)
                folders[folder.name] = folder
            elif kind == "STATUS" and len(values) >= 3:
                name, messages, unseen = _parse_status(values)
                counts[name] = (messages, unseen)
        if with_counts and not inline_status:
            for name, folder in folders.items():
                if folder.selectable:
                    counts[name] = await self.status(name)
        return [
            dataclasses.replace(
                folder, messages=counts.get(name, (None, None))[0], unseen=counts.get(name, (None, None))[1]
            )
            for name, folder in folders.items()
        ]

    @_parsing
    async def _exists(self, mailbox: str) -> bool:
        command = aio.Command("LIST", self._protocol.new_tag(), '""', quote_mailbox(mailbox), loop=self._protocol.loop)
        response = await self._execute(command)
        return response.result == "OK" and any(
            group[0].upper().startswith(b"LIST") for group in group_responses(response.lines[:-1])
        )

    async def status(self, mailbox: str) -> tuple[int | None, int | None]:
        """(messages, unseen) of a folder without selecting it."""
        command = aio.Command(
            "STATUS", self._protocol.new_tag(), quote_mailbox(mailbox), "(MESSAGES UNSEEN)", loop=self._protocol.loop
        )
        response = await self._execute(command)
        self._check(response, "STATUS")
        for group in group_responses(response.lines[:-1]):
            values = parse_values(group)
            if values and as_text(values[0]).upper() == "STATUS" and len(values) >= 3:
                _name, messages, unseen = _parse_status(values)
                return messages, unseen
        return None, None

    # --- searching and fetching ----------------------------------------------------------------
    @_parsing
    async def uid_search(self, *criteria: str) -> list[int]:
        """``UID SEARCH`` with criteria as IMAP atoms/strings, e.g. ``("UNSEEN",)`` or
        ``("SINCE", "1-Jan-2025")``; quote user text with :func:`mutf7.quote`. Sorted UIDs."""
        if not criteria:
            criteria = ("ALL",)
        args: tuple[str, ...] = criteria
        if any(not c.isascii() for c in criteria):
            args = ("CHARSET", "UTF-8", *criteria)
        self._require_selected()
        command = aio.Command("SEARCH", self._protocol.new_tag(), *args, prefix="UID", loop=self._protocol.loop)
        response = await self._execute(command)
        self._check(response, "UID SEARCH")
        uids: set[int] = set()
        for group in group_responses(response.lines[:-1]):
            words = group[0].decode("ascii", "replace").split()
            if words and words[0].upper() == "SEARCH":
                for word in words[1:]:
                    if not word.isdigit():  # "(MODSEQ n)" after a MODSEQ search
                        break
                    uids.add(int(word))
        return sorted(uids)

    @_parsing
    async def uid_fetch_summaries(self, uids: Sequence[int]) -> list[MessageSummary]:
        """Flags, internal date, size, the summary headers, BODYSTRUCTURE (and MODSEQ) per UID.

        Unknown UIDs are skipped. Results follow the order of ``uids``.
        """
        self._require_selected()
        wanted = [int(u) for u in uids]
        items = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE"]
        if self._capabilities.condstore:
            items.append("MODSEQ")
        items.append(f"BODY.PEEK[HEADER.FIELDS ({' '.join(SUMMARY_HEADERS)})]")
        found: dict[int, MessageSummary] = {}
        for start in range(0, len(wanted), SUMMARY_BATCH):
            batch = wanted[start : start + SUMMARY_BATCH]
            for uid, fetched in await self._uid_fetch(batch, "(" + " ".join(items) + ")"):
                if uid in found:
                    continue
                found[uid] = _summary(uid, fetched)
        return [found[u] for u in wanted if u in found]

    @_parsing
    async def uid_fetch_flags(self, uids: Sequence[int] | None = None) -> list[FlagState]:
        """Flags (and MODSEQ) of ``uids``, or of every message when ``None``."""
        self._require_selected()
        items = "(UID FLAGS MODSEQ)" if self._capabilities.condstore else "(UID FLAGS)"
        fetched = await self._uid_fetch(None if uids is None else list(uids), items)
        return [_flag_state(uid, values) for uid, values in fetched]

    @_parsing
    async def uid_fetch_changes(self, changedsince_modseq: int | None) -> MailboxChanges:
        """What changed in the selected folder since ``changedsince_modseq`` (see :class:`MailboxChanges`).

        QRESYNC: ``UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED)`` gives changed flags and expunged
        UIDs in one round trip. CONDSTORE only: the changed flags, plus every UID for the caller to
        diff. Neither (or no ``changedsince``): every message's flags and UID (full resync).
        """
        selected = self._require_selected()
        caps = self._capabilities
        if changedsince_modseq is None or not caps.condstore or selected.highestmodseq is None:
            states = await self.uid_fetch_flags(None) if selected.exists else []
            uids = tuple(s.uid for s in states)
            return MailboxChanges(selected.highestmodseq, tuple(states), None, uids, full=True)
        modifier = f"(CHANGEDSINCE {int(changedsince_modseq)}{' VANISHED' if caps.qresync else ''})"
        command = FetchCommand(
            self._protocol.new_tag(), "1:*", "(UID FLAGS)", modifier, prefix="UID", loop=self._protocol.loop
        )
        response = await self._execute(command)
        self._check(response, "UID FETCH")
        changed: list[FlagState] = []
        vanished: list[int] = []
        for group in group_responses(response.lines[:-1]):
            values = parse_values(group)
            if _is_fetch(values):
                fetched = pairs(as_list(values[2]))
                if "UID" in fetched:
                    changed.append(_flag_state(as_int(fetched["UID"]), fetched))
            elif values and isinstance(values[0], str) and values[0].upper() == "VANISHED":
                vanished.extend(parse_uid_set(as_text(values[-1])))
        if caps.qresync:
            return MailboxChanges(selected.highestmodseq, tuple(changed), tuple(sorted(set(vanished))), None)
        return MailboxChanges(selected.highestmodseq, tuple(changed), None, tuple(await self.uid_search("ALL")))

    @_parsing
    async def uid_fetch_raw(self, uid: int) -> bytes:
        """The whole message (``BODY.PEEK[]``: does not set ``\\Seen``). :class:`MessageNotFoundError` if gone."""
        self._require_selected()
        for got, fetched in await self._uid_fetch([uid], "(UID BODY.PEEK[])"):
            if got == uid:
                data = _section(fetched, "BODY[")
                if data is not None:
                    return data
        raise MessageNotFoundError()

    async def uid_fetch_part_stream(
        self, uid: int, part_id: str, *, chunk_size: int = DEFAULT_CHUNK, decoded: bool = False
    ) -> AsyncIterator[bytes]:
        """Chunks of one MIME part (``BODY.PEEK[<part>]<offset.length>``), never the part whole.

        ``decoded`` asks the server to undo the transfer encoding (``BINARY``, RFC 3516) when it can;
        otherwise the part comes as stored (base64 for most attachments). The session stays busy
        between chunks: consume the iterator inside the pool's ``session()`` block.
        """
        self._require_selected()
        if _PART.fullmatch(part_id) is None:
            raise MessageNotFoundError()
        if not 1024 <= chunk_size <= 16 * 1024 * 1024:
            raise ValueError("chunk_size must be within 1 KiB..16 MiB")
        binary = decoded and "BINARY" in self._capabilities
        section, key = (f"BINARY.PEEK[{part_id}]", "BINARY[") if binary else (f"BODY.PEEK[{part_id}]", "BODY[")
        offset = 0
        while True:
            data: bytes | None = None
            seen = False
            for got, fetched in await self._uid_fetch([uid], f"(UID {section}<{offset}.{chunk_size}>)"):
                if got == uid:
                    seen = True
                    data = _section(fetched, key)
            if not seen or (data is None and offset == 0):
                raise MessageNotFoundError()
            if data:
                yield data
            if data is None or len(data) < chunk_size:
                return
            offset += len(data)

    # --- changing ------------------------------------------------------------------------------
    @_parsing
    async def uid_store_flags(
        self, uids: Sequence[int], mode: FlagMode, flags: Iterable[str], *, unchanged_since: int | None = None
    ) -> list[FlagState]:
        """Add, remove or replace flags; returns the new flags of the messages the server changed.

        ``unchanged_since`` (CONDSTORE) makes the store conditional: a message modified since that
        modseq is left alone (the server reports it as MODIFIED and it is absent from the result).
        """
        self._require_selected()
        names = list(flags)
        for flag in names:
            if _FLAG.fullmatch(flag) is None:
                raise ValueError("bad flag name")
        args = [format_uid_set(uids)]
        if unchanged_since is not None and self._capabilities.condstore:
            args.append(f"(UNCHANGEDSINCE {int(unchanged_since)})")
        args += [_STORE_OP[mode], "(" + " ".join(names) + ")"]
        command = aio.Command(
            "STORE", self._protocol.new_tag(), *args, prefix="UID", untagged_resp_name="FETCH", loop=self._protocol.loop
        )
        response = await self._execute(command)
        self._check(response, "UID STORE")
        wanted = set(uids)
        states: dict[int, FlagState] = {}
        for group in group_responses(response.lines[:-1]):
            values = parse_values(group)
            if _is_fetch(values):
                fetched = pairs(as_list(values[2]))
                if "UID" in fetched and "FLAGS" in fetched:
                    uid = as_int(fetched["UID"])
                    if uid in wanted:
                        states[uid] = _flag_state(uid, fetched)
        return [states[u] for u in sorted(states)]

    @_parsing
    async def uid_move(self, uids: Sequence[int], folder: str) -> CopiedUids:
        """Move messages (``MOVE``, RFC 6851; else COPY + ``\\Deleted`` + ``UID EXPUNGE`` of just them)."""
        self._require_selected()
        uid_set = format_uid_set(uids)
        target = quote_mailbox(folder)
        loop = self._protocol.loop
        if self._capabilities.move:
            response = await self._execute(
                aio.Command("MOVE", self._protocol.new_tag(), uid_set, target, prefix="UID", loop=loop)
            )
            self._check(response, "UID MOVE")
            return _copied(response)
        if not self._capabilities.uidplus:
            # a plain EXPUNGE would also remove messages someone else marked \Deleted
            raise OperatorProtocolError("operator offers neither MOVE nor UIDPLUS")
        response = await self._execute(
            aio.Command("COPY", self._protocol.new_tag(), uid_set, target, prefix="UID", loop=loop)
        )
        self._check(response, "UID COPY")
        copied = _copied(response)
        await self.uid_expunge(uids)
        return copied

    @_parsing
    async def uid_expunge(self, uids: Sequence[int]) -> list[int]:
        """Remove these messages for good: ``\\Deleted`` then ``UID EXPUNGE`` of only these UIDs (UIDPLUS)."""
        self._require_selected()
        if not self._capabilities.uidplus:
            raise OperatorProtocolError("operator does not offer UIDPLUS")
        await self.uid_store_flags(uids, "add", ["\\Deleted"])
        uid_set = format_uid_set(uids)
        response = await self._execute(
            aio.Command("EXPUNGE", self._protocol.new_tag(), uid_set, prefix="UID", loop=self._protocol.loop)
        )
        self._check(response, "UID EXPUNGE")
        vanished: set[int] = set()
        for group in group_responses(response.lines[:-1]):
            words = group[0].decode("ascii", "replace").split()
            if words and words[0].upper() == "VANISHED":
                vanished.update(parse_uid_set(words[-1]))
        return sorted(vanished) if vanished else sorted(set(uids))

    @_parsing
    async def append(
        self,
        folder: str,
        raw: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: dt.datetime | None = None,
    ) -> AppendedMessage:
        """Store a message in a folder (a sent copy in ``\\Sent``); ``raw`` must use CRLF line ends."""
        names = list(flags)
        for flag in names:
            if _FLAG.fullmatch(flag) is None:
                raise ValueError("bad flag name")
        args = [quote_mailbox(folder)]
        if names:
            args.append("(" + " ".join(names) + ")")
        if internal_date is not None:
            args.append(aio.time2internaldate(internal_date))
        args.append(f"{{{len(raw)}}}")
        self._protocol.literal_data = raw
        command = aio.Command("APPEND", self._protocol.new_tag(), *args, loop=self._protocol.loop)
        response = await self._execute(command)
        self._check(response, "APPEND")
        code = response_code(_tagged_text(response))
        if code is not None and code[0] == "APPENDUID":
            parts = code[1].split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                return AppendedMessage(int(parts[0]), int(parts[1]))
        return AppendedMessage(None, None)

    # --- plumbing -------------------------------------------------------------------------------
    def _require_selected(self) -> SelectedMailbox:
        if self._selected is None:
            raise RuntimeError("select() a folder first")
        return self._selected

    async def _uid_fetch(self, uids: list[int] | None, items: str) -> list[tuple[int, dict[str, Value]]]:
        if uids is not None and not uids:
            return []
        uid_set = "1:*" if uids is None else format_uid_set(uids)
        command = FetchCommand(self._protocol.new_tag(), uid_set, items, prefix="UID", loop=self._protocol.loop)
        response = await self._execute(command)
        self._check(response, "UID FETCH")
        wanted = None if uids is None else set(uids)
        out: list[tuple[int, dict[str, Value]]] = []
        try:
            for group in group_responses(response.lines[:-1]):
                values = parse_values(group)
                if _is_fetch(values):
                    fetched = pairs(as_list(values[2]))
                    if "UID" not in fetched:
                        continue  # an unsolicited flag update of another message
                    uid = as_int(fetched["UID"])
                    if wanted is None or uid in wanted:
                        out.append((uid, fetched))
        except ImapParseError as exc:
            raise OperatorProtocolError("malformed FETCH response") from exc
        return out

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
        code = response_code(_tagged_text(response))
        name = code[0] if code else None
        if name in _NOT_FOUND_CODES:
            raise FolderNotFoundError()
        if name in _TRANSIENT_CODES:
            raise OperatorUnavailableError(1, f"{what}: operator temporarily unable")
        raise OperatorCommandError(what, str(response.result), name)


# --- response helpers ---------------------------------------------------------------------------


def _own_version() -> str:
    try:
        return importlib.metadata.version("mss-companion")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _is_fetch(values: list[Value]) -> bool:
    """``<seq> FETCH (…)``."""
    return len(values) >= 3 and isinstance(values[1], str) and values[1].upper() == "FETCH"


def _tagged_text(response: Any) -> bytes:
    last = response.lines[-1] if response.lines else b""
    return bytes(last)


def _flags(value: Value) -> frozenset[str]:
    return frozenset(as_text(v) for v in as_list(value) if v is not None)


def _modseq(fetched: dict[str, Value]) -> int | None:
    raw = fetched.get("MODSEQ")
    items = as_list(raw) if raw is not None else []
    return as_int(items[0]) if items else None


def _flag_state(uid: int, fetched: dict[str, Value]) -> FlagState:
    return FlagState(uid=uid, flags=_flags(fetched.get("FLAGS")), modseq=_modseq(fetched))


def _section(fetched: dict[str, Value], prefix: str) -> bytes | None:
    for key, value in fetched.items():
        if key.startswith(prefix):
            if isinstance(value, bytes):
                return value
            return None
    return None


def _summary(uid: int, fetched: dict[str, Value]) -> MessageSummary:
    structure = None
    if fetched.get("BODYSTRUCTURE") is not None:
        try:
            structure = parse_body_structure(fetched["BODYSTRUCTURE"])
        except ImapParseError:
            log.warning("operator.bodystructure_unreadable", uid=uid)
    size = fetched.get("RFC822.SIZE")
    return MessageSummary(
        uid=uid,
        flags=_flags(fetched.get("FLAGS")),
        internal_date=parse_internal_date(fetched.get("INTERNALDATE")),
        size=None if size is None else as_int(size),
        headers=_section(fetched, "BODY[HEADER.FIELDS") or b"",
        body_structure=structure,
        modseq=_modseq(fetched),
    )


def _parse_select(mailbox: str, response: Any, *, readonly: bool) -> SelectedMailbox:
    exists = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    flags: frozenset[str] = frozenset()
    permanent: frozenset[str] = frozenset()
    for group in group_responses(response.lines[:-1]):
        text = group[0]
        match = _EXISTS.match(text)
        if match:
            exists = int(match.group(1))
            continue
        upper = text[:6].upper()
        if upper.startswith(b"FLAGS"):
            values = parse_values(group)
            flags = _flags(values[1]) if len(values) > 1 else frozenset()
            continue
        if not upper.startswith(b"OK"):
            continue
        code = response_code(text)
        if code is None:
            continue
        name, args = code
        if name == "UIDVALIDITY":
            uidvalidity = as_int(args)
        elif name == "UIDNEXT":
            uidnext = as_int(args)
        elif name == "HIGHESTMODSEQ":
            highestmodseq = as_int(args)
        elif name == "PERMANENTFLAGS":
            permanent = frozenset(args.strip("()").split())
    tagged = response_code(_tagged_text(response))
    if tagged is not None and tagged[0] == "READ-ONLY":
        readonly = True
    if uidvalidity is None:
        raise OperatorProtocolError("SELECT without UIDVALIDITY")
    return SelectedMailbox(
        name=mailbox,
        uidvalidity=uidvalidity,
        uidnext=uidnext,
        exists=exists,
        highestmodseq=highestmodseq,
        readonly=readonly,
        flags=flags,
        permanent_flags=permanent,
    )


def _mailbox_name(value: Value) -> str:
    name = decode_mailbox(as_text(value))
    return "INBOX" if name.upper() == "INBOX" else name


def _parse_list_entry(values: list[Value]) -> Folder:
    attributes = frozenset(as_text(a) for a in as_list(values[1]) if a is not None)
    delimiter = None if values[2] is None else as_text(values[2])
    special = next((_SPECIAL_BY_UPPER[a.upper()] for a in attributes if a.upper() in _SPECIAL_BY_UPPER), None)
    return Folder(name=_mailbox_name(values[3]), delimiter=delimiter, attributes=attributes, special_use=special)


def _parse_status(values: list[Value]) -> tuple[str, int | None, int | None]:
    items = pairs(as_list(values[2]))
    messages = items.get("MESSAGES")
    unseen = items.get("UNSEEN")
    return (
        _mailbox_name(values[1]),
        None if messages is None else as_int(messages),
        None if unseen is None else as_int(unseen),
    )


def _copied(response: Any) -> CopiedUids:
    for item in response.lines:
        if not isinstance(item, bytes):
            continue
        code = response_code(item)
        if code is not None and code[0] == "COPYUID":
            parts = code[1].split()
            if len(parts) == 3:
                source, dest = parse_uid_set(parts[1]), parse_uid_set(parts[2])
                if len(source) == len(dest):
                    return CopiedUids(int(parts[0]), dict(zip(source, dest, strict=True)))
    return CopiedUids(None, {})
