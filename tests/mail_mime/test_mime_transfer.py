"""Streaming part decoders (what the API uses for big attachments) and the download header."""

# ruff: noqa: RUF001 - French typography (curly apostrophes, dashes) is what these tests are about

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import quopri
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.mail.mime import adecode_part_stream, content_disposition_header, decode_part_stream, safe_filename
from backend.mail.mime.transfer import decode_all, estimate_decoded_size


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_base64_stream_matches_one_shot(data: bytes, cuts: list[int]) -> None:
    encoded = base64.encodebytes(data)
    assert b"".join(decode_part_stream(chunked(encoded, cuts), "base64")) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_quoted_printable_stream_matches_one_shot(data: bytes, cuts: list[int]) -> None:
    encoded = quopri.encodestring(data)
    assert b"".join(decode_part_stream(chunked(encoded, cuts), "quoted-printable")) == quopri.decodestring(encoded)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["base64", "quoted-printable", "7bit", "x-uuencode", None]))
def test_garbage_never_raises(data: bytes, encoding: str | None) -> None:
    out, _ = decode_all(data, encoding)
    assert isinstance(out, bytes)
    assert estimate_decoded_size(data, encoding) >= 0


def test_base64_garbage_and_concatenation() -> None:
    first, second = base64.b64encode(b"premier "), base64.b64encode(b"second")
    out, problems = decode_all(first + b"\r\n!!" + second + b"\r\n", "BASE64")
    assert out == b"premier second"
    assert {str(p) for p in problems} == {"bad_base64"}
    cut, problems = decode_all(base64.b64encode(b"abcdef")[:-1], "base64")
    assert cut == b"abcde" and {str(p) for p in problems} == {"truncated"}


def test_quoted_printable_details() -> None:
    out, _ = decode_all(b"caf=C3=A9 =\r\ncr=c3=a8me   \r\n=ZZ ok=\n", "quoted-printable")
    assert out == "café crème\r\n=ZZ ok".encode()


def test_long_quoted_printable_line_is_streamed() -> None:
    line = b"=C3=A9" * 40_000  # one endless line, no soft breaks
    pieces = chunked(line, list(range(7, len(line), 65_537)))
    assert b"".join(decode_part_stream(pieces, "quoted-printable")) == "é".encode() * 40_000


def test_output_chunks_are_bounded() -> None:
    data = bytes(range(256)) * 2000
    pieces = list(decode_part_stream([base64.b64encode(data)], "base64", chunk_size=4096))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 4096


def test_async_stream() -> None:
    data = b"%PDF-1.4 " * 5000
    encoded = base64.encodebytes(data)

    async def source() -> AsyncIterator[bytes]:
        for i in range(0, len(encoded), 1000):
            yield encoded[i : i + 1000]

    async def collect() -> bytes:
        return b"".join([piece async for piece in adecode_part_stream(source(), "base64")])

    assert asyncio.run(collect()) == data


def test_estimated_size() -> None:
    data = b"x" * 1000
    assert estimate_decoded_size(base64.encodebytes(data), "base64") == 1000
    assert abs(estimate_decoded_size(binascii.b2a_qp(data), "quoted-printable") - 1000) < 10


def test_safe_filenames() -> None:
    assert safe_filename("../../etc/passwd", part_id="2", content_type="text/plain") == "passwd"
    assert safe_filename("C:\\Users\\x\\radio.jpg", part_id="2", content_type="image/jpeg") == "radio.jpg"
    assert safe_filename("a\u202eexe.pdf", part_id="2", content_type="application/pdf") == "aexe.pdf"
    assert safe_filename("  ", part_id="1.2", content_type="application/pdf") == "piece-jointe-1.2.pdf"
    assert safe_filename(None, part_id="3", content_type="x/y") == "piece-jointe-3.bin"
    long = safe_filename("é" * 300 + ".pdf", part_id="2", content_type="application/pdf")
    assert len(long) == 200 and long.endswith(".pdf")


def test_content_disposition_header() -> None:
    header = content_disposition_header('Compte rendu "final" – été.pdf')
    assert header == (
        'attachment; filename="Compte rendu _final_  ete.pdf"; '
        "filename*=UTF-8''Compte%20rendu%20%22final%22%20%E2%80%93%20%C3%A9t%C3%A9.pdf"
    )
    nasty = content_disposition_header("a\r\nSet-Cookie: x=1;\\.pdf", disposition="inline")
    assert "\r" not in nasty and "\n" not in nasty and nasty.startswith("inline; ")
    assert (
        content_disposition_header("")
        == "attachment; filename=\"piece-jointe-1.bin\"; filename*=UTF-8''piece-jointe-1.bin"
    )
