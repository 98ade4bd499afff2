"""Fixtures for the operator connector tests: messages, gateway auth, bearer keys, pools.

The peers (``dovecot``, ``submission_relay``, ``mailbox_factory``, ``operator_settings``) come from
``tests/peers/fixtures.py``, registered by the root ``conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from backend.auth.signing_keys import SigningKeys, generate_key_file
from backend.mail.operator import BearerTokenIssuer, MasterUserAuth, OperatorPool
from core.settings import OperatorSettings
from tests.peers.dovecot import DEFAULT_ISSUER, DovecotInstance

IDNAT = "810001234565"  # Hélène Garnier, pharmacienne titulaire (the sandbox people)
DEVICE = "dev-3f9a"


def make_message(
    *,
    sender: str = "dr.antoine.dubois@medecin.mssante.fr",
    to: str = "pharmacie.tilleuls@pharmacie.mssante.fr",
    subject: str = "Ordonnance renouvelée",
    body: str = "Bonjour,\nVoici le renouvellement.\n",
    attachment: bytes | None = None,
    filename: str = "ordonnance.pdf",
    message_id: str | None = None,
) -> bytes:
    """An MSSanté-like message (``X-MSS-NIL`` and friends), CRLF line ends."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 17 Nov 2025 09:30:00 +0100"
    msg["Message-ID"] = message_id or f"<{abs(hash((subject, body))) % 10**12}@medecin.mssante.fr>"
    msg["X-MSS-NIL"] = "MSS-COMPANION-TEST"
    msg["Disposition-Notification-To"] = sender
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@pytest.fixture
def master_auth(dovecot: DovecotInstance) -> MasterUserAuth:
    return MasterUserAuth(user=dovecot.master_user, password=dovecot.master_password, style="dovecot")


@pytest.fixture
def bearer_issuer(dovecot: DovecotInstance, tmp_path: Path) -> BearerTokenIssuer:
    """The companion's bearer key, trusted by Dovecot (a new kid per test: Dovecot caches by kid)."""
    keys_dir = tmp_path / "operator-bearer-keys"
    kid = generate_key_file(keys_dir)
    issuer = BearerTokenIssuer(keys=SigningKeys.load(keys_dir), issuer=DEFAULT_ISSUER, ttl_s=120)
    dovecot.install_bearer_key(kid, issuer.public_pem())
    return issuer


PoolFactory = Callable[..., OperatorPool]


@pytest.fixture
async def pool_factory(operator_settings: OperatorSettings, master_auth: MasterUserAuth) -> AsyncIterator[PoolFactory]:
    """Pools over the shared Dovecot, closed after the test."""
    pools: list[OperatorPool] = []

    def make(settings: OperatorSettings | None = None, **kwargs: object) -> OperatorPool:
        kwargs.setdefault("auth", master_auth)
        pool = OperatorPool(settings or operator_settings, **kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()
