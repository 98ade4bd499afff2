"""Pro Santé Connect client: authorization code flow with PKCE, server side.

The web routes call :meth:`PscClient.begin`, keep ``state``, ``nonce`` and ``code_verifier`` in
the server-side session, redirect the browser, then call :meth:`PscClient.complete` on the
callback. The PSC tokens stay on the server (ANS's pattern for phones); nothing here speaks HTTP
to the browser. authlib builds the protocol messages and the client authentication
(``client_secret_basic`` or ``client_secret_post``), httpx carries them, PyJWT verifies the
signatures.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import msgspec
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from contracts.errors import ErrorCode
from core.errors import DomainError
from core.settings import PscSettings
from enrolment.psc.claims import PscIdentity, parse_identity
from enrolment.psc.discovery import ProviderMetadata, parse_metadata
from enrolment.psc.tokens import (
    candidate_keys,
    check_id_token,
    check_userinfo_claims,
    read_header,
    verify_jws,
)

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]

_OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep server-side until the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    #: The redirect URI used; :meth:`PscClient.complete` must be given the same one.
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class PscLogin:
    """A verified PSC login. Tokens never leave the server."""

    identity: PscIdentity
    #: Raw ID token, kept for the end-session ``id_token_hint``.
    id_token: str = field(repr=False)
    acr: str
    #: ``CARD`` for a CPS card; other values (e-CPS) are passed through as PSC sends them.
    auth_mode: str | None
    #: Epoch seconds of the authentication (ID token ``auth_time``, else the time of the exchange).
    auth_time: int
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: int | None


class PscClient:
    """OIDC relying party for PSC. One instance per process; discovery and JWKS are cached."""

    def __init__(
        self,
        settings: PscSettings,
        *,
        redirect_uri: str,
        http: httpx.AsyncClient | None = None,
        token_auth_method: TokenAuthMethod = "client_secret_basic",  # noqa: S107 - a method name, not a secret
        cache_ttl_s: float = 3600.0,
        jwks_min_refresh_s: float = 10.0,
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.issuer:
            raise ValueError("PscSettings.issuer is empty")
        self.settings = settings
        self.redirect_uri = redirect_uri
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=settings.http_timeout_s)
        self._token_auth_method = token_auth_method
        self._cache_ttl_s = cache_ttl_s
        #: An unknown ``kid`` triggers a JWKS refetch (key rotation), at most this often.
        self._jwks_min_refresh_s = jwks_min_refresh_s
        self._leeway_s = leeway_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = float("-inf")
        self._jwks: tuple[Mapping[str, Any], ...] = ()
        self._jwks_at = float("-inf")

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> PscClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def metadata(self) -> ProviderMetadata | None:
        """The cached discovery document, if any."""
        return self._metadata

    async def discover(self) -> ProviderMetadata:
        """Fetch (or reuse) the discovery document and the JWKS it points to."""
        if self._metadata is not None and self._clock() - self._metadata_at < self._cache_ttl_s:
            return self._metadata
        async with self._lock:
            if self._metadata is not None and self._clock() - self._metadata_at < self._cache_ttl_s:
                return self._metadata
            url = self.settings.issuer.rstrip("/") + self.settings.discovery_path
            raw = await self._get_json(url, "discovery")
            metadata = parse_metadata(raw, expected_issuer=self.settings.issuer)
            await self._load_jwks(metadata)
            self._metadata, self._metadata_at = metadata, self._clock()
            return metadata

    async def begin(self, *, redirect_uri: str | None = None) -> AuthorizationRequest:
        """Build the authorization URL with fresh ``state``, ``nonce`` and PKCE verifier."""
        metadata = await self.discover()
        target = redirect_uri or self.redirect_uri
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(48)
        url: str = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=self.settings.client_id,
            response_type="code",
            redirect_uri=target,
            scope=self.settings.scopes,
            state=state,
            nonce=nonce,
            acr_values=self.settings.acr_values or None,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=code_verifier, redirect_uri=target)

    def check_callback(self, params: Mapping[str, str]) -> None:
        """Refuse a callback that carries an OAuth error or another provider's ``iss`` (RFC 9207).

        Call it on the callback's query before :meth:`complete`; ``access_denied`` means the person
        cancelled on PSC.
        """
        error = params.get("error")
        if error is not None:
            shown = error if _OAUTH_ERROR.match(error) else "error"
            raise DomainError(ErrorCode.PSC_ERROR, f"PSC did not authenticate ({shown})", psc_error=shown)
        iss = params.get("iss")
        if iss is not None and iss.rstrip("/") != self.settings.issuer.rstrip("/"):
            raise DomainError(ErrorCode.PSC_ERROR, "callback comes from another issuer")

    async def complete(
        self,
        *,
        code: str,
        state: str,
        expected_state: str,
        nonce: str,
        code_verifier: str,
        redirect_uri: str | None = None,
    ) -> PscLogin:
        """Check the callback, redeem the code, verify the ID token and fetch the userinfo."""
        if not (state and expected_state and hmac.compare_digest(state.encode(), expected_state.encode())):
            raise DomainError(ErrorCode.PSC_STATE_MISMATCH, "callback state does not match the login request")
        metadata = await self.discover()
        tokens = await self._redeem(
            metadata, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri or self.redirect_uri
        )
        id_token = _text(tokens.get("id_token"), ErrorCode.PSC_INVALID_TOKEN, "no ID token in token response")
        access_token = _text(tokens.get("access_token"), ErrorCode.PSC_ERROR, "no access token in response")
        if str(tokens.get("token_type", "")).lower() != "bearer":
            raise DomainError(ErrorCode.PSC_ERROR, "token response is not a bearer token")
        now = self._clock()
        verified = check_id_token(
            await self._verified_payload(metadata, id_token),
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            nonce=nonce,
            accepted_acr=self.settings.accepted_acr,
            now=now,
            leeway_s=self._leeway_s,
        )
        userinfo = await self._userinfo(metadata, access_token)
        identity = parse_identity(userinfo)
        if identity.sub != verified.sub:
            raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "userinfo sub differs from the ID token sub")
        auth_mode = verified.auth_mode or _optional_text(userinfo.get("authMode"))
        refresh_token = tokens.get("refresh_token")
        return PscLogin(
            identity=identity,
            id_token=id_token,
            acr=verified.acr,
            auth_mode=auth_mode,
            auth_time=verified.auth_time if verified.auth_time is not None else int(now),
            access_token=access_token,
            refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
            expires_in=_optional_int(tokens.get("expires_in")),
        )

    def end_session_url(
        self, *, id_token_hint: str, post_logout_redirect_uri: str, state: str | None = None
    ) -> str | None:
        """PSC logout URL, or ``None`` when PSC has no end-session endpoint (or was never discovered)."""
        endpoint = self._metadata.end_session_endpoint if self._metadata is not None else None
        if not endpoint:
            return None
        params = {
            "id_token_hint": id_token_hint,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "client_id": self.settings.client_id,
        }
        if state:
            params["state"] = state
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    # -- internals -------------------------------------------------------------------------

    async def _redeem(
        self, metadata: ProviderMetadata, *, code: str, code_verifier: str, redirect_uri: str
    ) -> Mapping[str, Any]:
        form = urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )
        auth = ClientAuth(self.settings.client_id, self.settings.client_secret, self._token_auth_method)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        url, headers, body = auth.prepare("POST", metadata.token_endpoint, headers, form)
        response = await self._send("POST", url, "token endpoint", content=body.encode(), headers=headers)
        if response.status_code != 200:
            raise DomainError(ErrorCode.PSC_ERROR, f"PSC refused the code ({_oauth_error(response)})")
        return _json_object(response, "token response")

    async def _userinfo(self, metadata: ProviderMetadata, access_token: str) -> Mapping[str, Any]:
        response = await self._send(
            "GET",
            metadata.userinfo_endpoint,
            "userinfo endpoint",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json, application/jwt"},
        )
        if response.status_code in (401, 403):
            raise DomainError(ErrorCode.PSC_INVALID_TOKEN, "PSC userinfo refused the access token")
        if response.status_code != 200:
            raise DomainError(ErrorCode.PSC_ERROR, f"PSC userinfo failed ({response.status_code})")
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type == "application/jwt":
            claims = await self._verified_payload(metadata, response.text.strip())
            check_userinfo_claims(claims, issuer=self.settings.issuer, client_id=self.settings.client_id)
            return claims
        if media_type == "application/json":
            return _json_object(response, "userinfo")
        raise DomainError(ErrorCode.PSC_ERROR, "PSC userinfo has an unexpected content type")

    async def _verified_payload(self, metadata: ProviderMetadata, token: str) -> dict[str, Any]:
        header = read_header(token)
        keys = [] if header.uses_client_secret else candidate_keys(self._jwks, header=header)
        if not header.uses_client_secret and not keys and await self._refresh_jwks(metadata):
            keys = candidate_keys(self._jwks, header=header)
        return verify_jws(token, header=header, keys=keys, client_secret=self.settings.client_secret)

    async def _refresh_jwks(self, metadata: ProviderMetadata) -> bool:
        """Refetch the JWKS for an unknown key, rate-limited so forged ``kid``s cannot make us hammer PSC."""
        async with self._lock:
            if self._clock() - self._jwks_at < self._jwks_min_refresh_s:
                return False
            await self._load_jwks(metadata)
            return True

    async def _load_jwks(self, metadata: ProviderMetadata) -> None:
        self._jwks_at = self._clock()
        if not metadata.jwks_uri:
            self._jwks = ()
            return
        document = await self._get_json(metadata.jwks_uri, "JWKS")
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise DomainError(ErrorCode.PSC_ERROR, "PSC JWKS has no keys")
        self._jwks = tuple(key for key in keys if isinstance(key, Mapping))

    async def _get_json(self, url: str, what: str) -> Mapping[str, Any]:
        response = await self._send("GET", url, what, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise DomainError(ErrorCode.PSC_ERROR, f"PSC {what} failed ({response.status_code})")
        return _json_object(response, what)

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request; network trouble and 5xx are ``PSC_UNAVAILABLE`` (worth retrying later)."""
        try:
            response = await self._http.request(
                method, url, timeout=self.settings.http_timeout_s, follow_redirects=False, **kwargs
            )
        except httpx.HTTPError:
            raise DomainError(ErrorCode.PSC_UNAVAILABLE, f"PSC {what} is unreachable") from None
        if response.status_code >= 500:
            raise DomainError(ErrorCode.PSC_UNAVAILABLE, f"PSC {what} failed ({response.status_code})")
        return response


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    if not isinstance(body, dict):
        raise DomainError(ErrorCode.PSC_ERROR, f"PSC {what} is not a JSON object")
    return body


def _oauth_error(response: httpx.Response) -> str:
    """The OAuth ``error`` code when it is a plain token (safe to show), else the HTTP status."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str) and _OAUTH_ERROR.match(error):
        return error
    return str(response.status_code)


def _text(value: Any, code: ErrorCode, detail: str) -> str:
    if not isinstance(value, str) or not value:
        raise DomainError(code, detail)
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
