"""``mssc-phone listen`` against the running app: a delivery at the sandbox operator becomes a push the
simulator shows ("Nouveau message sécurisé"), then the message it fetches; a revocation wipes it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from backend.alerts.service import Raiser
from backend.dev.demo_message import DEMO_SENDER_NAME, DEMO_SUBJECT
from contracts.push import AlertClass
from phone import cli
from tests.alerts.helpers import pharmacy_id, professional_id
from tests.conftest import Backends
from tests.harness import ADJOINT, ALL_ROLES, NURSE, TITULAIRE, running
from tests.push_pipeline.dev_demo import FAST_WATCHER, Console, in_process_cli, record_push, sink_of, watched

PROFILE = "camille"


async def _run_listen(*options: str) -> int | str | None:
    """``mssc-phone listen``; its exit status (a task must not raise ``SystemExit``: the loop would)."""
    try:
        await cli.run(cli.parse_args(["--profile", PROFILE, "listen", *options]))
    except SystemExit as exc:
        return exc.code
    return 0


def _listen(*options: str) -> asyncio.Task[int | str | None]:
    return asyncio.create_task(_run_listen(*options))


async def test_new_mail_shows_the_generic_text_then_the_fetched_message(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    async with running(backends, tmp_path, sandbox_operator=True, roles=ALL_ROLES, watcher=FAST_WATCHER) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(name="Pixel de Camille")  # no push address: `listen` registers one
        await phone.call("PUT", "/api/v1/me/availability", json={"mode": "en_visite"})
        [mailbox] = [m for m in await phone.mailboxes() if m.kind == "nominative"]
        cli.save(phone, PROFILE)
        in_process_cli(h, monkeypatch)
        console = Console(capsys)

        listening = _listen("--once", "--timeout", "60")
        await console.wait_for("En écoute des notifications de « Pixel de Camille »")
        assert "Jeton de notification du simulateur enregistré" in console.text
        assert "suspendues" not in console.text  # en visite: mail is pushed
        me = await phone.me()
        assert me["pushProvider"] == "fcm" and not me["pushTokenNeeded"]

        await watched(h, mailbox.id)
        page = await h.web.get("/dev/notifications")
        deposited = await h.web.post("/dev/notifications/message-demo", data={"csrf_token": h.csrf(page.text)})
        assert deposited.status_code == 303, deposited.text
        assert await asyncio.wait_for(listening, 20) == 0

        out = console.text
        notification = out.index("Nouveau message sécurisé — pastille ")
        fetched = out.index(DEMO_SUBJECT)
        assert notification < out.index(f"{mailbox.address} — ") < fetched
        assert DEMO_SENDER_NAME[:29] in out  # the app shows the sender, after fetching
        assert "Lire : mssc-phone read " in out

        # the push itself said nothing of it
        [push] = sink_of(h).records(phone.state.device_id)
        assert DEMO_SUBJECT not in repr(push) and "Laboratoire" not in repr(push)
        # the cursor was kept: the next run does not show the same push again
        assert await _run_listen("--once", "--timeout", "0.5") == "Aucune notification reçue en 0.5 s."


async def test_a_revocation_reaches_listen_as_a_wipe(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    async with running(backends, tmp_path, roles=ALL_ROLES) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(name="Pixel de Camille", push_provider="apns", push_token="a" * 64)
        device_id = phone.state.device_id or ""
        cli.save(phone, PROFILE)
        in_process_cli(h, monkeypatch)
        console = Console(capsys)

        listening = _listen("--timeout", "60")
        await console.wait_for("En écoute des notifications")
        assert "Jeton de notification" not in console.text  # it had one
        assert "suspendues" in console.text  # at the counter by default: no mail push, said so
        await asyncio.sleep(0.3)  # the feed call is waiting
        page = await h.web.get("/appareils")
        await h.web.post(f"/appareils/{device_id}/revoquer", data={"csrf_token": h.csrf(page.text)})
        assert await asyncio.wait_for(listening, 10) == 3

        out = console.text
        assert "Notification silencieuse : effacement à distance" in out
        assert "clés, jetons et profil effacés" in out
        assert not (tmp_path / "config" / "mssc-phone" / f"{PROFILE}.json").exists()
        assert (await h.container.devices.get(uuid.UUID(device_id))).wipe_acknowledged_at is not None


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_an_alert_push_shows_once_then_the_alert(
    backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An on-call alert nobody is on call for goes to the titulaire: her phone shows "Alerte de garde",
    then fetches the alert and its text. Delivery is at least once: the same event id twice is one
    notification (the phone's own de-duplication, hence one backend)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    async with running(backends, tmp_path, roles=ALL_ROLES) as h:
        await h.login(TITULAIRE)
        phone = await h.enrol_phone(name="iPhone d'Hélène", platform="ios", push_provider="apns", push_token="a" * 64)
        device_id = phone.state.device_id or ""
        raiser = Raiser(await pharmacy_id(h), await professional_id(h, ADJOINT), ADJOINT)
        alert = await h.container.alerts.raise_oncall(raiser, text="Appeler l'EHPAD des Lilas")
        sink = sink_of(h)
        [push] = await sink.wait_for(device_id)
        assert push.payload["alertId"] == str(alert.id)
        await record_push(sink, device_id, AlertClass.ONCALL_ALERT, event_id=push.payload["eventId"], ref=str(alert.id))
        cli.save(phone, PROFILE)
        in_process_cli(h, monkeypatch)
        console = Console(capsys)

        assert await _run_listen("--timeout", "0.5") == 0
        notifications = [line for line in console.text.splitlines() if line.startswith("[")]
        assert len(notifications) == 1 and notifications[0].endswith("] Alerte de garde")
        assert "  Alerte de garde de Julien LEFÈVRE (ouverte) :\n  « Appeler l'EHPAD des Lilas »" in console.text
