"""The peers themselves are strict: raw HTTP/2 and HTTP clients get Apple's and Google's refusals.

These requests bypass our providers, to show that the checks the provider tests rely on exist.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.peers.apns import ApnsCredentials, ApnsPeer
from tests.peers.certs import TestCertificateAuthority
from tests.peers.fcm import FcmPeer, ServiceAccount
from tests.push.conftest import apns_token

ALERT_BODY = {"aps": {"alert": {"loc-key": "MSSC_NEW_MESSAGE"}}}


def _provider_token(credentials: ApnsCredentials, *, iat: float | None = None, kid: str | None = None) -> str:
    return jwt.encode(
        {"iss": credentials.team_id, "iat": int(time.time() if iat is None else iat)},
        credentials.key_pem,
        algorithm="ES256",
        headers={"kid": kid or credentials.key_id},
    )


async def _apns(
    peer: ApnsPeer,
    ca: TestCertificateAuthority,
    credentials: ApnsCredentials,
    *,
    token: str | None = None,
    body: Any = None,
    **headers: str,
) -> tuple[int, str | None]:
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    base = {
        "authorization": f"bearer {_provider_token(credentials)}",
        "apns-topic": credentials.topic,
        "apns-id": str(uuid.uuid4()),
        "apns-push-type": "alert",
        "apns-priority": "10",
    }
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    sent = {k: v for k, v in base.items() if v}
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        response = await client.post(
            f"https://localhost:{peer.port}/3/device/{token or apns_token()}",
            content=json.dumps(ALERT_BODY if body is None else body).encode() if body != b"" else b"",
            headers=sent,
        )
    assert response.http_version == "HTTP/2"
    reason = response.json()["reason"] if response.content else None
    return response.status_code, reason


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, (200, None)),
        ({"authorization": ""}, (403, "MissingProviderToken")),
        ({"apns_topic": ""}, (400, "MissingTopic")),
        ({"apns_topic": "fr.other.app"}, (400, "TopicDisallowed")),
        ({"apns_id": "not-a-uuid"}, (400, "BadMessageId")),
        ({"apns_push_type": ""}, (400, "InvalidPushType")),
        ({"apns_push_type": "background"}, (400, "BadPriority")),
        ({"apns_expiration": "tomorrow"}, (400, "BadExpirationDate")),
        ({"apns_collapse_id": "x" * 65}, (400, "BadCollapseId")),
        ({"token": "not-hex"}, (400, "BadDeviceToken")),
        ({"body": {"aps": "x"}}, (400, "BadPayload")),
        ({"body": {"aps": {"alert": "x"}, "pad": "x" * 4100}}, (413, "PayloadTooLarge")),
        ({"body": b""}, (400, "PayloadEmpty")),
    ],
)
async def test_the_apns_peer_checks_what_apple_checks(
    apns_peer: ApnsPeer,
    push_ca: TestCertificateAuthority,
    apns_credentials: ApnsCredentials,
    overrides: dict[str, Any],
    expected: tuple[int, str | None],
) -> None:
    assert await _apns(apns_peer, push_ca, apns_credentials, **overrides) == expected


async def test_the_apns_peer_checks_the_provider_token(
    apns_peer: ApnsPeer, push_ca: TestCertificateAuthority, apns_credentials: ApnsCredentials
) -> None:
    stale = _provider_token(apns_credentials, iat=time.time() - 3700)
    assert await _apns(apns_peer, push_ca, apns_credentials, authorization=f"bearer {stale}") == (
        403,
        "ExpiredProviderToken",
    )
    other_kid = _provider_token(apns_credentials, kid="ZZZ999ZZZZ")
    assert await _apns(apns_peer, push_ca, apns_credentials, authorization=f"bearer {other_kid}") == (
        403,
        "InvalidProviderToken",
    )
    assert await _apns(apns_peer, push_ca, apns_credentials, authorization="bearer x.y.z") == (
        403,
        "InvalidProviderToken",
    )


async def _fcm(
    peer: FcmPeer, account: ServiceAccount, document: Any, *, bearer: str | None = None, path: str | None = None
) -> httpx.Response:
    if bearer is None:
        now = int(time.time())
        bearer = jwt.encode(
            {"iss": account.info["client_email"], "sub": account.info["client_email"], "iat": now, "exp": now + 600},
            account.info["private_key"],
            algorithm="RS256",
            headers={"kid": account.info["private_key_id"]},
        )
    url = f"http://{peer.host}:{peer.port}{path or f'/v1/projects/{account.project_id}/messages:send'}"
    async with httpx.AsyncClient() as client:
        return await client.post(url, json=document, headers={"authorization": f"Bearer {bearer}"} if bearer else {})


@pytest.mark.parametrize(
    ("document", "status"),
    [
        ({"message": {"token": "t", "data": {"a": "b"}}}, 200),
        ({"message": {"fid": "t", "android": {"priority": "high", "ttl": "60s"}}}, 200),
        ({"message": {"token": "t", "topic": "news"}}, 400),
        ({"message": {"data": {"a": "b"}}}, 400),
        ({"message": {"token": "t", "data": {"badge": 3}}}, 400),
        ({"message": {"token": "t", "android": {"priority": "urgent"}}}, 400),
        ({"message": {"token": "t", "android": {"ttl": "1 hour"}}}, 400),
        ({"message": {"token": "t", "data": {"pad": "x" * 4100}}}, 400),
        ({"message": {"token": "t"}, "extra": 1}, 400),
    ],
)
async def test_the_fcm_peer_checks_the_message_shape(
    fcm_peer: FcmPeer, fcm_service_account: ServiceAccount, document: Any, status: int
) -> None:
    response = await _fcm(fcm_peer, fcm_service_account, document)
    assert response.status_code == status
    if status == 200:
        assert response.json()["name"].startswith(f"projects/{fcm_service_account.project_id}/messages/")
    else:
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_the_fcm_peer_checks_the_bearer_and_the_project(
    fcm_peer: FcmPeer, fcm_service_account: ServiceAccount
) -> None:
    document = {"message": {"token": "t"}}
    assert (await _fcm(fcm_peer, fcm_service_account, document, bearer="")).status_code == 401
    assert (await _fcm(fcm_peer, fcm_service_account, document, bearer="a.b.c")).status_code == 401
    wrong = await _fcm(fcm_peer, fcm_service_account, document, path="/v1/projects/other/messages:send")
    assert wrong.status_code == 404 and "details" not in wrong.json()["error"]
