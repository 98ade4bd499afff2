"""One authenticated IMAP session with the operator: the helpers the mail API builds on.

:class:`ImapSession` adds to :class:`ImapConnection` (connect, log in, ``ID``, timeouts) the folder,
search, fetch and change commands, each returning typed results (:mod:`models`). Big parts are
streamed in partial fetches (:meth:`ImapSession.uid_fetch_part_stream`), never loaded whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Literal

from aioimaplib import aioimaplib as aio

from backend.mail.operator.errors import FolderNotFoundError, MessageNotFoundError, OperatorProtocolError
from backend.mail.operator.idle import Idler
from backend.mail.operator.imap_connection import ImapConnection, parsing
from backend.mail.operator.imap_parse import (
    ImapParseError,
    Value,
    as_int,
    as_list,
    as_text,
    format_uid_set,
    group_responses,
    pairs,
    parse_uid_set,
    parse_values,
    response_code,
)
from backend.mail.operator.imap_protocol import FetchCommand
from backend.mail.operator.imap_results import (
    copied_from,
    flag_state,
    folder_from_list,
    is_fetch,
    section,
    selected_from,
    status_from,
    summary_from,
    tagged_text,
)
from backend.mail.operator.models import (
    SUMMARY_HEADERS,
    AppendedMessage,
    CopiedUids,
    FlagState,
    Folder,
    MailboxChanges,
    MessageSummary,
    SelectedMailbox,
)
from backend.mail.operator.mutf7 import quote_mailbox

#: Partial fetches of this size stream a part: a 10 MB attachment is ~40 round trips, never whole.
DEFAULT_CHUNK = 256 * 1024
#: UIDs per FETCH when listing summaries: bounds one response's size.
SUMMARY_BATCH = 200

_FLAG = re.compile(r"\\?[A-Za-z0-9$_.\-]{1,64}")
_PART = re.compile(r"(?:[1-9][0-9]{0,3}(?:\.[1-9][0-9]{0,3}){0,15})(?:\.(?:HEADER|TEXT|MIME))?|HEADER|TEXT")

FlagMode = Literal["add", "remove", "replace"]
_STORE_OP: dict[str, str] = {"add": "+FLAGS", "remove": "-FLAGS", "replace": "FLAGS"}


class ImapSession(ImapConnection):
    """Open with :meth:`ImapSession.open`; ``select()`` a folder before the ``uid_*`` helpers."""

    # --- folders --------------------------------------------------------------------------------
    @parsing
    async def select(self, mailbox: str = "INBOX", *, readonly: bool = False) -> SelectedMailbox:
        """``SELECT`` (or ``EXAMINE`` when ``readonly``): UIDVALIDITY, UIDNEXT, EXISTS, HIGHESTMODSEQ."""
        name = "EXAMINE" if readonly else "SELECT"
        command = aio.Command(name, self._protocol.new_tag(), quote_mailbox(mailbox), loop=self._protocol.loop)
        self._selected = None
        response = await self._execute(command)
        if response.result != "OK":
            self._protocol.state = aio.AUTH
            code = response_code(tagged_text(response))
            if code is None and response.result == "NO" and not await self._exists(mailbox):
                # Dovecot 2.3 answers a missing folder with a bare NO (no [NONEXISTENT])
                raise FolderNotFoundError()
            self._check(response, name)
        self._protocol.state = aio.SELECTED
        selected = selected_from(mailbox, response, readonly=readonly)
        if not self._capabilities.condstore:
            selected = dataclasses.replace(selected, highestmodseq=None)
        self._selected = selected
        return selected

    @parsing
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
                folder = folder_from_list(values)
                folders[folder.name] = folder
            elif kind == "STATUS" and len(values) >= 3:
                name, messages, unseen = status_from(values)
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

    @parsing
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
                _name, messages, unseen = status_from(values)
                return messages, unseen
        return None, None

    # --- searching and fetching ----------------------------------------------------------------
    @parsing
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

    @parsing
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
                found[uid] = summary_from(uid, fetched)
        return [found[u] for u in wanted if u in found]

    @parsing
    async def uid_fetch_flags(self, uids: Sequence[int] | None = None) -> list[FlagState]:
        """Flags (and MODSEQ) of ``uids``, or of every message when ``None``."""
        self._require_selected()
        items = "(UID FLAGS MODSEQ)" if self._capabilities.condstore else "(UID FLAGS)"
        fetched = await self._uid_fetch(None if uids is None else list(uids), items)
        return [flag_state(uid, values) for uid, values in fetched]

    @parsing
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
            if is_fetch(values):
                fetched = pairs(as_list(values[2]))
                if "UID" in fetched:
                    changed.append(flag_state(as_int(fetched["UID"]), fetched))
            elif values and isinstance(values[0], str) and values[0].upper() == "VANISHED":
                vanished.extend(parse_uid_set(as_text(values[-1])))
        if caps.qresync:
            return MailboxChanges(selected.highestmodseq, tuple(changed), tuple(sorted(set(vanished))), None)
        return MailboxChanges(selected.highestmodseq, tuple(changed), None, tuple(await self.uid_search("ALL")))

    @parsing
    async def uid_fetch_raw(self, uid: int) -> bytes:
        """The whole message (``BODY.PEEK[]``: does not set ``\\Seen``). :class:`MessageNotFoundError` if gone."""
        self._require_selected()
        for got, fetched in await self._uid_fetch([uid], "(UID BODY.PEEK[])"):
            if got == uid:
                data = section(fetched, "BODY[")
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
        spec, key = (f"BINARY.PEEK[{part_id}]", "BINARY[") if binary else (f"BODY.PEEK[{part_id}]", "BODY[")
        offset = 0
        while True:
            data: bytes | None = None
            seen = False
            for got, fetched in await self._uid_fetch([uid], f"(UID {spec}<{offset}.{chunk_size}>)"):
                if got == uid:
                    seen = True
                    data = section(fetched, key)
            if not seen or (data is None and offset == 0):
                raise MessageNotFoundError()
            if data:
                yield data
            if data is None or len(data) < chunk_size:
                return
            offset += len(data)

    # --- changing ------------------------------------------------------------------------------
    @parsing
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
            if is_fetch(values):
                fetched = pairs(as_list(values[2]))
                if "UID" in fetched and "FLAGS" in fetched:
                    uid = as_int(fetched["UID"])
                    if uid in wanted:
                        states[uid] = flag_state(uid, fetched)
        return [states[u] for u in sorted(states)]

    @parsing
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
            return copied_from(response)
        if not self._capabilities.uidplus:
            # a plain EXPUNGE would also remove messages someone else marked \Deleted
            raise OperatorProtocolError("operator offers neither MOVE nor UIDPLUS")
        response = await self._execute(
            aio.Command("COPY", self._protocol.new_tag(), uid_set, target, prefix="UID", loop=loop)
        )
        self._check(response, "UID COPY")
        copied = copied_from(response)
        await self.uid_expunge(uids)
        return copied

    @parsing
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

    @parsing
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
        code = response_code(tagged_text(response))
        if code is not None and code[0] == "APPENDUID":
            parts = code[1].split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                return AppendedMessage(int(parts[0]), int(parts[1]))
        return AppendedMessage(None, None)

    # --- IDLE -----------------------------------------------------------------------------------
    def idler(self) -> Idler:
        """IDLE (RFC 2177) on the selected folder, and the ``EXISTS`` news heard meanwhile (:mod:`idle`)."""
        return Idler(self, self._protocol, self._lock, self._execute, command_timeout_s=self._command_timeout_s)

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
                if is_fetch(values):
                    fetched = pairs(as_list(values[2]))
                    if "UID" not in fetched:
                        continue  # an unsolicited flag update of another message
                    uid = as_int(fetched["UID"])
                    if wanted is None or uid in wanted:
                        out.append((uid, fetched))
        except ImapParseError as exc:
            raise OperatorProtocolError("malformed FETCH response") from exc
        return out
