"""The composition root: every service of one app instance, built once from its settings."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.alerts import AlertCipher, AlertService, AvailabilityService, EscalationLoop, RotaService, ServiceClients
from backend.alerts.availability import AlertClass as AvailabilityClass
from backend.alerts.availability import decide
from backend.alerts.service import AlertNotice
from backend.auth.access_tokens import AccessTokenIssuer
from backend.auth.dpop import DpopNonces
from backend.auth.refresh_tokens import RefreshTokens
from backend.auth.revocation import DeviceRevocations
from backend.auth.signing_keys import SigningKeys, ensure_dev_key
from backend.device_auth import DeviceAuthenticator
from backend.device_tokens import DeviceTokens
from backend.mail.access import MailboxDirectory
from backend.mail.directory import Directory, create_directory
from backend.mail.operator.connector import OperatorConnector
from backend.mail.service import MailService
from backend.mail.trust import TrustSpace
from backend.maintenance import Maintenance
from contracts.alerts import AlertKind
from contracts.events import Event, EventType
from contracts.push import AlertClass as PushClass
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Device
from core.device_registry import DeviceRegistry
from core.ephemeral import Ephemeral, RedisEphemeral, create_ephemeral
from core.fanout import FanOut, MemoryFanOut, RedisFanOut, new_event
from core.logging import get_logger
from core.queue import DurableQueue, create_queue
from core.settings import Settings
from enrolment.enrolment_service import EnrolmentService
from enrolment.identity_service import IdentityService
from enrolment.psc.client import PscClient
from enrolment.team_service import TeamService
from enrolment.web.sessions import SessionStore
from push.delivery import RetryPolicy
from push.metrics import PushMetrics
from push.pipeline import Allow, PushPipeline
from push.providers.factory import PushProviders, providers_from_settings
from push.watcher import Watcher

log = get_logger("mssc.app")


@dataclass
class Container:
    settings: Settings
    db: Database
    ephemeral: Ephemeral
    audit: AuditTrail
    signing_keys: SigningKeys
    access: AccessTokenIssuer
    revocations: DeviceRevocations
    authenticator: DeviceAuthenticator
    devices: DeviceRegistry
    device_tokens: DeviceTokens
    enrolment: EnrolmentService
    teams: TeamService
    identity: IdentityService
    sessions: SessionStore
    psc: PscClient
    fanout: FanOut
    maintenance: Maintenance
    connector: OperatorConnector
    trust: TrustSpace
    directory: Directory
    mail: MailService
    availability: AvailabilityService
    rota: RotaService
    alerts: AlertService
    service_clients: ServiceClients
    escalations: EscalationLoop
    queue: DurableQueue
    providers: PushProviders
    pipeline: PushPipeline
    watcher: Watcher

    async def start(self) -> None:
        """Background parts: fan-out listener, trust-space refresh, housekeeping."""
        await self.fanout.start()
        await self.trust.start()
        self.maintenance.start()
        self.escalations.start()
        if "push" in self.settings.app.roles:
            self.pipeline.start()
        if "watcher" in self.settings.app.roles:
            await self.watcher.start()

    async def close(self) -> None:
        await self.watcher.stop()
        await self.pipeline.stop()
        await self.providers.aclose()
        await self.queue.close()
        await self.escalations.stop()
        await self.maintenance.stop()
        await self.connector.aclose()
        await self.trust.aclose()
        await self.directory.aclose()
        await self.fanout.stop()
        await self.psc.aclose()
        await self.ephemeral.close()
        await self.db.dispose()


#: Push classes that availability governs (on-call alerts and wipes always go).
_AVAILABILITY_CLASS: dict[PushClass, AvailabilityClass] = {
    PushClass.MAIL: "mail",
    PushClass.VISIT_ALERT: "visit",
}


def _derive(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"mssc|{purpose}|{secret}".encode()).digest()


def _allowance(availability: AvailabilityService) -> Allow:
    """The pipeline's question "who may get this push now": mail and visit alerts follow availability."""

    async def allow(professionals: Collection[uuid.UUID], alert_class: PushClass) -> set[uuid.UUID]:
        kind = _AVAILABILITY_CLASS.get(alert_class)
        if kind is None:
            return set(professionals)
        now = dt.datetime.now(dt.UTC)
        states = await availability.get_many(professionals)
        return {p for p, state in states.items() if decide(state, kind, now, on_call=False)}

    return allow


async def build_container(settings: Settings, *, psc_http: httpx.AsyncClient | None = None) -> Container:
    db = Database(settings.db)
    if settings.db.migrate_on_start:
        await db.migrate()
    ephemeral = create_ephemeral(settings.store.url, settings.store.namespace)
    audit = AuditTrail(db)
    if not settings.app.is_production:
        ensure_dev_key(settings.tokens.signing_keys_dir)
    signing_keys = SigningKeys.load(settings.tokens.signing_keys_dir)
    origin = settings.app.origin
    access = AccessTokenIssuer(
        signing_keys, issuer=origin, audience=f"{origin}/api", ttl_s=settings.tokens.access_ttl_s
    )
    nonces = DpopNonces(_derive(settings.app.secret_key, "dpop-nonce"), settings.tokens.dpop_nonce_window_s)
    revocations = DeviceRevocations.for_settings(ephemeral, settings.tokens)
    authenticator = DeviceAuthenticator(
        settings=settings, access=access, nonces=nonces, replay=ephemeral, revocations=revocations
    )
    devices = DeviceRegistry(db, audit)
    fanout: FanOut = (
        RedisFanOut(ephemeral.client, settings.store.namespace)
        if isinstance(ephemeral, RedisEphemeral)
        else MemoryFanOut()
    )

    queue = create_queue(settings.store)
    providers = providers_from_settings(settings)
    availability = AvailabilityService(db, audit)

    pipeline = PushPipeline(
        db=db,
        queue=queue,
        providers=providers,
        retry=RetryPolicy.from_settings(settings.push),
        metrics=PushMetrics(),
        allow=_allowance(availability),
    )

    async def deny(device: Device, reason: str) -> None:
        await revocations.revoke(device.id)
        event = new_event(
            EventType.DEVICE_REVOKED,
            device_id=str(device.id),
            professional_id=str(device.professional_id),
            reason=reason,
        )
        await fanout.publish(event)  # every instance cuts the device's operator sessions
        await pipeline.publish(event)  # durably: the silent wipe push

    devices.on_revoked(deny)
    refresh = RefreshTokens(ttl_s=settings.tokens.refresh_ttl_s)
    device_tokens = DeviceTokens(
        settings=settings,
        db=db,
        audit=audit,
        access=access,
        refresh=refresh,
        registry=devices,
        ephemeral=ephemeral,
    )
    enrolment = EnrolmentService(
        settings=settings, ephemeral=ephemeral, db=db, audit=audit, mint_tokens=device_tokens.mint
    )
    teams = TeamService(db, audit)

    async def refresh_scopes(professional_id: uuid.UUID) -> None:
        for device in await devices.of_professional(professional_id):
            await revocations.mark_stale(device.id)
        await fanout.publish(new_event(EventType.GRANTS_CHANGED, professional_id=str(professional_id)))

    teams.on_grants_changed(refresh_scopes)
    connector = OperatorConnector(settings.operator)
    trust = TrustSpace(
        settings.trust_space,
        sandbox_allowed=not settings.app.is_production,
        cache_path=Path(settings.app.data_dir) / "liste-blanche.cache" if settings.trust_space.source else None,
    )

    async def cut_operator_sessions(event: Event) -> None:
        if event.type == EventType.DEVICE_REVOKED and event.device_id:
            await connector.device_revoked(event.device_id)

    fanout.on_event(cut_operator_sessions)
    mail = MailService(
        settings=settings,
        mailboxes=MailboxDirectory(db),
        connector=connector,
        trust=trust,
        audit=audit,
        ephemeral=ephemeral,
    )
    psc = PscClient(
        settings.psc, redirect_uri=f"{settings.app.public_url.rstrip('/')}/auth/psc/callback", http=psc_http
    )
    alerts = AlertService(db=db, audit=audit, cipher=AlertCipher(settings.app.secret_key), settings=settings.alerts)

    async def push_alert(alert: AlertNotice, recipients: Sequence[uuid.UUID], step: int) -> None:
        alert_class = PushClass.ONCALL_ALERT if alert.kind == AlertKind.ONCALL else PushClass.VISIT_ALERT
        await pipeline.notify_alert(alert_id=alert.id, alert_class=alert_class, professionals=recipients, step=step)

    alerts.on_notify(push_alert)
    return Container(
        settings=settings,
        db=db,
        ephemeral=ephemeral,
        audit=audit,
        signing_keys=signing_keys,
        access=access,
        revocations=revocations,
        authenticator=authenticator,
        devices=devices,
        device_tokens=device_tokens,
        enrolment=enrolment,
        teams=teams,
        identity=IdentityService(db, audit),
        sessions=SessionStore(ephemeral, settings.session),
        psc=psc,
        fanout=fanout,
        connector=connector,
        trust=trust,
        directory=create_directory(settings),
        mail=mail,
        maintenance=Maintenance(
            db=db, devices=devices, refresh=refresh, idle_days=settings.enrolment.device_idle_expiry_days
        ),
        availability=availability,
        queue=queue,
        providers=providers,
        pipeline=pipeline,
        watcher=Watcher.create(settings, db=db, ephemeral=ephemeral, queue=queue, connector=connector),
        rota=RotaService(db, audit),
        alerts=alerts,
        service_clients=ServiceClients(db, audit, ephemeral),
        escalations=EscalationLoop(alerts, every_s=settings.alerts.check_every_s),
    )
