"""PSC tests: a real Litestar app serving the sandbox router, and a ``PscClient`` talking to it.

No code of ours is mocked: the client speaks HTTP through Litestar's ``AsyncTestClient`` (an
``httpx.AsyncClient`` whose transport is the ASGI app), and the login page is "clicked" by
reading its form and posting what a browser would. Hostile peers live in ``test_hostile_idp.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psc_helpers import CLIENT_ID, CLIENT_SECRET, ISSUER, ORIGIN, REDIRECT_URI, Clock, psc_settings

from enrolment.psc import PscClient
from enrolment.psc_sandbox import create_psc_sandbox_router


@pytest.fixture
def sandbox_clock() -> Clock:
    return Clock()


@pytest.fixture
def client_clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox_app(sandbox_clock: Clock) -> Litestar:
    router = create_psc_sandbox_router(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=(REDIRECT_URI,),
        clock=sandbox_clock,
    )
    return Litestar(route_handlers=[router])


@pytest.fixture
async def http(sandbox_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=sandbox_app, base_url=ORIGIN) as client:
        yield client


@pytest.fixture
async def psc(http: httpx.AsyncClient, client_clock: Clock) -> AsyncIterator[PscClient]:
    async with PscClient(psc_settings(), redirect_uri=REDIRECT_URI, http=http, clock=client_clock) as client:
        yield client
