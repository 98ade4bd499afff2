"""Bytes to text for mail, when the declared charset is missing, unknown or wrong.

The seed complaint was "messages written on a Mac arrive full of cabalistic signs on a PC": Mac
Roman text read as Latin-1, UTF-8 read as Windows-1252 and the reverse. So we never trust a label
blindly: UTF-8 is checked strictly (a valid multi-byte UTF-8 sequence is almost never legacy French
text), Latin-1 labels are read as Windows-1252 (as browsers do: ``€``, ``œ`` and the curly apostrophe live there),
and unlabelled 8-bit text is scored against the legacy charsets French mail really uses.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Callable

from backend.mail.mime.model import ParseProblem

#: Names seen in the wild that Python does not know, or knows under another meaning.
_ALIASES: dict[str, str] = {
    "x-mac-roman": "mac-roman",
    "mac": "mac-roman",
    "x-mac": "mac-roman",
    "macroman": "mac-roman",
    "x-mac-ce": "mac-latin2",
    "x-cp1252": "cp1252",
    "x-ansi": "cp1252",
    "ansi": "cp1252",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "utf8mb4": "utf-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso8859-8",
    "x-sjis": "shift_jis",
    "windows-874": "cp874",
}

#: Labels that say "I don't know": decoded as undeclared text.
_UNKNOWN = frozenset(
    {"x-user-defined", "unknown-8bit", "unknown", "x-unknown", "default", "_autodetect", "_autodetect_all", "binary"}
)

#: Python codecs that are text encodings in name only; decoding mail with them makes no sense.
_REFUSED_CODECS = frozenset({"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "charmap"})

#: Single-byte charsets where the UTF-8 check and the legacy scoring apply.
_LEGACY = frozenset({"iso8859-1", "cp1252", "iso8859-15", "mac-roman", "ascii"})

#: Charsets tried for unlabelled 8-bit text, most likely first (ties go to the first).
_CANDIDATES = ("cp1252", "iso8859-15", "mac-roman")

_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")

_FRENCH_LOWER = frozenset("éèêëàâäîïôöùûüçœæÿ")
_FRENCH_PUNCT = frozenset("«»\u2019\u2018“”€\u2013—…°")


def lookup_charset(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None if unusable (then treat as undeclared)."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*fr
    if not name or name in _UNKNOWN or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None
    return info.name


def _cp1252(data: bytes) -> str:
    """Windows-1252, with the five bytes it leaves undefined read as Latin-1 (never fails)."""
    return data.decode("cp1252", errors="mssc_latin1_fill")


def _latin1_fill(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


def _cp1252_fill(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _cp1252(error.object[error.start : error.end]), error.end


codecs.register_error("mssc_cp1252_fill", _cp1252_fill)
codecs.register_error("mssc_latin1_fill", _latin1_fill)

#: C1 controls are never meant in mail: they are Windows-1252 characters under an ISO label.
_C1_AS_CP1252 = {c: _cp1252(bytes([c])) for c in range(0x80, 0xA0)}


def _decode_legacy(data: bytes, codec: str) -> str:
    if codec in {"cp1252", "iso8859-1", "ascii"}:
        return _cp1252(data)
    text = data.decode(codec, errors="replace")
    return text.translate(_C1_AS_CP1252) if codec.startswith("iso8859") else text


_NON_ASCII = re.compile("[^\x00-\x7f]")
#: Bytes scored when choosing a charset; the winner then decodes everything.
_SAMPLE = 65_536


def french_score(text: str) -> float:
    """How much a decoding looks like (French) prose. Only the non-ASCII characters count.

    Mis-decoded text shows capitals inside words (``rÈsultat``), symbols inside words (``r‡ponse``)
    and C1 control characters; right text shows lower-case accented letters and French punctuation.
    """
    score = 0.0
    last = len(text) - 1
    for match in _NON_ASCII.finditer(text):
        i, ch = match.start(), match.group()
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i < last else " "
        inside_word = before.isalpha() and after.isalpha()
        if "\x80" <= ch <= "\x9f" or ch == "\ufffd":
            score -= 5
        elif ch in _FRENCH_LOWER:
            score += 2
        elif ch == "\u2019" and inside_word:
            score += 2  # the French (curly) apostrophe inside words: d'avis, l'équipe
        elif ch in _FRENCH_PUNCT:
            score += 1 if not inside_word else -1
        elif ch.isalpha():
            if ch.isupper() and before.islower():
                score -= 3
        else:
            score -= 2 if inside_word or before.isalpha() else 0.5
    return score


def _pick(data: bytes, decoders: list[Callable[[bytes], str]]) -> str:
    """Decode with the most French-looking of ``decoders``, judged on a sample; ties go to the first."""
    sample = data[:_SAMPLE]
    scores = [french_score(decode(sample)) for decode in decoders]
    best = max(range(len(decoders)), key=lambda i: (scores[i], -i))
    return decoders[best](data)


def _legacy_decoder(codec: str) -> Callable[[bytes], str]:
    return lambda data: _decode_legacy(data, codec)


def guess_legacy(data: bytes) -> str:
    """Best of the legacy charsets for text known not to be UTF-8."""
    return _pick(data, [_legacy_decoder(codec) for codec in _CANDIDATES])


def _mixed_utf8(data: bytes) -> str:
    """Mostly UTF-8 with stray Windows-1252 bytes (a pasted signature): each invalid byte read alone."""
    return data.decode("utf-8", errors="mssc_cp1252_fill")


def _not_utf8(data: bytes) -> str:
    """Invalid UTF-8: mostly UTF-8 with stray legacy bytes, or legacy text where a few byte pairs
    happen to look like UTF-8 (Mac Roman apostrophe then ``é`` is ``\xd5\x8e``). The scores decide."""
    legacy = [_legacy_decoder(codec) for codec in _CANDIDATES]
    sample = data[:_SAMPLE]
    invalid = len(sample) - len(sample.decode("utf-8", "ignore").encode("utf-8"))
    mostly_utf8 = len(_UTF8_MULTIBYTE.findall(sample)) > invalid  # else per-byte repair is neither right nor cheap
    return _pick(data, [_mixed_utf8, *legacy] if mostly_utf8 else legacy)


def decode_header_bytes(raw: bytes) -> tuple[str, list[ParseProblem]]:
    """Raw 8-bit bytes in a header or parameter: UTF-8 is legitimate there (RFC 6532), legacy is guessed."""
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        return decode_bytes(raw, None)


_WIDE = frozenset({"utf-16", "utf-32", "utf-7", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"})


def _undeclared(data: bytes, problem: ParseProblem) -> tuple[str, list[ParseProblem]]:
    try:
        return data.decode("utf-8"), [problem]
    except UnicodeDecodeError:
        return _not_utf8(data), [problem]


def _declared_utf8(data: bytes) -> tuple[str, list[ParseProblem]]:
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        return _not_utf8(data), [ParseProblem.WRONG_CHARSET]


def _declared_legacy(data: bytes, codec: str) -> tuple[str, list[ParseProblem]]:
    """A single-byte label: believed unless the bytes are plainly UTF-8 (or it says ASCII, then guessed)."""
    if _UTF8_MULTIBYTE.search(data):
        try:
            return data.decode("utf-8"), [ParseProblem.WRONG_CHARSET]
        except UnicodeDecodeError:
            pass
    if codec == "ascii":
        return guess_legacy(data), [ParseProblem.WRONG_CHARSET]
    return _decode_legacy(data, codec), []


def _declared_other(data: bytes, codec: str) -> tuple[str, list[ParseProblem]]:
    try:
        return data.decode(codec), []
    except UnicodeDecodeError:
        try:
            return data.decode("utf-8"), [ParseProblem.WRONG_CHARSET]
        except UnicodeDecodeError:
            return data.decode(codec, errors="replace"), [ParseProblem.WRONG_CHARSET]
    except Exception:  # noqa: BLE001 - a codec that fails in other ways (stateful CJK codecs on garbage)
        return _undeclared(data, ParseProblem.WRONG_CHARSET)


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, list[ParseProblem]]:
    """Decode ``data`` labelled ``declared``; never fails. Returns the text and what was worked around."""
    label = (declared or "").strip()
    codec = lookup_charset(label)
    if codec not in _WIDE and data.isascii():
        return data.decode("ascii"), []
    if codec is None:
        return _undeclared(data, ParseProblem.UNKNOWN_CHARSET if label else ParseProblem.UNDECLARED_CHARSET)
    if codec == "utf-8":
        return _declared_utf8(data)
    if codec in _LEGACY:
        return _declared_legacy(data, codec)
    return _declared_other(data, codec)


#: Typical double-decoding traces: UTF-8 bytes read as Windows-1252 or Latin-1.
_MOJIBAKE = re.compile(
    "[ÃÂ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]|â€"
)


def repair_mojibake(text: str) -> tuple[str, bool]:
    """Undo one level of UTF-8-read-as-Windows-1252 (``Ã©`` → ``é``) when the whole text round-trips."""
    if not _MOJIBAKE.search(text):
        return text, False
    for legacy in ("cp1252", "latin-1"):
        try:
            fixed = text.encode(legacy).decode("utf-8")
        except UnicodeError:
            continue
        if len(_MOJIBAKE.findall(fixed)) < len(_MOJIBAKE.findall(text)):
            return fixed, True
    return text, False


def finish_text(text: str, problems: list[ParseProblem]) -> str:
    """Last touches for any decoded text: mojibake repair, NFC (macOS writes decomposed accents)."""
    if text.isascii():  # neither applies to ASCII (and str.isascii is O(1))
        return text
    text, repaired = repair_mojibake(text)
    if repaired:
        problems.append(ParseProblem.MOJIBAKE_REPAIRED)
    return unicodedata.normalize("NFC", text)
