"""The fast IMAP response paths give exactly what the byte-by-byte originals give — no server needed.

``parse_values`` tokenizes with one regex and falls back to the byte-by-byte ``_Reader`` (the
original, kept as the exact reference) on anything unusual; ``_paren_balance`` counts in C;
``parse_internal_date`` reads the usual shape without ``strptime``. Each is checked against its
reference on hand-picked cases and on generated input (hypothesis).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.mail.operator.imap_parse import (
    ImapParseError,
    Value,
    _FallbackError,
    _Reader,
    _tokenize,
    group_responses,
    parse_internal_date,
    parse_values,
)
from backend.mail.operator.imap_protocol import _paren_balance

FUZZ = settings(
    max_examples=int(os.environ.get("TEST_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: A Dovecot answer to the list page's FETCH (captured from the test instance), as aioimaplib hands it over.
DOVECOT_FETCH: list[bytes | bytearray] = [
    b'351 FETCH (UID 351 FLAGS (\\Seen $Forwarded) INTERNALDATE "22-Nov-2026 09:08:25 +0000" RFC822.SIZE 1857 '
    b'MODSEQ (401) BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 341 10 NIL NIL NIL NIL)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 441 6 NIL NIL NIL NIL) "alternative" '
    b'("boundary" "===============6393369540824952001==") NIL NIL NIL) '
    b"BODY[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)] {74}",
    bytearray(b"From: Thomas Lambert <thomas.lambert@infirmier.mssante.fr>\r\nSubject: x\r\n\r\n"),
    b")",
    b'352 FETCH (UID 352 FLAGS () INTERNALDATE " 3-Feb-2026 19:10:00 +0100" RFC822.SIZE 37934 MODSEQ (402) '
    b'BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 456 12 NIL NIL NIL NIL)'
    b'("image" "jpeg" NIL NIL NIL "base64" 36432 NIL ("attachment" ("filename" "plaie.jpg")) NIL NIL) "mixed" '
    b'("boundary" "b") NIL NIL NIL) BODY[HEADER.FIELDS (FROM)] {2}',
    bytearray(b"\r\n"),
    b")",
]


def reference(response: list[bytes]) -> list[Value] | type[ImapParseError]:
    """The original reader's answer, or ``ImapParseError`` when it refuses the response."""
    try:
        return _Reader(list(response)).values()
    except ImapParseError:
        return ImapParseError


def fast(response: list[bytes]) -> list[Value] | None:
    """The tokenizer's answer, or ``None`` when it hands the response over to the reference."""
    try:
        return _tokenize(response)
    except (_FallbackError, IndexError):
        return None


def assert_same(response: list[bytes]) -> None:
    expected = reference(response)
    got = fast(response)
    if got is not None:
        assert got == expected, response
    public: list[Value] | type[ImapParseError]
    try:
        public = parse_values(response)
    except ImapParseError:
        public = ImapParseError
    assert public == expected, response


def test_dovecot_fetch_takes_the_fast_path() -> None:
    groups = group_responses(DOVECOT_FETCH)
    assert len(groups) == 2
    for group in groups:
        assert fast(group) is not None  # no silent fallback on the everyday shape
        assert_same(group)
    values = parse_values(groups[0])
    fetched = values[2]
    assert isinstance(fetched, list)
    assert fetched[:4] == ["UID", "351", "FLAGS", ["\\Seen", "$Forwarded"]]
    assert fetched[-2] == "BODY[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)]"
    assert fetched[-1] == bytes(DOVECOT_FETCH[1])


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([b"A (B (C (D)) E) F"], ["A", ["B", ["C", ["D"]], "E"], "F"]),
        ([b"NIL nil NiL NILS (NIL)"], [None, None, None, "NILS", [None]]),
        ([b'"" "a b" "q\\"uote" "back\\\\slash" "(paren"'], [b"", b"a b", b'q"uote', b"back\\slash", b"(paren"]),
        ([b'"caf\xc3\xa9" \xc3\xa9t\xc3\xa9 "\xe9"'], [b"caf\xc3\xa9", "été", b"\xe9"]),
        ([b"\xff\xfe"], ["\ufffd\ufffd"]),
        ([b"X {3}", b"abc", b" Y"], ["X", b"abc", "Y"]),
        ([b"X ~{3}", b"a\x00c", b""], ["X", b"a\x00c"]),
        ([b"X {3+}", b"abc", b""], ["X", b"abc"]),
        ([b"X ({2}", b"ab", b" {0}", b"", b")"], ["X", [b"ab", b""]]),
        ([b"BODY[HEADER.FIELDS (A B)]<0> x"], ["BODY[HEADER.FIELDS (A B)]<0>", "x"]),
        ([b"BODY[a[b]c] x"], ["BODY[a[b]c]", "x"]),  # nested brackets: the slow path
        ([b"BODY[a (b"], ["BODY[a (b"]),  # unclosed bracket: to the end of the line
        ([b"a]b c"], ["a]b", "c"]),
        ([b'ab"c d'], ['ab"c', "d"]),
        ([b"~x y{z}"], ["~x", "y{z}"]),
        ([b"A  B   "], ["A", "B"]),
        ([b""], []),
        ([], []),
    ],
)
def test_values(segments: list[bytes], expected: list[Value]) -> None:
    assert parse_values(segments) == expected
    assert_same(segments)


@pytest.mark.parametrize(
    "segments",
    [
        [b'A "open'],
        [b"A (B"],
        [b"A )"],
        [b"A {5}", b"abc"],
        [b"A {3}"],
        [b"A {3} B", b"abc"],
        [b"A B", b"abc"],
        [b"{x}"],
        [b"~x {y"],
        [b"A ~{3}", b"ab", b""],
    ],
)
def test_malformed_responses_still_raise(segments: list[bytes]) -> None:
    with pytest.raises(ImapParseError):
        parse_values(segments)
    assert_same(segments)


# --- generated responses ------------------------------------------------------------------------

TEXT_PIECES = [b" ", b"  ", b"(", b")", b'"', b"\\", b"[", b"]", b"{", b"}", b"~", b"+", b"NIL", b"nil", b"a"]
TEXT_PIECES += [b"BODY[", b"1", b"42", b"\xc3\xa9", b"\xe9", b"\n", b"\r", b"\x00", b'"x y"', b"{3}", b"~{2}"]


@st.composite
def byte_soup(draw: st.DrawFn) -> list[bytes]:
    """Text segments of dangerous bytes, with literal segments between them (sizes often right)."""
    segments: list[bytes] = []
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        if index:
            size = draw(st.integers(min_value=0, max_value=4))
            segments[-1] += b"{%d}" % size
            segments.append(draw(st.binary(min_size=size, max_size=size)) if draw(st.booleans()) else b"xy")
        segments.append(b"".join(draw(st.lists(st.sampled_from(TEXT_PIECES), max_size=20))))
    return segments


@FUZZ
@given(byte_soup())
def test_byte_soup_reads_as_the_reference_reads_it(segments: list[bytes]) -> None:
    assert_same(segments)


def _atom() -> st.SearchStrategy[bytes]:
    chars = st.sampled_from(list(b'AZaz09.\\$%*<>-_:/]\x80\xc3\xa9"{}~+'))
    return st.lists(chars, min_size=1, max_size=8).map(bytes).filter(lambda b: b[:1] not in (b'"', b"{", b"~"))


values_tree = st.recursive(
    st.one_of(
        _atom().map(lambda b: ("atom", b)),
        st.binary(max_size=12).map(lambda b: ("quoted", b)),
        st.binary(max_size=12).map(lambda b: ("literal", b)),
        st.just(("nil", b"NIL")),
        _atom().map(lambda b: ("section", b"BODY[" + b.replace(b"[", b"").replace(b"]", b"") + b" (A B)]<1>")),
    ),
    lambda children: st.lists(children, max_size=4).map(lambda items: ("list", items)),
    max_leaves=25,
)


Node = tuple[str, Any]  # (kind, bytes payload or list of nodes)


def serialize(node: Node, segments: list[bytes]) -> None:
    """Append ``node`` in IMAP syntax to the last text segment (a literal opens a new one)."""
    kind, payload = node
    if kind == "list":
        segments[-1] += b"("
        for i, child in enumerate(payload):
            if i:
                segments[-1] += b" "
            serialize(child, segments)
        segments[-1] += b")"
    elif kind == "quoted":
        segments[-1] += b'"' + payload.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    elif kind == "literal":
        segments[-1] += b"{%d}" % len(payload)
        segments += [payload, b""]
    else:
        segments[-1] += payload


def expected_value(node: Node) -> Value:
    kind, payload = node
    if kind == "list":
        return [expected_value(child) for child in payload]
    if kind in {"quoted", "literal"}:
        return bytes(payload)
    text = payload.decode("utf-8", "replace")
    return None if text.upper() == "NIL" else text


@FUZZ
@given(st.lists(values_tree, min_size=1, max_size=4))
def test_generated_values_round_trip(nodes: list[Node]) -> None:
    segments = [b""]
    for i, node in enumerate(nodes):
        if i:
            segments[-1] += b" "
        serialize(node, segments)
    assert parse_values(segments) == [expected_value(node) for node in nodes]
    assert fast(segments) is not None  # well-formed input never needs the slow reader
    assert_same(segments)


# --- parenthesis balance --------------------------------------------------------------------------


def paren_balance_reference(line: bytes) -> int:
    """The original per-byte count."""
    depth = 0
    quoted = escaped = False
    for byte in line:
        if quoted:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                quoted = False
        elif byte == 0x22:
            quoted = True
        elif byte == 0x28:
            depth += 1
        elif byte == 0x29:
            depth -= 1
    return depth


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"(",
        b")",
        b'"("',
        b'"\\"("',
        b'"a\\',
        b'"(',
        b'a) "b\\\\" (',
        *[x for x in DOVECOT_FETCH if isinstance(x, bytes)],
    ],
)
def test_paren_balance(line: bytes) -> None:
    assert _paren_balance(line) == paren_balance_reference(line)


@FUZZ
@given(st.lists(st.sampled_from([b"(", b")", b'"', b"\\", b"a", b" ", b"\n", b"\xe9"]), max_size=40).map(b"".join))
def test_paren_balance_matches_the_byte_loop(line: bytes) -> None:
    assert _paren_balance(line) == paren_balance_reference(line)


# --- internal dates -----------------------------------------------------------------------------


def internal_date_reference(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def same_instant_and_zone(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    return a == b and (a is None or (b is not None and a.utcoffset() == b.utcoffset() and a.tzinfo == b.tzinfo))


@pytest.mark.parametrize(
    "text",
    [
        "17-Jul-1996 02:44:25 -0700",
        " 7-jul-2025 10:00:00 +0200",
        "22-NOV-2026 09:08:25 +0000",
        "01-Jan-2026 00:00:00 -0000",
        "31-Feb-2026 10:00:00 +0100",
        "17-Jul-1996 24:00:00 -0700",
        "17-Jul-1996 02:44:60 -0700",
        "17-Jul-1996 02:44:25 +2500",
        "17-Jul-1996 02:44:25 +0160",
        "17-Jux-1996 02:44:25 -0700",
        "17-Jul-1996  02:44:25 -0700",
        "17-Jul-1996 2:44:25 -0700",
        "17-Jul-1996 02:44:25 -07:00",
        "\u0661\u0667-Jul-1996 02:44:25 -0700",
        "",
    ],
)
def test_internal_dates(text: str) -> None:
    assert same_instant_and_zone(parse_internal_date(text), internal_date_reference(text))
    assert same_instant_and_zone(parse_internal_date(text.encode()), internal_date_reference(text))


def _date_text() -> st.SearchStrategy[str]:
    part: Callable[[list[str]], st.SearchStrategy[str]] = st.sampled_from
    return st.tuples(
        part(["1", "01", "7", " 7", "31", "32", "00", "0", "\u0663"]),
        part(["Jan", "feb", "MAR", "Jux", "Dec", "sep"]),
        part(["1996", "2026", "0000", "999"]),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 62),
        part(["+", "-"]),
        st.integers(0, 30),
        st.integers(0, 70),
        part([" ", "  ", "\t"]),
    ).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}{p[9]}{p[3]:02d}:{p[4]:02d}:{p[5]:02d} {p[6]}{p[7]:02d}{p[8]:02d}")


@FUZZ
@given(_date_text())
def test_internal_dates_match_strptime(text: str) -> None:
    assert same_instant_and_zone(parse_internal_date(text), internal_date_reference(text))
