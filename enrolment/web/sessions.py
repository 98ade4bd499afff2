"""Server-side web sessions: the only place that may enrol a device or manage a team.

The cookie holds a random id; everything else stays in the ephemeral store. Limits are PSC's own:
30 minutes idle, 4 hours absolute. Each session has its CSRF token, checked on every form.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

import msgspec

from core.ephemeral import Ephemeral
from core.settings import SessionSettings


class ActivityChoice(msgspec.Struct, rename="camel"):
    """One structure the person may act for (from PSC activities)."""

    structure_idnat: str
    structure_id: str
    name: str
    finess: str | None = None
    siret: str | None = None
    is_titulaire: bool = False
    city: str | None = None


class WebSession(msgspec.Struct, kw_only=True):
    id: str
    csrf: str
    created_at: float
    last_seen: float
    # during the PSC round trip
    oidc_state: str | None = None
    oidc_nonce: str | None = None
    oidc_verifier: str | None = None
    next_url: str | None = None
    # after login
    professional_id: str | None = None
    idnat: str | None = None
    display_name: str | None = None
    profession_code: str | None = None
    auth_time: float | None = None
    auth_mode: str | None = None
    psc_id_token: str | None = None
    activities: list[ActivityChoice] = msgspec.field(default_factory=list)
    structure_id: str | None = None
    structure_name: str | None = None
    is_titulaire: bool = False

    @property
    def logged_in(self) -> bool:
        return self.professional_id is not None

    def recent_login(self, max_age_s: int, now: float | None = None) -> bool:
        return self.auth_time is not None and (now or time.time()) - self.auth_time <= max_age_s

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf.encode(), (presented or "").encode())


class SessionStore:
    def __init__(self, ephemeral: Ephemeral, settings: SessionSettings) -> None:
        self._eph = ephemeral
        self.settings = settings

    @property
    def cookie_name(self) -> str:
        # ``__Host-`` pins the cookie to this host and path, and demands Secure.
        return f"__Host-{self.settings.cookie_name}" if self.settings.cookie_secure else self.settings.cookie_name

    def cookie_kwargs(self) -> dict[str, Any]:
        return {"httponly": True, "secure": self.settings.cookie_secure, "samesite": "lax", "path": "/"}

    async def create(self) -> WebSession:
        now = time.time()
        session = WebSession(
            id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now
        )
        await self.save(session)
        return session

    async def load(self, session_id: str | None) -> WebSession | None:
        """The live session, or ``None`` when absent, idle too long, or past its absolute limit."""
        if not session_id or len(session_id) > 128:
            return None
        raw = await self._eph.get(f"sess:{session_id}")
        if raw is None:
            return None
        session = msgspec.json.decode(raw, type=WebSession)
        now = time.time()
        if now - session.created_at > self.settings.absolute_s or now - session.last_seen > self.settings.idle_s:
            await self.destroy(session)
            return None
        if now - session.last_seen > 30:  # renew the idle window without a write on every request
            session.last_seen = now
            await self.save(session)
        return session

    async def save(self, session: WebSession) -> None:
        left = self.settings.absolute_s - (time.time() - session.created_at)
        ttl = max(1.0, min(float(self.settings.idle_s), left))
        await self._eph.set(f"sess:{session.id}", msgspec.json.encode(session), ttl)

    async def rotate(self, session: WebSession) -> WebSession:
        """New id and CSRF token at login (no session fixation)."""
        await self._eph.delete(f"sess:{session.id}")
        now = time.time()
        fresh = msgspec.structs.replace(
            session, id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now
        )
        await self.save(fresh)
        return fresh

    async def destroy(self, session: WebSession) -> None:
        await self._eph.delete(f"sess:{session.id}")
