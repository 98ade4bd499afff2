"""Opaque identifiers the phone keeps: message ids, page cursors, folder states.

They name IMAP facts (folder, UIDVALIDITY, UID, MODSEQ) without exposing them as a contract: the
phone stores and returns them verbatim. A UIDVALIDITY change makes every old id and state invalid,
which is exactly IMAP's meaning ("all UIDs you knew are gone"): the phone then resynchronises.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import msgspec

from contracts.errors import ErrorCode
from core.errors import DomainError

MAX_TOKEN = 512


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if len(text) > MAX_TOKEN:
        raise ValueError("too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class MessageRef:
    folder: str
    uidvalidity: int
    uid: int

    def encode(self) -> str:
        return f"{_b64(self.folder.encode())}.{self.uidvalidity}.{self.uid}"

    @classmethod
    def decode(cls, text: str) -> MessageRef:
        try:
            folder, validity, uid = text.split(".")
            ref = cls(_unb64(folder).decode(), int(validity), int(uid))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise DomainError(ErrorCode.MESSAGE_NOT_FOUND, "unknown message id") from None
        if ref.uid <= 0 or ref.uidvalidity <= 0 or not ref.folder:
            raise DomainError(ErrorCode.MESSAGE_NOT_FOUND, "unknown message id")
        return ref


class Cursor(msgspec.Struct, array_like=True):
    """Where the next page starts: UIDs strictly below ``before_uid``, near sequence ``near_seq``."""

    folder: str
    uidvalidity: int
    before_uid: int
    near_seq: int

    def encode(self) -> str:
        return _b64(msgspec.msgpack.encode(self))

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            return msgspec.msgpack.decode(_unb64(text), type=cls)
        except (ValueError, binascii.Error, msgspec.DecodeError):
            raise DomainError(ErrorCode.INVALID_CURSOR, "the cursor is not valid, start again") from None


class FolderState(msgspec.Struct, array_like=True):
    """A folder at one moment: MODSEQ (CONDSTORE) or, without it, a server-kept UID snapshot id."""

    folder: str
    uidvalidity: int
    modseq: int
    uidnext: int
    snapshot: str | None = None

    def encode(self) -> str:
        return _b64(msgspec.msgpack.encode(self))

    @classmethod
    def decode(cls, text: str) -> FolderState:
        try:
            return msgspec.msgpack.decode(_unb64(text), type=cls)
        except (ValueError, binascii.Error, msgspec.DecodeError):
            raise DomainError(ErrorCode.INVALID_STATE, "the sync state is not valid, resynchronise") from None
