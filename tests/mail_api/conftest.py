"""Mail API tests: the app against the real Dovecot operator, with mailboxes fresh for each test.

The sandbox's mailbox addresses are rewritten per test to unique ones in the same MSSanté domains
(so the trust space still accepts them), and those mailboxes are created in Dovecot: tests never
see each other's mail, and the operator is started once for the whole run.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import Mailbox
from core.settings import OperatorSettings
from phone.client import PhoneClient
from tests.conftest import Backends
from tests.harness import Harness, running
from tests.mail_mime.corpus import corpus_message
from tests.peers.dovecot import DovecotInstance

SANDBOX_ADDRESSES = {
    "titulaire": "helene.garnier@pharmacien.mssante.fr",
    "adjoint": "julien.lefevre@pharmacien.mssante.fr",
    "nurse": "camille.rousseau@infirmier.mssante.fr",
    "pharmacy": "pharmacie.tilleuls@pharmacie.mssante.fr",
    "doctor": "antoine.dubois@medecin.mssante.fr",
}


@dataclass
class MailWorld:
    h: Harness
    dovecot: DovecotInstance
    #: role → this test's unique address
    address: dict[str, str]

    def deliver(self, role: str, raw: bytes) -> None:
        self.dovecot.deliver(self.address[role], raw)

    def deliver_corpus(self, role: str, name: str) -> None:
        self.deliver(role, corpus_message(name))

    async def mailbox_id(self, phone: PhoneClient, role: str) -> str:
        me = await phone.me()
        return next(m["id"] for m in me["mailboxes"] if m["address"] == self.address[role])


async def _fresh_addresses(h: Harness, dovecot: DovecotInstance) -> dict[str, str]:
    suffix = secrets.token_hex(4)
    mapping: dict[str, str] = {}
    async with h.container.db.transaction() as session:
        for role, address in SANDBOX_ADDRESSES.items():
            local, domain = address.split("@")
            unique = f"{local}.{suffix}@{domain}"
            mailbox = await session.scalar(select(Mailbox).where(Mailbox.address == address))
            assert mailbox is not None
            mailbox.address = unique
            dovecot.add_user(unique)
            mapping[role] = unique
    return mapping


@pytest.fixture
def mail_world(
    backends: Backends,
    tmp_path: Path,
    dovecot: DovecotInstance,
    operator_settings: OperatorSettings,
) -> Callable[..., AsyncIterator[MailWorld]]:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(**groups: object) -> AsyncIterator[MailWorld]:
        async with running(backends, tmp_path, operator=groups.pop("operator", operator_settings), **groups) as h:
            yield MailWorld(h, dovecot, await _fresh_addresses(h, dovecot))

    return make  # type: ignore[return-value]
