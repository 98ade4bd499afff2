"""Device revocation and token staleness, visible to every instance at once (Redis in production).

Access tokens live at most 5 minutes, so the ephemeral store only has to remember a revocation or a
staleness mark for ``ttl_s >= access_ttl_s + clock_skew_s``: by then every token issued before it has
expired, and the refresh endpoint consults the database (device row, refresh tokens), which keeps the
permanent state. Order for a revocation: commit the database change, then call :meth:`revoke`.

Per request, :meth:`check` costs one ``get_many`` (one ``MGET`` on Redis) for both marks.
"""

from __future__ import annotations

import time
import uuid

from backend.auth.access_tokens import VerifiedAccessToken
from contracts.errors import ErrorCode
from core.ephemeral import Ephemeral
from core.errors import AuthError
from core.settings import TokenSettings

#: Retries of the compare-and-set in :meth:`DeviceRevocations.mark_stale` before giving up.
_CAS_ATTEMPTS = 8


def revoked_key(device_id: uuid.UUID | str) -> str:
    return f"dev:revoked:{device_id}"


def stale_key(device_id: uuid.UUID | str) -> str:
    return f"dev:stale:{device_id}"


class DeviceRevocations:
    """Revocation fan-out through the shared ephemeral store."""

    def __init__(self, ephemeral: Ephemeral, *, ttl_s: int) -> None:
        if ttl_s <= 0:
            raise ValueError("revocation ttl must be positive")
        self._store = ephemeral
        self.ttl_s = ttl_s

    @classmethod
    def for_settings(cls, ephemeral: Ephemeral, tokens: TokenSettings) -> DeviceRevocations:
        """TTL = access token life + skew, plus a minute of margin for clocks and slow requests."""
        return cls(ephemeral, ttl_s=tokens.access_ttl_s + tokens.clock_skew_s + 60)

    async def revoke(self, device_id: uuid.UUID | str) -> None:
        """Every outstanding access token of the device is refused from now on (with ``wipe``)."""
        await self._store.set(revoked_key(device_id), b"1", self.ttl_s)

    async def mark_stale(self, device_id: uuid.UUID | str, not_before: int | None = None) -> None:
        """Tokens issued before ``not_before`` (epoch seconds, default now) must be refreshed.

        Used when grants change, so the next token carries the new scopes. A token issued in the same
        second as the mark still passes (``iat`` has one-second resolution); a refreshed token never
        loops. The mark only moves forward: of two concurrent marks, the later ``not_before`` stays.
        """
        stamp = int(time.time()) if not_before is None else not_before
        key = stale_key(device_id)
        new = str(stamp).encode()
        for _ in range(_CAS_ATTEMPTS):
            current = await self._store.get(key)
            if current is not None and int(current) >= stamp:
                return
            if await self._store.compare_and_set(key, current, new, self.ttl_s):
                return
        # Only a storm of concurrent marks for one device gets here; each of them is within the same
        # seconds as ours, so at worst a token issued in those seconds survives until it expires.

    @staticmethod
    def keys(device_id: uuid.UUID | str) -> list[str]:
        """The store keys ``evaluate`` needs, for callers that batch them with other store work."""
        return [revoked_key(device_id), stale_key(device_id)]

    async def check(self, verified: VerifiedAccessToken) -> None:
        """Raise ``DEVICE_REVOKED`` (``wipe=True``) or ``TOKEN_STALE``; one store round-trip."""
        self.evaluate(verified, await self._store.get_many(self.keys(verified.device_id)))

    @staticmethod
    def evaluate(verified: VerifiedAccessToken, values: list[bytes | None]) -> None:
        revoked, stale = values
        if revoked is not None:
            raise AuthError(ErrorCode.DEVICE_REVOKED, "device revoked", wipe=True)
        if stale is not None and verified.iat < int(stale):
            raise AuthError(ErrorCode.TOKEN_STALE, "token must be refreshed")


__all__ = ["DeviceRevocations", "revoked_key", "stale_key"]
