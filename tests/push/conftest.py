"""Push tests talk to local protocol peers (``tests.peers.apns``, ``tests.peers.fcm``), never to mocks.

The peer fixtures come from ``tests.peers.push_fixtures`` (imported here until the root
``conftest.py`` registers it as a plugin). ``apns_factory`` / ``fcm_factory`` build providers aimed
at the peers and close them after the test.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from contracts.push import AlertClass, PushPayload
from push.payload import PushTarget, alert_payload, build_notification, mail_payload, wipe_payload
from push.providers.apns import ApnsProvider
from push.providers.base import PushNotification
from push.providers.fcm import FcmProvider
from tests.peers import push_fixtures as _push_fixtures
from tests.peers.apns import ApnsCredentials, ApnsPeer
from tests.peers.certs import TestCertificateAuthority
from tests.peers.fcm import FcmPeer, ServiceAccount

# The shared push peers, until the root conftest registers ``tests.peers.push_fixtures`` as a plugin.
push_dir = _push_fixtures.push_dir
push_ca = _push_fixtures.push_ca
apns_credentials = _push_fixtures.apns_credentials
fcm_service_account = _push_fixtures.fcm_service_account
apns_peer_session = _push_fixtures.apns_peer_session
fcm_peer_session = _push_fixtures.fcm_peer_session
apns_peer = _push_fixtures.apns_peer
fcm_peer = _push_fixtures.fcm_peer
push_settings = _push_fixtures.push_settings

ApnsFactory = Callable[..., ApnsProvider]
FcmFactory = Callable[..., FcmProvider]


def apns_token() -> str:
    """A device token as Apple issues them: 32 bytes in hex."""
    return secrets.token_hex(32)


def fcm_token() -> str:
    return f"fcm-{secrets.token_urlsafe(24)}"


def new_id() -> str:
    return uuid.uuid4().hex


def notification(token: str, alert_class: AlertClass = AlertClass.MAIL, **kwargs: Any) -> PushNotification:
    """A push of ``alert_class`` for a fresh device and event."""
    payload: PushPayload
    if alert_class is AlertClass.MAIL:
        payload = mail_payload(event_id=new_id(), mailbox_id=uuid.uuid4(), badge=kwargs.pop("badge", 3))
    elif alert_class is AlertClass.WIPE:
        payload = wipe_payload(event_id=new_id())
    else:
        payload = alert_payload(alert_class, event_id=new_id(), alert_id=uuid.uuid4())
    target = PushTarget(device_id=str(uuid.uuid4()), provider=kwargs.pop("provider", "apns"), token=token)
    return build_notification(target, payload, **kwargs)


@pytest.fixture
async def apns_factory(
    apns_peer: ApnsPeer, apns_credentials: ApnsCredentials, push_ca: TestCertificateAuthority
) -> AsyncIterator[ApnsFactory]:
    made: list[ApnsProvider] = []

    def make(**overrides: Any) -> ApnsProvider:
        options: dict[str, Any] = {
            "key_pem": apns_credentials.key_pem,
            "key_id": apns_credentials.key_id,
            "team_id": apns_credentials.team_id,
            "topic": apns_credentials.topic,
            "server": apns_peer.server,
            "ca_file": str(push_ca.ca_file),
            "send_timeout_s": 2.0,
            "concurrency": 8,
        }
        options.update(overrides)
        provider = ApnsProvider(**options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
async def fcm_factory(fcm_peer: FcmPeer, fcm_service_account: ServiceAccount) -> AsyncIterator[FcmFactory]:
    made: list[FcmProvider] = []

    def make(account: ServiceAccount | None = None, **overrides: Any) -> FcmProvider:
        account = account or fcm_service_account
        options: dict[str, Any] = {"url": fcm_peer.url, "send_timeout_s": 2.0, "concurrency": 8}
        options.update(overrides)
        provider = FcmProvider.from_service_account(str(account.file), **options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


class FakeTime:
    """A clock and a sleep that only advances it: retry schedules without waiting."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
