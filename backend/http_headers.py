"""Response headers every instance adds: security headers on pages, a fresh DPoP nonce on the API."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

from litestar.types import ASGIApp, Message, Receive, Scope, Send


@cache
def page_headers(psc_issuer: str) -> list[tuple[bytes, bytes]]:
    """Strict CSP; forms may only post here, and logout may redirect to PSC's end-session page."""
    parts = urlsplit(psc_issuer)
    psc_origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    csp = (
        "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        f"form-action 'self' {psc_origin}; frame-ancestors 'none'; base-uri 'none'"
    ).replace("  ", " ")
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cache-control", b"no-store"),
    ]


def headers_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]  # lifespan scopes exist too
            await app(scope, receive, send)
            return
        path: str = scope["path"]
        is_api = path.startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                container = getattr(scope["app"].state, "container", None)
                if is_api:
                    if container is not None and not any(k.lower() == b"dpop-nonce" for k, _ in headers):
                        headers.append((b"dpop-nonce", container.authenticator.nonces.issue().encode()))
                    headers += [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
                elif container is not None and not path.startswith(("/static/", "/psc-sandbox/")):
                    headers += page_headers(container.settings.psc.issuer)
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
