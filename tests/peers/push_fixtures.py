"""Pytest fixtures over the push peers: one APNs (TLS, test CA) and one FCM peer per run.

Register with ``pytest_plugins = ["tests.peers.fixtures", "tests.peers.push_fixtures"]`` in the root
``conftest.py``. Each test gets the peers reset (no records, no scripts).

* ``apns_credentials`` / ``fcm_service_account`` (session): a .p8 key and a service-account file.
* ``apns_peer`` / ``fcm_peer`` (function): the running peers, reset for the test.
* ``push_settings`` (function): :class:`PushSettings` with ``apns`` and ``fcm`` pointing at them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import PushSettings
from tests.peers.apns import ApnsCredentials, ApnsPeer, make_apns_credentials
from tests.peers.certs import TestCertificateAuthority
from tests.peers.fcm import FcmPeer, ServiceAccount, make_service_account

__all__ = [
    "apns_credentials",
    "apns_peer",
    "apns_peer_session",
    "fcm_peer",
    "fcm_peer_session",
    "fcm_service_account",
    "push_ca",
    "push_dir",
    "push_settings",
]


@pytest.fixture(scope="session")
def push_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="mssc-push-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def push_ca(push_dir: Path) -> TestCertificateAuthority:
    return TestCertificateAuthority(push_dir / "ca", name="mss-companion push test CA")


@pytest.fixture(scope="session")
def apns_credentials(push_dir: Path) -> ApnsCredentials:
    return make_apns_credentials(push_dir / "apns")


@pytest.fixture(scope="session")
def fcm_service_account(push_dir: Path) -> ServiceAccount:
    return make_service_account(push_dir / "fcm")


@pytest.fixture(scope="session")
def apns_peer_session(apns_credentials: ApnsCredentials, push_ca: TestCertificateAuthority) -> Iterator[ApnsPeer]:
    with ApnsPeer(apns_credentials, tls=push_ca.issue_server("apns")) as peer:
        yield peer


@pytest.fixture(scope="session")
def fcm_peer_session(fcm_service_account: ServiceAccount) -> Iterator[FcmPeer]:
    with FcmPeer(fcm_service_account) as peer:
        yield peer


@pytest.fixture
def apns_peer(apns_peer_session: ApnsPeer) -> ApnsPeer:
    apns_peer_session.reset()
    return apns_peer_session


@pytest.fixture
def fcm_peer(fcm_peer_session: FcmPeer) -> FcmPeer:
    fcm_peer_session.reset()
    return fcm_peer_session


@pytest.fixture
def push_settings(
    apns_peer: ApnsPeer,
    fcm_peer: FcmPeer,
    apns_credentials: ApnsCredentials,
    fcm_service_account: ServiceAccount,
    push_ca: TestCertificateAuthority,
) -> PushSettings:
    return PushSettings(
        providers=("apns", "fcm"),
        apns_key_file=str(apns_credentials.key_file),
        apns_key_id=apns_credentials.key_id,
        apns_team_id=apns_credentials.team_id,
        apns_topic=apns_credentials.topic,
        apns_server=apns_peer.server,
        apns_use_tls=True,
        apns_ca_file=str(push_ca.ca_file),
        fcm_credentials_file=str(fcm_service_account.file),
        fcm_url=fcm_peer.url,
        concurrency=8,
        send_timeout_s=2.0,
        max_tries=4,
        backoff_base_s=0.05,
        backoff_max_s=5.0,
    )
