from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.jwk import (
    JwkError,
    b64url_decode,
    b64url_encode,
    jwk_thumbprint,
    load_public_jwk,
    public_jwk,
    public_key_from_jwk,
    validate_public_jwk,
)


def _jwk() -> dict[str, str]:
    return public_jwk(ec.generate_private_key(ec.SECP256R1()))


def test_public_jwk_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(key)
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert public_key_from_jwk(jwk).public_numbers() == key.public_key().public_numbers()
    assert public_jwk(key.public_key()) == jwk


def test_thumbprint_is_rfc7638_canonical_sha256() -> None:
    jwk = _jwk()
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    expected = b64url_encode(hashlib.sha256(canonical.encode()).digest())
    assert jwk_thumbprint(jwk) == expected
    # Optional members do not change the thumbprint.
    assert jwk_thumbprint({**jwk, "kid": "k", "alg": "ES256", "use": "sig"}) == expected


def test_thumbprint_matches_an_independent_implementation() -> None:
    # joserfc comes with authlib (a dependency); it is only used here, as a cross-check.
    from joserfc.jwk import ECKey

    jwk = _jwk()
    as_joserfc: dict[str, str | list[str]] = dict(jwk)
    assert jwk_thumbprint(jwk) == ECKey.import_key(as_joserfc).thumbprint()


def test_load_public_jwk_returns_canonical_thumbprint_and_key() -> None:
    jwk = _jwk()
    loaded = load_public_jwk({**jwk, "kid": "ignored"})
    assert loaded.jwk == {"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    assert loaded.jkt == jwk_thumbprint(jwk)
    assert loaded.jwk is not load_public_jwk(jwk).jwk  # callers may keep or change their copy


@pytest.mark.parametrize(
    "change",
    [
        {"d": "AAAA"},  # private EC key
        {"p": "AAAA"},
        {"k": "AAAA"},
        {"kty": "RSA"},
        {"kty": "OKP"},
        {"crv": "P-384"},
        {"crv": "secp256k1"},
        {"alg": "RS256"},
        {"alg": "none"},
        {"use": "enc"},
        {"x": None},
        {"x": 12},
    ],
)
def test_invalid_jwk_refused(change: dict[str, object]) -> None:
    jwk: dict[str, object] = {**_jwk(), **change}
    with pytest.raises(JwkError):
        validate_public_jwk(jwk)


def test_private_jwk_refused_with_clear_message() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    d = b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))
    with pytest.raises(JwkError, match="private"):
        validate_public_jwk({**public_jwk(key), "d": d})


def test_missing_members_refused() -> None:
    jwk = _jwk()
    for name in ("kty", "crv", "x", "y"):
        partial = {k: v for k, v in jwk.items() if k != name}
        with pytest.raises(JwkError):
            validate_public_jwk(partial)
    with pytest.raises(JwkError):
        validate_public_jwk(["not", "an", "object"])


def test_coordinates_must_be_canonical_base64url_of_32_bytes() -> None:
    jwk = _jwk()
    x = jwk["x"]
    padded = x + "="
    short = b64url_encode(b64url_decode(x)[:31])
    std_alphabet = x.replace("-", "+").replace("_", "/")
    # Flip one of the two spare low bits of the last character: same bytes, another spelling.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(x[-1])
    non_canonical = x[:-1] + alphabet[last ^ 1]
    assert b64url_decode(non_canonical) == b64url_decode(x)
    for bad in (padded, short, non_canonical, std_alphabet if std_alphabet != x else x + "+"):
        with pytest.raises(JwkError):
            validate_public_jwk({**jwk, "x": bad})


def test_point_not_on_curve_refused() -> None:
    jwk = _jwk()
    y = bytearray(b64url_decode(jwk["y"]))
    y[-1] ^= 1
    with pytest.raises(JwkError, match="point"):
        public_key_from_jwk({**jwk, "y": b64url_encode(bytes(y))})


def test_non_p256_key_cannot_be_exported() -> None:
    with pytest.raises(JwkError):
        public_jwk(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize("bad", ["a+b", "a/b", "ab==", "a b", "abcde", "é"])
def test_b64url_decode_is_strict(bad: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        b64url_decode(bad)


def test_b64url_round_trip() -> None:
    for n in range(40):
        data = bytes(range(n))
        assert b64url_decode(b64url_encode(data)) == data
