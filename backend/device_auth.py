"""Authenticating a phone request: the access token, the DPoP proof bound to it, the denylist.

``Authorization: DPoP <token>`` plus a ``DPoP`` proof signed by the key in the token's ``cnf.jkt``.
A token without its proof, a proof replayed, a revoked or stale device: each refused with its code.
The URL the proof names is rebuilt from the public origin, so a proxy in front does not matter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Request

from backend.auth.access_tokens import AccessTokenIssuer, VerifiedAccessToken
from backend.auth.dpop import DpopNonces, VerifiedDpopProof, replay_key, replay_ttl, replayed, verify_dpop_proof
from backend.auth.revocation import DeviceRevocations
from contracts.errors import ErrorCode
from core.ephemeral import Ephemeral
from core.errors import AuthError
from core.phone_key import PhoneKey
from core.settings import Settings


@dataclass(frozen=True, slots=True)
class AuthenticatedDevice:
    device_id: uuid.UUID
    idnat: str
    structure_id: uuid.UUID | None
    scopes: frozenset[str]
    token: VerifiedAccessToken
    proof: VerifiedDpopProof


class DeviceAuthenticator:
    def __init__(
        self,
        *,
        settings: Settings,
        access: AccessTokenIssuer,
        nonces: DpopNonces,
        replay: Ephemeral,
        revocations: DeviceRevocations,
    ) -> None:
        self._origin = settings.app.origin
        self._tokens = settings.tokens
        self._access = access
        self.nonces = nonces
        self._replay = replay
        self._revocations = revocations

    def _url(self, request: Request[Any, Any, Any]) -> str:
        # The path as the phone sent it (percent-encoded): ``request.url`` decodes it, and building it
        # decodes the query string as UTF-8 (a query with other bytes made every API call a 500).
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else quote(request.scope["path"])
        return f"{self._origin}{path}"

    @staticmethod
    def _dpop_header(request: Request[Any, Any, Any]) -> str | None:
        values = request.headers.getall("dpop", [])
        return ",".join(values) if values else None

    async def proof(self, request: Request[Any, Any, Any]) -> PhoneKey:
        """A DPoP proof without a token: enrolment and the token endpoint."""
        verified = await verify_dpop_proof(
            proof=self._dpop_header(request),
            method=request.method,
            url=self._url(request),
            access_token=None,
            nonces=self.nonces,
            replay=self._replay,
            max_age_s=self._tokens.dpop_max_age_s,
            skew_s=self._tokens.clock_skew_s,
        )
        return PhoneKey(jkt=verified.jkt, jwk=dict(verified.jwk))

    async def authenticate(
        self, request: Request[Any, Any, Any], *, allow_revoked: bool = False
    ) -> AuthenticatedDevice:
        """Token + proof + denylist. ``allow_revoked`` serves the wipe acknowledgement only."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not token:
            raise AuthError(ErrorCode.AUTH_REQUIRED, "an access token is required")
        if scheme.lower() != "dpop":
            # RFC 9449 §7.1: a DPoP-bound token sent as a bearer token is refused.
            raise AuthError(ErrorCode.DPOP_REQUIRED, "use the DPoP authorization scheme")
        verified = self._access.verify(token.strip(), skew_s=self._tokens.clock_skew_s)
        proof = await verify_dpop_proof(
            proof=self._dpop_header(request),
            method=request.method,
            url=self._url(request),
            access_token=token.strip(),
            nonces=self.nonces,
            replay=None,  # recorded below, in the same store round trip as the denylist read
            max_age_s=self._tokens.dpop_max_age_s,
            skew_s=self._tokens.clock_skew_s,
            expected_jkt=verified.jkt,
        )
        fresh, denylist = await self._replay.add_and_get_many(
            replay_key(proof.jkt, proof.jti),
            b"1",
            replay_ttl(self._tokens.dpop_max_age_s, self._tokens.clock_skew_s),
            DeviceRevocations.keys(verified.device_id),
        )
        if not fresh:
            raise replayed()
        if not allow_revoked:
            DeviceRevocations.evaluate(verified, denylist)
        return AuthenticatedDevice(
            device_id=uuid.UUID(verified.device_id),
            idnat=verified.idnat,
            structure_id=uuid.UUID(verified.structure_id) if verified.structure_id else None,
            scopes=verified.scopes,
            token=verified,
            proof=proof,
        )
