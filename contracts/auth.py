"""Wire types of the device token endpoint and of the device's own resources."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec

from contracts.enrolment import Platform, PushProvider, PushToken


class GrantType(StrEnum):
    #: ES256 devices: the DPoP proof (with a fresh server nonce) is the proof of possession.
    DEVICE_KEY = "device_key"
    #: WebAuthn devices: a user-verified assertion over a challenge from ``/api/v1/token/challenge``.
    WEBAUTHN = "webauthn"
    REFRESH_TOKEN = "refresh_token"


class TokenRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    grant_type: GrantType
    refresh_token: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    #: AuthenticationResponseJSON from ``navigator.credentials.get``.
    webauthn_assertion: dict[str, Any] | None = None


class WebauthnChallenge(msgspec.Struct, rename="camel"):
    challenge: str
    webauthn_options: dict[str, Any]


class MailboxAccess(msgspec.Struct, rename="camel"):
    id: str
    address: str
    kind: str
    can_read: bool
    can_send: bool


class DeviceSelf(msgspec.Struct, rename="camel"):
    device_id: str
    name: str
    platform: Platform
    professional: str
    idnat: str
    structure_id: str | None
    structure_name: str | None
    mailboxes: list[MailboxAccess]
    scope: str
    push_provider: PushProvider | None
    #: The push provider said the token is dead: register a new one with ``PUT /api/v1/me/push``.
    push_token_needed: bool


class PushTokenUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    provider: PushProvider
    token: PushToken | None = None


class WipeAck(msgspec.Struct, rename="camel"):
    device_id: str
    acknowledged: bool
