"""``Content-Type`` / ``Content-Disposition`` parameters, with RFC 2231 continuations and charsets.

Our own small reader rather than the ``email`` package's, because filenames are where mailers
disagree most: ``filename*0*=utf-8''…; filename*1*=…`` continuations, RFC 2047 words inside quoted
values (Outlook), raw 8-bit bytes (old Mac mailers), unterminated quotes. It never fails.
"""

from __future__ import annotations

import re

from backend.mail.mime.charsets import decode_bytes, decode_header_bytes, finish_text
from backend.mail.mime.encoded_words import decode_words
from backend.mail.mime.model import ParseProblem

_MAX_VALUE = 16_384
_SECTION = re.compile(r"(?P<base>[^*]+)\*(?:(?P<index>\d{1,3})(?P<ext>\*)?)?")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def to_bytes(text: str) -> bytes:
    """Back to the wire bytes of a value the ``email`` package read with ``surrogateescape``."""
    return text.encode("utf-8", "surrogateescape")


def _split(value: str) -> list[str]:
    """Split on ``;`` outside double quotes (backslash escapes honoured)."""
    pieces: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in value[:_MAX_VALUE]:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            pieces.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    pieces.append("".join(buf))
    return pieces


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        inner = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


def parse_header_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """``text/plain; charset="utf-8"`` → (``text/plain``, [(``charset``, ``utf-8``)]). Names lower-cased."""
    value = re.sub(r"\r?\n[ \t]", " ", value)
    first, *rest = _split(value)
    pairs: list[tuple[str, str]] = []
    for piece in rest:
        name, sep, raw = piece.partition("=")
        name = name.strip().lower()
        if sep and name:
            pairs.append((name, _unquote(raw)))
    return first.strip().lower(), pairs


def _percent_decode(text: str) -> bytes:
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), to_bytes(text))


def param_text(value: str, problems: list[ParseProblem]) -> str:
    """A plain parameter value as text: raw 8-bit decoded, RFC 2047 words (not allowed, common) decoded."""
    raw = to_bytes(value)
    if not raw.isascii():
        value, found = decode_header_bytes(raw)
        problems.extend(found)
    if "=?" in value:
        value, found = decode_words(value)
        problems.extend(found)
    return finish_text(value, problems)


def combine_params(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], list[ParseProblem]]:
    """Merge RFC 2231 sections and decode every value to text.

    An extended value (``name*``) wins over a plain one of the same name, as RFC 6266 asks.
    """
    problems: list[ParseProblem] = []
    result: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value in pairs:
        match = _SECTION.fullmatch(name)
        if match is None:
            if name not in result:
                result[name] = param_text(value, problems)
            continue
        index = int(match.group("index")) if match.group("index") is not None else 0
        extended = match.group("index") is None or match.group("ext") is not None
        sections.setdefault(match.group("base"), {}).setdefault(index, (value, extended))
    for base, parts in sections.items():
        charset: str | None = None
        data = bytearray()
        for position, index in enumerate(sorted(parts)):
            value, extended = parts[index]
            if not extended:
                data.extend(to_bytes(value))
                continue
            if position == 0 and value.count("'") >= 2:
                charset, _lang, value = value.split("'", 2)
            data.extend(_percent_decode(value))
        text, found = decode_bytes(bytes(data), charset or None)
        problems.extend(found)
        if "=?" in text:
            text, found = decode_words(text)
            problems.extend(found)
        result[base] = finish_text(text, problems)
    return result, problems


def header_params(value: str) -> tuple[str, dict[str, str], list[ParseProblem]]:
    """Main value, merged parameters and problems for one structured header value."""
    main, pairs = parse_header_params(value)
    params, problems = combine_params(pairs)
    return main, params, problems
