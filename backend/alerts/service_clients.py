"""Service clients: a structure's software (or another service) raising alerts with its own key.

The titulaire creates one on the web and sees its key once: ``mssc_sk_<key id>.<secret>``, where the
key id (16 hex digits) finds the row and the secret is 256 random bits. Only ``SHA-256(secret)`` is
stored: the secret has full entropy, so a plain hash cannot be brute-forced, and unlike an HMAC
under the app secret it survives a rotation of ``MSSC_APP_SECRET_KEY``. The comparison is constant
time, and an unknown key id costs the same hash as a known one.

The client calls ``POST /api/v1/service/alerts`` with ``Authorization: Bearer <key>``. Its scopes
say what it may raise (``alerts:raise`` visit alerts, ``alerts:oncall`` on-call alerts), always for
its own structure. Revoking the client refuses its key at the next call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from backend.alerts import members
from backend.alerts.service import Raiser
from contracts.alerts import SERVICE_SCOPES
from contracts.errors import ErrorCode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import ServiceClient
from core.device_registry import Actor
from core.ephemeral import Ephemeral
from core.errors import AuthError, DomainError, NotFoundError, RateLimitedError

KEY_PREFIX = "mssc_sk_"
_KEY = re.compile(r"^mssc_sk_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_DUMMY_HASH = hashlib.sha256(b"mssc-no-such-service-client").hexdigest()
#: ``last_used_at`` is written at most this often per client.
_TOUCH_EVERY = dt.timedelta(minutes=1)
#: Refused keys one address may present per minute before it is told to slow down (429): keys cannot
#: be guessed (256 bits), but each refusal costs a database lookup.
REFUSALS_PER_MINUTE = 20
#: How a refused call is told to authenticate (RFC 6750).
CHALLENGE = 'Bearer realm="mss-companion", error="invalid_token"'


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _refused() -> AuthError:
    return AuthError(
        ErrorCode.INVALID_SERVICE_KEY, "a valid service API key is required", headers={"WWW-Authenticate": CHALLENGE}
    )


@dataclass(frozen=True, slots=True)
class AuthenticatedService:
    id: uuid.UUID
    structure_id: uuid.UUID
    name: str
    scopes: frozenset[str]

    def raiser(self) -> Raiser:
        return Raiser(self.structure_id, service_client_id=self.id, scopes=self.scopes)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    client: ServiceClient
    #: Shown once to the titulaire; never stored, never logged.
    key: str

    def __repr__(self) -> str:
        return f"IssuedKey(client={self.client.id}, key=<hidden>)"


class ServiceClients:
    def __init__(self, db: Database, audit: AuditTrail, ephemeral: Ephemeral | None = None) -> None:
        self._db = db
        self._audit = audit
        self._eph = ephemeral

    async def create(self, actor: Actor, *, name: str, scopes: list[str]) -> IssuedKey:
        name = name.strip()
        if not _NAME.match(name):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a name of 1 to 64 characters is needed")
        chosen = sorted(set(scopes))
        if not chosen or any(s not in SERVICE_SCOPES for s in chosen):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "choose at least one known scope")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        async with self._db.transaction() as session:
            structure = await members.require_manager(session, actor)
            client = ServiceClient(
                structure_id=structure.id,
                name=name,
                key_id=key_id,
                secret_hash=_hash(secret),
                scopes=" ".join(chosen),
                created_by=actor.professional_id,
            )
            session.add(client)
            await session.flush()
            await self._audit.record(
                "service_client.created",
                actor=actor.idnat,
                structure_id=structure.id,
                target=str(client.id),
                details={"scopes": chosen},
                session=session,
            )
        return IssuedKey(client, f"{KEY_PREFIX}{key_id}.{secret}")

    async def of_structure(self, actor: Actor) -> list[ServiceClient]:
        async with self._db.read() as session:
            structure = await members.require_manager(session, actor)
            rows = await session.scalars(
                select(ServiceClient)
                .where(ServiceClient.structure_id == structure.id)
                .order_by(ServiceClient.created_at)
            )
            return list(rows.all())

    async def revoke(self, actor: Actor, client_id: uuid.UUID) -> None:
        async with self._db.transaction() as session:
            structure = await members.require_manager(session, actor)
            client = await session.get(ServiceClient, client_id)
            if client is None or client.structure_id != structure.id:
                raise NotFoundError(ErrorCode.SERVICE_CLIENT_NOT_FOUND, "no such service client")
            if client.revoked_at is not None:
                return
            client.revoked_at = dt.datetime.now(dt.UTC)
            await self._audit.record(
                "service_client.revoked",
                actor=actor.idnat,
                structure_id=structure.id,
                target=str(client.id),
                session=session,
            )

    async def authenticate(self, authorization: str | None, *, client_ip: str = "unknown") -> AuthenticatedService:
        """``Authorization: Bearer mssc_sk_…``: the client, or ``invalid_service_key`` (``rate_limited``
        once this address was refused too often within a minute)."""
        refusals = f"rl:service-key:{client_ip}"
        if self._eph is not None and int((await self._eph.get(refusals)) or b"0") >= REFUSALS_PER_MINUTE:
            raise RateLimitedError(retry_after=60, detail="too many refused service keys from this address")
        scheme, _, key = (authorization or "").partition(" ")
        match = _KEY.match(key.strip()) if scheme.lower() == "bearer" else None
        client = None
        if match is not None:
            key_id, secret = match.groups()
            async with self._db.read() as session:
                client = await session.scalar(select(ServiceClient).where(ServiceClient.key_id == key_id))
            expected = client.secret_hash if client is not None else _DUMMY_HASH
            if not hmac.compare_digest(expected, _hash(secret)):
                client = None
        if client is None or client.revoked_at is not None:
            if self._eph is not None:
                await self._eph.incr(refusals, 60)
            raise _refused()
        now = dt.datetime.now(dt.UTC)
        if client.last_used_at is None or now - client.last_used_at > _TOUCH_EVERY:
            async with self._db.transaction() as session:
                await session.execute(
                    update(ServiceClient).where(ServiceClient.id == client.id).values(last_used_at=now)
                )
        return AuthenticatedService(client.id, client.structure_id, client.name, frozenset(client.scopes.split()))
