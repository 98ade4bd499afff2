"""Reference phone client: the API's executable documentation for mobile teams.

Every call carries a DPoP proof; the server's ``DPoP-Nonce`` is kept from each response and a
``use_dpop_nonce`` answer is retried once with the new nonce (RFC 9449 §8). Tokens refresh by
themselves when the server says ``token_expired`` or ``token_stale``. A ``device_revoked`` answer
carries ``wipe``: the client erases its keys and tokens and acknowledges.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import msgspec

from contracts.alerts import AlertDetail, AvailabilityView
from contracts.enrolment import QR_PATH_PREFIX, check_code, claim_proof
from contracts.mail import FolderView, MailboxView, MessageDetail, MessagePage, OutgoingMessage, SentMessage
from contracts.push_feed import PushFeed, SentPush
from phone.keys import DeviceKey
from phone.soft_authenticator import SoftAuthenticator

#: Multipart files: ``(filename, content, content type)``.
Files = Sequence[tuple[str, bytes, str]]


class PhoneError(Exception):
    """The server answered with a problem; ``code`` is its stable code."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('code')}: {problem.get('detail') or problem.get('title')}")
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code", ""))


@dataclass(frozen=True, slots=True)
class QrCode:
    origin: str
    rendezvous_id: str
    secret: bytes

    @classmethod
    def parse(cls, url: str) -> QrCode:
        """``https://host/e/<rendezvous>#<secret>``: nothing else is in the QR."""
        parts = urlsplit(url)
        if not parts.path.startswith(QR_PATH_PREFIX) or not parts.fragment:
            raise ValueError("not an mss-companion enrolment QR code")
        secret = base64.urlsafe_b64decode(parts.fragment + "=" * (-len(parts.fragment) % 4))
        return cls(f"{parts.scheme}://{parts.netloc}", parts.path[len(QR_PATH_PREFIX) :], secret)


@dataclass
class PhoneState:
    base_url: str
    key: DeviceKey = field(default_factory=DeviceKey)
    binding: str = "es256"
    device_id: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_at: float = 0.0
    scope: str = ""
    #: Dev push feed: where the last :meth:`PhoneClient.pushes` left off (kept across runs).
    push_cursor: str | None = None
    #: The last tokens said the push token is dead or missing: register one (``register_push``).
    push_token_needed: bool = False


class PhoneClient:
    def __init__(
        self,
        state: PhoneState,
        *,
        http: httpx.AsyncClient | None = None,
        authenticator: SoftAuthenticator | None = None,
        attestation: str = "none",
    ) -> None:
        self.state = state
        self.http = http or httpx.AsyncClient(base_url=state.base_url, timeout=15)
        self.authenticator = authenticator or SoftAuthenticator()
        self.attestation = attestation
        self._nonce: str | None = None
        self.rendezvous: QrCode | None = None
        self.check_code: str | None = None
        self._challenge: dict[str, Any] | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    def _url(self, path: str) -> str:
        return f"{self.state.base_url.rstrip('/')}{path}"

    def _headers(self, method: str, path: str, *, auth: bool, accept: str = "application/json") -> dict[str, str]:
        """A fresh DPoP proof for this request (and the access token it is bound to)."""
        headers = {"Accept": accept}
        token = self.state.access_token if auth else None
        headers["DPoP"] = self.state.key.dpop_proof(
            method=method, url=self._url(path), nonce=self._nonce, access_token=token
        )
        if token:
            headers["Authorization"] = f"DPoP {token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        auth: bool = False,
        files: Files | None = None,
        http_timeout_s: float | None = None,
    ) -> httpx.Response:
        """One API call with a fresh DPoP proof; retries once on ``use_dpop_nonce``.

        ``files`` sends multipart: the ``json`` value goes as the ``message`` field, the files as
        ``attachments`` (the mail API's send with attachments). ``http_timeout_s`` replaces the client's
        (a long poll outlasts it).
        """
        extra: dict[str, Any] = {} if http_timeout_s is None else {"timeout": http_timeout_s}
        for attempt in range(2):
            headers = self._headers(method, path, auth=auth)
            if files is None:
                response = await self.http.request(method, path, json=json, headers=headers, **extra)
            else:
                response = await self.http.request(
                    method,
                    path,
                    data={"message": msgspec.json.encode(json).decode()},
                    files=[("attachments", file) for file in files],
                    headers=headers,
                    **extra,
                )
            self._nonce = response.headers.get("DPoP-Nonce", self._nonce)
            if response.status_code == 401 and attempt == 0 and _code(response) == "use_dpop_nonce":
                continue
            return response
        return response

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        files: Files | None = None,
        http_timeout_s: float | None = None,
    ) -> Any:
        """An authenticated call; refreshes the token once when it expired or went stale."""
        await self._fresh_token()
        response = await self.request(method, path, json=json, auth=True, files=files, http_timeout_s=http_timeout_s)
        if response.status_code == 401 and _code(response) in {"token_expired", "token_stale"}:
            await self.refresh()
            response = await self.request(
                method, path, json=json, auth=True, files=files, http_timeout_s=http_timeout_s
            )
        return self._json(response)

    async def _fresh_token(self) -> None:
        if self.state.access_token is None or time.time() > self.state.access_expires_at - 10:
            await self.refresh()

    async def stream(self, path: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """An authenticated ``GET`` whose body arrives in chunks (attachments): never all in memory.

        The same retries as :meth:`call` (a new DPoP nonce, a refreshed token) happen before the
        first byte; an error answer raises :class:`PhoneError`.
        """
        await self._fresh_token()
        for attempt in range(3):
            headers = self._headers("GET", path, auth=True, accept="*/*")
            async with self.http.stream("GET", path, headers=headers) as response:
                self._nonce = response.headers.get("DPoP-Nonce", self._nonce)
                if response.status_code >= 400:
                    await response.aread()
                    code = _code(response)
                    if response.status_code == 401 and attempt < 2 and code == "use_dpop_nonce":
                        continue
                    if response.status_code == 401 and attempt < 2 and code in {"token_expired", "token_stale"}:
                        await self.refresh()
                        continue
                    self._json(response)
                async for chunk in response.aiter_bytes(chunk_size):
                    yield chunk
                return

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"code": "http_error", "detail": response.text[:200]}
            raise PhoneError(response.status_code, problem)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # enrolment ---------------------------------------------------------------------------------

    async def claim(
        self,
        qr_url: str,
        *,
        name: str,
        platform: str = "android",
        binding: str = "es256",
        push_provider: str = "none",
        push_token: str | None = None,
    ) -> str:
        """Claim the rendezvous; returns the check code the phone shows."""
        qr = QrCode.parse(qr_url)
        self.rendezvous, self.state.binding = qr, binding
        body = {
            "secretProof": claim_proof(qr.secret, qr.rendezvous_id, self.state.key.jkt),
            "deviceName": name,
            "platform": platform,
            "binding": binding,
            "push": {"provider": push_provider, "token": push_token},
        }
        result = self._json(await self.request("POST", f"/api/v1/enrolments/{qr.rendezvous_id}/claim", json=body))
        self._challenge = result["binding"]
        self.check_code = check_code(qr.secret, self.state.key.jkt, int(result["checkCodeDigits"]))
        return self.check_code

    async def bind(self) -> str:
        """Prove the key: ES256 signature, or a WebAuthn registration by the authenticator."""
        if self.rendezvous is None or self._challenge is None:
            raise RuntimeError("claim first")
        rdv = self.rendezvous.rendezvous_id
        if self.state.binding == "es256":
            body: dict[str, Any] = {
                "es256Signature": self.state.key.bind_signature(
                    rendezvous_id=rdv, challenge=self._challenge["challenge"], audience=self.rendezvous.origin
                )
            }
        else:
            body = {
                "webauthnCredential": self.authenticator.register(
                    self._challenge["webauthnOptions"], self.rendezvous.origin, fmt=self.attestation
                )
            }
        result = self._json(await self.request("POST", f"/api/v1/enrolments/{rdv}/bind", json=body))
        return str(result["state"])

    async def complete(self, *, timeout_s: float = 120.0) -> dict[str, Any]:
        """Wait for the person's confirmation on the web page, then take the first tokens."""
        if self.rendezvous is None:
            raise RuntimeError("claim first")
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self.request("POST", f"/api/v1/enrolments/{self.rendezvous.rendezvous_id}/complete")
            if response.status_code == 409 and _code(response) == "enrolment_pending" and time.monotonic() < deadline:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 2)
                continue
            tokens = self._json(response)
            self._keep(tokens)
            return dict(tokens)

    def _keep(self, tokens: dict[str, Any]) -> None:
        self.state.device_id = tokens["deviceId"]
        self.state.access_token = tokens["accessToken"]
        self.state.refresh_token = tokens["refreshToken"]
        self.state.access_expires_at = time.time() + int(tokens["expiresIn"])
        self.state.scope = tokens["scope"]
        self.state.push_token_needed = bool(tokens.get("pushTokenNeeded", False))

    # tokens -------------------------------------------------------------------------------------

    async def refresh(self) -> None:
        if self.state.refresh_token:
            response = await self.request(
                "POST", "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": self.state.refresh_token}
            )
            if response.status_code < 400:
                self._keep(response.json())
                return
            if _code(response) != "invalid_grant":
                self._json(response)
        await self.sign_in()

    async def sign_in(self) -> None:
        """A fresh token from the key alone (ES256) or a user-verified assertion (WebAuthn)."""
        if self.state.binding == "es256":
            body: dict[str, Any] = {"grantType": "device_key"}
        else:
            challenge = self._json(await self.request("POST", "/api/v1/token/webauthn-challenge"))
            origin = f"{urlsplit(self.state.base_url).scheme}://{urlsplit(self.state.base_url).netloc}"
            body = {
                "grantType": "webauthn",
                "webauthnAssertion": self.authenticator.authenticate(challenge["webauthnOptions"], origin),
            }
        self._keep(self._json(await self.request("POST", "/api/v1/token", json=body)))

    # the device ---------------------------------------------------------------------------------

    async def whoami(self) -> dict[str, Any]:
        return dict(await self.call("GET", "/api/v1/whoami"))

    async def me(self) -> dict[str, Any]:
        return dict(await self.call("GET", "/api/v1/me"))

    async def register_push(self, provider: str, token: str) -> None:
        """Give the server this phone's push address (what the app does when APNs/FCM hands it a token)."""
        await self.call("PUT", "/api/v1/me/push", json={"provider": provider, "token": token})

    async def availability(self) -> AvailabilityView:
        """The professional's availability, and whether new mail is pushed right now."""
        return msgspec.convert(await self.call("GET", "/api/v1/me/availability"), AvailabilityView)

    async def acknowledge_wipe(self) -> None:
        """Tell the server with the last token (it still proves who we are), then erase keys and tokens."""
        response = await self.request("POST", "/api/v1/me/wipe-ack", auth=True)
        self._json(response)
        self.state.access_token = self.state.refresh_token = None
        self.state.key = DeviceKey()

    # mail --------------------------------------------------------------------------------------

    async def mailboxes(self) -> list[MailboxView]:
        """The mailboxes this phone may use (its professional's own, the structure's it was granted)."""
        return msgspec.convert(await self.call("GET", "/api/v1/mailboxes"), list[MailboxView])

    async def folders(self, mailbox_id: str) -> list[FolderView]:
        return msgspec.convert(await self.call("GET", f"{_mailbox(mailbox_id)}/folders"), list[FolderView])

    async def messages(
        self, mailbox_id: str, *, folder: str = "INBOX", cursor: str | None = None, limit: int = 50
    ) -> MessagePage:
        """One page of a folder, newest first; pass ``next_cursor`` back for the older ones."""
        query: dict[str, str | int] = {"folder": folder, "limit": limit}
        if cursor:
            query["cursor"] = cursor
        page = await self.call("GET", f"{_mailbox(mailbox_id)}/messages?{urlencode(query)}")
        return msgspec.convert(page, MessagePage)

    async def message(self, mailbox_id: str, message_id: str) -> MessageDetail:
        """A message: headers, text, sanitised HTML, the list of its attachments."""
        found = await self.call("GET", f"{_mailbox(mailbox_id)}/messages/{quote(message_id, safe='')}")
        return msgspec.convert(found, MessageDetail)

    def attachment(self, mailbox_id: str, message_id: str, part: str) -> AsyncIterator[bytes]:
        """An attachment's decoded bytes, chunk by chunk."""
        return self.stream(
            f"{_mailbox(mailbox_id)}/messages/{quote(message_id, safe='')}/attachments/{quote(part, safe='.')}"
        )

    async def send(
        self,
        mailbox_id: str,
        message: OutgoingMessage,
        *,
        attachments: Sequence[tuple[str, bytes, str]] = (),
    ) -> SentMessage:
        """Send from a mailbox; ``attachments`` are ``(filename, content, content type)``."""
        body = msgspec.to_builtins(message)
        sent = await self.call("POST", f"{_mailbox(mailbox_id)}/messages", json=body, files=list(attachments) or None)
        return msgspec.convert(sent, SentMessage)

    async def receipt(self, mailbox_id: str, message_id: str, disposition: str = "displayed") -> SentMessage:
        """Send the read receipt the sender asked for (RFC 8098)."""
        sent = await self.call(
            "POST",
            f"{_mailbox(mailbox_id)}/messages/{quote(message_id, safe='')}/receipt",
            json={"disposition": disposition},
        )
        return msgspec.convert(sent, SentMessage)

    # alerts ------------------------------------------------------------------------------------

    async def alert(self, alert_id: str) -> AlertDetail:
        """An alert with its text (the push only said "Alerte de visite" / "Alerte de garde")."""
        found = await self.call("GET", f"/api/v1/alerts/{quote(alert_id, safe='')}")
        return msgspec.convert(found, AlertDetail)

    # the demo's push feed --------------------------------------------------------------------------

    async def pushes(self, *, wait_s: float = 20.0) -> list[SentPush]:
        """Dev only: the pushes sent to this phone since the last call, waiting up to ``wait_s`` for
        one; what APNs or FCM would deliver, taken from the server's dev sink. The cursor is kept in
        :attr:`PhoneState.push_cursor`; a server without the sink answers 404 ``not_found``."""
        query: dict[str, str | float] = {"wait": wait_s}
        if self.state.push_cursor:
            query["after"] = self.state.push_cursor
        found = await self.call("GET", f"/api/v1/dev/pushes?{urlencode(query)}", http_timeout_s=wait_s + 15)
        feed = msgspec.convert(found, PushFeed)
        self.state.push_cursor = feed.cursor
        return feed.pushes


def _mailbox(mailbox_id: str) -> str:
    return f"/api/v1/mailboxes/{quote(mailbox_id, safe='')}"


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""
