"""The mail API's logic: the operator's mailboxes, relayed for one device, audited, never stored.

Every call opens (or reuses) a pooled IMAP session *as the acting professional* on that device, so
the operator traces who acted on an organisational mailbox. Message content passes through memory
on its way to the phone and is dropped; the audit trail records who did what to which UID, never
a subject, an address or a body.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import msgspec

from backend.device_auth import AuthenticatedDevice
from backend.mail.access import MailboxAccess, MailboxDirectory
from backend.mail.ids import Cursor, FolderState, MessageRef
from backend.mail.large_message import read_large
from backend.mail.mime import (
    Address,
    OutgoingAttachment,
    adecode_part_stream,
    build_mdn,
    compose,
    content_disposition_header,
    forward_attachment,
    new_message_id,
    parse_message,
    parse_summary,
    reply_headers,
)
from backend.mail.operator.connector import OperatorConnector
from backend.mail.operator.imap_session import ImapSession
from backend.mail.operator.models import FlagState, Folder, SelectedMailbox
from backend.mail.operator.models import MessageSummary as ImapSummary
from backend.mail.operator.mutf7 import quote
from backend.mail.trust import TrustSpace
from backend.mail.views import detail_view, flag_update, summary_view
from contracts.errors import ErrorCode
from contracts.mail import (
    Changes,
    FlagsChange,
    FolderRole,
    FolderView,
    MailboxView,
    MessageDetail,
    MessagePage,
    MessageSummary,
    OutgoingMessage,
    ReplyMode,
    SentMessage,
)
from core.audit import AuditTrail
from core.ephemeral import Ephemeral
from core.errors import DomainError, NotFoundError
from core.settings import Settings

#: Messages up to this size are fetched whole for reading; bigger ones part by part.
WHOLE_MESSAGE_MAX = 4 * 1024 * 1024
#: How long a UID snapshot (servers without CONDSTORE) stays usable as a sync state.
SNAPSHOT_TTL_S = 30 * 24 * 3600
CHANGES_LIMIT = 200

_ROLES = {
    "\\Sent": FolderRole.SENT,
    "\\Trash": FolderRole.TRASH,
    "\\Drafts": FolderRole.DRAFTS,
    "\\Junk": FolderRole.JUNK,
    "\\Archive": FolderRole.ARCHIVE,
}


@dataclass(frozen=True, slots=True)
class AttachmentStream:
    filename: str
    content_type: str
    disposition: str
    chunks: AsyncIterator[bytes]


def _role(folder: Folder) -> FolderRole:
    if folder.name.upper() == "INBOX":
        return FolderRole.INBOX
    return _ROLES.get(folder.special_use or "", FolderRole.OTHER)


class MailService:
    def __init__(
        self,
        *,
        settings: Settings,
        mailboxes: MailboxDirectory,
        connector: OperatorConnector,
        trust: TrustSpace,
        audit: AuditTrail,
        ephemeral: Ephemeral,
    ) -> None:
        self._settings = settings
        self._operator_settings = settings.operator
        self._mailboxes = mailboxes
        self._connector = connector
        self._trust = trust
        self._audit = audit
        self._eph = ephemeral

    # helpers ------------------------------------------------------------------------------------

    async def _record(
        self,
        action: str,
        device: AuthenticatedDevice,
        access: MailboxAccess,
        target: str | None = None,
        **details: object,
    ) -> None:
        await self._audit.record(
            action,
            actor=device.idnat,
            structure_id=access.audit_chain or device.structure_id,
            device_id=device.device_id,
            target=f"{access.id}:{target}" if target else str(access.id),
            details=dict(details),
        )

    def _imap(self, device: AuthenticatedDevice, access: MailboxAccess) -> AbstractAsyncContextManager[ImapSession]:
        """A pooled operator session for this mailbox, as this professional on this device."""
        return self._connector.session(mailbox=access.address, idnat=device.idnat, device_id=str(device.device_id))

    @staticmethod
    async def _select(imap: ImapSession, ref: MessageRef, *, readonly: bool = True) -> SelectedMailbox:
        selected = await imap.select(ref.folder, readonly=readonly)
        if selected.uidvalidity != ref.uidvalidity:
            raise NotFoundError(ErrorCode.MESSAGE_NOT_FOUND, "the message is gone (folder renumbered)")
        return selected

    async def _summaries(
        self, imap: ImapSession, folder: str, uidvalidity: int, uids: Sequence[int]
    ) -> list[MessageSummary]:
        if not uids:
            return []
        fetched = await imap.uid_fetch_summaries(list(uids))
        return sorted((self._summary(folder, uidvalidity, item) for item in fetched), key=lambda s: -s.uid)

    @staticmethod
    def _summary(folder: str, uidvalidity: int, item: ImapSummary) -> MessageSummary:
        parsed = parse_summary(
            item.headers,
            size=item.size or 0,
            flags=item.flags,
            uid=item.uid,
            has_attachments_hint=item.has_attachments if item.body_structure is not None else None,
            internal_date=item.internal_date,
        )
        return summary_view(MessageRef(folder, uidvalidity, item.uid), parsed, item.flags)

    # reading ------------------------------------------------------------------------------------

    async def mailboxes(self, device: AuthenticatedDevice) -> list[MailboxView]:
        ids = sorted({scope.split(":")[1] for scope in device.scopes if scope.startswith("mbx:")})
        views = []
        for mailbox_id in ids:
            access = await self._mailboxes.access(
                device, mailbox_id, "read" if f"mbx:{mailbox_id}:read" in device.scopes else "send"
            )
            views.append(
                MailboxView(
                    id=str(access.id),
                    address=access.address,
                    kind=access.kind,
                    can_read=access.can_read,
                    can_send=access.can_send,
                )
            )
        return views

    async def folders(self, device: AuthenticatedDevice, mailbox_id: str) -> list[FolderView]:
        access = await self._mailboxes.access(device, mailbox_id, "read")
        async with self._imap(device, access) as imap:
            found = await imap.list_folders(with_counts=True)
        await self._record("mail.folders", device, access)
        return [
            FolderView(name=f.name, role=_role(f), total=f.messages or 0, unseen=f.unseen or 0)
            for f in found
            if f.selectable
        ]

    async def list_messages(
        self, device: AuthenticatedDevice, mailbox_id: str, *, folder: str, cursor: str | None, limit: int
    ) -> MessagePage:
        access = await self._mailboxes.access(device, mailbox_id, "read")
        async with self._imap(device, access) as imap:
            selected = await imap.select(folder, readonly=True)
            page = Cursor.decode(cursor) if cursor else None
            if page is not None and (page.folder != folder or page.uidvalidity != selected.uidvalidity):
                raise DomainError(ErrorCode.INVALID_CURSOR, "the folder changed, start again")
            top = min(page.near_seq - 1, selected.exists) if page else selected.exists
            uids: list[int] = []
            low = top + 1
            while len(uids) < limit and low > 1:
                # Sequence numbers find the newest messages without listing the whole folder; the UID
                # guard keeps the page right when messages were deleted since the previous page.
                high, low = low - 1, max(1, low - (limit - len(uids)))
                found = await imap.uid_search(f"{low}:{high}")
                uids += [u for u in found if page is None or u < page.before_uid]
            uids = sorted(uids, reverse=True)[:limit]
            items = await self._summaries(imap, folder, selected.uidvalidity, uids)
            state = await self._state(imap, selected)
        next_cursor = (
            Cursor(folder, selected.uidvalidity, before_uid=min(uids), near_seq=low).encode()
            if uids and low > 1
            else None
        )
        await self._record("mail.list", device, access, count=len(items))
        return MessagePage(items=items, next_cursor=next_cursor, state=state.encode())

    async def _state(self, imap: ImapSession, selected: SelectedMailbox) -> FolderState:
        if selected.highestmodseq is not None and imap.capabilities.qresync:
            return FolderState(selected.name, selected.uidvalidity, selected.highestmodseq, selected.uidnext or 0)
        # No QRESYNC: keep the UID list server-side so deletions can be told later (never content).
        snapshot = secrets.token_urlsafe(12)
        uids = await imap.uid_search("ALL")
        await self._eph.set(f"sync:snap:{snapshot}", msgspec.msgpack.encode(uids), SNAPSHOT_TTL_S)
        return FolderState(
            selected.name, selected.uidvalidity, selected.highestmodseq or 0, selected.uidnext or 0, snapshot
        )

    async def changes(self, device: AuthenticatedDevice, mailbox_id: str, *, since: str) -> Changes:
        """What changed since a state: created, flag updates, and destroyed ids that never come back."""
        access = await self._mailboxes.access(device, mailbox_id, "read")
        old = FolderState.decode(since)
        async with self._imap(device, access) as imap:
            selected = await imap.select(old.folder, readonly=True)
            if selected.uidvalidity != old.uidvalidity:
                raise DomainError(ErrorCode.INVALID_STATE, "the folder was renumbered: resynchronise it")
            if old.snapshot is None and imap.capabilities.qresync:
                created_uids, updated, destroyed = await self._changes_qresync(imap, old)
            else:
                created_uids, updated, destroyed = await self._changes_snapshot(imap, old)
            has_more = len(created_uids) > CHANGES_LIMIT
            created_uids = sorted(created_uids)[:CHANGES_LIMIT]
            created = await self._summaries(imap, old.folder, old.uidvalidity, created_uids)
            if has_more:
                # Report the rest next time: same modseq, the UID horizon moved past what was sent.
                state = FolderState(old.folder, old.uidvalidity, old.modseq, max(created_uids) + 1, old.snapshot)
            else:
                state = await self._state(imap, selected)
        refs = {u: MessageRef(old.folder, old.uidvalidity, u) for u in {*destroyed, *(f.uid for f in updated)}}
        await self._record(
            "mail.changes", device, access, created=len(created), updated=len(updated), destroyed=len(destroyed)
        )
        return Changes(
            created=created,
            updated=[flag_update(refs[f.uid], f.flags) for f in updated],
            destroyed=[refs[u].encode() for u in sorted(destroyed)],
            state=state.encode(),
            has_more=has_more,
        )

    @staticmethod
    async def _changes_qresync(imap: ImapSession, old: FolderState) -> tuple[list[int], list[FlagState], list[int]]:
        found = await imap.uid_fetch_changes(old.modseq)
        created = [c.uid for c in found.changed if c.uid >= old.uidnext]
        updated = [c for c in found.changed if c.uid < old.uidnext]
        vanished = found.vanished if found.vanished is not None else ()
        destroyed = [u for u in vanished if u < old.uidnext]
        return created, updated, destroyed

    async def _changes_snapshot(
        self, imap: ImapSession, old: FolderState
    ) -> tuple[list[int], list[FlagState], list[int]]:
        raw = await self._eph.get(f"sync:snap:{old.snapshot}") if old.snapshot else None
        if raw is None:
            raise DomainError(ErrorCode.INVALID_STATE, "the sync state expired: resynchronise the folder")
        known = set(msgspec.msgpack.decode(raw, type=list[int]))
        now = set(await imap.uid_search("ALL"))
        still = sorted(known & now)
        updated = list(await imap.uid_fetch_flags(still)) if still else []
        return sorted(now - known), updated, sorted(known - now)

    async def detail(self, device: AuthenticatedDevice, mailbox_id: str, message_id: str) -> MessageDetail:
        access = await self._mailboxes.access(device, mailbox_id, "read")
        ref = MessageRef.decode(message_id)
        async with self._imap(device, access) as imap:
            await self._select(imap, ref)
            item = await _one(imap, ref.uid)
            summary = self._summary(ref.folder, ref.uidvalidity, item)
            if (item.size or 0) > WHOLE_MESSAGE_MAX and item.body_structure is not None:
                detail = await read_large(imap, ref.uid, item.body_structure, summary)
            else:
                detail = detail_view(summary, parse_message(await imap.uid_fetch_raw(ref.uid)))
        await self._record("mail.read", device, access, target=str(ref.uid))
        return detail

    async def attachment(
        self, device: AuthenticatedDevice, mailbox_id: str, message_id: str, part: str
    ) -> AttachmentStream:
        """One attachment, streamed: the operator's chunks are decoded on the fly and never held whole."""
        access = await self._mailboxes.access(device, mailbox_id, "read")
        ref = MessageRef.decode(message_id)
        session = self._imap(device, access)
        imap = await session.__aenter__()
        try:
            await self._select(imap, ref)
            item = await _one(imap, ref.uid)
            node = item.body_structure.find(part) if item.body_structure is not None else None
            if node is None or node.is_multipart:
                raise NotFoundError(ErrorCode.NOT_FOUND, "no such attachment")
        except BaseException as exc:
            await session.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await self._record("mail.attachment", device, access, target=f"{ref.uid}:{part}")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in adecode_part_stream(imap.uid_fetch_part_stream(ref.uid, part), node.encoding):
                    yield chunk
            except BaseException as exc:
                await session.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            await session.__aexit__(None, None, None)

        filename = node.filename or f"piece-jointe-{part}"
        return AttachmentStream(
            filename=filename,
            content_type=node.content_type,
            disposition=content_disposition_header(filename),
            chunks=chunks(),
        )

    async def search(
        self,
        device: AuthenticatedDevice,
        mailbox_id: str,
        *,
        folder: str,
        sender: str | None,
        subject: str | None,
        since: dt.date | None,
        before: dt.date | None,
        limit: int,
    ) -> list[MessageSummary]:
        access = await self._mailboxes.access(device, mailbox_id, "read")
        criteria: list[str] = []
        if sender:
            criteria += ["FROM", _imap_string(sender)]
        if subject:
            criteria += ["SUBJECT", _imap_string(subject)]
        if since:
            criteria += ["SINCE", since.strftime("%d-%b-%Y")]
        if before:
            criteria += ["BEFORE", before.strftime("%d-%b-%Y")]
        async with self._imap(device, access) as imap:
            selected = await imap.select(folder, readonly=True)
            uids = sorted(await imap.uid_search(*(criteria or ["ALL"])), reverse=True)[:limit]
            items = await self._summaries(imap, folder, selected.uidvalidity, uids)
        await self._record("mail.search", device, access, count=len(items))  # never the search terms
        return items

    # changing -----------------------------------------------------------------------------------

    async def set_flags(
        self, device: AuthenticatedDevice, mailbox_id: str, message_id: str, change: FlagsChange
    ) -> None:
        access = await self._mailboxes.access(device, mailbox_id, "read")
        ref = MessageRef.decode(message_id)
        async with self._imap(device, access) as imap:
            await self._select(imap, ref, readonly=False)
            for flag, wanted in (("\\Seen", change.seen), ("\\Flagged", change.flagged)):
                if wanted is not None:
                    await imap.uid_store_flags([ref.uid], "add" if wanted else "remove", [flag])
        await self._record("mail.flags", device, access, target=str(ref.uid), seen=change.seen, flagged=change.flagged)

    async def move(self, device: AuthenticatedDevice, mailbox_id: str, message_id: str, folder: str) -> None:
        access = await self._mailboxes.access(device, mailbox_id, "read")
        ref = MessageRef.decode(message_id)
        async with self._imap(device, access) as imap:
            await self._select(imap, ref, readonly=False)
            await imap.uid_move([ref.uid], folder)
        await self._record("mail.move", device, access, target=str(ref.uid))

    async def delete(self, device: AuthenticatedDevice, mailbox_id: str, message_id: str) -> None:
        """To the Trash; from the Trash (or with no Trash), gone for good."""
        access = await self._mailboxes.access(device, mailbox_id, "read")
        ref = MessageRef.decode(message_id)
        async with self._imap(device, access) as imap:
            trash = next(
                (f.name for f in await imap.list_folders(with_counts=False) if f.special_use == "\\Trash"), None
            )
            await self._select(imap, ref, readonly=False)
            if trash is not None and trash != ref.folder:
                await imap.uid_move([ref.uid], trash)
            else:
                await imap.uid_store_flags([ref.uid], "add", ["\\Deleted"])
                await imap.uid_expunge([ref.uid])
        await self._record(
            "mail.delete", device, access, target=str(ref.uid), expunged=trash is None or trash == ref.folder
        )

    async def send(
        self,
        device: AuthenticatedDevice,
        mailbox_id: str,
        message: OutgoingMessage,
        attachments: list[OutgoingAttachment],
    ) -> SentMessage:
        access = await self._mailboxes.access(device, mailbox_id, "send")
        recipients = [a.strip() for a in [*message.to, *message.cc]]
        self._trust.require_trusted(recipients)
        in_reply_to: str | None = None
        references: list[str] = []
        subject = message.subject
        files = list(attachments)
        identity = {"mailbox": access.address, "idnat": device.idnat, "device_id": str(device.device_id)}
        if message.in_reply_to is not None:
            ref = MessageRef.decode(message.in_reply_to)
            async with self._imap(device, access) as imap:
                await self._select(imap, ref)
                original_raw = await imap.uid_fetch_raw(ref.uid)
            original = parse_message(original_raw)
            if message.mode == ReplyMode.FORWARD:
                files.append(forward_attachment(original_raw, original.headers.subject))
            else:
                headers = reply_headers(original)
                in_reply_to, references = headers.in_reply_to, headers.references
        domain = access.address.rsplit("@", 1)[1]
        message_id = new_message_id(domain)
        raw = compose(
            sender=Address(name=access.display_name, email=access.address),
            to=[Address(name="", email=a) for a in message.to],
            cc=[Address(name="", email=a) for a in message.cc],
            subject=subject,
            text=message.text,
            html=message.html,
            attachments=files,
            in_reply_to=in_reply_to,
            references=references,
            request_read_receipt=message.request_read_receipt,
            product_reference=self._operator_settings.product_reference,
            mss_codecda=message.code_cda,
            mss_ins=message.ins,
            end_patient_conversation=message.end_patient_conversation,
            message_id_domain=domain,
            acting_professional=device.idnat if access.organisational else None,
            message_id=message_id,
        )
        await self._connector.send(raw, envelope_from=access.address, recipients=recipients, **identity)
        sent_copy = await self._file_sent_copy(device, access, raw)
        await self._record(
            "mail.send",
            device,
            access,
            recipients=len(recipients),
            attachments=len(files),
            receipt=message.request_read_receipt,
        )
        return SentMessage(message_id=message_id, recipients=len(recipients), sent_copy=sent_copy)

    async def _file_sent_copy(self, device: AuthenticatedDevice, access: MailboxAccess, raw: bytes) -> str | None:
        async with self._imap(device, access) as imap:
            sent = next((f.name for f in await imap.list_folders(with_counts=False) if f.special_use == "\\Sent"), None)
            if sent is None:
                return None
            await imap.append(sent, raw, flags=["\\Seen"])
        return sent

    async def receipt(
        self, device: AuthenticatedDevice, mailbox_id: str, message_id: str, disposition: str
    ) -> SentMessage:
        """An RFC 8098 read receipt, only where the sender asked for one."""
        access = await self._mailboxes.access(device, mailbox_id, "send")
        ref = MessageRef.decode(message_id)
        identity = {"mailbox": access.address, "idnat": device.idnat, "device_id": str(device.device_id)}
        async with self._imap(device, access) as imap:
            await self._select(imap, ref)
            original = parse_message(await imap.uid_fetch_raw(ref.uid))
        targets = [a.email for a in original.headers.disposition_notification_to]
        domain = access.address.rsplit("@", 1)[1]
        raw = build_mdn(
            original=original,
            reporting_ua=f"mss-companion; {domain}",
            final_recipient=access.address,
            disposition=disposition,  # type: ignore[arg-type]
            sender=Address(name=access.display_name, email=access.address),
            message_id_domain=domain,
            product_reference=self._operator_settings.product_reference,
        )
        self._trust.require_trusted(targets)
        await self._connector.send(raw, envelope_from=access.address, recipients=targets, **identity)
        async with self._imap(device, access) as imap:
            selected = await imap.select(ref.folder)
            if selected.uidvalidity == ref.uidvalidity:
                await imap.uid_store_flags([ref.uid], "add", ["$MDNSent"])
        await self._record("mail.receipt", device, access, target=str(ref.uid), disposition=disposition)
        return SentMessage(message_id="", recipients=len(targets), sent_copy=None)


async def _one(imap: ImapSession, uid: int) -> ImapSummary:
    found = [item for item in await imap.uid_fetch_summaries([uid]) if item.uid == uid]
    if not found:
        raise NotFoundError(ErrorCode.MESSAGE_NOT_FOUND, "no such message")
    return found[0]


def _imap_string(value: str) -> str:
    """Search terms as IMAP strings (CR/LF never reach here: the route refuses them)."""
    return quote(value)
