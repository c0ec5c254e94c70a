"""Benchmark of signature insertion (issue 4): ``python tests/bench/bench_signatures.py``.

Prints, per message shape, the time of ``apply_signature`` (p50/p99), next to a reference:
the same message merely parsed and serialised by the standard ``email`` package (the work a
naive implementation would do at least), as a ratio. For the 5 MB message it also prints the
peak memory that ``tracemalloc`` sees during one call, relative to the message size (the
target: the message is not copied more than twice, i.e. peak < 2x). The ``shared`` column is
the gateway's case: the signature on the mail model the rules already parsed (their parse
found the structure, so the signature does not scan the message again). Not collected by
pytest.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from email import message_from_bytes
from email.policy import compat32

from mailwarden.rules.budget import Deadline
from mailwarden.rules.mail import Mail
from mailwarden.signatures import (
    SignatureCompany,
    SignatureSettings,
    SignatureUser,
    apply_signature,
    load_signatures,
)

COMPANY = SignatureCompany("ACME Trading Co., Ltd.", ("acme.example",), ("+86 571 8888 0000",),
                           ("WeChat: ACME_Official",), "No. 1 Wensan Road, Hangzhou", "www.acme.example")
USER = SignatureUser("zhangwei", "张伟", "Export Sales Manager", "+86 138 0000 1111", "zhangwei@acme.example")
HEAD = ("From: Zhang Wei <zhangwei@acme.example>\r\nTo: Bob <bob@customer.example>\r\nSubject: Re: Quote\r\n"
        "Message-ID: <bench@acme.example>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0800\r\nMIME-Version: 1.0\r\n")


def text_10k() -> bytes:
    new = "Hi Bob,\r\n\r\nThanks for the order. Delivery is planned for week 12, FOB Ningbo.\r\n\r\n"
    quoted = "".join(f"> Line {i} of the earlier discussion about prices, packaging and delivery terms.\r\n"
                     for i in range(110))
    body = new + "On Mon, 1 Jan 2024 at 09:00, Bob <bob@customer.example> wrote:\r\n" + quoted
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + body).encode("utf-8")


def html_thread_10k() -> bytes:
    sig = ('<div class="mailwarden-signature" data-mailwarden-signature="1"><table><tr><td><b>张伟</b><br>'
           "ACME Trading Co., Ltd.<br>Office: +86 571 8888 0000</td></tr></table></div>")
    inner = "<p>Initial enquiry for 2,000 pcs.</p>"
    for level in range(20):
        inner = (f'<div dir="ltr"><p>Reply {level}: prices and terms as discussed, see below. Unit price 2.35 USD FOB Ningbo, MOQ 2,000 pcs, delivery 30 days after deposit; packing 50 pcs per carton, 20 kg.</p></div>'
                 f"{sig if level % 2 else ''}<div class=\"gmail_quote\"><div class=\"gmail_attr\">On day {level}, "
                 f'someone wrote:</div><blockquote class="gmail_quote" style="margin:0 0 0 .8ex;'
                 f'border-left:1px #ccc solid;padding-left:1ex">{inner}</blockquote></div>')
    html = f"<html><head><meta charset=\"utf-8\"></head><body><p>OK, confirmed.</p>{inner}</body></html>"
    text = "OK, confirmed.\r\n\r\nOn day 19, someone wrote:\r\n> Reply 10: prices and terms\r\n"
    body = (f'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n--ALT\r\nContent-Type: text/plain; '
            f"charset=utf-8\r\n\r\n{text}\r\n--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--ALT--\r\n")
    return (HEAD + body).encode("utf-8")


def big_5mb() -> bytes:
    def attachment(name: str, ctype: str, size: int) -> str:
        data = base64.encodebytes(os.urandom(size)).decode().replace("\n", "\r\n")
        return (f'--MIX\r\nContent-Type: {ctype}; name="{name}"\r\nContent-Disposition: attachment; '
                f'filename="{name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}')

    alt = html_thread_10k().split(b"MIME-Version: 1.0\r\n", 1)[1].decode()
    body = ('Content-Type: multipart/mixed; boundary="MIX"\r\n\r\n--MIX\r\n' + alt + "\r\n"
            + attachment("catalogue.pdf", "application/pdf", 2_600_000) + attachment(
                "prices.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 1_150_000)
            + "--MIX--\r\n")
    return (HEAD + body).encode("utf-8")


def timings(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm caches (rendered signature, compiled patterns)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs for the 10 KB messages")
    parser.add_argument("--big-runs", type=int, default=40, help="runs for the 5 MB message")
    args = parser.parse_args(argv)

    sigs = load_signatures(SignatureSettings(), COMPANY)
    cases = [("10 KB text reply", text_10k(), args.runs), ("10 KB HTML reply, long thread", html_thread_10k(), args.runs),
             ("5 MB with attachments", big_5mb(), args.big_runs)]
    rows = []
    for name, raw, runs in cases:
        result = apply_signature(raw, sigs, USER)
        assert result.applied, (name, result)
        ours = timings(lambda raw=raw: apply_signature(raw, sigs, USER), runs)
        mail = Mail(raw)
        mail.segments(is_company_signature=lambda text: False, deadline=Deadline(0))  # the rules' parse
        shared = timings(lambda raw=raw, mail=mail: apply_signature(raw, sigs, USER, mail=mail), runs)
        ref = timings(lambda raw=raw: message_from_bytes(raw, policy=compat32).as_bytes(), max(10, runs // 10))
        rows.append((name, len(raw), statistics.median(ours), pct(ours, 99), statistics.median(shared),
                     statistics.median(ref)))

    big = cases[2][1]
    tracemalloc.start()
    apply_signature(big, sigs, USER)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    message_from_bytes(big, policy=compat32).as_bytes()
    _, ref_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"{'message':32} {'size':>9} {'p50 ms':>8} {'p99 ms':>8} {'shared p50':>10} {'email rt p50':>13} "
          f"{'ratio':>6}")
    for name, size, p50, p99, shared_p50, ref in rows:
        print(f"{name:32} {size:>9,} {p50:>8.3f} {p99:>8.3f} {shared_p50:>10.3f} {ref:>13.3f} {p50 / ref:>6.2f}")
    print(f"\npeak memory, 5 MB message: {peak / len(big):.2f}x the message size "
          f"({peak / 1e6:.1f} MB; email parse+serialise: {ref_peak / len(big):.2f}x)")
    ok = rows[0][2] < 2.0 and rows[1][2] < 2.0 and peak < 2 * len(big)
    print("targets (p50 < 2 ms for 10 KB, peak < 2x for 5 MB):", "met" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
