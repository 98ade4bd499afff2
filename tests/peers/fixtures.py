"""Pytest fixtures over the shared peers: one Dovecot operator and one submission relay per run.

Wire them with ``pytest_plugins = ["tests.peers.fixtures"]`` in the root ``conftest.py`` (or import
the fixture names into a directory's ``conftest.py``). Each test gets fresh mailboxes from
``mailbox_factory`` (unique ``u<hex>@pharmacie.mssante.fr``-style addresses), so tests never see
each other's mail and the operator never needs a restart.

* ``dovecot`` (session): a running :class:`DovecotInstance` (IMAP, IMAPS, LMTP, master user,
  bearer keys, client certificates).
* ``submission_relay`` (session): a :class:`SubmissionRelay` (SMTP on a free port) delivering to it.
* ``mailbox_factory`` (function): ``mailbox_factory(domain=…) -> MailUser``.
* ``operator_settings`` (function): :class:`OperatorSettings` pointing at both peers, plain TCP,
  master login (``dovecot`` style) — ``dataclasses.replace`` it for other modes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core.settings import OperatorSettings
from tests.peers.dovecot import DEFAULT_DOMAIN, DovecotInstance, MailUser
from tests.peers.submission_relay import SubmissionRelay

MailboxFactory = Callable[..., MailUser]

__all__ = ["MailboxFactory", "dovecot", "mailbox_factory", "operator_settings", "submission_relay"]


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotInstance]:
    instance = DovecotInstance()
    instance.start()
    try:
        yield instance
    finally:
        instance.cleanup()


@pytest.fixture(scope="session")
def submission_relay(dovecot: DovecotInstance) -> Iterator[SubmissionRelay]:
    relay = SubmissionRelay(dovecot)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def mailbox_factory(dovecot: DovecotInstance) -> MailboxFactory:
    def make(address: str | None = None, *, domain: str = DEFAULT_DOMAIN) -> MailUser:
        return dovecot.add_user(address, domain=domain)

    return make


@pytest.fixture
def operator_settings(dovecot: DovecotInstance, submission_relay: SubmissionRelay) -> OperatorSettings:
    return OperatorSettings(
        kind="remote",
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        smtp_host=submission_relay.host,
        smtp_port=submission_relay.port,
        tls="plain",
        ca_file=str(dovecot.ca_file),
        auth="master",
        master_user=dovecot.master_user,
        master_password=dovecot.master_password,
        master_style="dovecot",
        connect_timeout_s=3.0,
        command_timeout_s=10.0,
    )
