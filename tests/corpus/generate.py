"""Generate the labelled detection corpus: ``python -m tests.corpus.generate``.

Writes ``tests/corpus/mail/<id>.eml`` and ``tests/corpus/labels.jsonl`` (one object per
message: id, file, lang, charset, shape, set, class, expected_action, categories, to,
split). Deterministic: the same script writes the same bytes, and a test checks that the
committed files are what it writes, so the corpus grows by editing the script.

``fresh`` marks the cases of :mod:`.fresh`; ``declared`` is the charset the header names
(``charset`` the one the text is in: they differ where a client labels it wrong or not at all). ``set`` is ``risky`` (must be raised: warn or above, with the expected categories),
``hard_clean`` (looks risky, is fine: must stay below warn) or ``clean``. ``split`` is
``heldout`` for about 30 % of the messages (by a hash of the id) and for every case of
:mod:`.fresh` (written after tuning, in new phrasings): measured, never tuned on.
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass, field
from email.header import Header
from email.message import EmailMessage
from pathlib import Path

from .fresh import FRESH
from .special import SPECIAL
from .texts_latin import DE, EN, ES, FR, PT
from .texts_other import AR, JA, RU, ZH, ZH_HANT

HERE = Path(__file__).resolve().parent
MAIL_DIR = HERE / "mail"
LABELS = HERE / "labels.jsonl"
SENDER = "Tom Li <sales@brightlight.cn>"


@dataclass(frozen=True)
class Lang:
    code: str
    texts: dict
    charsets: tuple[str, ...]
    im: tuple[str, str]  # two private messenger handles
    phone: tuple[str, str]
    mail: tuple[str, str]


LANGS = (
    Lang("en", EN, ("utf-8", "us-ascii", "windows-1252", "utf-7"), ("+86 138 1234 5678", "+86 139 8765 4321"),
         ("+86 138 2345 6789", "+86 186 6655 4433"), ("tom.li.private@gmail.com", "tomli1988@163.com")),
    Lang("es", ES, ("windows-1252", "iso-8859-1", "utf-8"), ("+86 138 1234 5678", "+34 612 345 678"),
         ("+34 699 123 456", "+86 138 2345 6789"), ("tomli.ventas@hotmail.com", "tomli1988@gmail.com")),
    Lang("de", DE, ("windows-1252", "iso-8859-15", "utf-8", "windows-1250"), ("+49 151 2345 6789", "+86 138 1234 5678"),
         ("+49 170 9876 5432", "+86 138 2345 6789"), ("tom.li@gmx.de", "tomli1988@web.de")),
    Lang("fr", FR, ("windows-1252", "utf-8"), ("+33 6 12 34 56 79", "+86 138 1234 5678"),
         ("+33 7 81 23 45 67", "+86 138 2345 6789"), ("tom.li@laposte.net", "tomli1988@gmail.com")),
    Lang("pt", PT, ("windows-1252", "iso-8859-1", "utf-8"), ("+55 11 91234 5678", "+86 138 1234 5678"),
         ("+55 21 99876 5432", "+86 138 2345 6789"), ("tomli.vendas@gmail.com", "tomli1988@outlook.com")),
    Lang("zh", ZH, ("gbk", "gb18030", "utf-8", "hz-gb-2312", "gb2312", "utf-7"), ("zhang_8888", "liming_0755"),
         ("138 1234 5678", "186-6655-4433"), ("liming1988@qq.com", "liming_sz@163.com")),
    Lang("zh-Hant", ZH_HANT, ("big5", "utf-8"), ("ming_li88", "liming_tw"),
         ("0912-345-679", "+886 933 222 111"), ("liming1988@yahoo.com.tw", "liming_tw@gmail.com")),
    Lang("ja", JA, ("iso-2022-jp", "shift_jis", "euc-jp", "utf-8"), ("li_ming88", "liming_jp"),
         ("090-8765-4321", "+81 80 1111 2222"), ("liming1988@yahoo.co.jp", "liming.jp@gmail.com")),
    Lang("ru", RU, ("koi8-r", "windows-1251", "utf-8"), ("@tomli_sales", "@liming_trade"),
         ("+7 916 123 4567", "+7 925 765 4321"), ("tomli1988@mail.ru", "tom.li@yandex.ru")),
    Lang("ar", AR, ("windows-1256", "utf-8", "iso-8859-6"), ("+971 50 123 4567", "+86 138 1234 5678"),
         ("+971 55 987 6543", "+966 50 123 4567"), ("tomli1988@gmail.com", "tom.li@hotmail.com")),
)
CUSTOMER_ADDRESS = {
    "en": ("buyer@acme-imports.com", "john.acme@gmail.com"),
    "es": ("compras@iluminacion-sol.es", "ana.sol@hotmail.com"),
    "de": ("einkauf@mueller-leuchten.de", "klaus.mueller@gmx.de"),
    "fr": ("achats@lumiere-paris.fr", "claire.durand@orange.fr"),
    "pt": ("compras@luz-brasil.com.br", "paulo.souza@gmail.com"),
    "zh": ("purchase@huaxin-trading.cn", "wang.huaxin@qq.com"),
    "zh-Hant": ("purchase@lucky-light.com.tw", "chen.lucky@yahoo.com.tw"),
    "ja": ("tanaka@hikari-shoji.co.jp", "tanaka.hikari@yahoo.co.jp"),
    "ru": ("zakaz@svet-torg.ru", "ivan.svet@mail.ru"),
    "ar": ("info@nur-lighting.ae", "ahmed.nur@gmail.com"),
}

# key → (set, expected action, categories)
RISKY = {
    "im": ("block", ["private_contact"]),
    "phone": ("quarantine", ["private_contact"]),
    "freemail": ("block", ["private_contact"]),
    "kickback": ("block", ["sensitive_word"]),
    "account": ("block", ["sensitive_word"]),
    "divert": ("quarantine", ["sensitive_word"]),
    "secret": ("quarantine", ["sensitive_word"]),
}
HARD_CLEAN = ("warn_account", "warn_private", "left_notice", "official", "third_party", "bank", "numbers",
              "near_miss", "new_company", "customer_freemail", "quoted")
CLEAN = ("plain1", "plain2")
OFFICIAL = (
    "tel +86 755 8888 6666, WeChat BrightLightingCN, sales@brightlight.cn",
    "our hotline 400-820-8820 / WhatsApp +86 755 8888 6666 (office)",
)
NUMBERS = (
    "item 7301-2245-08, EAN 6901234567892, HS code 9405.42.1000, B/L COSU6231234560, "
    "container MSKU1234565, IBAN DE89 3704 0044 0532 0130 00, ETD 2024-03-15",
    "PO 4500123987, GTIN 06901234567892, HS 8539.52.0000, seal 2024031512, "
    "container TGHU 876543 2, 15.03.2024, invoice BL-2024-0315-88",
)


@dataclass
class Entry:
    """One corpus message before it is written."""

    id: str
    lang: str
    set: str
    cls: str
    expected_action: str
    categories: list[str]
    charset: str
    subject: str
    text: str | None = None
    html: str | None = None
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # filename, mime type, data
    to: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None  # a hand-made text/plain body (transfer encoding in headers)
    split_override: str | None = None  # "heldout" for the cases in .fresh
    declare: str | None = "same"  # the charset the header names: "same", another label, or None (none)

    @property
    def shape(self) -> str:
        if self.attachments:
            return "attachment"
        if self.html is not None:
            return "html"
        return "plain"

    @property
    def split(self) -> str:
        if self.split_override is not None:
            return self.split_override
        return "heldout" if zlib.crc32(self.id.encode()) % 10 < 3 else "tune"


def _fill(template: str, lang: Lang, v: int) -> str:
    return template.format(im=lang.im[v], phone=lang.phone[v], mail=lang.mail[v],
                           cmail=CUSTOMER_ADDRESS[lang.code][1], official=OFFICIAL[v], numbers=NUMBERS[v])


def _body(lang: Lang, key: str, v: int) -> tuple[str, str]:
    """(text, html) of a base message: greeting, filler, the sentence for *key*, closing."""
    t = lang.texts
    middle = _fill(t[key], lang, v)
    paras = [t["greet"], t["filler"][0], middle, t["filler"][v + 1], t["close"]]
    if key == "quoted":
        paras = [t["greet"], middle, t["close"]]
    text = "\n\n".join(paras) + "\n"
    html = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paras)
    if key == "quoted":
        qbody = t["quote_body"]
        text += "\n" + t["quote_head"] + "\n> " + qbody + "\n"
        html += f"<div>{t['quote_head']}</div><blockquote type=\"cite\">{qbody}</blockquote>"
    return text, f"<html><body>{html}</body></html>"


def base_entries() -> list[Entry]:
    out: list[Entry] = []
    n = 0
    for lang in LANGS:
        keys = [(k, "risky") for k in RISKY] + [(k, "hard_clean") for k in HARD_CLEAN] + [(k, "clean") for k in CLEAN]
        for key, kind in keys:
            for v in (0, 1):
                n += 1
                charset = lang.charsets[n % len(lang.charsets)]
                action, cats = RISKY.get(key, ("allow", []))
                text, html = _body(lang, key, v)
                to = [CUSTOMER_ADDRESS[lang.code][0]]
                if key == "customer_freemail":
                    to = [CUSTOMER_ADDRESS[lang.code][1]] if v else to + [CUSTOMER_ADDRESS[lang.code][1]]
                e = Entry(f"{lang.code}-{key}-{v}", lang.code, kind, key, action, list(cats), charset,
                          lang.texts["subject"], to=to)
                if v == 0:
                    e.text = text
                else:
                    e.text, e.html = text, html
                if key == "numbers" and v == 1:
                    e.attachments.append(("packing_list.csv", "text/csv", _packing_csv()))
                out.append(e)
    return out


def _packing_csv() -> bytes:
    rows = ["item,ean,hs_code,qty,container,etd"]
    for i in range(12):
        rows.append(f"7301-22{i:02d},69012345{i:04d}2,9405.42.10{i:02d},{(i + 1) * 100},MSKU12345{i:02d}5,2024-03-{i + 1:02d}")
    return ("\r\n".join(rows) + "\r\n").encode()


def _encode(text: str, charset: str) -> tuple[bytes, str]:
    try:
        return text.encode(charset), charset
    except UnicodeEncodeError:
        return text.encode("utf-8"), "utf-8"


def _cte(data: bytes, charset: str) -> str:
    if data.isascii():
        return "7bit"
    if charset.startswith(("windows-125", "iso-8859", "koi8")):
        return "quoted-printable"
    return "base64"


def _params(e: Entry, charset: str) -> dict[str, str]:
    if e.declare == "same":
        return {"charset": charset}
    return {} if e.declare is None else {"charset": e.declare}


def build(e: Entry) -> bytes:
    """The message's bytes (the charset actually used is stored back in ``e.charset``)."""
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(e.to)
    for k, val in e.headers.items():
        msg[k] = val
    msg["Subject"] = "X-CORPUS-SUBJECT"
    msg["Date"] = "Mon, 04 Mar 2024 12:00:00 +0800"
    msg["Message-ID"] = f"<{e.id}@corpus.brightlight.cn>"
    used = {e.charset}
    if e.raw_body is not None:
        body = b""
    elif e.text is not None:
        data, cs = _encode(e.text, e.charset)
        used.add(cs)
        msg.set_content(data, maintype="text", subtype="plain", cte=_cte(data, cs), params=_params(e, cs))
    if e.html is not None:
        data, cs = _encode(e.html, e.charset)
        used.add(cs)
        if e.text is None:
            msg.set_content(data, maintype="text", subtype="html", cte=_cte(data, cs), params=_params(e, cs))
        else:
            msg.add_alternative(data, maintype="text", subtype="html", cte=_cte(data, cs), params=_params(e, cs))
    for filename, mime, payload in e.attachments:
        maintype, subtype = mime.split("/", 1)
        if e.text is None and e.html is None:
            msg.set_content("See the attachment.\n")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    e.charset = e.charset if used == {e.charset} else "utf-8"
    for i, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_corpus_{e.id}_{i}")
    raw = msg.as_bytes()
    if e.raw_body is not None:
        head = raw.split(b"\n\n", 1)[0]
        raw = head + b"\n\n" + e.raw_body
    try:
        subject = Header(e.subject, e.charset).encode(maxlinelen=998)
    except (UnicodeEncodeError, LookupError):
        subject = Header(e.subject, "utf-8").encode(maxlinelen=998)
    subject = subject.replace("\n", "")
    return raw.replace(b"Subject: X-CORPUS-SUBJECT", b"Subject: " + subject.encode("ascii"), 1)


def entries() -> list[Entry]:
    """Every corpus message, base then special cases."""
    return base_entries() + [Entry(**s) for s in (*SPECIAL, *FRESH)]


def label(e: Entry) -> dict[str, object]:
    return {"id": e.id, "file": f"mail/{e.id}.eml", "lang": e.lang, "charset": e.charset, "shape": e.shape,
            "set": e.set, "class": e.cls, "expected_action": e.expected_action, "categories": e.categories,
            "to": e.to, "split": e.split, "fresh": e.split_override is not None,
            "declared": e.charset if e.declare == "same" else e.declare}


def render() -> dict[str, bytes]:
    """Path (relative to this folder) → bytes of every file the corpus consists of."""
    files: dict[str, bytes] = {}
    labels = []
    seen: set[str] = set()
    for e in entries():
        if e.id in seen:
            raise ValueError(f"duplicate corpus id {e.id}")
        seen.add(e.id)
        files[f"mail/{e.id}.eml"] = build(e)
        labels.append(json.dumps(label(e), ensure_ascii=False, sort_keys=True))
    files["labels.jsonl"] = ("\n".join(labels) + "\n").encode("utf-8")
    return files


def main() -> int:
    files = render()
    MAIL_DIR.mkdir(exist_ok=True)
    for old in MAIL_DIR.glob("*.eml"):
        if f"mail/{old.name}" not in files:
            old.unlink()
    for rel, data in files.items():
        (HERE / rel).write_bytes(data)
    print(f"wrote {len(files) - 1} messages and labels.jsonl to {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
