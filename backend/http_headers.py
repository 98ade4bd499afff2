"""Response headers every instance adds: security headers on pages, a fresh DPoP nonce on the API."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

from litestar.types import Message, Scope


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


async def headers_before_send(message: Message, scope: Scope) -> None:
    """Security headers on pages, a fresh DPoP nonce on the API: on every response, routing errors included."""
    if scope["type"] != "http" or message["type"] != "http.response.start":  # type: ignore[comparison-overlap]
        return
    path: str = scope["path"]
    headers: list[Any] = list(message.get("headers", []))
    container = getattr(scope["app"].state, "container", None)
    if path.startswith("/api/"):
        if container is not None and not any(k.lower() == b"dpop-nonce" for k, _ in headers):
            headers.append((b"dpop-nonce", container.authenticator.nonces.issue().encode()))
        headers += [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
    elif container is not None and not path.startswith(("/static/", "/psc-sandbox/")):
        headers += page_headers(container.settings.psc.issuer)
    message["headers"] = headers
