"""Build the providers a process sends through, from checked settings, and route devices to them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import structlog
from firebase_admin import credentials

from core.settings import Settings
from push.payload import PushTarget
from push.providers.apns import ApnsProvider
from push.providers.base import PushProvider
from push.providers.fcm import FcmProvider
from push.providers.sink import SinkProvider
from push.settings_check import PushConfig, check_push_settings

log = structlog.get_logger(__name__)


class PushProviders:
    """The enabled providers by name. A device goes to its own provider; when that one is not
    enabled, the dev sink (if enabled) takes it, so the demo works without Apple or Google."""

    def __init__(self, providers: Mapping[str, PushProvider[Any]]) -> None:
        self._providers = dict(providers)

    def __getitem__(self, name: str) -> PushProvider[Any]:
        return self._providers[name]

    def __iter__(self) -> Iterator[PushProvider[Any]]:
        return iter(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)

    @property
    def sink(self) -> SinkProvider | None:
        sink = self._providers.get("sink")
        return sink if isinstance(sink, SinkProvider) else None

    def for_target(self, target: PushTarget) -> PushProvider[Any] | None:
        """The provider for this device, or ``None`` if it cannot be reached here."""
        return self._providers.get(target.provider) or self._providers.get("sink")

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()


def build_providers(config: PushConfig) -> PushProviders:
    """Providers for a checked configuration (see :func:`push.settings_check.check_push_settings`)."""
    settings = config.settings
    common: dict[str, Any] = {"concurrency": settings.concurrency, "send_timeout_s": settings.send_timeout_s}
    providers: dict[str, PushProvider[Any]] = {}
    if config.apns is not None:
        apns = config.apns
        providers["apns"] = ApnsProvider(
            key_pem=apns.key_pem,
            key_id=apns.key_id,
            team_id=apns.team_id,
            topic=apns.topic,
            server=apns.server,
            use_tls=apns.use_tls,
            ca_file=apns.ca_file,
            **common,
        )
    if config.fcm is not None:
        fcm = config.fcm
        providers["fcm"] = FcmProvider(
            credential=credentials.Certificate(fcm.service_account),
            project_id=fcm.project_id,
            url=fcm.url,
            **common,
        )
    if config.sink:
        providers["sink"] = SinkProvider(**common)
    return PushProviders(providers)


def providers_from_settings(settings: Settings) -> PushProviders:
    """Check the push configuration (failing fast, warnings logged) and build the providers."""
    config = check_push_settings(settings.push, production=settings.app.is_production)
    for warning in config.warnings:
        log.warning("push.config", warning=warning)
    providers = build_providers(config)
    log.info("push.providers", enabled=[p.name for p in providers])
    return providers
