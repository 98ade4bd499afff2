"""A software WebAuthn authenticator (ES256, user verification on), for the simulator and tests.

It produces the same JSON a platform authenticator hands to the app (``navigator.credentials``
shape): ``none`` or ``packed`` self-attestation, or ``packed`` with an attestation chain from its
own root, so the server's attestation policy can be exercised for real.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phone.keys import b64u

_UP, _UV, _AT = 0x01, 0x04, 0x40
_AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def _b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Credential:
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    count: int = 0


@dataclass
class SoftAuthenticator:
    aaguid: bytes = uuid.UUID("6f0d2c5e-0000-4000-8000-0000c0ffee01").bytes
    credentials: dict[bytes, _Credential] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca = self._certificate("mss-companion test root", self._ca_key, self._ca_key, ca=True)
        self._att_key = ec.generate_private_key(ec.SECP256R1())
        self._att = self._certificate("mss-companion test authenticator", self._att_key, self._ca_key, ca=False)

    @property
    def root_pem(self) -> str:
        return self._ca.public_bytes(serialization.Encoding.PEM).decode()

    def _certificate(
        self, cn: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, *, ca: bool
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mss-companion tests"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if ca else self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:  # the AAGUID extension must equal the authenticator data's AAGUID
            builder = builder.add_extension(
                x509.UnrecognizedExtension(_AAGUID_OID, b"\x04\x10" + self.aaguid), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    def register(self, options: dict[str, Any], origin: str, *, fmt: str = "none") -> dict[str, Any]:
        """``navigator.credentials.create``: fmt ``none``, ``packed`` (self) or ``packed-x5c``."""
        rp_id = options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        cred_id = os.urandom(32)
        self.credentials[cred_id] = _Credential(key, rp_id, _b64u_decode(options["user"]["id"]))
        client_data = json.dumps(
            {"type": "webauthn.create", "challenge": options["challenge"], "origin": origin, "crossOrigin": False}
        ).encode()
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([_UP | _UV | _AT])
            + struct.pack(">I", 0)
            + self.aaguid
            + struct.pack(">H", len(cred_id))
            + cred_id
            + cose
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        if fmt == "none":
            statement: dict[str, Any] = {}
        elif fmt == "packed":
            statement = {"alg": -7, "sig": key.sign(signed, ec.ECDSA(hashes.SHA256()))}
        else:
            statement = {
                "alg": -7,
                "sig": self._att_key.sign(signed, ec.ECDSA(hashes.SHA256())),
                "x5c": [self._att.public_bytes(serialization.Encoding.DER)],
            }
        attestation = cbor2.dumps(
            {"fmt": "none" if fmt == "none" else "packed", "attStmt": statement, "authData": auth_data}
        )
        return {
            "id": b64u(cred_id),
            "rawId": b64u(cred_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64u(client_data),
                "attestationObject": b64u(attestation),
                "transports": ["internal"],
            },
        }

    def export(self) -> list[dict[str, Any]]:
        """The credentials, to keep between CLI runs (a real authenticator never lets them out)."""
        return [
            {
                "id": b64u(cid),
                "rpId": c.rp_id,
                "userHandle": b64u(c.user_handle),
                "count": c.count,
                "key": c.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ).decode(),
            }
            for cid, c in self.credentials.items()
        ]

    def load(self, exported: list[dict[str, Any]]) -> None:
        for item in exported:
            key = serialization.load_pem_private_key(item["key"].encode(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self.credentials[_b64u_decode(item["id"])] = _Credential(
                key, item["rpId"], _b64u_decode(item["userHandle"]), item["count"]
            )

    def authenticate(self, options: dict[str, Any], origin: str) -> dict[str, Any]:
        """``navigator.credentials.get`` with user verification."""
        allowed = [_b64u_decode(c["id"]) for c in options.get("allowCredentials", [])] or list(self.credentials)
        cred_id = next(c for c in allowed if c in self.credentials and self.credentials[c].rp_id == options["rpId"])
        cred = self.credentials[cred_id]
        cred.count += 1
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": options["challenge"], "origin": origin, "crossOrigin": False}
        ).encode()
        auth_data = (
            hashlib.sha256(options["rpId"].encode()).digest() + bytes([_UP | _UV]) + struct.pack(">I", cred.count)
        )
        signature = cred.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64u(cred_id),
            "rawId": b64u(cred_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64u(client_data),
                "authenticatorData": b64u(auth_data),
                "signature": b64u(signature),
                "userHandle": b64u(cred.user_handle),
            },
        }
