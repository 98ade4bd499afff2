"""HTML mail made safe to show on a phone: a strict allow-list on top of the stdlib ``html.parser``.

No HTML sanitiser (nh3, bleach) is a dependency, and regexes cannot sanitise HTML, so this re-emits
only what it knows: allowed tags and attributes are written back escaped, everything else is
dropped. Choices:

- scripts, styles, forms, frames, embedded objects and SVG go with their content; other unknown
  tags go but keep their text;
- no event handlers, ``id`` or ``class`` (every attribute is allow-listed);
- no remote content, which would tell the sender when and where the message is read: remote
  images are removed (only ``cid:`` references to the message's own parts and inline raster
  ``data:`` images remain), as are style sheets and CSS ``url()``; ``remote_blocked`` counts them
  so the phone can say so;
- links stay (clicking is a choice, not a leak), limited to http(s), mailto and tel, and get
  ``target="_blank" rel="noopener noreferrer nofollow"``;
- inline ``style`` keeps only layout and typography properties, without ``url()`` or expressions.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    ]
)
VOID_TAGS = frozenset({"br", "hr", "img", "col", "wbr"})
#: Dropped together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    [
        "script",
        "style",
        "head",
        "title",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "noscript",
        "noembed",
        "noframes",
        "template",
        "svg",
        "math",
        "textarea",
        "select",
        "button",
        "option",
        "datalist",
        "audio",
        "video",
        "canvas",
        "map",
        "xml",
    ]
)
_GLOBAL_ATTRS = frozenset({"title", "dir", "lang", "align", "valign", "style"})
_TAG_ATTRS: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height", "border"}),
    "table": frozenset({"border", "cellpadding", "cellspacing", "width", "bgcolor", "summary"}),
    "td": frozenset({"colspan", "rowspan", "width", "height", "bgcolor", "nowrap"}),
    "th": frozenset({"colspan", "rowspan", "width", "height", "bgcolor", "nowrap", "scope"}),
    "tr": frozenset({"bgcolor"}),
    "font": frozenset({"color", "size", "face"}),
    "col": frozenset({"span", "width"}),
    "colgroup": frozenset({"span", "width"}),
    "ol": frozenset({"start", "type"}),
    "ul": frozenset({"type"}),
    "li": frozenset({"value"}),
    "hr": frozenset({"width", "size", "noshade"}),
}
_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpe?g|webp|bmp);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_URL_JUNK = re.compile(r"[\x00-\x20\x7f]")
_PLAIN_VALUE = re.compile(r"[^<>(){};\\]{0,200}")
_REMOTE = re.compile(r"^\s*(?:https?:|//)", re.IGNORECASE)
_CSS_PROPERTY = re.compile(
    r"color|background-color|font(?:-(?:weight|style|size|family|variant))?|text-(?:decoration|align|indent|transform)"
    r"|line-height|letter-spacing|white-space|vertical-align|(?:margin|padding)(?:-(?:top|right|bottom|left))?"
    r"|border(?:-[a-z-]+)?|(?:max-|min-)?(?:width|height)|list-style-type|direction|table-layout|word-wrap"
    r"|overflow-wrap|word-break|border-collapse|border-spacing"
)
_CSS_FORBIDDEN = ("url(", "expression", "javascript", "\\", "@import", "<", ">", "/*", "behavior", "binding", "image")
_MAX_DEPTH = 100
LINK_ATTRS = (("target", "_blank"), ("rel", "noopener noreferrer nofollow"))


def clean_style(style: str) -> tuple[str, int]:
    """Allowed CSS declarations of an inline ``style``, and how many remote ``url()`` were removed."""
    kept: list[str] = []
    remote = 0
    for declaration in style.split(";"):
        prop, sep, value = declaration.partition(":")
        prop, value = prop.strip().lower(), value.strip()
        lowered = value.lower()
        if "url(" in lowered:
            remote += 1
            continue
        if not sep or not value or not _CSS_PROPERTY.fullmatch(prop) or any(b in lowered for b in _CSS_FORBIDDEN):
            continue
        kept.append(f"{prop}: {value}")
    return "; ".join(kept), remote


def clean_url(value: str) -> str:
    """A URL as browsers read it: without the blanks and controls they ignore (``java\\tscript:``)."""
    return _URL_JUNK.sub("", value)


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[str] = []
        self.skip: list[str] = []
        self.remote = 0

    # -- attributes --------------------------------------------------------------------------
    def _url(self, name: str, value: str) -> str | None:
        """``href``: a link we keep, or None. ``src``: a local image, or None (then the image goes)."""
        url = clean_url(value)
        if name == "href":
            scheme = _SCHEME.match(url)
            return url if scheme is not None and scheme.group(1).lower() in _LINK_SCHEMES else None
        if url[:4].lower() == "cid:" or _DATA_IMAGE.fullmatch(url):
            return url
        self.remote += 1 if _REMOTE.match(url) else 0
        return None

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> list[tuple[str, str]] | None:
        """Allowed attributes, or None when the element itself must go (an image we may not load)."""
        allowed = _TAG_ATTRS.get(tag, frozenset()) | _GLOBAL_ATTRS
        kept: list[tuple[str, str]] = []
        for name, raw in attrs:
            given = raw or ""
            value: str | None = given
            if name not in allowed:
                self.remote += 1 if _REMOTE.match(given) or "url(" in given.lower() else 0
                continue
            if name == "style":
                value, remote = clean_style(given)
                self.remote += remote
            elif name in {"href", "src"}:
                value = self._url(name, given)
                if value is None and name == "src":
                    return None
            elif name not in {"alt", "title"} and not _PLAIN_VALUE.fullmatch(given):
                value = None
            if value:
                kept.append((name, value))
        if tag == "img" and not any(name == "src" for name, _ in kept):
            return None
        if tag == "a" and any(name == "href" for name, _ in kept):
            kept.extend(LINK_ATTRS)
        return kept

    def _emit_start(self, tag: str, attrs: list[tuple[str, str | None]], *, closed: bool) -> None:
        if tag == "link":  # a style sheet, even in the <head> we skip: counted, never kept
            self.remote += 1 if any(_REMOTE.match(v or "") for k, v in attrs if k == "href") else 0
            return
        if self.skip:
            return
        if tag in DROPPED_WITH_CONTENT:
            if not closed:
                self.skip.append(tag)
            return
        if tag not in ALLOWED_TAGS or len(self.stack) >= _MAX_DEPTH:
            return
        kept = self._attrs(tag, attrs)
        if kept is None:
            return
        rendered = "".join(f' {name}="{html.escape(value, quote=True)}"' for name, value in kept)
        self.out.append(f"<{tag}{rendered}>")
        if tag in VOID_TAGS:
            return
        if closed:
            self.out.append(f"</{tag}>")
        else:
            self.stack.append(tag)

    # -- HTMLParser hooks --------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip == ["head"] and tag == "body":
            self.skip.clear()
        self._emit_start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit_start(tag, attrs, closed=True)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
            return
        if tag not in self.stack:
            return
        while self.stack:
            open_tag = self.stack.pop()
            self.out.append(f"</{open_tag}>")
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        self.out.extend(f"</{tag}>" for tag in reversed(self.stack))
        self.stack.clear()
        return "".join(self.out)


def _style_sheet_remote(source: str) -> int:
    """Remote references in ``<style>`` blocks and ``<link>`` sheets, counted for the phone's notice."""
    blocks = re.findall(r"<style\b[^>]*>(.*?)</style\s*>", source, flags=re.IGNORECASE | re.DOTALL)
    return sum(len(re.findall(r"url\(|@import", block, flags=re.IGNORECASE)) for block in blocks)


def sanitize_html(source: str) -> tuple[str, int]:
    """Safe HTML fragment for ``source``, and the number of remote resources removed. Never fails."""
    parser = _Sanitizer()
    try:
        parser.feed(source)
        safe = parser.result()
    except Exception:  # noqa: BLE001 - html.parser has asserted on malformed markup in some versions
        text = re.sub(r"<[^>]*>", " ", source)
        return f"<pre>{html.escape(html.unescape(text), quote=False)}</pre>", 0
    return safe, parser.remote + _style_sheet_remote(source)
