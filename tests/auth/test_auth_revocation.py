from __future__ import annotations

import time
from typing import Any

import pytest

from backend.auth.access_tokens import AccessTokenIssuer
from backend.auth.dpop import DpopNonces, verify_dpop_proof
from backend.auth.revocation import DeviceRevocations, revoked_key, stale_key
from backend.auth.signing_keys import SigningKeys
from contracts.errors import ErrorCode
from core.ephemeral import Ephemeral
from core.errors import AuthError
from core.settings import TokenSettings

API = "https://api.mss-companion.test"
DEVICE = "0190f0b4-0000-7000-8000-00000000d001"


class RoundTrips(Ephemeral):
    """Records each call that goes to the real store underneath (nothing is faked)."""

    def __init__(self, inner: Ephemeral) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        return await self.inner.get(key)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        self.calls.append("get_many")
        return await self.inner.get_many(keys)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.calls.append("set")
        await self.inner.set(key, value, ttl_s)

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        self.calls.append("add")
        return await self.inner.add(key, value, ttl_s)

    async def add_and_get_many(
        self, add_key: str, value: bytes, ttl_s: float, get_keys: list[str]
    ) -> tuple[bool, list[bytes | None]]:
        self.calls.append("add_and_get_many")
        return await self.inner.add_and_get_many(add_key, value, ttl_s, get_keys)

    async def delete(self, key: str) -> None:
        self.calls.append("delete")
        await self.inner.delete(key)

    async def take(self, key: str) -> bytes | None:
        self.calls.append("take")
        return await self.inner.take(key)

    async def incr(self, key: str, ttl_s: float) -> int:
        self.calls.append("incr")
        return await self.inner.incr(key, ttl_s)

    async def compare_and_set(self, key: str, expected: bytes | None, value: bytes, ttl_s: float | None = None) -> bool:
        self.calls.append("compare_and_set")
        return await self.inner.compare_and_set(key, expected, value, ttl_s)

    async def ttl(self, key: str) -> float | None:
        self.calls.append("ttl")
        return await self.inner.ttl(key)

    async def ping(self) -> None:
        await self.inner.ping()

    async def clear(self) -> None:
        await self.inner.clear()


@pytest.fixture
def issuer(signing_keys: SigningKeys) -> AccessTokenIssuer:
    return AccessTokenIssuer(signing_keys, issuer=API, audience=API, ttl_s=300)


def _token(issuer: AccessTokenIssuer, *, iat: int | None = None, jkt: str = "A" * 43) -> Any:
    issued = issuer.issue(
        device_id=DEVICE, professional_idnat="810000000001", jkt=jkt, scopes=["device"], structure_id=None, now=iat
    )
    return issuer.verify(issued.token, skew_s=5)


async def test_clean_device_passes_in_one_round_trip(issuer: AccessTokenIssuer, ephemeral: Ephemeral) -> None:
    counted = RoundTrips(ephemeral)
    await DeviceRevocations(counted, ttl_s=400).check(_token(issuer))
    assert counted.calls == ["get_many"]


async def test_revoked_device_is_refused_with_wipe(issuer: AccessTokenIssuer, ephemeral: Ephemeral) -> None:
    revocations = DeviceRevocations.for_settings(ephemeral, TokenSettings())
    token = _token(issuer)
    await revocations.revoke(DEVICE)
    counted = RoundTrips(ephemeral)
    with pytest.raises(AuthError) as exc:
        await DeviceRevocations(counted, ttl_s=400).check(token)
    assert exc.value.code == ErrorCode.DEVICE_REVOKED
    assert exc.value.wipe is True
    assert exc.value.status == 401
    assert counted.calls == ["get_many"]
    # The mark outlives every token the device could still hold.
    ttl = await ephemeral.ttl(revoked_key(DEVICE))
    assert ttl is not None
    assert ttl > TokenSettings().access_ttl_s + TokenSettings().clock_skew_s
    # Other devices are not affected.
    other = issuer.verify(
        issuer.issue(
            device_id="another", professional_idnat="8", jkt="A" * 43, scopes=["device"], structure_id=None
        ).token,
        skew_s=5,
    )
    await revocations.check(other)


async def test_revocation_seen_by_another_instance(issuer: AccessTokenIssuer, ephemeral: Ephemeral) -> None:
    """Two services over the same store: one revokes, the other refuses at once."""
    api_a, api_b = DeviceRevocations(ephemeral, ttl_s=400), DeviceRevocations(ephemeral, ttl_s=400)
    await api_a.revoke(DEVICE)
    with pytest.raises(AuthError):
        await api_b.check(_token(issuer))


async def test_stale_tokens_must_refresh(issuer: AccessTokenIssuer, ephemeral: Ephemeral) -> None:
    revocations = DeviceRevocations(ephemeral, ttl_s=400)
    now = int(time.time())
    old = _token(issuer, iat=now - 10)
    await revocations.mark_stale(DEVICE, now)
    counted = RoundTrips(ephemeral)
    with pytest.raises(AuthError) as exc:
        await DeviceRevocations(counted, ttl_s=400).check(old)
    assert exc.value.code == ErrorCode.TOKEN_STALE
    assert exc.value.wipe is None
    assert counted.calls == ["get_many"]
    # The refreshed token (issued now, with the new grants) passes.
    await revocations.check(_token(issuer, iat=now))


async def test_stale_mark_only_moves_forward(issuer: AccessTokenIssuer, ephemeral: Ephemeral) -> None:
    revocations = DeviceRevocations(ephemeral, ttl_s=400)
    now = int(time.time())
    await revocations.mark_stale(DEVICE, now)
    await revocations.mark_stale(DEVICE, now - 100)  # a late, older mark does not un-stale anything
    assert await ephemeral.get(stale_key(DEVICE)) == str(now).encode()
    with pytest.raises(AuthError):
        await revocations.check(_token(issuer, iat=now - 50))
    await revocations.mark_stale(DEVICE)  # default: now
    assert int(await ephemeral.get(stale_key(DEVICE)) or b"0") >= now


async def test_full_request_check(
    issuer: AccessTokenIssuer, ephemeral: Ephemeral, phone: Any, other_phone: Any
) -> None:
    """Token, then proof bound to it, then revocation: the order the API runs them in."""
    nonces = DpopNonces(b"0123456789abcdef0123456789abcdef", 300)
    revocations = DeviceRevocations(ephemeral, ttl_s=400)
    access = issuer.issue(
        device_id=DEVICE, professional_idnat="810000000001", jkt=phone.jkt, scopes=["device"], structure_id=None
    ).token
    url = f"{API}/v1/me"

    async def call(proof: str) -> None:
        token = issuer.verify(access, skew_s=5)
        await verify_dpop_proof(
            proof=proof,
            method="GET",
            url=url,
            access_token=access,
            nonces=nonces,
            replay=ephemeral,
            max_age_s=60,
            skew_s=5,
            expected_jkt=token.jkt,
        )
        await revocations.check(token)

    await call(phone.proof("GET", url, access_token=access, nonce=nonces.issue()))
    # A thief with the token but not the key gets nowhere.
    with pytest.raises(AuthError) as exc:
        await call(other_phone.proof("GET", url, access_token=access, nonce=nonces.issue()))
    assert exc.value.code == ErrorCode.DPOP_INVALID
    await revocations.revoke(DEVICE)
    with pytest.raises(AuthError) as exc:
        await call(phone.proof("GET", url, access_token=access, nonce=nonces.issue()))
    assert exc.value.code == ErrorCode.DEVICE_REVOKED
