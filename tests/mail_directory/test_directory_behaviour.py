"""The same behaviour over both directories: sandbox, and the FHIR client against the FHIR peer."""

from __future__ import annotations

import base64

import pytest

from backend.mail.directory import Directory, DirectoryEntry, FhirDirectory, SandboxDirectory
from backend.mail.directory.sandbox_data import HIDDEN_ADDRESSES, SANDBOX_RECORDS
from backend.mail.directory.text import fold
from backend.mail.trust import TrustSpace
from contracts.errors import ErrorCode
from core.errors import DomainError


async def everything(directory: Directory, **criteria: object) -> list[DirectoryEntry]:
    """Every entry of a search, following page tokens."""
    entries: list[DirectoryEntry] = []
    token: str | None = None
    for _ in range(100):
        page = await directory.search(**criteria, page_token=token)  # type: ignore[arg-type]
        entries.extend(page.entries)
        token = page.next_page_token
        if token is None:
            return entries
    raise AssertionError("paging never ended")


def addresses(entries: list[DirectoryEntry]) -> set[str]:
    return {m.address for e in entries for m in e.mailboxes}


@pytest.mark.parametrize("name", ["helene", "HÉLÈNE", "Hélène Garnier", "garnier helene", "GARN", "hélène  garnier "])
async def test_accent_and_case_insensitive_names(directory: Directory, name: str) -> None:
    page = await directory.search(name=name, kind="person")
    [entry] = page.entries
    assert fold(entry.name) == "helene garnier"
    assert entry.idnat == "810001234565"
    assert entry.profession_code == "21"
    assert entry.profession_label == "Pharmacien"
    assert fold(entry.structure_name or "") == "pharmacie des tilleuls"
    assert [(m.address, m.type) for m in entry.mailboxes] == [("helene.garnier@pharmacien.mssante.fr", "PER")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("berard", "elodie berard"),
        ("ZOE CHATEAU", "zoe chateau"),
        ("lefevre", "julien lefevre"),
        ("noemie", "noemie faure"),
    ],
)
async def test_accents_either_side(directory: Directory, name: str, expected: str) -> None:
    page = await directory.search(name=name)
    assert [fold(e.name) for e in page.entries] == [expected]


async def test_pharmacie_des_tilleuls(directory: Directory) -> None:
    page = await directory.search(name="tilleuls", kind="structure")
    [entry] = page.entries
    assert entry.kind == "structure"
    assert entry.idnat == "1750000001"
    assert fold(entry.city or "") == "paris"
    assert entry.postal_code == "75011"
    assert [(m.address, m.type) for m in entry.mailboxes] == [("pharmacie.tilleuls@pharmacie.mssante.fr", "ORG")]
    by_street = await directory.search(address="12 rue des Tilleuls", city="Paris", kind="structure")
    assert [e.idnat for e in by_street.entries] == ["1750000001"]
    by_place = await directory.search(postal_code="750", kind="structure")
    assert "1750000001" in [e.idnat for e in by_place.entries]


async def test_the_psc_sandbox_people_are_in_the_directory(directory: Directory) -> None:
    from enrolment.psc_sandbox.people import PROFESSIONALS

    for person in PROFESSIONALS:
        page = await directory.search(name=person.display_name, kind="person")
        assert [(e.idnat, [m.address for m in e.mailboxes]) for e in page.entries] == [(person.idnat, [person.mailbox])]


async def test_the_liste_rouge_never_comes_out(directory: Directory) -> None:
    seen: set[str] = set()
    for record in SANDBOX_RECORDS:
        for word in record.name.split():
            if len(fold(word)) >= 3:
                seen |= addresses(await everything(directory, name=word, limit=50))
    for code in ("10", "21", "40", "50", "60", "70", "80"):
        seen |= addresses(await everything(directory, profession=code, limit=7))
    for city in ("Paris", "Lyon", "Créteil", "Lille"):
        seen |= addresses(await everything(directory, city=city, kind="structure", limit=3))
    assert seen
    assert not seen & HIDDEN_ADDRESSES
    for name in ("Vasseur", "Marc Olivier", "Sarah Cohen", "medico psychologique", "Bercy"):
        assert (await directory.search(name=name)).entries == []
    [martin] = (await directory.search(name="sophie martin")).entries
    assert [m.address for m in martin.mailboxes] == ["sophie.martin@medecin.mssante.fr"]


async def test_pagination_returns_everything_once(directory: Directory) -> None:
    all_at_once = (await directory.search(profession="infirmière", limit=50)).entries
    assert len(all_at_once) >= 5
    page = await directory.search(profession="infirmière", limit=2)
    assert len(page.entries) <= 2
    assert page.next_page_token is not None
    paged = await everything(directory, profession="infirmiere", limit=2)
    assert [e.idnat for e in paged] == [e.idnat for e in all_at_once]


async def test_pagination_over_persons_and_structures(directory: Directory) -> None:
    single = await directory.search(name="ma", limit=50)
    kinds = {e.kind for e in single.entries}
    assert kinds == {"person", "structure"}
    paged = await everything(directory, name="ma", limit=3)
    assert sorted(e.idnat for e in paged) == sorted(e.idnat for e in single.entries)
    assert len({e.idnat for e in paged}) == len(paged)


async def test_a_page_token_only_continues_its_own_search(directory: Directory) -> None:
    page = await directory.search(profession="pharmacien", limit=1)
    assert page.next_page_token
    for kwargs in ({"profession": "infirmier"}, {"profession": "pharmacien", "city": "Paris"}):
        with pytest.raises(DomainError) as raised:
            await directory.search(**kwargs, limit=1, page_token=page.next_page_token)  # type: ignore[arg-type]
        assert raised.value.code is ErrorCode.INVALID_PAGE_TOKEN
    tampered = page.next_page_token[:-3] + ("AAA" if not page.next_page_token.endswith("AAA") else "BBB")
    for token in (tampered, "not-a-token", "A" * 10_000):
        with pytest.raises(DomainError) as raised:
            await directory.search(profession="pharmacien", limit=1, page_token=token)
        assert raised.value.code is ErrorCode.INVALID_PAGE_TOKEN
    # Same search, another limit: allowed.
    more = await directory.search(profession="Pharmacien", limit=5, page_token=page.next_page_token)
    assert more.entries


async def test_page_tokens_do_not_show_the_search(directory: Directory) -> None:
    for criteria, secrets in (
        ({"profession": "pharmacien"}, (b"qualification", b"pharmacien")),
        ({"name": "pharmacie", "kind": "structure"}, (b"pharmacie", b"name")),
    ):
        page = await directory.search(**criteria, limit=1)  # type: ignore[arg-type]
        token = page.next_page_token
        assert token
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        for secret in secrets:
            assert secret not in raw.lower()
            assert secret.decode() not in token.lower()  # long words: no chance match in base64


async def test_the_place_shown_is_the_one_that_matched(directory: Directory) -> None:
    [by_city] = (await directory.search(name="lambert", city="lyon")).entries
    assert fold(by_city.structure_name or "") == "cabinet infirmier des pentes"
    [by_postcode] = (await directory.search(name="lambert", postal_code="69004")).entries
    assert fold(by_postcode.structure_name or "") == "ssiad de la croix rousse"
    assert (await directory.search(name="lambert", city="Marseille")).entries == []


async def test_place_filters_on_persons(directory: Directory) -> None:
    nurses_lyon = await everything(directory, profession="60", city="LYON", limit=50)
    assert {fold(e.name) for e in nurses_lyon} == {"thomas lambert", "jerome besson"}
    creteil = await everything(directory, city="creteil", kind="structure")
    assert {m.address for e in creteil for m in e.mailboxes} == {
        "cardiologie@ch-exemple.mssante.fr",
        "urgences@ch-exemple.mssante.fr",
    }


async def test_mailbox_types_and_descriptions(directory: Directory) -> None:
    [girard] = (await directory.search(name="mathieu girard")).entries
    assert [(m.type, m.description) for m in girard.mailboxes] == [("PER", None), ("CAB", "Secrétariat du cabinet")]
    [labo] = (await directory.search(name="laboratoire", kind="structure")).entries
    assert {m.type for m in labo.mailboxes} == {"APP", "ORG"}


async def test_every_returned_mailbox_is_in_the_sandbox_trust_space(directory: Directory) -> None:
    found = await everything(directory, name="e", kind="structure", limit=50)
    for code in ("10", "21", "40", "50", "60", "70", "80"):
        found += await everything(directory, profession=code, limit=50)
    checks = TrustSpace.sandbox().check_recipients(sorted(addresses(found)))
    assert checks
    assert all(check.trusted for check in checks), [c.address for c in checks if not c.trusted]


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({}, "give a name"),
        ({"kind": "person", "city": "Paris"}, "needs a name or a profession"),
        ({"kind": "structure", "profession": "21"}, "persons only"),
        ({"profession": "astronaute"}, "unknown profession"),
        ({"profession": "99"}, "unknown profession"),
        ({"name": "x" * 101}, "too long"),
        ({"name": "---"}, "no letters"),
        ({"postal_code": "75 012"}, "postal code"),
        ({"name": "a", "kind": "everything"}, "kind"),
        ({"address": "12 rue des tilleuls"}, "give a name"),
    ],
)
async def test_bad_criteria_are_refused_without_echo(
    directory: Directory, criteria: dict[str, object], message: str
) -> None:
    with pytest.raises(DomainError) as raised:
        await directory.search(**criteria)  # type: ignore[arg-type]
    assert raised.value.code is ErrorCode.VALIDATION_FAILED
    assert message in (raised.value.detail or "")
    assert "astronaute" not in (raised.value.detail or "")


async def test_limit_is_clamped(directory: Directory) -> None:
    assert len((await directory.search(name="e", kind="structure", limit=0)).entries) <= 1
    assert len((await directory.search(name="e", kind="structure", limit=10_000)).entries) <= 50


QUERIES: list[dict[str, object]] = [
    {"name": "martin"},
    {"name": "ma", "limit": 4},
    {"profession": "pharmacien", "limit": 2},
    {"profession": "10", "city": "paris"},
    {"profession": "60", "postal_code": "69"},
    {"city": "Créteil", "kind": "structure"},
    {"name": "pharmacie", "kind": "structure", "limit": 3},
    {"name": "kine"},
    {"name": "dupont", "kind": "person"},
]


@pytest.mark.parametrize("criteria", QUERIES)
async def test_both_directories_agree(
    sandbox_directory: SandboxDirectory, fhir_directory: FhirDirectory, criteria: dict[str, object]
) -> None:
    def shape(entries: list[DirectoryEntry]) -> list[tuple[str, str, list[str], str, str | None]]:
        return [
            (e.kind, e.idnat, [m.address for m in e.mailboxes], fold(e.structure_name or ""), e.postal_code)
            for e in entries
        ]

    sandbox = await everything(sandbox_directory, **criteria)
    fhir = await everything(fhir_directory, **criteria)
    assert sorted(shape(sandbox)) == sorted(shape(fhir))
