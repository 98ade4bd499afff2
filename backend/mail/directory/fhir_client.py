"""The Annuaire Santé FHIR API (``…/fhir/v2``) as a ``Directory``.

Requests (FHIR R4 search, parameters from the ANS capability statement, H):
- persons: ``GET Practitioner?name:contains=<word>…&qualification-code=<TRE_G15>|<code>
  &active=true&_revinclude=PractitionerRole:practitioner&_count=n``; the roles' Organizations
  not in the Bundle are then read in one ``GET Organization?_id=a,b,…`` for the structure name and
  place. The API has no place parameter for Practitioner, so city, postal code and street are
  checked here, after the page is fetched (pages may come back short);
- structures: ``GET Organization?name:contains=<word>…&address-city=…&address-postalcode=…
  &active=true&_count=n``; the street is checked here (the Annuaire abbreviates street types).
- Every request carries the ``ESANTE-API-KEY`` header; ``_count`` is at most 50.
- Paging follows ``link[relation=next]``. The link is kept *relative* (path under our base URL and
  its query) inside the sealed page token and replayed against the configured base URL, so a token
  can never point the server (and its API key) elsewhere. Redirects are not followed, for the same
  reason.

Failures: timeouts, transport errors, 429/5xx, a refused API key and unreadable answers become
``directory_unavailable`` (503) with ``retry_after`` (from ``Retry-After`` when given). A 404/410
while following a page (the server forgot the search) is ``invalid_page_token``. Logs name the
status and counts; never the URL (it holds the search terms) nor the key. httpx itself logs every
request URL at INFO on the ``httpx`` logger: :func:`drop_query_strings_from_httpx_logs` (installed
when a client is created) removes query strings from those lines.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec

from backend.mail.directory.base import Directory
from backend.mail.directory.fhir_parse import (
    PROFESSION_SYSTEM,
    Bundle,
    FhirFormatError,
    Json,
    organization_refs,
    person_candidates,
    read_bundle,
    structure_candidates,
)
from backend.mail.directory.models import DirectoryEntry, EntryKind
from backend.mail.directory.page_tokens import invalid_page_token
from backend.mail.directory.publication import PublicationStats, publish
from backend.mail.directory.query import MAX_LIMIT, SearchQuery
from contracts.errors import ErrorCode
from core.errors import DomainError
from core.logging import get_logger
from core.settings import DirectorySettings, SettingsError

log = get_logger("mssc.directory.fhir")

API_KEY_HEADER = "ESANTE-API-KEY"
FHIR_JSON = "application/fhir+json"
_PRIMARY: dict[EntryKind, str] = {"person": "Practitioner", "structure": "Organization"}
#: Paths a next link may continue on, relative to the base URL ("" for ``?_getpages=…`` links).
_CURSOR_PATHS = frozenset({"", "Practitioner", "Organization", "PractitionerRole"})
_DEFAULT_RETRY_S = 30
_MAX_RETRY_S = 3600


def _unavailable(retry_after: int = _DEFAULT_RETRY_S) -> DomainError:
    return DomainError(
        ErrorCode.DIRECTORY_UNAVAILABLE,
        "the Annuaire Santé is not answering; try again later",
        retry_after=retry_after,
        headers={"Retry-After": str(retry_after)},
    )


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After", "")
    return max(1, min(int(value), _MAX_RETRY_S)) if value.isdigit() else _DEFAULT_RETRY_S


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _DropQueryStrings(logging.Filter):
    """Rewrites httpx's ``HTTP Request: GET <url> …`` records without the URL's query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None) if isinstance(arg, httpx.URL) and arg.query else arg for arg in record.args
            )
        return True


_QUERY_FILTER = _DropQueryStrings()


def drop_query_strings_from_httpx_logs() -> None:
    """Search terms travel in FHIR query strings; httpx would log them at INFO. Idempotent."""
    httpx_logger = logging.getLogger("httpx")
    if _QUERY_FILTER not in httpx_logger.filters:
        httpx_logger.addFilter(_QUERY_FILTER)


class FhirDirectory(Directory):
    """Annuaire Santé client. One instance per process; it owns its HTTP client unless given one."""

    def __init__(
        self,
        settings: DirectorySettings,
        *,
        http: httpx.AsyncClient | None = None,
        token_secret: bytes | str | None = None,
        max_response_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        super().__init__(token_secret=token_secret)
        base = settings.base_url.strip().rstrip("/")
        parts = urlsplit(base)
        if not (parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))):
            raise SettingsError("MSSC_DIRECTORY_BASE_URL must be an https:// URL")
        if not settings.api_key:
            raise SettingsError("MSSC_DIRECTORY_API_KEY is required for the Annuaire Santé")
        self._base = base
        self._base_path = parts.path.rstrip("/")
        self._headers = {API_KEY_HEADER: settings.api_key, "Accept": FHIR_JSON}
        self._timeout_s = settings.timeout_s
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(follow_redirects=False)
        self._max_bytes = max_response_bytes
        drop_query_strings_from_httpx_logs()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- requests ---------------------------------------------------------------------------

    @staticmethod
    def _first_params(side: EntryKind, query: SearchQuery, limit: int) -> list[tuple[str, str]]:
        params = [("name:contains", word) for word in query.name_words]
        if side == "person":
            if query.profession_code:
                params.append(("qualification-code", f"{PROFESSION_SYSTEM}|{query.profession_code}"))
            params.append(("_revinclude", "PractitionerRole:practitioner"))
        else:
            if query.city:
                params.append(("address-city", query.city))
            if query.postal_code:
                params.append(("address-postalcode", query.postal_code))
        params += [("active", "true"), ("_count", str(min(limit, MAX_LIMIT)))]
        return params

    def _cursor_from_next(self, next_url: str | None) -> str | None:
        """The next link as ``<path under base>?<query>``, or ``None`` if it cannot be replayed here."""
        if not next_url:
            return None
        parts = urlsplit(next_url)
        path = parts.path.rstrip("/")
        if self._base_path and path.startswith(self._base_path):
            tail = path[len(self._base_path) :].strip("/")
        else:
            tail = path.rpartition("/")[2]
            tail = tail if tail in _CURSOR_PATHS else ""
        if tail not in _CURSOR_PATHS or not parts.query:
            log.warning("directory.next_link_unusable")
            return None
        return f"{tail}?{parts.query}"

    def _cursor_request(self, cursor: str, limit: int) -> tuple[str, list[tuple[str, str]]]:
        tail, _, query = cursor.partition("?")
        if tail not in _CURSOR_PATHS:
            raise invalid_page_token()
        params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_count"]
        params.append(("_count", str(min(limit, MAX_LIMIT))))
        return (f"{self._base}/{tail}" if tail else self._base), params

    async def _get(self, url: str, params: list[tuple[str, str]], *, following: bool) -> Any:
        query = httpx.QueryParams(tuple(params))
        try:
            async with self._http.stream(
                "GET", url, params=query, headers=self._headers, timeout=self._timeout_s
            ) as response:
                status = response.status_code
                if status == 200:
                    body = await self._read(response)
                elif following and status in (404, 410):
                    log.info("directory.page_expired", status=status)
                    raise invalid_page_token("the search has expired; search again")
                else:
                    raise self._refusal(response)
        except httpx.TimeoutException:
            log.warning("directory.timeout", timeout_s=self._timeout_s)
            raise _unavailable() from None
        except httpx.TransportError as exc:
            log.warning("directory.transport_error", error=type(exc).__name__)
            raise _unavailable() from None
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            log.warning("directory.bad_answer", reason="json")
            raise _unavailable() from None

    async def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                log.warning("directory.bad_answer", reason="too_large")
                raise _unavailable()
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _refusal(response: httpx.Response) -> DomainError:
        status = response.status_code
        if status in (401, 403):
            log.error("directory.api_key_refused", status=status)
            return _unavailable()
        log.warning("directory.http_error", status=status)
        if status == 429 or status >= 500:
            return _unavailable(_retry_after(response))
        return _unavailable()

    async def _bundle(self, url: str, params: list[tuple[str, str]], *, primary: str, following: bool) -> Bundle:
        data = await self._get(url, params, following=following)
        try:
            return read_bundle(data, primary=primary)
        except FhirFormatError:
            log.warning("directory.bad_answer", reason="not_a_bundle")
            raise _unavailable() from None

    async def _organizations(self, keys: set[str]) -> dict[str, Json]:
        """The Organizations the page's roles point to, read in batches of 50 ids."""
        found: dict[str, Json] = {}
        ids = sorted(key.partition("/")[2] for key in keys)
        for start in range(0, len(ids), MAX_LIMIT):
            batch = ids[start : start + MAX_LIMIT]
            params = [("_id", ",".join(batch)), ("_count", str(MAX_LIMIT))]
            bundle = await self._bundle(f"{self._base}/Organization", params, primary="Organization", following=False)
            for organization in bundle.matches:
                if isinstance(organization.get("id"), str):
                    found[f"Organization/{organization['id']}"] = organization
        return found

    # -- Directory ----------------------------------------------------------------------------

    async def _page(
        self, side: EntryKind, query: SearchQuery, cursor: str | None, limit: int
    ) -> tuple[list[DirectoryEntry], str | None]:
        primary = _PRIMARY[side]
        if cursor is None:
            url, params = f"{self._base}/{primary}", self._first_params(side, query, limit)
        else:
            url, params = self._cursor_request(cursor, limit)
        bundle = await self._bundle(url, params, primary=primary, following=cursor is not None)
        if side == "person":
            missing = organization_refs(bundle)
            organizations = await self._organizations(missing) if missing else {}
            candidates = person_candidates(bundle, organizations)
        else:
            candidates = structure_candidates(bundle)
        stats = PublicationStats()
        entries = [e for c in candidates if (e := publish(c, query, stats, check_place=True)) is not None]
        log.info(
            "directory.fhir_page",
            side=side,
            matched=len(bundle.matches),
            returned=len(entries),
            liste_rouge_entries=stats.liste_rouge_entries,
            liste_rouge_mailboxes=stats.liste_rouge_mailboxes,
            without_mailbox=stats.without_mailbox,
            outside_place=stats.outside_place,
        )
        return entries, self._cursor_from_next(bundle.next_url)
