"""Schemathesis over the phone API's own OpenAPI document, against the real app (lifespan started).

Cases are generated from the served ``/schema/openapi.json`` for every operation, in schemathesis'
positive mode (what the schema allows) and negative mode (what it forbids: wrong types, missing
fields, out-of-range path parameters, odd headers). They are sent in-process to the running app of
the harness, on the test's own event loop, and every response goes through schemathesis'
``not_a_server_error`` and our ``problem_details`` check: a 4xx is ``application/problem+json``
with a ``code`` of ``contracts.errors.ErrorCode`` whose status is the HTTP status, and gives back no
string the request carried.

Two rounds: anonymous calls (they must be 4xx problems, mostly 401), then calls carrying a real
enrolled phone's valid ``Authorization: DPoP <token>`` with a valid, missing, garbage or replayed
``DPoP`` proof — the valid proof lets the generated bodies reach the handlers.

``MSSC_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 25);
``MSSC_FUZZ_RANDOM=1`` draws new examples on each run instead of the fixed (derandomized) set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from robustness_helpers import (
    CANARY,
    EnrolledPhone,
    asgi_client,
    b64u,
    enrolled,
    problem_errors,
    proof,
    unsigned,
)
from robustness_helpers import Answer as RawAnswer
from schemathesis import APIOperation, Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema

from contracts.errors import ErrorCode
from tests.conftest import Backends
from tests.harness import BASE, NURSE, Harness, running

AnyCase = Case[Any]
AnyOperation = APIOperation[Any, Any, Any, Any]

pytestmark = [pytest.mark.parametrize("backends", ["embedded"], indirect=True), pytest.mark.slow]

EXAMPLES = int(os.environ.get("MSSC_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = os.environ.get("MSSC_FUZZ_RANDOM", "") != "1"
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

#: Operations that need no credentials at all.
OPEN = frozenset({"GET /health/live", "GET /health/ready", "GET /.well-known/jwks.json"})


# generation ---------------------------------------------------------------------------------------


async def served_schema(h: Harness) -> OpenApiSchema:
    """The OpenAPI document the app serves, loaded by schemathesis."""
    response = await h.web.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    return schemathesis.openapi.from_dict(response.json())


def operations(schema: OpenApiSchema) -> list[AnyOperation]:
    """Every operation of the document; one that schemathesis cannot load fails the test."""
    loaded: list[AnyOperation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot load an operation: {result}"
        loaded.append(result.ok())
    return loaded


def operation_labels(schema: OpenApiSchema) -> list[str]:
    return [operation.label for operation in operations(schema)]


def generate(schema: OpenApiSchema, examples: int = EXAMPLES) -> list[AnyCase]:
    """``examples`` cases per operation and generation mode, generated up front (no I/O here)."""
    cases: list[AnyCase] = []
    for operation in operations(schema):
        for mode in MODES:
            collected = _collect(operation, mode, examples)
            assert collected, f"no case generated for {operation.label} ({mode.value})"
            cases.extend(collected)
    return cases


def _collect(operation: AnyOperation, mode: GenerationMode, examples: int) -> list[AnyCase]:
    collected: list[AnyCase] = []

    @settings(
        max_examples=examples,
        database=None,
        derandomize=DERANDOMIZE,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def collect(case: AnyCase) -> None:
        collected.append(case)

    collect()
    return collected


# sending ------------------------------------------------------------------------------------------


def _header_bytes(value: Any) -> bytes:
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def build_request(
    client: httpx.AsyncClient, case: AnyCase, override: dict[str, str | None] | None = None
) -> httpx.Request:
    """The case as an httpx request: schemathesis serializes it, we only change the carrier."""
    kwargs = case.as_transport_kwargs(base_url=BASE)
    headers: dict[str, Any] = dict(kwargs.get("headers") or {})
    for name, value in (override or {}).items():
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        if value is not None:
            headers[name] = value
    cookies = kwargs.get("cookies") or {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    content: bytes | None = None
    data: dict[str, Any] | None = None
    if "json" in kwargs:
        content = json.dumps(kwargs["json"], ensure_ascii=False).encode("utf-8")
    elif isinstance(kwargs.get("data"), bytes | str):
        raw = kwargs["data"]
        content = raw.encode("utf-8") if isinstance(raw, str) else raw
    elif isinstance(kwargs.get("data"), dict):
        data = kwargs["data"]
    header_list = [
        (_header_bytes(k), _header_bytes(v))
        for k, v in headers.items()
        if k.lower() not in ("content-length", "host", "connection")
    ]
    return client.build_request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params") or None,
        headers=header_list,
        content=content,
        data=data,
    )


# checks -------------------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _schema_words(node: Any, words: set[str]) -> set[str]:
    """Property names, parameter names and enum values of the document: the API's own vocabulary."""
    if isinstance(node, dict):
        words.update(k for k in node.get("properties", {}) if isinstance(node.get("properties"), dict))
        words.update(v for v in node.get("enum", []) if isinstance(v, str))
        if isinstance(node.get("name"), str):
            words.add(node["name"])
        for item in node.values():
            _schema_words(item, words)
    elif isinstance(node, list):
        for item in node:
            _schema_words(item, words)
    return words


@cache
def _app_source() -> str:
    """The app's own source: Hypothesis also draws string constants from it (codes, messages)."""
    root = Path(__file__).resolve().parents[2]
    return "\n".join(
        path.read_text(encoding="utf-8")
        for package in ("contracts", "core", "backend", "enrolment")
        for path in sorted((root / package).rglob("*.py"))
    )


def sent_values(case: AnyCase) -> set[str]:
    """Strings the request carried that are not the API's vocabulary and not in a body by chance."""
    candidates = [*_strings(case.path_parameters or {}), *_strings(case.query or {})]
    if not isinstance(case.body, schemathesis.core.NotSet):
        candidates += _strings(case.body)
    vocabulary = _schema_words(case.operation.schema.raw_schema, set())
    return {
        s for s in candidates if len(s) >= 8 and len(set(s)) >= 4 and s not in vocabulary and s not in _app_source()
    }


def problem_details(ctx: CheckContext, response: schemathesis.Response, case: AnyCase) -> bool | None:
    """A 4xx is a problem+json of this service, and gives back none of the request's values."""
    if not 400 <= response.status_code < 500:
        return None
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    answer = RawAnswer(response.status_code, headers, response.content or b"")
    _, wrong = problem_errors(answer)
    echoed = sorted(value for value in sent_values(case) if value in answer.text)
    if echoed:
        wrong.append(f"the error body gives back request values: {echoed[:3]!r}")
    if wrong:
        raise AssertionError("; ".join(wrong))
    return None


CHECKS: list[Callable[..., bool | None]] = [not_a_server_error, problem_details]


@dataclass
class Run:
    """Sends cases, validates every response and keeps the failures (reported all at once)."""

    client: httpx.AsyncClient
    failures: list[str]
    sent: int = 0

    async def send(self, case: AnyCase, override: dict[str, str | None] | None = None) -> httpx.Response:
        request = build_request(self.client, case, override)
        response = await self.client.send(request)
        self.sent += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:
            self.failures.append(
                f"{case.operation.label} {request.method} {request.url.raw_path[:120]!r}: "
                f"{_first_line(exc)}\n      sent: {(request.content or b'')[:160]!r}"
                f"\n      got: {response.status_code} {response.content[:240]!r}"
            )
        return response

    def expect(self, case: AnyCase, response: httpx.Response, allowed: frozenset[ErrorCode], why: str) -> None:
        code = _code(response)
        if code is None or ErrorCode(code) not in allowed:
            self.failures.append(
                f"{case.operation.label} ({why}): {response.status_code} {code!r}, expected one "
                f"of {sorted(c.value for c in allowed)}"
            )

    def assert_clean(self) -> None:
        assert not self.failures, f"{len(self.failures)} of {self.sent} requests failed:\n  " + "\n  ".join(
            self.failures[:40]
        )


def _code(response: httpx.Response) -> str | None:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code in ErrorCode.__members__.values() else None


def _first_line(exc: BaseException) -> str:
    """The failure messages of a schemathesis ``FailureGroup`` (or of any exception), one line."""
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(_first_line(e) for e in exc.exceptions)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    title = getattr(exc, "title", None)
    text = f"{title}: {message}" if title else message
    return " ".join(text.split())[:400]


# tests --------------------------------------------------------------------------------------------


async def test_the_schema_lists_every_phone_operation(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        labels = set(operation_labels(await served_schema(h)))
    assert {
        "POST /api/v1/token",
        "POST /api/v1/token/webauthn-challenge",
        "GET /api/v1/whoami",
        "GET /api/v1/me",
        "PUT /api/v1/me/push",
        "POST /api/v1/me/wipe-ack",
        "POST /api/v1/enrolments/{rdv_id}/claim",
        "POST /api/v1/enrolments/{rdv_id}/bind",
        "POST /api/v1/enrolments/{rdv_id}/complete",
        "GET /api/v1/enrolments/{rdv_id}",
    } <= labels


async def test_every_operation_anonymous(backends: Backends, tmp_path: Path) -> None:
    """No token, no proof (schemathesis may add an ``Authorization`` of its own): 4xx problems, never 5xx."""
    async with running(backends, tmp_path) as h:
        await _anonymous_round(h)


async def _anonymous_round(h: Harness) -> None:
    schema = await served_schema(h)
    run = Run(asgi_client(h.app), [])
    async with run.client:
        for case in generate(schema):
            response = await run.send(case, {"DPoP": None})
            if case.operation.label not in OPEN:
                run.expect(case, response, frozenset(ErrorCode) - {ErrorCode.INTERNAL_ERROR}, "anonymous")
                if response.status_code < 400:
                    run.failures.append(f"{case.operation.label}: anonymous call answered {response.status_code}")
    run.assert_clean()


#: ``DPoP`` values that are not proofs at all.
GARBAGE_PROOFS = (
    CANARY,
    f"{CANARY}.{CANARY}.{CANARY}",
    unsigned({"typ": "dpop+jwt", "alg": "none"}, {"jti": CANARY, "htm": "GET"}),
    unsigned({"typ": "dpop+jwt", "alg": "ES256", "x": CANARY * 500}, {"jti": CANARY}, b"\0" * 64),
    unsigned([CANARY], {"jti": CANARY}),
    f"{b64u(CANARY)}..",
    "e30.e30.e30",
)


async def test_every_operation_with_a_real_token_and_broken_or_valid_proofs(backends: Backends, tmp_path: Path) -> None:
    """A real phone's valid token, with each proof variant in turn over the generated cases.

    * ``valid``: a fresh proof for the exact request; the generated input reaches the handler.
    * ``missing``: no ``DPoP`` header → ``dpop_required`` wherever a proof is needed.
    * ``garbage``: not a proof → ``dpop_invalid``.

    (A body that is not JSON at all is refused ``bad_request`` before the proof is looked at:
    Litestar reads and decodes the body before it resolves the dependencies that check the proof.)
    * ``replayed``: the same request twice with one proof → the second is ``dpop_replayed`` when
      the first went through.
    """
    async with running(backends, tmp_path) as h:
        await _token_round(h)


async def _token_round(h: Harness) -> None:
    await h.login(NURSE)
    phone: EnrolledPhone = await enrolled(h)
    schema = await served_schema(h)
    run = Run(asgi_client(h.app), [])
    variants = ("valid", "missing", "garbage", "replayed")
    async with run.client:
        for index, case in enumerate(generate(schema)):
            variant = variants[index % len(variants)]
            label = case.operation.label
            path = httpx.URL(case.as_transport_kwargs(base_url=BASE)["url"]).path
            method = case.operation.method.upper()
            headers: dict[str, str | None] = {"Authorization": f"DPoP {phone.token}", "Accept": "application/json"}
            if variant == "missing":
                headers["DPoP"] = None
                response = await run.send(case, headers)
                if label not in OPEN:
                    run.expect(
                        case,
                        response,
                        frozenset({ErrorCode.DPOP_REQUIRED, ErrorCode.BAD_REQUEST}),
                        "no proof",
                    )
            elif variant == "garbage":
                headers["DPoP"] = GARBAGE_PROOFS[index // len(variants) % len(GARBAGE_PROOFS)]
                response = await run.send(case, headers)
                if label not in OPEN:
                    run.expect(
                        case,
                        response,
                        frozenset({ErrorCode.DPOP_INVALID, ErrorCode.BAD_REQUEST}),
                        "garbage proof",
                    )
            else:
                headers["DPoP"] = proof(h, phone.key, method, path, token=phone.token)
                first = await run.send(case, headers)
                if variant == "replayed":
                    second = await run.send(case, headers)
                    if first.status_code < 300 and label not in OPEN:
                        run.expect(case, second, frozenset({ErrorCode.DPOP_REPLAYED}), "replayed proof")
    run.assert_clean()
    # The phone is still fine after all that: nothing the fuzzing did revoked or broke it.
    me = await phone.client.me()
    assert me["idnat"] == NURSE
