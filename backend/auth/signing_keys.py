"""Server signing keys for access tokens: a directory of P-256 PEM files, the newest signs, all verify.

Layout: ``<signing_keys_dir>/<kid>.pem``, one PKCS#8 (or SEC1) unencrypted EC P-256 private key per
file; the kid is the file stem. Keys written here are ``0600`` in a ``0700`` directory, and appear
atomically (written under a dot-name, then renamed), so a scanning instance never reads half a key.

**Which key signs.** Keys made by :func:`rotate` / :func:`ensure_dev_key` are named
``es256-YYYYMMDDTHHMMSSZ-<8 hex>``: the UTC timestamp is the moment the key *starts signing*. Keys
with another name (dropped in by an operator) are dated by their file mtime. The signer is the key
with the latest date that is not in the future; every key in the directory verifies. Dating keys
by name rather than mtime survives copies, backups and secret mounts that reset mtimes.

**Rotation without logging anyone out.** Tokens carry the ``kid``; old keys keep verifying until
the operator deletes them, so a rotation never invalidates a token. With several instances, give
the new key a start time in the future (``rotate(dir, activate_in_s=...)``): every instance picks
it up for verification (directories are rescanned every ``rescan_interval_s``, and at once, at most
every few seconds, when a token names an unknown kid) before any instance signs with it. Delete a
retired key file once ``access_ttl_s + clock_skew_s`` has passed since its successor began signing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.jwk import public_jwk

log = structlog.get_logger(__name__)

_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DATED_KID = re.compile(r"es256-(\d{8}T\d{6}Z)-[0-9a-f]{8}")
_STAMP = "%Y%m%dT%H%M%SZ"
#: Smallest pause between two rescans caused by unknown kids (a flood of forged kids costs nothing).
_MISS_RESCAN_S = 5.0


class SigningKeyError(ValueError):
    """A signing key file is unreadable, not P-256, or the directory holds none."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    #: When the key starts signing (epoch seconds): from the kid, else the file mtime.
    not_before: float

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The published form: public members plus ``kid``, ``alg``, ``use``."""
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": "ES256", "use": "sig"}


class SigningKeys:
    """The current key set. Build it with :meth:`load` (directory) or from keys (tests, tools)."""

    def __init__(
        self,
        keys: Iterable[SigningKey],
        *,
        directory: str | Path | None = None,
        rescan_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = None if directory is None else Path(directory)
        self._rescan_interval_s = rescan_interval_s
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._publics: dict[str, ec.EllipticCurvePublicKey] = {}
        self._mtimes: dict[str, float] = {}
        self._scanned_at = time.monotonic()
        self._missed_at = 0.0
        self._set(list(keys))

    @classmethod
    def load(
        cls, directory: str | Path, *, rescan_interval_s: float = 60.0, clock: Callable[[], float] = time.time
    ) -> SigningKeys:
        """Load every ``*.pem`` of ``directory``; fails when there is none or one is bad."""
        keys = _read_directory(Path(directory))
        return cls(keys, directory=directory, rescan_interval_s=rescan_interval_s, clock=clock)

    # --- signing -----------------------------------------------------------------------------------
    @property
    def signing_key(self) -> SigningKey:
        """The newest key whose start time has passed (the earliest one if none has started yet)."""
        self._maybe_rescan()
        now = self._clock()
        started = [k for k in self._keys.values() if k.not_before <= now]
        if started:
            return max(started, key=lambda k: (k.not_before, k.kid))
        return min(self._keys.values(), key=lambda k: (k.not_before, k.kid))

    # --- verification ------------------------------------------------------------------------------
    def verification_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key for ``kid``; an unknown kid triggers a (throttled) rescan first."""
        key = self._publics.get(kid)
        if key is not None:
            self._maybe_rescan()
            return key
        now = time.monotonic()
        if self._directory is not None and now - self._missed_at >= _MISS_RESCAN_S:
            self._missed_at = now
            self.reload()
            return self._publics.get(kid)
        return None

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """JWK Set of every verification key (RFC 7517 §5), newest first."""
        keys = sorted(self._keys.values(), key=lambda k: (k.not_before, k.kid), reverse=True)
        return {"keys": [k.public_jwk() for k in keys]}

    # --- directory ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """Rescan the directory: new files are loaded, removed files stop verifying.

        A scan that finds no usable key keeps the current set (a half-mounted volume must not log
        every device out); a bad file is skipped with a warning rather than taking the set down.
        """
        self._scanned_at = time.monotonic()
        if self._directory is None:
            return
        try:
            paths = sorted(self._directory.glob("*.pem"))
        except OSError as exc:
            log.warning("signing_keys.rescan_failed", error=type(exc).__name__)
            return
        keys: list[SigningKey] = []
        for path in paths:
            kid = path.stem
            try:
                mtime = path.stat().st_mtime
                known = self._keys.get(kid)
                if known is not None and self._mtimes.get(kid) == mtime:
                    keys.append(known)
                    continue
                keys.append(_read_key(path))
            except (OSError, SigningKeyError) as exc:
                log.warning("signing_keys.key_skipped", kid=kid, error=str(exc))
        if keys:
            self._set(keys)
        else:
            log.warning("signing_keys.rescan_empty", directory=str(self._directory))

    def _maybe_rescan(self) -> None:
        if self._directory is not None and time.monotonic() - self._scanned_at >= self._rescan_interval_s:
            self.reload()

    def _set(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise SigningKeyError("no signing key")
        by_kid = {k.kid: k for k in keys}
        if len(by_kid) != len(keys):
            raise SigningKeyError("duplicate kid")
        self._keys = by_kid
        self._publics = {kid: k.public_key for kid, k in by_kid.items()}
        if self._directory is not None:
            mtimes = {}
            for kid in by_kid:
                try:
                    mtimes[kid] = (self._directory / f"{kid}.pem").stat().st_mtime
                except OSError:
                    continue
            self._mtimes = mtimes


def generate_key_file(directory: str | Path, *, not_before: float | None = None) -> str:
    """Write a new P-256 key as ``<kid>.pem`` (mode 0600) and return its kid.

    The kid embeds ``not_before`` (default: now, rounded down to the second): when it starts signing.
    """
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = dt.datetime.fromtimestamp(int(time.time() if not_before is None else not_before), dt.UTC)
    kid = f"es256-{start.strftime(_STAMP)}-{secrets.token_hex(4)}"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path / f".{kid}.pem.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path / f"{kid}.pem")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return kid


def ensure_dev_key(directory: str | Path) -> str | None:
    """Generate a key when ``directory`` holds none (dev mode; the caller decides). Returns its kid."""
    path = Path(directory)
    if path.is_dir() and any(path.glob("*.pem")):
        return None
    return generate_key_file(path)


def rotate(directory: str | Path, *, activate_in_s: float = 0) -> str:
    """Add a key that starts signing in ``activate_in_s`` seconds; older keys keep verifying."""
    return generate_key_file(directory, not_before=time.time() + activate_in_s)


def _read_directory(directory: Path) -> list[SigningKey]:
    if not directory.is_dir():
        raise SigningKeyError(f"signing key directory {directory} does not exist")
    keys = [_read_key(p) for p in sorted(directory.glob("*.pem"))]
    if not keys:
        raise SigningKeyError(f"no *.pem signing key in {directory}")
    return keys


def _read_key(path: Path) -> SigningKey:
    kid = path.stem
    if _KID.fullmatch(kid) is None:
        raise SigningKeyError(f"{path.name}: kid must match {_KID.pattern}")
    st = path.stat()
    if st.st_mode & 0o077:
        log.warning("signing_keys.loose_permissions", kid=kid, mode=oct(st.st_mode & 0o777))
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path.name}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError(f"{path.name}: not an EC P-256 key")
    return SigningKey(kid=kid, private_key=key, not_before=_not_before(kid, st.st_mtime))


def _not_before(kid: str, mtime: float) -> float:
    match = _DATED_KID.fullmatch(kid)
    if match is None:
        return mtime
    try:
        stamp = dt.datetime.strptime(match.group(1), _STAMP).replace(tzinfo=dt.UTC)
    except ValueError:  # looks dated but is no real date (month 13): fall back to the mtime
        return mtime
    return stamp.timestamp()


__all__ = ["SigningKey", "SigningKeyError", "SigningKeys", "ensure_dev_key", "generate_key_file", "rotate"]
