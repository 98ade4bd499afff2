"""Typed settings, one dataclass per concern, read from ``MSSC_*`` environment variables.

Settings are read when the app is created (``Settings.from_env()``), never at import time, so tests
and several app instances in one process can each have their own. A wrong value fails at start-up
with a message naming the variable; production mode refuses the dev-only features.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

PREFIX = "MSSC_"

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing, malformed or not allowed in this mode; the message names it."""


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Process-wide behaviour."""

    #: ``dev`` allows the PSC sandbox, the dev push sink and generated secrets; ``production`` refuses them.
    mode: Literal["dev", "production"] = "dev"
    #: The public origin phones and browsers reach (QR URLs, WebAuthn RP id, token audience).
    public_url: str = "http://localhost:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    #: Secret for cookies, CSRF and derived keys. Generated per process in dev when unset.
    secret_key: str = ""
    log_level: str = "INFO"
    #: Roles this process runs: ``web`` (pages + phone API), ``push`` (worker), ``watcher``.
    roles: tuple[str, ...] = ("web", "push", "watcher")
    #: Where the embedded defaults keep their files (SQLite database, dev signing keys).
    data_dir: str = ".mssc-data"
    #: Reverse proxies (addresses or CIDR ranges) whose ``X-Forwarded-For`` / ``-Proto`` are believed.
    #: Empty: the peer address is the client's. Behind a proxy, set it, or every per-address rate
    #: limit (enrolment claims, service keys) counts the proxy as one client.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def rp_id(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Durable state. SQLite file by default, PostgreSQL by URL."""

    #: Empty means an SQLite file under ``app.data_dir``.
    url: str = ""
    echo: bool = False
    pool_size: int = 10
    #: Create the schema by running the Alembic migrations at start-up.
    migrate_on_start: bool = True

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Ephemeral state (sessions, rendezvous, challenges, replay cache, rate limits) and fan-out."""

    #: ``memory`` (one process) or a ``redis://`` URL.
    url: str = "memory"
    namespace: str = "mssc"

    @property
    def is_redis(self) -> bool:
        return self.url.startswith(("redis://", "rediss://", "unix://"))


@dataclass(frozen=True, slots=True)
class PscSettings:
    """Pro Santé Connect (OIDC). Every URL is configurable: PSC hosts have moved before."""

    #: Use the built-in PSC sandbox identity provider (dev only).
    sandbox: bool = True
    issuer: str = ""
    #: PSC publishes its discovery document at this non-standard path.
    discovery_path: str = "/.well-known/wallet-openid-configuration"
    client_id: str = "mss-companion"
    client_secret: str = ""
    scopes: str = "openid scope_all"
    acr_values: str = "eidas1"
    #: Authentication levels accepted in the ID token ``acr`` claim.
    accepted_acr: tuple[str, ...] = ("eidas1", "eidas2", "eidas3")
    http_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Web session: PSC's own limits (30 min idle, 4 h absolute)."""

    idle_s: int = 30 * 60
    absolute_s: int = 4 * 3600
    #: Enrolling a device needs a CPS/e-CPS login at most this old.
    recent_login_s: int = 10 * 60
    cookie_secure: bool = True
    cookie_name: str = "mssc_session"


@dataclass(frozen=True, slots=True)
class EnrolmentSettings:
    """QR rendezvous and device binding."""

    rendezvous_ttl_s: int = 120
    max_devices_per_professional: int = 5
    check_code_digits: int = 2
    #: Wrong secrets tolerated on one rendezvous before it is burnt.
    max_wrong_secrets: int = 3
    claims_per_ip_per_minute: int = 20
    #: ``none`` accepts any attestation; ``required`` demands a chain to one of ``attestation_roots``.
    attestation: Literal["none", "required"] = "none"
    attestation_roots: tuple[str, ...] = ()
    #: Extra WebAuthn origins for native apps, e.g. ``android:apk-key-hash:…``.
    extra_origins: tuple[str, ...] = ()
    device_idle_expiry_days: int = 90


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """Device-bound access and refresh tokens."""

    access_ttl_s: int = 300
    refresh_ttl_s: int = 30 * 24 * 3600
    #: Directory of PEM private keys (``<kid>.pem``); the newest signs, all verify. Generated in dev.
    signing_keys_dir: str = ""
    dpop_max_age_s: int = 60
    dpop_nonce_window_s: int = 300
    clock_skew_s: int = 5


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The MSSanté operator: IMAP and SMTP submission, and how the companion logs in as a gateway."""

    #: ``sandbox`` starts a local Dovecot operator in dev (the demo); ``remote`` uses the hosts below.
    kind: Literal["sandbox", "remote"] = "sandbox"
    imap_host: str = "127.0.0.1"
    imap_port: int = 143
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    #: ``starttls``, ``implicit`` (IMAPS/SMTPS) or ``plain`` (loopback tests only; refused in production).
    tls: Literal["starttls", "implicit", "plain"] = "starttls"
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    #: ``master`` (master user + authorization identity), ``bearer`` (JWT over XOAUTH2/OAUTHBEARER),
    #: ``certificate`` (SASL EXTERNAL with the client certificate).
    auth: Literal["master", "bearer", "certificate"] = "master"
    master_user: str = ""
    master_password: str = ""
    #: ``authzid`` (SASL PLAIN authorization identity) or ``dovecot`` (``mailbox*master`` login).
    master_style: Literal["authzid", "dovecot"] = "dovecot"
    bearer_issuer: str = ""
    bearer_key_file: str = ""
    bearer_ttl_s: int = 300
    bearer_mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "OAUTHBEARER"
    pool_idle_s: int = 120
    pool_max_per_mailbox: int = 4
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 30.0
    #: ``X-MSS-NIL`` on every message: the product reference given by the ANS.
    product_reference: str = "MSS-COMPANION-DEV"
    max_attachment_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TrustSpaceSettings:
    """The MSSanté liste blanche: only these domains (and patients' addresses) may be written to."""

    #: Path or URL of the published XML (``//Domaine/Nom``). Empty in dev: the sandbox list is used.
    source: str = ""
    refresh_s: int = 6 * 3600
    patient_domain: str = "patient.mssante.fr"


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    """Annuaire Santé (FHIR). ``sandbox`` serves a small local directory for the demo and tests."""

    kind: Literal["sandbox", "fhir"] = "sandbox"
    base_url: str = ""
    api_key: str = ""
    timeout_s: float = 10.0


#: Push providers a process can send through (``sink`` is the dev recorder).
PUSH_PROVIDERS = ("apns", "fcm", "sink")


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Push providers. A push carries no content (``contracts.push``); these only say how to send it."""

    #: ``apns``, ``fcm`` and/or ``sink`` (dev only: records pushes for the demo). Empty: the sink in
    #: dev, no push at all in production (phones then learn of new mail only when they poll).
    providers: tuple[str, ...] = ()
    #: Apple token auth: the ``AuthKey_<key id>.p8`` file, its key id, the team id, the app's bundle id.
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    #: ``production``, ``sandbox`` (development tokens) or ``host:port`` (a local APNs peer in tests).
    apns_server: str = "production"
    #: TLS with ALPN h2; ``false`` speaks h2c to a ``host:port`` peer (loopback tests only).
    apns_use_tls: bool = True
    #: Trust this CA file instead of the system's (a test CA).
    apns_ca_file: str = ""
    #: Firebase project; empty takes the service account's ``project_id``.
    fcm_project_id: str = ""
    #: Service-account JSON key file.
    fcm_credentials_file: str = ""
    #: Replaces the FCM v1 send URL (a local FCM peer in tests); ``{project_id}`` is filled in.
    fcm_url: str = ""
    #: Sends in flight at once, per provider.
    concurrency: int = 50
    #: Each send is abandoned (and retried) after this long; neither client library bounds it.
    send_timeout_s: float = 10.0
    #: Tries of one push before it is given up (the first send included).
    max_tries: int = 5
    #: First retry delay; it doubles each try (with jitter), never below a provider's ``Retry-After``.
    backoff_base_s: float = 1.0
    #: Longer waits are not slept through: the push goes back to the queue with a not-before time.
    backoff_max_s: float = 60.0

    def problems(self) -> list[str]:
        """Values that are wrong in any mode."""
        found = [
            f"MSSC_PUSH_PROVIDERS: unknown provider {name!r} (known: apns, fcm, sink)"
            for name in self.providers
            if name not in PUSH_PROVIDERS
        ]
        server = self.apns_server
        if server not in ("production", "sandbox"):
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                found.append("MSSC_PUSH_APNS_SERVER must be production, sandbox or host:port")
        if self.fcm_url and not self.fcm_url.startswith(("https://", "http://")):
            found.append("MSSC_PUSH_FCM_URL must be an http(s) URL")
        if self.concurrency < 1:
            found.append("MSSC_PUSH_CONCURRENCY must be at least 1")
        if self.send_timeout_s <= 0:
            found.append("MSSC_PUSH_SEND_TIMEOUT_S must be positive")
        if self.max_tries < 1:
            found.append("MSSC_PUSH_MAX_TRIES must be at least 1")
        if self.backoff_base_s <= 0 or self.backoff_max_s < self.backoff_base_s:
            found.append("MSSC_PUSH_BACKOFF_BASE_S must be positive and at most MSSC_PUSH_BACKOFF_MAX_S")
        return found

    def production_problems(self) -> list[str]:
        """What production must not run with: the dev sink and plaintext transports."""
        required = [
            ("sink" in self.providers, "MSSC_PUSH_PROVIDERS=sink is dev only (it records pushes for the demo)"),
            (not self.apns_use_tls, "MSSC_PUSH_APNS_USE_TLS=false is for loopback tests only"),
            (self.fcm_url.startswith("http://"), "MSSC_PUSH_FCM_URL must be https in production"),
        ]
        return [message for failed, message in required if failed]


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Visit and on-call alerts: escalation timing and limits."""

    #: An on-call alert nobody acknowledged within this delay goes to the next person on call.
    escalation_delay_s: int = 120
    #: Escalation steps after the first notification (next on call…, then the titulaire / manager).
    max_steps: int = 5
    #: Longest alert text, in characters (the text is encrypted at rest and never pushed).
    text_max_length: int = 1000
    #: How often each instance looks for alerts due to escalate.
    check_every_s: float = 5.0
    #: Acknowledged or closed alerts stay listed on the phone this long.
    recent_days: int = 7

    def __post_init__(self) -> None:
        if self.escalation_delay_s < 1:
            raise SettingsError("MSSC_ALERTS_ESCALATION_DELAY_S must be at least 1")
        if self.max_steps < 1:
            raise SettingsError("MSSC_ALERTS_MAX_STEPS must be at least 1")
        if not 1 <= self.text_max_length <= 4000:
            raise SettingsError("MSSC_ALERTS_TEXT_MAX_LENGTH must be between 1 and 4000")
        if self.check_every_s <= 0:
            raise SettingsError("MSSC_ALERTS_CHECK_EVERY_S must be positive")
        if self.recent_days < 0:
            raise SettingsError("MSSC_ALERTS_RECENT_DAYS cannot be negative")


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    """The new-mail watcher: IMAP IDLE per push-enabled mailbox, or the operator's webhook."""

    #: ``idle`` (one IDLE session per mailbox with a push-enabled device), ``webhook`` (the operator
    #: calls ``/operator/webhook/new-mail`` on delivery: no IMAP session at all) or ``off``.
    mode: Literal["idle", "webhook", "off"] = "idle"
    #: A watcher's claim on a mailbox lasts this long unless renewed (every third of it): a dead
    #: watcher's mailboxes are taken over after at most this, plus one renewal period.
    lease_ttl_s: float = 10.0
    #: IDLE is ended and re-issued this often (RFC 2177: at most 29 minutes).
    idle_refresh_s: float = 25 * 60
    #: Mailboxes one watcher process watches at most (one IMAP connection each).
    max_mailboxes_per_watcher: int = 500
    #: How often the database is asked which mailboxes have a push-enabled device.
    discover_every_s: float = 10.0
    #: After the first news, wait this long for more: a burst of deliveries makes one event.
    coalesce_s: float = 0.1
    #: Reconnect backoff: first delay, doubling (with jitter) up to the maximum.
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    #: HTTP Basic credentials the operator's webhook calls must carry (``url=http://user:password@…``
    #: in Dovecot's OX driver). Required in ``webhook`` mode; the password at least 16 characters.
    webhook_user: str = ""
    webhook_password: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.idle_refresh_s <= 29 * 60:
            raise SettingsError("MSSC_WATCHER_IDLE_REFRESH_S must be within (0, 1740] (RFC 2177: 29 minutes)")
        if self.lease_ttl_s < 0.3:
            raise SettingsError("MSSC_WATCHER_LEASE_TTL_S must be at least 0.3")
        if self.max_mailboxes_per_watcher < 1:
            raise SettingsError("MSSC_WATCHER_MAX_MAILBOXES_PER_WATCHER must be at least 1")
        if self.discover_every_s <= 0 or self.coalesce_s < 0:
            raise SettingsError("MSSC_WATCHER_DISCOVER_EVERY_S must be positive, MSSC_WATCHER_COALESCE_S not negative")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise SettingsError(
                "MSSC_WATCHER_RECONNECT_MIN_S must be positive and at most MSSC_WATCHER_RECONNECT_MAX_S"
            )
        if self.mode == "webhook" and (not self.webhook_user or len(self.webhook_password) < 16):
            raise SettingsError(
                "MSSC_WATCHER_MODE=webhook needs MSSC_WATCHER_WEBHOOK_USER and MSSC_WATCHER_WEBHOOK_PASSWORD "
                "(at least 16 characters)"
            )
        if ":" in self.webhook_user:
            raise SettingsError("MSSC_WATCHER_WEBHOOK_USER cannot contain ':' (HTTP Basic)")


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings, grouped by concern."""

    app: AppSettings = field(default_factory=AppSettings)
    db: DatabaseSettings = field(default_factory=DatabaseSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    psc: PscSettings = field(default_factory=PscSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    enrolment: EnrolmentSettings = field(default_factory=EnrolmentSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    trust_space: TrustSpaceSettings = field(default_factory=TrustSpaceSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    push: PushSettings = field(default_factory=PushSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    watcher: WatcherSettings = field(default_factory=WatcherSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``MSSC_<GROUP>_<NAME>`` variables, then apply keyword overrides.

        ``overrides`` take group objects (``db=DatabaseSettings(...)``), which tests use.
        """
        env = os.environ if environ is None else environ
        known = {
            f"{PREFIX}{g.name.upper()}_{f.name.upper()}"
            for g in dataclasses.fields(cls)
            for f in dataclasses.fields(_group_type(g))
        }
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        groups: dict[str, Any] = {}
        for group in dataclasses.fields(cls):
            if group.name in overrides:
                groups[group.name] = overrides[group.name]
                continue
            groups[group.name] = _read_group(_group_type(group), f"{PREFIX}{group.name.upper()}_", env)
        settings = cls(**groups)
        return settings.checked()

    def _production_problems(self) -> list[str]:
        app, psc = self.app, self.psc
        required = [
            (len(app.secret_key) < 32, "MSSC_APP_SECRET_KEY (at least 32 characters) is required in production"),
            (psc.sandbox, "MSSC_PSC_SANDBOX must be false in production (the PSC sandbox is dev only)"),
            (not psc.sandbox and not psc.issuer, "MSSC_PSC_ISSUER is required"),
            (not psc.client_secret, "MSSC_PSC_CLIENT_SECRET is required in production"),
            (not self.db.url, "MSSC_DB_URL is required in production"),
            (not self.tokens.signing_keys_dir, "MSSC_TOKENS_SIGNING_KEYS_DIR is required in production"),
            (not app.public_url.startswith("https://"), "MSSC_APP_PUBLIC_URL must be https in production"),
            (not self.session.cookie_secure, "MSSC_SESSION_COOKIE_SECURE cannot be false in production"),
            (self.operator.kind == "sandbox", "MSSC_OPERATOR_KIND must be remote in production"),
            (self.operator.tls == "plain", "MSSC_OPERATOR_TLS=plain is for loopback tests only"),
            (self.directory.kind == "sandbox", "MSSC_DIRECTORY_KIND must be fhir in production"),
            (not self.trust_space.source, "MSSC_TRUST_SPACE_SOURCE is required in production"),
        ]
        return [message for failed, message in required if failed] + self.push.production_problems()

    def checked(self) -> Settings:
        """Fill dev-only defaults and refuse what production must not run with."""
        app = self.app
        push_problems = self.push.problems()
        if push_problems:
            raise SettingsError("; ".join(push_problems))
        if app.is_production:
            problems = self._production_problems()
            if problems:
                raise SettingsError("; ".join(problems))
            return self
        if not app.secret_key:
            app = dataclasses.replace(app, secret_key=_dev_secret(Path(app.data_dir)))
        psc = self.psc
        if psc.sandbox and not psc.issuer:
            psc = dataclasses.replace(psc, issuer=f"{app.origin}/psc-sandbox/auth/realms/esante-wallet")
        if psc.sandbox and not psc.client_secret:
            psc = dataclasses.replace(psc, client_secret="sandbox-client-secret")  # noqa: S106 - dev sandbox
        data = Path(app.data_dir)
        db = self.db
        if not db.url:
            data.mkdir(parents=True, exist_ok=True)
            db = dataclasses.replace(db, url=f"sqlite+aiosqlite:///{data / 'mss-companion.sqlite3'}")
        tokens = self.tokens
        if not tokens.signing_keys_dir:
            tokens = dataclasses.replace(tokens, signing_keys_dir=str(data / "signing-keys"))
        operator = self.operator
        if operator.kind == "sandbox" and operator.auth == "master" and not operator.master_user:
            # The dev operator is a local Dovecot on loopback with a known gateway account.
            operator = dataclasses.replace(
                operator,
                master_user="mssc-gateway",
                master_password="sandbox-gateway-password",  # noqa: S106 - the dev operator only
                tls="plain",
            )
        push = self.push
        if not push.providers:
            # The demo records pushes in the dev sink: no Apple or Google account needed.
            push = dataclasses.replace(push, providers=("sink",))
        return dataclasses.replace(self, app=app, psc=psc, db=db, tokens=tokens, operator=operator, push=push)


def _dev_secret(data_dir: Path) -> str:
    """Dev only: one secret kept in the data dir, so a restart keeps alert texts readable and nonces valid."""
    path = data_dir / "dev-secret-key"
    try:
        if path.exists():
            return path.read_text().strip()
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        path.touch(mode=0o600)
        path.write_text(secret)
        return secret
    except OSError:  # a read-only data dir: a per-process secret still works, just not across restarts
        return secrets.token_urlsafe(32)


def _group_type(group: dataclasses.Field[Any]) -> type[Any]:
    hints = get_type_hints(Settings)
    return hints[group.name]  # type: ignore[no-any-return]


def _read_group(kind: type[T], prefix: str, env: Mapping[str, str]) -> T:
    hints = get_type_hints(kind)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):  # type: ignore[arg-type]
        name = f"{prefix}{f.name.upper()}"
        if name in env:
            values[f.name] = _parse(name, env[name], hints[f.name])
    return kind(**values)


def _parse(name: str, raw: str, hint: Any) -> Any:  # noqa: PLR0911 - one return per type
    origin = get_origin(hint)
    try:
        if hint is bool:
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
        if origin is Literal:
            if raw not in get_args(hint):
                raise ValueError(raw)
            return raw
        if origin is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        expected = "|".join(get_args(hint)) if origin is Literal else getattr(hint, "__name__", str(hint))
        raise SettingsError(f"{name}={raw!r} is not a valid {expected}") from None
    raise SettingsError(f"{name}: unsupported setting type {hint!r}")
