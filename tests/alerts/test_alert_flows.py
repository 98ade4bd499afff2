"""Visit and on-call alerts end to end: phones raise, read and take them; on-call alerts escalate.

The alert text is a canary: it must reach the recipient's phone through the API, and nothing else
(not the database column, the audit trail, the logs, nor what the push pipeline's hook receives).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from backend.alerts import AlertNotice, Raiser
from core.db.models import Alert, AuditEvent
from core.settings import AlertSettings
from phone.client import PhoneError
from tests.alerts.helpers import (
    FAST,
    THIRD,
    Recorder,
    add_third_member,
    create_service_key,
    pharmacy_id,
    phone_of,
    professional_id,
    titulaire_actor,
    titulaire_and_adjoint_phones,
)
from tests.conftest import Backends
from tests.harness import ADJOINT, NURSE, TITULAIRE, Harness, running

CANARY = "CANARY-visite: Mme Durand, 12 rue des Lilas, appeler le 06 12 34 56 78"
LATER = dt.timedelta(seconds=2)


async def _all_audit(h: Harness) -> list[AuditEvent]:
    async with h.container.db.read() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def test_visit_alert_from_one_phone_to_a_colleague(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(backends, tmp_path, alerts=FAST) as h:
        recorder = Recorder()
        h.container.alerts.on_notify(recorder)
        helene_phone, julien_phone = await titulaire_and_adjoint_phones(h)
        julien = await professional_id(h, ADJOINT)
        rota = await helene_phone.call("GET", "/api/v1/rota")
        assert {"id": str(julien), "name": "Julien LEFÈVRE"} in rota["members"]

        raised = await helene_phone.call(
            "POST", "/api/v1/alerts", json={"kind": "visit", "text": CANARY, "targetProfessionalId": str(julien)}
        )
        assert raised["kind"] == "visit" and raised["status"] == "open"
        assert raised["target"] == {"id": str(julien), "name": "Julien LEFÈVRE"} and not raised["awaitingMe"]
        assert raised["raisedBy"] == "Hélène GARNIER" and raised["raisedByKind"] == "professional"
        assert CANARY not in str(raised)
        alert_id = raised["id"]

        # the recipient's list carries no text; the detail does, for them only
        listed = await julien_phone.call("GET", "/api/v1/alerts")
        assert [a["id"] for a in listed["alerts"]] == [alert_id] and listed["alerts"][0]["awaitingMe"] is True
        assert CANARY not in str(listed)
        detail = await julien_phone.call("GET", f"/api/v1/alerts/{alert_id}")
        assert detail["text"] == CANARY
        assert [(s["reason"], s["professional"]["id"]) for s in detail["steps"]] == [("target", str(julien))]
        assert (await helene_phone.call("GET", f"/api/v1/alerts/{alert_id}"))["text"] == CANARY  # the raiser
        outsider = await phone_of(h, NURSE, "Téléphone de Camille")
        hidden = await outsider.request("GET", f"/api/v1/alerts/{alert_id}", auth=True)
        assert hidden.status_code == 404 and hidden.json()["code"] == "alert_not_found"
        assert (await outsider.call("GET", "/api/v1/alerts"))["alerts"] == []
        assert (await outsider.request("POST", f"/api/v1/alerts/{alert_id}/ack", auth=True)).status_code == 404
        junk = await julien_phone.request("GET", "/api/v1/alerts/not-an-id", auth=True)
        assert junk.status_code == 404 and junk.json()["code"] == "alert_not_found"

        # "je prends": the raiser cannot take it; the recipient can, once (then it is idempotent)
        refused = await helene_phone.request("POST", f"/api/v1/alerts/{alert_id}/ack", auth=True)
        assert refused.status_code == 403
        taken = await julien_phone.call("POST", f"/api/v1/alerts/{alert_id}/ack")
        assert taken["status"] == "acknowledged" and taken["acknowledgedBy"]["name"] == "Julien LEFÈVRE"
        assert not taken["awaitingMe"]
        again = await julien_phone.call("POST", f"/api/v1/alerts/{alert_id}/ack")
        assert again["acknowledgedAt"] == taken["acknowledgedAt"]

        # the push pipeline's hook: Julien's id, step 0, no text
        [(notice, recipients, step)] = recorder.for_alert(alert_id)
        assert isinstance(notice, AlertNotice) and recipients == (julien,) and step == 0
        assert notice.reason == "target" and notice.kind == "visit"
        assert CANARY not in repr(dataclasses.asdict(notice))
        assert {f.name for f in dataclasses.fields(notice)} == {
            "id",
            "kind",
            "structure_id",
            "status",
            "step",
            "reason",
        }

        # audited in the pharmacy's chain, by whom and from which device, never the text
        pharmacy = await pharmacy_id(h)
        events = await h.container.audit.recent(chain=str(pharmacy), limit=100)
        raised_event = next(e for e in events if e.action == "alert.raised")
        assert raised_event.actor == TITULAIRE and raised_event.device_id == helene_phone.state.device_id
        assert raised_event.target == alert_id and raised_event.details["notified"] == [ADJOINT]
        read_by = {e.actor for e in events if e.action == "alert.read"}
        assert read_by == {ADJOINT, TITULAIRE}
        ack = next(e for e in events if e.action == "alert.acknowledged")
        assert ack.actor == ADJOINT and ack.device_id == julien_phone.state.device_id
        assert (await h.container.audit.verify(str(pharmacy))).ok
        assert all(CANARY not in str(e.details) for e in await _all_audit(h))
    assert "CANARY" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_visit_alert_for_the_team_on_visit(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        helene_phone, julien_phone = await titulaire_and_adjoint_phones(h)
        body = {"kind": "visit", "text": "Passer à la pharmacie", "team": True}
        nobody = await helene_phone.request("POST", "/api/v1/alerts", json=body, auth=True)
        assert nobody.status_code == 409 and nobody.json()["code"] == "alert_no_recipient"
        await julien_phone.call("PUT", "/api/v1/me/availability", json={"mode": "en_visite"})
        raised = await helene_phone.call("POST", "/api/v1/alerts", json=body)
        assert raised["toTeam"] is True and raised["target"] is None
        assert (await julien_phone.call("GET", "/api/v1/alerts"))["alerts"][0]["awaitingMe"] is True

        for wrong in (
            {"kind": "visit", "text": "x"},  # neither a colleague nor the team
            {"kind": "visit", "text": "x", "team": True, "targetProfessionalId": str(uuid.uuid4())},
            {"kind": "visit", "text": "   "},
            {"kind": "oncall", "text": "x", "team": True},
            {"kind": "visit", "text": "x" * 1001, "team": True},  # over alerts.text_max_length
            {"kind": "visit", "text": "a\x00b", "team": True},
        ):
            refused = await helene_phone.request("POST", "/api/v1/alerts", json=wrong, auth=True)
            assert refused.status_code == 400, (wrong, refused.text)
        stranger = {"kind": "visit", "text": "x", "targetProfessionalId": str(uuid.uuid4())}
        refused = await helene_phone.request("POST", "/api/v1/alerts", json=stranger, auth=True)
        assert refused.status_code == 404 and refused.json()["code"] == "member_not_found"


async def test_on_call_alert_escalates_to_the_next_then_the_titulaire(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(backends, tmp_path, alerts=FAST) as h:
        recorder = Recorder()
        alerts = h.container.alerts
        alerts.on_notify(recorder)
        boss = await titulaire_actor(h)
        third = await add_third_member(h)
        julien = await professional_id(h, ADJOINT)
        helene = await professional_id(h, TITULAIRE)
        now = dt.datetime.now(dt.UTC)
        await h.container.rota.add_shift(
            boss, professional_id=julien, starts_at=now - LATER, ends_at=now + 2 * LATER * 3600, rank=1
        )
        await h.container.rota.add_shift(
            boss, professional_id=third, starts_at=now - LATER, ends_at=now + 2 * LATER * 3600, rank=0
        )
        await h.login(TITULAIRE)
        key = await create_service_key(h, "LGO de la pharmacie", "alerts:oncall")

        async with h.phone().http as service:
            created = await service.post(
                "/api/v1/service/alerts",
                json={"kind": "oncall", "text": CANARY},
                headers={"Authorization": f"Bearer {key}"},
            )
        assert created.status_code == 201, created.text
        alert_id = uuid.UUID(created.json()["id"])
        assert [r for _, r, _ in recorder.for_alert(alert_id)] == [(third,)]
        assert await alerts.due_escalations(now) == []  # not yet: the delay runs

        t1 = dt.datetime.now(dt.UTC) + LATER
        assert await alerts.due_escalations(t1) == [alert_id]
        step = await alerts.escalate(alert_id, t1)
        assert step is not None and step.step == 1 and step.reason == "oncall" and step.status == "escalated"
        assert await alerts.escalate(alert_id, t1) is None  # a second instance racing: nothing more
        t2 = t1 + LATER
        step = await alerts.escalate(alert_id, t2)
        assert step is not None and step.step == 2 and step.reason == "manager"
        t3 = t2 + LATER
        assert await alerts.escalate(alert_id, t3) is None  # nobody left: escalation stops, alert stays open
        assert await alerts.due_escalations(t3 + LATER) == []

        calls = recorder.for_alert(alert_id)
        assert [(r, s) for _, r, s in calls] == [((third,), 0), ((julien,), 1), ((helene,), 2)]
        for notice, recipients, _ in calls:
            assert isinstance(notice, AlertNotice) and all(isinstance(r, uuid.UUID) for r in recipients)
            assert CANARY not in repr(notice)

        pharmacy = await pharmacy_id(h)
        events = [
            e for e in await h.container.audit.recent(chain=str(pharmacy), limit=100) if e.target == str(alert_id)
        ]
        assert [e.action for e in reversed(events)] == [
            "alert.raised",
            "alert.escalated",
            "alert.escalated",
            "alert.escalation_exhausted",
        ]
        raised_event = events[-1]
        assert raised_event.actor_kind == "service" and raised_event.details["notified"] == [THIRD]
        assert [e.details["notified"] for e in reversed(events) if e.action == "alert.escalated"] == [
            [ADJOINT],
            [TITULAIRE],
        ]

        # every step is recorded on the alert: who was notified when
        record = await alerts.get(alert_id, helene)
        assert [(s.step, s.professional_id, s.reason) for s in record.steps] == [
            (0, third, "oncall"),
            (1, julien, "oncall"),
            (2, helene, "manager"),
        ]
        # the titulaire, notified last, may still take it
        taken = await alerts.acknowledge(alert_id, boss)
        assert taken.alert.status == "acknowledged" and taken.alert.acknowledged_by == helene
    assert "CANARY" not in "\n".join(r.getMessage() for r in caplog.records)


async def test_acknowledging_stops_the_escalation(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        recorder = Recorder()
        alerts = h.container.alerts
        alerts.on_notify(recorder)
        boss = await titulaire_actor(h)
        third = await add_third_member(h)
        julien = await professional_id(h, ADJOINT)
        now = dt.datetime.now(dt.UTC)
        await h.container.rota.add_shift(
            boss, professional_id=third, starts_at=now - LATER, ends_at=now + dt.timedelta(hours=2)
        )
        await h.container.rota.add_shift(
            boss, professional_id=julien, starts_at=now - LATER, ends_at=now + dt.timedelta(hours=2), rank=1
        )
        helene_phone, julien_phone = await titulaire_and_adjoint_phones(h)

        raised = await helene_phone.call("POST", "/api/v1/alerts", json={"kind": "oncall", "text": CANARY})
        alert_id = uuid.UUID(raised["id"])
        assert raised["kind"] == "oncall" and raised["step"] == 0
        refused = await julien_phone.request("POST", f"/api/v1/alerts/{alert_id}/ack", auth=True)
        assert refused.status_code == 404  # not notified (yet): not his alert
        await alerts.run_due(dt.datetime.now(dt.UTC) + LATER)
        mine = (await julien_phone.call("GET", "/api/v1/alerts"))["alerts"]
        assert [(a["id"], a["status"], a["step"], a["awaitingMe"]) for a in mine] == [
            (str(alert_id), "escalated", 1, True)
        ]
        assert (await julien_phone.call("GET", f"/api/v1/alerts/{alert_id}"))["text"] == CANARY

        taken = await julien_phone.call("POST", f"/api/v1/alerts/{alert_id}/ack")
        assert taken["status"] == "acknowledged"
        much_later = dt.datetime.now(dt.UTC) + 10 * LATER
        assert await alerts.due_escalations(much_later) == []
        assert await alerts.escalate(alert_id, much_later) is None
        assert [s for _, _, s in recorder.for_alert(alert_id)] == [0, 1]  # never reached the titulaire
        # the first person on call, notified earlier, can no longer take it
        with pytest.raises(Exception) as late:
            await alerts.acknowledge(alert_id, dataclasses.replace(boss, idnat=THIRD, professional_id=third))
        assert getattr(late.value, "code", None) == "alert_not_open"
        # Julien's list keeps it among the recent ones, no longer awaiting him
        mine = (await julien_phone.call("GET", "/api/v1/alerts"))["alerts"]
        assert mine[0]["awaitingMe"] is False and mine[0]["acknowledgedBy"]["name"] == "Julien LEFÈVRE"


async def test_nobody_on_call_goes_to_the_titulaire_and_the_loop_escalates_by_itself(
    backends: Backends, tmp_path: Path
) -> None:
    settings = AlertSettings(escalation_delay_s=1, check_every_s=0.2)
    async with running(backends, tmp_path, alerts=settings) as h:
        recorder = Recorder()
        h.container.alerts.on_notify(recorder)
        julien = await professional_id(h, ADJOINT)
        helene = await professional_id(h, TITULAIRE)
        pharmacy = await pharmacy_id(h)
        raiser = Raiser(pharmacy, julien, ADJOINT)
        first = await h.container.alerts.raise_oncall(raiser, text=CANARY)
        assert first.reason == "manager" and recorder.for_alert(first.id)[0][1] == (helene,)

        boss = await titulaire_actor(h)
        third = await add_third_member(h)
        now = dt.datetime.now(dt.UTC)
        await h.container.rota.add_shift(
            boss, professional_id=third, starts_at=now - LATER, ends_at=now + dt.timedelta(hours=1)
        )
        await h.container.rota.add_shift(
            boss, professional_id=helene, starts_at=now - LATER, ends_at=now + dt.timedelta(hours=1), rank=1
        )
        second = await h.container.alerts.raise_oncall(raiser, text=CANARY)
        assert second.reason == "oncall" and recorder.for_alert(second.id)[0][1] == (third,)
        for _ in range(40):  # the background loop escalates once the second passed
            if len(recorder.for_alert(second.id)) > 1:
                break
            await asyncio.sleep(0.1)
        assert [(r, s) for _, r, s in recorder.for_alert(second.id)][:2] == [((third,), 0), ((helene,), 1)]


async def test_text_is_encrypted_at_rest(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        helene_phone, julien_phone = await titulaire_and_adjoint_phones(h)
        julien = await professional_id(h, ADJOINT)
        raised = await helene_phone.call(
            "POST", "/api/v1/alerts", json={"kind": "visit", "text": CANARY, "targetProfessionalId": str(julien)}
        )
        async with h.container.db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM alert"))).all()
            steps = (await conn.execute(text("SELECT * FROM alert_step"))).all()
            audit = (await conn.execute(text("SELECT * FROM audit_event"))).all()
        assert len(rows) == 1
        needles = (CANARY.encode(), CANARY.encode("utf-16-le"), b"CANARY", b"Durand")
        for row in [*rows, *steps, *audit]:
            for value in row:
                raw = value if isinstance(value, bytes) else str(value).encode()
                assert not any(n in raw for n in needles), "the alert text is stored in clear"
        async with h.container.db.read() as session:
            alert = await session.scalar(select(Alert))
        assert alert is not None and len(alert.text_nonce) == 12
        assert len(alert.text_ciphertext) == len(CANARY.encode()) + 16  # AES-GCM: same length plus the tag
        assert str(alert.id) == raised["id"]

        # a ciphertext moved onto another alert does not decrypt (the alert id is associated data)
        from backend.alerts.crypto import AlertCipher, SealedText, UnreadableTextError

        cipher = AlertCipher(h.settings.app.secret_key)
        sealed = SealedText(alert.text_nonce, alert.text_ciphertext)
        assert cipher.open(sealed, alert_id=alert.id, structure_id=alert.structure_id) == CANARY
        with pytest.raises(UnreadableTextError):
            cipher.open(sealed, alert_id=uuid.uuid4(), structure_id=alert.structure_id)
        with pytest.raises(UnreadableTextError):
            AlertCipher("another secret key of the same length!!").open(
                sealed, alert_id=alert.id, structure_id=alert.structure_id
            )

        # the server's key changed since: the phone is told the text is gone, not a server error
        async with h.container.db.transaction() as session:
            stored = await session.get(Alert, alert.id)
            assert stored is not None
            stored.text_ciphertext = bytes([stored.text_ciphertext[0] ^ 1]) + stored.text_ciphertext[1:]
        with pytest.raises(PhoneError) as refused:
            await julien_phone.call("GET", f"/api/v1/alerts/{alert.id}")
        assert refused.value.status == 410 and refused.value.code == "alert_text_unreadable"
        assert CANARY not in str(refused.value.problem)


async def test_web_raises_an_alert_too(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        julien_phone = await phone_of(h, ADJOINT, "Android de Julien")
        julien = await professional_id(h, ADJOINT)
        await h.login(TITULAIRE)
        page = await h.web.get("/disponibilite")
        assert page.status_code == 200 and 'id="raise-alert"' in page.text
        assert f'<option value="{julien}">Julien LEFÈVRE</option>' in page.text
        long_text = "Rappeler le cabinet. " * 40  # longer than the other form fields may be
        forged = await h.web.post(
            "/alertes",
            data={"csrf_token": "forged", "target": str(julien), "text": long_text},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
        sent = await h.web.post(
            "/alertes", data={"csrf_token": h.csrf(page.text), "target": str(julien), "text": long_text}
        )
        assert sent.status_code == 303 and sent.headers["location"] == "/disponibilite?ok=alerte"
        [alert] = (await julien_phone.call("GET", "/api/v1/alerts"))["alerts"]
        assert alert["raisedBy"] == "Hélène GARNIER"
        assert (await julien_phone.call("GET", f"/api/v1/alerts/{alert['id']}"))["text"] == long_text.strip()
        events = await h.container.audit.recent(chain=str(await pharmacy_id(h)), limit=20)
        raised = next(e for e in events if e.action == "alert.raised")
        assert raised.actor == TITULAIRE and raised.device_id is None  # from the web: no device


async def test_a_member_who_left_the_team_no_longer_reads_its_alerts(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        alerts = h.container.alerts
        boss = await titulaire_actor(h)
        pharmacy = await pharmacy_id(h)
        julien = await professional_id(h, ADJOINT)
        raised = await alerts.raise_visit(Raiser.professional(boss), text=CANARY, target_id=julien)
        assert await alerts.text_for(raised.id, julien) == CANARY
        team = await h.container.teams.team(pharmacy)
        membership = next(m.membership for m in team.members if m.professional.id == julien)
        await h.container.teams.remove(membership.id, boss)
        with pytest.raises(Exception) as gone:
            await alerts.text_for(raised.id, julien)
        assert getattr(gone.value, "code", None) == "alert_not_found"
        assert await alerts.list_for(julien) == []
        assert [r.alert.id for r in await alerts.list_for(boss.professional_id)] == [raised.id]  # type: ignore[arg-type]
