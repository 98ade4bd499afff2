"""Secrets and personal data stay out of logs and error texts during a whole enrolment."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import Backends
from tests.harness import NURSE, running


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_enrolment_logs_carry_no_secret(
    backends: Backends, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(backends, tmp_path) as h:
        await h.login(NURSE)
        phone = await h.enrol_phone(name="Téléphone CANARY-devname")
        secret = phone.rendezvous.secret  # type: ignore[union-attr]
        await phone.refresh()
        refused = await phone.request(
            "POST", "/api/v1/token", json={"grantType": "refresh_token", "refreshToken": "mssc_rt_CANARY" + "x" * 35}
        )
        assert refused.status_code == 400 and "CANARY" not in refused.text
    out, errors = capfd.readouterr()
    text = out + errors + "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    import base64

    for forbidden in (
        base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
        phone.state.access_token or "",
        phone.state.refresh_token or "",
        "CANARY",
        "Rousseau",
        "ROUSSEAU",
        "camille.rousseau",
    ):
        assert forbidden and forbidden not in text, f"{forbidden[:12]}… reached a log line"
