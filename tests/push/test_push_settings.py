"""Push settings: typed from MSSC_PUSH_*, checked at start-up; the factory; the dev sink."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from contracts.push import AlertClass, LocKey, PushPayload
from core.settings import PushSettings, Settings, SettingsError
from push.payload import PushTarget, build_notification, mail_payload
from push.providers.apns import ApnsProvider
from push.providers.base import PushKind, PushNotification, PushPriority
from push.providers.factory import build_providers, providers_from_settings
from push.providers.fcm import FcmProvider
from push.providers.sink import SinkProvider
from push.settings_check import PushConfigError, check_push_settings
from tests.peers.apns import ApnsPeer
from tests.peers.fcm import FcmPeer, ServiceAccount
from tests.push.conftest import apns_token, fcm_token, notification

PRODUCTION = {
    "MSSC_APP_MODE": "production",
    "MSSC_APP_SECRET_KEY": "s" * 40,
    "MSSC_APP_PUBLIC_URL": "https://companion.example.fr",
    "MSSC_PSC_SANDBOX": "false",
    "MSSC_PSC_ISSUER": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
    "MSSC_PSC_CLIENT_SECRET": "from-the-ans",
    "MSSC_DB_URL": "postgresql+asyncpg://db/mssc",
    "MSSC_TOKENS_SIGNING_KEYS_DIR": "/run/secrets/keys",
    "MSSC_OPERATOR_KIND": "remote",
    "MSSC_DIRECTORY_KIND": "fhir",
    "MSSC_TRUST_SPACE_SOURCE": "https://operateur.example/liste-blanche.xml",
}


def test_push_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MSSC_APP_DATA_DIR": str(tmp_path),
            "MSSC_PUSH_PROVIDERS": "apns, fcm",
            "MSSC_PUSH_APNS_SERVER": "sandbox",
            "MSSC_PUSH_CONCURRENCY": "20",
            "MSSC_PUSH_SEND_TIMEOUT_S": "2.5",
            "MSSC_PUSH_APNS_USE_TLS": "true",
        }
    )
    push = settings.push
    assert push.providers == ("apns", "fcm")
    assert (push.apns_server, push.concurrency, push.send_timeout_s) == ("sandbox", 20, 2.5)


def test_dev_records_pushes_in_the_sink_by_default(tmp_path: Path) -> None:
    assert Settings.from_env({"MSSC_APP_DATA_DIR": str(tmp_path)}).push.providers == ("sink",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MSSC_PUSH_PROVIDERS", "apns,gcm"),
        ("MSSC_PUSH_APNS_SERVER", "apple"),
        ("MSSC_PUSH_APNS_SERVER", "localhost:99999"),
        ("MSSC_PUSH_CONCURRENCY", "0"),
        ("MSSC_PUSH_MAX_TRIES", "0"),
        ("MSSC_PUSH_SEND_TIMEOUT_S", "-1"),
        ("MSSC_PUSH_FCM_URL", "ftp://x"),
        ("MSSC_PUSH_APNS_USE_TLS", "perhaps"),
    ],
)
def test_a_wrong_push_setting_fails_at_start_naming_itself(name: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"MSSC_APP_DATA_DIR": str(tmp_path), name: value})


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"MSSC_PUSH_PROVIDERS": "sink"}, "MSSC_PUSH_PROVIDERS=sink"),
        ({"MSSC_PUSH_PROVIDERS": "apns", "MSSC_PUSH_APNS_USE_TLS": "false"}, "MSSC_PUSH_APNS_USE_TLS"),
        ({"MSSC_PUSH_PROVIDERS": "fcm", "MSSC_PUSH_FCM_URL": "http://127.0.0.1:1/x"}, "MSSC_PUSH_FCM_URL"),
    ],
)
def test_production_refuses_the_sink_and_plaintext(extra: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(PRODUCTION | extra)


def test_production_without_push_starts_and_is_warned() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.push.providers == ()
    config = check_push_settings(settings.push, production=True)
    assert any("no push provider" in warning for warning in config.warnings)


def test_a_checked_configuration_loads_the_key_and_the_service_account(push_settings: PushSettings) -> None:
    config = check_push_settings(push_settings, production=False)
    assert config.apns is not None and "PRIVATE KEY" in config.apns.key_pem
    assert config.fcm is not None and config.fcm.project_id == "mssc-test"
    assert config.warnings == ["MSSC_PUSH_APNS_SERVER is a host:port: pushes do not go to Apple"]


def test_every_missing_apns_and_fcm_setting_is_named_at_once() -> None:
    with pytest.raises(PushConfigError) as err:
        check_push_settings(PushSettings(providers=("apns", "fcm")), production=False)
    for name in (
        "MSSC_PUSH_APNS_KEY_FILE",
        "MSSC_PUSH_APNS_KEY_ID",
        "MSSC_PUSH_APNS_TEAM_ID",
        "MSSC_PUSH_APNS_TOPIC",
        "MSSC_PUSH_FCM_CREDENTIALS_FILE",
        "MSSC_PUSH_FCM_PROJECT_ID",
    ):
        assert name in str(err.value)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_wrong_key_files_fail_fast(push_settings: PushSettings, tmp_path: Path) -> None:
    rsa_key = tmp_path / "AuthKey.p8"
    rsa_key.write_text(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    service_account = tmp_path / "sa.json"
    service_account.write_text(
        json.dumps({"type": "authorized_user", "private_key": _pem(ec.generate_private_key(ec.SECP384R1()))})
    )
    broken = dataclasses.replace(
        push_settings, apns_key_file=str(rsa_key), apns_topic="not a bundle", fcm_credentials_file=str(service_account)
    )
    with pytest.raises(PushConfigError) as err:
        check_push_settings(broken, production=False)
    message = str(err.value)
    assert "P-256" in message and "bundle id" in message
    assert "type service_account" in message and "lacks client_email, token_uri" in message and "RSA" in message
    missing = dataclasses.replace(push_settings, apns_key_file=str(tmp_path / "nowhere.p8"))
    with pytest.raises(PushConfigError, match="MSSC_PUSH_APNS_KEY_FILE is not a readable"):
        check_push_settings(missing, production=False)


def test_odd_but_workable_settings_are_warned(
    push_settings: PushSettings, fcm_service_account: ServiceAccount, tmp_path: Path
) -> None:
    account = dict(fcm_service_account.info, colour="blue")
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account))
    odd = dataclasses.replace(
        push_settings, providers=("fcm",), apns_key_id="abc", fcm_credentials_file=str(path), fcm_project_id="other"
    )
    warnings = check_push_settings(odd, production=False).warnings
    assert "MSSC_PUSH_APNS_KEY_ID is set but apns is not in MSSC_PUSH_PROVIDERS: ignored" in warnings
    assert any("unknown keys, ignored: colour" in w for w in warnings)
    assert any("differs from the service account's project" in w for w in warnings)


async def test_the_factory_builds_and_routes_providers_that_reach_the_peers(
    push_settings: PushSettings, apns_peer: ApnsPeer, fcm_peer: FcmPeer, tmp_path: Path
) -> None:
    settings = Settings.from_env({"MSSC_APP_DATA_DIR": str(tmp_path)}, push=push_settings)
    providers = providers_from_settings(settings)
    try:
        assert isinstance(providers["apns"], ApnsProvider) and isinstance(providers["fcm"], FcmProvider)
        assert providers.sink is None
        apns = providers.for_target(PushTarget("d1", "apns", apns_token()))
        fcm = providers.for_target(PushTarget("d2", "fcm", fcm_token()))
        assert apns is providers["apns"] and fcm is providers["fcm"]
        assert providers.for_target(PushTarget("d3", "none", "x")) is None
        apns_push, fcm_push = notification(apns_token()), notification(fcm_token(), provider="fcm")
        assert (await apns.send([apns_push])).accepted == [apns_push.push_id]
        assert (await fcm.send([fcm_push])).accepted == [fcm_push.push_id]
        assert len(apns_peer.records) == len(fcm_peer.records) == 1
    finally:
        await providers.aclose()


async def test_the_sink_takes_devices_whose_provider_is_not_enabled() -> None:
    providers = build_providers(check_push_settings(PushSettings(providers=("sink",)), production=False))
    sink = providers.sink
    assert sink is not None
    assert providers.for_target(PushTarget("d1", "apns", "t")) is sink
    assert providers.for_target(PushTarget("d1", "none", "t")) is sink


async def test_the_sink_records_checks_and_can_play_a_dead_token() -> None:
    sink = SinkProvider(capacity=2)
    payload = mail_payload(event_id=uuid.uuid4().hex, mailbox_id=uuid.uuid4(), badge=1)
    first = build_notification(PushTarget("dev-1", "none", "tok-1"), payload)
    report = await sink.send([first])
    assert report.accepted == [first.push_id]
    (record,) = await sink.wait_for("dev-1", timeout_s=1)
    assert record.payload == payload.to_wire() and record.alert_class is AlertClass.MAIL
    sink.mark_dead("tok-1")
    again = await sink.send(
        [build_notification(PushTarget("dev-1", "none", "tok-1"), payload, push_id=str(uuid.uuid4()))]
    )
    assert [d.reason for d in again.dead_tokens] == ["sink: marked dead"]
    forged = PushNotification(
        push_id=str(uuid.uuid4()),
        device_id="dev-2",
        token="tok-2",
        payload=PushPayload(
            alert_class=AlertClass.MAIL, event_id="Dr Canary", mailbox_id=str(uuid.uuid4()), loc_key=LocKey.NEW_MESSAGE
        ),
        kind=PushKind.ALERT,
        priority=PushPriority.HIGH,
        expires_at=first.expires_at,
    )
    refused = await sink.send([forged])
    assert [f.reason for f in refused.failed_permanently] == ["refused: not an opaque id"]
    assert sink.records("dev-2") == []
    with pytest.raises(TimeoutError):
        await sink.wait_for("dev-2", timeout_s=0.05)
