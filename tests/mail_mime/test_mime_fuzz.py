"""Whatever bytes arrive, reading gives a result: random data and mutated corpus messages."""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.mail.mime import (
    ParsedMessage,
    bodystructure_attachments,
    iter_attachment,
    parse_message,
    parse_summary,
    sanitize_html,
)
from backend.mail.mime.charsets import decode_bytes
from backend.mail.mime.encoded_words import decode_words
from backend.mail.mime.params import header_params
from tests.mail_mime.corpus import corpus_messages

CORPUS = [raw for _, raw in corpus_messages()]
FRAGMENTS = [
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E9; filename*1=x\r\n",
    b"=?utf-8?B?",
    b"=?x-mac-roman?q?=8E",
    b"?=",
    b"\xe9\x8e\xc3",
    b"<script>",
    b"<img src=https://x>",
    b"=\r\n",
    b"--x--",
    b"\x00",
]


def check(message: ParsedMessage) -> None:
    assert isinstance(message.text, str)
    if message.html is not None:
        assert "<script" not in message.html.lower()
        assert not re.search(r"<[^>]*\son\w+\s*=", message.html.lower())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.sampled_from(FRAGMENTS))
        else:
            del data[position : position + draw(st.integers(min_value=1, max_value=200))]
    return bytes(data)


#: ``TEST_FUZZ_EXAMPLES=20000`` for a long run.
FUZZ = settings(
    max_examples=int(os.environ.get("TEST_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes(raw: bytes) -> None:
    check(parse_message(raw))
    parse_summary(raw, size=len(raw), flags=frozenset(), uid=1, has_attachments_hint=None, internal_date=None)


@FUZZ
@given(mutated())
def test_mutated_corpus(raw: bytes) -> None:
    message = parse_message(raw)
    check(message)
    for attachment in message.attachments[:3]:
        b"".join(iter_attachment(raw, attachment.part_id))  # every listed part can be fetched


@FUZZ
@given(st.text(max_size=400), st.text(max_size=400))
def test_random_text_headers(header: str, html: str) -> None:
    raw = f"Subject: {header}\r\nFrom: {header}\r\nContent-Type: text/html; charset={header[:20]}\r\n\r\n{html}"
    check(parse_message(raw.encode("utf-8", "surrogatepass")))
    decode_words(header)
    header_params(header)
    safe, remote = sanitize_html(html)
    assert "<script" not in safe.lower() and remote >= 0


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["utf-8", "x-mac-roman", "cp1252", "utf-16", "shift_jis", "bogus", ""]))
def test_decode_any_bytes(data: bytes, charset: str) -> None:
    text, _ = decode_bytes(data, charset or None)
    assert isinstance(text, str)


@FUZZ
@given(st.binary(max_size=600))
def test_bodystructure_garbage(data: bytes) -> None:
    result = bodystructure_attachments(b"(" + data)
    assert result is None or isinstance(result, list)


def test_absurd_nesting() -> None:
    depth = 3000
    head = b"".join(b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" for _ in range(depth))
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + head + b"--b\r\n\r\ntext\r\n--b--\r\n"
    message = parse_message(raw)
    assert message.partial or message.problems


def test_many_parts() -> None:
    parts = b"".join(b"--b\r\nContent-Type: application/pdf\r\n\r\nJVBERi0=\r\n" for _ in range(3000))
    message = parse_message(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")
    assert "too_many_parts" in message.problems and message.partial
