"""Shared constants and helpers of the PSC tests (imported by ``conftest.py`` and the tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from core.settings import PscSettings

ORIGIN = "http://testserver.local"
ISSUER = f"{ORIGIN}/psc-sandbox/auth/realms/esante-wallet"
CLIENT_ID = "mss-companion"
#: At least 32 bytes, so HS256 with it is not a short-key warning.
CLIENT_SECRET = "sandbox-client-secret-for-the-psc-tests"
REDIRECT_URI = f"{ORIGIN}/auth/psc/callback"


class Clock:
    """Wall clock plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def psc_settings(**overrides: object) -> PscSettings:
    values: dict[str, object] = {
        "sandbox": True,
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    values.update(overrides)
    return PscSettings(**values)  # type: ignore[arg-type]


# -- the login page, as a browser sees it -------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    inputs: list[dict[str, str]] = field(default_factory=list)
    selects: dict[str, str] = field(default_factory=dict)
    buttons: list[dict[str, str]] = field(default_factory=list)


class PageParser(HTMLParser):
    """Collects forms, labels and element ids of the sandbox login page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.label_for: set[str] = set()
        self.ids: list[str] = []
        self.lang: str | None = None
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(a)
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(a)
        elif tag == "label" and "for" in a:
            self.label_for.add(a["for"])
        elif tag == "select" and self.forms:
            self._select = a["name"]
            self._first_option = None
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = a.get("value", "")
                self.forms[-1].selects.setdefault(self._select, self._first_option)
            if "selected" in a:
                self.forms[-1].selects[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def parse_page(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    return parser


async def browser_login(
    http: httpx.AsyncClient,
    url: str,
    *,
    professional: str,
    auth_mode: str,
    userinfo_format: str | None = None,
) -> dict[str, str]:
    """Open the authorize URL, pick a person and a mode, submit; return the callback's query."""
    page = await http.get(url)
    assert page.status_code == 200, page.text
    form = parse_page(page.text).forms[0]
    data = {i["name"]: i.get("value", "") for i in form.inputs if i.get("type") == "hidden"}
    radios = {(i["name"], i["value"]) for i in form.inputs if i.get("type") == "radio"}
    assert ("professional", professional) in radios
    assert ("auth_mode", auth_mode) in radios
    data |= {"professional": professional, "auth_mode": auth_mode, **form.selects}
    if userinfo_format is not None:
        data["userinfo_format"] = userinfo_format
    submit = next(b for b in form.buttons if b.get("id") == "psc-sandbox-submit")
    data[submit["name"]] = submit["value"]
    response = await http.post(urljoin(url, form.action), data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
