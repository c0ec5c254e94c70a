"""The signed HTML renders in a real browser: headless Chromium (Debian package ``chromium``).

Checks that the document still parses into the same structure, that the signature is visible
and above the quoted history, not inside it, and saves a screenshot to tests/artifacts/ for
review. Skips when Chromium is missing, except in CI (``CI=true``), where that fails.
"""

from __future__ import annotations

import base64
import html as htmllib
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from sigkit import COMPANY, LI, ZHANG, content, crlf, norm, parts_of

from mailwarden.signatures import SignatureCompany, SignatureSettings, apply_signature, load_signatures, render

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]

PROBE = """<script>window.addEventListener('load', function () {
  var sigs = [].slice.call(document.querySelectorAll('.mailwarden-signature'));
  var quote = document.querySelector('blockquote[type=cite], .gmail_quote');
  var first = sigs[0], r = first.getBoundingClientRect(), q = quote.getBoundingClientRect();
  var cs = getComputedStyle(first), img = first.querySelector('img');
  document.documentElement.setAttribute('data-probe', JSON.stringify({
    count: sigs.length,
    inside_quote: sigs.map(function (s) { return !!s.closest('blockquote, .gmail_quote'); }),
    sig_top: r.top, sig_bottom: r.bottom, sig_height: r.height, sig_width: r.width, quote_top: q.top,
    visible: cs.display !== 'none' && cs.visibility !== 'hidden' && cs.opacity !== '0',
    text: first.innerText, new_text_bottom: document.getElementById('new-text').getBoundingClientRect().bottom,
    logo_width: img ? img.naturalWidth : null, quote_text: quote.innerText
  }));
});</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (Debian package: chromium); CI must run the browser test")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def run_chromium(binary: str, tmp: Path, *args: str) -> str:
    proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, so the test needs no image library."""
    row = b"\x00" + bytes(rgb) * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b"")


def signed_reply_to_reply(tmp: Path) -> tuple[bytes, object]:
    (tmp / "logo.png").write_bytes(png(120, 48, (26, 95, 180)))
    company = SignatureCompany(**{**COMPANY.__dict__, "logo": tmp / "logo.png"})
    s = load_signatures(SignatureSettings(), company)
    head = "From: Li Na <lina@acme.example>\nTo: bob@customer.example\nSubject: Re: Re: Quote\nMIME-Version: 1.0\n"
    first = apply_signature(crlf(head + "Content-Type: text/html; charset=utf-8\n\n"
                                 "<html><body><p>Hi Bob, our price is 10 USD.</p></body></html>\n"), s, ZHANG)
    first_body = content(first.message, "text/html").split("<body>", 1)[1].rsplit("</body>", 1)[0]
    bob = ('<div dir="ltr">Can you do 9 USD?</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
           "On Tue, Jan 2, 2024 at 9:00 AM Zhang Wei &lt;zhangwei@acme.example&gt; wrote:<br></div>"
           '<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex">'
           f"{first_body}</blockquote></div>")
    mine = ('<html><head><meta http-equiv="content-type" content="text/html; charset=UTF-8"></head><body>'
            '<p id="new-text">OK, 9 USD. 我们可以接受这个价格。</p><div class="moz-cite-prefix">On 1/3/24 9:00, Bob wrote:<br>'
            f'</div><blockquote type="cite">{bob}</blockquote></body></html>')
    alternative = (f'Content-Type: multipart/alternative; boundary="A"\n\n--A\nContent-Type: text/plain; charset=utf-8\n\n'
                   f"OK, 9 USD.\n\nOn 1/3/24 9:00, Bob wrote:\n> Can you do 9 USD?\n\n--A\n"
                   f"Content-Type: text/html; charset=utf-8\n\n{mine}\n--A--\n")
    return apply_signature(crlf(head + alternative), s, LI).message, s


def as_browser_page(message: bytes) -> str:
    """The HTML part as a mail client shows it: cid: images resolved from the message."""
    page = content(message, "text/html")
    for part in parts_of(message, "image/png"):
        cid = part["Content-ID"].strip("<>")
        data = base64.b64encode(part.get_content()).decode()
        page = page.replace(f"cid:{cid}", f"data:image/png;base64,{data}")
    return page


def test_signature_renders_visibly_above_the_quoted_history(tmp_path: Path) -> None:
    binary = chromium()
    message, s = signed_reply_to_reply(tmp_path)
    page = as_browser_page(message)
    probe_file = tmp_path / "probe.html"
    probe_file.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = run_chromium(binary, tmp_path, "--dump-dom", probe_file.as_uri())
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, dom[:2000]
    probe = json.loads(htmllib.unescape(m.group(1)))

    assert probe["count"] == 2  # Li Na's, and Zhang's old one inside the quotes
    assert probe["inside_quote"] == [False, True]
    assert probe["visible"] and probe["sig_height"] > 20 and probe["sig_width"] > 100
    assert probe["new_text_bottom"] <= probe["sig_top"] < probe["sig_bottom"] <= probe["quote_top"]
    assert norm(probe["text"]) == norm(render(s, LI, None).text)
    assert probe["logo_width"] == 120
    assert "Can you do 9 USD?" in probe["quote_text"] and "Hi Bob, our price is 10 USD." in probe["quote_text"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page_file = ARTIFACTS / "signature-reply.html"
    page_file.write_text(page, encoding="utf-8")
    shot = ARTIFACTS / "signature-reply.png"
    shot.unlink(missing_ok=True)
    run_chromium(binary, tmp_path, f"--screenshot={shot}", "--window-size=900,900", page_file.as_uri())
    assert shot.stat().st_size > 1000
