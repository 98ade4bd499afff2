"""Service clients: a scoped key created by the titulaire, shown once, hashed at rest, revocable."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from core.db.models import ServiceClient
from tests.alerts.helpers import FAST, create_service_key, phone_of
from tests.conftest import Backends
from tests.harness import ADJOINT, TITULAIRE, Harness, running

URL = "/api/v1/service/alerts"


async def _post(h: Harness, body: object, authorization: str | None) -> httpx.Response:
    headers = {"Accept": "application/json"} | ({"Authorization": authorization} if authorization else {})
    async with h.phone().http as client:
        return await client.post(URL, json=body, headers=headers)


async def test_service_key_is_checked_and_scoped(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        julien_phone = await phone_of(h, ADJOINT, "Android de Julien")
        await h.login(TITULAIRE)
        key = await create_service_key(h, "LGO Officine", "alerts:raise")
        key_id, secret = key.removeprefix("mssc_sk_").split(".")
        visit = {"kind": "visit", "text": "Ordonnance prête à livrer", "targetRpps": ADJOINT[1:]}

        for authorization in (
            None,
            "Bearer",
            f"Bearer mssc_sk_{key_id}.{'A' * 43}",  # right key id, wrong secret
            f"Bearer mssc_sk_{'0' * 16}.{secret}",  # unknown key id
            f"Basic {key}",
            f"Bearer {key}x",
            f"Bearer {key[:-1]}",
        ):
            refused = await _post(h, visit, authorization)
            assert refused.status_code == 401, authorization
            assert refused.json()["code"] == "invalid_service_key"
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert secret not in refused.text

        created = await _post(h, visit, f"Bearer {key}")
        assert created.status_code == 201, created.text
        assert created.json()["kind"] == "visit" and created.json()["status"] == "open"
        [alert] = (await julien_phone.call("GET", "/api/v1/alerts"))["alerts"]
        assert alert["raisedByKind"] == "service" and alert["raisedBy"] == "LGO Officine"
        assert (await julien_phone.call("GET", f"/api/v1/alerts/{alert['id']}"))["text"] == visit["text"]

        # the scope is enforced: this key may not raise on-call alerts
        oncall = await _post(h, {"kind": "oncall", "text": "Urgence"}, f"Bearer {key}")
        assert oncall.status_code == 403 and oncall.json()["code"] == "insufficient_scope"
        # only members of its own structure can be targeted
        outsider = await _post(h, visit | {"targetRpps": "10003456786"}, f"Bearer {key}")
        assert outsider.status_code == 404 and outsider.json()["code"] == "member_not_found"

        # a phone's DPoP token is not a service key
        dpop = await julien_phone.request("POST", URL, json=visit, auth=True)
        assert dpop.status_code == 403 and dpop.json()["code"] == "insufficient_scope"

        # only a hash is kept, and the page never shows the key again
        async with h.container.db.read() as session:
            row = await session.scalar(select(ServiceClient))
        assert row is not None and row.key_id == key_id and secret not in row.secret_hash
        assert row.scopes == "alerts:raise" and row.last_used_at is not None
        page = await h.web.get("/equipe/garde")
        assert "LGO Officine" in page.text and secret not in page.text and key_id not in page.text

        # revoked: refused at the next call
        revoked = await h.web.post(f"/equipe/garde/services/{row.id}/revoquer", data={"csrf_token": h.csrf(page.text)})
        assert revoked.status_code == 303
        assert (await _post(h, visit, f"Bearer {key}")).status_code == 401
        assert "Révoquée le" in (await h.web.get("/equipe/garde")).text

        actions = [e.action for e in await h.container.audit.recent(chain=str(row.structure_id), limit=50)]
        assert {"service_client.created", "service_client.revoked", "alert.raised"} <= set(actions)


async def test_only_the_titulaire_creates_keys_with_known_scopes(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path, alerts=FAST) as h:
        await h.login(TITULAIRE)
        page = await h.web.get("/equipe/garde")
        json = {"Accept": "application/json"}
        forged = await h.web.post(
            "/equipe/garde/services",
            data={"csrf_token": "forged", "name": "X", "scope:alerts:raise": "1"},
            headers=json,
        )
        assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
        no_scope = await h.web.post(
            "/equipe/garde/services", data={"csrf_token": h.csrf(page.text), "name": "X"}, headers=json
        )
        assert no_scope.status_code == 400 and no_scope.json()["code"] == "validation_failed"
        no_name = await h.web.post(
            "/equipe/garde/services",
            data={"csrf_token": h.csrf(page.text), "name": " ", "scope:alerts:raise": "1"},
            headers=json,
        )
        assert no_name.status_code == 400

        h.web.cookies.clear()
        await h.login(ADJOINT)
        page = await h.web.get("/disponibilite")
        refused = await h.web.post(
            "/equipe/garde/services",
            data={"csrf_token": h.csrf(page.text), "name": "X", "scope:alerts:raise": "1"},
            headers=json,
        )
        assert refused.status_code == 403 and refused.json()["code"] == "not_titulaire"


async def test_an_address_presenting_bad_keys_is_slowed_down(backends: Backends, tmp_path: Path) -> None:
    from backend.alerts.service_clients import REFUSALS_PER_MINUTE

    async with running(backends, tmp_path, alerts=FAST) as h:
        await h.login(TITULAIRE)
        key = await create_service_key(h, "LGO Officine", "alerts:raise")
        visit = {"kind": "visit", "text": "Ordonnance prête à livrer", "targetRpps": ADJOINT[1:]}
        for n in range(REFUSALS_PER_MINUTE):
            refused = await _post(h, visit, f"Bearer mssc_sk_{n:016x}.{'B' * 43}")
            assert refused.status_code == 401
        slowed = await _post(h, visit, f"Bearer {key}")  # even a good key waits: the address is suspect
        assert slowed.status_code == 429 and slowed.json()["code"] == "rate_limited"
        assert slowed.headers["Retry-After"] == "60"
