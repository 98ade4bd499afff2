"""Fixtures for the device-auth tests: real keys and phones.

``ephemeral`` and ``database`` come from ``tests/conftest.py``: every test that uses them runs over
the in-process store + SQLite and over Redis + PostgreSQL (migrated), never over fakes.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.dpop import DpopNonces, access_token_hash
from backend.auth.jwk import jwk_thumbprint, public_jwk
from backend.auth.signing_keys import SigningKeys, generate_key_file
from core.db.engine import Database
from core.db.models import Device, Professional

REDIS_URL = "redis://127.0.0.1:6379/15"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
API = "https://api.mss-companion.test"


class Phone:
    """A device holding an ES256 key; builds DPoP proofs with PyJWT (an independent JOSE library)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = public_jwk(self.key)
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(
        self,
        method: str = "GET",
        url: str = f"{API}/v1/mailboxes",
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
            "jti": uuid.uuid4().hex if jti is None else jti,
        }
        if nonce is not None:
            body["nonce"] = nonce
        if access_token is not None:
            body["ath"] = access_token_hash(access_token)
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return jwt.encode(body, self.key, algorithm="ES256", headers=headers)


@pytest.fixture
def phone() -> Phone:
    return Phone()


@pytest.fixture
def nonces() -> DpopNonces:
    return DpopNonces(b"test-secret-for-dpop-nonces-0123456789", 300)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A key directory whose one key started signing an hour ago (so a rotation is strictly newer)."""
    path = tmp_path / "signing-keys"
    generate_key_file(path, not_before=time.time() - 3600)
    return path


@pytest.fixture
def signing_keys(keys_dir: Path) -> SigningKeys:
    return SigningKeys.load(keys_dir)


@pytest.fixture
def other_phone() -> Phone:
    return Phone()


async def _make_device(db: Database) -> uuid.UUID:
    """A professional and one device in the database (refresh tokens reference the device)."""
    async with db.transaction() as session:
        pro = Professional(idnat=f"8{uuid.uuid4().int % 10**11:011d}", given_name="Test", family_name="Pro")
        session.add(pro)
        await session.flush()
        phone = Phone()
        device = Device(
            professional_id=pro.id,
            name="test phone",
            platform="android",
            binding="es256",
            jkt=phone.jkt,
            public_jwk=phone.jwk,
        )
        session.add(device)
        await session.flush()
        return device.id


@pytest.fixture
def make_device() -> Any:
    """``await make_device(db)`` → the id of a new device (with its professional)."""
    return _make_device
