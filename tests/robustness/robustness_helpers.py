"""Shared tools of the robustness tests: the canary, problem checks that collect every mismatch,
hand-made DPoP proofs and JWTs, and a raw ASGI call for bytes no HTTP client would send.

Every malformed value carries :data:`CANARY`; no error body (and no header) may give it back.
Checks are soft: a test runs all its cases and fails once, listing every case that went wrong.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import msgspec
from litestar import Litestar

from backend.auth.jws import sign_es256
from contracts.errors import PROBLEM_MEDIA_TYPE, STATUS, ErrorCode, problem_type
from phone.client import PhoneClient
from phone.keys import DeviceKey
from tests.harness import BASE, Harness

CANARY = "CANARY-7f3a"
KNOWN_CODES = frozenset(code.value for code in ErrorCode)
#: The request body limit of the app (``request_max_body_size``).
MAX_BODY = 256 * 1024


def b64u(data: bytes | str | Mapping[str, Any] | list[Any]) -> str:
    """Unpadded base64url of bytes, of a string (UTF-8) or of a JSON value."""
    if isinstance(data, Mapping | list):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# responses ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """A response, whichever way it was obtained (httpx or a raw ASGI call)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, [(k, v) for k, v in response.headers.multi_items()], response.content)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def problem_errors(answer: Answer, status: int | None = None) -> tuple[dict[str, Any] | None, list[str]]:
    """The problem body, and what is wrong with it as an RFC 9457 problem of this service."""
    wrong: list[str] = []
    if answer.media_type != PROBLEM_MEDIA_TYPE:
        return None, [f"content-type {answer.media_type!r}, not {PROBLEM_MEDIA_TYPE}"]
    try:
        body = msgspec.json.decode(answer.body)
    except msgspec.DecodeError:
        return None, ["body is not JSON"]
    if not isinstance(body, dict):
        return None, ["body is not a JSON object"]
    code = body.get("code")
    if code not in KNOWN_CODES:
        return body, [f"code {code!r} is not in contracts.errors.ErrorCode"]
    if body.get("status") != answer.status:
        wrong.append(f"body status {body.get('status')} != HTTP status {answer.status}")
    if STATUS[ErrorCode(code)] != answer.status:
        wrong.append(f"code {code} has status {STATUS[ErrorCode(code)]}, answered {answer.status}")
    if body.get("type") != problem_type(code):
        wrong.append(f"type {body.get('type')!r} != {problem_type(code)!r}")
    if status is not None and answer.status != status:
        wrong.append(f"status {answer.status}, expected {status}")
    return body, wrong


def echoes(answer: Answer, canary: str = CANARY) -> list[str]:
    """Where the answer gives the canary back: body, or any header (``Location`` above all)."""
    places = [f"header {k}" for k, v in answer.headers if canary in v]
    if canary in answer.text:
        places.append("body")
    return places


@dataclass
class Findings:
    """Soft assertions: every case is checked, the test fails once with the whole list."""

    failures: list[str] = field(default_factory=list)
    cases: int = 0

    def fail(self, label: str, why: str, answer: Answer | None = None) -> None:
        seen = f" — got {answer.status} {answer.media_type} {answer.text[:240]!r}" if answer else ""
        self.failures.append(f"[{label}] {why}{seen}")

    def problem(
        self,
        label: str,
        answer: Answer | httpx.Response,
        status: int,
        code: str | ErrorCode,
        *,
        canary: str | None = CANARY,
    ) -> dict[str, Any] | None:
        """The answer is problem+json with this status and code, and does not echo the canary."""
        answer = answer if isinstance(answer, Answer) else Answer.of(answer)
        self.cases += 1
        expected = ErrorCode(code).value
        body, wrong = problem_errors(answer, status)
        if body is not None and body.get("code") != expected:
            wrong.append(f"code {body.get('code')!r}, expected {expected!r}")
        if canary is not None and (where := echoes(answer, canary)):
            wrong.append(f"echoes the input ({', '.join(where)})")
        if wrong:
            self.fail(label, "; ".join(wrong), answer)
        return body

    def one_of(
        self,
        label: str,
        answer: Answer | httpx.Response,
        allowed: Iterable[tuple[int, str | ErrorCode]],
        *,
        canary: str | None = CANARY,
    ) -> dict[str, Any] | None:
        """Like :meth:`problem`, for cases where more than one answer is right."""
        answer = answer if isinstance(answer, Answer) else Answer.of(answer)
        self.cases += 1
        pairs = {(status, ErrorCode(code).value) for status, code in allowed}
        body, wrong = problem_errors(answer)
        if body is not None and not wrong and (answer.status, body.get("code")) not in pairs:
            wrong.append(f"{answer.status} {body.get('code')!r} not in {sorted(pairs)}")
        if canary is not None and (where := echoes(answer, canary)):
            wrong.append(f"echoes the input ({', '.join(where)})")
        if wrong:
            self.fail(label, "; ".join(wrong), answer)
        return body

    def html_error(
        self, label: str, answer: Answer | httpx.Response, status: int, title: str, *, canary: str | None = CANARY
    ) -> None:
        """The French HTML error page a browser gets outside ``/api``."""
        answer = answer if isinstance(answer, Answer) else Answer.of(answer)
        self.cases += 1
        wrong: list[str] = []
        if answer.status != status:
            wrong.append(f"status {answer.status}, expected {status}")
        if answer.media_type != "text/html":
            wrong.append(f"content-type {answer.media_type!r}, expected text/html")
        elif f"<h1>{title}</h1>" not in answer.text:
            wrong.append(f"no <h1>{title}</h1>")
        if canary is not None and (where := echoes(answer, canary)):
            wrong.append(f"echoes the input ({', '.join(where)})")
        if wrong:
            self.fail(label, "; ".join(wrong), answer)

    def check(self, label: str, condition: bool, why: str, answer: Answer | httpx.Response | None = None) -> None:
        self.cases += 1
        if not condition:
            self.fail(
                label, why, None if answer is None else answer if isinstance(answer, Answer) else Answer.of(answer)
            )

    def assert_clean(self) -> None:
        assert not self.failures, f"{len(self.failures)} of {self.cases} checks failed:\n  " + "\n  ".join(
            self.failures
        )


# raw ASGI -----------------------------------------------------------------------------------------


async def raw_call(
    app: Litestar,
    method: str,
    path: bytes,
    *,
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> Answer:
    """One request straight into the ASGI app: any bytes in the path, query and headers.

    ``path`` is the raw (percent-encoded) path; the decoded ``path`` of the scope is what a server
    makes of it (Latin-1 for bytes that are not UTF-8, as uvicorn's ``unquote`` would not fail).
    """
    from urllib.parse import unquote_to_bytes

    status = 0
    response_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    decoded = unquote_to_bytes(path)
    try:
        path_text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        path_text = decoded.decode("latin-1")
    names = {k.lower() for k, _ in headers}
    all_headers = [(b"host", b"companion.test")] if b"host" not in names else []
    all_headers += [(k.lower(), v) for k, v in headers]
    if body and b"content-length" not in names:
        all_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path_text,
        "raw_path": path,
        "root_path": "",
        "query_string": query,
        "headers": all_headers,
        "client": ("203.0.113.9", 50000),
        "server": ("companion.test", 443),
        "state": {},
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return Answer(status, response_headers, b"".join(chunks))


# DPoP proofs and tokens ------------------------------------------------------------------------------


def nonce(h: Harness) -> str:
    """The current server nonce (stateless: the same for the whole window)."""
    return str(h.container.authenticator.nonces.issue())


def proof(h: Harness, key: DeviceKey, method: str, path: str, *, token: str | None = None) -> str:
    """A valid DPoP proof for one request, with the server nonce."""
    return key.dpop_proof(method=method, url=f"{BASE}{path}", nonce=nonce(h), access_token=token)


def claims_for(h: Harness, method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": f"{BASE}{path}",
        "iat": int(time.time()),
        "nonce": nonce(h),
        **extra,
    }


def signed(key: DeviceKey, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """An ES256 JWS by ``key`` with this header (``alg`` is forced to ES256)."""
    return sign_es256(header=header, payload=claims, key=key.private_key)


def unsigned(
    header: Mapping[str, Any] | list[Any] | str, claims: Mapping[str, Any] | list[Any] | str, signature: bytes = b""
) -> str:
    """A compact JWS with any header and payload (``alg: none`` and worse) and any signature bytes."""
    return f"{b64u(header)}.{b64u(claims)}.{b64u(signature) if signature else ''}"


def dpop_header(key: DeviceKey, **extra: Any) -> dict[str, Any]:
    return {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk, **extra}


@dataclass
class EnrolledPhone:
    """A phone that went through the real enrolment, with a valid access token."""

    client: PhoneClient
    token: str

    @property
    def key(self) -> DeviceKey:
        return self.client.state.key

    def auth(self, h: Harness, method: str, path: str, *, dpop: str | None = None) -> dict[str, str]:
        """``Authorization`` + a valid proof (or the given ``dpop`` value) for one request."""
        headers = {"Authorization": f"DPoP {self.token}", "Accept": "application/json"}
        headers["DPoP"] = dpop if dpop is not None else proof(h, self.key, method, path, token=self.token)
        return headers


async def enrolled(h: Harness, *, binding: str = "es256", name: str = "Téléphone robuste") -> EnrolledPhone:
    """Enrol a phone for the logged-in web session: claim, bind, confirm on the web, first tokens."""
    phone = await h.enrol_phone(name=name, binding=binding)
    assert phone.state.access_token is not None
    return EnrolledPhone(phone, phone.state.access_token)


def asgi_client(app: Litestar) -> httpx.AsyncClient:
    """A cookie-less client straight into the app (the app's lifespan is the harness's)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=cast("Any", app)), base_url=BASE)


def html_accept() -> dict[str, str]:
    return {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def json_accept() -> dict[str, str]:
    return {"Accept": "application/json"}


__all__ = [
    "BASE",
    "CANARY",
    "KNOWN_CODES",
    "MAX_BODY",
    "Answer",
    "EnrolledPhone",
    "Findings",
    "b64u",
    "claims_for",
    "dpop_header",
    "echoes",
    "enrolled",
    "html_accept",
    "json_accept",
    "nonce",
    "problem_errors",
    "proof",
    "raw_call",
    "signed",
    "unsigned",
]
