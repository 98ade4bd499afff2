"""TrustSpace: recipients checked against the liste blanche, loaded from a file or https, kept fresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from trust_samples import OPERATOR_DOMAINS, liste_blanche

from backend.mail.trust import SANDBOX_DOMAINS, TrustSpace
from contracts.errors import ErrorCode
from core.errors import DomainError
from core.settings import Settings, SettingsError, TrustSpaceSettings

SOURCE_URL = "https://espacedeconfiance.test/listeblanchemssante.xml"
PATIENT = "255081416802538@patient.mssante.fr"
PATIENT_BAD_KEY = "255081416802539@patient.mssante.fr"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ListPublisher:
    """A plain ASGI app standing for the ANS host: serves ``document`` with ``status``."""

    def __init__(self, document: bytes) -> None:
        self.document = document
        self.status = 200
        self.hits = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.hits += 1
        await send(
            {"type": "http.response.start", "status": self.status, "headers": [(b"content-type", b"application/xml")]}
        )
        await send({"type": "http.response.body", "body": self.document if self.status == 200 else b"oops"})


@pytest.fixture
def publisher() -> ListPublisher:
    return ListPublisher(liste_blanche(*OPERATOR_DOMAINS))


@pytest.fixture
async def url_space(publisher: ListPublisher, tmp_path: Path) -> AsyncIterator[TrustSpace]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=publisher))
    space = TrustSpace(
        TrustSpaceSettings(source=SOURCE_URL, refresh_s=0),
        sandbox_allowed=False,
        http=http,
        cache_path=tmp_path / "cache" / "liste-blanche.xml",
        retry_s=0,
        min_interval_s=0.05,
    )
    yield space
    await space.aclose()
    await http.aclose()


# -- checking recipients ------------------------------------------------------------------------


def test_sandbox_space_checks_professionals_and_patients() -> None:
    space = TrustSpace.sandbox()
    checks = space.check_recipients(
        [
            "helene.garnier@pharmacien.mssante.fr",
            "Pharmacie.Tilleuls@PHARMACIE.mssante.fr",
            PATIENT,
            "someone@gmail.com",
            PATIENT_BAD_KEY,
            '"Dr" <helene.garnier@pharmacien.mssante.fr>',
            "x@evil.pharmacien.mssante.fr",
        ]
    )
    assert [(c.kind, c.trusted, c.reason) for c in checks] == [
        ("professional", True, None),
        ("professional", True, None),
        ("patient", True, None),
        ("professional", False, "not_in_trust_space"),
        ("patient", False, "invalid_nir"),
        ("professional", False, "invalid_address"),
        ("professional", False, "not_in_trust_space"),
    ]
    assert checks[1].address == "Pharmacie.Tilleuls@pharmacie.mssante.fr"
    assert space.status.origin == "sandbox"
    assert space.status.domains == len(SANDBOX_DOMAINS)


def test_patient_domain_is_configurable() -> None:
    space = TrustSpace.sandbox(patient_domain="patient.mes.test")
    assert space.is_patient("255081416802538@patient.mes.test")
    assert not space.is_patient(PATIENT)
    [check] = space.check_recipients(["255081416802538@patient.mes.test"])
    assert (check.kind, check.trusted) == ("patient", True)
    [other] = space.check_recipients([PATIENT])
    assert (other.kind, other.trusted) == ("professional", False)


def test_require_trusted_says_how_many_and_where_never_who() -> None:
    space = TrustSpace.sandbox()
    addresses = ["helene.garnier@pharmacien.mssante.fr", "someone@gmail.com", PATIENT_BAD_KEY]
    with pytest.raises(DomainError) as raised:
        space.require_trusted(addresses)
    error = raised.value
    assert error.code is ErrorCode.RECIPIENT_NOT_TRUSTED
    assert error.status == 422
    detail = error.detail or ""
    assert "2 of 3" in detail
    assert "positions 2, 3" in detail
    for address in addresses:
        assert address not in detail
        assert address.split("@")[0] not in detail
    assert "gmail" not in detail
    assert error.extra["indexes"] == [1, 2]
    assert error.extra["reasons"] == ["not_in_trust_space", "invalid_nir"]


def test_require_trusted_passes_when_all_are_trusted() -> None:
    space = TrustSpace.sandbox()
    checks = space.require_trusted(["antoine.dubois@medecin.mssante.fr", PATIENT])
    assert all(c.trusted for c in checks)
    assert space.require_trusted([]) == []


# -- configuration ------------------------------------------------------------------------------


def test_sandbox_list_is_refused_outside_dev() -> None:
    with pytest.raises(SettingsError):
        TrustSpace(TrustSpaceSettings(source=""), sandbox_allowed=False)


def test_plain_http_source_is_refused() -> None:
    with pytest.raises(SettingsError):
        TrustSpace(TrustSpaceSettings(source="http://espacedeconfiance.test/l.xml"), sandbox_allowed=True)


def test_production_settings_require_a_source() -> None:
    with pytest.raises(SettingsError, match="MSSC_TRUST_SPACE_SOURCE"):
        Settings.from_env({"MSSC_APP_MODE": "production"})


# -- loading from a file ------------------------------------------------------------------------


async def test_file_source_loads_and_keeps_the_last_good_list(tmp_path: Path) -> None:
    path = tmp_path / "liste-blanche.xml"
    path.write_bytes(liste_blanche("medecin.mssante.fr"))
    space = TrustSpace(TrustSpaceSettings(source=str(path)), sandbox_allowed=False)
    assert not space.ready
    with pytest.raises(DomainError) as raised:
        space.check_recipients(["a@medecin.mssante.fr"])
    assert raised.value.code is ErrorCode.TRUST_SPACE_UNAVAILABLE
    assert raised.value.headers["Retry-After"]
    # Patients do not depend on the list, but a batch with a professional still needs it.
    assert await space.refresh()
    assert space.status.origin == "file"
    assert space.is_trusted_domain("medecin.mssante.fr")

    path.write_bytes(liste_blanche())  # zero domains: refused, not applied
    assert not await space.refresh()
    assert space.is_trusted_domain("medecin.mssante.fr")
    path.unlink()
    assert not await space.refresh()
    assert space.is_trusted_domain("medecin.mssante.fr")
    assert space.status.consecutive_failures == 2

    path.write_bytes(liste_blanche("infirmier.mssante.fr"))
    assert await space.refresh()
    assert not space.is_trusted_domain("medecin.mssante.fr")
    assert space.is_trusted_domain("infirmier.mssante.fr")
    assert space.status.consecutive_failures == 0


# -- loading over https -------------------------------------------------------------------------


async def test_url_source_refreshes_in_the_background(url_space: TrustSpace, publisher: ListPublisher) -> None:
    await url_space.start()
    assert url_space.status.origin == "url"
    assert url_space.is_trusted_domain("interop-mssante.apicrypt.org")

    publisher.status = 503
    hits = publisher.hits
    await _wait_for(lambda: publisher.hits >= hits + 2)
    assert url_space.status.consecutive_failures >= 1
    assert url_space.is_trusted_domain("interop-mssante.apicrypt.org")  # last good list kept

    publisher.status = 200
    publisher.document = liste_blanche("medecin.mssante.fr", "nouveau-operateur.fr")
    await _wait_for(lambda: url_space.is_trusted_domain("nouveau-operateur.fr"))
    assert url_space.status.consecutive_failures == 0
    assert not url_space.is_trusted_domain("interop-mssante.apicrypt.org")


async def test_a_broken_download_never_locks_everybody_out(url_space: TrustSpace, publisher: ListPublisher) -> None:
    assert await url_space.refresh()
    for broken in (liste_blanche(), b"<html>maintenance</html>", b"\x00\x01garbage"):
        publisher.document = broken
        assert not await url_space.refresh()
        assert url_space.check_recipients(["x@pharmacien.mssante.fr"])[0].trusted


async def test_the_cache_serves_a_restart_while_the_source_is_down(
    url_space: TrustSpace, publisher: ListPublisher, tmp_path: Path
) -> None:
    assert await url_space.refresh()
    cache = tmp_path / "cache" / "liste-blanche.xml"
    assert cache.read_bytes() == publisher.document

    publisher.status = 500
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=publisher))
    restarted = TrustSpace(TrustSpaceSettings(source=SOURCE_URL), sandbox_allowed=False, http=http, cache_path=cache)
    try:
        await restarted.start()
        assert restarted.status.origin == "cache"
        assert restarted.is_trusted_domain("pharmacien.mssante.fr")
    finally:
        await restarted.aclose()
        await http.aclose()


async def test_start_survives_an_unreachable_source() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    space = TrustSpace(TrustSpaceSettings(source=SOURCE_URL), sandbox_allowed=False, http=http)
    try:
        await space.start()
        assert not space.ready
        assert space.check_recipients([PATIENT])[0].trusted  # patients do not need the list
        with pytest.raises(DomainError):
            space.require_trusted(["x@medecin.mssante.fr"])
    finally:
        await space.aclose()
        await http.aclose()


async def test_logs_carry_counts_never_addresses(url_space: TrustSpace, publisher: ListPublisher) -> None:
    with capture_logs() as logs:
        await url_space.refresh()
        publisher.status = 503
        await url_space.refresh()
        url_space.check_recipients(["helene.garnier@pharmacien.mssante.fr", PATIENT])
    events = {entry["event"] for entry in logs}
    assert {"trust_space.loaded", "trust_space.refresh_failed"} <= events
    loaded = next(e for e in logs if e["event"] == "trust_space.loaded")
    assert loaded["domains"] == len(OPERATOR_DOMAINS)
    text = repr(logs)
    assert "helene" not in text
    assert "255081416802538" not in text
    assert "mssante.fr" not in text


async def _wait_for(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state the refresh task changes
            await asyncio.sleep(0.01)
