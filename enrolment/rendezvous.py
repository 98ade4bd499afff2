"""The enrolment rendezvous: a short-lived record in the ephemeral store, moved by atomic steps.

The QR holds only ``id`` and ``secret``. The record knows whose it is; the phone never learns it.
Every transition is a compare-and-set on the stored bytes, so two phones (or two instances) racing
for one QR cannot both win.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from contracts.enrolment import BindingMethod, Platform, PushProvider, RendezvousState
from contracts.errors import ErrorCode
from core.ephemeral import Ephemeral
from core.errors import ConflictError, DomainError, NotFoundError
from enrolment.binding import b64u_decode

#: A record outlives its deadline this long, so a late phone hears "expired", not "not found".
TOMBSTONE_S = 15 * 60
#: After a claim, this long to bind and confirm (the QR deadline itself stays ≤ 120 s).
FINISH_S = 180


class Rendezvous(msgspec.Struct, kw_only=True):
    id: str
    secret: str
    professional_id: str
    structure_id: str | None
    web_session: str
    created_at: float
    deadline: float
    state: RendezvousState = RendezvousState.WAITING
    wrong_secrets: int = 0
    # set by the claim
    jkt: str | None = None
    jwk: dict[str, Any] | None = None
    device_name: str | None = None
    platform: Platform | None = None
    binding: BindingMethod | None = None
    push_provider: PushProvider | None = None
    push_token: str | None = None
    challenge: str | None = None
    user_handle: str | None = None
    check_code: str | None = None
    # set by the binding
    webauthn: dict[str, Any] | None = None
    # set by the confirmation
    confirmed: bool = False
    device_id: str | None = None

    @property
    def secret_bytes(self) -> bytes:
        return b64u_decode(self.secret)

    def expires_in(self, now: float | None = None) -> int:
        return max(0, int(self.deadline - (now or time.time())))

    @property
    def finished(self) -> bool:
        return self.state in {RendezvousState.COMPLETED, RendezvousState.REJECTED, RendezvousState.EXPIRED}


def _key(rendezvous_id: str) -> str:
    return f"rdv:{rendezvous_id}"


class RendezvousStore:
    """Load and move rendezvous records; all writes are compare-and-set."""

    def __init__(self, ephemeral: Ephemeral, *, ttl_s: int) -> None:
        self._eph = ephemeral
        self.ttl_s = ttl_s

    async def open(self, *, professional_id: str, structure_id: str | None, web_session: str) -> Rendezvous:
        now = time.time()
        rdv = Rendezvous(
            id=secrets.token_urlsafe(24),
            secret=secrets.token_urlsafe(24),
            professional_id=professional_id,
            structure_id=structure_id,
            web_session=web_session,
            created_at=now,
            deadline=now + self.ttl_s,
        )
        await self._eph.set(_key(rdv.id), msgspec.json.encode(rdv), self.ttl_s + TOMBSTONE_S)
        return rdv

    async def load(self, rendezvous_id: str) -> tuple[Rendezvous, bytes]:
        raw = await self._eph.get(_key(rendezvous_id))
        if raw is None:
            raise NotFoundError(ErrorCode.ENROLMENT_NOT_FOUND, "unknown or long-expired enrolment")
        rdv = msgspec.json.decode(raw, type=Rendezvous)
        if not rdv.finished and time.time() > rdv.deadline:
            expired = msgspec.structs.replace(rdv, state=RendezvousState.EXPIRED)
            new = msgspec.json.encode(expired)
            if await self._eph.compare_and_set(_key(rdv.id), raw, new):
                return expired, new
            return await self.load(rendezvous_id)
        return rdv, raw

    async def update(self, rendezvous_id: str, change: Callable[[Rendezvous], Rendezvous]) -> Rendezvous:
        """Apply ``change`` atomically; ``change`` raises a DomainError to refuse the transition."""
        for _ in range(8):
            rdv, raw = await self.load(rendezvous_id)
            new = change(rdv)
            if await self._eph.compare_and_set(_key(rendezvous_id), raw, msgspec.json.encode(new)):
                return new
        raise ConflictError(ErrorCode.ENROLMENT_WRONG_STATE, "enrolment changed concurrently, retry")

    async def delete(self, rendezvous_id: str) -> None:
        await self._eph.delete(_key(rendezvous_id))


def refuse_finished(rdv: Rendezvous) -> None:
    """The common refusals once a rendezvous cannot move forward any more."""
    if rdv.state == RendezvousState.EXPIRED:
        raise DomainError(ErrorCode.ENROLMENT_EXPIRED, "this QR code has expired")
    if rdv.state == RendezvousState.REJECTED:
        raise DomainError(ErrorCode.ENROLMENT_REJECTED, "this enrolment was refused or cancelled")
    if rdv.state == RendezvousState.COMPLETED:
        raise DomainError(ErrorCode.ENROLMENT_ALREADY_USED, "this QR code was already used")
