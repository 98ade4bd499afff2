"""The operator webhook: a Dovecot whose ``push_notification`` plugin (OX driver) calls a real
uvicorn + Litestar app on loopback running the route, which announces through the watcher."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from backend.mail.webhook import WEBHOOK_PATH, credentials_match, operator_new_mail, parse_notification
from core.settings import Settings, WatcherSettings
from push.watcher import Watcher, WatchStateStore
from tests.peers.dovecot import DovecotInstance
from tests.peers.ports import free_port
from tests.push_watcher.conftest import TEST_WATCHER, EventReader, Stack, WatcherFactory, deliver

HOOK_USER = "dovecot-ox"
HOOK_PASSWORD = secrets.token_urlsafe(24)
WEBHOOK = dataclasses.replace(TEST_WATCHER, mode="webhook", webhook_user=HOOK_USER, webhook_password=HOOK_PASSWORD)


@dataclasses.dataclass(frozen=True)
class Operator:
    dovecot: DovecotInstance
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    """A Dovecot that calls out on delivery, at the port the test's webhook app will listen on."""
    port = free_port()
    instance = DovecotInstance()
    instance.start(push_notification_url=f"http://{HOOK_USER}:{HOOK_PASSWORD}@127.0.0.1:{port}{WEBHOOK_PATH}")
    try:
        yield Operator(instance, port)
    finally:
        instance.cleanup()


def webhook_app(settings: Settings, stack: Stack, watcher: Watcher) -> Litestar:
    """The route as the app serves it: ``settings``, ``db`` and ``watcher`` by dependency injection."""
    return Litestar(
        route_handlers=[operator_new_mail],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "db": Provide(lambda: stack.db, sync_to_thread=False),
            "watcher": Provide(lambda: watcher, sync_to_thread=False),
        },
    )


@pytest.fixture
async def hook(operator: Operator, stack: Stack, make_watcher: WatcherFactory) -> AsyncIterator[Watcher]:
    """A watcher in webhook mode behind a real uvicorn on the operator's webhook port."""
    watcher = make_watcher(settings=WEBHOOK)
    await watcher.start()  # nothing to run in webhook mode
    app = webhook_app(Settings(watcher=WEBHOOK), stack, watcher)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=operator.port, log_level="warning", access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield watcher
    finally:
        server.should_exit = True
        await task


def notification(user: str, uid: int, *, uidvalidity: int = 1_700_000_000, **extra: object) -> bytes:
    """What Dovecot's OX driver sends, content included."""
    body: dict[str, object] = {
        "user": user,
        "event": "messageNew",
        "folder": "INBOX",
        "imap-uidvalidity": uidvalidity,
        "imap-uid": uid,
        "from": "dr.dubois@medecin.mssante.fr",
        "subject": "CANARY-SUBJECT",
        "snippet": "CANARY-BODY",
        "unseen": uid,
    }
    return json.dumps(body | extra).encode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_dovecot_calls_the_webhook_and_each_message_is_announced_once(
    operator: Operator, hook: Watcher, stack: Stack, events: EventReader
) -> None:
    user = operator.dovecot.add_user()
    mailbox_id = await stack.seed_mailbox(user.address)
    operator.dovecot.enable_push_notification(user.address)
    with capture_logs() as logs:
        await deliver(operator.dovecot, user.address)
        [first] = await events.take(until=lambda s: len(s) >= 1, timeout_s=3)
        await deliver(operator.dovecot, user.address)
        seen = await events.take(until=lambda s: len(s) >= 2, timeout_s=3)
    assert first.mailbox_id == mailbox_id
    assert [(e.highest_uid, e.new_count, e.unseen) for e in seen] == [(1, 1, 1), (2, 1, 2)]
    assert await events.quiet(0.5) == []
    # the OX driver sent the sender, subject and a snippet: none of it went anywhere
    assert all(b"CANARY" not in raw and b"medecin" not in raw for raw in events.raw)
    assert "CANARY" not in repr(logs) and user.address not in repr(logs)
    # switching to IDLE later would start after what the webhook announced
    state = (await WatchStateStore(stack.ephemeral).load(mailbox_id)).state
    assert state is not None and state.next_uid == 3 and state.uidvalidity == first.uidvalidity


async def test_the_webhook_refuses_bad_credentials_and_ignores_what_is_not_new_mail(
    operator: Operator, hook: Watcher, stack: Stack, events: EventReader
) -> None:
    user = operator.dovecot.add_user()
    mailbox_id = await stack.seed_mailbox(user.address)
    async with httpx.AsyncClient(timeout=5) as http:
        body = notification(user.address, 7)
        for headers in ({}, basic(HOOK_USER, "wrong-password"), basic("someone", HOOK_PASSWORD)):
            refused = await http.put(operator.url, content=body, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert await events.quiet(0.2) == []

        good = basic(HOOK_USER, HOOK_PASSWORD)
        assert (await http.post(operator.url, content=b"{not json", headers=good)).status_code == 400
        assert (await http.post(operator.url, content=b'{"user":"x@y.z"}', headers=good)).status_code == 400
        unknown = notification("nobody@pharmacie.mssante.fr", 7)
        assert (await http.post(operator.url, content=unknown, headers=good)).status_code == 204
        other_folder = notification(user.address, 8, folder="Junk")
        assert (await http.post(operator.url, content=other_folder, headers=good)).status_code == 204
        assert (await http.get(operator.url, headers=good)).status_code == 405
        assert await events.quiet(0.2) == []

        # a retried notification (the OX driver retries once) is announced once; POST and PUT alike
        assert (await http.post(operator.url, content=body, headers=good)).status_code == 204
        assert (await http.put(operator.url, content=body, headers=good)).status_code == 204
        seen = await events.take(until=lambda s: len(s) >= 1)
        assert await events.quiet(0.3) == []
        assert [(e.mailbox_id, e.highest_uid, e.unseen) for e in seen] == [(mailbox_id, 7, 7)]


async def test_the_webhook_is_closed_unless_the_watcher_is_in_webhook_mode(
    stack: Stack, make_watcher: WatcherFactory
) -> None:
    watcher = make_watcher()
    idle_settings = Settings(watcher=dataclasses.replace(WEBHOOK, mode="idle"))
    async with AsyncTestClient(app=webhook_app(idle_settings, stack, watcher)) as client:
        good = basic(HOOK_USER, HOOK_PASSWORD)
        response = await client.post(WEBHOOK_PATH, content=notification("a@b.fr", 1), headers=good)
    assert response.status_code == 404
    assert not await watcher.operator_notified("m", uidvalidity=1, uid=1, unseen=None)


def test_credentials_and_body_parsing() -> None:
    good = basic("u", "p" * 20)["Authorization"]
    assert credentials_match(good, user="u", password="p" * 20)
    assert not credentials_match(good, user="u", password="")  # nothing configured: nothing matches
    assert not credentials_match("Bearer x", user="u", password="p" * 20)
    assert not credentials_match("Basic !!!", user="u", password="p" * 20)
    assert not credentials_match("Basic " + base64.b64encode(b"no-colon").decode(), user="u", password="p" * 20)
    parsed = parse_notification(notification("A@B.fr", 3))
    assert parsed is not None and (parsed.user, parsed.uid, parsed.unseen) == ("A@B.fr", 3, 3)
    assert not hasattr(parsed, "subject") and not hasattr(parsed, "snippet")
    assert parse_notification(notification("a@b.fr", 0)) is None  # UIDs start at 1
    assert parse_notification(b"[]") is None
    with pytest.raises(ValueError, match="WEBHOOK"):
        WatcherSettings(mode="webhook", webhook_user="u", webhook_password="short")
