"""The OpenAPI document of the phone API, generated from the app's routes (no server needed)."""

from __future__ import annotations

import json

from backend.app import create_app
from core.settings import AppSettings, PscSettings, Settings


def openapi_json() -> str:
    # Fixed settings: the document must not depend on the machine that generates it.
    settings = Settings(
        app=AppSettings(public_url="https://companion.example", secret_key="x" * 32),
        psc=PscSettings(sandbox=False, issuer="https://psc.example/realm"),
    )
    app = create_app(settings)
    schema = app.openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
