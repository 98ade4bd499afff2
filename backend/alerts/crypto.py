"""Alert texts at rest: AES-256-GCM under a key derived from the app secret.

``key = HKDF-SHA256(app.secret_key, salt="mss-companion", info="mssc|alert-text|v1")``: a key of its
own (the purpose label keeps it apart from every other use of the secret). Each text gets a fresh
96-bit random nonce; the alert id and its structure id are the associated data, so a ciphertext
copied onto another row does not decrypt. Changing ``MSSC_APP_SECRET_KEY`` makes older texts
unreadable (the alerts themselves stay listed); alert texts are short-lived by nature.

Plaintext never leaves this module except as the return value of :meth:`AlertCipher.open`.
"""

from __future__ import annotations

import os
import uuid
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"mssc|alert-text|v1"
_SALT = b"mss-companion"
NONCE_BYTES = 12


class SealedText(NamedTuple):
    nonce: bytes
    ciphertext: bytes


class UnreadableTextError(Exception):
    """The text does not decrypt: the secret key changed, or the row was tampered with."""


def derive_key(secret: str, purpose: bytes = PURPOSE) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(secret.encode())


def _aad(alert_id: uuid.UUID, structure_id: uuid.UUID) -> bytes:
    return b"mssc-alert|" + alert_id.bytes + structure_id.bytes


class AlertCipher:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an app secret key is needed to encrypt alert texts")
        self._aead = AESGCM(derive_key(secret))

    def seal(self, text: str, *, alert_id: uuid.UUID, structure_id: uuid.UUID) -> SealedText:
        nonce = os.urandom(NONCE_BYTES)
        return SealedText(nonce, self._aead.encrypt(nonce, text.encode(), _aad(alert_id, structure_id)))

    def open(self, sealed: SealedText, *, alert_id: uuid.UUID, structure_id: uuid.UUID) -> str:
        try:
            return self._aead.decrypt(sealed.nonce, sealed.ciphertext, _aad(alert_id, structure_id)).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError):
            raise UnreadableTextError from None

    def __repr__(self) -> str:
        return "AlertCipher(<key hidden>)"
