"""Whatever a client sends, the checks answer with an AuthError, never a crash (a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.auth.access_tokens import AccessTokenIssuer
from backend.auth.dpop import DpopNonces, verify_dpop_proof
from backend.auth.jwk import b64url_encode, public_jwk
from backend.auth.jws import sign_es256
from backend.auth.signing_keys import SigningKeys, generate_key_file
from core.ephemeral import MemoryEphemeral
from core.errors import AuthError

URL = "https://api.mss-companion.test/v1/me"
KEY = ec.generate_private_key(ec.SECP256R1())
JWK = public_jwk(KEY)
NONCES = DpopNonces(b"0123456789abcdef0123456789abcdef", 300)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
claim_names = st.sampled_from(["htm", "htu", "iat", "jti", "nonce", "ath", "exp"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    claims=st.dictionaries(claim_names, json_values, max_size=7),
    header=st.dictionaries(st.sampled_from(["typ", "jwk", "kid", "x5c", "crit", "b64"]), json_values, max_size=3),
)
def test_arbitrary_signed_proofs_only_raise_auth_errors(claims: dict[str, Any], header: dict[str, Any]) -> None:
    base = {"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": "j", "nonce": NONCES.issue()}
    proof = sign_es256(header={"typ": "dpop+jwt", "jwk": JWK, **header}, payload={**base, **claims}, key=KEY)

    async def run() -> None:
        await verify_dpop_proof(
            proof=proof,
            method="GET",
            url=URL,
            access_token="at",
            nonces=NONCES,
            replay=MemoryEphemeral(),
            max_age_s=60,
            skew_s=5,
        )

    with contextlib.suppress(AuthError):
        asyncio.run(run())


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300)
    | st.from_regex(r"[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]{0,90}", fullmatch=True)
)
def test_arbitrary_proof_strings_only_raise_auth_errors(proof: str) -> None:
    async def run() -> None:
        await verify_dpop_proof(
            proof=proof,
            method="GET",
            url=URL,
            access_token=None,
            nonces=NONCES,
            replay=MemoryEphemeral(),
            max_age_s=60,
            skew_s=5,
        )

    with contextlib.suppress(AuthError):
        asyncio.run(run())


def test_arbitrary_access_tokens_only_raise_auth_errors(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    keys = SigningKeys.load(tmp_path)
    issuer = AccessTokenIssuer(keys, issuer="i", audience="a", ttl_s=300)
    kid = keys.signing_key.kid

    @settings(max_examples=200, deadline=None)
    @given(
        claims=st.dictionaries(
            st.sampled_from(["iss", "aud", "sub", "idnat", "scope", "cnf", "iat", "nbf", "exp", "jti", "sid"]),
            json_values,
            max_size=11,
        ),
        token_text=st.text(max_size=200),
    )
    def check(claims: dict[str, Any], token_text: str) -> None:
        good = {
            "iss": "i",
            "aud": "a",
            "sub": "d",
            "idnat": "8",
            "scope": "device",
            "cnf": {"jkt": "x"},
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "jti": "j",
        }
        signed = sign_es256(
            header={"typ": "at+jwt", "kid": kid}, payload={**good, **claims}, key=keys.signing_key.private_key
        )
        for token in (signed, token_text, _hs256(claims)):
            with contextlib.suppress(AuthError):
                issuer.verify(token, skew_s=5)

    check()


def _hs256(claims: dict[str, Any]) -> str:
    h = b64url_encode(b'{"alg":"HS256","typ":"at+jwt"}')
    p = b64url_encode(json.dumps(claims).encode())
    return f"{h}.{p}.{b64url_encode(hmac.digest(b'k' * 32, f'{h}.{p}'.encode(), hashlib.sha256))}"
