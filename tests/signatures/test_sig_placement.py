"""Placement above the quoted history of every common client, idempotence (one current
signature per message, old ones left inside the quotes) and client-signature handling."""

from __future__ import annotations

import pytest
from sigkit import (
    COMPANY, LI, ZHANG, content, crlf, html_quote_start, html_signatures, norm, sigs, text_quote_start,
    text_signature, write_templates,
)

from mailwarden.signatures import apply_signature, render

HEAD = "From: Zhang Wei <zhangwei@acme.example>\nTo: bob@customer.example\nSubject: Re: Quote\nMIME-Version: 1.0\n"
CURRENT = norm(render(sigs(), ZHANG, None).text)


def html_message(html: str) -> bytes:
    return crlf(HEAD + "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + html + "\n")


def text_message(text: str, extra: str = "") -> bytes:
    return crlf(HEAD + f"Content-Type: text/plain; charset=utf-8{extra}\nContent-Transfer-Encoding: 8bit\n\n" + text)


def assert_one_current_signature_above_quote(html: str, quoted_markup: str) -> None:
    q = html_quote_start(html)
    found = html_signatures(html)
    above = [(pos, text) for pos, text in found if pos < q]
    assert len(above) == 1, found
    assert above[0][1] == CURRENT
    assert quoted_markup in html  # the history is byte-identical, and below the signature
    assert html.index(quoted_markup) > above[0][0]


CLIENT_REPLIES = {
    "gmail": (
        '<div dir="ltr">Thanks Bob, confirmed.</div><br>',
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Jan 1, 2024 at 10:00 AM Bob '
        '&lt;bob@customer.example&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px '
        '0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div dir="ltr">Can you do 5%?</div>'
        "</blockquote></div>",
    ),
    "outlook-web": (
        '<div class="elementToProof" style="font-family:Aptos">Thanks Bob, confirmed.</div>',
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" '
        'dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000"><b>From:</b> Bob<br><b>Sent:'
        "</b> Monday, January 1, 2024 10:00<br><b>To:</b> Zhang<br><b>Subject:</b> Quote</font><div>&nbsp;</div></div>"
        "<div>Can you do 5%?</div>",
    ),
    "outlook-desktop": (
        '<div class=WordSection1><p class=MsoNormal>Thanks Bob, confirmed.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;'
        "</o:p></p>",
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal><b>From:"
        "</b> Bob<br><b>Sent:</b> Monday, January 1, 2024 10:00 AM<br><b>To:</b> Zhang<br><b>Subject:</b> Quote</p>"
        "</div><p class=MsoNormal>Can you do 5%?</p></div>",
    ),
    "thunderbird": (
        "<p>Thanks Bob, confirmed.</p>",
        '<div class="moz-cite-prefix">On 1/1/24 10:00, Bob wrote:<br></div><blockquote type="cite" '
        'cite="mid:1@customer.example"><p>Can you do 5%?</p></blockquote>',
    ),
    "apple-mail": (
        "<div>Thanks Bob, confirmed.</div><div><br></div>",
        '<div><blockquote type="cite"><div>On 1 Jan 2024, at 10:00, Bob &lt;bob@customer.example&gt; wrote:</div><br>'
        "<div><div>Can you do 5%?</div></div></blockquote></div>",
    ),
    "foxmail-qq": (
        "<div>Thanks Bob, confirmed.</div><div><br></div>",
        '<div><includetail><div style="font:Verdana normal 14px;color:#000;"><div style="FONT-SIZE: 12px;FONT-FAMILY: '
        'Arial Narrow;padding:2px 0 2px 0;">------------------&nbsp;原始邮件&nbsp;------------------</div><div '
        'style="FONT-SIZE: 12px;background:#efefef;padding:8px;"><div><b>发件人:</b>&nbsp;"Bob"&lt;bob@customer.example'
        "&gt;;</div><div><b>发送时间:</b>&nbsp;2024年1月1日(星期一) 上午10:00</div><div><b>主题:</b>&nbsp;Quote</div></div>"
        "<div><br></div>Can you do 5%?</div></includetail></div>",
    ),
    "foxmail-isreply": (
        "<div>Thanks Bob, confirmed.</div>",
        '<div id="isReplyContent"><div>Can you do 5%?</div></div>',
    ),
    "netease": (
        '<div style="line-height:1.7;color:#000000;font-size:14px;font-family:Arial"><div>Thanks Bob, confirmed.</div>',
        '<div id="ntes-pcmail-quote" style="margin: 0; padding: 0; font-size: 14px;">在 2024-01-01 10:00:00，"Bob" '
        "&lt;bob@customer.example&gt; 写道：<blockquote>Can you do 5%?</blockquote></div></div>",
    ),
}


@pytest.mark.parametrize("client", sorted(CLIENT_REPLIES))
def test_html_reply_signature_goes_above_quoted_history(client: str) -> None:
    new, quoted = CLIENT_REPLIES[client]
    original = f"<html><head></head><body>{new}{quoted}</body></html>"
    result = apply_signature(html_message(original), sigs(), ZHANG)
    html = content(result.message, "text/html")
    assert_one_current_signature_above_quote(html, quoted)
    assert quoted in html  # the history is byte-identical
    assert html.index(new) < html_signatures(html)[0][0]


TEXT_REPLIES = {
    "english-attribution": "On Mon, 1 Jan 2024 at 10:00, Bob <bob@customer.example> wrote:\n> Can you do 5%?\n",
    "chinese-attribution": "在 2024年1月1日 10:00，Bob <bob@customer.example> 写道：\n> 能便宜5%吗？\n",
    "outlook-original": "-----Original Message-----\nFrom: Bob\nSent: Monday, January 1, 2024 10:00\nTo: Zhang\n"
                        "Subject: Quote\n\nCan you do 5%?\n",
    "chinese-original": "-----原始邮件-----\n发件人: Bob <bob@customer.example>\n发送时间: 2024年1月1日 10:00\n"
                        "收件人: 张伟\n主题: 报价\n\n能便宜5%吗？\n",
    "chinese-header-block": "发件人: Bob <bob@customer.example>\n发送时间: 2024年1月1日 10:00\n收件人: 张伟\n"
                            "主题: 报价\n\n能便宜5%吗？\n",
    "prefix-quoting": "> Can you do 5%?\n> Bob\n",
}


@pytest.mark.parametrize("kind", sorted(TEXT_REPLIES))
def test_text_reply_signature_goes_above_quoted_history(kind: str) -> None:
    quoted = TEXT_REPLIES[kind]
    result = apply_signature(text_message("Thanks Bob, confirmed.\n\n" + quoted), sigs(), ZHANG)
    body = content(result.message, "text/plain")
    assert body.startswith("Thanks Bob, confirmed.\n\n-- \n张伟 | Export Sales Manager\n")
    assert body.endswith(quoted)
    assert text_signature(body) == CURRENT
    assert text_quote_start(body) > body.index("-- \n")


def test_no_quote_signature_at_the_end() -> None:
    result = apply_signature(text_message("Hello Bob,\n\nPrice list attached.\n\n\n"), sigs(), ZHANG)
    body = content(result.message, "text/plain")
    assert body.startswith("Hello Bob,\n\nPrice list attached.\n\n-- \n")
    assert body.endswith("No. 1 Wensan Road, Hangzhou, China\n")


def test_forward_without_new_text_puts_signature_above_the_forwarded_block() -> None:
    fwd = "---------- Forwarded message ---------\nFrom: Bob <bob@customer.example>\nDate: Mon, 1 Jan 2024\n" \
          "Subject: Quote\nTo: Zhang\n\nCan you do 5%?\n"
    body = content(apply_signature(text_message(fwd), sigs(), ZHANG).message, "text/plain")
    assert body.startswith("-- \n张伟") and body.endswith(fwd)


# ------------------------------------------------------------------ reply to a reply (must hold)


def _gmail_reply(new_html: str, quoted_body_html: str) -> str:
    return (f'<html><body><div dir="ltr">{new_html}</div><br><div class="gmail_quote"><div dir="ltr" '
            'class="gmail_attr">On Tue, Jan 2, 2024 at 9:00 AM Zhang Wei &lt;zhangwei@acme.example&gt; wrote:<br>'
            '</div><blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex">'
            f"{quoted_body_html}</blockquote></div></body></html>")


def _thunderbird_reply(new_html: str, quoted_body_html: str) -> str:
    return (f"<html><body><p>{new_html}</p><div class=\"moz-cite-prefix\">On 1/3/24 9:00, Bob wrote:<br></div>"
            f'<blockquote type="cite">{quoted_body_html}</blockquote></body></html>')


def _body_of(html: str) -> str:
    return html.split("<body>", 1)[1].rsplit("</body>", 1)[0]


def test_html_reply_to_a_reply_has_one_current_signature_and_old_ones_in_quotes() -> None:
    s = sigs()
    first = apply_signature(html_message("<html><body><p>Hi Bob, our price is 10 USD.</p></body></html>"), s, ZHANG)
    # The customer answers from Gmail, quoting our signed message (signature included).
    bob = _gmail_reply("Can you do 9 USD?", _body_of(content(first.message, "text/html")))
    # Li Na answers from Thunderbird, quoting Bob's reply; her client also kept a stale copy of
    # the company signature in the new text (e.g. an old draft, re-encoded without quotes).
    stale = '<div class=mailwarden-signature style="color:red">OLD ACME Trading Co., Ltd. signature v0</div>'
    mine = _thunderbird_reply("OK, 9 USD." + stale, _body_of(bob))
    result = apply_signature(html_message(mine), s, LI)
    html = content(result.message, "text/html")
    q = html_quote_start(html)
    sigs_found = html_signatures(html)
    above = [text for pos, text in sigs_found if pos < q]
    below = [text for pos, text in sigs_found if pos >= q]
    assert above == [norm(render(s, LI, None).text)]
    assert below == [CURRENT]  # Zhang's signature of the first message, inside the quotes
    assert "OLD ACME" not in html
    assert html.index("OK, 9 USD.") < html.index("mailwarden-signature") < q
    # And once more: applying again changes nothing.
    assert apply_signature(result.message, s, LI).message == result.message


def test_text_reply_to_a_reply_has_one_current_signature_and_old_ones_in_quotes() -> None:
    s = sigs()
    first = content(apply_signature(text_message("Hi Bob, our price is 10 USD.\n"), s, ZHANG).message, "text/plain")
    bob = "Can you do 9 USD?\n\n-- \nBob Smith\nBolt GmbH\n\nOn Tue, 2 Jan 2024, Zhang Wei wrote:\n" + "".join(
        f"> {line}\n" if line else ">\n" for line in first.rstrip("\n").split("\n"))
    mine = "OK, 9 USD.\n\n-- \nZhang Wei (old template)\nACME Trading Co., Ltd.\n\n在 2024年1月3日，Bob 写道：\n" + "".join(
        f"> {line}\n" if line else ">\n" for line in bob.rstrip("\n").split("\n"))
    result = apply_signature(text_message(mine), s, LI)
    body = content(result.message, "text/plain")
    q = text_quote_start(body)
    assert body[:q].count("-- \n") == 1
    assert text_signature(body) == norm(render(s, LI, None).text)
    assert "old template" not in body
    assert body[q:] == mine[mine.index("在 2024"):]  # the quotes, both old signatures in them, untouched
    assert body[q:].count("> > -- ") == 1 and body[q:].count("> -- ") == 2
    assert apply_signature(result.message, s, LI).message == result.message


@pytest.mark.parametrize("variant", [
    '<div class="mailwarden-signature" data-mailwarden-signature="1">v1</div>',
    "<DIV CLASS=MAILWARDEN-SIGNATURE>v1 <div>nested</div></DIV>",
    '<div class="x_mailwarden-signature">v1</div>',
    '<table data-mailwarden-signature="1"><tr><td>v1</td></tr></table>',
])
def test_marker_survives_client_reencoding(variant: str) -> None:
    original = f"<html><body><p>Hello</p>{variant}<blockquote type=\"cite\">old</blockquote></body></html>"
    html = content(apply_signature(html_message(original), sigs(), ZHANG).message, "text/html")
    assert "v1" not in html and "nested" not in html
    assert [text for _, text in html_signatures(html)] == [CURRENT]


def test_signature_of_another_template_version_is_replaced_in_text(tmp_path) -> None:
    v1 = sigs(template_dir=write_templates(tmp_path, {
        "company.txt.j2": "{{ user.name }}\n{{ company.name }} (v1)\n", "company.html.j2": "<p>{{ user.name }} v1</p>"}))
    once = apply_signature(text_message("Hello\n\nOn Mon, Bob wrote:\n> hi\n"), v1, ZHANG)
    twice = apply_signature(once.message, sigs(), ZHANG)
    body = content(twice.message, "text/plain")
    assert "(v1)" not in body and text_signature(body) == CURRENT and body.count("-- \n") == 1


def test_rendered_text_without_delimiter_is_recognised() -> None:
    plain = render(sigs(), ZHANG, None).text
    result = apply_signature(text_message(f"Hello\n\n{plain}\n\nOn Mon, Bob wrote:\n> hi\n"), sigs(), ZHANG)
    body = content(result.message, "text/plain")
    assert body.count("张伟 | Export Sales Manager") == 1
    assert body.startswith("Hello\n\n-- \n张伟")


def test_idempotent_for_every_shape() -> None:
    s = sigs(add_text_alternative=True)
    for raw in (text_message("Hello\n"), text_message("Hello\n", "; format=flowed; delsp=yes"),
                html_message("<p>Hello</p><blockquote type=\"cite\">x</blockquote>")):
        once = apply_signature(raw, s, ZHANG).message
        assert apply_signature(once, s, ZHANG).message == once


# ------------------------------------------------------------------ client signatures

CLIENT_SIG_TEXT = "Thanks Bob.\n\n-- \nZhang Wei\nWeChat: zw_private_888\n\nOn Mon, Bob wrote:\n> hi\n"


def test_client_text_signature_kept_unless_configured() -> None:
    kept = apply_signature(text_message(CLIENT_SIG_TEXT), sigs(), ZHANG)
    body = content(kept.message, "text/plain")
    assert not kept.stripped_client_signature
    assert body.index("zw_private_888") < body.index("张伟 | Export") < body.index("On Mon, Bob wrote:")
    assert text_signature(body) == CURRENT
    stripped = apply_signature(text_message(CLIENT_SIG_TEXT), sigs(strip_client_signature=True), ZHANG)
    body = content(stripped.message, "text/plain")
    assert stripped.stripped_client_signature and "zw_private_888" not in body
    assert body.startswith("Thanks Bob.\n\n-- \n张伟") and body.endswith("On Mon, Bob wrote:\n> hi\n")
    # Kept, then signed again: still one company signature and the client's block once.
    again = content(apply_signature(kept.message, sigs(), ZHANG).message, "text/plain")
    assert again.count("zw_private_888") == 1 and again.count("张伟 | Export") == 1


@pytest.mark.parametrize("client_sig", [
    '<div class="gmail_signature" data-smartmail="gmail_signature">Zhang Wei<br>WeChat: zw_private_888</div>',
    '<div id="Signature"><p>Zhang Wei</p><p>WeChat: zw_private_888</p></div>',
    '<pre class="moz-signature" cols="72">-- \nZhang Wei\nWeChat: zw_private_888</pre>',
    '<div id="AppleMailSignature">Zhang Wei<br>WeChat: zw_private_888</div>',
])
def test_client_html_signature_stripped_only_when_configured(client_sig: str) -> None:
    original = f"<html><body><p>Thanks Bob.</p>{client_sig}<blockquote type=\"cite\">" \
               f"<div class=\"gmail_signature\">Bob's own signature</div></blockquote></body></html>"
    kept = content(apply_signature(html_message(original), sigs(), ZHANG).message, "text/html")
    assert "zw_private_888" in kept
    result = apply_signature(html_message(original), sigs(strip_client_signature=True), ZHANG)
    html = content(result.message, "text/html")
    assert result.stripped_client_signature and "zw_private_888" not in html
    assert "Bob's own signature" in html  # signatures inside the quotes are never touched
    assert [text for _, text in html_signatures(html)] == [CURRENT]


def test_company_name_is_what_marks_an_old_text_signature() -> None:
    assert COMPANY.name in render(sigs(), ZHANG, None).text


def test_bottom_posted_reply_gets_the_signature_at_the_end() -> None:
    body = "Bob wrote:\n> Can you do 5%?\n\nYes, we can.\n\n> And deliver in May?\n\nEarly May.\n"
    result = apply_signature(text_message(body), sigs(), ZHANG)
    out = content(result.message, "text/plain")
    assert out.startswith(body.rstrip("\n") + "\n\n-- \n张伟")
    assert apply_signature(result.message, sigs(), ZHANG).message == result.message


def test_unjoined_result_is_the_same_message_in_pieces_without_a_copy():
    """The gateway asks for pieces: views of its message plus what was put in, never a second copy."""
    photo = "QUJD" * 19 + "\n"
    raw = crlf(HEAD + 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; '
               'charset=utf-8\n\nDear Bob,\nconfirmed.\n\n--b1\nContent-Type: image/jpeg\n'
               "Content-Transfer-Encoding: base64\n\n" + photo * 2000 + "--b1--\n")
    joined = apply_signature(raw, sigs(), ZHANG)
    pieces = apply_signature(raw, sigs(), ZHANG, joined=False)
    assert joined.applied and pieces.applied and pieces.message is raw and pieces.pieces
    assert b"".join(bytes(p) for p in pieces.pieces) == joined.message
    views = [p for p in pieces.pieces if isinstance(p, memoryview)]
    assert all(v.obj is raw for v in views) and sum(len(v) for v in views) > len(raw) * 0.9
