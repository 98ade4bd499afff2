"""RFC 2047 encoded words (``=?charset?Q|B?…?=``), decoded leniently.

Real mail breaks the rules in known ways, and we accept them all: spaces inside a Q word, words
glued to plain text or inside quoted display names, a multi-byte character split across two
adjacent words (so adjacent words of one charset are joined as bytes before decoding), base64
without padding, unknown charsets (then guessed). A word we cannot decode stays as written.
"""

from __future__ import annotations

import base64
import binascii
import re

from backend.mail.mime.charsets import decode_bytes
from backend.mail.mime.model import ParseProblem

#: A Q payload may hold spaces (broken mailers), never the start of another word. A word cut at the end counts.
_WORD = re.compile(r"=\?([^?\s]{1,64})\?([QqBb])\?((?:(?!=\?[^?\s]{1,64}\?[QqBb]\?)[^\r\n])*?)(?:\?=|$)")
_STARTED = re.compile(r"=\?[^?\s]{1,64}\?[QqBb]\?")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")


def _q_decode(payload: str) -> bytes:
    raw = payload.encode("utf-8", "surrogateescape").replace(b"_", b" ")
    return _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _b_decode(payload: str) -> bytes | None:
    """Padding may be missing; any other character outside the alphabet means a damaged word."""
    raw = payload.encode("utf-8", "surrogateescape").rstrip(b"=")
    if not raw or _NOT_B64.search(raw) or len(raw) % 4 == 1:
        return None
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return None


def decode_words(text: str) -> tuple[str, list[ParseProblem]]:
    """Decode every encoded word in ``text`` (whose raw 8-bit bytes are already decoded)."""
    if "=?" not in text:
        return text, []
    problems: list[ParseProblem] = []
    out: list[str] = []
    run_charset: str | None = None
    run = bytearray()
    after_word = False

    def flush() -> None:
        nonlocal run_charset
        if run_charset is not None:
            decoded, found = decode_bytes(bytes(run), run_charset)
            out.append(decoded)
            problems.extend(found)
            run.clear()
            run_charset = None

    pos = 0
    words = 0
    for match in _WORD.finditer(text):
        words += 1
        between = text[pos : match.start()]
        pos = match.end()
        if between and not (after_word and between.isspace()):
            flush()
            out.append(between)
        charset, kind, payload = match.group(1).lower(), match.group(2).upper(), match.group(3)
        data = _q_decode(payload) if kind == "Q" else _b_decode(payload)
        if not match.group(0).endswith("?="):
            problems.append(ParseProblem.BAD_ENCODED_WORD)
        if data is None:
            flush()
            out.append(match.group(0))
            problems.append(ParseProblem.BAD_ENCODED_WORD)
            after_word = False
            continue
        if run_charset != charset:
            flush()
            run_charset = charset
        run.extend(data)
        after_word = True
    flush()
    out.append(text[pos:])
    if len(_STARTED.findall(text)) > words:
        problems.append(ParseProblem.BAD_ENCODED_WORD)
    return "".join(out), problems
