"""Directory fixtures: the sandbox directory, and the FHIR client talking to a local FHIR peer.

The peer is a real HTTP application (``fhir_peer.FhirPeer``) reached through
``httpx.ASGITransport``; nothing of ours is mocked. ``directory`` runs a test over both backends,
with the same records, so they must behave the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from directory_helpers import fhir_settings
from fhir_peer import FhirPeer

from backend.mail.directory import Directory, FhirDirectory, SandboxDirectory
from backend.mail.directory.sandbox_data import SANDBOX_RECORDS


@pytest.fixture
def peer() -> FhirPeer:
    return FhirPeer(SANDBOX_RECORDS)


@pytest.fixture
async def peer_http(peer: FhirPeer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=peer.app)  # type: ignore[arg-type]  # Litestar types ASGI precisely
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
async def fhir_directory(peer_http: httpx.AsyncClient) -> AsyncIterator[FhirDirectory]:
    directory = FhirDirectory(fhir_settings(), http=peer_http, token_secret="test-secret")
    yield directory
    await directory.aclose()


@pytest.fixture
def sandbox_directory() -> SandboxDirectory:
    return SandboxDirectory(token_secret="test-secret")


@pytest.fixture(params=["sandbox", "fhir"])
def directory(
    request: pytest.FixtureRequest, sandbox_directory: SandboxDirectory, fhir_directory: FhirDirectory
) -> Directory:
    return sandbox_directory if request.param == "sandbox" else fhir_directory
