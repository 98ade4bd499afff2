"""The key a phone proved in its request (verified DPoP proof), as rooms other than backend see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PhoneKey:
    #: RFC 7638 thumbprint of the public key.
    jkt: str
    #: The public JWK (EC P-256).
    jwk: dict[str, Any]
