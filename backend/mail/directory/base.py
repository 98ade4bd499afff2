"""The ``Directory`` interface: one search method, the same paging and filtering for every backend.

``search`` validates the query (``SearchQuery``), decodes the page token, asks the backend for one
page of each side still searched (persons, structures; concurrently), drops entries without a
publishable mailbox, and seals the next cursors into a new token. Backends implement ``_page``
only, and must never return an entry or mailbox on the liste rouge.

Logs carry the kind searched and counts, never a search term (names and places typed on a phone
may be a patient's).
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod

from backend.mail.directory.models import DirectoryEntry, DirectoryPage, EntryKind, SearchKind
from backend.mail.directory.page_tokens import PageTokenCodec
from backend.mail.directory.query import SearchQuery
from core.logging import get_logger

log = get_logger("mssc.directory")


class Directory(ABC):
    """Search professionals and structures with MSSanté mailboxes."""

    def __init__(self, *, token_secret: bytes | str | None = None, token_max_age_s: int = 3600) -> None:
        self._tokens = PageTokenCodec(token_secret, max_age_s=token_max_age_s)

    async def search(
        self,
        *,
        name: str | None = None,
        profession: str | None = None,
        city: str | None = None,
        postal_code: str | None = None,
        address: str | None = None,
        kind: SearchKind = "any",
        limit: int = 20,
        page_token: str | None = None,
    ) -> DirectoryPage:
        """One page of results. Pass the same criteria with ``page_token`` to get the next one.

        Raises ``validation_failed`` (bad criteria), ``invalid_page_token`` (token from another
        search, tampered or expired) and ``directory_unavailable`` (backend down, with
        ``retry_after``).
        """
        started = time.monotonic()
        query = SearchQuery.build(
            name=name,
            profession=profession,
            city=city,
            postal_code=postal_code,
            address=address,
            kind=kind,
            limit=limit,
        )
        cursors: dict[EntryKind, str | None]
        if page_token:
            state = self._tokens.decode(page_token, fingerprint=query.fingerprint)
            cursors = {side: state.cursors[side] for side in query.sides if side in state.cursors}
        else:
            cursors = dict.fromkeys(query.sides)
        limits = _split(query.limit, list(cursors))
        sides = list(cursors)
        results = await asyncio.gather(
            *(self._page(side, query, cursors[side], limits[side]) for side in sides), return_exceptions=True
        )
        entries: list[DirectoryEntry] = []
        next_cursors: dict[str, str] = {}
        for side, result in zip(sides, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            side_entries, next_cursor = result
            entries.extend(entry for entry in side_entries if entry.mailboxes)
            if next_cursor is not None:
                next_cursors[side] = next_cursor
        token = self._tokens.encode(fingerprint=query.fingerprint, cursors=next_cursors)
        log.info(
            "directory.search",
            backend=type(self).__name__,
            kind=query.kind,
            sides=len(sides),
            returned=len(entries),
            more=token is not None,
            ms=round((time.monotonic() - started) * 1000),
        )
        return DirectoryPage(entries=entries, next_page_token=token)

    @abstractmethod
    async def _page(
        self, side: EntryKind, query: SearchQuery, cursor: str | None, limit: int
    ) -> tuple[list[DirectoryEntry], str | None]:
        """Up to ``limit`` entries of ``side`` from ``cursor`` (``None``: the first page), and the next cursor."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections (nothing by default)."""


def _split(limit: int, sides: list[EntryKind]) -> dict[EntryKind, int]:
    """Share the page between the sides still searched; persons get the odd one."""
    if len(sides) < 2:
        return dict.fromkeys(sides, limit)
    first = max(1, math.ceil(limit / 2))
    return {sides[0]: first, sides[1]: max(1, limit - first)}
