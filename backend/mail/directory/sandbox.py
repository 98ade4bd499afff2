"""A local, in-memory directory for dev, the demo and tests (``MSSC_DIRECTORY_KIND=sandbox``).

Same interface, same publication rules and the same paging as the Annuaire Santé client; matching
is accent- and case-insensitive: every word of the name must occur in the entry's name, the
profession code must be equal, the postal code is a prefix, the city and street are matched as in
:mod:`backend.mail.directory.publication`. Results are sorted by folded name. The cursor is an
offset into the filtered, sorted list (the list is fixed, so offsets are stable).
"""

from __future__ import annotations

from collections.abc import Iterable

from backend.mail.directory.base import Directory
from backend.mail.directory.models import DirectoryEntry, EntryKind
from backend.mail.directory.page_tokens import invalid_page_token
from backend.mail.directory.publication import Candidate, PublicationStats, name_matches, publish, sort_key
from backend.mail.directory.query import SearchQuery
from backend.mail.directory.sandbox_data import SANDBOX_RECORDS


class SandboxDirectory(Directory):
    """Searches :data:`SANDBOX_RECORDS` (or the records given, for tests)."""

    def __init__(
        self, records: Iterable[Candidate] = SANDBOX_RECORDS, *, token_secret: bytes | str | None = None
    ) -> None:
        super().__init__(token_secret=token_secret)
        self._records = sorted(records, key=sort_key)

    def _matching(self, side: EntryKind, query: SearchQuery) -> list[DirectoryEntry]:
        stats = PublicationStats()
        entries: list[DirectoryEntry] = []
        for record in self._records:
            if record.kind != side or not name_matches(record, query):
                continue
            if query.profession_code and record.profession_code != query.profession_code:
                continue
            entry = publish(record, query, stats, check_place=True)
            if entry is not None:
                entries.append(entry)
        return entries

    async def _page(
        self, side: EntryKind, query: SearchQuery, cursor: str | None, limit: int
    ) -> tuple[list[DirectoryEntry], str | None]:
        if cursor is None:
            offset = 0
        elif cursor.isdigit():
            offset = int(cursor)
        else:
            raise invalid_page_token()
        entries = self._matching(side, query)
        end = offset + limit
        return entries[offset:end], (str(end) if end < len(entries) else None)
