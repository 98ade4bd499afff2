"""Short ES256 bearer JWTs the companion signs to log into the operator for a mailbox.

The operator validates them locally (Dovecot: oauth2 passdb, ``introspection_mode = local``, the
public key at ``keys/<azp or default>/ES256/<kid>``). Claims:

* ``iss`` = ``bearer_issuer`` (the operator trusts that issuer), ``sub`` = the mailbox address
  (Dovecot's ``username_attribute = sub``), optional ``aud``;
* ``iat``, ``exp`` ≤ ``bearer_ttl_s`` later (the token only opens a session: minutes are plenty),
  ``jti`` (unique: an operator may refuse replays);
* ``idnat`` and ``device``: the acting professional and device, so the operator can trace who
  acted on an organisational mailbox.

Keys reuse :mod:`backend.auth.signing_keys`: ``bearer_key_file`` is either one PEM file (its stem is
the ``kid``) or a directory of ``<kid>.pem`` where the newest key signs — rotate by dropping a new
key with a later start time once the operator trusts its public half.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.signing_keys import SigningKey, SigningKeyError, SigningKeys
from backend.mail.operator.identity import ActingIdentity

#: The longest bearer lifetime accepted from settings: a leaked token must die quickly.
MAX_TTL_S = 3600
_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class BearerTokenIssuer:
    """Mints the JWT for one login. Thread-safe and cheap (one ES256 signature)."""

    def __init__(
        self,
        *,
        keys: SigningKeys,
        issuer: str,
        ttl_s: int = 300,
        audience: str | None = None,
        authorized_party: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer:
            raise ValueError("bearer_issuer is required for bearer login")
        if not 0 < ttl_s <= MAX_TTL_S:
            raise ValueError(f"bearer_ttl_s must be within 1..{MAX_TTL_S}")
        self._keys = keys
        self._issuer = issuer
        self._ttl_s = ttl_s
        self._audience = audience
        self._azp = authorized_party
        self._clock = clock

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        issuer: str,
        ttl_s: int = 300,
        audience: str | None = None,
        authorized_party: str | None = None,
    ) -> BearerTokenIssuer:
        """Keys from a PEM file (kid = file stem) or a directory of ``<kid>.pem``."""
        return cls(
            keys=load_bearer_keys(path),
            issuer=issuer,
            ttl_s=ttl_s,
            audience=audience,
            authorized_party=authorized_party,
        )

    @property
    def keys(self) -> SigningKeys:
        return self._keys

    def mint(self, identity: ActingIdentity) -> str:
        key = self._keys.signing_key
        now = int(self._clock())
        claims: dict[str, object] = {
            "iss": self._issuer,
            "sub": identity.mailbox,
            "iat": now,
            "exp": now + self._ttl_s,
            "jti": secrets.token_urlsafe(16),
            "idnat": identity.idnat,
            "device": identity.device_id,
        }
        if self._audience:
            claims["aud"] = self._audience
        if self._azp:
            claims["azp"] = self._azp
        return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": "JWT"})

    def public_pem(self, kid: str | None = None) -> bytes:
        """The SubjectPublicKeyInfo PEM the operator installs for ``kid`` (default: the signer)."""
        key = self._keys.signing_key if kid is None else self._keys.verification_key(kid)
        public = key.public_key if isinstance(key, SigningKey) else key
        if public is None:
            raise KeyError(kid)
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_bearer_keys(path: str | Path) -> SigningKeys:
    """A :class:`SigningKeys` from a directory, or from a single PEM file whose stem is the kid."""
    target = Path(path)
    if target.is_dir():
        return SigningKeys.load(target)
    kid = target.stem
    if _KID.fullmatch(kid) is None:
        raise SigningKeyError(f"{target.name}: kid must match {_KID.pattern}")
    try:
        private = serialization.load_pem_private_key(target.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise SigningKeyError(f"{target.name}: not a readable unencrypted PEM private key") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(private.curve, ec.SECP256R1):
        raise SigningKeyError(f"{target.name}: not an EC P-256 key")
    return SigningKeys([SigningKey(kid=kid, private_key=private, not_before=0.0)])
