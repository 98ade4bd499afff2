"""QR enrolment end to end over HTTP: web page, QR decoded from its image, phone API, tokens."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import Backends
from tests.harness import NURSE, TITULAIRE, running


async def test_login_then_enrol_an_es256_phone(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        landing = await h.login(NURSE)
        assert landing.status_code in (302, 303)
        phone = await h.enrol_phone(name="Téléphone de Camille")
        me = await phone.me()
        assert me["name"] == "Téléphone de Camille"
        assert me["idnat"] == NURSE
        assert [m["address"] for m in me["mailboxes"]] == ["camille.rousseau@infirmier.mssante.fr"]
        assert phone.state.scope.startswith("device mbx:")
        devices = await h.web.get("/appareils")
        assert "Téléphone de Camille" in devices.text


async def test_qr_holds_no_identity_and_no_long_lived_secret(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(TITULAIRE)
        _, qr_url = await h.open_enrolment()
        parts = urlsplit(qr_url)
        assert f"{parts.scheme}://{parts.netloc}" == h.settings.app.public_url
        assert parts.path.startswith("/e/") and not parts.query
        rendezvous, secret = parts.path[3:], parts.fragment
        assert len(rendezvous) >= 22 and len(secret) >= 22  # ≥ 128 bits each, base64url
        for personal in (TITULAIRE, "10001234565", "Garnier", "Hélène", "Tilleuls", "pharmacie", "1750"):
            assert personal.lower() not in qr_url.lower()


async def test_check_code_mismatch_refused_creates_no_device(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        _, qr_url = await h.open_enrolment()
        phone = h.phone()
        await phone.claim(qr_url, name="Inconnu")
        await phone.bind()
        rdv = phone.rendezvous.rendezvous_id  # type: ignore[union-attr]
        await h.confirm(rdv, accept=False)  # the person saw a different code
        with pytest.raises(Exception) as err:
            await phone.complete(timeout_s=1)
        assert getattr(err.value, "code", "") == "enrolment_rejected"
        assert await h.container.devices.of_professional(await _professional_id(h, NURSE)) == []


async def test_qr_is_single_use(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        _, qr_url = await h.open_enrolment()
        first, second = h.phone(), h.phone()
        await first.claim(qr_url, name="Premier")
        with pytest.raises(Exception) as err:
            await second.claim(qr_url, name="Second")
        assert getattr(err.value, "code", "") == "enrolment_already_used"


async def test_qr_expires(backends: Backends, tmp_path: Path) -> None:
    from core.settings import EnrolmentSettings

    async with running(backends, tmp_path, enrolment=EnrolmentSettings(rendezvous_ttl_s=1)) as h:
        await h.login(NURSE)
        _, qr_url = await h.open_enrolment()
        import asyncio

        await asyncio.sleep(1.3)
        with pytest.raises(Exception) as err:
            await h.phone().claim(qr_url, name="En retard")
        assert getattr(err.value, "code", "") == "enrolment_expired"


async def test_wrong_secrets_burn_the_rendezvous(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        _, qr_url = await h.open_enrolment()
        forged = qr_url.split("#")[0] + "#" + "A" * 32
        for _ in range(3):
            with pytest.raises(Exception) as err:
                await h.phone().claim(forged, name="Pirate")
            assert getattr(err.value, "code", "") in {"enrolment_bad_secret", "enrolment_rejected"}
        with pytest.raises(Exception) as err:  # now even the right secret is refused
            await h.phone().claim(qr_url, name="Légitime")
        assert getattr(err.value, "code", "") == "enrolment_rejected"


async def test_webauthn_phone_and_assertion_sign_in(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await h.login(TITULAIRE)
        phone = await h.enrol_phone(name="iPhone officine", binding="webauthn", platform="ios")
        me = await phone.me()
        assert {m["address"] for m in me["mailboxes"]} == {
            "helene.garnier@pharmacien.mssante.fr",
            "pharmacie.tilleuls@pharmacie.mssante.fr",
        }
        phone.state.access_token = phone.state.refresh_token = None
        await phone.sign_in()  # a user-verified WebAuthn assertion, no refresh token
        assert (await phone.whoami())["deviceId"] == phone.state.device_id


async def test_device_limit(backends: Backends, tmp_path: Path) -> None:
    from core.settings import EnrolmentSettings

    async with running(backends, tmp_path, enrolment=EnrolmentSettings(max_devices_per_professional=1)) as h:
        await h.login(NURSE)
        await h.enrol_phone(name="Premier")
        _, qr_url = await h.open_enrolment()
        with pytest.raises(Exception) as err:
            await h.phone().claim(qr_url, name="Second")
        assert getattr(err.value, "code", "") == "device_limit_reached"


async def _professional_id(h: object, idnat: str) -> object:
    from sqlalchemy import select

    from core.db.models import Professional

    async with h.container.db.read() as session:  # type: ignore[attr-defined]
        return await session.scalar(select(Professional.id).where(Professional.idnat == idnat))
