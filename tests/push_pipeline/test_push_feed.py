"""The device simulator's push feed (``GET /api/v1/dev/pushes``): own pushes only, long poll, cursor,
device authentication, and no feed at all when pushes really go to Apple and Google."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from contracts.errors import ErrorCode
from contracts.push import AlertClass
from contracts.push_feed import MAX_FEED_WAIT_S
from core.settings import PushSettings
from phone import cli
from tests.conftest import Backends
from tests.harness import NURSE, running
from tests.push_pipeline.dev_demo import in_process_cli, record_push, sink_of

FEED = "/api/v1/dev/pushes"


async def test_a_phone_gets_its_own_pushes_only_and_waits_for_the_next(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        mine = await h.enrol_phone(name="Pixel de Camille", push_provider="fcm", push_token="f" * 40)
        other = await h.enrol_phone(name="Tablette de Camille", push_provider="apns", push_token="a" * 64)
        sink = sink_of(h)
        mine_id, other_id = mine.state.device_id or "", other.state.device_id or ""
        first = await record_push(sink, mine_id)
        await record_push(sink, other_id)
        alert = await record_push(sink, other_id, AlertClass.ONCALL_ALERT)

        [push] = await mine.pushes(wait_s=0)
        assert push.payload["eventId"] == first and push.alert_class == AlertClass.MAIL
        assert set(push.payload) == {"alertClass", "eventId", "mailboxId", "badge", "locKey"}
        assert (push.kind, push.priority, push.collapse_id) == ("alert", "high", push.payload["mailboxId"])
        assert push.expires_at > push.at
        assert [p.payload["eventId"] for p in await other.pushes(wait_s=0)][-1] == alert

        # nothing new: an empty answer after the wait, and the cursor still good
        started = time.monotonic()
        assert await mine.pushes(wait_s=0.3) == []
        assert 0.25 <= time.monotonic() - started < 5

        # a long poll answers as soon as a push is recorded, with it alone
        waiting = asyncio.create_task(mine.pushes(wait_s=MAX_FEED_WAIT_S))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await record_push(sink, other_id)  # another device's push does not wake this phone up
        await asyncio.sleep(0.2)
        assert not waiting.done()
        second = await record_push(sink, mine_id)
        [push] = await asyncio.wait_for(waiting, 5)
        assert push.payload["eventId"] == second

        # a cursor from another sink (the server restarted) starts again from what the sink holds
        mine.state.push_cursor = "0badcafe.1"
        assert [p.payload["eventId"] for p in await mine.pushes(wait_s=0)] == [first, second]


async def test_the_feed_checks_the_device_and_its_input(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(push_provider="fcm", push_token="f" * 40)

        anonymous = await h.web.get(FEED)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        assert anonymous.json()["code"] == ErrorCode.AUTH_REQUIRED

        for query, code in (
            ("after=not-a-cursor", ErrorCode.INVALID_CURSOR),
            ("after=0badcafe.-1", ErrorCode.INVALID_CURSOR),
            (f"wait={MAX_FEED_WAIT_S + 1}", ErrorCode.VALIDATION_FAILED),
            ("wait=-1", ErrorCode.VALIDATION_FAILED),
            ("after=" + "a" * 65, ErrorCode.VALIDATION_FAILED),
        ):
            response = await phone.request("GET", f"{FEED}?{query}", auth=True)
            assert response.status_code == 400, (query, response.text)
            assert response.json()["code"] == code, query
            assert "not-a-cursor" not in response.text


async def test_no_feed_without_the_sink(
    backends: Backends,
    tmp_path: Path,
    push_settings: PushSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pushes go to APNs and FCM: the feed is an unknown path (404 problem), ``listen`` says why."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    async with running(backends, tmp_path, push=push_settings) as h:
        assert h.container.providers.sink is None
        await h.login(NURSE)
        phone = await h.enrol_phone(push_provider="fcm", push_token="f" * 40)
        response = await phone.request("GET", f"{FEED}?wait=1", auth=True)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == ErrorCode.NOT_FOUND
        assert (await h.web.get(FEED)).status_code == 404  # before any authentication

        cli.save(phone, "camille")
        in_process_cli(h, monkeypatch)
        with pytest.raises(SystemExit, match="ne fonctionne qu'avec le serveur de démonstration"):
            await cli.run(cli.parse_args(["--profile", "camille", "listen", "--once", "--timeout", "1"]))
        assert (tmp_path / "config" / "mssc-phone" / "camille.json").exists()  # nothing was wiped
