"""Content-Transfer-Encoding decoders that work on chunks, so a big attachment is never held whole.

The API fetches ``BODY.PEEK[<part>]`` from IMAP in pieces and pipes them through
``decode_part_stream``; memory stays at one chunk whatever the attachment size. Both decoders are
lenient the way mail needs: base64 skips characters outside its alphabet and restarts after
internal padding (concatenated blobs); quoted-printable keeps a malformed ``=`` as written.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from backend.mail.mime.model import ParseProblem

CHUNK_SIZE = 64 * 1024

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_ALPHABET and b != ord("="))
_WHITESPACE = b" \t\r\n"
_TRAILING_BLANKS = re.compile(rb"[ \t]+(?=\r?\n)")


class Base64Decoder:
    """Incremental, lenient base64. ``problems`` tells about garbage and a cut-off end."""

    def __init__(self) -> None:
        self._pending = b""
        self.problems: set[ParseProblem] = set()

    def _decode_groups(self, data: bytes, *, final: bool) -> bytes:
        usable = len(data) - len(data) % 4
        out = binascii.a2b_base64(data[:usable]) if usable else b""
        rest = data[usable:]
        if not final:
            self._pending = rest
            return out
        if len(rest) == 1:
            self.problems.add(ParseProblem.TRUNCATED)
        elif rest:
            out += binascii.a2b_base64(rest + b"=" * (4 - len(rest)))
        return out

    def feed(self, chunk: bytes) -> bytes:
        cleaned = chunk.translate(None, _B64_DELETE)
        if len(cleaned) != len(chunk) - sum(chunk.count(c) for c in _WHITESPACE):
            self.problems.add(ParseProblem.BAD_BASE64)
        data = self._pending + cleaned
        self._pending = b""
        out: list[bytes] = []
        while b"=" in data:
            head, _, data = data.partition(b"=")
            out.append(self._decode_groups(head, final=True))
            data = data.lstrip(b"=")
        out.append(self._decode_groups(data, final=False))
        return b"".join(out)

    def finish(self) -> bytes:
        data, self._pending = self._pending, b""
        if data:
            self.problems.add(ParseProblem.TRUNCATED)
        return self._decode_groups(data, final=True)


class QuotedPrintableDecoder:
    """Incremental quoted-printable: soft line breaks joined, trailing blanks dropped (RFC 2045 6.7)."""

    def __init__(self) -> None:
        self._pending = b""
        self.problems: set[ParseProblem] = set()

    @staticmethod
    def _decode(data: bytes) -> bytes:
        return binascii.a2b_qp(_TRAILING_BLANKS.sub(b"", data))

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > CHUNK_SIZE:
            # One endless line: decode it now, but keep back what may be half an escape ("=" or "=4").
            escape = data.rfind(b"=", len(data) - 2)
            cut = escape if escape != -1 else len(data)
        self._pending = data[cut:]
        return self._decode(data[:cut]) if cut > 0 else b""

    def finish(self) -> bytes:
        data, self._pending = self._pending, b""
        return self._decode(data.rstrip(b" \t"))


class IdentityDecoder:
    """7bit, 8bit, binary and encodings we do not know: the bytes as they are."""

    def __init__(self) -> None:
        self.problems: set[ParseProblem] = set()

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""


Decoder = Base64Decoder | QuotedPrintableDecoder | IdentityDecoder


def decoder_for(transfer_encoding: str | None) -> Decoder:
    encoding = (transfer_encoding or "").strip().strip('"').lower()
    if encoding == "base64":
        return Base64Decoder()
    if encoding == "quoted-printable":
        return QuotedPrintableDecoder()
    return IdentityDecoder()


def _split(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def decode_part_stream(
    chunks: Iterable[bytes], transfer_encoding: str | None, *, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Decode an IMAP-fetched part body (``BODY.PEEK[<part_id>]``) chunk by chunk."""
    decoder = decoder_for(transfer_encoding)
    for chunk in chunks:
        yield from _split(decoder.feed(chunk), chunk_size)
    yield from _split(decoder.finish(), chunk_size)


async def adecode_part_stream(
    chunks: AsyncIterable[bytes], transfer_encoding: str | None, *, chunk_size: int = CHUNK_SIZE
) -> AsyncIterator[bytes]:
    """``decode_part_stream`` for an asynchronous source (the IMAP client's reader)."""
    decoder = decoder_for(transfer_encoding)
    async for chunk in chunks:
        for piece in _split(decoder.feed(chunk), chunk_size):
            yield piece
    for piece in _split(decoder.finish(), chunk_size):
        yield piece


def decode_all(data: bytes, transfer_encoding: str | None) -> tuple[bytes, set[ParseProblem]]:
    """Decode a whole (small) body at once, e.g. a text part; also says what was wrong with it."""
    decoder = decoder_for(transfer_encoding)
    out = decoder.feed(data) + decoder.finish()
    return out, decoder.problems


def estimate_decoded_size(encoded: bytes, transfer_encoding: str | None) -> int:
    """Decoded size without decoding: exact for clean base64, close for quoted-printable."""
    encoding = (transfer_encoding or "").strip().lower()
    if encoding == "base64":
        return len(encoded.translate(None, _B64_DELETE + b"=")) * 3 // 4
    if encoding == "quoted-printable":
        crlf_breaks, lf_breaks = encoded.count(b"=\r\n"), encoded.count(b"=\n")
        escapes = encoded.count(b"=") - crlf_breaks - lf_breaks
        return max(0, len(encoded) - 3 * crlf_breaks - 2 * lf_breaks - 2 * escapes)
    return len(encoded)


def estimate_from_encoded_length(length: int, transfer_encoding: str | None) -> int:
    """Decoded size from an IMAP BODYSTRUCTURE octet count (76-character base64 lines plus CRLF)."""
    encoding = (transfer_encoding or "").strip().lower()
    if encoding == "base64":
        return length * 57 // 78
    return length
