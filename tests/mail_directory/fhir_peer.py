"""A small Annuaire Santé FHIR server for the tests (Litestar), shaped like the real one.

It serves ``Practitioner``, ``Organization`` and HAPI-style paging (``?_getpages=…``) under
``/fhir/v2``, with the resources and extensions of the ANS implementation guide: MSSanté mailboxes
as ``telecom`` with the FR Core email-type extension and the ``as-ext-mailbox-mss-metadata``
extension (type, description, listeRouge). Search semantics follow FHIR: string parameters are
accent- and case-insensitive, ``:contains`` is a substring, plain is a prefix; repeated parameters
are ANDed. Next links point at another host (``gateway.peer.test``), as a gateway's may, so the
client must replay them on its own base URL.

The data is the sandbox directory's records turned into FHIR, plus whatever a test adds, so the
same behavioural tests run over both directories. Knobs: ``api_key``, ``fail_status`` (+
``retry_after``), ``delay_s``, ``forget_searches()``, ``garbage``; ``requests`` records what came in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get

from backend.mail.directory.fhir_parse import (
    EMAIL_TYPE_EXTENSION,
    FINESS_SYSTEM,
    IDNAT_PS_SYSTEM,
    IDNAT_STRUCTURE_SYSTEM,
    MAILBOX_METADATA_EXTENSION,
    PROFESSION_SYSTEM,
    RPPS_SYSTEM,
)
from backend.mail.directory.publication import Candidate, Place, RawMailbox
from backend.mail.directory.text import fold

API_KEY = "test-esante-api-key"
NEXT_LINK_BASE = "https://gateway.peer.test/fhir/v2"
TYPE_BAL_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
MESSAGING_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"

Resource = dict[str, Any]


def mss_telecom(mailbox: RawMailbox, *, flag_name: str = "listeRouge") -> Resource:
    metadata: list[Resource] = [
        {"url": "type", "valueCodeableConcept": {"coding": [{"system": TYPE_BAL_SYSTEM, "code": mailbox.type}]}},
        {"url": flag_name, "valueBoolean": mailbox.liste_rouge},
    ]
    if mailbox.description:
        metadata.append({"url": "description", "valueString": mailbox.description})
    return {
        "extension": [
            {"url": EMAIL_TYPE_EXTENSION, "valueCoding": {"system": MESSAGING_SYSTEM, "code": "MSSANTE"}},
            {"extension": metadata, "url": MAILBOX_METADATA_EXTENSION},
        ],
        "system": "email",
        "value": mailbox.address,
    }


def fhir_address(place: Place) -> Resource:
    return {
        "line": list(place.lines),
        "city": place.city.upper() if place.city else None,
        "postalCode": place.postal_code,
        "country": "99100",
    }


@dataclass
class PeerData:
    """Resources by ``Type/id``; roles by practitioner id."""

    practitioners: list[Resource] = field(default_factory=list)
    organizations: list[Resource] = field(default_factory=list)
    roles: dict[str, list[Resource]] = field(default_factory=dict)

    def organization_for(self, place: Place) -> str:
        """The id of the Organization of a place (created once per structure name)."""
        name = place.structure_name or "CABINET"
        for org in self.organizations:
            if org["name"] == name:
                return str(org["id"])
        org_id = f"org-{len(self.organizations) + 1}"
        self.organizations.append(
            {
                "resourceType": "Organization",
                "id": org_id,
                "active": True,
                "identifier": [{"system": FINESS_SYSTEM, "value": f"99{len(self.organizations):07d}"}],
                "name": name,
                "address": [fhir_address(place)],
            }
        )
        return org_id

    def add_candidate(self, candidate: Candidate) -> None:
        # Entry-level liste rouge shows in FHIR as every mailbox flagged.
        mailboxes = [
            RawMailbox(m.address, m.type, m.description, liste_rouge=m.liste_rouge or candidate.liste_rouge)
            for m in candidate.mailboxes
        ]
        if candidate.kind == "structure":
            place = candidate.places[0]
            self.organizations.append(
                {
                    "resourceType": "Organization",
                    "id": f"org-{candidate.idnat}",
                    "active": True,
                    "identifier": [
                        {"use": "official", "system": IDNAT_STRUCTURE_SYSTEM, "value": candidate.idnat},
                        {"system": FINESS_SYSTEM, "value": candidate.idnat[1:]},
                    ],
                    "name": candidate.name,
                    "telecom": [{"system": "phone", "value": "0102030405"}, *map(mss_telecom, mailboxes)],
                    "address": [fhir_address(place)],
                }
            )
            return
        given, _, family = candidate.name.partition(" ")
        practitioner_id = f"pr-{candidate.idnat}"
        self.practitioners.append(
            {
                "resourceType": "Practitioner",
                "id": practitioner_id,
                "active": True,
                "identifier": [
                    {"use": "official", "system": IDNAT_PS_SYSTEM, "value": candidate.idnat},
                    {"use": "official", "system": RPPS_SYSTEM, "value": candidate.idnat[1:]},
                ],
                "name": [{"use": "usual", "family": family.upper(), "given": [given], "prefix": ["M"]}],
                "telecom": [
                    *map(mss_telecom, mailboxes),
                    {"system": "email", "value": f"{fold(given).replace(' ', '')}@gmail.example"},
                ],
                "qualification": [
                    {"code": {"coding": [{"system": PROFESSION_SYSTEM, "code": candidate.profession_code}]}}
                ],
            }
        )
        self.roles[practitioner_id] = [
            {
                "resourceType": "PractitionerRole",
                "id": f"role-{candidate.idnat}-{i}",
                "active": True,
                "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
                "organization": {"reference": f"Organization/{self.organization_for(place)}"},
                "code": [{"coding": [{"system": PROFESSION_SYSTEM, "code": candidate.profession_code}]}],
            }
            for i, place in enumerate(candidate.places)
        ]


def _name_parts(resource: Resource) -> list[str]:
    if resource["resourceType"] == "Organization":
        return [fold(resource.get("name", ""))]
    parts: list[str] = []
    for name in resource.get("name", []):
        parts += [fold(g) for g in name.get("given", [])] + [fold(name.get("family", ""))]
    return parts


def _sort_name(resource: Resource) -> str:
    if resource["resourceType"] == "Organization":
        return fold(resource.get("name", ""))
    name = resource["name"][0]
    return fold(" ".join([*name.get("given", []), name.get("family", "")]))


def _address_values(resource: Resource, key: str) -> list[str]:
    return [fold(a.get(key) or "") for a in resource.get("address", [])]


class FhirPeer:
    """The peer's state and its Litestar app (``peer.app``)."""

    def __init__(self, records: Iterable[Candidate] = ()) -> None:
        self.data = PeerData()
        for record in records:
            self.data.add_candidate(record)
        self.api_key = API_KEY
        self.fail_status: int | None = None
        self.retry_after: str | None = None
        self.delay_s = 0.0
        self.garbage = False
        self.searches: dict[str, list[Resource]] = {}
        self.requests: list[Request[Any, Any, Any]] = []
        self.app = Litestar(route_handlers=[self._root_handler(), self._resource_handler()], debug=False)

    def forget_searches(self) -> None:
        self.searches.clear()

    # -- FHIR search -----------------------------------------------------------------------------

    def _search(self, resource_type: str, request: Request[Any, Any, Any]) -> list[Resource]:
        params = request.query_params
        pool = self.data.practitioners if resource_type == "Practitioner" else self.data.organizations
        results: list[Resource] = []
        for resource in pool:
            if params.get("active") == "true" and resource.get("active") is False:
                continue
            if (ids := params.get("_id")) and resource["id"] not in ids.split(","):
                continue
            parts = _name_parts(resource)
            if not all(any(fold(w) in p for p in parts) for w in params.getall("name:contains", [])):
                continue
            codes = {c["code"] for q in resource.get("qualification", []) for c in q["code"]["coding"]}
            if (wanted := params.get("qualification-code")) and wanted.rpartition("|")[2] not in codes:
                continue
            if (city := params.get("address-city")) and not any(
                v.startswith(fold(city)) for v in _address_values(resource, "city")
            ):
                continue
            if (postal := params.get("address-postalcode")) and not any(
                v.startswith(fold(postal)) for v in _address_values(resource, "postalCode")
            ):
                continue
            results.append(resource)
        return sorted(results, key=lambda r: (_sort_name(r), r["id"]))

    def _bundle(self, search_id: str, offset: int, count: int, revinclude: bool) -> Resource:
        matches = self.searches[search_id]
        page = matches[offset : offset + count]
        entries: list[Resource] = [
            {
                "fullUrl": f"{NEXT_LINK_BASE}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ]
        if revinclude:
            for resource in page:
                for role in self.data.roles.get(resource["id"], []):
                    entries.append(
                        {
                            "fullUrl": f"{NEXT_LINK_BASE}/PractitionerRole/{role['id']}",
                            "resource": role,
                            "search": {"mode": "include"},
                        }
                    )
        links = [{"relation": "self", "url": f"{NEXT_LINK_BASE}?_getpages={search_id}&_getpagesoffset={offset}"}]
        if offset + count < len(matches):
            links.append(
                {
                    "relation": "next",
                    "url": (
                        f"{NEXT_LINK_BASE}?_getpages={search_id}&_getpagesoffset={offset + count}"
                        f"&_count={count}&_pretty=true&_bundletype=searchset"
                        f"&_revinclude={'PractitionerRole:practitioner' if revinclude else ''}"
                    ),
                }
            )
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": entries,
        }

    # -- HTTP --------------------------------------------------------------------------------------

    async def _guard(self, request: Request[Any, Any, Any]) -> Response[Any] | None:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.headers.get("esante-api-key") != self.api_key:
            return _outcome(401, "security", "invalid API key")
        if self.fail_status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return _outcome(self.fail_status, "transient", "unavailable", headers)
        if self.garbage:
            return Response(content=b"<html>gateway error</html>", status_code=200, media_type="text/html")
        return None

    def _root_handler(self) -> Any:
        peer = self

        @get("/fhir/v2")
        async def root(request: Request[Any, Any, Any]) -> Response[Any]:
            if (refused := await peer._guard(request)) is not None:
                return refused
            search_id = request.query_params.get("_getpages", "")
            if search_id not in peer.searches:
                return _outcome(410, "not-found", "search expired")
            offset = int(request.query_params.get("_getpagesoffset", "0"))
            count = min(int(request.query_params.get("_count", "50")), 50)
            revinclude = request.query_params.get("_revinclude") == "PractitionerRole:practitioner"
            return _json(peer._bundle(search_id, offset, count, revinclude))

        return root

    def _resource_handler(self) -> Any:
        peer = self

        @get("/fhir/v2/{resource_type:str}")
        async def search(request: Request[Any, Any, Any]) -> Response[Any]:
            resource_type = str(request.path_params["resource_type"])
            if (refused := await peer._guard(request)) is not None:
                return refused
            if resource_type not in ("Practitioner", "Organization"):
                return _outcome(404, "not-supported", "unknown resource type")
            search_id = str(uuid.uuid4())
            peer.searches[search_id] = peer._search(resource_type, request)
            count = min(int(request.query_params.get("_count", "50")), 50)
            revinclude = request.query_params.get("_revinclude") == "PractitionerRole:practitioner"
            return _json(peer._bundle(search_id, 0, count, revinclude))

        return search


def _json(body: Resource, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content=body, status_code=status, media_type="application/fhir+json", headers=headers)


def _outcome(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response[Any]:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return _json(body, status, headers)
