"""Hand-written malformed input for every phone API endpoint: status + stable problem ``code``,
never a 500, and never the injected :data:`CANARY` in what comes back.

Bodies are sent with a *valid* DPoP proof (and token where one is needed), so that what is tested is
the body handling and not the authentication that runs first; the proof and token malformations
have tests of their own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from robustness_helpers import (
    CANARY,
    MAX_BODY,
    Answer,
    EnrolledPhone,
    Findings,
    b64u,
    claims_for,
    dpop_header,
    enrolled,
    nonce,
    proof,
    raw_call,
    signed,
    unsigned,
)

from backend.auth.dpop import access_token_hash
from contracts.enrolment import claim_proof
from contracts.errors import ErrorCode as E
from phone.client import QrCode
from phone.keys import DeviceKey
from tests.conftest import Backends
from tests.harness import BASE, NURSE, Harness, running

TOKEN = "/api/v1/token"
WHOAMI = "/api/v1/whoami"
RDV_OK = "A" * 22  # well-formed, unknown rendezvous id


async def _logged_in(h: Harness, idnat: str = NURSE) -> None:
    landing = await h.login(idnat)
    assert landing.status_code in (302, 303) and not landing.headers["location"].startswith("/problems"), (
        landing.status_code,
        landing.text[:300],
    )
    check = await h.web.get("/appareils")
    assert check.status_code == 200, f"the web login did not stick: {check.status_code} {check.text[:300]}"


async def _phone(h: Harness, *, binding: str = "es256") -> EnrolledPhone:
    await _logged_in(h)
    return await enrolled(h, binding=binding)


async def _post(
    h: Harness,
    key: DeviceKey,
    path: str,
    *,
    content: bytes | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> httpx.Response:
    """POST with a fresh valid proof by ``key`` (and ``Authorization`` when a token is given)."""
    all_headers = {"DPoP": proof(h, key, "POST", path, token=token), "Accept": "application/json"}
    if content is not None:
        all_headers["Content-Type"] = "application/json"
    if token is not None:
        all_headers["Authorization"] = f"DPoP {token}"
    all_headers |= headers or {}
    return await h.web.post(path, content=content, json=json, headers=all_headers)


def _nested(depth: int) -> bytes:
    return b'{"grantType":"webauthn","webauthnAssertion":{"a":' + b"[" * depth + b"]" * depth + b"}}"


# the token endpoint: bodies ----------------------------------------------------------------------


async def test_token_endpoint_refuses_malformed_bodies(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        key, f = phone.key, Findings()

        async def body(label: str, content: bytes, status: int, code: E, **kw: Any) -> None:
            f.problem(label, await _post(h, key, TOKEN, content=content, **kw), status, code)

        await body("truncated JSON", b'{"grantType": "' + CANARY.encode(), 400, E.BAD_REQUEST)
        await body("not JSON", b"{" + CANARY.encode(), 400, E.BAD_REQUEST)
        await body("JSON then garbage", b'{"grantType":"device_key"}' + CANARY.encode(), 400, E.BAD_REQUEST)
        await body("byte 0xFF before JSON", b'\xff{"grantType":"device_key"}', 400, E.BAD_REQUEST)
        await body(
            "lone UTF-16 surrogate escape", b'{"grantType":"\\ud800' + CANARY.encode() + b'"}', 400, E.BAD_REQUEST
        )
        await body("null body", b"null", 400, E.VALIDATION_FAILED)
        await body("array body", f'["{CANARY}"]'.encode(), 400, E.VALIDATION_FAILED)
        await body("string body", f'"{CANARY}"'.encode(), 400, E.VALIDATION_FAILED)
        await body("unknown enum value", f'{{"grantType":"{CANARY}"}}'.encode(), 400, E.VALIDATION_FAILED)
        await body(
            "unknown field (forbid_unknown_fields)",
            f'{{"grantType":"device_key","{CANARY}":1}}'.encode(),
            400,
            E.VALIDATION_FAILED,
        )
        await body("wrong type", b'{"grantType":1}', 400, E.VALIDATION_FAILED)
        await body("missing grantType", f'{{"refreshToken":"{CANARY}"}}'.encode(), 400, E.VALIDATION_FAILED)
        await body(
            "refreshToken longer than 256",
            f'{{"grantType":"refresh_token","refreshToken":"{CANARY * 30}"}}'.encode(),
            400,
            E.VALIDATION_FAILED,
        )
        await body(
            "webauthnAssertion not an object",
            f'{{"grantType":"webauthn","webauthnAssertion":"{CANARY}"}}'.encode(),
            400,
            E.VALIDATION_FAILED,
        )
        await body(
            "duplicate key, last one bad",
            f'{{"grantType":"device_key","grantType":"{CANARY}"}}'.encode(),
            400,
            E.VALIDATION_FAILED,
        )
        await body(
            "unknown refresh token",
            f'{{"grantType":"refresh_token","refreshToken":"{CANARY}"}}'.encode(),
            400,
            E.INVALID_GRANT,
        )
        await body("refresh grant without a token", b'{"grantType":"refresh_token"}', 400, E.VALIDATION_FAILED)
        f.one_of(
            "empty body", await _post(h, key, TOKEN, content=b""), [(400, E.VALIDATION_FAILED), (400, E.BAD_REQUEST)]
        )
        f.one_of(
            "number out of range",
            await _post(h, key, TOKEN, content=b'{"grantType":1e999}'),
            [(400, E.VALIDATION_FAILED), (400, E.BAD_REQUEST)],
        )
        f.one_of(
            "integer out of range",
            await _post(h, key, TOKEN, content=b'{"grantType":' + b"9" * 5000 + b"}"),
            [(400, E.VALIDATION_FAILED), (400, E.BAD_REQUEST)],
        )

        # wrong content types: refused as bad JSON (or 415), never parsed as something else
        for media_type, content in (
            ("text/plain", CANARY.encode()),
            ("application/x-www-form-urlencoded", f"grantType={CANARY}".encode()),
            (
                "multipart/form-data; boundary=xyz",
                f'--xyz\r\nContent-Disposition: form-data; name="grantType"\r\n\r\n{CANARY}\r\n--xyz--\r\n'.encode(),
            ),
            ("application/xml", f"<grantType>{CANARY}</grantType>".encode()),
        ):
            f.one_of(
                f"Content-Type {media_type}",
                await _post(h, key, TOKEN, content=content, headers={"Content-Type": media_type}),
                [(400, E.BAD_REQUEST), (415, E.UNSUPPORTED_MEDIA_TYPE)],
            )

        # bodies over the 256 KiB limit, with and without a Content-Length
        huge = b'{"grantType":"device_key","x":"' + CANARY.encode() * (MAX_BODY // len(CANARY) + 10) + b'"}'
        await body("body over 256 KiB", huge, 413, E.PAYLOAD_TOO_LARGE)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(huge), 16384):
                yield huge[start : start + 16384]

        streamed = await h.web.post(
            TOKEN, content=chunks(), headers={"DPoP": proof(h, key, "POST", TOKEN), "Content-Type": "application/json"}
        )
        f.problem("chunked body over 256 KiB", streamed, 413, E.PAYLOAD_TOO_LARGE)
        f.one_of(
            "Content-Length that is not a number",
            await raw_call(
                h.app,
                "POST",
                TOKEN.encode(),
                body=b'{"grantType":"device_key"}',
                headers=[
                    (b"content-type", b"application/json"),
                    (b"content-length", CANARY.encode()),
                    (b"dpop", proof(h, key, "POST", TOKEN).encode()),
                ],
            ),
            [(400, E.BAD_REQUEST)],
        )
        # sanity: the same phone, a good body
        ok = await _post(h, key, TOKEN, content=b'{"grantType":"device_key"}')
        f.check("a good body still works", ok.status_code == 200, "device_key grant refused", ok)
        f.assert_clean()


async def test_bodies_with_bytes_that_are_not_utf8_or_nested_too_deep(backends: Backends, tmp_path: Path) -> None:
    """Decoding failures other than ``msgspec.DecodeError`` must be 400s too."""
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        f = Findings()
        for label, content in (
            ("byte 0xFF inside a JSON string", b'{"grantType":"\xff' + CANARY.encode() + b'"}'),
            ("byte 0xFF inside a JSON key", b'{"\xfe' + CANARY.encode() + b'":1,"grantType":"device_key"}'),
            ("overlong UTF-8 inside a string", b'{"grantType":"\xc0\xaf' + CANARY.encode() + b'"}'),
            ("JSON nested 5000 deep", _nested(5000)),
        ):
            f.problem(label, await _post(h, phone.key, TOKEN, content=content), 400, E.BAD_REQUEST)
        f.problem(
            "non UTF-8 on a token-bound endpoint",
            await h.web.put(
                "/api/v1/me/push",
                content=b'{"provider":"\xff' + CANARY.encode() + b'"}',
                headers=phone.auth(h, "PUT", "/api/v1/me/push") | {"Content-Type": "application/json"},
            ),
            400,
            E.BAD_REQUEST,
        )
        f.assert_clean()


# the DPoP proof ----------------------------------------------------------------------------------


async def test_malformed_dpop_proofs(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        key, f = phone.key, Findings()
        good_body = {"grantType": "device_key"}

        async def token_call(label: str, dpop: str | None, status: int, code: E) -> Answer:
            headers = {"Accept": "application/json"} | ({"DPoP": dpop} if dpop is not None else {})
            answer = Answer.of(await h.web.post(TOKEN, json=good_body, headers=headers))
            f.problem(label, answer, status, code)
            return answer

        claims = claims_for(h, "POST", TOKEN)
        other = DeviceKey()
        private = dict(key.jwk) | {"d": b64u(key.private_key.private_numbers().private_value.to_bytes(32, "big"))}
        await token_call("no DPoP header", None, 401, E.DPOP_REQUIRED)
        await token_call("empty DPoP header", "", 401, E.DPOP_REQUIRED)
        await token_call("not a JWT", CANARY, 401, E.DPOP_INVALID)
        await token_call("two segments", f"{b64u(CANARY)}.{b64u(CANARY)}", 401, E.DPOP_INVALID)
        await token_call(
            "four segments", f"{signed(key, dpop_header(key), claims)}.{b64u(CANARY)}", 401, E.DPOP_INVALID
        )
        await token_call(
            "alg none, no signature",
            unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}, claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "alg HS256",
            unsigned({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk}, claims_for(h, "POST", TOKEN), b"x" * 32),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "typ JWT", signed(key, dpop_header(key, typ="JWT"), claims_for(h, "POST", TOKEN)), 401, E.DPOP_INVALID
        )
        await token_call("no jwk", signed(key, {"typ": "dpop+jwt"}, claims_for(h, "POST", TOKEN)), 401, E.DPOP_INVALID)
        await token_call(
            "private key in jwk",
            signed(key, dpop_header(key, jwk=private), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "jwk not on the curve",
            signed(key, dpop_header(key, jwk=dict(key.jwk) | {"y": key.jwk["x"]}), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "jwk of another kind",
            signed(key, dpop_header(key, jwk={"kty": "RSA", "n": CANARY, "e": "AQAB"}), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "crit header",
            signed(key, dpop_header(key, crit=[CANARY]), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "JWT with a giant header (over 4 KiB)",
            signed(key, dpop_header(key, x5c=[CANARY * 600]), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "header is a JSON array", unsigned([CANARY], claims_for(h, "POST", TOKEN), b"\0" * 64), 401, E.DPOP_INVALID
        )
        json_string = f'"{CANARY}"'
        await token_call(
            "payload is a JSON string",
            f"{b64u(dpop_header(key))}.{b64u(json_string)}.{b64u(b'0' * 64)}",
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "padded base64", signed(key, dpop_header(key), claims_for(h, "POST", TOKEN)) + "==", 401, E.DPOP_INVALID
        )
        await token_call(
            "standard base64 alphabet",
            "+/" + signed(key, dpop_header(key), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "bad signature",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN)).rsplit(".", 1)[0] + "." + b64u(b"\1" * 64),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "signed by another key than its jwk",
            signed(other, dpop_header(key), claims_for(h, "POST", TOKEN)),
            401,
            E.DPOP_INVALID,
        )
        await token_call("wrong htm", signed(key, dpop_header(key), claims_for(h, "GET", TOKEN)), 401, E.DPOP_INVALID)
        await token_call(
            "htu of another path", signed(key, dpop_header(key), claims_for(h, "POST", WHOAMI)), 401, E.DPOP_INVALID
        )
        await token_call(
            "htu of another host",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"htu": f"https://{CANARY}.example{TOKEN}"}),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "htu not a URL",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"htu": CANARY}),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "iat in the future",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"iat": int(time.time()) + 3600}),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "iat too old",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"iat": int(time.time()) - 3600}),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "iat a string",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"iat": CANARY}),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "no jti",
            signed(key, dpop_header(key), {k: v for k, v in claims_for(h, "POST", TOKEN).items() if k != "jti"}),
            401,
            E.DPOP_INVALID,
        )
        await token_call(
            "jti of 1000 characters",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"jti": CANARY * 91}),
            401,
            E.DPOP_INVALID,
        )
        no_nonce = await token_call(
            "no nonce",
            signed(key, dpop_header(key), {k: v for k, v in claims_for(h, "POST", TOKEN).items() if k != "nonce"}),
            401,
            E.USE_DPOP_NONCE,
        )
        f.check(
            "use_dpop_nonce carries a DPoP-Nonce",
            no_nonce.header("dpop-nonce") == nonce(h),
            "no fresh DPoP-Nonce header",
            no_nonce,
        )
        await token_call(
            "unknown nonce",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"nonce": CANARY}),
            401,
            E.USE_DPOP_NONCE,
        )
        await token_call(
            "nonce of the right length but forged",
            signed(key, dpop_header(key), claims_for(h, "POST", TOKEN) | {"nonce": "A" * 32}),
            401,
            E.USE_DPOP_NONCE,
        )
        two = await h.web.post(
            TOKEN,
            json=good_body,
            headers=[("DPoP", proof(h, key, "POST", TOKEN)), ("DPoP", proof(h, key, "POST", TOKEN))],
        )
        f.problem("two DPoP headers", two, 401, E.DPOP_INVALID)
        f.problem(
            "a valid proof of an unknown key",
            await h.web.post(TOKEN, json=good_body, headers={"DPoP": proof(h, other, "POST", TOKEN)}),
            400,
            E.INVALID_GRANT,
        )
        f.problem(
            "DPoP value with bytes that are not ASCII",
            await raw_call(
                h.app,
                "POST",
                TOKEN.encode(),
                body=b'{"grantType":"device_key"}',
                headers=[
                    (b"content-type", b"application/json"),
                    (b"dpop", b"\xff\xfe." + CANARY.encode() + b".\x00\x80"),
                ],
            ),
            401,
            E.DPOP_INVALID,
        )

        replayed = proof(h, key, "POST", TOKEN)
        first = await h.web.post(TOKEN, json=good_body, headers={"DPoP": replayed})
        f.check("a valid proof works once", first.status_code == 200, "refused", first)
        f.problem(
            "the same proof again",
            await h.web.post(TOKEN, json=good_body, headers={"DPoP": replayed}),
            401,
            E.DPOP_REPLAYED,
        )
        f.assert_clean()


async def test_malformed_proofs_on_token_bound_calls(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        f = Findings()

        async def whoami(label: str, headers: dict[str, str], status: int, code: E | None) -> None:
            response = await h.web.get(WHOAMI, headers=headers)
            if code is None:
                f.check(label, response.status_code == status, f"expected {status}", response)
            else:
                f.problem(label, response, status, code)

        auth = {"Authorization": f"DPoP {phone.token}"}
        await whoami("valid token and proof", phone.auth(h, "GET", WHOAMI), 200, None)
        await whoami("token without proof", auth, 401, E.DPOP_REQUIRED)
        await whoami("garbage proof", auth | {"DPoP": CANARY}, 401, E.DPOP_INVALID)
        await whoami("proof without ath", auth | {"DPoP": proof(h, phone.key, "GET", WHOAMI)}, 401, E.DPOP_INVALID)
        await whoami(
            "proof with the ath of another token",
            auth
            | {
                "DPoP": signed(
                    phone.key, dpop_header(phone.key), claims_for(h, "GET", WHOAMI, ath=access_token_hash(CANARY))
                )
            },
            401,
            E.DPOP_INVALID,
        )
        await whoami(
            "proof by a key the token is not bound to",
            auth | {"DPoP": proof(h, DeviceKey(), "GET", WHOAMI, token=phone.token)},
            401,
            E.DPOP_INVALID,
        )
        await whoami(
            "alg none proof",
            auth
            | {
                "DPoP": unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": phone.key.jwk}, claims_for(h, "GET", WHOAMI))
            },
            401,
            E.DPOP_INVALID,
        )
        replayed = phone.auth(h, "GET", WHOAMI)
        await whoami("first use of a proof", replayed, 200, None)
        await whoami("replayed proof", replayed, 401, E.DPOP_REPLAYED)
        f.assert_clean()


# the Authorization header ------------------------------------------------------------------------


async def test_malformed_authorization_headers(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        f = Findings()

        async def whoami(label: str, authorization: str | None, status: int, code: E | None) -> None:
            token = (authorization or "").partition(" ")[2].strip() or None
            headers = {"DPoP": proof(h, phone.key, "GET", WHOAMI, token=token)}
            if authorization is not None:
                headers["Authorization"] = authorization
            response = await h.web.get(WHOAMI, headers=headers)
            if code is None:
                f.check(label, response.status_code == status, f"expected {status}", response)
            else:
                f.problem(label, response, status, code)

        signing_kid = h.container.signing_keys.signing_key.kid
        forged_claims = {
            "iss": BASE,
            "sub": CANARY,
            "cnf": {"jkt": phone.key.jkt},
            "scope": "device",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        }
        await whoami("no Authorization", None, 401, E.AUTH_REQUIRED)
        await whoami("Bearer scheme with the real token", f"Bearer {phone.token}", 401, E.DPOP_REQUIRED)
        await whoami("Basic scheme", f"Basic {b64u(CANARY)}", 401, E.DPOP_REQUIRED)
        await whoami("scheme only", "DPoP", 401, E.AUTH_REQUIRED)
        await whoami("lower-case scheme (schemes are case-insensitive)", f"dpop {phone.token}", 200, None)
        await whoami("not a JWT", f"DPoP {CANARY}", 401, E.INVALID_TOKEN)
        await whoami(
            "alg none access token",
            "DPoP " + unsigned({"typ": "at+jwt", "alg": "none", "kid": signing_kid}, forged_claims),
            401,
            E.INVALID_TOKEN,
        )
        await whoami(
            "access token signed by the phone",
            "DPoP " + signed(phone.key, {"typ": "at+jwt", "kid": signing_kid}, forged_claims),
            401,
            E.INVALID_TOKEN,
        )
        await whoami(
            "access token with an unknown kid",
            "DPoP " + signed(phone.key, {"typ": "at+jwt", "kid": CANARY}, forged_claims),
            401,
            E.INVALID_TOKEN,
        )
        await whoami(
            "DPoP proof presented as the token", "DPoP " + proof(h, phone.key, "GET", WHOAMI), 401, E.INVALID_TOKEN
        )
        await whoami(
            "JWT with a giant header (7 KiB)",
            "DPoP " + signed(phone.key, {"typ": "at+jwt", "kid": signing_kid, "x": CANARY * 520}, forged_claims),
            401,
            E.INVALID_TOKEN,
        )
        await whoami("token over 8 KiB", f"DPoP {b64u(CANARY * 900)}.e30.AA", 401, E.INVALID_TOKEN)
        await whoami(
            "real token, one character changed",
            f"DPoP {phone.token[:-3]}{'A' if phone.token[-3] != 'A' else 'B'}{phone.token[-2:]}",
            401,
            E.INVALID_TOKEN,
        )
        f.problem(
            "token with bytes that are not ASCII",
            await raw_call(
                h.app,
                "GET",
                WHOAMI.encode(),
                headers=[
                    (b"authorization", b"DPoP \xff\xfe" + CANARY.encode() + b".\x80.\x00"),
                    (b"dpop", proof(h, phone.key, "GET", WHOAMI).encode()),
                ],
            ),
            401,
            E.INVALID_TOKEN,
        )
        f.problem(
            "API error with Accept: text/html stays problem+json",
            await h.web.get(WHOAMI, headers={"Accept": "text/html"}),
            401,
            E.AUTH_REQUIRED,
        )
        f.assert_clean()


# enrolment ---------------------------------------------------------------------------------------


def _claim_body(**changes: Any) -> dict[str, Any]:
    return {
        "secretProof": "x" * 43,
        "deviceName": "Pixel",
        "platform": "android",
        "binding": "es256",
        "push": {"provider": "none", "token": None},
    } | changes


async def test_enrolment_endpoints_refuse_malformed_ids_and_bodies(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await _logged_in(h)
        key, f = DeviceKey(), Findings()

        async def claim(label: str, rdv: str, body: Any, status: int, code: E) -> None:
            path = f"/api/v1/enrolments/{rdv}/claim"
            f.problem(
                label, await h.web.post(path, json=body, headers={"DPoP": proof(h, key, "POST", path)}), status, code
            )

        # path parameter: 16..64 characters of [A-Za-z0-9_-]
        for label, rdv in (
            ("id too short", CANARY),
            ("id too long", CANARY * 7),
            ("id with characters out of the pattern", f"{CANARY}!!{CANARY}"),
            ("id with spaces", f"{CANARY}%20{CANARY}"),
            ("id with percent-encoded UTF-8", f"{CANARY}%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9"),
            ("id with an encoded NUL", f"{CANARY}%00{CANARY}"),
        ):
            await claim(label, rdv, _claim_body(), 400, E.VALIDATION_FAILED)
            path = f"/api/v1/enrolments/{rdv}"
            f.problem(
                f"GET status, {label}",
                await h.web.get(path, headers={"DPoP": proof(h, key, "GET", path)}),
                400,
                E.VALIDATION_FAILED,
            )
        f.one_of(
            "id with an encoded slash",
            await h.web.post(
                f"/api/v1/enrolments/{CANARY}%2F{CANARY}/claim",
                json=_claim_body(),
                headers={"DPoP": proof(h, key, "POST", f"/api/v1/enrolments/{CANARY}%2F{CANARY}/claim")},
            ),
            [(404, E.NOT_FOUND), (400, E.VALIDATION_FAILED), (401, E.DPOP_INVALID)],
        )
        f.problem(
            "id with bytes that are not UTF-8",
            await raw_call(
                h.app,
                "GET",
                b"/api/v1/enrolments/" + CANARY.encode() + b"%FF%FE%FD" + CANARY.encode(),
                headers=[(b"dpop", proof(h, key, "GET", f"/api/v1/enrolments/{CANARY}%FF%FE%FD{CANARY}").encode())],
            ),
            400,
            E.VALIDATION_FAILED,
        )

        # claim bodies
        await claim("unknown field", RDV_OK, _claim_body(**{CANARY: CANARY}), 400, E.VALIDATION_FAILED)
        await claim("unknown platform", RDV_OK, _claim_body(platform=CANARY), 400, E.VALIDATION_FAILED)
        await claim("unknown binding", RDV_OK, _claim_body(binding=CANARY), 400, E.VALIDATION_FAILED)
        await claim("device name over 64", RDV_OK, _claim_body(deviceName=CANARY * 6), 400, E.VALIDATION_FAILED)
        await claim("empty device name", RDV_OK, _claim_body(deviceName=""), 400, E.VALIDATION_FAILED)
        await claim("secretProof too short", RDV_OK, _claim_body(secretProof=CANARY), 400, E.VALIDATION_FAILED)
        await claim("secretProof over 128", RDV_OK, _claim_body(secretProof=CANARY * 12), 400, E.VALIDATION_FAILED)
        await claim("unknown push provider", RDV_OK, _claim_body(push={"provider": CANARY}), 400, E.VALIDATION_FAILED)
        await claim(
            "unknown field in push", RDV_OK, _claim_body(push={"provider": "none", CANARY: 1}), 400, E.VALIDATION_FAILED
        )
        await claim(
            "push token over 512",
            RDV_OK,
            _claim_body(push={"provider": "fcm", "token": CANARY * 47}),
            400,
            E.VALIDATION_FAILED,
        )
        await claim("push is a list", RDV_OK, _claim_body(push=[CANARY]), 400, E.VALIDATION_FAILED)
        await claim("well-formed claim of an unknown rendezvous", RDV_OK, _claim_body(), 404, E.ENROLMENT_NOT_FOUND)
        for verb in ("bind", "complete"):
            path = f"/api/v1/enrolments/{RDV_OK}/{verb}"
            f.problem(
                f"{verb} of an unknown rendezvous",
                await h.web.post(
                    path, json={} if verb == "bind" else None, headers={"DPoP": proof(h, key, "POST", path)}
                ),
                404,
                E.ENROLMENT_NOT_FOUND,
            )

        # a real rendezvous, claimed by a real phone
        _, qr_url = await h.open_enrolment()
        phone = h.phone()
        rdv = qr_url.split("/e/", 1)[1].split("#", 1)[0]
        bad = f"/api/v1/enrolments/{rdv}/claim"
        f.problem(
            "claim with a wrong secret proof",
            await h.web.post(
                bad, json=_claim_body(secretProof=CANARY * 3), headers={"DPoP": proof(h, key, "POST", bad)}
            ),
            403,
            E.ENROLMENT_BAD_SECRET,
        )
        _, qr_url = await h.open_enrolment()
        await phone.claim(qr_url, name="Pixel")
        rdv = phone.rendezvous.rendezvous_id  # type: ignore[union-attr]
        bind = f"/api/v1/enrolments/{rdv}/bind"

        async def bind_call(label: str, body: Any, status: int, code: E, signer: DeviceKey | None = None) -> None:
            signer = signer or phone.state.key
            f.problem(
                label, await h.web.post(bind, json=body, headers={"DPoP": proof(h, signer, "POST", bind)}), status, code
            )

        await bind_call("es256Signature not a JWS", {"es256Signature": CANARY}, 400, E.BINDING_INVALID)
        await bind_call(
            "es256Signature alg none",
            {
                "es256Signature": unsigned(
                    {"typ": "mssc-bind+jwt", "alg": "none"}, {"rdv": rdv, "challenge": CANARY, "aud": BASE}
                )
            },
            400,
            E.BINDING_INVALID,
        )
        await bind_call(
            "es256Signature header a JSON array",
            {"es256Signature": unsigned([CANARY], {"rdv": rdv}, b"\0" * 64)},
            400,
            E.BINDING_INVALID,
        )
        await bind_call(
            "es256Signature over the wrong challenge",
            {"es256Signature": phone.state.key.bind_signature(rendezvous_id=rdv, challenge=CANARY, audience=BASE)},
            400,
            E.BINDING_INVALID,
        )
        await bind_call("es256Signature over 4096", {"es256Signature": CANARY * 400}, 400, E.VALIDATION_FAILED)
        await bind_call(
            "WebAuthn credential on an ES256 claim", {"webauthnCredential": {CANARY: CANARY}}, 400, E.BINDING_INVALID
        )
        await bind_call("unknown field", {"es256Signature": CANARY, CANARY: 1}, 400, E.VALIDATION_FAILED)
        await bind_call("empty body", {}, 400, E.BINDING_INVALID)
        await bind_call("bound by another key", {"es256Signature": CANARY}, 400, E.BINDING_INVALID, DeviceKey())
        complete = f"/api/v1/enrolments/{rdv}/complete"
        f.problem(
            "complete before the web confirmation",
            await h.web.post(complete, headers={"DPoP": proof(h, phone.state.key, "POST", complete)}),
            409,
            E.ENROLMENT_PENDING,
        )
        status = f"/api/v1/enrolments/{rdv}"
        f.problem(
            "status asked by another key",
            await h.web.get(status, headers={"DPoP": proof(h, DeviceKey(), "GET", status)}),
            404,
            E.ENROLMENT_NOT_FOUND,
        )
        f.assert_clean()


async def test_webauthn_enrolment_and_token_refuse_junk(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await _logged_in(h)
        f = Findings()
        _, qr_url = await h.open_enrolment()
        claimer = h.phone()
        await claimer.claim(qr_url, name="Clé", binding="webauthn")
        rdv = claimer.rendezvous.rendezvous_id  # type: ignore[union-attr]
        bind = f"/api/v1/enrolments/{rdv}/bind"
        junk: list[Any] = [
            {CANARY: CANARY},
            {"id": CANARY, "rawId": CANARY, "type": "public-key", "response": CANARY},
            {
                "id": CANARY,
                "rawId": CANARY,
                "type": "public-key",
                "response": {"clientDataJSON": b64u({"type": CANARY}), "attestationObject": b64u(CANARY)},
            },
            {"id": 1, "rawId": [], "type": None, "response": {"clientDataJSON": 5, "attestationObject": {}}},
        ]
        for index, credential in enumerate(junk):
            f.problem(
                f"WebAuthn registration junk #{index}",
                await h.web.post(
                    bind,
                    json={"webauthnCredential": credential},
                    headers={"DPoP": proof(h, claimer.state.key, "POST", bind)},
                ),
                400,
                E.BINDING_INVALID,
            )
        f.problem(
            "ES256 signature on a WebAuthn claim",
            await h.web.post(
                bind, json={"es256Signature": CANARY}, headers={"DPoP": proof(h, claimer.state.key, "POST", bind)}
            ),
            400,
            E.BINDING_INVALID,
        )

        phone = await enrolled(h, binding="webauthn", name="Clé WebAuthn")
        key = phone.key
        f.problem(
            "WebAuthn grant before asking a challenge",
            await _post(h, key, TOKEN, json={"grantType": "webauthn", "webauthnAssertion": {CANARY: CANARY}}),
            400,
            E.INVALID_GRANT,
        )
        for index, assertion in enumerate(
            [
                {CANARY: CANARY},
                {
                    "id": CANARY,
                    "rawId": CANARY,
                    "type": "public-key",
                    "response": {"clientDataJSON": "e30", "authenticatorData": CANARY, "signature": "AA"},
                },
            ]
        ):
            challenge = await _post(h, key, "/api/v1/token/webauthn-challenge")
            f.check("challenge", challenge.status_code == 200, "no WebAuthn challenge", challenge)
            f.problem(
                f"WebAuthn assertion junk #{index}",
                await _post(h, key, TOKEN, json={"grantType": "webauthn", "webauthnAssertion": assertion}),
                400,
                E.INVALID_GRANT,
            )
        f.problem(
            "WebAuthn grant without an assertion",
            await _post(h, key, TOKEN, json={"grantType": "webauthn"}),
            400,
            E.VALIDATION_FAILED,
        )
        f.problem(
            "device_key grant for a WebAuthn device",
            await _post(h, key, TOKEN, json={"grantType": "device_key"}),
            400,
            E.INVALID_GRANT,
        )
        f.assert_clean()


# the device's own resources ----------------------------------------------------------------------


async def test_device_endpoints_refuse_malformed_input(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        f = Findings()
        push = "/api/v1/me/push"

        async def put(label: str, status: int, code: E, *, json: Any = None, content: bytes | None = None) -> None:
            headers = phone.auth(h, "PUT", push) | ({"Content-Type": "application/json"} if content else {})
            f.problem(label, await h.web.put(push, json=json, content=content, headers=headers), status, code)

        await put("unknown provider", 400, E.VALIDATION_FAILED, json={"provider": CANARY})
        await put("empty token", 400, E.VALIDATION_FAILED, json={"provider": "fcm", "token": ""})
        await put("token over 512", 400, E.VALIDATION_FAILED, json={"provider": "fcm", "token": CANARY * 47})
        await put("unknown field", 400, E.VALIDATION_FAILED, json={"provider": "fcm", CANARY: CANARY})
        await put("token a number", 400, E.VALIDATION_FAILED, json={"provider": "fcm", "token": 7})
        await put("not JSON", 400, E.BAD_REQUEST, content=CANARY.encode())
        await put(
            "body over 256 KiB",
            413,
            E.PAYLOAD_TOO_LARGE,
            content=b'{"provider":"fcm","token":"' + CANARY.encode() * 30000 + b'"}',
        )
        f.problem(
            "push without a token",
            await h.web.put(push, json={"provider": "fcm"}, headers={"DPoP": proof(h, phone.key, "PUT", push)}),
            401,
            E.AUTH_REQUIRED,
        )
        wipe = "/api/v1/me/wipe-ack"
        f.problem(
            "wipe acknowledgement of a device that is not revoked",
            await h.web.post(wipe, headers=phone.auth(h, "POST", wipe)),
            404,
            E.DEVICE_NOT_FOUND,
        )
        f.problem(
            "wipe acknowledgement without a token",
            await h.web.post(wipe, headers={"DPoP": proof(h, phone.key, "POST", wipe)}),
            401,
            E.AUTH_REQUIRED,
        )
        f.problem(
            "WebAuthn challenge for an ES256 device",
            await _post(h, phone.key, "/api/v1/token/webauthn-challenge"),
            400,
            E.INVALID_GRANT,
        )
        f.problem(
            "WebAuthn challenge for an unknown key",
            await _post(h, DeviceKey(), "/api/v1/token/webauthn-challenge"),
            400,
            E.INVALID_GRANT,
        )
        me = await h.web.get("/api/v1/me", headers=phone.auth(h, "GET", "/api/v1/me"))
        f.check("the device is unharmed", me.status_code == 200 and me.json()["idnat"] == NURSE, "GET /me failed", me)
        f.assert_clean()


async def test_null_characters_are_refused_not_stored(backends: Backends, tmp_path: Path) -> None:
    """U+0000 in a name or a push token: PostgreSQL cannot store it, SQLite stores it silently.

    Both are wrong: it is bad input and gets ``validation_failed`` before anything is stored.
    """
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        f = Findings()
        push = "/api/v1/me/push"
        f.problem(
            "push token with U+0000",
            await h.web.put(push, json={"provider": "fcm", "token": "a\u0000b"}, headers=phone.auth(h, "PUT", push)),
            400,
            E.VALIDATION_FAILED,
        )
        _, qr_url = await h.open_enrolment()
        qr, key = QrCode.parse(qr_url), DeviceKey()
        path = f"/api/v1/enrolments/{qr.rendezvous_id}/claim"
        body = _claim_body(
            secretProof=claim_proof(qr.secret, qr.rendezvous_id, key.jkt), deviceName="Pixel\u0000de test"
        )
        f.problem(
            "device name with U+0000 (claim of a real QR code)",
            await h.web.post(path, json=body, headers={"DPoP": proof(h, key, "POST", path)}),
            400,
            E.VALIDATION_FAILED,
        )
        f.assert_clean()


async def test_query_strings_that_are_not_utf8(backends: Backends, tmp_path: Path) -> None:
    """The API ignores query strings; bytes that are not UTF-8 in one must not break a call."""
    async with running(backends, tmp_path) as h:
        phone = await _phone(h)
        f = Findings()
        headers = [(k.lower().encode(), v.encode()) for k, v in phone.auth(h, "GET", WHOAMI).items()]
        answer = await raw_call(h.app, "GET", WHOAMI.encode(), query=b"x=\xff\xfe" + CANARY.encode(), headers=headers)
        f.check("authenticated call with a query that is not UTF-8", answer.status == 200, "the call failed", answer)
        f.problem(
            "anonymous call with a query that is not UTF-8",
            await raw_call(h.app, "GET", WHOAMI.encode(), query=b"\xff" + CANARY.encode()),
            401,
            E.AUTH_REQUIRED,
        )
        f.problem(
            "proof-only call with a query that is not UTF-8",
            await raw_call(
                h.app,
                "POST",
                TOKEN.encode(),
                query=b"\xff" + CANARY.encode(),
                body=b'{"grantType":"device_key"}',
                headers=[(b"content-type", b"application/json")],
            ),
            401,
            E.DPOP_REQUIRED,
        )
        f.assert_clean()


# paths and methods -------------------------------------------------------------------------------


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_unknown_paths_and_wrong_methods(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        f = Findings()
        for path in (
            f"/api/v1/{CANARY}",
            f"/api/v2/whoami/{CANARY}",
            f"/api/v1/me/{CANARY}",
            f"/api/v1/enrolments/{RDV_OK}/{CANARY}",
            "/api/v1/enrolments/",
            f"/.well-known/{CANARY}",
        ):
            f.problem(f"GET {path}", await h.web.get(path, headers={"Accept": "application/json"}), 404, E.NOT_FOUND)
        for method, path in (
            ("POST", WHOAMI),
            ("DELETE", "/api/v1/me"),
            ("GET", TOKEN),
            ("PATCH", "/api/v1/me/push"),
            ("GET", f"/api/v1/enrolments/{RDV_OK}/claim"),
            ("PUT", f"/api/v1/enrolments/{RDV_OK}"),
            ("POST", "/health/live"),
            ("PUT", "/.well-known/jwks.json"),
            ("DELETE", "/schema"),
            ("TRACE", TOKEN),
            (CANARY.upper().replace("-", ""), TOKEN),
        ):
            f.problem(
                f"{method} {path}",
                await h.web.request(method, path, headers={"Accept": "application/json"}),
                405,
                E.METHOD_NOT_ALLOWED,
            )
        f.problem(
            "path with bytes that are not UTF-8",
            await raw_call(h.app, "GET", b"/api/v1/" + CANARY.encode() + b"%FF%FE"),
            404,
            E.NOT_FOUND,
        )
        f.assert_clean()
