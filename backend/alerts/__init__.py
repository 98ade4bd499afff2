"""Availability, on-call rota, visit and on-call alerts, service clients (flow 5, "Alert").

Services hold no HTTP: :class:`AvailabilityService` (modes, quiet hours, ``push_allowed``),
:class:`RotaService` (shifts, who is on call now), :class:`AlertService` (raise, read, acknowledge,
escalate, ``on_notify`` hooks for the push pipeline), :class:`ServiceClients` (scoped API keys).
``routes`` holds the phone API and the service clients' endpoint.
"""

from backend.alerts.availability import AlertClass, AvailabilityService, AvailabilityState, PushAllowed
from backend.alerts.crypto import AlertCipher
from backend.alerts.escalation import EscalationLoop
from backend.alerts.rota import RotaOverview, RotaService, Shift
from backend.alerts.service import AlertNotice, AlertRecord, AlertService, NotifyHook, Raiser
from backend.alerts.service_clients import AuthenticatedService, IssuedKey, ServiceClients

__all__ = [
    "AlertCipher",
    "AlertClass",
    "AlertNotice",
    "AlertRecord",
    "AlertService",
    "AuthenticatedService",
    "AvailabilityService",
    "AvailabilityState",
    "EscalationLoop",
    "IssuedKey",
    "NotifyHook",
    "PushAllowed",
    "Raiser",
    "RotaOverview",
    "RotaService",
    "ServiceClients",
    "Shift",
]
