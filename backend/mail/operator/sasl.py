"""SASL client exchanges shared by IMAP ``AUTHENTICATE`` and SMTP ``AUTH``.

A :class:`SaslLogin` is what a gateway auth strategy produces for one login: the mechanism, the
initial response, and how to answer a server challenge that comes *after* it. That last part is
the trap of bearer mechanisms: on a refused token the server (Dovecot, Gmail…) sends an error
challenge (``+ <base64 json>`` / ``334 <base64 json>``) and waits for the client to answer before
it says ``NO`` / ``535``. A client that does not answer hangs until its timeout (aioimaplib's
``xoauth2()`` does). Here every mechanism says what to answer: an empty response for XOAUTH2,
``%x01`` for OAUTHBEARER (RFC 7628 §3.2.3), a cancel (``*``) for mechanisms that never expect one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SaslLogin:
    """One SASL exchange. ``repr`` hides the initial response: it holds a password or a token."""

    mechanism: str
    initial_response: bytes = field(repr=False)
    #: Answer to any challenge after the initial response; ``None`` cancels the exchange (``*``).
    challenge_reply: bytes | None = None


def plain(*, authzid: str, authcid: str, password: str) -> SaslLogin:
    """RFC 4616: ``authzid NUL authcid NUL password``."""
    for part in (authzid, authcid, password):
        if "\0" in part:
            raise ValueError("NUL in SASL PLAIN field")
    return SaslLogin("PLAIN", f"{authzid}\0{authcid}\0{password}".encode())


def xoauth2(*, user: str, token: str) -> SaslLogin:
    """Google/Microsoft XOAUTH2: ``user=… ^A auth=Bearer … ^A ^A``; answer errors with an empty line."""
    return SaslLogin("XOAUTH2", f"user={user}\x01auth=Bearer {token}\x01\x01".encode(), challenge_reply=b"")


def oauthbearer(*, user: str, token: str, host: str | None = None, port: int | None = None) -> SaslLogin:
    """RFC 7628 OAUTHBEARER with a GS2 header naming the mailbox (``a=``); errors answered ``%x01``."""
    fields = [f"auth=Bearer {token}"]
    if host:
        fields.insert(0, f"host={host}")
    if port:
        fields.insert(1 if host else 0, f"port={port}")
    saslname = user.replace("=", "=3D").replace(",", "=2C")
    payload = f"n,a={saslname},\x01" + "\x01".join(fields) + "\x01\x01"
    return SaslLogin("OAUTHBEARER", payload.encode(), challenge_reply=b"\x01")


def external(*, authzid: str) -> SaslLogin:
    """RFC 4422 EXTERNAL: the TLS client certificate authenticates, ``authzid`` names the mailbox."""
    return SaslLogin("EXTERNAL", authzid.encode())


def encode(data: bytes) -> str:
    """A SASL response on the wire: base64, and ``=`` for an empty initial response (RFC 4959)."""
    return base64.b64encode(data).decode("ascii") if data else "="


def bearer_error_status(challenge_b64: bytes) -> str | None:
    """The ``status`` of a bearer error challenge (``invalid_token``…), safe to log; else ``None``."""
    try:
        payload = json.loads(base64.b64decode(challenge_b64.strip(), validate=True))
    except (binascii.Error, ValueError):
        return None
    status = payload.get("status") if isinstance(payload, dict) else None
    return status if isinstance(status, str) and len(status) <= 64 else None
