"""ES256 public keys as JWKs (RFC 7517/7518), their RFC 7638 thumbprint, strict base64url.

A device is known by the thumbprint (``jkt``) of its P-256 proof key. Everything a client sends is
checked here with one rule set, whoever calls it (DPoP proofs, enrolment binding):

* ``kty`` is ``EC`` and ``crv`` is ``P-256``; ``x`` and ``y`` are canonical base64url of 32 bytes
  each and name a point on the curve;
* no private member (``d``, nor the RSA/oct ones a confused client might send);
* optional ``alg`` must be ``ES256`` and optional ``use`` must be ``sig``.

Failures raise :class:`JwkError` (a ``ValueError``); callers map it to their own error code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

#: Members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). Any of them is refused.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_COORD_LEN = 32  # P-256 field element size in bytes
_COORD_B64_LEN = 43  # base64url of 32 bytes, unpadded


class JwkError(ValueError):
    """The JWK is not an acceptable ES256 public key; the message says why (no key material)."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Strict unpadded base64url: only the URL-safe alphabet, no padding, no whitespace.

    Raises ``ValueError`` on anything else.
    """
    if len(value) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        # '-_' become '+/'; '+', '/' and '=' become '!' so strict mode refuses them; one C call.
        data = value.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(value) % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        raise ValueError("not unpadded base64url") from None


def public_jwk(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The public JWK (``kty``, ``crv``, ``x``, ``y``) of a P-256 key; never private members."""
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(pub.curve, ec.SECP256R1):
        raise JwkError("key is not on P-256")
    numbers = pub.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(_COORD_LEN, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_COORD_LEN, "big")),
    }


def validate_public_jwk(jwk: object) -> dict[str, str]:
    """Check a client JWK strictly (point on P-256 included); return its canonical public members."""
    x, y = _public_members(jwk)
    _load_point(x, y)
    return {"crv": "P-256", "kty": "EC", "x": x, "y": y}


def public_key_from_jwk(jwk: object) -> ec.EllipticCurvePublicKey:
    """Validate a client JWK and load it (the point is checked to be on the curve)."""
    return _load_point(*_public_members(jwk))[1]


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: base64url SHA-256 of ``{"crv","kty","x","y"}`` in that order, no spaces.

    The JWK is validated first, so a thumbprint always names a usable public key.
    """
    canonical = validate_public_jwk(jwk)
    return _thumbprint(canonical["x"], canonical["y"])


class LoadedJwk(NamedTuple):
    #: The canonical public members, a fresh dict per call (safe to store, e.g. on a ``Device``).
    jwk: dict[str, str]
    jkt: str
    key: ec.EllipticCurvePublicKey


def load_public_jwk(jwk: object) -> LoadedJwk:
    """Validate, thumbprint and load a client JWK in one step.

    Loaded keys are cached (LRU, 4096) by coordinates, which is the same as by thumbprint: a phone's
    proofs cost a few dictionary lookups, not a decoding, a point decompression and validation.
    """
    x, y = _public_members(jwk)
    jkt, key = _load_point(x, y)
    return LoadedJwk({"crv": "P-256", "kty": "EC", "x": x, "y": y}, jkt, key)


def _public_members(jwk: object) -> tuple[str, str]:
    """Member checks; the coordinates themselves are checked (and cached) by ``_load_point``."""
    if not isinstance(jwk, Mapping):
        raise JwkError("jwk is not an object")
    if not PRIVATE_MEMBERS.isdisjoint(jwk):
        raise JwkError("jwk contains private key members")
    if jwk.get("kty") != "EC":
        raise JwkError("jwk kty must be EC")
    if jwk.get("crv") != "P-256":
        raise JwkError("jwk crv must be P-256")
    if "alg" in jwk and jwk["alg"] != "ES256":
        raise JwkError("jwk alg must be ES256")
    if "use" in jwk and jwk["use"] != "sig":
        raise JwkError("jwk use must be sig")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise JwkError("jwk x and y must be strings")
    return x, y


def _thumbprint(x: str, y: str) -> str:
    # Members are validated base64url, so no JSON escaping can apply: the f-string is the canonical form.
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}'
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


@lru_cache(maxsize=4096)
def _load_point(x: str, y: str) -> tuple[str, ec.EllipticCurvePublicKey]:
    """Thumbprint and key of canonical coordinates on P-256 (only successes are cached).

    Same coordinates ⇔ same thumbprint ⇔ same key, so this is also the cache by ``jkt``.
    """
    point = b"\x04" + _coordinate(x) + _coordinate(y)
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise JwkError("jwk is not a point on P-256") from None
    return _thumbprint(x, y), key


def _coordinate(value: str) -> bytes:
    if len(value) != _COORD_B64_LEN:
        raise JwkError("jwk coordinate must be 32 bytes")
    try:
        raw = b64url_decode(value)
    except ValueError:
        raise JwkError("jwk coordinate is not base64url") from None
    # 43 characters carry 258 bits: the 2 spare bits must be zero, or one key has several spellings.
    if b64url_encode(raw) != value:
        raise JwkError("jwk coordinate is not canonical base64url")
    return raw


__all__ = [
    "PRIVATE_MEMBERS",
    "JwkError",
    "LoadedJwk",
    "b64url_decode",
    "b64url_encode",
    "jwk_thumbprint",
    "load_public_jwk",
    "public_jwk",
    "public_key_from_jwk",
    "validate_public_jwk",
]
