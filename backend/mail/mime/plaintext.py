"""Plain text for the phone: ``format=flowed`` undone, and text drawn from HTML when that is all there is.

Apple Mail sends ``format=flowed`` (RFC 3676): without unwrapping, paragraphs arrive cut every 72
characters with stray trailing spaces.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "svg", "math", "xml"})


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def unflow(text: str, *, delsp: bool) -> str:
    """Join RFC 3676 flowed lines (ending in a space) with the next line of the same quote depth."""
    out: list[str] = []
    current: str | None = None
    depth_of_current = 0

    def emit() -> None:
        prefix = ">" * depth_of_current
        out.append(f"{prefix} {current}" if prefix and current else f"{prefix}{current}")

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing (RFC 3676 4.4)
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        if current is not None and depth != depth_of_current:
            emit()
            current = None
        if current is None:
            current, depth_of_current = content, depth
        else:
            current += content
        if not flowed:
            emit()
            current = None
    if current is not None:
        emit()
    return "\n".join(out)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag in {"td", "th"}:
            self.parts.append("\t")
        elif tag in _BLOCK:
            self.parts.append("\n\n" if tag in {"p", "blockquote", "h1", "h2", "h3", "table"} else "\n")
        if tag == "pre":
            self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK and tag != "li":  # the next item starts its own line
            self.parts.append("\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(source: str) -> str:
    """Readable text of an HTML body (for the preview and for phones that show text only)."""
    parser = _TextExtractor()
    try:
        parser.feed(source)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # noqa: BLE001 - see sanitize.sanitize_html
        text = html.unescape(re.sub(r"<[^>]*>", " ", source))
    lines = [line.strip(" \t").replace("\t", "  ").strip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
