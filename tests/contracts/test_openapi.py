"""The committed OpenAPI document is the one the code generates (``make openapi`` refreshes it)."""

from __future__ import annotations

import json

from backend.cli import OPENAPI_PATH
from backend.openapi_doc import openapi_json


def test_committed_openapi_is_current() -> None:
    assert OPENAPI_PATH.read_text() == openapi_json(), "contracts/openapi.json is stale: run `make openapi`"


def test_phone_api_is_documented_with_dpop() -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    for path in ("/api/v1/enrolments/{rdv_id}/claim", "/api/v1/token", "/api/v1/me", "/.well-known/jwks.json"):
        assert path in document["paths"]
    assert document["components"]["securitySchemes"]["DPoP"]["scheme"] == "DPoP"
    assert "/psc-sandbox" not in json.dumps(document)  # dev-only routes stay out of the contract
