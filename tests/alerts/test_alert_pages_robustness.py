"""The alert pages' forms refuse malformed input with a stable code: never a 500, never an echo."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.alerts.helpers import FAST
from tests.conftest import Backends
from tests.harness import TITULAIRE, running

CANARY = "CANARY-a1e7"
UNKNOWN = str(uuid.UUID(int=0x7F3A))
JSON = {"Accept": "application/json"}

#: Every form of the alert pages: path (``{id}`` is replaced) and fields other than the CSRF token.
FORMS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/equipe/garde/creneaux", {"professional": UNKNOWN, "start": "2030-01-01T08:00", "end": "2030-01-01T20:00"}),
    ("/equipe/garde/creneaux/{id}/supprimer", {}),
    ("/equipe/garde/services", {"name": "LGO", "scope:alerts:raise": "1"}),
    ("/equipe/garde/services/{id}/revoquer", {}),
    ("/disponibilite", {"mode": "en_visite"}),
    ("/alertes", {"target": "equipe", "text": "Passer"}),
)
PAGES = ("/equipe/garde", "/disponibilite")


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_alert_forms_refuse_junk_without_echo(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        for template in PAGES:
            anonymous = await h.web.get(template, headers=JSON)
            assert anonymous.status_code == 401 and anonymous.json()["code"] == "login_required"
        for template, fields in FORMS:
            anonymous = await h.web.post(template.replace("{id}", UNKNOWN), data=fields, headers=JSON)
            assert anonymous.status_code == 401 and anonymous.json()["code"] == "login_required", template

        await h.login(TITULAIRE)
        csrf = h.csrf((await h.web.get("/disponibilite")).text)
        for template, fields in FORMS:
            path = template.replace("{id}", UNKNOWN)
            for token in (None, "", CANARY):
                data = fields | ({"csrf_token": token} if token is not None else {})
                refused = await h.web.post(path, data=data, headers=JSON)
                assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed", (path, token)
            for name in fields:
                for junk in (CANARY, CANARY * 200, f"{CANARY}\x00", "", "é" * 600):
                    answer = await h.web.post(path, data=fields | {name: junk, "csrf_token": csrf}, headers=JSON)
                    assert answer.status_code < 500, (path, name, answer.text)
                    assert CANARY not in answer.headers.get("location", "")
                    if answer.status_code >= 400:  # a refusal never gives the input back
                        assert CANARY not in answer.text, (path, name, answer.text)
            if "{id}" in template:
                for bad in (CANARY, f"{UNKNOWN}{CANARY}", "00000000-0000-0000-0000-00000000000g"):
                    answer = await h.web.post(template.replace("{id}", bad), data={"csrf_token": csrf}, headers=JSON)
                    assert answer.status_code == 404 and CANARY not in answer.text, (template, bad)
        html = await h.web.post(
            "/equipe/garde/creneaux",
            data={"csrf_token": csrf, "professional": CANARY, "start": CANARY, "end": CANARY},
            headers={"Accept": "text/html"},
        )
        assert html.status_code in (400, 404) and "<html" in html.text and CANARY not in html.text
        assert (await h.web.get("/equipe/garde")).status_code == 200  # the session survived
