"""The PSC discovery document, as far as this client relies on it."""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.errors import ErrorCode
from core.errors import DomainError


class ProviderMetadata(msgspec.Struct, frozen=True):
    """OpenID provider metadata. Unknown members (PSC publishes many) are ignored."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    #: Absent only for a provider that signs with the client secret (HS256) alone.
    jwks_uri: str | None = None
    end_session_endpoint: str | None = None
    token_endpoint_auth_methods_supported: list[str] = msgspec.field(default_factory=list)
    id_token_signing_alg_values_supported: list[str] = msgspec.field(default_factory=list)


def parse_metadata(raw: Any, *, expected_issuer: str) -> ProviderMetadata:
    """Validate the document; its ``issuer`` must be the configured one (OIDC Discovery §4.3)."""
    try:
        metadata = msgspec.convert(raw, ProviderMetadata)
    except msgspec.ValidationError as exc:
        raise DomainError(ErrorCode.PSC_ERROR, f"PSC discovery document is malformed: {exc}") from None
    if metadata.issuer.rstrip("/") != expected_issuer.rstrip("/"):
        raise DomainError(ErrorCode.PSC_ERROR, "PSC discovery issuer differs from the configured issuer")
    return metadata
