"""Where Dovecot is not installed (``make demo`` as a user who cannot install it) the demo still runs,
without mail, and the log says so plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.mail.sandbox_operator import sandbox as sandbox_module
from backend.mail.sandbox_operator.net import free_port
from core.settings import OperatorSettings
from phone.client import PhoneError
from tests.conftest import Backends
from tests.demo.conftest import mailbox_ids
from tests.harness import TITULAIRE, running


async def test_without_dovecot_the_demo_runs_without_mail_and_says_so(
    embedded: Backends,
    demo_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sandbox_module, "dovecot_binary", lambda: None)
    # nothing listens where the connector would look
    operator = OperatorSettings(imap_port=free_port(), smtp_port=free_port())
    async with running(embedded, demo_data_dir, sandbox_operator=True, operator=operator) as h:
        assert h.app.state.sandbox_operator is None
        assert (await h.web.get("/health/live")).status_code == 200
        await h.login(TITULAIRE)
        phone = await h.enrol_phone()
        ids = await mailbox_ids(phone)
        assert len(ids) == 2
        with pytest.raises(PhoneError) as refused:
            await phone.messages(next(iter(ids.values())))
        assert refused.value.code == "operator_unavailable"
        await phone.aclose()
    err = capsys.readouterr().err
    assert "sandbox_operator.unavailable: Dovecot is not installed, the demo runs WITHOUT MAIL" in err
    assert "make system-packages" in err
    assert "operator='none (no mail)'" in err or "operator=none (no mail)" in err
    assert not (demo_data_dir / "sandbox-operator").exists()
