"""Compact JWS with ES256 only (RFC 7515, RFC 7518 §3.4): parse, verify, sign.

Deliberately small: the access token and DPoP proof checks need a strict parser (one algorithm, no
``crit``, objects only) and speed (one ECDSA verify each, no second header parse). Signatures are
the JOSE raw ``r || s`` form, converted to and from DER for ``cryptography``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from backend.auth.jwk import b64url_decode, b64url_encode

#: Longest token we look at; DPoP proofs and our access tokens are well under 1 KiB.
MAX_COMPACT_LEN = 8192

_ES256 = ec.ECDSA(hashes.SHA256())
_SIG_LEN = 64
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class JwsError(ValueError):
    """Not a well-formed compact JWS; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class CompactJws:
    """A parsed, not yet verified, compact JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_compact(token: str, *, max_len: int = MAX_COMPACT_LEN) -> CompactJws:
    """Split and decode ``header.payload.signature``; header and payload must be JSON objects."""
    if len(token) > max_len:
        raise JwsError("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsError("not a compact JWS")
    h64, p64, s64 = parts
    try:
        header = _decode(b64url_decode(h64))
        payload = _decode(b64url_decode(p64))
        signature = b64url_decode(s64)
    except (ValueError, msgspec.DecodeError):
        raise JwsError("malformed JWS segment") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JwsError("JWS header and payload must be objects")
    if "crit" in header:
        # No extension is understood here, so any critical one must be refused (RFC 7515 §4.1.11).
        raise JwsError("unsupported critical header")
    return CompactJws(header, payload, f"{h64}.{p64}".encode("ascii"), signature)


def verify_es256(jws: CompactJws, key: ec.EllipticCurvePublicKey) -> bool:
    """``True`` when the signature is a valid ES256 signature by ``key``. The caller checks ``alg``."""
    sig = jws.signature
    if len(sig) != _SIG_LEN:
        return False
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, jws.signing_input, _ES256)
    except InvalidSignature:
        return False
    return True


def sign_es256(*, header: Mapping[str, Any], payload: Mapping[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """Compact ES256 JWS; ``alg`` is set here, the rest of the header is the caller's."""
    h64 = b64url_encode(_encode({**header, "alg": "ES256"}))
    p64 = b64url_encode(_encode(payload))
    signing_input = f"{h64}.{p64}"
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), _ES256))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


__all__ = ["MAX_COMPACT_LEN", "CompactJws", "JwsError", "parse_compact", "sign_es256", "verify_es256"]
