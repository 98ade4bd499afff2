"""The PSC sandbox's protocol logic, without HTTP: codes, tokens, keys.

It follows what a relying party sees from PSC (Keycloak): single-use codes valid 60 s, PKCE S256,
client secret by ``client_secret_basic`` or ``client_secret_post``, access tokens of 120 s, ID
tokens signed ES256 with a key generated per instance. Everything lives in memory: it is a dev
identity provider for one process.

Authentication modes (the e-CPS ``authMode`` is not documented by PSC; ``MOBILE`` is our choice):

* ``card``: CPS card, ``acr=eidas3``, ``authMode=CARD`` (as seen on PSC);
* ``ecps``: e-CPS app, ``acr=eidas1``, ``authMode=MOBILE``;
* ``weak``: test only, ``acr=eidas0``, ``authMode=PASSWORD``: a level the client must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import ec

from enrolment.psc_sandbox.people import SandboxProfessional, find_professional

AuthMode = Literal["card", "ecps", "weak"]
UserinfoFormat = Literal["json", "jwt"]

CODE_TTL_S = 60
ACCESS_TOKEN_TTL_S = 120
REFRESH_TOKEN_TTL_S = 30 * 60

#: Fields the login form sets itself; everything else of the request is carried as hidden inputs.
_FORM_FIELDS = frozenset({"professional", "auth_mode", "userinfo_format", "sandbox_userinfo", "action"})
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True, slots=True)
class AuthModeInfo:
    acr: str
    #: Value of PSC's ``authMode`` claim.
    psc_auth_mode: str
    label: str
    hint: str


AUTH_MODES: dict[str, AuthModeInfo] = {
    "card": AuthModeInfo("eidas3", "CARD", "Carte CPS", "lecteur de carte, niveau eidas3"),
    "ecps": AuthModeInfo("eidas1", "MOBILE", "e-CPS", "application mobile, niveau eidas1"),
    "weak": AuthModeInfo(
        "eidas0", "PASSWORD", "Niveau insuffisant (test)", "niveau eidas0, la connexion doit être refusée"
    ),
}


class ClientError(Exception):
    """The client or its redirect URI is unknown: show an error page, never redirect (RFC 6749 §4.1.2.1)."""


class OAuthError(Exception):
    """An OAuth error answered to the client, by redirect (authorize) or as JSON (token, userinfo)."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A validated authorization request; ``query`` is what the login form carries back."""

    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    code_challenge: str
    scope: str
    userinfo_format: UserinfoFormat | None
    login_hint: str | None
    auth_mode_hint: str | None
    query: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Grant:
    request: AuthorizeRequest
    professional: SandboxProfessional
    mode: AuthModeInfo
    auth_time: int
    expires_at: float
    sid: str
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _AccessToken:
    professional: SandboxProfessional
    expires_at: float
    userinfo_format: UserinfoFormat
    sid: str


class SandboxProvider:
    """One sandbox identity provider: its key, its registered client, its codes and tokens."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uris: tuple[str, ...] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.clock = clock
        self._key = ec.generate_private_key(ec.SECP256R1())
        public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self._public_jwk: dict[str, Any] = public_jwk
        self.kid = _thumbprint(self._public_jwk)
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._ended_sids: set[str] = set()

    # -- documents ---------------------------------------------------------------------------

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/protocol/openid-connect/{name}"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("auth"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "end_session_endpoint": self.endpoint("logout"),
            "jwks_uri": self.endpoint("certs"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "scope_all"],
            "acr_values_supported": sorted({mode.acr for mode in AUTH_MODES.values()}),
            "id_token_signing_alg_values_supported": ["ES256"],
            "userinfo_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "acr",
                "auth_time",
                "authMode",
                "nonce",
                "SubjectNameID",
                "preferred_username",
                "given_name",
                "family_name",
                "otherIds",
                "SubjectRefPro",
            ],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._public_jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._key, algorithm="ES256", headers={"kid": self.kid})

    # -- authorization -----------------------------------------------------------------------

    def check_authorize(self, params: Mapping[str, str]) -> AuthorizeRequest:
        """Validate an authorization request (query of the GET, or the form of the POST)."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id != self.client_id:
            raise ClientError("Client inconnu.")
        if not self._redirect_uri_allowed(redirect_uri):
            raise ClientError("Adresse de retour (redirect_uri) non enregistrée pour ce client.")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        scope = params.get("scope", "")
        if "openid" not in scope.split():
            raise OAuthError("invalid_scope", "scope must include openid")
        challenge = params.get("code_challenge", "")
        if not challenge or params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        # The login form's select (``userinfo_format``) wins over the query toggle it was prefilled from.
        userinfo_format: UserinfoFormat | None
        match params.get("userinfo_format", params.get("sandbox_userinfo")) or None:
            case None:
                userinfo_format = None
            case "json":
                userinfo_format = "json"
            case "jwt":
                userinfo_format = "jwt"
            case _:
                raise OAuthError("invalid_request", "sandbox_userinfo must be json or jwt")
        return AuthorizeRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=params.get("state") or None,
            nonce=params.get("nonce") or None,
            code_challenge=challenge,
            scope=scope,
            userinfo_format=userinfo_format,
            login_hint=params.get("login_hint") or None,
            auth_mode_hint=params.get("sandbox_auth_mode") or None,
            query=tuple((k, v) for k, v in params.items() if k not in _FORM_FIELDS),
        )

    def issue_code(self, request: AuthorizeRequest, *, idnat: str, auth_mode: str) -> str:
        """The person picked on the login page authenticates; return the redirect with a fresh code."""
        professional = find_professional(idnat)
        mode = AUTH_MODES.get(auth_mode)
        if professional is None or mode is None:
            raise OAuthError("invalid_request", "unknown test professional or authentication mode")
        now = self.clock()
        self._prune(now)
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Grant(
            request=request,
            professional=professional,
            mode=mode,
            auth_time=int(now),
            expires_at=now + CODE_TTL_S,
            sid=secrets.token_urlsafe(16),
        )
        return self.redirect(request, {"code": code})

    def redirect(self, request: AuthorizeRequest, params: Mapping[str, str]) -> str:
        """``redirect_uri`` plus the response, ``state`` and ``iss`` (RFC 9207)."""
        extra = dict(params)
        if request.state is not None:
            extra["state"] = request.state
        extra["iss"] = self.issuer
        return add_query(request.redirect_uri, extra)

    # -- token endpoint ------------------------------------------------------------------------

    def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        """Redeem a code (authorization_code grant only)."""
        self._authenticate_client(form, authorization)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code is supported")
        grant = self._codes.get(form.get("code", ""))
        now = self.clock()
        if grant is None or grant.expires_at < now:
            raise OAuthError("invalid_grant", "code is unknown or expired")
        if grant.used:
            # RFC 6749 §4.1.2: a replayed code revokes what it already gave.
            for token in grant.access_tokens:
                self._access_tokens.pop(token, None)
            raise OAuthError("invalid_grant", "code was already used")
        grant.used = True
        if form.get("redirect_uri") != grant.request.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        expected = grant.request.code_challenge
        if not _PKCE_VERIFIER.match(verifier) or not hmac.compare_digest(
            str(create_s256_code_challenge(verifier)), expected
        ):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(32)
        professional = grant.professional
        userinfo_format: UserinfoFormat = grant.request.userinfo_format or (
            "jwt" if professional.userinfo_jwt else "json"
        )
        self._access_tokens[access_token] = _AccessToken(
            professional=professional,
            expires_at=now + ACCESS_TOKEN_TTL_S,
            userinfo_format=userinfo_format,
            sid=grant.sid,
        )
        grant.access_tokens.append(access_token)
        return {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_TTL_S,
            "refresh_expires_in": REFRESH_TOKEN_TTL_S,
            "refresh_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "id_token": self.sign(self._id_token_claims(grant, now)),
            "not-before-policy": 0,
            "session_state": grant.sid,
            "scope": grant.request.scope,
        }

    def _id_token_claims(self, grant: _Grant, now: float) -> dict[str, Any]:
        professional = grant.professional
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": professional.sub,
            "aud": self.client_id,
            "azp": self.client_id,
            "typ": "ID",
            "exp": int(now) + ACCESS_TOKEN_TTL_S,
            "iat": int(now),
            "auth_time": grant.auth_time,
            "sid": grant.sid,
            "acr": grant.mode.acr,
            "authMode": grant.mode.psc_auth_mode,
            "preferred_username": professional.idnat,
            "SubjectNameID": professional.idnat,
            "given_name": professional.given_name.upper(),
            "family_name": professional.family_name.upper(),
        }
        if grant.request.nonce is not None:
            claims["nonce"] = grant.request.nonce
        return claims

    def _authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> None:
        basic = _basic_credentials(authorization)
        posted = form.get("client_secret")
        if basic is not None and posted is not None:
            raise OAuthError("invalid_request", "use one client authentication method")
        if basic is not None:
            candidates = basic
        elif posted is not None:
            candidates = [(form.get("client_id", ""), posted)]
        else:
            raise OAuthError("invalid_client", "client authentication is required", status=401)
        expected = self.client_secret.encode()
        if not any(
            client_id == self.client_id and hmac.compare_digest(secret.encode(), expected)
            for client_id, secret in candidates
        ):
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        if form.get("client_id") not in (None, self.client_id):
            raise OAuthError("invalid_client", "client_id differs from the authenticated client", status=401)

    # -- userinfo, logout ------------------------------------------------------------------------

    def userinfo(self, authorization: str | None) -> tuple[str, str | dict[str, Any]]:
        """``(media type, body)`` for a bearer access token."""
        token = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else ""
        access = self._access_tokens.get(token)
        if access is None or access.expires_at < self.clock() or access.sid in self._ended_sids:
            raise OAuthError("invalid_token", "access token is unknown or expired", status=401)
        claims = access.professional.userinfo()
        if access.userinfo_format == "jwt":
            return "application/jwt", self.sign({**claims, "iss": self.issuer, "aud": self.client_id})
        return "application/json", claims

    def end_session(self, params: Mapping[str, str]) -> str | None:
        """End the PSC session named by ``id_token_hint``; the URL to send the browser to, if any."""
        hint = params.get("id_token_hint")
        if hint:
            try:
                claims = jwt.decode(
                    hint,
                    self._key.public_key(),
                    algorithms=["ES256"],
                    audience=self.client_id,
                    issuer=self.issuer,
                    options={"verify_exp": False},
                )
            except jwt.PyJWTError:
                claims = {}
            sid = claims.get("sid")
            if isinstance(sid, str):
                self._ended_sids.add(sid)
        target = params.get("post_logout_redirect_uri")
        if not target or not self._post_logout_uri_allowed(target):
            return None
        state = params.get("state")
        return add_query(target, {"state": state}) if state else target

    # -- helpers -------------------------------------------------------------------------------

    def _redirect_uri_allowed(self, uri: str) -> bool:
        if self.redirect_uris is not None:
            return uri in self.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment

    def _post_logout_uri_allowed(self, uri: str) -> bool:
        if self.redirect_uris is None:
            return self._redirect_uri_allowed(uri)
        return _origin(uri) in {_origin(allowed) for allowed in self.redirect_uris}

    def _prune(self, now: float) -> None:
        for code in [c for c, g in self._codes.items() if g.expires_at + CODE_TTL_S < now]:
            del self._codes[code]
        for token in [t for t, a in self._access_tokens.items() if a.expires_at < now]:
            del self._access_tokens[token]


def add_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _basic_credentials(authorization: str | None) -> list[tuple[str, str]] | None:
    """``(client_id, secret)`` of a Basic header: as sent, and form-decoded as RFC 6749 §2.3.1 asks
    (authlib, for one, does not form-encode them)."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except ValueError:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401)
    return [(client_id, secret), (unquote_plus(client_id), unquote_plus(secret))]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, used as ``kid``."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
