"""Pick the directory from settings, in the one place the app is wired."""

from __future__ import annotations

import httpx

from backend.mail.directory.base import Directory
from backend.mail.directory.fhir_client import FhirDirectory
from backend.mail.directory.sandbox import SandboxDirectory
from core.settings import Settings, SettingsError


def create_directory(settings: Settings, *, http: httpx.AsyncClient | None = None) -> Directory:
    """``fhir`` → Annuaire Santé; ``sandbox`` → the local directory (refused in production).

    Page tokens are sealed with a key derived from ``app.secret_key``, so any instance can read a
    token another one issued.
    """
    directory = settings.directory
    if directory.kind == "fhir":
        return FhirDirectory(directory, http=http, token_secret=settings.app.secret_key or None)
    if settings.app.is_production:
        raise SettingsError("MSSC_DIRECTORY_KIND must be fhir in production")
    return SandboxDirectory(token_secret=settings.app.secret_key or None)
