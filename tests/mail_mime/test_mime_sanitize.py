"""The HTML allow-list: hostile markup comes out inert, ordinary mail formatting survives."""

from __future__ import annotations

import re

import pytest

from backend.mail.mime import html_to_text, sanitize_html
from backend.mail.mime.plaintext import unflow

VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<img src="javascript:alert(1)">',
    '<img src="jav&#x09;ascript:alert(1)">',
    '<img src="https://tracker.example/pixel.gif">',
    '<img src="//tracker.example/pixel.gif">',
    '<img srcset="https://tracker.example/a.png 1x">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" JaVaScRiPt:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<body onload="alert(1)">x</body>',
    '<div style="background:url(https://tracker.example/bg.png)">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    '<div style="behavior: url(x.htc)">x</div>',
    "<style>@import 'https://tracker.example/s.css';</style>",
    '<link rel="stylesheet" href="https://tracker.example/s.css">',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    "<svg><script>alert(1)</script></svg>",
    '<svg onload="alert(1)">',
    "<math><mtext><script>alert(1)</script></mtext></math>",
    '<form action="https://evil.example"><input name="p"><button>ok</button></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    '<table background="https://tracker.example/t.png"><tr><td>x</td></tr></table>',
    '<a href="https://ok.example" onclick="steal()">ok</a>',
    '<p title="x" id="clobber" class="c" onmouseover="x()">t</p>',
    "<!--[if mso]><script>alert(1)</script><![endif]-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<img src="cid:x" onerror=alert(1)>',
    "<div><<script>alert(1)//<</script></div>",
    '<a href="https://ok.example/?q=<script>">"quoted"</a>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<textarea><script>alert(1)</script></textarea>",
    '<video src="https://tracker.example/v.mp4"></video>',
    '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">',
    "<div style=\"color: red; background-image: url('x')\">r</div>",
]


def assert_inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    for tag in ("iframe", "object", "embed", "svg", "math", "form", "input", "meta", "base", "link", "style", "video"):
        assert f"<{tag}" not in lowered, tag
    assert not re.search(r"<[^>]*\son\w+\s*=", lowered)
    assert "javascript:" not in lowered and "vbscript:" not in lowered and "data:text" not in lowered
    assert not re.search(r"(src|srcset|background)\s*=\s*[\"']?\s*(https?:|//)", lowered)
    assert "url(" not in lowered and "expression(" not in lowered
    assert " id=" not in lowered and " class=" not in lowered


@pytest.mark.parametrize("vector", VECTORS)
def test_vectors_are_neutralised(vector: str) -> None:
    safe, _ = sanitize_html(vector)
    assert_inert(safe)


def test_mail_formatting_survives() -> None:
    source = (
        '<div dir="ltr"><p style="color: #333; font-weight: bold; position: fixed">Bonjour,</p>'
        '<table border="1" cellpadding="2"><tr><td colspan="2" bgcolor="#eee">Résultat</td></tr></table>'
        '<ul><li>un</li><li>deux</li></ul><blockquote>cité</blockquote><font color="red" face="Arial">f</font>'
        '<a href="mailto:a@b.fr">écrire</a> <a href="tel:+33100000000">appeler</a>'
        '<img src="cid:logo@x" alt="Logo"><img src="data:image/png;base64,iVBORw0KGgo=" alt="p"><br>'
        "&lt;pas une balise&gt; &amp; «guillemets»</div>"
    )
    safe, remote = sanitize_html(source)
    assert remote == 0
    assert '<p style="color: #333; font-weight: bold">Bonjour,</p>' in safe
    assert '<td colspan="2" bgcolor="#eee">Résultat</td>' in safe
    assert '<a href="mailto:a@b.fr" target="_blank" rel="noopener noreferrer nofollow">écrire</a>' in safe
    assert '<img src="cid:logo@x" alt="Logo">' in safe
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in safe
    assert "&lt;pas une balise&gt; &amp; «guillemets»" in safe
    assert safe.endswith("</div>")


def test_remote_content_is_counted() -> None:
    source = (
        '<link rel="stylesheet" href="https://t.example/s.css"><style>body{background:url(https://t.example/b)}</style>'
        '<img src="https://t.example/1.gif"><img src="//t.example/2.gif"><div style="background:url(x)">a</div>'
        '<table background="https://t.example/t.png"><tr><td>b</td></tr></table>'
    )
    safe, remote = sanitize_html(source)
    assert remote == 6
    assert_inert(safe)


def test_unbalanced_markup_is_closed() -> None:
    safe, _ = sanitize_html("<div><b>gras<i>italique</div>après</b>")
    assert safe == "<div><b>gras<i>italique</i></b></div>après"
    assert sanitize_html("<table><tr><td>x")[0] == "<table><tr><td>x</td></tr></table>"


def test_html_to_text() -> None:
    text = html_to_text(
        "<html><head><title>t</title><style>p{}</style></head><body><p>Bonjour&nbsp;Docteur,</p>"
        "<p>Résultats :<br>Hb <b>13</b> g/dl</p><ul><li>un</li><li>deux</li></ul><script>x()</script></body></html>"
    )
    assert text == "Bonjour Docteur,\n\nRésultats :\nHb 13 g/dl\n\n• un\n• deux"


def test_unflow() -> None:
    flowed = "Un paragraphe \nqui continue \nici.\n\n> cité \n> suite\n-- \nSignature"
    assert unflow(flowed, delsp=False) == "Un paragraphe qui continue ici.\n\n> cité suite\n-- \nSignature"
    assert unflow("coupé-\u200b \nmot", delsp=True) == "coupé-\u200bmot"
    assert unflow(" From stuffed", delsp=False) == "From stuffed"
