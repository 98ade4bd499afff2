"""The session pool: reuse, bounded concurrency, idle close, revocation, outages, refused logins."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from backend.mail.operator import (
    ActingIdentity,
    Circuit,
    ImapSession,
    MasterUserAuth,
    OperatorAuthError,
    OperatorBusyError,
    OperatorPool,
    OperatorUnavailableError,
)
from contracts.errors import STATUS, ErrorCode
from core.settings import OperatorSettings
from tests.mail_operator.conftest import DEVICE, IDNAT, PoolFactory, make_message
from tests.peers.dovecot import DovecotInstance
from tests.peers.fixtures import MailboxFactory
from tests.peers.ports import closed_port


async def test_sessions_are_reused_per_mailbox_professional_and_device(
    pool_factory: PoolFactory, mailbox_factory: MailboxFactory, dovecot: DovecotInstance
) -> None:
    pool = pool_factory()
    user = mailbox_factory()
    dovecot.deliver(user.address, make_message())
    first: ImapSession | None = None
    for _ in range(5):
        async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as imap:
            assert (await imap.select("INBOX")).exists == 1
            first = first or imap
            assert imap is first
    assert pool.stats().opened == 1
    # another device (or professional) on the same mailbox gets its own session
    async with pool.session(mailbox=user.address.upper(), idnat=IDNAT, device_id="dev-other") as other:
        assert other is not first
        assert other.identity == ActingIdentity(mailbox=user.address, idnat=IDNAT, device_id="dev-other")
    async with pool.session(mailbox=user.address, idnat="810002345675", device_id=DEVICE) as third:
        assert third is not first
    assert pool.stats() == dataclasses.replace(pool.stats(), keys=3, idle=3, in_use=0, opened=3)


async def test_concurrency_is_bounded_per_key(
    pool_factory: PoolFactory, operator_settings: OperatorSettings, mailbox_factory: MailboxFactory
) -> None:
    pool = pool_factory(dataclasses.replace(operator_settings, pool_max_per_mailbox=2))
    user = mailbox_factory()
    active = 0
    peak = 0

    async def request() -> None:
        nonlocal active, peak
        async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as imap:
            active += 1
            peak = max(peak, active)
            await imap.noop()
            await asyncio.sleep(0.05)
            active -= 1

    await asyncio.gather(*(request() for _ in range(8)))
    assert peak == 2
    assert pool.stats().opened == 2
    assert pool.stats().idle == 2


async def test_waiters_give_up_with_operator_busy(
    pool_factory: PoolFactory, operator_settings: OperatorSettings, mailbox_factory: MailboxFactory
) -> None:
    pool = pool_factory(dataclasses.replace(operator_settings, pool_max_per_mailbox=1), acquire_timeout_s=0.2)
    user = mailbox_factory()
    async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE):
        started = time.monotonic()
        with pytest.raises(OperatorBusyError) as busy:
            async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE):
                pass
        assert 0.15 < time.monotonic() - started < 1
    assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "1"
    # the slot is free again
    async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as imap:
        await imap.noop()


async def test_idle_sessions_are_logged_out(
    pool_factory: PoolFactory,
    operator_settings: OperatorSettings,
    mailbox_factory: MailboxFactory,
    dovecot: DovecotInstance,
) -> None:
    pool = pool_factory(dataclasses.replace(operator_settings, pool_idle_s=1))
    user = mailbox_factory()
    async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as imap:
        await imap.noop()
    assert pool.stats().idle == 1
    for _ in range(30):  # the reaper runs every pool_idle_s / 4
        if not pool.stats().idle:
            break
        await asyncio.sleep(0.1)
    assert pool.stats() == dataclasses.replace(pool.stats(), keys=0, idle=0, in_use=0)
    assert imap.closed
    await asyncio.sleep(0.1)
    assert any(f"imap({user.address})" in line and "Logged out" in line for line in dovecot.log_text().splitlines())


async def test_close_for_a_revoked_device(pool_factory: PoolFactory, mailbox_factory: MailboxFactory) -> None:
    pool = pool_factory()
    office, home = mailbox_factory(), mailbox_factory()
    for address in (office.address, home.address):
        for device in ("dev-revoked", "dev-kept"):
            async with pool.session(mailbox=address, idnat=IDNAT, device_id=device) as imap:
                await imap.noop()
    async with pool.session(mailbox=office.address, idnat=IDNAT, device_id="dev-revoked") as in_flight:
        assert await pool.close_for(device_id="dev-revoked") == 2  # one idle, one in use
        assert in_flight.closed
        with pytest.raises(OperatorUnavailableError):
            await in_flight.noop()
    assert pool.stats().idle == 2
    assert await pool.close_for(mailbox=home.address) == 1
    with pytest.raises(ValueError, match="criterion"):
        await pool.close_for()


async def test_operator_down_fails_fast_with_retry_after(
    pool_factory: PoolFactory, operator_settings: OperatorSettings, mailbox_factory: MailboxFactory
) -> None:
    pool = pool_factory(dataclasses.replace(operator_settings, imap_port=closed_port()))
    user = mailbox_factory()
    for attempt in range(3):
        started = time.monotonic()
        with pytest.raises(OperatorUnavailableError) as down:
            async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE):
                pass
        assert time.monotonic() - started < 0.5
        error = down.value
        assert error.code is ErrorCode.OPERATOR_UNAVAILABLE and STATUS[error.code] == 503
        assert error.retry_after is not None and error.retry_after >= 1
        assert error.headers == {"Retry-After": str(error.retry_after)}
        if attempt:
            assert "circuit open" in str(error.detail)  # no connection attempted at all
    assert pool.circuit.failures == 1


async def test_operator_stops_then_comes_back(
    mailbox_factory: MailboxFactory, operator_settings: OperatorSettings
) -> None:
    """A private Dovecot (the shared one must stay up): pooled sessions die with it, the circuit
    fails fast while it is down, and the pool reconnects once it is back."""
    with DovecotInstance() as private:
        user = private.add_user()
        settings = dataclasses.replace(
            operator_settings,
            imap_port=private.imap_port,
            master_user=private.master_user,
            master_password=private.master_password,
        )
        auth = MasterUserAuth(user=private.master_user, password=private.master_password)
        now = [0.0]
        circuit = Circuit(base_s=0.2, max_s=0.2, clock=lambda: now[0] + time.monotonic(), jitter=lambda: 1.0)
        pool = OperatorPool(settings, auth, circuit=circuit)
        try:
            async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as imap:
                await imap.noop()
            private.stop()
            started = time.monotonic()
            for _ in range(3):
                # the pooled session is dead (its next command says so), then connections are refused,
                # then the circuit answers without trying
                with pytest.raises(OperatorUnavailableError):
                    async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as stale:
                        await stale.noop()
            assert time.monotonic() - started < 1
            assert imap.closed and circuit.is_open
            private.restart()
            await asyncio.sleep(0.25)  # the backoff pause
            async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as again:
                await again.noop()
            assert again is not imap and circuit.failures == 0
        finally:
            await pool.aclose()


async def test_refused_login_is_not_retried_in_a_loop(
    pool_factory: PoolFactory, mailbox_factory: MailboxFactory, dovecot: DovecotInstance
) -> None:
    attempts = 0
    wrong = MasterUserAuth(user=dovecot.master_user, password="wrong")
    pool = pool_factory(auth=wrong, auth_failure_holdoff_s=30)
    real_open = pool._connector

    async def counting(identity: ActingIdentity) -> ImapSession:
        nonlocal attempts
        attempts += 1
        return await real_open(identity)

    pool._connector = counting
    user = mailbox_factory()
    for _ in range(3):
        with pytest.raises(OperatorAuthError) as refused:
            async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE):
                pass
        assert refused.value.status == 502
    assert attempts == 1
    assert pool.circuit.failures == 0  # the operator answered: it is up


async def test_shutdown_logs_everything_out(pool_factory: PoolFactory, mailbox_factory: MailboxFactory) -> None:
    pool = pool_factory()
    sessions = []
    for _ in range(3):
        user = mailbox_factory()
        async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE) as imap:
            sessions.append(imap)
    await pool.aclose()
    assert all(s.closed for s in sessions)
    with pytest.raises(OperatorUnavailableError):
        async with pool.session(mailbox=user.address, idnat=IDNAT, device_id=DEVICE):
            pass
