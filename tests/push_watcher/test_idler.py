"""The IDLE addition to the operator connector (``backend.mail.operator.idle``), against Dovecot."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator

import pytest

from backend.mail.operator import ImapSession, OperatorUnavailableError
from backend.mail.operator.idle import IdleOutcome
from push.watcher.watch import SessionOpener
from tests.peers.dovecot import DovecotInstance, MailUser
from tests.peers.fixtures import MailboxFactory
from tests.push_watcher.conftest import deliver


@pytest.fixture
async def inbox(
    gateway_opener: SessionOpener, mailbox_factory: MailboxFactory
) -> AsyncIterator[tuple[ImapSession, MailUser]]:
    user = mailbox_factory()
    session = await gateway_opener(user.address)
    await session.select("INBOX", readonly=True)
    try:
        yield session, user
    finally:
        await session.logout()


async def test_idle_returns_on_new_mail_on_refresh_and_on_stop(
    inbox: tuple[ImapSession, MailUser], dovecot: DovecotInstance
) -> None:
    session, user = inbox
    idler = session.idler()
    assert await idler.wait(timeout_s=0.2) is IdleOutcome.REFRESH
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    assert await idler.wait(timeout_s=5, stop=stop) is IdleOutcome.STOPPED

    started = time.monotonic()
    delivery = asyncio.create_task(deliver(dovecot, user.address))
    assert await idler.wait(timeout_s=5) is IdleOutcome.NEWS
    print(f"\nMEASURE Dovecot announces a delivery to an idling client after {time.monotonic() - started:.2f} s")
    await delivery
    assert idler.exists == 1 and await idler.count_unseen() == 1
    assert await session.uid_search("UID", "1:*") == [1]  # the session is usable after DONE


async def test_news_reported_with_another_command_is_not_lost(
    inbox: tuple[ImapSession, MailUser], dovecot: DovecotInstance
) -> None:
    """Mail that arrives while another command runs is reported with its answer, not again by IDLE."""
    session, user = inbox
    idler = session.idler()
    await deliver(dovecot, user.address)
    await session.noop()  # the EXISTS comes with the NOOP's answer
    assert idler.news
    started = time.monotonic()
    assert await idler.wait(timeout_s=5) is IdleOutcome.NEWS
    assert time.monotonic() - started < 0.05  # at once, without idling
    assert not idler.news


async def test_a_connection_lost_while_idling_fails_fast_and_closes_the_session(
    inbox: tuple[ImapSession, MailUser], dovecot: DovecotInstance
) -> None:
    session, user = inbox
    idler = session.idler()
    waiting = asyncio.create_task(idler.wait(timeout_s=30))
    await asyncio.sleep(0.2)
    kick = ["/usr/bin/doveadm", "-c", str(dovecot.config_file), "kick", user.address]
    await asyncio.to_thread(subprocess.run, kick, check=True, timeout=10, capture_output=True)
    with pytest.raises(OperatorUnavailableError):
        await asyncio.wait_for(waiting, 5)
    assert session.closed
    with pytest.raises(ValueError, match="29 min"):
        await idler.wait(timeout_s=30 * 60)
