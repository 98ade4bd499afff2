"""Availability modes and quiet hours decide who gets a push for what (set from the phone or the web)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backend.alerts.availability import AvailabilityState, decide
from contracts.alerts import AvailabilityMode as M
from core.db.models import AuditEvent
from tests.alerts.helpers import FAST, add_third_member, pharmacy_id, phone_of, professional_id, titulaire_actor
from tests.conftest import Backends
from tests.harness import ADJOINT, TITULAIRE, running

PARIS = ZoneInfo("Europe/Paris")
NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=PARIS)
NIGHT = dt.datetime(2026, 11, 23, 23, 30, tzinfo=PARIS)
EARLY = dt.datetime(2026, 11, 24, 6, 59, tzinfo=PARIS)
SEVEN = dt.datetime(2026, 11, 24, 7, 0, tzinfo=PARIS)


def _state(mode: M, quiet: tuple[str, str] | None = ("22:00", "07:00")) -> AvailabilityState:
    start, end = (dt.time.fromisoformat(quiet[0]), dt.time.fromisoformat(quiet[1])) if quiet else (None, None)
    return AvailabilityState(professional_id=uuid.uuid4(), mode=mode, quiet_start=start, quiet_end=end)


@pytest.mark.parametrize(
    ("mode", "at", "mail", "visit", "oncall_on_rota", "oncall_off_rota"),
    [
        (M.AU_CABINET, NOON, False, False, "time_sensitive", False),
        (M.EN_VISITE, NOON, True, True, "time_sensitive", False),
        (M.EN_VISITE, NIGHT, False, True, "time_sensitive", False),  # quiet hours silence mail only
        (M.DE_GARDE, NOON, True, True, "time_sensitive", "time_sensitive"),
        (M.DE_GARDE, EARLY, False, True, "time_sensitive", "time_sensitive"),
        (M.ABSENT, NOON, False, False, "time_sensitive", False),  # nothing but on-call alerts on the rota
        (M.ABSENT, NIGHT, False, False, "time_sensitive", False),
    ],
)
def test_the_table(
    mode: M, at: dt.datetime, mail: bool, visit: bool, oncall_on_rota: object, oncall_off_rota: object
) -> None:
    state = _state(mode)
    assert decide(state, "mail", at, on_call=False) is mail
    assert decide(state, "visit", at, on_call=False) is visit
    assert decide(state, "oncall", at, on_call=True) == oncall_on_rota
    assert decide(state, "oncall", at, on_call=False) == oncall_off_rota


def test_quiet_hours_are_local_and_may_span_midnight() -> None:
    night = _state(M.EN_VISITE, ("22:00", "07:00"))
    assert night.in_quiet_hours(NIGHT) and night.in_quiet_hours(EARLY)
    assert not night.in_quiet_hours(SEVEN) and not night.in_quiet_hours(NOON)
    # 23:30 in Paris is 22:30 UTC in winter: the professional's clock counts, not UTC
    assert night.in_quiet_hours(NIGHT.astimezone(dt.UTC))
    lunch = _state(M.EN_VISITE, ("12:00", "14:00"))
    assert lunch.in_quiet_hours(NOON) and not lunch.in_quiet_hours(NIGHT)
    assert not _state(M.EN_VISITE, ("08:00", "08:00")).in_quiet_hours(NOON)  # equal ends: no window
    assert not _state(M.EN_VISITE, None).in_quiet_hours(NIGHT)


async def test_push_allowed_follows_mode_rota_and_management(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        service = h.container.availability
        titulaire = await titulaire_actor(h)
        pharmacy = await pharmacy_id(h)
        third = await add_third_member(h)
        julien = await professional_id(h, ADJOINT)
        helene = await professional_id(h, TITULAIRE)
        now = dt.datetime.now(dt.UTC)
        # nobody set anything: au cabinet, no quiet hours
        assert (await service.get(julien)).mode == M.AU_CABINET
        assert await service.push_allowed(julien, "mail", now) is False

        await service.set(third, mode=M.ABSENT, quiet_hours=None, actor=titulaire, source="web")
        assert await service.push_allowed(third, "oncall", now, structure_id=pharmacy) is False
        await h.container.rota.add_shift(
            titulaire, professional_id=third, starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=1)
        )
        assert await service.push_allowed(third, "oncall", now, structure_id=pharmacy) == "time_sensitive"
        assert await service.push_allowed(third, "oncall", now) == "time_sensitive"  # on some rota now
        assert await service.push_allowed(third, "mail", now) is False
        assert await service.push_allowed(third, "visit", now) is False
        # the titulaire is the last step of an escalation: reached for the structure's on-call alerts
        assert await service.push_allowed(helene, "oncall", now, structure_id=pharmacy) == "time_sensitive"
        assert await service.push_allowed(helene, "oncall", now) is False
        assert await service.push_allowed(julien, "oncall", now, structure_id=pharmacy) is False


async def test_phone_and_web_set_the_same_availability(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        phone = await phone_of(h, ADJOINT, "Android de Julien")
        mine = await phone.call("GET", "/api/v1/me/availability")
        assert mine == {
            "mode": "au_cabinet",
            "quietHours": None,
            "timezone": "Europe/Paris",
            "mailPushNow": False,
            "onCallNow": False,
        }
        changed = await phone.call(
            "PUT",
            "/api/v1/me/availability",
            json={"mode": "en_visite", "quietHours": {"start": "22:00", "end": "07:00"}},
        )
        assert changed["mode"] == "en_visite" and changed["quietHours"] == {"start": "22:00", "end": "07:00"}
        bad = await phone.request("PUT", "/api/v1/me/availability", json={"mode": "en_vacances"}, auth=True)
        assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"
        bad = await phone.request(
            "PUT",
            "/api/v1/me/availability",
            json={"mode": "absent", "quietHours": {"start": "25:00", "end": "07:00"}},
            auth=True,
        )
        assert bad.status_code == 400

        # the web page shows what the phone set, and changes it (CSRF-checked)
        await h.login(ADJOINT)
        page = await h.web.get("/disponibilite")
        assert page.status_code == 200
        assert 'id="mode-en_visite" name="mode" value="en_visite"' in page.text
        assert 'value="en_visite" aria-describedby="aide-en_visite" checked' in page.text
        assert 'value="22:00"' in page.text and 'value="07:00"' in page.text
        forged = await h.web.post(
            "/disponibilite",
            data={"csrf_token": "forged", "mode": "absent"},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
        saved = await h.web.post(
            "/disponibilite",
            data={"csrf_token": h.csrf(page.text), "mode": "de_garde", "quiet_start": "", "quiet_end": ""},
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/disponibilite?ok=disponibilite"
        half = await h.web.post(
            "/disponibilite",
            data={"csrf_token": h.csrf(page.text), "mode": "de_garde", "quiet_start": "22:00", "quiet_end": ""},
            headers={"Accept": "application/json"},
        )
        assert half.status_code == 400 and half.json()["code"] == "validation_failed"
        mine = await phone.call("GET", "/api/v1/me/availability")
        assert mine["mode"] == "de_garde" and mine["quietHours"] is None and mine["mailPushNow"] is True

        events = await h.container.audit.recent(chain="global", limit=50)
        changes = [e for e in events if e.action == "availability.changed"]
        assert [e.details["source"] for e in changes] == ["web", "phone"]
        assert all(isinstance(e, AuditEvent) and e.actor == ADJOINT for e in changes)
