"""Opaque page tokens: encrypted and authenticated (AES-GCM), bound to their search, short-lived.

A token carries where each side of the search (persons, structures) continues: an offset for the
sandbox, the relative ``next`` link for the Annuaire Santé. Encrypting it matters: FHIR ``next``
links may repeat the search terms, and tokens travel in URLs that end up in access logs.
Authenticating it matters: the phone must not be able to make the server fetch an arbitrary URL
with our API key. The key is derived from a secret given by the app (``AppSettings.secret_key``)
so every instance reads every token; without one, a random per-process key is used (dev, tests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from collections.abc import Callable

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.errors import ErrorCode
from core.errors import DomainError

_AAD = b"mssc/directory-page-token/v1"
_NONCE_BYTES = 12
_MAX_TOKEN_CHARS = 8192


class PageState(msgspec.Struct, frozen=True, kw_only=True):
    """Inside a token. ``cursors`` only holds the sides that have more results."""

    q: str
    iat: int
    cursors: dict[str, str]


def invalid_page_token(detail: str = "the page token is not valid for this search; search again") -> DomainError:
    return DomainError(ErrorCode.INVALID_PAGE_TOKEN, detail)


class PageTokenCodec:
    def __init__(
        self, secret: bytes | str | None = None, *, max_age_s: int = 3600, clock: Callable[[], float] = time.time
    ) -> None:
        if secret is None:
            key = os.urandom(32)
        else:
            raw = secret.encode() if isinstance(secret, str) else secret
            key = hashlib.sha256(_AAD + b"\0" + raw).digest()
        self._aead = AESGCM(key)
        self._max_age_s = max_age_s
        self._clock = clock

    def encode(self, *, fingerprint: str, cursors: dict[str, str]) -> str | None:
        """A token for the next page, or ``None`` when no side has more."""
        if not cursors:
            return None
        state = PageState(q=fingerprint, iat=int(self._clock()), cursors=cursors)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, msgspec.json.encode(state), _AAD)
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def decode(self, token: str, *, fingerprint: str) -> PageState:
        """The state of a token made by :meth:`encode` for the same search, not too old."""
        if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            raise invalid_page_token()
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _AAD)
            state = msgspec.json.decode(plain, type=PageState)
        except (binascii.Error, ValueError, InvalidTag, msgspec.DecodeError):
            raise invalid_page_token() from None
        if state.q != fingerprint:
            raise invalid_page_token()
        if self._clock() - state.iat > self._max_age_s:
            raise invalid_page_token("the page token has expired; search again")
        return state
