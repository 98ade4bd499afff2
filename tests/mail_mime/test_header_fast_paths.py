"""The summary's fast paths give exactly what the stdlib gives, or step aside.

``split_header_block`` stands for ``BytesParser(policy=compat32)`` + ``raw_items()`` and
``simple_address_pairs`` for ``email.utils.getaddresses``: each must return the stdlib's answer or
``None`` (then the stdlib runs). Checked on hand-picked cases, the corpus and generated input; and
``parse_summary`` as a whole against the same function with both fast paths switched off.
"""

from __future__ import annotations

import email.parser
import email.policy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import getaddresses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.mail.mime import headers as header_module
from backend.mail.mime import parse as parse_module
from backend.mail.mime import parse_summary
from backend.mail.mime.headers import parse_addresses, simple_address_pairs, split_header_block
from backend.mail.mime.model import ParseProblem
from tests.mail_mime.corpus import corpus_messages

FUZZ = settings(
    max_examples=int(os.environ.get("TEST_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def stdlib_items(block: bytes) -> list[tuple[str, str]]:
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(block, headersonly=True)
    return list(message.raw_items())


def header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 4]


@contextmanager
def fast_paths_off() -> Iterator[None]:
    """Both fast paths declining everything: what ``parse_summary`` did before them."""
    saved = parse_module.split_header_block, header_module.simple_address_pairs
    parse_module.split_header_block = lambda block: None
    header_module.simple_address_pairs = lambda value: None
    try:
        yield
    finally:
        parse_module.split_header_block, header_module.simple_address_pairs = saved


# --- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pairs"),
    [
        ("a@b.fr", [("", "a@b.fr")]),
        ("  jean.dupont@medecin.mssante.fr  ", [("", "jean.dupont@medecin.mssante.fr")]),
        ("Jean Dupont <j@x.fr>", [("Jean Dupont", "j@x.fr")]),
        ("J.  Dupont\t<j@x.fr>", [("J. Dupont", "j@x.fr")]),
        ("<j@x.fr>", [("", "j@x.fr")]),
        ('"Dupont, Jean" <j@x.fr>, b@y.fr', [("Dupont, Jean", "j@x.fr"), ("", "b@y.fr")]),
        ('"" <j@x.fr>', [("", "j@x.fr")]),
        ('a"b c"<j@x.fr>', [("a b c", "j@x.fr")]),
        ("Dr =?utf-8?q?=C3=89lodie?= Marchand <e@m.fr>", [("Dr =?utf-8?q?=C3=89lodie?= Marchand", "e@m.fr")]),
        ("=?utf-8?b?UmjDtG5l?= <r@l.fr>,", [("=?utf-8?b?UmjDtG5l?=", "r@l.fr")]),
        ("=?utf-8?q?Dupont=2C_Jean?= <j@x.fr>", [("=?utf-8?q?Dupont=2C_Jean?=", "j@x.fr")]),
        ("Hélène Garnier <h@p.fr>", [("Hélène Garnier", "h@p.fr")]),
    ],
)
def test_simple_addresses(value: str, pairs: list[tuple[str, str]]) -> None:
    assert simple_address_pairs(value) == pairs == getaddresses([value])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "undisclosed-recipients:;",
        "Équipe: a@b.fr, c@d.fr;",
        "a@b.fr (Jean Dupont)",
        "Jean (Dr) <j@x.fr>",
        '"Secr\\"étariat" <s@x.fr>',
        "<@route:a@b.fr>",
        "a@[192.0.2.1]",
        "a@@b.fr",
        "a.@b.fr",
        "a@b.fr,, c@d.fr",
        "a@b.fr, ",
        "< a@b.fr >",
        "Jean <a@b.fr",
        '"open <a@b.fr>',
        "a@b.fr\r\nc@d.fr",
        "a\x01@b.fr",
        "Jean Dupont",
    ],
)
def test_unusual_addresses_go_to_the_stdlib(value: str) -> None:
    assert simple_address_pairs(value) is None
    with_fast: list[ParseProblem] = []
    without: list[ParseProblem] = []
    found = parse_addresses(value, with_fast)
    with fast_paths_off():
        assert parse_addresses(value, without) == found
    assert with_fast == without


NAME_WORDS = ["Jean", "Dupont", "J.", "Dr", "=?utf-8?q?=C3=89lodie?=", "=?utf-8?b?UmjDtG5l?=", "é", '"a, b"']
NAME_WORDS += ['""', '"x\\"y"', "(comment)", "x,y", "a:b", ";", ".", "=?iso-8859-1?q?H=E9l=E8ne?="]
ADDRESSES = ["a@b.fr", "jean.dupont@medecin.mssante.fr", "x+y@sub.d-1.fr", "a..b@c.fr", "a@b", "@b.fr", "a@"]
ADDRESSES += ['"q u"@b.fr', "a@[1.2.3.4]", "a@b.fr.", "é@b.fr", "a@b@c.fr"]
SPACES = ["", " ", "  ", "\t", "\r\n ", "\n"]


@st.composite
def address_lists(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        if i:
            parts.append(draw(st.sampled_from([",", ", ", " ,", ",,", ";", " "])))
        space = draw(st.sampled_from(SPACES))
        address = draw(st.sampled_from(ADDRESSES))
        words = draw(st.lists(st.sampled_from(NAME_WORDS), max_size=3))
        shape = draw(st.sampled_from(["bare", "angle", "named", "group", "broken"]))
        name = space.join(words) if space else "".join(words)
        if shape == "bare":
            parts.append(space + address + space)
        elif shape == "angle":
            parts.append(f"{space}<{address}>{space}")
        elif shape == "named":
            parts.append(f"{name}{space}<{address}>")
        elif shape == "group":
            parts.append(f"{name or 'g'}: {address};")
        else:
            parts.append(draw(st.sampled_from([f"{name} <{address}", f"{name} {address}>", f"<{address}> x"])))
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from([",", " ", ", ", "\t"])))
    return "".join(parts)


GOOD_WORDS = ["Jean", "Dupont", "J.", ".x", "=?utf-8?q?=C3=89lodie?=", "=?utf-8?b?UmjDtG5l?=", "é", '"a, b"', '""']
GOOD_ADDRESSES = ["a@b.fr", "jean.dupont@medecin.mssante.fr", "x+y=z@sub.d-1.fr", "é@b.fr", "a@b", "{x}@y.z"]


@st.composite
def simple_address_lists(draw: st.DrawFn) -> str:
    """Mostly the shapes the fast path takes, with the spacing variations it must get right."""
    parts: list[str] = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        if i:
            parts.append(draw(st.sampled_from([",", ", ", " , ", ",\t"])))
        space = draw(st.sampled_from(["", " ", "  ", "\t"]))
        words = draw(st.lists(st.sampled_from(GOOD_WORDS), max_size=3))
        gap = draw(st.sampled_from([" ", "  ", "\t", ""]))
        address = draw(st.sampled_from(GOOD_ADDRESSES))
        if draw(st.booleans()):
            parts.append(space + address + space)
        else:
            parts.append(f"{space}{gap.join(words)}{draw(st.sampled_from(['', ' ', '  ']))}<{address}>{space}")
    if draw(st.booleans()):
        parts.append(",")
    return "".join(parts)


@FUZZ
@given(st.one_of(address_lists(), simple_address_lists()))
def test_generated_addresses_match_getaddresses(value: str) -> None:
    pairs = simple_address_pairs(value)
    if pairs is not None:
        assert pairs == getaddresses([value])


@FUZZ
@given(st.text(alphabet=st.sampled_from(list('aé.@<>", ;:()\\[]\t\r\n=?_-x\x00')), max_size=40))
def test_random_text_addresses_match_getaddresses(value: str) -> None:
    pairs = simple_address_pairs(value)
    if pairs is not None:
        assert pairs == getaddresses([value])


def test_hostile_address_input_is_quick() -> None:
    # Possessive patterns: no backtracking blow-up on a long run of name characters.
    value = "a" * 50_000 + "!"
    assert simple_address_pairs(value) is None


# --- header blocks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        b"",
        b"\r\n",
        b"Subject: x\r\n\r\n",
        b"Subject: x",
        b"Subject:\r\n =?utf-8?q?x?=\r\n\t y \r\n\r\nbody",
        b"Subject:   \r\n\r\n",
        b"Subject: a\r\nSubject: b\r\nX-Y:z\r\n\r\n",
        b"Subject: caf\xc3\xa9 \xe9\r\n\r\n",
        b"Subject: a:b:c\r\n\r\n",
    ],
)
def test_regular_header_blocks(block: bytes) -> None:
    assert split_header_block(block) == stdlib_items(block)


@pytest.mark.parametrize(
    "block",
    [
        b"Subject: x\n\n",
        b"Subject: x\r\rTo: y\r\n",
        b" leading continuation\r\nSubject: x\r\n",
        b"From someone@x Mon Jan 1\r\nSubject: x\r\n",
        b"Subject: x\r\nnot a header\r\nTo: y\r\n",
        b": no name\r\nSubject: x\r\n",
        b"Bad Name: x\r\n",
    ],
)
def test_irregular_header_blocks_go_to_the_stdlib(block: bytes) -> None:
    assert split_header_block(block) is None


LINES = [b"Subject: x", b"From: J <j@x.fr>", b"To:", b" continued", b"\tcontinued", b"", b"garbage"]
LINES += [b"From x", b": v", b"X-8bit: \xe9\xc3\xa9", b"A:B:C", b"Bad Name: v", b"X: \x00\x0b\x0c\x1c"]
ENDS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""]


REGULAR_LINES = [b"Subject: x", b"From: J <j@x.fr>", b"To:", b" continued", b"\tcontinued", b"X-8bit: \xe9\xc3\xa9"]
REGULAR_LINES += [b"A:B:C", b"X-Y:  \t v \t", b"X: \x00\x0b\x0c\x1c"]


@FUZZ
@given(
    st.one_of(
        st.lists(st.tuples(st.sampled_from(LINES), st.sampled_from(ENDS)), max_size=8),
        st.lists(st.tuples(st.sampled_from(REGULAR_LINES), st.just(b"\r\n")), max_size=8),
    ),
    st.sampled_from([b"", b"\r\n", b"\r\nbody\r\n"]),
)
def test_generated_header_blocks_match_the_stdlib(lines: list[tuple[bytes, bytes]], tail: bytes) -> None:
    block = b"".join(line + end for line, end in lines) + tail
    items = split_header_block(block)
    if items is not None:
        assert items == stdlib_items(block)


def test_corpus_header_blocks() -> None:
    taken = 0
    for name, raw in corpus_messages():
        block = header_block(raw)
        items = split_header_block(block)
        if items is not None:
            taken += 1
            assert items == stdlib_items(block), name
    assert taken >= len(corpus_messages()) // 2  # the fast path is the usual path


# --- parse_summary as a whole ---------------------------------------------------------------------


def summaries(block: bytes) -> tuple[object, object]:
    kwargs = {
        "size": 10,
        "flags": frozenset({"\\Seen"}),
        "uid": 7,
        "has_attachments_hint": True,
        "internal_date": datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
    }
    fast = parse_summary(block, **kwargs)  # type: ignore[arg-type]
    with fast_paths_off():
        slow = parse_summary(block, **kwargs)  # type: ignore[arg-type]
    return fast, slow


@pytest.mark.parametrize(("name", "raw"), corpus_messages())
def test_corpus_summaries_are_unchanged(name: str, raw: bytes) -> None:
    fast, slow = summaries(header_block(raw))
    assert fast == slow, name


HEADER_LINES = [
    b"From: =?utf-8?q?Dupont=2C_Jean?= <j@x.fr>",
    b"From: Dr =?utf-8?q?=C3=89lodie?= Marchand <e@m.fr>",
    b"From: \xc3\x89lodie <e@m.fr>",
    b"From: H\xe9l\xe8ne <h@p.fr>",
    b'To: a@b.fr, "Secr\\"etariat" <s@x.fr>, undisclosed-recipients:;',
    b"Cc: c@d.fr (commentaire)",
    b"Subject: R\xe9sultat =?utf-8?b?UmjDtG5l?=",
    b"Date: Tue, 03 Feb 2026 17:10:00 +0100",
    b"Date: not a date",
    b"Message-ID: <1@x.fr>",
    b"Disposition-Notification-To: a@b.fr",
    b"X-MSS-INS: O",
    b" folded =?utf-8?q?suite?=",
]


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(HEADER_LINES), st.sampled_from([b"\r\n", b"\r\n", b"\n"])), max_size=8),
    st.booleans(),
)
def test_generated_summaries_are_unchanged(lines: list[tuple[bytes, bytes]], blank: bool) -> None:
    block = b"".join(line + end for line, end in lines) + (b"\r\n" if blank else b"")
    fast, slow = summaries(block)
    assert fast == slow
