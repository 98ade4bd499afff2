"""The Annuaire Santé client against the FHIR peer: API key, paging links, failures, logs."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from directory_helpers import BASE_URL, fhir_settings
from fhir_peer import FhirPeer
from structlog.testing import capture_logs

from backend.mail.directory import API_KEY_HEADER, FhirDirectory, SandboxDirectory, create_directory
from backend.mail.directory.sandbox_data import SANDBOX_RECORDS
from contracts.errors import ErrorCode
from core.errors import DomainError
from core.settings import AppSettings, DirectorySettings, Settings, SettingsError


async def test_every_request_carries_the_api_key_and_stays_on_the_base_url(
    fhir_directory: FhirDirectory, peer: FhirPeer
) -> None:
    token: str | None = None
    pages = 0
    while True:
        page = await fhir_directory.search(name="ma", limit=2, page_token=token)
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert pages >= 3
    assert peer.requests
    for request in peer.requests:
        assert request.headers.get(API_KEY_HEADER.lower()) == peer.api_key
        assert request.headers.get("accept") == "application/fhir+json"
        assert str(request.url).startswith(BASE_URL)  # next links name gateway.peer.test: rebased
        assert int(request.query_params.get("_count", "50")) <= 50
    assert any(r.query_params.get("_getpages") for r in peer.requests)


async def test_count_is_at_most_fifty(fhir_directory: FhirDirectory, peer: FhirPeer) -> None:
    await fhir_directory.search(name="e", limit=500)
    assert {
        r.query_params.get("_count") for r in peer.requests if r.url.path.endswith(("Practitioner", "ganization"))
    } <= {
        "25",
        "50",
    }


async def test_a_refused_api_key_is_unavailable_and_the_key_is_never_logged(
    fhir_directory: FhirDirectory, peer: FhirPeer
) -> None:
    peer.api_key = "another-key"
    with capture_logs() as logs, pytest.raises(DomainError) as raised:
        await fhir_directory.search(name="garnier")
    assert raised.value.code is ErrorCode.DIRECTORY_UNAVAILABLE
    assert raised.value.status == 503
    assert any(entry["event"] == "directory.api_key_refused" for entry in logs)
    assert "test-esante-api-key" not in repr(logs)


@pytest.mark.parametrize(("status", "retry_after", "expected"), [(503, "7", 7), (429, "120", 120), (502, None, 30)])
async def test_server_failures_are_unavailable_with_retry_after(
    fhir_directory: FhirDirectory, peer: FhirPeer, status: int, retry_after: str | None, expected: int
) -> None:
    peer.fail_status = status
    peer.retry_after = retry_after
    with pytest.raises(DomainError) as raised:
        await fhir_directory.search(name="garnier", kind="person")
    assert raised.value.code is ErrorCode.DIRECTORY_UNAVAILABLE
    assert raised.value.retry_after == expected
    assert raised.value.headers["Retry-After"] == str(expected)
    assert "garnier" not in str(raised.value.detail).lower()


async def test_an_answer_that_is_not_fhir_is_unavailable(fhir_directory: FhirDirectory, peer: FhirPeer) -> None:
    peer.garbage = True
    with pytest.raises(DomainError) as raised:
        await fhir_directory.search(name="garnier")
    assert raised.value.code is ErrorCode.DIRECTORY_UNAVAILABLE


async def test_a_forgotten_search_asks_to_search_again(fhir_directory: FhirDirectory, peer: FhirPeer) -> None:
    page = await fhir_directory.search(profession="pharmacien", limit=1)
    assert page.next_page_token
    peer.forget_searches()
    with pytest.raises(DomainError) as raised:
        await fhir_directory.search(profession="pharmacien", limit=1, page_token=page.next_page_token)
    assert raised.value.code is ErrorCode.INVALID_PAGE_TOKEN


async def test_a_token_from_another_instance_secret_is_refused(peer_http: httpx.AsyncClient) -> None:
    first = FhirDirectory(fhir_settings(), http=peer_http, token_secret="secret-one")
    same = FhirDirectory(fhir_settings(), http=peer_http, token_secret="secret-one")
    other = FhirDirectory(fhir_settings(), http=peer_http, token_secret="secret-two")
    page = await first.search(profession="pharmacien", limit=1)
    assert page.next_page_token
    assert (await same.search(profession="pharmacien", limit=1, page_token=page.next_page_token)).entries
    with pytest.raises(DomainError) as raised:
        await other.search(profession="pharmacien", limit=1, page_token=page.next_page_token)
    assert raised.value.code is ErrorCode.INVALID_PAGE_TOKEN


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_search_terms_never_reach_the_logs(fhir_directory: FhirDirectory) -> None:
    httpx_logger = logging.getLogger("httpx")
    collect = _Collect()
    saved = (httpx_logger.level, httpx_logger.disabled)
    httpx_logger.setLevel(logging.DEBUG)
    httpx_logger.disabled = False
    httpx_logger.addHandler(collect)
    try:
        with capture_logs() as logs:
            page = await fhir_directory.search(name="Lefèvre", city="Paris", limit=1)
            await fhir_directory.search(name="helene garnier", postal_code="75011")
            await fhir_directory.search(name="tilleuls", address="rue des tilleuls", kind="structure")
    finally:
        httpx_logger.removeHandler(collect)
        httpx_logger.setLevel(saved[0])
        httpx_logger.disabled = saved[1]
    assert page.entries
    structured = repr(logs).lower()
    standard = "\n".join(collect.lines).lower()
    assert "http request" in standard  # httpx did log its requests…
    for term in ("lefevre", "lef%c3%a8vre", "helene", "garnier", "tilleuls", "75011", "paris"):
        assert term not in structured, term
        assert term not in standard, term  # …without their query strings


@pytest.mark.parametrize(
    ("base_url", "api_key"),
    [
        ("http://annuaire.example/fhir/v2", "key"),
        ("ftp://annuaire.example/fhir/v2", "key"),
        ("", "key"),
        ("https://annuaire.example/fhir/v2", ""),
    ],
)
def test_settings_are_checked(base_url: str, api_key: str) -> None:
    with pytest.raises(SettingsError):
        FhirDirectory(DirectorySettings(kind="fhir", base_url=base_url, api_key=api_key))


def test_create_directory_from_settings() -> None:
    dev = Settings(directory=DirectorySettings(kind="sandbox"))
    assert isinstance(create_directory(dev), SandboxDirectory)
    fhir = Settings(directory=fhir_settings())
    assert isinstance(create_directory(fhir), FhirDirectory)
    production = Settings(app=AppSettings(mode="production"), directory=DirectorySettings(kind="sandbox"))
    with pytest.raises(SettingsError):
        create_directory(production)


# -- over real HTTP on loopback (uvicorn): the streaming path and real timeouts -------------------


@pytest.fixture
async def served_peer() -> AsyncIterator[tuple[FhirPeer, str]]:
    peer = FhirPeer(SANDBOX_RECORDS)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(peer.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(5):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
    try:
        yield peer, f"http://127.0.0.1:{port}/fhir/v2"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_over_loopback_http(served_peer: tuple[FhirPeer, str]) -> None:
    _, base_url = served_peer
    directory = FhirDirectory(fhir_settings(base_url=base_url))
    try:
        everything = []
        token: str | None = None
        while True:
            page = await directory.search(profession="pharmacien", limit=2, page_token=token)
            everything += page.entries
            token = page.next_page_token
            if token is None:
                break
        assert {m.address for e in everything for m in e.mailboxes} >= {
            "helene.garnier@pharmacien.mssante.fr",
            "julien.lefevre@pharmacien.mssante.fr",
        }
    finally:
        await directory.aclose()


async def test_a_slow_directory_times_out_as_unavailable(served_peer: tuple[FhirPeer, str]) -> None:
    peer, base_url = served_peer
    peer.delay_s = 1.0
    directory = FhirDirectory(fhir_settings(base_url=base_url, timeout_s=0.2))
    try:
        with capture_logs() as logs, pytest.raises(DomainError) as raised:
            await directory.search(name="garnier")
        assert raised.value.code is ErrorCode.DIRECTORY_UNAVAILABLE
        assert raised.value.retry_after
        assert any(entry["event"] == "directory.timeout" for entry in logs)
    finally:
        await directory.aclose()


async def test_an_unreachable_directory_is_unavailable() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    directory = FhirDirectory(fhir_settings(base_url=f"http://127.0.0.1:{port}/fhir/v2", timeout_s=1))
    try:
        with pytest.raises(DomainError) as raised:
            await directory.search(name="garnier")
        assert raised.value.code is ErrorCode.DIRECTORY_UNAVAILABLE
    finally:
        await directory.aclose()
