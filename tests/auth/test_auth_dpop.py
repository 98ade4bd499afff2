from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.dpop import DpopNonces, access_token_hash, normalise_htu, verify_dpop_proof
from backend.auth.jwk import b64url_encode, public_jwk
from contracts.errors import ErrorCode
from core.ephemeral import Ephemeral
from core.errors import AuthError

API = "https://api.mss-companion.test"
URL = f"{API}/v1/mailboxes"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"  # any string: only its hash matters to the proof
MAX_AGE = 60
SKEW = 5


async def _verify(
    proof: str | None,
    *,
    nonces: DpopNonces,
    replay: Ephemeral,
    method: str = "GET",
    url: str = URL,
    access_token: str | None = TOKEN,
    **kw: Any,
) -> Any:
    return await verify_dpop_proof(
        proof=proof,
        method=method,
        url=url,
        access_token=access_token,
        nonces=nonces,
        replay=replay,
        max_age_s=MAX_AGE,
        skew_s=SKEW,
        **kw,
    )


async def _refused(
    proof: str | None, code: ErrorCode, *, nonces: DpopNonces, replay: Ephemeral, **kw: Any
) -> AuthError:
    with pytest.raises(AuthError) as exc:
        await _verify(proof, nonces=nonces, replay=replay, **kw)
    assert exc.value.code == code, exc.value.detail
    assert exc.value.status in (400, 401)
    return exc.value


async def test_valid_proof(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    proof = phone.proof("GET", URL, access_token=TOKEN, nonce=nonces.issue(), jti="jti-1")
    verified = await _verify(proof, nonces=nonces, replay=ephemeral, expected_jkt=phone.jkt)
    assert verified.jkt == phone.jkt
    assert verified.jwk == {"crv": "P-256", "kty": "EC", "x": phone.jwk["x"], "y": phone.jwk["y"]}
    assert verified.jti == "jti-1"
    assert abs(verified.iat - time.time()) < 5
    # The jti is remembered exactly as long as the proof could be accepted.
    ttl = await ephemeral.ttl(f"dpop:jti:{phone.jkt}:jti-1")
    assert ttl is not None
    assert MAX_AGE + SKEW < ttl <= MAX_AGE + 2 * SKEW


async def test_token_endpoint_proof_without_access_token(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    proof = phone.proof("POST", f"{API}/v1/token", nonce=nonces.issue())
    verified = await _verify(
        proof, nonces=nonces, replay=ephemeral, method="POST", url=f"{API}/v1/token", access_token=None
    )
    assert verified.jkt == phone.jkt


async def test_missing_proof(nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    for proof in (None, ""):
        await _refused(proof, ErrorCode.DPOP_REQUIRED, nonces=nonces, replay=ephemeral)


async def test_replayed_proof_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    proof = phone.proof(access_token=TOKEN, nonce=nonces.issue())
    await _verify(proof, nonces=nonces, replay=ephemeral)
    await _refused(proof, ErrorCode.DPOP_REPLAYED, nonces=nonces, replay=ephemeral)
    # A new proof reusing the jti of the first one is a replay too.
    again = phone.proof(
        access_token=TOKEN, nonce=nonces.issue(), jti=jwt.decode(proof, options={"verify_signature": False})["jti"]
    )
    await _refused(again, ErrorCode.DPOP_REPLAYED, nonces=nonces, replay=ephemeral)


async def test_rejected_proof_does_not_burn_its_jti(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    await _refused(phone.proof(access_token=TOKEN, jti="j"), ErrorCode.USE_DPOP_NONCE, nonces=nonces, replay=ephemeral)
    await _verify(phone.proof(access_token=TOKEN, jti="j", nonce=nonces.issue()), nonces=nonces, replay=ephemeral)


async def test_proof_for_another_method_or_url_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    nonce = nonces.issue()
    for method, url in (
        ("POST", URL),
        ("get", URL),
        ("GET", f"{API}/v1/mailboxes/other"),
        ("GET", "https://evil.test/v1/mailboxes"),
        ("GET", URL.replace("https", "http")),
        ("GET", f"{API}:8443/v1/mailboxes"),
    ):
        proof = phone.proof(method, url, access_token=TOKEN, nonce=nonce)
        await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)


async def test_htu_is_compared_normalised_without_query(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    nonce = nonces.issue()
    for htu in (
        "HTTPS://API.MSS-Companion.test:443/v1/mailboxes",
        f"{URL}?page=2#top",
        "https://api.mss-companion.test/v1/%6dailboxes",
    ):
        proof = phone.proof("GET", htu, access_token=TOKEN, nonce=nonce)
        await _verify(proof, nonces=nonces, replay=ephemeral, url=f"{URL}?page=1")


def test_normalise_htu() -> None:
    assert normalise_htu("HTTPS://Example.COM:443") == "https://example.com/"
    assert normalise_htu("http://example.com:80/a?b#c") == "http://example.com/a"
    assert normalise_htu("http://example.com:8080/a") == "http://example.com:8080/a"
    assert normalise_htu("https://[::1]:443/x") == "https://[::1]/x"
    assert normalise_htu("https://h/a%2fb%7e") == "https://h/a%2Fb~"
    for bad in ("/relative", "ftp://h/x", "https://user:pw@h/x", "https://h:99999/x", "https:///x"):
        assert normalise_htu(bad) is None


async def test_wrong_or_missing_ath_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    nonce = nonces.issue()
    wrong = phone.proof(access_token="another-token", nonce=nonce)
    await _refused(wrong, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    missing = phone.proof(nonce=nonce)
    await _refused(missing, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    for odd in ("é" * 43, 42, None):
        odd_proof = phone.proof(nonce=nonce, ath=odd)
        await _refused(odd_proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)


async def test_missing_nonce_answers_use_dpop_nonce_with_a_fresh_one(
    phone: Any, nonces: DpopNonces, ephemeral: Ephemeral
) -> None:
    error = await _refused(phone.proof(access_token=TOKEN), ErrorCode.USE_DPOP_NONCE, nonces=nonces, replay=ephemeral)
    fresh = error.headers["DPoP-Nonce"]
    assert nonces.check(fresh)
    # The phone retries with the nonce it was given, and is let in.
    await _verify(phone.proof(access_token=TOKEN, nonce=fresh), nonces=nonces, replay=ephemeral)


async def test_old_or_forged_nonce_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    now = time.time()
    old = nonces.issue(now=now - 2 * nonces.window_s)
    forged = DpopNonces(b"some-other-secret-0123456789abcdef", 300).issue()
    for nonce in (old, forged, "not-a-nonce", old[:-1] + ("A" if old[-1] != "A" else "B")):
        error = await _refused(
            phone.proof(access_token=TOKEN, nonce=nonce), ErrorCode.USE_DPOP_NONCE, nonces=nonces, replay=ephemeral
        )
        assert nonces.check(error.headers["DPoP-Nonce"])
    # The previous window's nonce is still good.
    previous = nonces.issue(now=now - nonces.window_s)
    await _verify(phone.proof(access_token=TOKEN, nonce=previous), nonces=nonces, replay=ephemeral)


def test_nonce_windows() -> None:
    nonces = DpopNonces(b"0123456789abcdef0123", 100)
    t = 1_000_000.0
    nonce = nonces.issue(now=t)
    assert nonces.issue(now=t + 99) == nonce  # constant within a window
    assert nonces.check(nonce, now=t)
    assert nonces.check(nonce, now=t + 199)
    assert not nonces.check(nonce, now=t + 200)
    assert not nonces.check(nonce, now=t - 100)  # a nonce from the future is no nonce
    with pytest.raises(ValueError, match="16 bytes"):
        DpopNonces(b"short", 100)


async def test_proof_by_another_key_than_the_token_binding(
    phone: Any, other_phone: Any, nonces: DpopNonces, ephemeral: Ephemeral
) -> None:
    proof = other_phone.proof(access_token=TOKEN, nonce=nonces.issue())
    error = await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral, expected_jkt=phone.jkt)
    assert error.detail == "proof key does not match the token binding"


async def test_jwk_in_header_must_be_the_signing_key(
    phone: Any, other_phone: Any, nonces: DpopNonces, ephemeral: Ephemeral
) -> None:
    proof = other_phone.proof(access_token=TOKEN, nonce=nonces.issue(), header={"jwk": phone.jwk})
    error = await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral, expected_jkt=phone.jkt)
    assert error.detail == "bad signature"


def _unsigned(header: dict[str, Any], claims: dict[str, Any], alg: str, secret: bytes = b"") -> str:
    h = b64url_encode(json.dumps({**header, "alg": alg}).encode())
    p = b64url_encode(json.dumps(claims).encode())
    if alg == "none":
        return f"{h}.{p}."
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url_encode(sig)}"


async def test_alg_none_and_hs256_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    claims = jwt.decode(phone.proof(access_token=TOKEN, nonce=nonces.issue()), options={"verify_signature": False})
    header = {"typ": "dpop+jwt", "jwk": phone.jwk}
    for proof in (
        _unsigned(header, claims, "none"),
        _unsigned(header, claims, "HS256", phone.jwk["x"].encode()),
        jwt.encode(claims, "secret-secret-secret-secret-1234", algorithm="HS256", headers=header),
    ):
        error = await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
        assert error.detail == "alg must be ES256"


async def test_other_algorithms_refused_even_if_correctly_signed(nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = jwt.PyJWK.from_dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))).key
    assert jwk is not None
    claims = {
        "htm": "GET",
        "htu": URL,
        "iat": int(time.time()),
        "jti": "x",
        "nonce": nonces.issue(),
        "ath": access_token_hash(TOKEN),
    }
    header = {"typ": "dpop+jwt", "jwk": json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))}
    proof = jwt.encode(claims, key, algorithm="ES384", headers=header)
    await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)


async def test_jwk_with_private_member_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    d = b64url_encode(phone.key.private_numbers().private_value.to_bytes(32, "big"))
    proof = phone.proof(access_token=TOKEN, nonce=nonces.issue(), header={"jwk": {**phone.jwk, "d": d}})
    error = await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    assert "private" in (error.detail or "")


async def test_bad_header_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    nonce = nonces.issue()
    p384 = public_jwk(ec.generate_private_key(ec.SECP256R1())) | {"crv": "P-384"}
    for header in ({"typ": "JWT"}, {"typ": "at+jwt"}, {"jwk": None}, {"jwk": p384}, {"crit": ["exp"]}):
        proof = phone.proof(access_token=TOKEN, nonce=nonce, header=header)
        await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    no_typ = jwt.encode({"htm": "GET"}, phone.key, algorithm="ES256", headers={"jwk": phone.jwk})
    await _refused(no_typ, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)


async def test_stale_or_future_iat_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    now = time.time()
    nonce = nonces.issue()
    for iat in (now - MAX_AGE - SKEW - 2, now + SKEW + 2, "now", True, None):
        proof = phone.proof(access_token=TOKEN, nonce=nonce, iat=iat, drop=("iat",) if iat is None else ())
        await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    # Within the window (a phone a little behind, or a little ahead) it passes.
    for iat in (now - MAX_AGE, now + SKEW - 1):
        await _verify(phone.proof(access_token=TOKEN, nonce=nonce, iat=iat), nonces=nonces, replay=ephemeral)


async def test_bad_jti_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    nonce = nonces.issue()
    for jti in ("", "x" * 257, 12):
        proof = phone.proof(access_token=TOKEN, nonce=nonce, jti=jti)
        await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    missing = phone.proof(access_token=TOKEN, nonce=nonce, drop=("jti",))
    await _refused(missing, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)
    longest = phone.proof(access_token=TOKEN, nonce=nonce, jti="x" * 256)
    await _verify(longest, nonces=nonces, replay=ephemeral)


async def test_malformed_or_multiple_proofs_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    one = phone.proof(access_token=TOKEN, nonce=nonces.issue())
    for proof in (f"{one}, {one}", "abc", "a.b.c", one + "x" * 5000, one.rsplit(".", 1)[0] + ".AAAA"):
        await _refused(proof, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral)


async def test_tampered_claims_refused(phone: Any, nonces: DpopNonces, ephemeral: Ephemeral) -> None:
    h, p, s = phone.proof("GET", URL, access_token=TOKEN, nonce=nonces.issue()).split(".")
    claims = json.loads(jwt.utils.base64url_decode(p))
    claims["htm"] = "DELETE"
    tampered = f"{h}.{b64url_encode(json.dumps(claims).encode())}.{s}"
    await _refused(tampered, ErrorCode.DPOP_INVALID, nonces=nonces, replay=ephemeral, method="DELETE")
