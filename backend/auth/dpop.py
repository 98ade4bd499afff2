"""RFC 9449 DPoP proof verification and stateless server nonces.

Every phone request carries ``DPoP: <proof>``, a JWT signed by the device key over the method, the
URL, the time, a unique id and, on resource requests, a hash of the access token. The checks follow
RFC 9449 §4.3 in order, cheapest and most telling first; the replay cache is written last, so
only a proof that passed everything else uses up its ``jti``.

Server nonces (§8) are required on every proof: they bound a proof's life by the server's clock,
whatever the phone's clock says. They are stateless — a time window and an HMAC — so every
instance sharing the secret accepts every other instance's nonces, with no store round-trip. A nonce
is good for the window it was issued in and the next one. The caller sends ``DpopNonces.issue()``
in a ``DPoP-Nonce`` header on responses (it is constant within a window, so this is cheap); a
missing or stale nonce is answered ``use_dpop_nonce`` with a fresh one in that header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from backend.auth.jwk import JwkError, LoadedJwk, b64url_decode, b64url_encode, load_public_jwk
from backend.auth.jws import CompactJws, JwsError, parse_compact, verify_es256
from contracts.errors import ErrorCode
from core.ephemeral import Ephemeral
from core.errors import AuthError

PROOF_TYPE = "dpop+jwt"
NONCE_HEADER = "DPoP-Nonce"
MAX_JTI_LEN = 256
#: DPoP proofs are small (a P-256 JWK and a few claims); anything larger is refused unparsed.
MAX_PROOF_LEN = 4096

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_NONCE_LABEL = b"mssc dpop nonce v1\x00"
_NONCE_TAG_LEN = 16
_NONCE_B64_LEN = 32  # base64url of 8-byte window + 16-byte tag


@dataclass(frozen=True, slots=True)
class VerifiedDpopProof:
    #: RFC 7638 thumbprint of the key that signed the proof.
    jkt: str
    #: That key's canonical public JWK (``crv``, ``kty``, ``x``, ``y``).
    jwk: dict[str, str]
    jti: str
    iat: int


class DpopNonces:
    """Stateless DPoP nonces: ``b64url(window || HMAC(secret, window)[:16])``.

    A nonce issued in window ``w`` (``floor(now / window_s)``) is accepted in ``w`` and ``w + 1``, so it
    lives between ``window_s`` and ``2 * window_s``. Derive ``secret`` from the app secret (every
    instance must share it); changing it invalidates outstanding nonces, which costs each phone one
    ``use_dpop_nonce`` round-trip and nothing else.
    """

    def __init__(self, secret: bytes, window_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("DPoP nonce secret must be at least 16 bytes")
        if window_s <= 0:
            raise ValueError("DPoP nonce window must be positive")
        self._secret = secret
        self.window_s = window_s
        self._current: tuple[int, str] = (-1, "")
        self._tags: dict[int, bytes] = {}

    def _window(self, now: float | None) -> int:
        return int((time.time() if now is None else now) // self.window_s)

    def _tag(self, window: int) -> bytes:
        tag = self._tags.get(window)
        if tag is None:
            message = _NONCE_LABEL + window.to_bytes(8, "big")
            tag = hmac.digest(self._secret, message, "sha256")[:_NONCE_TAG_LEN]
            if len(self._tags) >= 4:  # only the current and previous windows are ever accepted
                self._tags.clear()
            self._tags[window] = tag
        return tag

    def issue(self, *, now: float | None = None) -> str:
        """The nonce of the current window (the same string for everyone until the window turns)."""
        window = self._window(now)
        if self._current[0] == window:
            return self._current[1]
        nonce = b64url_encode(window.to_bytes(8, "big") + self._tag(window))
        if now is None:
            self._current = (window, nonce)
        return nonce

    def check(self, nonce: str, *, now: float | None = None) -> bool:
        """``True`` for a nonce of this window or the previous one, issued with our secret."""
        if len(nonce) != _NONCE_B64_LEN:
            return False
        try:
            raw = b64url_decode(nonce)
        except ValueError:
            return False
        window = int.from_bytes(raw[:8], "big")
        if self._window(now) - window not in (0, 1):
            return False
        return hmac.compare_digest(raw[8:], self._tag(window))


def access_token_hash(access_token: str) -> str:
    """The ``ath`` claim value: base64url SHA-256 of the access token (RFC 9449 §4.2)."""
    return b64url_encode(hashlib.sha256(access_token.encode()).digest())


@lru_cache(maxsize=1024)
def normalise_htu(url: str) -> str | None:
    """``scheme://host[:port]/path`` for comparing ``htu`` with the request URL (RFC 9449 §4.3).

    Query and fragment dropped; scheme and host lower-cased; default ports removed; empty path is
    ``/``; percent-encodings upper-cased and unreserved ones decoded (RFC 3986 §6.2.2). ``None`` when
    the URL is not an absolute http(s) URL without user information.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _PCT.sub(_normalise_pct, parts.path) if "%" in parts.path else parts.path
    return f"{scheme}://{netloc}{path or '/'}"


def _normalise_pct(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


async def verify_dpop_proof(
    *,
    proof: str | None,
    method: str,
    url: str,
    access_token: str | None,
    nonces: DpopNonces,
    replay: Ephemeral | None,
    max_age_s: int,
    skew_s: int,
    expected_jkt: str | None = None,
    now: float | None = None,
) -> VerifiedDpopProof:
    """Verify the DPoP proof of one request; raise ``AuthError`` with one code otherwise.

    ``proof`` is the request's single ``DPoP`` header value (``None`` when absent; a caller that saw
    several headers passes them joined with ``,``, which is refused). ``url`` is the request URL as
    the phone addressed it (the public origin, not the one behind a proxy); its query is ignored.
    ``access_token`` is the presented token on resource requests (its hash must be in ``ath``) and
    ``None`` at the token endpoint. ``expected_jkt`` is the token's ``cnf.jkt``.

    Codes: ``DPOP_REQUIRED`` (no proof), ``DPOP_INVALID`` (any failed check), ``USE_DPOP_NONCE``
    (missing or stale nonce, with a fresh one in the ``DPoP-Nonce`` header), ``DPOP_REPLAYED``.
    A ``url`` that is not an absolute http(s) URL is the caller's bug: ``ValueError``.
    """
    if not proof:
        raise AuthError(ErrorCode.DPOP_REQUIRED, "DPoP proof required")
    if "," in proof:
        raise _invalid("more than one DPoP header")
    try:
        jws = parse_compact(proof, max_len=MAX_PROOF_LEN)
    except JwsError as exc:
        raise _invalid(str(exc)) from None
    public = _signer(jws)
    claims = jws.payload
    _check_request(claims, method=method, url=url, access_token=access_token)
    iat, jti = _check_freshness(claims, max_age_s=max_age_s, skew_s=skew_s, now=time.time() if now is None else now)
    if expected_jkt is not None and not hmac.compare_digest(public.jkt.encode(), expected_jkt.encode()):
        raise _invalid("proof key does not match the token binding")

    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonces.check(nonce, now=now):
        raise AuthError(
            ErrorCode.USE_DPOP_NONCE, "use the DPoP-Nonce value", headers={NONCE_HEADER: nonces.issue(now=now)}
        )

    if replay is not None and not await replay.add(replay_key(public.jkt, jti), b"1", replay_ttl(max_age_s, skew_s)):
        raise AuthError(ErrorCode.DPOP_REPLAYED, "DPoP proof already used")
    return VerifiedDpopProof(jkt=public.jkt, jwk=public.jwk, jti=jti, iat=int(iat))


def replay_key(jkt: str, jti: str) -> str:
    return f"dpop:jti:{jkt}:{jti}"


def replay_ttl(max_age_s: int, skew_s: int) -> int:
    """Remember a jti as long as its proof could still be accepted: iat may be skew_s ahead and is
    accepted for max_age_s + skew_s after that."""
    return max_age_s + 2 * skew_s


def replayed() -> AuthError:
    return AuthError(ErrorCode.DPOP_REPLAYED, "DPoP proof already used")


def _signer(jws: CompactJws) -> LoadedJwk:
    """Header checks and signature: the proof is explicitly typed, ES256, and signed by its ``jwk``."""
    header = jws.header
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != PROOF_TYPE:
        raise _invalid("typ must be dpop+jwt")
    if header.get("alg") != "ES256":
        raise _invalid("alg must be ES256")
    try:
        public = load_public_jwk(header.get("jwk"))
    except JwkError as exc:
        raise _invalid(str(exc)) from None
    if not verify_es256(jws, public.key):
        raise _invalid("bad signature")
    return public


def _check_request(claims: dict[str, Any], *, method: str, url: str, access_token: str | None) -> None:
    """``htm``, ``htu`` and, with an access token, ``ath`` bind the proof to this one request."""
    if claims.get("htm") != method:
        raise _invalid("htm does not match the request method")
    expected_htu = normalise_htu(url)
    if expected_htu is None:
        raise ValueError("request url must be an absolute http(s) URL")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalise_htu(htu) != expected_htu:
        raise _invalid("htu does not match the request URL")
    if access_token is not None:
        ath = claims.get("ath")
        # Bytes: compare_digest refuses non-ASCII str (a TypeError an attacker could trigger).
        expected = access_token_hash(access_token).encode()
        if not isinstance(ath, str) or not hmac.compare_digest(ath.encode(), expected):
            raise _invalid("ath does not match the access token")


def _check_freshness(claims: dict[str, Any], *, max_age_s: int, skew_s: int, now: float) -> tuple[float, str]:
    iat = _iat(claims)
    if iat > now + skew_s:
        raise _invalid("iat is in the future")
    if now - iat > max_age_s + skew_s:
        raise _invalid("proof too old")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LEN:
        raise _invalid("jti missing or too long")
    return iat, jti


def _iat(claims: dict[str, Any]) -> float:
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise _invalid("iat missing")
    return iat


def _invalid(detail: str) -> AuthError:
    return AuthError(ErrorCode.DPOP_INVALID, detail)


__all__ = [
    "MAX_JTI_LEN",
    "MAX_PROOF_LEN",
    "NONCE_HEADER",
    "PROOF_TYPE",
    "DpopNonces",
    "VerifiedDpopProof",
    "access_token_hash",
    "normalise_htu",
    "verify_dpop_proof",
]
