"""One validated search, the same for every directory implementation.

Rules (so the sandbox and the Annuaire Santé behave alike):
- at least one criterion; each at most 100 characters; ``limit`` clamped to 1..50 (the Annuaire
  serves 50 results a page, H);
- ``profession`` is a code (``21``) or a word (``pharmacienne``, ``kiné``); unknown words are
  refused rather than silently matching nothing;
- a *person* search needs a name or a profession: the Annuaire cannot filter professionals by
  place on the server, so a place-only person search would page through every professional of
  France. With ``kind="any"`` and only a place, only structures are searched;
- a *structure* search needs a name, a city or a postal code (a street alone is too broad);
- ``profession`` applies to persons only: with it, structures are not searched.

The query's ``fingerprint`` binds a page token to the search that produced it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from backend.mail.directory.models import EntryKind, SearchKind
from backend.mail.directory.text import fold, profession_code, words
from contracts.errors import ErrorCode
from core.errors import DomainError

MAX_LIMIT = 50
_MAX_FIELD = 100
_KINDS: frozenset[str] = frozenset({"person", "structure", "any"})


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if len(value) > _MAX_FIELD:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "a search field is too long")
    return value or None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    kind: SearchKind
    limit: int
    name: str | None = None
    profession_code: str | None = None
    city: str | None = None
    postal_code: str | None = None
    address: str | None = None

    @classmethod
    def build(
        cls,
        *,
        name: str | None,
        profession: str | None,
        city: str | None,
        postal_code: str | None,
        address: str | None,
        kind: str,
        limit: int,
    ) -> SearchQuery:
        if kind not in _KINDS:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "kind must be person, structure or any")
        code: str | None = None
        profession = _clean(profession)
        if profession is not None:
            code = profession_code(profession)
            if code is None:
                raise DomainError(ErrorCode.VALIDATION_FAILED, "unknown profession")
        postal_code = _clean(postal_code)
        if postal_code is not None and not (postal_code.isascii() and postal_code.isalnum()):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "a postal code is digits only")
        query = cls(
            kind=kind,  # type: ignore[arg-type]  # checked against _KINDS above
            limit=max(1, min(int(limit), MAX_LIMIT)),
            name=_clean(name),
            profession_code=code,
            city=_clean(city),
            postal_code=postal_code.upper() if postal_code else None,
            address=_clean(address),
        )
        if query.name is not None and not words(query.name):
            raise DomainError(ErrorCode.VALIDATION_FAILED, "the name has no letters or digits")
        if not query.sides:
            raise DomainError(ErrorCode.VALIDATION_FAILED, query._no_side_reason())
        return query

    @property
    def has_place(self) -> bool:
        return any((self.city, self.postal_code, self.address))

    @property
    def sides(self) -> tuple[EntryKind, ...]:
        """Which kinds this query searches, in the order results are returned."""
        sides: list[EntryKind] = []
        if self.kind in ("person", "any") and (self.name or self.profession_code):
            sides.append("person")
        if (
            self.kind in ("structure", "any")
            and self.profession_code is None
            and (self.name or self.city or self.postal_code)
        ):
            sides.append("structure")
        return tuple(sides)

    def _no_side_reason(self) -> str:
        if self.kind == "structure" and self.profession_code is not None:
            return "profession applies to persons only"
        if self.kind == "person":
            return "a person search needs a name or a profession"
        return "give a name, a profession, a city or a postal code"

    @property
    def name_words(self) -> list[str]:
        return words(self.name) if self.name else []

    @property
    def fingerprint(self) -> str:
        """Short digest of the criteria (not the limit): a page token only continues its own search."""
        parts = (self.kind, self.name, self.profession_code, self.city, self.postal_code, self.address)
        canonical = "\x1f".join(fold(p) if p else "" for p in parts)
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]
