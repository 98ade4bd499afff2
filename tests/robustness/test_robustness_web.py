"""Hand-written malformed input for every web page and form: status + stable problem ``code``,
never a 500, never the injected :data:`CANARY` in the answer (body or headers, ``Location`` too).

Outside ``/api``, a browser (``Accept: text/html``) gets the French HTML error page and anything
else gets problem+json; both are checked for a few cases.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from robustness_helpers import (
    CANARY,
    MAX_BODY,
    Answer,
    Findings,
    asgi_client,
    enrolled,
    html_accept,
    json_accept,
    raw_call,
)

from contracts.errors import STATUS, TITLES, problem_type
from contracts.errors import ErrorCode as E
from tests.conftest import Backends
from tests.harness import NURSE, TITULAIRE, Harness, running

UNKNOWN = str(uuid.UUID(int=0x7F3A))
#: Identifiers that are not UUIDs (each carries the canary, or bytes a browser would not send).
NOT_UUIDS = (
    "not-a-uuid",
    f"{CANARY}",
    "00000000-0000-0000-0000-00000000000g",
    f"{UNKNOWN}{CANARY}",
    f"{CANARY}%00",
    f"{CANARY}%C3%A9",
    CANARY * 30,
)

#: Every form of the web side: path (``{id}`` is replaced) and fields other than the CSRF token.
FORMS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/connexion/structure", {"structure": CANARY, "next": "/"}),
    ("/deconnexion", {}),
    ("/appareils/{id}/renommer", {"name": "Nouveau nom"}),
    ("/appareils/{id}/revoquer", {}),
    ("/enrolement/{rdv}/confirmer", {}),
    ("/enrolement/{rdv}/refuser", {}),
    ("/equipe/membres", {"rpps": "10009876543"}),
    ("/equipe/membres/{id}/accepter", {}),
    ("/equipe/membres/{id}/retirer", {}),
    ("/equipe/droits", {"mailbox": UNKNOWN, "professional": UNKNOWN, "read": "1"}),
    ("/equipe/messageries", {"address": "accueil@pharmacie-test.mssante.fr", "name": "Accueil"}),
    ("/equipe/appareils/{id}/revoquer", {}),
)
#: Pages that need a logged-in session.
PAGES = (
    "/appareils",
    "/enrolement",
    "/enrolement/{rdv}",
    "/enrolement/{rdv}/statut",
    "/equipe",
    "/equipe/journal",
    "/equipe/journal.jsonl",
    "/connexion/structure",
)


#: Right answers to an unknown or malformed rendezvous id (``not_found`` when an encoded ``/`` splits the path).
REFUSED_RDV = [(404, E.ENROLMENT_NOT_FOUND), (400, E.VALIDATION_FAILED), (404, E.NOT_FOUND)]


def _fill(path: str) -> str:
    return path.replace("{id}", UNKNOWN).replace("{rdv}", "A" * 32)


async def _login(h: Harness, idnat: str = TITULAIRE) -> str:
    """Log in through the PSC sandbox; returns the session's CSRF token."""
    landing = await h.login(idnat)
    assert landing.status_code in (302, 303), (landing.status_code, landing.text[:300])
    page = await h.web.get("/appareils")
    assert page.status_code == 200, f"the web login did not stick: {page.status_code} {page.text[:300]}"
    return h.csrf(page.text)


def _cookie(h: Harness) -> bytes:
    name = h.container.sessions.cookie_name
    return f"{name}={h.web.cookies.get(name)}".encode()


# CSRF and login ----------------------------------------------------------------------------------


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        await _login(h)
        f = Findings()
        for template, fields in FORMS:
            path = _fill(template)
            f.problem(f"{path} without csrf_token", await h.web.post(path, data=fields), 403, E.CSRF_FAILED)
            f.problem(
                f"{path} with a wrong csrf_token",
                await h.web.post(path, data=fields | {"csrf_token": CANARY}),
                403,
                E.CSRF_FAILED,
            )
            f.problem(
                f"{path} with an empty csrf_token",
                await h.web.post(path, data=fields | {"csrf_token": ""}),
                403,
                E.CSRF_FAILED,
            )
            f.problem(
                f"{path} with csrf_token in the query string",
                await h.web.post(path, params={"csrf_token": CANARY}, data=fields),
                403,
                E.CSRF_FAILED,
            )
            f.problem(
                f"{path} with csrf_token in a JSON body",
                await h.web.post(path, json=fields | {"csrf_token": CANARY}),
                403,
                E.CSRF_FAILED,
            )
            f.problem(
                f"{path} with a csrf_token of 100 KiB",
                await h.web.post(path, data=fields | {"csrf_token": CANARY * 9000}),
                403,
                E.CSRF_FAILED,
            )
        # the session survived all of that
        f.check("still logged in", (await h.web.get("/appareils")).status_code == 200, "session lost")
        f.assert_clean()


async def test_pages_and_forms_need_a_session(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        f = Findings()
        name = h.container.sessions.cookie_name
        for cookie in (None, CANARY, CANARY * 2000, f"{CANARY};{CANARY}=="):
            label = "no cookie" if cookie is None else f"cookie {cookie[:12]!r}…"
            h.web.cookies.clear()
            if cookie is not None:
                h.web.cookies.set(name, cookie)
            for template in PAGES:
                f.problem(
                    f"GET {template}, {label}",
                    await h.web.get(_fill(template), headers=json_accept()),
                    401,
                    E.LOGIN_REQUIRED,
                )
            for template, fields in FORMS:
                f.problem(
                    f"POST {template}, {label}",
                    await h.web.post(_fill(template), data=fields | {"csrf_token": CANARY}, headers=json_accept()),
                    401,
                    E.LOGIN_REQUIRED,
                )
        f.problem(
            "cookie header with bytes that are not ASCII",
            await raw_call(
                h.app,
                "GET",
                b"/appareils",
                headers=[
                    (b"cookie", name.encode() + b"=\xff\xfe" + CANARY.encode() + b"; \x00=\x01"),
                    (b"accept", b"application/json"),
                ],
            ),
            401,
            E.LOGIN_REQUIRED,
        )
        f.problem(
            "cookie header that does not parse",
            await raw_call(
                h.app,
                "GET",
                b"/appareils",
                headers=[
                    (b"cookie", b';;;==;="' + CANARY.encode() + b'\\";' + name.encode()),
                    (b"accept", b"application/json"),
                ],
            ),
            401,
            E.LOGIN_REQUIRED,
        )
        f.assert_clean()


# identifiers in paths and fields -----------------------------------------------------------------


async def test_invalid_identifiers_in_form_paths(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        csrf = await _login(h)
        f = Findings()
        for bad in (*NOT_UUIDS, UNKNOWN):
            data = {"csrf_token": csrf}
            f.problem(
                f"revoke device {bad[:20]}",
                await h.web.post(f"/appareils/{bad}/revoquer", data=data),
                404,
                E.DEVICE_NOT_FOUND,
            )
            f.problem(
                f"rename device {bad[:20]}",
                await h.web.post(f"/appareils/{bad}/renommer", data=data | {"name": "Nom"}),
                404,
                E.DEVICE_NOT_FOUND,
            )
            f.problem(
                f"approve member {bad[:20]}",
                await h.web.post(f"/equipe/membres/{bad}/accepter", data=data),
                404,
                E.MEMBER_NOT_FOUND,
            )
            f.problem(
                f"remove member {bad[:20]}",
                await h.web.post(f"/equipe/membres/{bad}/retirer", data=data),
                404,
                E.MEMBER_NOT_FOUND,
            )
            f.problem(
                f"revoke team device {bad[:20]}",
                await h.web.post(f"/equipe/appareils/{bad}/revoquer", data=data),
                404,
                E.DEVICE_NOT_FOUND,
            )
        for bad in NOT_UUIDS:
            f.problem(
                f"grant on mailbox {bad[:20]}",
                await h.web.post(
                    "/equipe/droits", data={"csrf_token": csrf, "mailbox": bad, "professional": UNKNOWN, "read": "1"}
                ),
                404,
                E.MAILBOX_NOT_FOUND,
            )
        f.problem(
            "grant on an unknown mailbox",
            await h.web.post("/equipe/droits", data={"csrf_token": csrf, "mailbox": UNKNOWN, "professional": UNKNOWN}),
            404,
            E.MAILBOX_NOT_FOUND,
        )
        f.problem(
            "grant with no mailbox field",
            await h.web.post("/equipe/droits", data={"csrf_token": csrf}),
            404,
            E.MAILBOX_NOT_FOUND,
        )
        f.problem(
            "unknown structure choice",
            await h.web.post(
                "/connexion/structure", data={"csrf_token": csrf, "structure": CANARY, "next": f"//{CANARY}.example"}
            ),
            403,
            E.NO_ACTIVITY,
        )
        f.assert_clean()


async def test_enrolment_pages_with_malformed_rendezvous_ids(backends: Backends, tmp_path: Path) -> None:
    """Unknown or malformed ids: a problem, or a redirect that does not carry the id back."""
    async with running(backends, tmp_path) as h:
        csrf = await _login(h)
        f = Findings()
        ids = (
            CANARY,
            CANARY * 20,
            f"{CANARY}%0D%0ASet-Cookie:%20x={CANARY}",
            f"{CANARY}%3Ferreur=device_limit_reached",
            f"{CANARY}%2F%2F{CANARY}.example",
            f"{CANARY}%00",
            f"{CANARY}%C3%A9",
        )
        for rdv in ids:
            for page in (f"/enrolement/{rdv}", f"/enrolement/{rdv}/statut"):
                f.one_of(
                    f"GET {page[:50]}",
                    await h.web.get(page),
                    REFUSED_RDV,
                )
            for verb in ("confirmer", "refuser"):
                answer = Answer.of(await h.web.post(f"/enrolement/{rdv}/{verb}", data={"csrf_token": csrf}))
                label = f"POST /enrolement/{rdv[:40]}…/{verb}"
                if answer.status == 303:
                    location = answer.header("location") or ""
                    f.check(
                        label,
                        CANARY not in location and location.startswith("/enrolement/"),
                        f"the redirect carries the input back: Location {location!r}",
                        answer,
                    )
                    query = parse_qs(urlsplit(location).query)
                    f.check(
                        label,
                        query.get("erreur", [""])[-1] in ("", "enrolment_not_found"),
                        f"the redirect's query was rewritten by the input: {query}",
                        answer,
                    )
                else:
                    f.one_of(label, answer, REFUSED_RDV)
        f.problem(
            "rendezvous id with bytes that are not UTF-8",
            await raw_call(
                h.app,
                "GET",
                b"/enrolement/" + CANARY.encode() + b"%FF%FE",
                headers=[(b"cookie", _cookie(h)), (b"accept", b"application/json")],
            ),
            404,
            E.ENROLMENT_NOT_FOUND,
        )
        f.assert_clean()


# form bodies -------------------------------------------------------------------------------------


async def test_malformed_form_bodies(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        csrf = await _login(h, NURSE)
        phone = await enrolled(h, name="Avant")
        device = phone.client.state.device_id
        rename = f"/appareils/{device}/renommer"
        f = Findings()
        token = f"csrf_token={csrf}".encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}

        async def post(label: str, content: bytes, headers: dict[str, str], allowed: list[tuple[int, E]]) -> None:
            answer = Answer.of(await h.web.post(rename, content=content, headers=headers))
            if answer.status == 303:  # accepted: the name was stored as decoded, with replacement characters
                f.check(label, answer.header("location") == "/appareils?ok=renomme", "odd redirect", answer)
            else:
                f.one_of(label, answer, allowed)

        f.problem(
            "name over 64 characters",
            await h.web.post(rename, data={"csrf_token": csrf, "name": CANARY * 6}),
            400,
            E.VALIDATION_FAILED,
        )
        f.problem(
            "name over the 512 field limit",
            await h.web.post(rename, data={"csrf_token": csrf, "name": CANARY * 60}),
            400,
            E.VALIDATION_FAILED,
        )
        f.problem(
            "empty name", await h.web.post(rename, data={"csrf_token": csrf, "name": "   "}), 400, E.VALIDATION_FAILED
        )
        f.problem("no name field", await h.web.post(rename, data={"csrf_token": csrf}), 400, E.VALIDATION_FAILED)
        await post(
            "raw bytes that are not UTF-8",
            token + b"&name=\xff\xfe" + CANARY.encode(),
            form,
            [(400, E.BAD_REQUEST), (400, E.VALIDATION_FAILED)],
        )
        await post(
            "percent-encoded bytes that are not UTF-8",
            token + b"&name=%FF%FE" + CANARY.encode(),
            form,
            [(400, E.BAD_REQUEST), (400, E.VALIDATION_FAILED)],
        )
        await post(
            "form that does not parse",
            token + b"&&&==&%%%&name" + CANARY.encode() + b"=%",
            form,
            [(400, E.BAD_REQUEST), (400, E.VALIDATION_FAILED)],
        )
        await post(
            "multipart with garbage",
            b"--xyz\r\n" + CANARY.encode(),
            {"Content-Type": "multipart/form-data; boundary=xyz"},
            [(400, E.BAD_REQUEST), (400, E.VALIDATION_FAILED), (403, E.CSRF_FAILED)],
        )
        await post(
            "multipart without a boundary",
            b"--xyz\r\n" + CANARY.encode(),
            {"Content-Type": "multipart/form-data"},
            [(400, E.BAD_REQUEST), (400, E.VALIDATION_FAILED), (415, E.UNSUPPORTED_MEDIA_TYPE), (403, E.CSRF_FAILED)],
        )
        await post(
            "multipart with a file instead of a field",
            (
                b'--xyz\r\nContent-Disposition: form-data; name="csrf_token"; filename="'
                + CANARY.encode()
                + b'"\r\nContent-Type: text/plain\r\n\r\n'
                + csrf.encode()
                + b"\r\n--xyz--\r\n"
            ),
            {"Content-Type": "multipart/form-data; boundary=xyz"},
            [(403, E.CSRF_FAILED)],
        )
        await post(
            "JSON instead of a form",
            f'{{"csrf_token":"{csrf}","name":"{CANARY}"}}'.encode(),
            {"Content-Type": "application/json"},
            [(403, E.CSRF_FAILED), (415, E.UNSUPPORTED_MEDIA_TYPE)],
        )
        f.problem(
            "form over 256 KiB",
            await h.web.post(rename, content=token + b"&name=" + b"A" * (MAX_BODY + 10), headers=form),
            413,
            E.PAYLOAD_TOO_LARGE,
        )
        f.problem(
            "form over 256 KiB without a Content-Length",
            await raw_call(
                h.app,
                "POST",
                rename.encode(),
                body=token + b"&name=" + b"A" * (MAX_BODY + 10),
                headers=[
                    (b"cookie", _cookie(h)),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", b"10"),
                ],
            ),
            413,
            E.PAYLOAD_TOO_LARGE,
        )
        f.one_of(
            "Content-Length that is not a number",
            await raw_call(
                h.app,
                "POST",
                rename.encode(),
                body=token + b"&name=x",
                headers=[
                    (b"cookie", _cookie(h)),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", CANARY.encode()),
                ],
            ),
            [(400, E.BAD_REQUEST)],
        )
        devices = await h.web.get("/appareils")
        f.check("the device page still renders", devices.status_code == 200, "devices page broken", devices)
        f.assert_clean()


async def test_team_form_values(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        csrf = await _login(h)
        f = Findings()

        async def member(label: str, rpps: str) -> None:
            f.problem(
                label,
                await h.web.post("/equipe/membres", data={"csrf_token": csrf, "rpps": rpps}),
                400,
                E.VALIDATION_FAILED,
            )

        await member("RPPS not digits", CANARY)
        await member("RPPS too long", "1" * 12)
        await member("RPPS with a NUL", "1234567890\x00")
        await member("RPPS in Arabic-Indic digits", "".join(chr(0x0660 + int(d)) for d in "12345678901"))
        await member("RPPS in full-width digits", "".join(chr(0xFF10 + int(d)) for d in "12345678901"))
        for label, address in (
            ("not an address", CANARY),
            ("address with spaces", f"{CANARY} @x.mssante.fr"),
            ("address of 600 characters", f"{CANARY * 50}@pharmacie.mssante.fr"),
            ("address with a NUL", f"{CANARY}\x00@pharmacie.mssante.fr"),
            ("address with a newline", f"a@b.mssante.fr\n{CANARY}"),
        ):
            f.problem(
                f"mailbox: {label}",
                await h.web.post(
                    "/equipe/messageries", data={"csrf_token": csrf, "address": address, "name": "Accueil"}
                ),
                400,
                E.VALIDATION_FAILED,
            )
        f.problem("team page as a professional who is not titulaire", await _as_nurse(h), 403, E.NOT_TITULAIRE)
        f.assert_clean()


async def _as_nurse(h: Harness) -> httpx.Response:
    nurse = Harness(h.app, asgi_client(h.app), h.settings)
    async with nurse.web:
        await _login(nurse, NURSE)
        return await nurse.web.get("/equipe", headers=json_accept())


async def test_null_characters_in_web_forms_are_refused(backends: Backends, tmp_path: Path) -> None:
    """U+0000 in a device name or a mailbox name: PostgreSQL cannot store it (500), SQLite stores it.

    Both are wrong: it is bad input and gets ``validation_failed`` before anything is stored.
    """
    async with running(backends, tmp_path) as h:
        csrf = await _login(h)
        phone = await enrolled(h)
        f = Findings()
        f.problem(
            "device name with U+0000",
            await h.web.post(
                f"/appareils/{phone.client.state.device_id}/renommer", data={"csrf_token": csrf, "name": "a\x00b"}
            ),
            400,
            E.VALIDATION_FAILED,
        )
        f.problem(
            "mailbox name with U+0000",
            await h.web.post(
                "/equipe/messageries",
                data={"csrf_token": csrf, "address": "accueil@pharmacie-nul.mssante.fr", "name": "Accueil\x00"},
            ),
            400,
            E.VALIDATION_FAILED,
        )
        f.assert_clean()


# Pro Santé Connect callback ----------------------------------------------------------------------


async def test_psc_callback_with_garbage(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        f = Findings()
        callback = "/auth/psc/callback"
        f.problem(
            "callback without a login in progress",
            await h.web.get(callback, params={"code": CANARY, "state": CANARY}),
            400,
            E.PSC_STATE_MISMATCH,
        )
        start = await h.web.get("/connexion", params={"next": f"//{CANARY}.example"})
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        f.problem(
            "callback with a wrong state",
            await h.web.get(callback, params={"code": CANARY, "state": CANARY}),
            400,
            E.PSC_STATE_MISMATCH,
        )
        f.one_of(  # the first value is used: the forged code is then refused by PSC
            "callback with a repeated state",
            await h.web.get(f"{callback}?code={CANARY}&state={state}&state={CANARY}"),
            [(400, E.PSC_STATE_MISMATCH), (400, E.PSC_ERROR), (400, E.PSC_INVALID_TOKEN)],
        )
        f.problem(
            "callback with an error from PSC",
            await h.web.get(callback, params={"error": CANARY, "error_description": CANARY, "state": state}),
            400,
            E.PSC_ERROR,
        )
        f.one_of(
            "callback with the right state and a forged code",
            await h.web.get(callback, params={"code": CANARY, "state": state}),
            [(400, E.PSC_ERROR), (400, E.PSC_INVALID_TOKEN), (400, E.PSC_STATE_MISMATCH), (503, E.PSC_UNAVAILABLE)],
        )
        f.problem(
            "callback with bytes that are not UTF-8",
            await raw_call(
                h.app,
                "GET",
                callback.encode(),
                query=b"code=\xff" + CANARY.encode() + b"&state=\xfe",
                headers=[(b"cookie", _cookie(h))],
            ),
            400,
            E.PSC_STATE_MISMATCH,
        )
        f.assert_clean()


# error pages: HTML for browsers, problem+json otherwise -----------------------------------------


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_error_pages_html_for_browsers_problem_json_otherwise(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        f = Findings()
        for accept, html in ((html_accept(), True), (json_accept(), False), ({"Accept": "*/*"}, False)):
            kind = "HTML" if html else accept["Accept"]

            async def expect(
                label: str,
                response: httpx.Response,
                status: int,
                code: E,
                title: str,
                *,
                html: bool = html,
                kind: str = kind,
            ) -> None:
                if html:
                    f.html_error(f"{label} ({kind})", response, status, title)
                    f.check(
                        f"{label} ({kind}) has the page security headers",
                        "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""),
                        "no CSP on the error page",
                        response,
                    )
                else:
                    f.problem(f"{label} ({kind})", response, status, code)

            await expect(
                "unknown page", await h.web.get(f"/{CANARY}", headers=accept), 404, E.NOT_FOUND, "Page introuvable"
            )
            await expect(
                "page that needs a login",
                await h.web.get("/appareils", headers=accept),
                401,
                E.LOGIN_REQUIRED,
                "Connexion requise",
            )
            await expect(
                "wrong method on a page",
                await h.web.put("/appareils", headers=accept),
                405,
                E.METHOD_NOT_ALLOWED,
                "Method not allowed",
            )
            await expect(
                "unknown path with bytes that are not UTF-8",
                await h.web.get(f"/{CANARY}%FF%FE", headers=accept),
                404,
                E.NOT_FOUND,
                "Page introuvable",
            )
        await _login(h, NURSE)
        for accept, html in ((html_accept(), True), (json_accept(), False)):
            kind = "HTML" if html else "JSON"
            form = await h.web.post(f"/appareils/{UNKNOWN}/revoquer", data={"csrf_token": CANARY}, headers=accept)
            if html:
                f.html_error(f"form without a valid CSRF token ({kind})", form, 403, "Formulaire expiré")
                f.html_error(
                    f"team page, not titulaire ({kind})",
                    await h.web.get("/equipe", headers=accept),
                    403,
                    "Réservé au titulaire",
                )
                f.html_error(
                    f"unknown rendezvous ({kind})",
                    await h.web.get(f"/enrolement/{CANARY}", headers=accept),
                    404,
                    "Enrolment not found",
                )
            else:
                f.problem(f"form without a valid CSRF token ({kind})", form, 403, E.CSRF_FAILED)
                f.problem(
                    f"team page, not titulaire ({kind})",
                    await h.web.get("/equipe", headers=accept),
                    403,
                    E.NOT_TITULAIRE,
                )
                f.problem(
                    f"unknown rendezvous ({kind})",
                    await h.web.get(f"/enrolement/{CANARY}", headers=accept),
                    404,
                    E.ENROLMENT_NOT_FOUND,
                )
        f.problem(
            "the API never answers HTML", await h.web.get("/api/v1/me", headers=html_accept()), 401, E.AUTH_REQUIRED
        )
        f.problem(
            "health never answers HTML",
            await h.web.post("/health/ready", headers=html_accept()),
            405,
            E.METHOD_NOT_ALLOWED,
        )
        f.assert_clean()


# static files, problem docs, raw bytes, the PSC sandbox ------------------------------------------


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_static_files_problem_docs_and_raw_bytes(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        f = Findings()
        for path in (
            f"/static/{CANARY}.css",
            f"/static/{CANARY}/../../pyproject.toml",
            f"/static/%2e%2e/{CANARY}",
            f"/static/..%2F..%2F{CANARY}",
            f"/static/{CANARY}%00.css",
        ):
            f.problem(f"GET {path}", await h.web.get(path), 404, E.NOT_FOUND)
        f.problem(
            "static traversal to a real file",
            await raw_call(h.app, "GET", b"/static/../../../pyproject.toml"),
            404,
            E.NOT_FOUND,
        )
        f.problem("POST to a static file", await h.web.post("/static/app.css"), 405, E.METHOD_NOT_ALLOWED)
        for code in (CANARY, f"<img src=x onerror=alert('{CANARY}')>", "internal_error"):
            page = await h.web.get(f"/problems/{code}")
            f.check(
                f"/problems/{code[:20]}",
                page.status_code == 200 and CANARY not in page.text,
                "problem documentation page failed or echoed",
                page,
            )
        await _login(h, NURSE)
        ok = await raw_call(
            h.app, "GET", b"/appareils", query=b"ok=\xff\xfe" + CANARY.encode(), headers=[(b"cookie", _cookie(h))]
        )
        f.check(
            "page query with bytes that are not UTF-8",
            ok.status == 200 and CANARY not in ok.text,
            "page failed or echoed",
            ok,
        )
        f.one_of(
            "Host header with bytes that are not ASCII",
            await raw_call(h.app, "GET", b"/", headers=[(b"host", b"\xff\xfe" + CANARY.encode())]),
            [(400, E.BAD_REQUEST)],
        )
        odd_accept = await raw_call(
            h.app, "GET", b"/nope", headers=[(b"accept", b"\xfftext/html;q=" + CANARY.encode())]
        )
        f.check(
            "Accept header that does not parse",
            odd_accept.status == 404 and CANARY not in odd_accept.text,
            "not a 404 or echoed",
            odd_accept,
        )
        f.assert_clean()


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_psc_sandbox_survives_garbage(backends: Backends, tmp_path: Path) -> None:
    """The sandbox mimics PSC (OAuth errors, not problem+json): only "no 5xx" is asked of it."""
    async with running(backends, tmp_path) as h:
        f = Findings()
        oidc = urlsplit(h.settings.psc.issuer).path + "/protocol/openid-connect"
        calls: list[tuple[str, str, dict[str, str], bytes]] = [
            ("GET", f"{oidc}/auth", {"client_id": CANARY, "redirect_uri": CANARY, "response_type": CANARY}, b""),
            ("GET", f"{oidc}/auth", {"client_id": h.settings.psc.client_id, "state": CANARY}, b""),
            ("POST", f"{oidc}/auth", {}, b"client_id=\xff" + CANARY.encode() + b"&client_id=x"),
            ("POST", f"{oidc}/token", {}, b"grant_type=\xff&code=" + CANARY.encode()),
            ("POST", f"{oidc}/token", {}, CANARY.encode() * 10),
            ("GET", f"{oidc}/userinfo", {}, b""),
            ("POST", f"{oidc}/logout", {"id_token_hint": CANARY}, b"post_logout_redirect_uri=" + CANARY.encode()),
        ]
        for method, path, params, body in calls:
            response = await h.web.request(
                method,
                path,
                params=params,
                content=body or None,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {CANARY}"},
            )
            f.check(
                f"{method} {path.rsplit('/', 1)[-1]} {sorted(params)}",
                response.status_code < 500,
                "server error",
                response,
            )
        f.assert_clean()


def test_every_error_code_has_a_status_and_a_title() -> None:
    """The mapper and ``/problems/{code}`` look every code up in ``STATUS`` and ``TITLES``: a code
    missing from either turns every error with that code (and the documentation page) into a 500."""
    missing = sorted(code.value for code in E if code not in STATUS or code not in TITLES)
    assert not missing, f"codes without a status or title: {missing}"


@pytest.mark.parametrize("backends", ["embedded"], indirect=True)
async def test_every_problem_type_page_renders(backends: Backends, tmp_path: Path) -> None:
    async with running(backends, tmp_path) as h:
        f = Findings()
        for code in E:
            page = await h.web.get(problem_type(code), headers=html_accept())
            f.check(
                f"/problems/{code.value}",
                page.status_code == 200 and code.value in page.text,
                "the problem type page does not render",
                page,
            )
        f.assert_clean()
