"""The phone's own ES256 key: JWK, RFC 7638 thumbprint, DPoP proofs, binding signature.

A real app keeps this key in the Secure Enclave / StrongBox, non-exportable; the simulator keeps it
in a file so that a CLI session can go on where the previous one stopped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DeviceKey:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        numbers = self.private_key.public_key().public_numbers()
        self.jwk: dict[str, str] = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u(numbers.x.to_bytes(32, "big")),
            "y": b64u(numbers.y.to_bytes(32, "big")),
        }
        canonical = json.dumps({k: self.jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        self.jkt = b64u(hashlib.sha256(canonical.encode()).digest())

    def pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @classmethod
    def from_pem(cls, pem: str) -> DeviceKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not an EC private key")
        return cls(key)

    def dpop_proof(self, *, method: str, url: str, nonce: str | None = None, access_token: str | None = None) -> str:
        """RFC 9449 proof for one request (the URL without query or fragment)."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": url.split("?", 1)[0].split("#", 1)[0],
            "iat": int(time.time()),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["ath"] = b64u(hashlib.sha256(access_token.encode()).digest())
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})

    def bind_signature(self, *, rendezvous_id: str, challenge: str, audience: str) -> str:
        """The ES256 binding: the key signs the server's challenge for this rendezvous."""
        return jwt.encode(
            {"rdv": rendezvous_id, "challenge": challenge, "aud": audience, "iat": int(time.time())},
            self.private_key,
            algorithm="ES256",
            headers={"typ": "mssc-bind+jwt"},
        )
