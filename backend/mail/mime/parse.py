"""Raw messages to ``MessageSummary`` and ``ParsedMessage``. Never raises, whatever the bytes.

A mail that cannot be shown perfectly is still shown: ``problems`` says what was worked around and
``partial`` whether something may be missing. There is no ``message_unreadable`` error on purpose.

Which parts are the body: in ``multipart/alternative`` the first text/plain and the last HTML
version; in ``multipart/related`` the root (``start`` or the first part), the other parts being
resources the HTML shows by ``cid:`` (listed as attachments with ``related=True``); elsewhere every
inline text/plain or text/html part without a filename, in order. Everything else, and every
``message/rfc822`` (forwarded mail, not opened further), is an attachment.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message

from backend.mail.mime.attachments import is_ihe_xdm, safe_filename
from backend.mail.mime.charsets import decode_bytes, finish_text
from backend.mail.mime.headers import (
    header_text,
    message_ids,
    read_flags,
    read_headers,
    split_header_block,
    unfold,
)
from backend.mail.mime.model import (
    AttachmentInfo,
    DispositionReport,
    MessageHeaders,
    MessageSummary,
    ParsedMessage,
    ParseProblem,
)
from backend.mail.mime.params import header_params
from backend.mail.mime.plaintext import html_to_text, normalise_newlines, unflow
from backend.mail.mime.sanitize import sanitize_html
from backend.mail.mime.transfer import decode_all, estimate_decoded_size
from backend.mail.mime.tree import (
    MAX_DEPTH,
    MAX_PARTS,
    PARSE_POLICY,
    PARTIAL,
    body_bytes,
    child_id,
    children,
    content_type,
    encapsulated,
    load_message,
    payload_of,
    raw_header,
)

_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_:.-]{1,40})", re.IGNORECASE)
#: Text bodies beyond this are cut (``truncated``): no phone shows more, and decoding costs.
_MAX_TEXT_PART = 2 * 1024 * 1024


@dataclass(slots=True)
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def extend(self, other: _Body) -> None:
        self.plain.extend(other.plain)
        self.html.extend(other.html)


@dataclass(slots=True)
class _Walk:
    problems: list[ParseProblem] = field(default_factory=list)
    attachments: list[AttachmentInfo] = field(default_factory=list)
    mdn: DispositionReport | None = None
    seen: int = 0


def _unique(problems: list[ParseProblem]) -> list[str]:
    return [str(p) for p in dict.fromkeys(problems)]


def _params(part: Message, header: str, walk: _Walk) -> tuple[str, dict[str, str]]:
    raw = raw_header(part, header)
    if raw is None:
        return "", {}
    main, params, problems = header_params(raw)
    walk.problems.extend(problems)
    return main, params


def _transfer_encoding(part: Message) -> str:
    value = unfold(raw_header(part, "content-transfer-encoding") or "").strip().strip('"').lower()
    return value if re.fullmatch(r"[a-z0-9-]{1,40}", value) else "7bit"


def _text_of(part: Message, ctype: str, walk: _Walk) -> str:
    encoded = body_bytes(part)
    if len(encoded) > _MAX_TEXT_PART:
        walk.problems.append(ParseProblem.TRUNCATED)
    data, problems = decode_all(encoded[:_MAX_TEXT_PART], _transfer_encoding(part))
    walk.problems.extend(sorted(problems))
    _, params = _params(part, "content-type", walk)
    charset = params.get("charset")
    if not charset and ctype == "text/html":
        found = _META_CHARSET.search(data[:4096])
        charset = found.group(1).decode("ascii") if found else None
    text, problems_found = decode_bytes(data, charset)
    walk.problems.extend(problems_found)
    text = normalise_newlines(finish_text(text, walk.problems))
    if ctype == "text/plain" and params.get("format", "").lower() == "flowed":
        text = unflow(text, delsp=params.get("delsp", "").lower() == "yes")
    return text


def _mdn(part: Message) -> DispositionReport:
    """Fields of a ``message/disposition-notification`` part (the parser reads them as headers)."""
    payload = payload_of(part)
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        fields = payload[0]
    else:
        text = body_bytes(part).decode("utf-8", "replace")
        fields = email.parser.HeaderParser(policy=PARSE_POLICY).parsestr(text.lstrip("\r\n"))
    ignored: list[ParseProblem] = []

    def value(name: str) -> str:
        return header_text(raw_header(fields, name) or "", ignored)

    disposition = value("disposition")
    kind = disposition.rpartition(";")[2].strip().split("/")[0].strip().lower() if ";" in disposition else ""
    return DispositionReport(
        original_message_id=next(iter(message_ids(raw_header(fields, "original-message-id") or "")), None),
        final_recipient=value("final-recipient").rpartition(";")[2].strip() or None,
        disposition=disposition,
        disposition_type=kind or None,
    )


def _attachment(part: Message, part_id: str, ctype: str, walk: _Walk, *, related: bool) -> None:
    disposition, disposition_params = _params(part, "content-disposition", walk)
    _, type_params = _params(part, "content-type", walk)
    raw_name = disposition_params.get("filename") or type_params.get("name")
    name = raw_name or None
    inner = encapsulated(part)
    if name is None and inner is not None:
        subject = header_text(raw_header(inner, "subject") or "", walk.problems)
        name = f"{subject[:150]}.eml" if subject else None
    filename = safe_filename(name, part_id=part_id, content_type=ctype)
    encoding = _transfer_encoding(part)
    content_id = unfold(raw_header(part, "content-id") or "").strip().strip("<>").strip() or None
    encoded = body_bytes(part)
    if encoding == "base64" and len(re.sub(rb"[^A-Za-z0-9+/=]", b"", encoded)) % 4:
        walk.problems.append(ParseProblem.TRUNCATED)
    walk.attachments.append(
        AttachmentInfo(
            part_id=part_id,
            filename=filename,
            content_type=ctype,
            size=estimate_decoded_size(encoded, encoding),
            content_id=content_id[:256] if content_id else None,
            disposition="inline" if disposition == "inline" or (related and not disposition) else "attachment",
            transfer_encoding=encoding,
            related=related,
            is_ihe_xdm=is_ihe_xdm(filename),
        )
    )


def _related_root(part: Message, parts: list[Message], walk: _Walk) -> int:
    _, params = _params(part, "content-type", walk)
    start = params.get("start", "").strip().strip("<>")
    if start:
        for index, child in enumerate(parts):
            if (raw_header(child, "content-id") or "").strip().strip("<>") == start:
                return index
    return 0


def _leaf(part: Message, part_id: str, ctype: str, walk: _Walk, *, related: bool) -> _Body:
    if ctype.startswith("multipart/"):
        ctype = "text/plain"  # a multipart we could not split: its raw text is all there is
    if ctype == "message/disposition-notification":
        walk.mdn = _mdn(part)
        return _Body()
    if ctype in {"text/plain", "text/html"} and not related:
        disposition, disposition_params = _params(part, "content-disposition", walk)
        _, type_params = _params(part, "content-type", walk)
        named = "filename" in disposition_params or "name" in type_params
        if disposition != "attachment" and not named:
            text = _text_of(part, ctype, walk)
            return _Body(plain=[text]) if ctype == "text/plain" else _Body(html=[text])
    _attachment(part, part_id, ctype, walk, related=related)
    return _Body()


def _visit(part: Message, part_id: str, walk: _Walk, depth: int, *, related: bool) -> _Body:
    walk.seen += 1
    if walk.seen > MAX_PARTS or depth > MAX_DEPTH:
        walk.problems.append(ParseProblem.TOO_MANY_PARTS if walk.seen > MAX_PARTS else ParseProblem.TOO_DEEP)
        return _Body()
    ctype = content_type(part)
    parts = children(part)
    if parts is None:
        try:
            return _leaf(part, part_id, ctype, walk, related=related)
        except Exception:  # noqa: BLE001 - one unreadable part must not cost the others
            walk.problems.append(ParseProblem.PARSER_FALLBACK)
            return _Body()
    subtype = ctype.partition("/")[2]
    ids = [child_id(part_id, i) for i in range(1, len(parts) + 1)]
    if subtype == "alternative":
        versions = [_visit(c, i, walk, depth + 1, related=related) for c, i in zip(parts, ids, strict=True)]
        plain = next((v.plain for v in versions if v.plain), [])
        html = next((v.html for v in reversed(versions) if v.html), [])
        return _Body(plain, html)
    body = _Body()
    root = _related_root(part, parts, walk) if subtype == "related" else -1
    for index, (child, cid) in enumerate(zip(parts, ids, strict=True)):
        body.extend(_visit(child, cid, walk, depth + 1, related=related or root not in {-1, index}))
    return body


def parse_message(raw: bytes) -> ParsedMessage:
    """Everything the phone shows of one message (``BODY.PEEK[]`` bytes). Never raises."""
    loaded = load_message(raw)
    headers, header_problems = _safe_headers(loaded.root.raw_items(), None)
    walk = _Walk(problems=[*loaded.problems, *header_problems])
    try:
        start = "" if children(loaded.root) is not None else "1"
        body = _visit(loaded.root, start, walk, 0, related=False)
    except Exception:  # noqa: BLE001 - a defect we did not foresee: keep what the walk found
        walk.problems.append(ParseProblem.PARSER_FALLBACK)
        body = _Body()
    html_source = "\n".join(body.html)
    html, remote = sanitize_html(html_source) if body.html else (None, 0)
    text = "\n\n".join(t.strip("\n") for t in body.plain) if body.plain else html_to_text(html_source)
    return ParsedMessage(
        headers=headers,
        text=text,
        html=html,
        attachments=walk.attachments,
        mdn=walk.mdn,
        remote_content_blocked=remote,
        partial=loaded.unsplit or any(p in PARTIAL for p in walk.problems),
        problems=_unique(walk.problems),
        has_attachments=any(not a.related for a in walk.attachments),
    )


def _safe_headers(
    items: Iterable[tuple[str, str]], internal_date: datetime | None
) -> tuple[MessageHeaders, list[ParseProblem]]:
    try:
        return read_headers(items, internal_date=internal_date)
    except Exception:  # noqa: BLE001 - read_headers is written not to raise; this keeps the promise if it ever does
        return MessageHeaders(date=internal_date), [ParseProblem.BAD_HEADER]


def _header_message(header_bytes: bytes) -> Message:
    """The header block as a ``Message``, when :func:`split_header_block` declines it or a guess needs it."""
    try:
        # compat32: our header reader works from ``raw_items()``; the modern policy would also build
        # typed header objects we never read (about 70 % of the parse time of a list page).
        return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(header_bytes, headersonly=True)
    except Exception:  # noqa: BLE001 - see tree.load_message
        return load_message(header_bytes).root


def _attachments_from_headers(message: Message) -> bool:
    """Without BODYSTRUCTURE: a ``multipart/mixed`` (or a non-text single part) probably has attachments."""
    ctype = content_type(message)
    if ctype.startswith("multipart/"):
        return ctype in {"multipart/mixed", "multipart/report", "multipart/signed"}
    return not ctype.startswith("text/")


def parse_summary(
    header_bytes: bytes,
    *,
    size: int,
    flags: frozenset[str],
    uid: int,
    has_attachments_hint: bool | None,
    internal_date: datetime | None,
) -> MessageSummary:
    """One list entry from ``BODY.PEEK[HEADER]`` and the fetch attributes. Never raises.

    ``has_attachments_hint`` should come from ``bodystructure_has_attachments``; without it we guess
    from the top-level content type.
    """
    has_attachments: bool
    if has_attachments_hint is not None:
        items = split_header_block(header_bytes)
        headers, problems = _safe_headers(
            _header_message(header_bytes).raw_items() if items is None else items, internal_date
        )
        has_attachments = has_attachments_hint
    else:
        message = _header_message(header_bytes)
        headers, problems = _safe_headers(message.raw_items(), internal_date)
        try:
            has_attachments = _attachments_from_headers(message)
        except Exception:  # noqa: BLE001 - a guess; no guess is False
            has_attachments = False
    return MessageSummary(
        uid=uid,
        size=size,
        flags=read_flags(flags),
        has_attachments=has_attachments,
        headers=headers,
        problems=_unique(problems),
    )
