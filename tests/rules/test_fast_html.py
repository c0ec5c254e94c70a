"""The HTML paths' literal prefilters (htmltext.folded) never skip a match: the results equal
those of the plain case-insensitive patterns run over everything."""

from __future__ import annotations

import html
import random

from mailwarden.rules.mail import htmltext, quotes_html
from mailwarden.rules.mail.htmltext import folded

_BITS = ["<p>", "</p>", "<P class=x>", "<div>", "</DIV>", "<dİv>", "<dıv>", "<br>", "<BR/>", "<td>",
         "</Td>", "<th>", "<tr>", "<TABLE>", "<!-- c -->", "<!--", "-->", "<script>x</script>",
         "<STYLE>a</style>", "<ſcript>", "<head>", "<title>t</title>", "<xml>", "<hr>",
         "<hr id=\"stopSpelling\">", "<HR ID=StopSpelling>", "<blockquote type=\"cite\">",
         "<BLOCKQUOTE TYPE=CITE>", "<blockquote>", "</blockquote>", "<section>",
         "<div class=\"gmail_quote\">", "<DIV ID=divRplyFwdMsg>", "<div class=mailwarden-signature>",
         "<span class=\"MAILWARDEN-SIGNATURE\">", "</span>", "<a href=\"mailto:x@y.com\">m</a>",
         "text", "中文", "\u212a", "\u017f", "\u0131", "&amp;", "&nbsp;", " ", "\n", "<", ">", "On Mon, Tom wrote:",
         "From: a", "Sent: b", "To: c", "Subject: d", "------ Original Message ------",
         "在 2024年3月5日 写道：", "begin forwarded message:"]


def _reference_html_to_text(source: str) -> str:
    text = htmltext._DROP.sub(" ", source)  # noqa: SLF001
    if "href" in text:
        text = htmltext._CONTACT_HREF.sub(lambda m: f" {m.group(1)} ", text)  # noqa: SLF001
    text = htmltext._BLOCK.sub("\n", text)  # noqa: SLF001
    text = htmltext._CELL.sub("\t", text)  # noqa: SLF001
    text = htmltext._TAG.sub("", text)  # noqa: SLF001
    return html.unescape(text)


def test_html_prefilters_skip_nothing(monkeypatch) -> None:
    rng = random.Random(31)
    cases = ["".join(rng.choice(_BITS) for _ in range(rng.randint(0, 30))) for _ in range(4000)]
    got = [(htmltext.html_to_text(c), quotes_html.find_quote_start_html(c),
            htmltext.split_signature_html(c)) for c in cases]
    # Without prefilters: folded() says a character folds to ASCII, so every pattern runs.
    monkeypatch.setattr(htmltext, "folded", lambda text: None)
    monkeypatch.setattr(quotes_html, "folded", lambda text: None)
    want = [(_reference_html_to_text(c), quotes_html.find_quote_start_html(c),
             htmltext.split_signature_html(c)) for c in cases]
    assert got == want


def test_folded_keeps_ascii_letters_in_place() -> None:
    assert folded("<DIV>中") == b"<div>?"
    assert folded("<d\u0130v>") is None and folded("\u017f") is None and folded("\u212a") is None
