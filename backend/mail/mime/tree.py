"""The MIME tree of a raw message: parsed with fallbacks, repaired, numbered as IMAP numbers parts.

``parse_message`` and ``iter_attachment`` both load through ``load_message``, so a part id given by
one always finds the same part in the other, repairs included. Part ids follow RFC 3501 section
6.4.5: a single-part message's body is ``1``; the children of a multipart are ``1``, ``2``…; the
children of a ``message/rfc822`` part ``3`` are ``3.1``, ``3.2``… (or ``3.1`` for its single body).
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.policy
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from typing import cast

from backend.mail.mime.model import ParseProblem
from backend.mail.mime.params import to_bytes

MAX_DEPTH = 30
MAX_PARTS = 1000

#: Parsing: the modern policy, as the rest of the code base uses it.
PARSE_POLICY = email.policy.default
#: Regenerating an embedded message: CRLF, and header lines written back exactly as they came.
WRITE_POLICY = email.policy.default.clone(linesep="\r\n", refold_source="none")

_ENCAPSULATED = frozenset({"message/rfc822", "message/global"})
_OPENING = re.compile(
    rb"^--([0-9A-Za-z'()+_,./:=?-](?:[0-9A-Za-z'()+_,./:=? -]{0,68}[0-9A-Za-z'()+_,./:=?-])?)[ \t]*\r?\n"
    rb"(?=[A-Za-z0-9-]{1,76}:)",
    re.MULTILINE,
)
_DEFECTS: tuple[tuple[type[email.errors.MessageDefect], ParseProblem], ...] = (
    (email.errors.NoBoundaryInMultipartDefect, ParseProblem.MISSING_BOUNDARY),
    (email.errors.StartBoundaryNotFoundDefect, ParseProblem.MISSING_BOUNDARY),
    (email.errors.MultipartInvariantViolationDefect, ParseProblem.MISSING_BOUNDARY),
    (email.errors.CloseBoundaryNotFoundDefect, ParseProblem.MISSING_CLOSE_BOUNDARY),
    (email.errors.MissingHeaderBodySeparatorDefect, ParseProblem.BAD_HEADER),
    (email.errors.FirstHeaderLineIsContinuationDefect, ParseProblem.BAD_HEADER),
    (email.errors.MisplacedEnvelopeHeaderDefect, ParseProblem.BAD_HEADER),
)
#: Problems after which some content may be missing.
PARTIAL = frozenset(
    {
        ParseProblem.PARSER_FALLBACK,
        ParseProblem.MISSING_CLOSE_BOUNDARY,
        ParseProblem.TRUNCATED,
        ParseProblem.TOO_DEEP,
        ParseProblem.TOO_MANY_PARTS,
    }
)


@dataclass(slots=True)
class Loaded:
    root: Message
    problems: list[ParseProblem] = field(default_factory=list)
    #: Set when a multipart could not be split at all: its raw body is all we can show.
    unsplit: bool = False


def payload_of(part: Message) -> object:
    """The payload as stored. ``get_payload()`` would re-decode 8-bit text with ``replace``, losing it."""
    return getattr(part, "_payload", None)


def raw_header(part: Message, name: str) -> str | None:
    """First raw value of a header (as on the wire, 8-bit bytes as surrogates), or None."""
    wanted = name.lower()
    try:
        for key, value in part.raw_items():
            if str(key).lower() == wanted:
                return str(value)
    except Exception:  # noqa: BLE001 - a hand-made Message with odd header storage
        return None
    return None


def content_type(part: Message) -> str:
    try:
        value = part.get_content_type()
    except Exception:  # noqa: BLE001 - header objects of policy.default may raise on malformed values
        value = "text/plain"
    return value if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", value) else "application/octet-stream"


def is_encapsulated(part: Message) -> bool:
    """A ``message/rfc822`` part: an attachment for us, a numbering level for IMAP."""
    payload = payload_of(part)
    return content_type(part) in _ENCAPSULATED and isinstance(payload, list) and bool(payload)


def encapsulated(part: Message) -> Message | None:
    """The message inside a ``message/rfc822`` part."""
    payload = payload_of(part)
    if is_encapsulated(part) and isinstance(payload, list) and isinstance(payload[0], Message):
        return payload[0]
    return None


def children(part: Message) -> list[Message] | None:
    """The parts of a multipart, or None for a leaf (``message/*`` parts are leaves here)."""
    if content_type(part).startswith("message/"):
        return None
    payload = payload_of(part)
    if not isinstance(payload, list):
        return None
    return [child for child in payload if isinstance(child, Message)]


def body_bytes(part: Message) -> bytes:
    """The still-encoded body of a leaf, as on the wire (an embedded message is written back)."""
    payload = payload_of(part)
    if isinstance(payload, str):
        return to_bytes(payload)
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, list):
        return b"\r\n".join(message_bytes(item) for item in payload if isinstance(item, Message))
    return b""


def message_bytes(message: Message) -> bytes:
    buffer = io.BytesIO()
    # A tree the generator cannot write back gives what was written so far.
    with contextlib.suppress(Exception):
        generator = BytesGenerator(buffer, mangle_from_=False, policy=WRITE_POLICY)
        generator.flatten(cast("EmailMessage", message), unixfrom=False)  # any Message is written alike
    return buffer.getvalue()


def _guess_boundary(body: bytes) -> str | None:
    """The boundary a multipart really uses: the commonest ``--x`` line followed by a header line."""
    counts = Counter(match.group(1) for match in _OPENING.finditer(body))
    if not counts:
        return None
    return counts.most_common(1)[0][0].decode("ascii")


def _split_unsplit(part: Message, loaded: Loaded) -> None:
    """A multipart the parser left whole (no boundary, or not the one used): find the real one."""
    body = body_bytes(part)
    boundary = _guess_boundary(body)
    if boundary is None:
        loaded.unsplit = True
        return
    subtype = re.sub(r"[^a-z0-9.+-]", "", content_type(part).split("/", 1)[1]) or "mixed"
    header = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    try:
        rebuilt = email.message_from_bytes(header + body, policy=PARSE_POLICY)
    except Exception:  # noqa: BLE001 - as in load_message
        loaded.unsplit = True
        return
    if not rebuilt.is_multipart():
        loaded.unsplit = True
        return
    part.set_payload(rebuilt.get_payload())
    part.preamble, part.epilogue = rebuilt.preamble, rebuilt.epilogue
    part.defects.extend(d for d in rebuilt.defects if isinstance(d, email.errors.CloseBoundaryNotFoundDefect))
    with contextlib.suppress(Exception):  # the tree is usable even if the header cannot be rewritten
        part.set_boundary(boundary)


def _repair(loaded: Loaded) -> None:
    """Walk the tree once (iteratively: no recursion limit to hit), note defects, split what we can."""
    stack: list[tuple[Message, int]] = [(loaded.root, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS or depth > MAX_DEPTH:
            continue
        for defect in getattr(part, "defects", ()):
            for kind, problem in _DEFECTS:
                if isinstance(defect, kind):
                    loaded.problems.append(problem)
        if content_type(part).startswith("multipart/") and not isinstance(payload_of(part), list):
            loaded.problems.append(ParseProblem.MISSING_BOUNDARY)
            _split_unsplit(part, loaded)
        payload = payload_of(part)
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in reversed(payload) if isinstance(child, Message))


def _minimal(raw: bytes) -> Message:
    """Last resort when the ``email`` package gives up: ``Name: value`` lines, then the body as text."""
    message = Message(policy=email.policy.compat32)
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    for line in head.split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep and re.fullmatch(rb"[!-9;-~]{1,76}", name):
            message[name.decode("ascii")] = value.strip().decode("utf-8", "surrogateescape")
    message.set_payload(body.decode("utf-8", "surrogateescape"))
    return message


def load_message(raw: bytes) -> Loaded:
    """Parse ``raw`` whatever it holds. Never raises."""
    try:
        loaded = Loaded(email.message_from_bytes(raw, policy=PARSE_POLICY))
    except Exception:  # noqa: BLE001 - RecursionError on absurd nesting, or a bug in a header class
        try:
            loaded = Loaded(email.message_from_bytes(raw, policy=email.policy.compat32))
        except Exception:  # noqa: BLE001 - the last resort below cannot fail
            loaded = Loaded(_minimal(raw))
        loaded.problems.append(ParseProblem.PARSER_FALLBACK)
    try:
        _repair(loaded)
    except Exception:  # noqa: BLE001 - an unrepaired tree is still a tree
        loaded.problems.append(ParseProblem.PARSER_FALLBACK)
    return loaded


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}.{index}" if parent_id else str(index)


def find_part(root: Message, part_id: str) -> Message | None:
    """The part an IMAP section number names, or None."""
    if not re.fullmatch(r"[1-9][0-9]{0,4}(?:\.[1-9][0-9]{0,4}){0,29}", part_id):
        return None
    current = root
    at_message = True  # the root, or an embedded message: its number 1 may be its single body
    for number in (int(n) for n in part_id.split(".")):
        container = (current if current is root else encapsulated(current)) if at_message else current
        if container is None:
            return None
        parts = children(container)
        if parts is None:
            if not at_message or number != 1:
                return None
            current = container
        elif number <= len(parts):
            current = parts[number - 1]
        else:
            return None
        at_message = is_encapsulated(current)
    return current
