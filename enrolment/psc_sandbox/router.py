"""HTTP face of the PSC sandbox: a Litestar ``Router`` serving PSC's paths under the app.

Mount it at ``/psc-sandbox`` with an issuer of ``{origin}/psc-sandbox/auth/realms/esante-wallet``;
the realm part of the paths is taken from the issuer, so the same paths as PSC's are served:
``…/.well-known/(wallet-)openid-configuration`` and ``…/protocol/openid-connect/{auth,token,
userinfo,certs,logout}``. Dev only: the app must not mount it in production.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from litestar import Request, Response, Router, get, post, route
from litestar.enums import MediaType
from litestar.response import Redirect

from enrolment.psc_sandbox.people import PROFESSIONALS
from enrolment.psc_sandbox.provider import (
    AUTH_MODES,
    AuthorizeRequest,
    ClientError,
    OAuthError,
    SandboxProvider,
    add_query,
)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def create_psc_sandbox_router(
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    redirect_uris: tuple[str, ...] | None = None,
    path: str = "/psc-sandbox",
    clock: Callable[[], float] = time.time,
) -> Router:
    """A dev identity provider speaking PSC's OIDC. ``redirect_uris=None`` accepts any http(s) URI."""
    provider = SandboxProvider(
        issuer=issuer, client_id=client_id, client_secret=client_secret, redirect_uris=redirect_uris, clock=clock
    )
    realm = _realm_path(issuer, path)
    oidc = f"{realm}/protocol/openid-connect"

    @get([f"{realm}/.well-known/openid-configuration", f"{realm}/.well-known/wallet-openid-configuration"])
    async def discovery() -> Response[dict[str, Any]]:
        return Response(provider.metadata(), status_code=200)

    @get(f"{oidc}/certs")
    async def certs() -> Response[dict[str, Any]]:
        return Response(provider.jwks(), status_code=200)

    @get(f"{oidc}/auth")
    async def authorize_page(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            params = _single(request.query_params.multi_items())
            auth = provider.check_authorize(params)
        except ClientError as exc:
            return _message_page("Requête refusée", str(exc), status=400)
        except OAuthError as exc:
            return Redirect(_error_redirect(provider, params, exc), status_code=303)
        return _login_page(auth, action=request.url.path)

    @post(f"{oidc}/auth")
    async def authorize_submit(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        try:
            params = _single(form.multi_items())
            auth = provider.check_authorize(params)
        except ClientError as exc:
            return _message_page("Requête refusée", str(exc), status=400)
        except OAuthError as exc:
            return Redirect(_error_redirect(provider, params, exc), status_code=303)
        if params.get("action") == "cancel":
            return Redirect(provider.redirect(auth, {"error": "access_denied"}), status_code=303)
        idnat, mode = params.get("professional", ""), params.get("auth_mode", "")
        if not any(p.idnat == idnat for p in PROFESSIONALS) or mode not in AUTH_MODES:
            return _login_page(
                auth,
                action=request.url.path,
                status=400,
                error="Choisissez un professionnel et un moyen d'authentification.",
            )
        return Redirect(provider.issue_code(auth, idnat=idnat, auth_mode=mode), status_code=303)

    @post(f"{oidc}/token")
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        try:
            body = provider.token(_single(form.multi_items()), request.headers.get("authorization"))
        except (OAuthError, ClientError) as exc:
            return _oauth_error(exc)
        return Response(body, status_code=200, headers=_NO_STORE)

    @route(f"{oidc}/userinfo", http_method=["GET", "POST"])
    async def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            media_type, body = provider.userinfo(request.headers.get("authorization"))
        except OAuthError as exc:
            return Response(
                {"error": exc.error, "error_description": exc.description},
                status_code=exc.status,
                headers={"WWW-Authenticate": f'Bearer error="{exc.error}"', **_NO_STORE},
            )
        return Response(body, status_code=200, media_type=media_type, headers=_NO_STORE)

    @route(f"{oidc}/logout", http_method=["GET", "POST"])
    async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
        items = list(request.query_params.multi_items())
        if request.method == "POST":
            items += (await request.form()).multi_items()
        target = provider.end_session(dict(items))
        if target is not None:
            return Redirect(target, status_code=302)
        return _message_page("Déconnexion", "Vous êtes déconnecté de Pro Santé Connect (bac à sable).")

    return Router(
        path=path,
        route_handlers=[discovery, certs, authorize_page, authorize_submit, token, userinfo, logout],
        # Token and form posts come from other origins by design; the app's CSRF check must skip them.
        opt={"exclude_from_csrf": True},
        include_in_schema=False,
    )


def _realm_path(issuer: str, mount: str) -> str:
    issuer_path = urlsplit(issuer).path.rstrip("/")
    mount = "/" + mount.strip("/")
    if not issuer_path.startswith(mount + "/"):
        raise ValueError(f"PSC sandbox issuer {issuer!r} is not under the router path {mount!r}")
    return issuer_path[len(mount) :]


def _single(items: Any) -> dict[str, str]:
    """OAuth parameters must not repeat (RFC 6749 §3.1); a repeated one makes the request unusable."""
    params: dict[str, str] = {}
    for name, value in items:
        if name in params:
            raise ClientError(f"Paramètre répété : {name}.")
        params[name] = value if isinstance(value, str) else ""
    return params


def _error_redirect(provider: SandboxProvider, params: Mapping[str, str], exc: OAuthError) -> str:
    """Errors after the client and redirect URI were checked go back to the client (RFC 6749 §4.1.2.1)."""
    response = {"error": exc.error, "error_description": exc.description}
    state = params.get("state")
    if state:
        response["state"] = state
    response["iss"] = provider.issuer
    return add_query(params["redirect_uri"], response)


def _oauth_error(exc: OAuthError | ClientError) -> Response[Any]:
    error = exc if isinstance(exc, OAuthError) else OAuthError("invalid_request", str(exc))
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="esante-wallet"'
    return Response(
        {"error": error.error, "error_description": error.description}, status_code=error.status, headers=headers
    )


def _login_page(auth: AuthorizeRequest, *, action: str, status: int = 200, error: str | None = None) -> Response[str]:
    content = _TEMPLATES.get_template("authorize.html").render(
        action=action,
        hidden=auth.query,
        professionals=PROFESSIONALS,
        selected_professional=auth.login_hint,
        auth_modes=list(AUTH_MODES.items()),
        selected_mode=auth.auth_mode_hint if auth.auth_mode_hint in AUTH_MODES else None,
        selected_format=auth.userinfo_format,
        error=error,
    )
    return Response(content, status_code=status, media_type=MediaType.HTML, headers=_PAGE_HEADERS)


def _message_page(title: str, message: str, *, status: int = 200) -> Response[str]:
    content = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} (bac à sable PSC)</title></head>"
        '<body style="font:1rem/1.5 system-ui,sans-serif;color:#161616;max-width:40rem;'
        f'margin:2rem auto;padding:0 1rem"><main><h1>{html.escape(title)}</h1>'
        f"<p>{html.escape(message)}</p></main></body></html>"
    )
    return Response(content, status_code=status, media_type=MediaType.HTML, headers=_PAGE_HEADERS)
