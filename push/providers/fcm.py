"""Firebase Cloud Messaging (HTTP v1) through firebase-admin's ``send_each_async``.

Each push is one ``send_each_async`` call under the provider's concurrency bound and timeout
(``send_each_async`` alone gathers without any bound). firebase-admin's own retries of 500/503 are
turned off: retries happen in one place (``push.delivery``), which honours ``Retry-After``.

firebase-admin reads its send URL once per app; a local FCM peer (tests) is reached by setting it
on this provider's own app, never on the shared class.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal

import firebase_admin
import google.auth.transport.requests
import msgspec
import structlog
from firebase_admin import _http_client, _retry, credentials, exceptions, messaging

from contracts.enrolment import PushToken
from contracts.push import (
    MAX_PUSH_BYTES,
    Badge,
    LocKey,
    OpaqueId,
    PushPayloadRefusedError,
    check_against,
    validate_push_payload,
)
from push.payload import CLASS_POLICY, AndroidChannel
from push.providers.base import Outcome, PushKind, PushNotification, PushPriority, PushProvider, retry_after_seconds

log = structlog.get_logger(__name__)

#: FCM error codes that mean the token will never work again: the device must register a new one.
DEAD_TOKEN_CODES: Final[Mapping[str, str]] = {
    # The app instance was uninstalled, or its token expired or was rotated (HTTP 404).
    "UNREGISTERED": "token no longer registered",
    # The token belongs to another Firebase sender (project): it will never accept ours (HTTP 403).
    "SENDER_ID_MISMATCH": "token of another sender",
}

#: FCM error codes worth retrying later; anything else (bad message, bad config) is permanent.
TEMPORARY_CODES: Final[Mapping[str, str]] = {
    # Sending rate exceeded (overall, per device, or per topic): back off, honour Retry-After (429).
    "QUOTA_EXCEEDED": "rate limited",
    # FCM overloaded: retry with backoff, honour Retry-After (503).
    "UNAVAILABLE": "FCM unavailable",
    # Unknown internal error (500).
    "INTERNAL": "FCM internal error",
}

#: Fields of a ``google.rpc.BadRequest`` violation that name the target: the token is malformed.
_TOKEN_FIELDS: Final = frozenset({"message.token", "message.fid"})


class _FcmAndroidNotification(msgspec.Struct, forbid_unknown_fields=True):
    title_loc_key: LocKey
    channel_id: AndroidChannel
    tag: OpaqueId | None = None
    notification_count: Badge | None = None
    default_sound: bool | None = None


class _FcmAndroid(msgspec.Struct, forbid_unknown_fields=True):
    priority: Literal["high", "normal"]
    ttl: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,8}s$")]
    collapse_key: OpaqueId | None = None
    notification: _FcmAndroidNotification | None = None


class FcmMessage(msgspec.Struct, forbid_unknown_fields=True):
    """The allow-list of an FCM v1 ``message``: the target, our payload as ``data``, Android options."""

    fid: PushToken
    data: dict[str, str]
    android: _FcmAndroid


class FcmProvider(PushProvider[messaging.Message]):
    """Sends through a firebase-admin app of its own, created on first use."""

    name = "fcm"

    def __init__(
        self,
        *,
        credential: credentials.Base,
        project_id: str,
        url: str | None = None,
        max_payload_bytes: int = MAX_PUSH_BYTES,
        concurrency: int = 50,
        send_timeout_s: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(concurrency=concurrency, send_timeout_s=send_timeout_s, clock=clock)
        if not project_id:
            raise ValueError("an FCM project id is required")
        self._credential = credential
        self.project_id = project_id
        self._url = url.replace("{project_id}", project_id) if url else None
        self.max_payload_bytes = max_payload_bytes
        self._app: firebase_admin.App | None = None
        self._http_clients: list[Any] = []
        self._google_credential: Any = None
        self._refreshing = asyncio.Lock()

    @classmethod
    def from_service_account(cls, path: str, *, project_id: str = "", **kwargs: Any) -> FcmProvider:
        """From a service-account JSON key file; the project defaults to the file's ``project_id``."""
        credential = credentials.Certificate(path)
        return cls(credential=credential, project_id=project_id or credential.project_id or "", **kwargs)

    def _app_now(self) -> firebase_admin.App:
        if self._app is None:
            app = firebase_admin.initialize_app(
                self._credential,
                {"projectId": self.project_id, "httpTimeout": self.send_timeout_s},
                name=f"mssc-push-{uuid.uuid4().hex}",
            )
            # firebase-admin offers no public way to set these two: they are attributes of the
            # app's own messaging service (so other apps in the process are untouched).
            service = messaging._get_messaging_service(app)
            if self._url:
                service._fcm_url = self._url
            # No retries inside firebase-admin: ours honour Retry-After and count tries per push.
            self._http_clients = [
                service._async_client,
                _http_client.HttpxAsyncClient(
                    credential=service._credential,
                    timeout=self.send_timeout_s,
                    retry_config=_retry.HttpxRetry(max_retries=0),
                ),
            ]
            service._async_client = self._http_clients[-1]
            self._google_credential = service._credential
            self._app = app
        return self._app

    def render(self, notification: PushNotification) -> messaging.Message:
        payload = notification.payload
        policy = CLASS_POLICY[payload.alert_class]
        android_notification = None
        if notification.kind is PushKind.ALERT:
            android_notification = messaging.AndroidNotification(
                title_loc_key=payload.loc_key,
                channel_id=policy.android_channel,
                tag=notification.collapse_id,
                notification_count=payload.badge,
                default_sound=True,
            )
        remaining = max(0, int(notification.expires_at - self.clock()))
        message = messaging.Message(
            fid=notification.token,
            # FCM data values are strings; the phone reads them back with the same allow-list.
            data={key: str(value) for key, value in payload.to_wire().items()},
            android=messaging.AndroidConfig(
                priority="high" if notification.priority is PushPriority.HIGH else "normal",
                ttl=dt.timedelta(seconds=remaining),
                # Background (wipe) pushes are data-only and never collapse.
                collapse_key=notification.collapse_id if android_notification else None,
                notification=android_notification,
            ),
        )
        try:
            # Exactly the JSON firebase-admin will send.
            encoded = messaging._MessagingService.encode_message(message)
        except ValueError:
            raise PushPayloadRefusedError("not a valid FCM message") from None
        check_against(encoded, FcmMessage)
        validate_push_payload(encoded["data"], strings_only=True)
        size = len(json.dumps(encoded, ensure_ascii=False, separators=(",", ":")).encode())
        if size > self.max_payload_bytes:
            raise PushPayloadRefusedError("payload_too_large")
        return message

    async def send_one(self, notification: PushNotification, rendered: messaging.Message) -> Outcome:
        app = self._app_now()
        await self._fresh_credential()
        batch = await messaging.send_each_async([rendered], app=app)
        response = batch.responses[0]
        if response.success:
            return Outcome.accepted()
        return classify(response.exception)

    async def _fresh_credential(self) -> None:
        """Refresh the OAuth token off the loop: google-auth does it synchronously (for a real service
        account, an HTTP call to Google's token endpoint), which would stall every other send."""
        if self._google_credential.valid:
            return
        async with self._refreshing:
            if not self._google_credential.valid:
                await asyncio.to_thread(self._google_credential.refresh, google.auth.transport.requests.Request())

    async def aclose(self) -> None:
        app, self._app = self._app, None
        if app is None:
            return
        for client in self._http_clients:
            await client.aclose()
        # delete_app closes its services with asyncio.run(): give it a thread of its own.
        await asyncio.to_thread(firebase_admin.delete_app, app)


def classify(exc: BaseException | None) -> Outcome:
    """Map a firebase-admin send failure to retry / dead token / permanent failure."""
    if not isinstance(exc, exceptions.FirebaseError):
        return Outcome.retry(f"error: {type(exc).__name__}")
    response = exc.http_response
    if response is None:
        # No answer at all (connection refused or reset, timeout): FCM never saw it.
        return Outcome.retry(f"transport: {exc.code}")
    status: int = response.status_code
    error = _error_body(response)
    fcm_code = _fcm_error_code(error) or str(exc.code)
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if fcm_code in DEAD_TOKEN_CODES:
        return Outcome.dead(fcm_code)
    if status == 400 and _names_the_token(error):
        # "The registration token is not a valid FCM registration token": it never will be.
        return Outcome.dead(f"{fcm_code}: token")
    if fcm_code in TEMPORARY_CODES or status == 429 or status >= 500:
        return Outcome.retry(fcm_code, retry_after)
    # A 404 without UNREGISTERED is a wrong URL or project, not a dead token: never prune on it.
    log.error("fcm.refused", status=status, code=fcm_code)
    return Outcome.failed(fcm_code)


def _error_body(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _fcm_error_code(error: dict[str, Any]) -> str | None:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.firebase.fcm.v1.FcmError"):
            code = detail.get("errorCode")
            return str(code) if code else None
    return None


def _names_the_token(error: dict[str, Any]) -> bool:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.rpc.BadRequest"):
            for violation in detail.get("fieldViolations") or []:
                if isinstance(violation, dict) and violation.get("field") in _TOKEN_FIELDS:
                    return True
    return False
