"""Settings come from MSSC_* variables; a wrong one fails at start-up naming itself."""

from __future__ import annotations

import pytest

from core.settings import Settings, SettingsError


def test_embedded_defaults_need_no_configuration(tmp_path: object) -> None:
    settings = Settings.from_env({"MSSC_APP_DATA_DIR": str(tmp_path)})
    assert settings.db.url.startswith("sqlite+aiosqlite:///")
    assert settings.store.url == "memory"
    assert settings.psc.sandbox and settings.psc.issuer.endswith("/psc-sandbox/auth/realms/esante-wallet")
    assert len(settings.app.secret_key) >= 32


def test_values_are_parsed_by_type() -> None:
    settings = Settings.from_env(
        {
            "MSSC_ENROLMENT_MAX_DEVICES_PER_PROFESSIONAL": "3",
            "MSSC_SESSION_COOKIE_SECURE": "false",
            "MSSC_ENROLMENT_EXTRA_ORIGINS": "android:apk-key-hash:abc, ios:bundle:fr.example",
            "MSSC_STORE_URL": "redis://127.0.0.1:6379/0",
            "MSSC_APP_DATA_DIR": "/tmp/mssc-settings-test",
        }
    )
    assert settings.enrolment.max_devices_per_professional == 3
    assert settings.session.cookie_secure is False
    assert settings.enrolment.extra_origins == ("android:apk-key-hash:abc", "ios:bundle:fr.example")
    assert settings.store.is_redis


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MSSC_ENROLMENT_MAX_DEVICES_PER_PROFESSIONAL", "five"),
        ("MSSC_SESSION_COOKIE_SECURE", "maybe"),
        ("MSSC_APP_MODE", "staging"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_unknown_variables_are_refused() -> None:
    with pytest.raises(SettingsError, match="MSSC_PSC_CLIENT_SECRETT"):
        Settings.from_env({"MSSC_PSC_CLIENT_SECRETT": "typo"})


def test_production_refuses_dev_features_and_missing_secrets() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"MSSC_APP_MODE": "production"})
    message = str(err.value)
    for name in (
        "MSSC_APP_SECRET_KEY",
        "MSSC_PSC_SANDBOX",
        "MSSC_PSC_CLIENT_SECRET",
        "MSSC_DB_URL",
        "MSSC_TOKENS_SIGNING_KEYS_DIR",
        "MSSC_APP_PUBLIC_URL",
    ):
        assert name in message


def test_a_complete_production_configuration_starts() -> None:
    settings = Settings.from_env(
        {
            "MSSC_APP_MODE": "production",
            "MSSC_APP_SECRET_KEY": "s" * 40,
            "MSSC_APP_PUBLIC_URL": "https://companion.example.fr",
            "MSSC_PSC_SANDBOX": "false",
            "MSSC_PSC_ISSUER": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
            "MSSC_PSC_CLIENT_SECRET": "from-the-ans",
            "MSSC_DB_URL": "postgresql+asyncpg://db/mssc",
            "MSSC_STORE_URL": "redis://redis:6379/0",
            "MSSC_TOKENS_SIGNING_KEYS_DIR": "/run/secrets/keys",
            "MSSC_OPERATOR_KIND": "remote",
            "MSSC_OPERATOR_IMAP_HOST": "imap.operateur.example",
            "MSSC_DIRECTORY_KIND": "fhir",
            "MSSC_DIRECTORY_BASE_URL": "https://annuaire.example/fhir/v2",
            "MSSC_TRUST_SPACE_SOURCE": "https://operateur.example/liste-blanche.xml",
        }
    )
    assert settings.app.is_production and not settings.psc.sandbox


def test_the_dev_secret_survives_a_restart(tmp_path: object) -> None:
    first = Settings.from_env({"MSSC_APP_DATA_DIR": str(tmp_path)})
    second = Settings.from_env({"MSSC_APP_DATA_DIR": str(tmp_path)})
    assert first.app.secret_key == second.app.secret_key and len(first.app.secret_key) >= 32


def test_forwarded_headers_are_believed_only_from_trusted_proxies() -> None:
    import uvicorn

    from backend.cli import uvicorn_options

    async def echo(scope: dict[str, object], receive: object, send: object) -> None:
        raise AssertionError("not called")

    plain = uvicorn_options(Settings.from_env({}))
    assert plain["proxy_headers"] is False
    behind = uvicorn_options(Settings.from_env({"MSSC_APP_TRUSTED_PROXIES": "10.0.0.5,192.168.0.0/24"}))
    assert behind["proxy_headers"] is True
    config = uvicorn.Config(echo, **behind)
    config.load()
    middleware = config.loaded_app
    trusted = middleware.trusted_hosts  # type: ignore[attr-defined]
    assert "10.0.0.5" in trusted and "192.168.0.7" in trusted and "10.0.0.6" not in trusted
