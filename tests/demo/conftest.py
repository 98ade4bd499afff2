"""The demo as ``make demo`` runs it: the app with its sandbox operator (a private Dovecot), SQLite, memory.

The data directory is made under ``/tmp`` with mode 0755, so the sandbox operator keeps its
Dovecot tree inside it (Dovecot's unprivileged users must reach it; pytest's ``tmp_path`` sits in
a 0700 directory) and everything goes when the test ends.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from core.logging import configure_logging
from core.settings import DatabaseSettings, OperatorSettings, StoreSettings
from phone.client import PhoneClient
from tests.conftest import Backends
from tests.harness import BASE, Harness, running

HELENE = "helene.garnier@pharmacien.mssante.fr"
JULIEN = "julien.lefevre@pharmacien.mssante.fr"
CAMILLE = "camille.rousseau@infirmier.mssante.fr"
PHARMACY = "pharmacie.tilleuls@pharmacie.mssante.fr"
PATIENT = "267037511104295@patient.mssante.fr"


@pytest.fixture(autouse=True)
def _logs_to_this_tests_stderr() -> None:
    """structlog keeps the stderr it was configured with; an earlier test's capture may be closed by
    now. The app configures logging when it is created; tests without an app do it here."""
    configure_logging("INFO")


@pytest.fixture
def demo_data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mssc-demo-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def embedded(tmp_path: Path) -> Backends:
    return Backends(
        "embedded",
        DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}"),
        StoreSettings(url="memory"),
    )


DemoApp = Callable[[], AbstractAsyncContextManager[Harness]]


@pytest.fixture
def demo_app(embedded: Backends, demo_data_dir: Path) -> DemoApp:
    """``async with demo_app() as h``: the running demo app, operator settings at their dev defaults
    (``kind=sandbox``). A context manager in the test's own task, as the app's lifespan needs."""

    def make() -> AbstractAsyncContextManager[Harness]:
        return running(embedded, demo_data_dir, sandbox_operator=True, operator=OperatorSettings())

    return make


def second_browser(h: Harness) -> Harness:
    """Another person at another browser, on the same app."""
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url=BASE, follow_redirects=False)  # type: ignore[arg-type]
    return Harness(h.app, web, h.settings)


async def mailbox_ids(phone: PhoneClient) -> dict[str, str]:
    return {m.address: m.id for m in await phone.mailboxes()}
