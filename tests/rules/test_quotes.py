"""Quoted-history detection for each mail client's markup (shared with the signature inserter)."""

from __future__ import annotations

import pytest

from mailwarden.rules.mail.quotes import (
    find_quote_start_html,
    find_quote_start_text,
    quoted_spans_text,
    split_text,
)

NEW = "Hi John,\n\nPlease find the new price attached.\n\nBest regards\nTom\n"

TEXT_QUOTES = {
    "gmail_en": "On Mon, Mar 4, 2024 at 10:01 AM John Smith <john@acme.com> wrote:\n> Can you quote 500 pcs?\n",
    "gmail_wrapped": "On Mon, Mar 4, 2024 at 10:01 AM John Smith <\njohn@acme.com> wrote:\n> Can you quote?\n",
    "gmail_zh": "在 2024年3月4日 周一 10:01，John Smith <john@acme.com> 写道：\n> 请报价500个\n",
    "outlook_en": "________________________________\nFrom: John Smith <john@acme.com>\nSent: Monday, March 4, 2024 10:01 AM\nTo: Tom <sales@brightlight.cn>\nSubject: RE: Quote\n\nCan you quote?\n",
    "outlook_zh": "发件人: John Smith <john@acme.com>\n发送时间: 2024年3月4日 10:01\n收件人: sales@brightlight.cn\n主题: 询价\n\n请报价\n",
    "outlook_original": "-----Original Message-----\nFrom: John <john@acme.com>\nSent: Monday\nTo: Tom\nSubject: Quote\n\nCan you quote?\n",
    "foxmail": "------------------ 原始邮件 ------------------\n发件人: \"John\"<john@acme.com>;\n发送时间: 2024年3月4日(星期一) 上午10:01\n收件人: \"Tom\"<sales@brightlight.cn>;\n主题: 询价\n\n请报价\n",
    "netease": "-----原始邮件-----\n发件人:\"John\" <john@acme.com>\n发送时间:2024-03-04 10:01:00\n收件人:sales@brightlight.cn\n主题:询价\n\n请报价\n",
    "thunderbird": "On 04.03.24 10:01, John Smith wrote:\n> Can you quote 500 pcs?\n",
    "thunderbird_fwd": "-------- Forwarded Message --------\nSubject: \tQuote\nDate: \tMon, 4 Mar 2024\nFrom: \tJohn <john@acme.com>\n\nCan you quote?\n",
    "apple_fwd": "Begin forwarded message:\n\nFrom: John Smith <john@acme.com>\nSubject: Quote\nDate: 4 March 2024\n\nCan you quote?\n",
    "gmail_fwd": "---------- Forwarded message ---------\nFrom: John Smith <john@acme.com>\nDate: Mon, Mar 4, 2024\nSubject: Quote\n\nCan you quote?\n",
    "netease_replied": "---- Replied Message ----\n| From | John<john@acme.com> |\n| Date | 03/04/2024 10:01 |\n\nCan you quote?\n",
    "plain_prefix": "> Can you quote 500 pcs?\n> Thanks\n",
}


@pytest.mark.parametrize("client", sorted(TEXT_QUOTES))
def test_text_quote_start_for_each_client(client: str) -> None:
    text = NEW + "\n" + TEXT_QUOTES[client]
    end, start = split_text(text)
    assert start is not None, client
    assert text[:start].strip() == NEW.strip()
    assert text[:end] == NEW.rstrip()
    assert find_quote_start_text(text) == start


def test_text_without_quote() -> None:
    end, start = split_text(NEW)
    assert start is None and end == len(NEW.rstrip())
    assert quoted_spans_text(NEW) == []


def test_from_line_in_new_text_is_not_a_quote() -> None:
    text = "From: our factory in Shenzhen we ship weekly.\nPrice is good.\n"
    assert find_quote_start_text(text) is None


def test_bottom_posted_reply_keeps_new_text_after_the_quote() -> None:
    text = "On Mon, John wrote:\n> price?\n> thanks\n\nHere is my WeChat: tom_8888\n"
    spans = quoted_spans_text(text)
    quoted = "".join(text[s:e] for s, e in spans)
    assert "price?" in quoted and "tom_8888" not in quoted


def test_interleaved_prefix_quotes() -> None:
    text = "> first question\nanswer one\n> second question\nanswer two\n"
    spans = quoted_spans_text(text)
    quoted = "".join(text[s:e] for s, e in spans)
    assert "first question" in quoted and "second question" in quoted
    assert "answer one" not in quoted and "answer two" not in quoted


HTML_NEW = '<div dir="ltr">Hi John,<div>the new price is attached.</div></div>'
HTML_QUOTES = {
    "gmail": '<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Mar 4, 2024 at 10:01 AM John &lt;<a href="mailto:john@acme.com">john@acme.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px">Can you quote?</blockquote></div>',
    "outlook_desktop": '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>From:</b> John &lt;john@acme.com&gt;<br><b>Sent:</b> Monday<br><b>To:</b> Tom<br><b>Subject:</b> Quote</p></div></div><p>Can you quote?</p>',
    "outlook_web": '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> John<br><b>Sent:</b> Monday<br><b>To:</b> Tom</font></div><div>Can you quote?</div>',
    "outlook_com": '<hr style="display:inline-block;width:98%" tabindex="-1" id="stopSpelling"><div><b>From:</b> John</div>',
    "thunderbird": '<div class="moz-cite-prefix">On 04.03.24 10:01, John wrote:<br></div><blockquote type="cite" cite="mid:x@acme.com">Can you quote?</blockquote>',
    "apple_mail": '<div><br><blockquote type="cite"><div>On 4 Mar 2024, at 10:01, John &lt;john@acme.com&gt; wrote:</div><br class="Apple-interchange-newline"><div>Can you quote?</div></blockquote></div>',
    "apple_mail_attr_outside": '<div>On 4 Mar 2024, at 10:01, John wrote:</div><blockquote type="cite"><div>Can you quote?</div></blockquote>',
    "foxmail_reply": '<div id="isReplyContent" style="margin-top:20px"><div style="font-size:12px">------------------&nbsp;原始邮件&nbsp;------------------</div><div><b>发件人:</b>&nbsp;"John"</div></div>',
    "foxmail_forward": '<div id="isForwardContent"><div>------------------&nbsp;Original&nbsp;------------------</div></div>',
    "qq_mail_separator": '<div><br></div><div style="font-size: 12px;font-family: Arial Narrow;padding:2px 0 2px 0;">------------------&nbsp;原始邮件&nbsp;------------------</div><div style="font-size: 12px;background:#efefef;"><b>发件人:</b> "John"</div>',
    "netease_mailmaster": '<div class="ntes-mailmaster-quote" style="padding-top:1px"><div>---- Replied Message ----</div><table><tr><td>From</td><td>John</td></tr></table></div>',
    "netease_web": '<div id="isReplyContent"><div style="padding:2px 0px;">在 2024-03-04 10:01:00，"John" &lt;john@acme.com&gt; 写道：</div><blockquote id="ntes-pcmail-quote">Can you quote?</blockquote></div>',
    "yahoo": '<div class="yahoo_quoted"><div>On Monday, John wrote:</div><div>Can you quote?</div></div>',
    "plain_header_block": '<p>From: John &lt;john@acme.com&gt;</p><p>Sent: Monday</p><p>To: Tom</p><p>Subject: Quote</p><p>Can you quote?</p>',
}


@pytest.mark.parametrize("client", sorted(HTML_QUOTES))
def test_html_quote_start_for_each_client(client: str) -> None:
    source = f"<html><body>{HTML_NEW}{HTML_QUOTES[client]}</body></html>"
    start = find_quote_start_html(source)
    assert start is not None, client
    before = source[:start]
    assert "the new price is attached" in before
    assert "Can you quote" not in before and "原始邮件" not in before and "Replied" not in before
    assert "wrote:" not in before and "写道" not in before


def test_html_without_quote() -> None:
    assert find_quote_start_html(f"<html><body>{HTML_NEW}<blockquote>a quote of a poem</blockquote></body></html>") is None


def test_huge_single_line_is_fast() -> None:
    import time

    line = "x" * 2_000_000
    t = time.perf_counter()
    split_text(line)
    find_quote_start_html(line)
    assert time.perf_counter() - t < 2.0


@pytest.mark.parametrize("line", ["他在信中写道：", "我朋友写道：", "客户在邮件里寫道:", "于是他写道："])
def test_chinese_wrote_line_without_date_or_address_is_not_a_quote(line: str) -> None:
    text = f"您好，\n{line}\n“价格太高了”。\n我的微信：tom_li88\n"
    assert find_quote_start_text(text) is None
    assert quoted_spans_text(text) == []


@pytest.mark.parametrize("line", [
    "John Smith <john@acme.com> 于2024年3月4日周一 10:01写道：",
    "在 2024-03-04 10:01:00，\"John\"<john@acme.com> 写道：",
    "2024年3月4日 John 写道：",
])
def test_chinese_attribution_with_date_or_address_is_a_quote(line: str) -> None:
    text = NEW + "\n" + line + "\n请报价500个\n"
    start = find_quote_start_text(text)
    assert start is not None and text[:start].strip() == NEW.strip()
