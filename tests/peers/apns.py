"""A local APNs: an HTTP/2 server framed like Apple's, checking what Apple checks.

Raw ``h2`` on asyncio, over TLS (a test CA, ALPN ``h2``) or h2c. It runs its own event loop in a
thread, so one peer serves any number of tests whatever their loops, and a sync script can use it.

It checks the ES256 provider token (``kid``, ``iss`` = team, ``iat`` age, signature), the headers
(``apns-topic``, ``apns-id``, ``apns-push-type``, ``apns-priority``, ``apns-expiration``,
``apns-collapse-id``), the JSON body and Apple's 4 KB limit, and answers as Apple does: a 200 is a
HEADERS frame and nothing else (aioapns parses every DATA frame as JSON); an error is HEADERS plus a
``{"reason": …}`` DATA frame. ``script(token, …)`` queues answers for a token (any error Apple
sends, a ``Retry-After``, a delay, or no answer at all). Everything received is kept: the decoded
requests (:attr:`ApnsPeer.records`) and the raw bytes (:attr:`ApnsPeer.raw_received`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset
from h2.exceptions import ProtocolError

from tests.peers.certs import IssuedCertificate

T = TypeVar("T")

#: Apple's limit for alert and background pushes.
MAX_PAYLOAD_BYTES = 4096
PUSH_TYPES = frozenset(
    {"alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity"}
)


class BackgroundLoop:
    """An asyncio loop in a daemon thread, for peers that must outlive any one test's loop."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass(frozen=True, slots=True)
class ApnsCredentials:
    """A token-auth key as Apple issues it (``AuthKey_<key id>.p8``), and the app it pushes to."""

    key_file: Path
    key_pem: str
    public_pem: str
    key_id: str
    team_id: str
    topic: str


def make_apns_credentials(
    directory: Path, *, key_id: str = "ABC123DEFG", team_id: str = "TEAM123456", topic: str = "fr.example.mssc"
) -> ApnsCredentials:
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / f"AuthKey_{key_id}.p8"
    key_file.write_text(key_pem)
    key_file.chmod(0o600)
    return ApnsCredentials(key_file, key_pem, public_pem, key_id, team_id, topic)


@dataclass(frozen=True, slots=True)
class ApnsReply:
    """How the peer answers one request."""

    status: int = 200
    reason: str | None = None
    retry_after: str | None = None
    delay_s: float = 0.0
    #: Never answer (the stream stays open until the peer stops).
    hang: bool = False
    #: 410 only: since when (ms since the epoch) the token is invalid; ``None``: the time of the answer.
    timestamp_ms: int | None = None

    @classmethod
    def error(cls, status: int, reason: str, *, retry_after: str | None = None) -> ApnsReply:
        return cls(status, reason, retry_after)

    @classmethod
    def never(cls) -> ApnsReply:
        return cls(hang=True)


# Every error the tests need, as Apple sends them.
BAD_DEVICE_TOKEN = ApnsReply.error(400, "BadDeviceToken")
NOT_FOR_TOPIC = ApnsReply.error(400, "DeviceTokenNotForTopic")
UNREGISTERED = ApnsReply.error(410, "Unregistered")
TOO_MANY_REQUESTS = ApnsReply.error(429, "TooManyRequests")
SERVICE_UNAVAILABLE = ApnsReply.error(503, "ServiceUnavailable")


@dataclass(slots=True)
class ApnsRecord:
    """One request as the peer saw it, and its answer."""

    token: str
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any] | None
    status: int | None = None
    reason: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ApnsPeer:
    """See the module docstring. ``start()`` it (or use it as a context manager)."""

    def __init__(
        self, credentials: ApnsCredentials, *, tls: IssuedCertificate | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.credentials = credentials
        self.tls = tls
        self.host = host
        self.port = 0
        #: Delay of every answer without a scripted one (to observe concurrency).
        self.default_delay_s = 0.0
        self._lock = threading.Lock()
        self._records: list[ApnsRecord] = []
        self._raw = bytearray()
        self._scripts: dict[str, deque[ApnsReply]] = defaultdict(deque)
        #: An outage: until this time (``time.time()``), unscripted requests get ``_outage_replies`` in turn.
        self._outage_until = 0.0
        self._outage_replies: tuple[ApnsReply, ...] = ()
        self._outage_answered = 0
        self._in_flight = 0
        self._max_in_flight = 0
        #: Bumped by ``reset()``: answers to requests of an earlier test are not counted.
        self._generation = 0
        self._connections = 0
        self._protocols: set[_ApnsServerProtocol] = set()
        self._runner: BackgroundLoop | None = None
        self._server: asyncio.base_events.Server | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ApnsPeer:
        self._runner = BackgroundLoop("apns-peer")
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
            context.set_alpn_protocols(["h2"])
        self._server = self._runner.run(
            self._runner.loop.create_server(lambda: _ApnsServerProtocol(self), self.host, 0, ssl=context)
        )
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
        for protocol in list(self._protocols):
            protocol.transport.close()
        await self._server.wait_closed()

    def __enter__(self) -> ApnsPeer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def server(self) -> str:
        """``host:port``, as ``MSSC_PUSH_APNS_SERVER`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def use_tls(self) -> bool:
        return self.tls is not None

    # -- scripting and inspection ----------------------------------------------------------
    def script(self, token: str, *replies: ApnsReply) -> None:
        """Answer the next requests for ``token`` with ``replies``, in order (then 200 again)."""
        with self._lock:
            self._scripts[token].extend(replies)

    def outage(self, seconds: float, *replies: ApnsReply) -> None:
        """For ``seconds`` from now, answer every unscripted request with ``replies`` in turn (429 and
        503, say): Apple throttling or down for a while, whatever the token."""
        if not replies:
            raise ValueError("an outage needs at least one reply")
        with self._lock:
            self._outage_until = time.time() + seconds
            self._outage_replies = replies
            self._outage_answered = 0

    def reset(self) -> None:
        """Forget records and scripts, and drop open connections (and any request left unanswered)."""
        if self._runner is not None:
            self._runner.run(self._drop_connections())
        with self._lock:
            self._records.clear()
            self._raw.clear()
            self._scripts.clear()
            self._outage_until = 0.0
            self._outage_replies = ()
            self._generation += 1
            self._in_flight = self._max_in_flight = self._connections = 0
            self.default_delay_s = 0.0

    async def _drop_connections(self) -> None:
        for protocol in list(self._protocols):
            protocol.transport.close()

    @property
    def records(self) -> list[ApnsRecord]:
        with self._lock:
            return list(self._records)

    @property
    def raw_received(self) -> bytes:
        """Every byte received (after TLS): frames, HPACK-compressed headers and bodies."""
        with self._lock:
            return bytes(self._raw)

    @property
    def connections_opened(self) -> int:
        """Connections accepted since the last ``reset()``."""
        with self._lock:
            return self._connections

    @property
    def max_in_flight(self) -> int:
        """Most requests received and not yet answered at one time."""
        with self._lock:
            return self._max_in_flight

    # -- called from the peer's loop ---------------------------------------------------------
    def _received(self, data: bytes) -> None:
        with self._lock:
            self._raw.extend(data)

    def _decide(self, headers: dict[str, str], body: bytes) -> tuple[int, ApnsReply]:
        token = headers.get(":path", "").removeprefix("/3/device/")
        claims, refusal = self._check(headers, body, token)
        record = ApnsRecord(token=token, headers=headers, body=body, claims=claims)
        with self._lock:
            if refusal is None:
                script = self._scripts.get(token)
                if script:
                    refusal = script.popleft()
                elif self._outage_replies and time.time() < self._outage_until:
                    refusal = self._outage_replies[self._outage_answered % len(self._outage_replies)]
                    self._outage_answered += 1
                else:
                    refusal = ApnsReply(delay_s=self.default_delay_s)
            record.status, record.reason = refusal.status, refusal.reason
            self._records.append(record)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._generation, refusal

    def _answered(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._in_flight -= 1

    def _check(self, h: dict[str, str], body: bytes, token: str) -> tuple[dict[str, Any] | None, ApnsReply | None]:
        if h.get(":method") != "POST":
            return None, ApnsReply.error(405, "MethodNotAllowed")
        if not h.get(":path", "").startswith("/3/device/"):
            return None, ApnsReply.error(404, "BadPath")
        authorization = h.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            return None, ApnsReply.error(403, "MissingProviderToken")
        provider_token = authorization.split(" ", 1)[1]
        try:
            header = jwt.get_unverified_header(provider_token)
            claims: dict[str, Any] = jwt.decode(
                provider_token, self.credentials.public_pem, algorithms=["ES256"], options={"require": ["iss", "iat"]}
            )
        except jwt.PyJWTError:
            return None, ApnsReply.error(403, "InvalidProviderToken")
        if header.get("kid") != self.credentials.key_id or claims["iss"] != self.credentials.team_id:
            return claims, ApnsReply.error(403, "InvalidProviderToken")
        if claims["iat"] < time.time() - 3600:
            return claims, ApnsReply.error(403, "ExpiredProviderToken")
        topic = h.get("apns-topic")
        if not topic:
            return claims, ApnsReply.error(400, "MissingTopic")
        if topic != self.credentials.topic:
            return claims, ApnsReply.error(400, "TopicDisallowed")
        try:
            if str(uuid.UUID(h.get("apns-id", ""))) != h["apns-id"].lower():
                raise ValueError
        except ValueError:
            return claims, ApnsReply.error(400, "BadMessageId")
        push_type = h.get("apns-push-type")
        if push_type not in PUSH_TYPES:
            return claims, ApnsReply.error(400, "InvalidPushType")
        priority = h.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority == "10"):
            return claims, ApnsReply.error(400, "BadPriority")
        if not h.get("apns-expiration", "0").isdigit():
            return claims, ApnsReply.error(400, "BadExpirationDate")
        if len(h.get("apns-collapse-id", "").encode()) > 64:
            return claims, ApnsReply.error(400, "BadCollapseId")
        if not body:
            return claims, ApnsReply.error(400, "PayloadEmpty")
        if len(body) > MAX_PAYLOAD_BYTES:
            return claims, ApnsReply.error(413, "PayloadTooLarge")
        try:
            document = json.loads(body)
        except ValueError:
            return claims, ApnsReply.error(400, "BadPayload")
        if not isinstance(document, dict) or not isinstance(document.get("aps"), dict):
            return claims, ApnsReply.error(400, "BadPayload")
        if push_type == "background" and (document["aps"].get("content-available") != 1 or "alert" in document["aps"]):
            return claims, ApnsReply.error(400, "BadPayload")
        if not token:
            return claims, ApnsReply.error(400, "MissingDeviceToken")
        try:
            bytes.fromhex(token)
        except ValueError:
            return claims, ApnsReply.error(400, "BadDeviceToken")
        return claims, None


class _ApnsServerProtocol(asyncio.Protocol):
    def __init__(self, peer: ApnsPeer) -> None:
        self.peer = peer
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer._protocols.add(self)
        with self.peer._lock:
            self.peer._connections += 1
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer._protocols.discard(self)

    def data_received(self, data: bytes) -> None:
        self.peer._received(data)
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                headers = {bytes(k).decode(): bytes(v).decode() for k, v in event.headers or []}
                self.streams[event.stream_id] = (headers, bytearray())
            elif isinstance(event, DataReceived) and event.stream_id in self.streams:
                self.streams[event.stream_id][1].extend(event.data or b"")
                self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, StreamEnded) and event.stream_id in self.streams:
                headers, body = self.streams.pop(event.stream_id)
                self._request(event.stream_id, headers, bytes(body))
            elif isinstance(event, StreamReset):
                self.streams.pop(event.stream_id or 0, None)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.conn.data_to_send())

    def _request(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        generation, reply = self.peer._decide(headers, body)
        if reply.hang:
            return
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        if reply.delay_s:
            asyncio.get_running_loop().call_later(reply.delay_s, self._answer, stream_id, apns_id, reply, generation)
        else:
            self._answer(stream_id, apns_id, reply, generation)

    def _answer(self, stream_id: int, apns_id: str, reply: ApnsReply, generation: int) -> None:
        self.peer._answered(generation)
        if self.transport.is_closing():
            return
        response = [(":status", str(reply.status)), ("apns-id", apns_id)]
        if reply.retry_after is not None:
            response.append(("retry-after", reply.retry_after))
        try:
            if reply.status == 200:
                self.conn.send_headers(stream_id, response, end_stream=True)
            else:
                response.append(("content-type", "application/json"))
                self.conn.send_headers(stream_id, response)
                document: dict[str, Any] = {"reason": reply.reason or "InternalServerError"}
                if reply.status == 410:  # since when the token is invalid, in ms (now unless scripted)
                    document["timestamp"] = reply.timestamp_ms or int(time.time() * 1000)
                self.conn.send_data(stream_id, json.dumps(document).encode(), end_stream=True)
        except ProtocolError:
            return
        self.transport.write(self.conn.data_to_send())
