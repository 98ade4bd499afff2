"""A local FCM: an HTTP/1.1 server speaking the FCM HTTP v1 send API, checking what Google checks.

``h11`` on asyncio, in a thread of its own like :class:`tests.peers.apns.ApnsPeer`. firebase-admin
reaches it with a service account whose ``universe_domain`` is not Google's: google-auth then signs
its own RS256 JWT as the bearer (no token endpoint, no Google host), and the peer verifies it with the
service account's public key (``kid``, ``iss``, ``exp``, signature).

It checks the path (``/v1/projects/<project>/messages:send``), the JSON shape (one target, string
``data`` values, Android ``priority`` and ``ttl``, the 4 KB limit) and answers like FCM: 200 with a
message name, or Google's error body with an ``FcmError`` code (``UNREGISTERED``,
``QUOTA_EXCEEDED``, ``UNAVAILABLE``, ``INTERNAL``, ``SENDER_ID_MISMATCH``, ``INVALID_ARGUMENT`` with a
``BadRequest`` naming the token). ``script(token, …)`` queues answers per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers.apns import BackgroundLoop

MAX_MESSAGE_BYTES = 4096
_STATUS_OF = {
    "UNREGISTERED": (404, "NOT_FOUND"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
}
_TTL = re.compile(r"^[0-9]+(\.[0-9]{1,9})?s$")


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A Firebase service-account key file (generated RSA key, never a Google one)."""

    file: Path
    info: dict[str, Any]
    public_pem: str

    @property
    def project_id(self) -> str:
        return str(self.info["project_id"])


def make_service_account(directory: Path, *, project_id: str = "mssc-test") -> ServiceAccount:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "test-key-1",
        "private_key": private_pem,
        "client_email": f"push@{project_id}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": "https://oauth2.googleapis.com/token",
        # Not Google's universe: google-auth self-signs the bearer and never calls a Google host.
        "universe_domain": "local.test",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{project_id}-service-account.json"
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return ServiceAccount(path, info, public_pem)


@dataclass(frozen=True, slots=True)
class FcmReply:
    """How the peer answers one request: 200, or an FCM error code."""

    code: str | None = None
    retry_after: str | None = None
    delay_s: float = 0.0
    hang: bool = False
    #: With ``INVALID_ARGUMENT``: a ``BadRequest`` violation naming ``message.token``.
    bad_token: bool = False

    @classmethod
    def error(cls, code: str, *, retry_after: str | None = None) -> FcmReply:
        return cls(code, retry_after)

    @classmethod
    def never(cls) -> FcmReply:
        return cls(hang=True)

    @property
    def status(self) -> int:
        return _STATUS_OF[self.code][0] if self.code else 200


UNREGISTERED = FcmReply.error("UNREGISTERED")
QUOTA_EXCEEDED = FcmReply.error("QUOTA_EXCEEDED", retry_after="1")
UNAVAILABLE = FcmReply.error("UNAVAILABLE", retry_after="1")
INVALID_TOKEN = FcmReply(code="INVALID_ARGUMENT", bad_token=True)
SENDER_ID_MISMATCH = FcmReply.error("SENDER_ID_MISMATCH")


@dataclass(slots=True)
class FcmRecord:
    """One request as the peer saw it, and its answer."""

    path: str
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any] | None
    message: dict[str, Any] | None
    status: int = 0
    code: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def token(self) -> str | None:
        if self.message is None:
            return None
        target = self.message.get("token") or self.message.get("fid")
        return str(target) if target else None


class FcmPeer:
    """See the module docstring. ``start()`` it (or use it as a context manager)."""

    def __init__(self, account: ServiceAccount, *, host: str = "127.0.0.1") -> None:
        self.account = account
        self.host = host
        self.port = 0
        self.default_delay_s = 0.0
        self._lock = threading.Lock()
        self._records: list[FcmRecord] = []
        self._raw = bytearray()
        self._scripts: dict[str, deque[FcmReply]] = defaultdict(deque)
        self._in_flight = 0
        self._max_in_flight = 0
        #: Bumped by ``reset()``: requests of an earlier test are not counted.
        self._generation = 0
        self._ids = itertools.count(1)
        self._runner: BackgroundLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FcmPeer:
        self._runner = BackgroundLoop("fcm-peer")
        self._server = self._runner.run(asyncio.start_server(self._serve, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._runner is None:
            return
        self._runner.run(self._shutdown())
        self._runner.close()
        self._runner = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FcmPeer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The send URL, as ``MSSC_PUSH_FCM_URL`` takes it (``{project_id}`` is filled in by the provider)."""
        return f"http://{self.host}:{self.port}/v1/projects/{{project_id}}/messages:send"

    # -- scripting and inspection ----------------------------------------------------------
    def script(self, token: str, *replies: FcmReply) -> None:
        with self._lock:
            self._scripts[token].extend(replies)

    def reset(self) -> None:
        """Forget records and scripts, and drop open connections (and any request left unanswered)."""
        if self._runner is not None:
            self._runner.run(self._drop_connections())
        with self._lock:
            self._records.clear()
            self._raw.clear()
            self._scripts.clear()
            self._generation += 1
            self._in_flight = self._max_in_flight = 0
            self.default_delay_s = 0.0

    async def _drop_connections(self) -> None:
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    @property
    def records(self) -> list[FcmRecord]:
        with self._lock:
            return list(self._records)

    @property
    def raw_received(self) -> bytes:
        with self._lock:
            return bytes(self._raw)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    # -- serving (the peer's loop) -----------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    return
                await self._respond(conn, writer, request, body)
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            return
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                with self._lock:
                    self._raw.extend(data)
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body.extend(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _respond(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request, body: bytes
    ) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        path = request.target.decode()
        record = FcmRecord(path=path, headers=headers, body=body, claims=None, message=None)
        status, document, retry_after, reply = self._check(request.method.decode(), record)
        with self._lock:
            if status == 200:
                script = self._scripts.get(record.token or "")
                reply = script.popleft() if script else FcmReply(delay_s=self.default_delay_s)
                status = reply.status
                document = (
                    _error(reply)
                    if reply.code
                    else {"name": f"projects/{self.account.project_id}/messages/{next(self._ids)}"}
                )
                retry_after = reply.retry_after
            record.status, record.code = status, reply.code if reply else None
            self._records.append(record)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            generation = self._generation
        try:
            if reply is not None and reply.hang:
                await asyncio.Event().wait()  # until the peer stops
            if reply is not None and reply.delay_s:
                await asyncio.sleep(reply.delay_s)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._in_flight -= 1
        payload = json.dumps(document).encode()
        response_headers = [("content-type", "application/json; charset=UTF-8"), ("content-length", str(len(payload)))]
        if retry_after is not None:
            response_headers.append(("retry-after", retry_after))
        writer.write(conn.send(h11.Response(status_code=status, headers=response_headers)) or b"")
        writer.write(conn.send(h11.Data(data=payload)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    def _check(self, method: str, record: FcmRecord) -> tuple[int, dict[str, Any], str | None, FcmReply | None]:
        expected_path = f"/v1/projects/{self.account.project_id}/messages:send"
        if method != "POST" or record.path != expected_path:
            return 404, _google_error(404, "NOT_FOUND", "Requested entity was not found."), None, None
        authorization = record.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return 401, _google_error(401, "UNAUTHENTICATED", "Request is missing a bearer token."), None, None
        bearer = authorization.removeprefix("Bearer ")
        try:
            header = jwt.get_unverified_header(bearer)
            claims = jwt.decode(
                bearer,
                self.account.public_pem,
                algorithms=["RS256"],
                options={"require": ["iss", "exp", "iat"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return 401, _google_error(401, "UNAUTHENTICATED", "Invalid bearer token."), None, None
        record.claims = claims
        if (
            header.get("kid") != self.account.info["private_key_id"]
            or claims["iss"] != self.account.info["client_email"]
        ):
            return 401, _google_error(401, "UNAUTHENTICATED", "Unknown signer."), None, None
        if not record.headers.get("content-type", "").startswith("application/json"):
            return 400, _google_error(400, "INVALID_ARGUMENT", "Expected JSON."), None, None
        try:
            document = json.loads(record.body)
        except ValueError:
            return 400, _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), None, None
        problem = _message_problem(document)
        if problem is not None:
            return 400, _google_error(400, "INVALID_ARGUMENT", problem), None, None
        record.message = document["message"]
        return 200, {}, None, None


def _message_problem(document: Any) -> str | None:
    if not isinstance(document, dict) or set(document) - {"message", "validate_only"}:
        return "Invalid JSON payload received. Unknown name."
    message = document.get("message")
    if not isinstance(message, dict):
        return "message is required"
    if sum(key in message for key in ("token", "fid", "topic", "condition")) != 1:
        return "exactly one of token, fid, topic or condition is required"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "data values must be strings"
    android = message.get("android", {})
    if android.get("priority", "normal") not in ("normal", "high"):
        return "Invalid value at 'message.android.priority'"
    if "ttl" in android and not _TTL.match(str(android["ttl"])):
        return "Invalid value at 'message.android.ttl'"
    if len(json.dumps(message, separators=(",", ":")).encode()) > MAX_MESSAGE_BYTES:
        return "Message is too big"
    return None


def _error(reply: FcmReply) -> dict[str, Any]:
    assert reply.code is not None
    status, name = _STATUS_OF[reply.code]
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": reply.code}
    ]
    if reply.bad_token:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {
                        "field": "message.token",
                        "description": "The registration token is not a valid FCM registration token",
                    }
                ],
            }
        )
    return _google_error(status, name, f"{reply.code} (test peer)", details)


def _google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}
