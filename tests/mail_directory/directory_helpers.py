"""Constants and settings shared by the directory tests (imported by ``conftest.py`` and tests)."""

from __future__ import annotations

from fhir_peer import API_KEY

from core.settings import DirectorySettings

BASE_URL = "https://annuaire.test/fhir/v2"


def fhir_settings(**overrides: object) -> DirectorySettings:
    values: dict[str, object] = {"kind": "fhir", "base_url": BASE_URL, "api_key": API_KEY, "timeout_s": 5.0}
    values.update(overrides)
    return DirectorySettings(**values)  # type: ignore[arg-type]
