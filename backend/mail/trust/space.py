"""The trust space: who may be written to. Operator domains of the liste blanche, and patients.

Ordinary e-mail is refused (M: DOMAIN.md "Operator interface"): a recipient is allowed only if its
domain is in the liste blanche, or it is a patient address with a valid NIR. The list comes from
``TrustSpaceSettings.source`` (a file path or an ``https://`` URL), is refreshed every
``refresh_s`` in the background, and the last good list is kept when a refresh fails (a failure is
retried sooner, after ``retry_s``). With ``cache_path`` the last good document is also kept on disk,
so a restart while the ANS host is down still has a list. With no source, the built-in sandbox
list is used, in dev only.

Until a first list is loaded, checking a professional recipient raises
``trust_space_unavailable`` (503): we never guess. Logs carry counts and outcomes, never an
address or a domain being checked.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from backend.mail.trust.addresses import AddressError, ParsedAddress, parse_address
from backend.mail.trust.liste_blanche import MAX_DOCUMENT_BYTES, DomainList, TrustListError, parse_liste_blanche
from backend.mail.trust.nir import is_valid_nir
from backend.mail.trust.sandbox import sandbox_domain_list
from contracts.errors import ErrorCode
from core.errors import DomainError
from core.logging import get_logger
from core.settings import SettingsError, TrustSpaceSettings
from core.tasks import cancel_and_wait, stop_if_cancelled

log = get_logger("mssc.trust")

RecipientKind = Literal["professional", "patient"]
RefusalReason = Literal["invalid_address", "not_in_trust_space", "invalid_nir"]
ListOrigin = Literal["sandbox", "file", "url", "cache"]

#: Seconds a caller is asked to wait when no list is loaded yet.
_UNAVAILABLE_RETRY_S = 60


@dataclass(frozen=True, slots=True)
class RecipientCheck:
    """The verdict on one recipient, in the order given."""

    #: Normalised (domain in lower-case A-labels) when it parsed, else the text as given.
    address: str
    kind: RecipientKind
    trusted: bool
    #: ``None`` when trusted.
    reason: RefusalReason | None = None


@dataclass(frozen=True, slots=True)
class TrustSpaceStatus:
    """For health checks and metrics: counts and ages, nothing else."""

    origin: ListOrigin | None
    domains: int
    #: Monotonic seconds since the list in use was loaded; ``None`` before the first load.
    age_s: float | None
    consecutive_failures: int


class TrustSpace:
    """Checks recipients against the liste blanche; refreshes it in the background."""

    def __init__(
        self,
        settings: TrustSpaceSettings,
        *,
        sandbox_allowed: bool,
        http: httpx.AsyncClient | None = None,
        verify: ssl.SSLContext | str | bool = True,
        cache_path: Path | None = None,
        timeout_s: float = 30.0,
        retry_s: float = 300.0,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``verify`` is the CA for an https source: the ANS has served the list under its own PKI
        (IGC-Santé) in the past, so it may have to be that chain rather than the public roots (M).
        """
        source = settings.source.strip()
        if source.startswith("http://"):
            raise SettingsError("MSSC_TRUST_SPACE_SOURCE must be an https:// URL or a file path")
        if not source and not sandbox_allowed:
            raise SettingsError("MSSC_TRUST_SPACE_SOURCE is required (the sandbox list is dev only)")
        self.settings = settings
        self.patient_domain = settings.patient_domain.strip().lower()
        self._source = source
        self._is_url = source.startswith("https://")
        self._http = http
        self._owns_http = http is None
        self._verify = verify
        self._cache_path = cache_path
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._domains: DomainList | None = None
        self._origin: ListOrigin | None = None
        self._loaded_at: float | None = None
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        if not source:
            self._install(sandbox_domain_list(), "sandbox")

    @classmethod
    def sandbox(cls, *, patient_domain: str = "patient.mssante.fr") -> TrustSpace:
        """The dev/demo/test trust space: built-in list, nothing to fetch."""
        return cls(TrustSpaceSettings(source="", patient_domain=patient_domain), sandbox_allowed=True)

    # -- loading -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._domains is not None

    @property
    def status(self) -> TrustSpaceStatus:
        age = None if self._loaded_at is None else self._clock() - self._loaded_at
        domains = 0 if self._domains is None else len(self._domains)
        return TrustSpaceStatus(self._origin, domains, age, self._failures)

    def _install(self, domains: DomainList, origin: ListOrigin) -> None:
        self._domains = domains
        self._origin = origin
        self._loaded_at = self._clock()
        log.info(
            "trust_space.loaded",
            origin=origin,
            domains=len(domains.exact),
            wildcards=len(domains.wildcard_parents),
            skipped=domains.skipped,
        )

    async def refresh(self) -> bool:
        """Load the source once. ``False`` (and the previous list kept) on any failure."""
        if not self._source:
            return True
        try:
            document = await (self._fetch() if self._is_url else self._read_file(Path(self._source)))
            domains = parse_liste_blanche(document)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good list
            self._failures += 1
            log.warning(
                "trust_space.refresh_failed",
                error=type(exc).__name__,
                failures=self._failures,
                keeping=0 if self._domains is None else len(self._domains),
            )
            return False
        self._failures = 0
        self._install(domains, "url" if self._is_url else "file")
        if self._is_url and self._cache_path is not None:
            await asyncio.to_thread(_write_atomically, self._cache_path, document)
        return True

    async def _fetch(self) -> bytes:
        http = self._http
        if http is None:
            http = self._http = httpx.AsyncClient(verify=self._verify, follow_redirects=True)
        async with http.stream("GET", self._source, timeout=self._timeout_s) as response:
            if response.url.scheme != "https":
                raise TrustListError("the liste blanche was redirected away from https")
            response.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise TrustListError("the liste blanche is too large")
                chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    async def _read_file(path: Path) -> bytes:
        def read() -> bytes:
            if path.stat().st_size > MAX_DOCUMENT_BYTES:
                raise TrustListError("the liste blanche is too large")
            return path.read_bytes()

        return await asyncio.to_thread(read)

    async def _load_cache(self) -> None:
        path = self._cache_path
        if path is None or self._domains is not None:
            return
        try:
            if not await asyncio.to_thread(path.exists):
                return
            self._install(parse_liste_blanche(await self._read_file(path)), "cache")
        except (OSError, TrustListError) as exc:
            log.warning("trust_space.cache_unusable", error=type(exc).__name__)

    async def start(self) -> None:
        """Load (cache, then source) and start the background refresh. Never raises on a bad source."""
        if not self._source or self._task is not None:
            return
        await self._load_cache()
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="trust-space-refresh")

    async def _run(self) -> None:
        while True:
            stop_if_cancelled()
            delay = self.settings.refresh_s if self._failures == 0 else min(self._retry_s, self.settings.refresh_s)
            await asyncio.sleep(max(delay, self._min_interval_s))
            await self.refresh()

    async def aclose(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- checking ----------------------------------------------------------------------------

    def is_patient(self, address: str) -> bool:
        """On the patient domain (whatever its NIR): the patient rules apply, the address is sensitive."""
        try:
            return parse_address(address).domain == self.patient_domain
        except AddressError:
            return False

    def is_trusted_domain(self, domain: str) -> bool:
        """``domain`` is an operator domain of the trust space (exact, or under an explicit wildcard)."""
        return self._require_list().contains(domain)

    def _require_list(self) -> DomainList:
        if self._domains is None:
            raise DomainError(
                ErrorCode.TRUST_SPACE_UNAVAILABLE,
                "the MSSanté trust space list is not loaded yet",
                retry_after=_UNAVAILABLE_RETRY_S,
                headers={"Retry-After": str(_UNAVAILABLE_RETRY_S)},
            )
        return self._domains

    def _check_one(self, text: str) -> RecipientCheck:
        try:
            parsed: ParsedAddress = parse_address(text)
        except AddressError:
            kind: RecipientKind = "patient" if self.patient_domain in text.lower() else "professional"
            return RecipientCheck(text, kind, trusted=False, reason="invalid_address")
        if parsed.domain == self.patient_domain:
            if is_valid_nir(parsed.local):
                return RecipientCheck(parsed.address, "patient", trusted=True)
            return RecipientCheck(parsed.address, "patient", trusted=False, reason="invalid_nir")
        if self._require_list().contains(parsed.domain):
            return RecipientCheck(parsed.address, "professional", trusted=True)
        return RecipientCheck(parsed.address, "professional", trusted=False, reason="not_in_trust_space")

    def check_recipients(self, addresses: Iterable[str]) -> list[RecipientCheck]:
        """One verdict per address, in order. Raises ``trust_space_unavailable`` if no list is loaded."""
        return [self._check_one(address) for address in addresses]

    def require_trusted(self, addresses: Iterable[str]) -> list[RecipientCheck]:
        """The checks, or ``recipient_not_trusted`` (422) naming how many and their positions only."""
        checks = self.check_recipients(addresses)
        refused = [i for i, check in enumerate(checks) if not check.trusted]
        if refused:
            raise DomainError(
                ErrorCode.RECIPIENT_NOT_TRUSTED,
                _refusal_detail(checks, refused),
                indexes=refused,
                reasons=[checks[i].reason for i in refused],
            )
        return checks


def _refusal_detail(checks: list[RecipientCheck], refused: list[int]) -> str:
    positions = ", ".join(str(i + 1) for i in refused)
    counts: dict[str, int] = {}
    for i in refused:
        reason = checks[i].reason or "not_in_trust_space"
        counts[reason] = counts.get(reason, 0) + 1
    labels = {
        "invalid_address": "malformed address",
        "not_in_trust_space": "outside the MSSanté trust space",
        "invalid_nir": "patient address with an invalid NIR",
    }
    why = "; ".join(f"{n} {labels[reason]}" for reason, n in counts.items())
    return (
        f"{len(refused)} of {len(checks)} recipients may not be written to "
        f"({'positions' if len(refused) > 1 else 'position'} {positions}, counting from 1): {why}"
    )


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as exc:
        log.warning("trust_space.cache_write_failed", error=type(exc).__name__)
