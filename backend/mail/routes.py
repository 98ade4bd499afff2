"""Mail API (phone side): every call carries the device's access token and a DPoP proof."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from backend.device_auth import AuthenticatedDevice
from backend.mail.directory import Directory, DirectoryPage
from backend.mail.mime import OutgoingAttachment
from backend.mail.service import MailService
from contracts.errors import ErrorCode
from contracts.mail import (
    Changes,
    FlagsChange,
    FolderView,
    MailboxView,
    MessageDetail,
    MessagePage,
    MessageSummary,
    MoveRequest,
    OutgoingMessage,
    ReceiptRequest,
    SentMessage,
)
from core.errors import DomainError
from core.settings import Settings

Folder = Annotated[str, QueryParameter(min_length=1, max_length=255, pattern=r"^[^\r\n\x00]+$")]
Token = Annotated[str, QueryParameter(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_.=-]+$")]
OptToken = Annotated[str | None, QueryParameter(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_.=-]+$")]
OptText = Annotated[str | None, QueryParameter(min_length=1, max_length=200, pattern=r"^[^\r\n\x00]+$")]
OptDate = Annotated[dt.date | None, QueryParameter()]
_PART = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,4}){0,8}$")


@get("/mailboxes", summary="Mailboxes this device may use (nominative, organisational)")
async def mailboxes(
    device: NamedDependency[AuthenticatedDevice], mail: NamedDependency[MailService]
) -> list[MailboxView]:
    return await mail.mailboxes(device)


@get("/mailboxes/{mailbox_id:str}/folders", summary="Folders with their counts")
async def folders(
    mailbox_id: FromPath[str], device: NamedDependency[AuthenticatedDevice], mail: NamedDependency[MailService]
) -> list[FolderView]:
    return await mail.folders(device, mailbox_id)


@get("/mailboxes/{mailbox_id:str}/messages", summary="Newest first, cursor-paginated; the page carries a sync state")
async def list_messages(
    mailbox_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
    folder: Folder = "INBOX",
    cursor: OptToken = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> MessagePage:
    return await mail.list_messages(device, mailbox_id, folder=folder, cursor=cursor, limit=limit)


@get("/mailboxes/{mailbox_id:str}/changes", summary="Created, updated and destroyed messages since a state")
async def changes(
    mailbox_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
    since: OptToken = None,
) -> Changes:
    # ``since`` is checked after authentication: an anonymous caller learns nothing of the API's shape.
    if since is None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "the since parameter (a sync state) is required")
    return await mail.changes(device, mailbox_id, since=since)


@get("/mailboxes/{mailbox_id:str}/search", summary="Server-side search (sender, subject, dates)")
async def search(
    mailbox_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
    folder: Folder = "INBOX",
    sender: Annotated[
        str | None, QueryParameter(name="from", min_length=1, max_length=200, pattern=r"^[^\r\n\x00]+$")
    ] = None,
    subject: OptText = None,
    since: OptDate = None,
    before: OptDate = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> list[MessageSummary]:
    return await mail.search(
        device, mailbox_id, folder=folder, sender=sender, subject=subject, since=since, before=before, limit=limit
    )


@get("/mailboxes/{mailbox_id:str}/messages/{message_id:str}", summary="A message: text, sanitised HTML, attachments")
async def message(
    mailbox_id: FromPath[str],
    message_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
) -> MessageDetail:
    return await mail.detail(device, mailbox_id, message_id)


@get(
    "/mailboxes/{mailbox_id:str}/messages/{message_id:str}/attachments/{part:str}",
    summary="An attachment, streamed with its type and name",
)
async def attachment(
    mailbox_id: FromPath[str],
    message_id: FromPath[str],
    part: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
) -> Stream:
    if not _PART.match(part):
        raise DomainError(ErrorCode.NOT_FOUND, "no such attachment")
    found = await mail.attachment(device, mailbox_id, message_id, part)
    return Stream(
        found.chunks,
        media_type=found.content_type if "/" in found.content_type else "application/octet-stream",
        headers={"Content-Disposition": found.disposition, "X-Content-Type-Options": "nosniff"},
    )


@patch("/mailboxes/{mailbox_id:str}/messages/{message_id:str}", status_code=204, summary="Seen / flagged")
async def set_flags(
    mailbox_id: FromPath[str],
    message_id: FromPath[str],
    data: JSONBody[FlagsChange],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
) -> None:
    await mail.set_flags(device, mailbox_id, message_id, data)


@post("/mailboxes/{mailbox_id:str}/messages/{message_id:str}/move", status_code=204, summary="Move to a folder")
async def move(
    mailbox_id: FromPath[str],
    message_id: FromPath[str],
    data: JSONBody[MoveRequest],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
) -> None:
    await mail.move(device, mailbox_id, message_id, data.folder)


@delete("/mailboxes/{mailbox_id:str}/messages/{message_id:str}", status_code=204, summary="To the Trash, or for good")
async def remove(
    mailbox_id: FromPath[str],
    message_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
) -> None:
    await mail.delete(device, mailbox_id, message_id)


@post(
    "/mailboxes/{mailbox_id:str}/messages/{message_id:str}/receipt",
    status_code=202,
    summary="Send the read receipt (RFC 8098) the sender asked for",
)
async def receipt(
    mailbox_id: FromPath[str],
    message_id: FromPath[str],
    data: JSONBody[ReceiptRequest],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
) -> SentMessage:
    if data.disposition not in {"displayed", "deleted"}:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "disposition is displayed or deleted")
    return await mail.receipt(device, mailbox_id, message_id, data.disposition)


async def _outgoing(
    request: Request[Any, Any, Any], settings: Settings
) -> tuple[OutgoingMessage, list[OutgoingAttachment]]:
    """JSON, or multipart with a ``message`` JSON field and ``attachments`` files."""
    if request.content_type[0] == RequestEncodingType.JSON:
        return msgspec.json.decode(await request.body(), type=OutgoingMessage), []
    form = await request.form()
    raw = form.get("message")
    if not isinstance(raw, str):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "the message field is missing")
    message = msgspec.json.decode(raw, type=OutgoingMessage)
    files: list[OutgoingAttachment] = []
    total = 0
    for upload in form.getall("attachments") if hasattr(form, "getall") else []:
        if not isinstance(upload, UploadFile):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "attachments must be files")
        data = await upload.read()
        total += len(data)
        if total > settings.operator.max_attachment_bytes:
            raise DomainError(ErrorCode.PAYLOAD_TOO_LARGE, "attachments exceed the size limit")
        files.append(
            OutgoingAttachment(
                upload.filename or "piece-jointe", upload.content_type or "application/octet-stream", data
            )
        )
    return message, files


@post(
    "/mailboxes/{mailbox_id:str}/messages",
    status_code=201,
    summary="Send (new, reply, reply-all, forward), JSON or multipart with attachments",
    request_max_body_size=16 * 1024 * 1024,
)
async def send(
    request: Request[Any, Any, Any],
    mailbox_id: FromPath[str],
    device: NamedDependency[AuthenticatedDevice],
    mail: NamedDependency[MailService],
    settings: NamedDependency[Settings],
) -> SentMessage:
    try:
        message, files = await _outgoing(request, settings)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise DomainError(ErrorCode.VALIDATION_FAILED, "the message is not valid") from None
    return await mail.send(device, mailbox_id, message, files)


@get("/directory", summary="Annuaire Santé: professionals and structures with their MSSanté addresses")
async def directory_search(
    device: NamedDependency[AuthenticatedDevice],
    directory: NamedDependency[Directory],
    name: OptText = None,
    profession: OptText = None,
    city: OptText = None,
    postal_code: Annotated[str | None, QueryParameter(pattern=r"^[0-9AB]{2,5}$")] = None,
    address: OptText = None,
    kind: Annotated[str, QueryParameter(pattern=r"^(person|structure|any)$")] = "any",
    limit: Annotated[int, QueryParameter(ge=1, le=50)] = 20,
    page: OptToken = None,
) -> DirectoryPage:
    del device  # authenticated: the directory is for enrolled professionals only
    return await directory.search(
        name=name,
        profession=profession,
        city=city,
        postal_code=postal_code,
        address=address,
        kind=kind,  # type: ignore[arg-type]
        limit=limit,
        page_token=page,
    )


mail_router = Router(
    path="/api/v1",
    route_handlers=[
        mailboxes,
        folders,
        list_messages,
        changes,
        search,
        message,
        attachment,
        set_flags,
        move,
        remove,
        receipt,
        send,
        directory_search,
    ],
    tags=["mail"],
)
