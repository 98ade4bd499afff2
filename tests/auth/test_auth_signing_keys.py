from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.access_tokens import AccessTokenIssuer
from backend.auth.signing_keys import SigningKeyError, SigningKeys, ensure_dev_key, generate_key_file, rotate


def _issuer(keys: SigningKeys) -> AccessTokenIssuer:
    return AccessTokenIssuer(keys, issuer="https://api.test", audience="https://api.test", ttl_s=300)


def _issue(keys: SigningKeys) -> str:
    return (
        _issuer(keys)
        .issue(device_id="d1", professional_idnat="810000000001", jkt="j" * 43, scopes=["device"], structure_id=None)
        .token
    )


def test_ensure_dev_key_creates_one_private_key_file(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    kid = ensure_dev_key(directory)
    assert kid is not None
    path = directory / f"{kid}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert ensure_dev_key(directory) is None  # never a second key behind the operator's back
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary file left
    assert SigningKeys.load(directory).kids == (kid,)


def test_jwks_publishes_public_keys_only(signing_keys: SigningKeys) -> None:
    jwks = signing_keys.jwks()
    [jwk] = jwks["keys"]
    assert jwk["kid"] == signing_keys.signing_key.kid
    assert jwk["alg"] == "ES256"
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    # An independent verifier, given only the JWKS, accepts our tokens.
    token = _issue(signing_keys)
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="https://api.test")
    assert claims["sub"] == "d1"


def test_newest_key_signs_and_every_key_verifies(keys_dir: Path) -> None:
    keys = SigningKeys.load(keys_dir)
    old_kid = keys.signing_key.kid
    old_token = _issue(keys)
    new_kid = rotate(keys_dir)
    keys.reload()
    assert keys.signing_key.kid == new_kid != old_kid
    assert jwt.get_unverified_header(_issue(keys))["kid"] == new_kid
    # A token signed by the old key still verifies: rotation logs no device out.
    assert _issuer(keys).verify(old_token, skew_s=5).device_id == "d1"
    # So it does on an instance started after the rotation.
    assert _issuer(SigningKeys.load(keys_dir)).verify(old_token, skew_s=5).device_id == "d1"


def test_running_instance_picks_up_a_key_added_elsewhere(keys_dir: Path) -> None:
    """Instance A rotates; instance B, which loaded before, verifies A's tokens at once."""
    b = SigningKeys.load(keys_dir)
    rotate(keys_dir)
    a = SigningKeys.load(keys_dir)
    token = _issue(a)
    assert jwt.get_unverified_header(token)["kid"] not in b.kids
    assert _issuer(b).verify(token, skew_s=5).device_id == "d1"


def test_future_key_verifies_but_does_not_sign_yet(keys_dir: Path) -> None:
    keys = SigningKeys.load(keys_dir)
    current = keys.signing_key.kid
    upcoming = rotate(keys_dir, activate_in_s=3600)
    keys.reload()
    assert set(keys.kids) == {current, upcoming}
    assert keys.signing_key.kid == current
    clock_later = SigningKeys.load(keys_dir, clock=lambda: time.time() + 3601)
    assert clock_later.signing_key.kid == upcoming


def test_operator_named_keys_are_dated_by_mtime(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    for name, age in (("prod-a", 200), ("prod-b", 100)):
        path = directory / f"{name}.pem"
        path.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
        os.utime(path, (time.time() - age, time.time() - age))
    assert SigningKeys.load(directory).signing_key.kid == "prod-b"


def test_removed_key_stops_verifying_after_reload(keys_dir: Path) -> None:
    keys = SigningKeys.load(keys_dir)
    old = keys.signing_key.kid
    token = _issue(keys)
    rotate(keys_dir)
    (keys_dir / f"{old}.pem").unlink()
    keys.reload()
    assert old not in keys.kids
    with pytest.raises(Exception, match="unknown signing key"):
        _issuer(keys).verify(token, skew_s=5)


def test_empty_or_missing_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError):
        SigningKeys.load(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SigningKeyError):
        SigningKeys.load(tmp_path / "empty")


@pytest.mark.parametrize(
    "content",
    [
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    ],
)
def test_bad_key_file_refused_at_load(tmp_path: Path, content: bytes) -> None:
    generate_key_file(tmp_path)
    (tmp_path / "bad.pem").write_bytes(content)
    with pytest.raises(SigningKeyError, match=r"bad\.pem"):
        SigningKeys.load(tmp_path)


def test_bad_file_appearing_later_is_skipped_not_fatal(keys_dir: Path) -> None:
    keys = SigningKeys.load(keys_dir)
    kid = keys.signing_key.kid
    (keys_dir / "half-written.pem").write_bytes(b"garbage")
    keys.reload()
    assert keys.kids == (kid,)
