"""The phone API's authentication: DPoP-bound tokens, refresh rotation, revocation everywhere."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from contracts.events import Event, EventType
from phone.client import PhoneClient, PhoneError
from phone.keys import DeviceKey
from tests.conftest import Backends
from tests.harness import BASE, NURSE, TITULAIRE, Harness, running


async def _whoami_raw(phone: PhoneClient, *, proof: str | None, scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {phone.state.access_token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return await phone.http.get("/api/v1/whoami", headers=headers)


async def _fresh_proof(
    phone: PhoneClient, key: DeviceKey | None = None, *, url: str = "/api/v1/whoami", method: str = "GET"
) -> str:
    nonce_source = await phone.http.get("/health/live")
    del nonce_source
    await phone.whoami()  # refreshes the client's nonce
    return (key or phone.state.key).dpop_proof(
        method=method, url=f"{BASE}{url}", nonce=phone._nonce, access_token=phone.state.access_token
    )


async def test_token_without_proof_is_useless(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        response = await _whoami_raw(phone, proof=None)
        assert response.status_code == 401
        assert response.json()["code"] == "dpop_required"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "DPoP" in response.headers["www-authenticate"]
        bearer = await _whoami_raw(phone, proof=await _fresh_proof(phone), scheme="Bearer")
        assert bearer.json()["code"] == "dpop_required"


async def test_replayed_proof_is_refused(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        proof = await _fresh_proof(phone)
        assert (await _whoami_raw(phone, proof=proof)).status_code == 200
        replay = await _whoami_raw(phone, proof=proof)
        assert replay.status_code == 401
        assert replay.json()["code"] == "dpop_replayed"


async def test_stolen_token_with_another_key_is_refused(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        thief = DeviceKey()
        response = await _whoami_raw(phone, proof=await _fresh_proof(phone, thief))
        assert response.status_code == 401
        assert response.json()["code"] == "dpop_invalid"


async def test_proof_for_another_url_is_refused(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        response = await _whoami_raw(phone, proof=await _fresh_proof(phone, url="/api/v1/me"))
        assert response.json()["code"] == "dpop_invalid"


async def test_first_call_learns_the_nonce(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        proof = phone.state.key.dpop_proof(
            method="GET", url=f"{BASE}/api/v1/whoami", access_token=phone.state.access_token
        )
        response = await _whoami_raw(phone, proof=proof)
        assert response.status_code == 401
        assert response.json()["code"] == "use_dpop_nonce"
        assert response.headers["DPoP-Nonce"]


async def test_refresh_rotates_and_reuse_revokes_the_family(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        first_refresh = phone.state.refresh_token
        await phone.refresh()
        assert phone.state.refresh_token != first_refresh
        assert (await phone.whoami())["deviceId"] == phone.state.device_id
        stolen = await phone.request(
            "POST", "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": first_refresh}
        )
        assert stolen.status_code == 400
        assert stolen.json()["code"] == "refresh_token_reused"
        assert await _audited(h, "token.refresh_reused", phone.state.device_id)
        # the whole family is dead, the current refresh token included ...
        after = await phone.request(
            "POST", "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": phone.state.refresh_token}
        )
        assert after.json()["code"] == "invalid_grant"
        # ... and the phone signs in again with its key
        phone.state.refresh_token = None
        await phone.refresh()
        assert (await phone.whoami())["deviceId"] == phone.state.device_id


async def test_device_key_grant_needs_an_enrolled_key(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        stranger = h.phone()
        response = await stranger.request("POST", "/api/v1/token", json={"grantType": "device_key"})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_grant"


async def test_revoked_device_gets_wipe_then_acknowledges(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone()
        page = await h.web.get("/appareils")
        await h.web.post(f"/appareils/{phone.state.device_id}/revoquer", data={"csrf_token": h.csrf(page.text)})
        with pytest.raises(PhoneError) as err:
            await phone.whoami()
        assert err.value.status == 401 and err.value.code == "device_revoked" and err.value.problem["wipe"]
        device_id = phone.state.device_id
        await phone.acknowledge_wipe()
        device = await h.container.devices.get(__import__("uuid").UUID(device_id))
        assert device.wipe_acknowledged_at is not None
        refresh = await phone.request("POST", "/api/v1/token", json={"grantType": "device_key"})
        assert refresh.status_code in (400, 401)


@pytest.mark.parametrize("backends", ["redis+postgres"], indirect=True)
async def test_revocation_reaches_a_second_instance_within_a_second(backends: Backends, tmp_path: Path) -> None:
    """Two app instances share Redis and PostgreSQL; a revocation on one is refused by the other."""
    async with AsyncExitStack() as stack:
        one: Harness = await stack.enter_async_context(running(backends, tmp_path))
        two: Harness = await stack.enter_async_context(
            running(backends, tmp_path, app=one.settings.app, tokens=one.settings.tokens)
        )
        await one.login(TITULAIRE)
        phone = await one.enrol_phone()
        on_two = two.phone()
        on_two.state = phone.state  # the same phone, now talking to instance two
        heard: list[Event] = []

        async def listen(event: Event) -> None:
            heard.append(event)

        two.container.fanout.on_event(listen)
        assert (await on_two.whoami())["deviceId"] == phone.state.device_id
        page = await one.web.get("/appareils")
        await one.web.post(f"/appareils/{phone.state.device_id}/revoquer", data={"csrf_token": one.csrf(page.text)})
        revoked_at = time.monotonic()
        while True:
            try:
                await on_two.whoami()
            except PhoneError as exc:
                assert exc.code == "device_revoked"
                break
            assert time.monotonic() - revoked_at < 1.0, "instance two still accepts the revoked device"
            await asyncio.sleep(0.02)
        assert time.monotonic() - revoked_at < 1.0
        while not any(e.type == EventType.DEVICE_REVOKED and e.device_id == phone.state.device_id for e in heard):
            assert time.monotonic() - revoked_at < 1.0, "instance two never heard of the revocation"
            await asyncio.sleep(0.01)


async def _audited(h: Harness, action: str, device_id: str | None) -> bool:
    from sqlalchemy import select

    from core.db.models import AuditEvent

    async with h.container.db.read() as session:
        found = await session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == action, AuditEvent.device_id == device_id)
        )
    return found is not None
