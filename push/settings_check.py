"""Push provider configuration, checked once at start-up (before the first push, not during it).

``core.settings`` has already refused wrong types and values; this reads what the settings point at
(the .p8 key, the service-account file) and fails fast with every problem at once, naming each
variable. What is odd but workable is returned as warnings (settings for a provider that is not
enabled, a key id that does not look like Apple's), like sygnal's unknown-key warnings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from core.settings import PushSettings, SettingsError

_APPLE_ID: Final = re.compile(r"^[A-Z0-9]{10}$")
_BUNDLE_ID: Final = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SERVICE_ACCOUNT_KEYS: Final = frozenset(
    {
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    }
)
#: Settings that only mean something with their provider enabled.
_PROVIDER_FIELDS: Final = {
    "apns": ("apns_key_file", "apns_key_id", "apns_team_id", "apns_topic", "apns_ca_file"),
    "fcm": ("fcm_project_id", "fcm_credentials_file", "fcm_url"),
}


class PushConfigError(SettingsError):
    """The push configuration cannot work; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class ApnsConfig:
    key_pem: str
    key_id: str
    team_id: str
    topic: str
    server: str
    use_tls: bool
    ca_file: str | None


@dataclass(frozen=True, slots=True)
class FcmConfig:
    service_account: dict[str, Any]
    project_id: str
    url: str | None


@dataclass(frozen=True, slots=True)
class PushConfig:
    """Checked and loaded: what the factory builds providers from."""

    settings: PushSettings
    apns: ApnsConfig | None = None
    fcm: FcmConfig | None = None
    sink: bool = False
    warnings: list[str] = field(default_factory=list)


def check_push_settings(push: PushSettings, *, production: bool) -> PushConfig:
    """Load and check the enabled providers' configuration; raise :class:`PushConfigError` if it cannot work."""
    problems = push.problems() + (push.production_problems() if production else [])
    warnings: list[str] = []
    enabled = set(push.providers)
    for provider, names in _PROVIDER_FIELDS.items():
        if provider not in enabled:
            warnings += [
                f"MSSC_PUSH_{name.upper()} is set but {provider} is not in MSSC_PUSH_PROVIDERS: ignored"
                for name in names
                if getattr(push, name)
            ]
    if not enabled:
        warnings.append("no push provider enabled: phones are not woken (MSSC_PUSH_PROVIDERS)")
    apns = _check_apns(push, problems, warnings) if "apns" in enabled else None
    fcm = _check_fcm(push, problems, warnings, production=production) if "fcm" in enabled else None
    if problems:
        raise PushConfigError("; ".join(problems))
    return PushConfig(settings=push, apns=apns, fcm=fcm, sink="sink" in enabled, warnings=warnings)


def _check_apns(push: PushSettings, problems: list[str], warnings: list[str]) -> ApnsConfig:
    key_pem = _load_apns_key(push.apns_key_file, problems)
    for name, value in (("APNS_KEY_ID", push.apns_key_id), ("APNS_TEAM_ID", push.apns_team_id)):
        if not value:
            problems.append(f"MSSC_PUSH_{name} is required for apns")
        elif not _APPLE_ID.match(value):
            warnings.append(f"MSSC_PUSH_{name} does not look like Apple's (10 capitals or digits)")
    if not push.apns_topic:
        problems.append("MSSC_PUSH_APNS_TOPIC (the app's bundle id) is required for apns")
    elif not _BUNDLE_ID.match(push.apns_topic):
        problems.append("MSSC_PUSH_APNS_TOPIC must be a bundle id such as fr.example.companion")
    local = push.apns_server not in ("production", "sandbox")
    if not push.apns_use_tls and not local:
        problems.append("MSSC_PUSH_APNS_USE_TLS=false only reaches a host:port peer, never Apple")
    if local:
        warnings.append("MSSC_PUSH_APNS_SERVER is a host:port: pushes do not go to Apple")
    if push.apns_ca_file and not Path(push.apns_ca_file).is_file():
        problems.append("MSSC_PUSH_APNS_CA_FILE does not exist")
    return ApnsConfig(
        key_pem=key_pem,
        key_id=push.apns_key_id,
        team_id=push.apns_team_id,
        topic=push.apns_topic,
        server=push.apns_server,
        use_tls=push.apns_use_tls,
        ca_file=push.apns_ca_file or None,
    )


def _load_apns_key(path: str, problems: list[str]) -> str:
    if not path:
        problems.append("MSSC_PUSH_APNS_KEY_FILE (the AuthKey_….p8 file) is required for apns")
        return ""
    try:
        key_pem = Path(path).read_text()
        key = load_pem_private_key(key_pem.encode(), password=None)
    except (OSError, ValueError, TypeError):
        problems.append("MSSC_PUSH_APNS_KEY_FILE is not a readable PEM private key")
        return ""
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)):
        problems.append("MSSC_PUSH_APNS_KEY_FILE must hold a P-256 (ES256) key, as Apple's .p8 does")
    return key_pem


def _check_fcm(push: PushSettings, problems: list[str], warnings: list[str], *, production: bool) -> FcmConfig:
    info: dict[str, Any] = {}
    if not push.fcm_credentials_file:
        problems.append("MSSC_PUSH_FCM_CREDENTIALS_FILE (a service-account JSON key) is required for fcm")
    else:
        try:
            loaded = json.loads(Path(push.fcm_credentials_file).read_text())
        except (OSError, ValueError):
            loaded = None
        if not isinstance(loaded, dict):
            problems.append("MSSC_PUSH_FCM_CREDENTIALS_FILE is not a readable JSON object")
        else:
            info = loaded
            _check_service_account(info, problems, warnings)
    project_id = push.fcm_project_id or str(info.get("project_id") or "")
    if not project_id:
        problems.append("MSSC_PUSH_FCM_PROJECT_ID is required (the service account names none)")
    elif info.get("project_id") and push.fcm_project_id and info["project_id"] != push.fcm_project_id:
        warnings.append("MSSC_PUSH_FCM_PROJECT_ID differs from the service account's project: sending cross-project")
    if push.fcm_url and production:
        warnings.append("MSSC_PUSH_FCM_URL overrides Google's FCM endpoint")
    return FcmConfig(service_account=info, project_id=project_id, url=push.fcm_url or None)


def _check_service_account(info: dict[str, Any], problems: list[str], warnings: list[str]) -> None:
    name = "MSSC_PUSH_FCM_CREDENTIALS_FILE"
    if info.get("type") != "service_account":
        problems.append(f"{name} must be a service-account key (type service_account)")
    missing = [key for key in ("private_key", "client_email", "token_uri") if not info.get(key)]
    if missing:
        problems.append(f"{name} lacks {', '.join(missing)}")
    unknown = sorted(set(info) - _SERVICE_ACCOUNT_KEYS)
    if unknown:
        warnings.append(f"{name} has unknown keys, ignored: {', '.join(unknown)}")
    if info.get("private_key"):
        try:
            key = load_pem_private_key(str(info["private_key"]).encode(), password=None)
        except (ValueError, TypeError):
            problems.append(f"{name}: private_key is not a PEM private key")
        else:
            if not isinstance(key, rsa.RSAPrivateKey):
                problems.append(f"{name}: private_key must be an RSA key")
