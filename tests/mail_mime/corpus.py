"""The MIME test corpus: realistic French medical mail with fictitious people and data.

Each ``.eml`` under ``corpus/`` is raw RFC 5322 as an IMAP ``BODY.PEEK[]`` returns it, covering what
breaks mail readers: legacy and undeclared charsets, broken multiparts, bad encoded words, RFC 2231
filenames, hostile HTML, read receipts, IHE_XDM packages. The demo seeding and other tests reuse it.
"""

from __future__ import annotations

from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "corpus"


def corpus_messages() -> list[tuple[str, bytes]]:
    """(file name, raw bytes) of every corpus message, in name order."""
    return [(path.name, path.read_bytes()) for path in sorted(CORPUS_DIR.glob("*.eml"))]


def corpus_message(name: str) -> bytes:
    return (CORPUS_DIR / name).read_bytes()
