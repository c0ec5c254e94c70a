"""Hand-written corpus cases: obfuscations and hidden places (risky), and the company's own
channels in every form (hard clean). Each is the keyword arguments of a
:class:`~tests.corpus.generate.Entry`."""

from __future__ import annotations

import base64

_TO = {"en": "buyer@acme-imports.com", "zh": "purchase@huaxin-trading.cn", "es": "compras@iluminacion-sol.es",
       "de": "einkauf@mueller-leuchten.de", "ru": "zakaz@svet-torg.ru", "ja": "tanaka@hikari-shoji.co.jp",
       "ar": "info@nur-lighting.ae", "fr": "achats@lumiere-paris.fr", "pt": "compras@luz-brasil.com.br",
       "zh-Hant": "purchase@lucky-light.com.tw"}
_HEAD = {"en": "Dear John,\n\nPlease find the quotation attached.\n\n",
         "zh": "王经理您好：\n\n附件是报价单，请查收。\n\n",
         "zh-Hant": "陳經理您好：\n\n附件是報價單，請查收。\n\n",
         "es": "Estimada Ana:\n\nAdjunto la cotización.\n\n",
         "de": "Sehr geehrter Herr Müller,\n\nanbei das Angebot.\n\n",
         "fr": "Bonjour Madame Durand,\n\nci-joint le devis.\n\n",
         "pt": "Prezado Sr. Souza,\n\nsegue a cotação.\n\n",
         "ru": "Здравствуйте, Иван!\n\nВо вложении предложение.\n\n",
         "ja": "田中様\n\nお見積書を添付いたします。\n\n",
         "ar": "السيد أحمد المحترم،\n\nمرفق عرض الأسعار.\n\n"}
_TAIL = "\n\nTom Li\n"


def _risky(cid: str, lang: str, text: str | None = None, *, html: str | None = None, cats: tuple[str, ...] = (
        "private_contact",), action: str = "block", charset: str = "utf-8", **kw: object) -> dict:
    body = None if text is None else _HEAD[lang] + text + _TAIL
    return dict(id=f"{lang}-x-{cid}", lang=lang, set="risky", cls=cid.rsplit("-", 1)[0], expected_action=action,
                categories=list(cats), charset=charset, subject=kw.pop("subject", "Quotation"), text=body,
                html=html, to=list(kw.pop("to", [_TO[lang]])), **kw)


def _clean(cid: str, lang: str, text: str | None = None, *, html: str | None = None, charset: str = "utf-8",
           **kw: object) -> dict:
    body = None if text is None else _HEAD[lang] + text + _TAIL
    return dict(id=f"{lang}-h-{cid}", lang=lang, set="hard_clean", cls=cid.rsplit("-", 1)[0], expected_action="allow",
                categories=[], charset=charset, subject=kw.pop("subject", "Quotation"), text=body, html=html,
                to=list(kw.pop("to", [_TO[lang]])), **kw)


def _html(lang: str, inner: str) -> str:
    return f"<html><body><p>{_HEAD[lang].strip()}</p><p>{inner}</p><p>Tom Li</p></body></html>"


_VCARD = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Tom Li\r\nTEL;TYPE=CELL:+86 138 1234 5678\r\n"
          "EMAIL;TYPE=HOME:tom.li.private@gmail.com\r\nEND:VCARD\r\n").encode()
_VCARD_OFFICIAL = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Tom Li\r\nORG:Bright Lighting Co., Ltd.\r\n"
                   "TEL;TYPE=WORK:+86 755 8888 6666\r\nEMAIL;TYPE=WORK:sales@brightlight.cn\r\nEND:VCARD\r\n").encode()
_PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
_B64 = base64.b64encode(b"my wechat: tom_8888").decode()
_QP = ("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n"
       "MIME-Version: 1.0\n\nDear John,\n\nFor faster answers use my personal Whats=\nApp +86 138 =\n1234 5678.\n\n"
       "Tom Li\n").encode()

def _mislabelled(cid: str, lang: str, text: str, charset: str, declare: str | None, *, risky: bool = False,
                 html: bool = False) -> dict:
    """A message in *charset* whose header names *declare* (None: no charset at all)."""
    body = _HEAD[lang] + text + _TAIL
    if risky:
        entry = _risky(cid, lang, body if not html else None, charset=charset)
    else:
        entry = _clean(cid, lang, body if not html else None, charset=charset)
        entry["set"] = "clean"
    if html:
        entry["html"] = (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
                         f"</head><body><p>{text}</p></body></html>")
    entry["text"] = None if html else _HEAD[lang] + text + _TAIL
    entry["declare"] = declare
    entry["id"] = entry["id"].replace("-x-", "-m-").replace("-h-", "-m-")
    return entry


SPECIAL: list[dict] = [
    # ---------------------------------------------------------------- labels that cannot be right
    _mislabelled("nolabel-0", "ja", "納期は前金受領後25日です。よろしくお願いいたします。", "iso-2022-jp", None),
    _mislabelled("nolabel-1", "ja", "今後は私個人のLINE: tanaka_88 にご連絡ください。", "iso-2022-jp", None, risky=True),
    _mislabelled("nolabel-2", "ja", "お見積書を添付いたします。ご確認ください。", "euc-jp", None),
    _mislabelled("nolabel-3", "ja", "サンプルは本日発送しました。", "shift_jis", None),
    _mislabelled("ascii-0", "ja", "請求書を添付いたします。", "iso-2022-jp", "us-ascii"),
    _mislabelled("ascii-1", "zh", "附件是报价单，请查收。交货期为25天。", "gbk", "us-ascii"),
    _mislabelled("latin1-0", "ru", "Во вложении наше предложение, срок поставки 25 дней.", "koi8-r", "iso-8859-1"),
    _mislabelled("latin1-1", "ru", "Пишите мне лично в WhatsApp: +7 916 123 4567", "windows-1251", "iso-8859-1",
                 risky=True),
    _mislabelled("latin1-2", "ar", "مرفق عرض الأسعار، ومدة التسليم 25 يوماً.", "windows-1256", "iso-8859-1"),
    _mislabelled("meta-0", "ja", "お見積書を添付いたします。", "iso-2022-jp", None, html=True),

    # ---------------------------------------------------------------- separators and spacing
    _risky("spaced-0", "en", "Add my w.e.c.h.a.t: tom_8888 for quick answers."),
    _risky("spaced-1", "en", "My W h a t s A p p is +86 138 1234 5678, message me there."),
    _risky("spaced-2", "zh", "加我微 信：zhang8888，方便沟通。", charset="gbk"),
    _risky("spaced-3", "zh", "有事加我V信 zhang_8888。", charset="gb18030"),
    _risky("spaced-4", "zh", "加我薇❤：zhang8888 详聊。", charset="gb18030"),
    _risky("spaced-5", "zh", "我的 威信 号是 zhang_8888，加一下。", charset="utf-8"),
    _risky("spaced-6", "es", "Escríbame al w h a t s a p p +34 612 345 678."),
    _risky("spaced-7", "ru", "Пишите в т е л е г р а м @tomli_sales.", charset="koi8-r"),
    # ---------------------------------------------------------------- look-alike letters
    _risky("lookalike-0", "en", "My personal Wh\u0430tsApp: +86 138 1234 5678."),
    _risky("lookalike-1", "en", "Add my w\u0435ch\u0430t: tom_8888."),
    _risky("lookalike-2", "de", "Mein privates WhatsАpp: +49 151 2345 6789."),
    # ---------------------------------------------------------------- digits in other forms
    _risky("digits-0", "zh", "我的手机：一三八 一二三四 五六七八，打我电话。", charset="gbk"),
    _risky("digits-1", "zh", "我的手机：１３８１２３４５６７８，打我电话。", charset="gbk"),
    _risky("digits-2", "ar", "رقم الواتساب الخاص بي: +٩٧١ ٥٠ ١٢٣ ٤٥٦٧", charset="windows-1256"),
    _risky("digits-3", "en", "Call my mobile: one three eight, one two three four, five six seven eight."),
    _risky("digits-4", "en", "WhatsApp me: 1\ufe0f\u20e33\ufe0f\u20e38\ufe0f\u20e3 1234 5678 (+86)."),
    _risky("digits-5", "en", "My mobile +86 138\U0001f31f1234\U0001f31f5678, text me."),
    _risky("digits-6", "zh", "手机：壹叁捌 壹贰叁肆 伍陆柒捌，加微信同号。", charset="gb18030"),
    _risky("digits-7", "ja", "私の携帯：〇九〇ー八七六五ー四三二一 までお電話ください。", charset="iso-2022-jp"),
    # ---------------------------------------------------------------- text encoded inside the text
    _risky("base64-0", "en", f"Decode this (base64) for my contact: {_B64}"),
    # ---------------------------------------------------------------- broken by markup and wrapping
    _risky("markup-0", "en", html=_html("en", "Add my we<b>ch</b>at: tom_8888 for quick answers.")),
    _risky("markup-1", "zh", html=_html("zh", "加我私人<span>微</span>信：zhang_8888。"), charset="gbk"),
    _risky("wrap-0", "en", "Please keep this\nbetween us, my manager must not see it.", cats=("sensitive_word",),
           action="quarantine"),
    _risky("wrap-1", "en", "Send the deposit to my personal\naccount, details follow.", cats=("sensitive_word",)),
    _risky("qp-0", "en", raw_body=_QP.split(b"\n\n", 1)[1],
           headers={"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable"}),
    # ---------------------------------------------------------------- where the contact hides
    _risky("link-0", "en", html=_html("en", 'For quick answers <a href="https://wa.me/8613812345678">chat with me</a>.')),
    _risky("link-1", "zh", html=_html("zh", '<a href="weixin://dl/chat?zhang_8888">点这里加我微信</a>'), charset="gbk"),
    _risky("alt-0", "en", html=_html("en", 'Scan me: <img src="cid:qr" alt="my WeChat: tom_8888" title="WeChat">')),
    _risky("replyto-0", "en", "Please reply to this mail.", headers={"Reply-To": "tom.li.private@gmail.com"}),
    _risky("cc-0", "en", "Copying my other mailbox.", to=["buyer@acme-imports.com", "tomli1988@163.com"],
           cats=("recipient",), action="flag"),
    _risky("vcard-0", "en", "My card is attached.", attachments=[("tom.vcf", "text/vcard", _VCARD)]),
    _risky("txt-0", "en", "Details in the note.",
           attachments=[("note.txt", "text/plain", b"My personal WhatsApp: +86 138 1234 5678\n")]),
    _risky("signature-0", "en", "Thanks for the order.\n\n-- \nTom Li, Bright Lighting\n"
           "Personal mobile / WhatsApp: +86 138 1234 5678"),
    _risky("signature-1", "zh", "谢谢！\n\n-- \n李明 Bright Lighting\n私人微信：zhang_8888", charset="gbk"),
    _risky("qr-0", "en", "Scan the QR code attached to add my personal WeChat.",
           attachments=[("qr.png", "image/png", _PNG)]),
    _risky("qr-1", "zh", "扫描附件二维码加我个人微信，方便以后联系。", attachments=[("qr.png", "image/png", _PNG)],
           charset="gbk"),
    _risky("described-0", "en", "Text me on the green messenger app, +86 138 1234 5678."),
    _risky("described-1", "zh", "加我那个绿色聊天软件，号码 138 1234 5678。", charset="gbk"),
    _risky("described-2", "ru", "Пишите мне в мессенджер с синей птичкой: +7 916 123 4567.", charset="windows-1251"),
    # ---------------------------------------------------------------- wording without the stock phrase
    _risky("wording-0", "de", "Die Provision für Sie läuft wie immer bar, außerhalb der Rechnung.",
           cats=("sensitive_word",), charset="windows-1252"),
    _risky("wording-1", "es", "Le paso una comisión del 2% por fuera, en efectivo, solo para usted.",
           cats=("sensitive_word",), charset="windows-1252"),
    _risky("wording-2", "ru", "Ваш откат 3% передам наличными, как обычно.", cats=("sensitive_word",),
           charset="koi8-r"),
    _risky("wording-3", "fr", "Je vous reverse une commission de 2 % en liquide, hors facture.",
           cats=("sensitive_word",), charset="windows-1252"),
    _risky("wording-4", "pt", "A sua comissão de 2% vai por fora, em dinheiro vivo.", cats=("sensitive_word",),
           charset="windows-1252"),
    _risky("wording-5", "ja", "いつものように田中様へのリベートは現金でお渡しします。", cats=("sensitive_word",),
           charset="iso-2022-jp"),
    _risky("wording-6", "ar", "سأعطيك عمولة 2% نقداً خارج الفاتورة.", cats=("sensitive_word",), charset="windows-1256"),
    _risky("wording-7", "zh-Hant", "這次的佣金照舊私下給您現金。", cats=("sensitive_word",), charset="big5"),
    # ---------------------------------------------------------------- the company's own channels in any form
    _clean("official-0", "en", html=_html("en", 'Call us: <a href="tel:+8675588886666">+86 755 8888 6666</a>, '
                                          '<a href="weixin://dl/chat?BrightLightingCN">WeChat</a>, '
                                          '<a href="https://wa.me/8675588886666">WhatsApp</a>.')),
    _clean("official-1", "en", html=_html("en", 'Our WeChat: <img src="cid:qr" alt="WeChat BrightLightingCN">')),
    _clean("official-2", "en", "Our card is attached.", attachments=[("bright.vcf", "text/vcard", _VCARD_OFFICIAL)]),
    _clean("official-3", "en", html=_html("en", "Office: &#43;86&nbsp;755&nbsp;8888&nbsp;6666 (tel), WeChat&#58; BrightLightingCN")),
    _clean("official-4", "ar", "للتواصل مع مكتبنا: +٨٦ ٧٥٥ ٨٨٨٨ ٦٦٦٦ أو sales@brightlight.cn", charset="windows-1256"),
    _clean("official-5", "zh", "有问题请直接联系我：公司电话 0755-8888 6666，公司微信 BrightLightingCN。", charset="gbk"),
    _clean("official-6", "zh", "欢迎扫描附件中的公司官方微信二维码关注我们。", attachments=[("qr.png", "image/png", _PNG)],
           charset="gbk"),
    # ---------------------------------------------------------------- numbers that are not phones, in tables
    _clean("table-0", "en", html=_html("en", "<table><tr><th>Item</th><th>EAN</th><th>HS</th></tr>"
                                       "<tr><td>7301-2245</td><td>6901234567892</td><td>9405.42.1000</td></tr>"
                                       "<tr><td>7301-2246</td><td>6901234567908</td><td>9405.42.1000</td></tr></table>")),
    _clean("table-1", "zh", "柜号 TGHU8765432，提单号 COSU6231234560，HS编码 9405421000，开船日 2024-03-15。",
           charset="gbk"),
    _clean("iban-0", "de", "Bitte überweisen Sie auf unser Firmenkonto IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX.",
           charset="windows-1252"),
    # ---------------------------------------------------------------- the thread: an unknown customer's own address
    _clean("thread-0", "en", "Price confirmed, see the PI attached.\n\nOn Mon, Mar 4, 2024 at 10:01 AM Mike Brown "
           "<mike.brown.imports@gmail.com> wrote:\n> Please quote 500 pcs of the 600x600 panel.",
           to=["mike.brown.imports@gmail.com"]),
    _clean("thread-1", "zh", "价格确认，形式发票见附件。\n\n在 2024年3月4日 周一 10:01，刘先生 <liu.trading88@163.com> 写道：\n"
           "> 请报500件的价格。", to=["liu.trading88@163.com"], charset="gbk"),
    _clean("thread-2", "es", "Precio confirmado.\n\nEl lun., 4 mar. 2024 a las 10:01, Pedro <pedro.compras@hotmail.com> "
           "escribió:\n> Cotice 500 piezas, por favor.", to=["pedro.compras@hotmail.com"], charset="windows-1252"),
    _risky("forward-0", "en", "FYI, the whole thread with ACME.\n\nOn Mon, Mar 4, 2024 at 10:01 AM John "
           "<buyer@acme-imports.com> wrote:\n> Please quote 500 pcs.", to=["tomli1988@163.com"], cats=("recipient",),
           action="quarantine"),
    # ---------------------------------------------------------------- near-miss words
    _clean("nearmiss-0", "en", "We chat about the LINE-IN wiring tomorrow; the QQ connector is in stock."),
    _clean("nearmiss-1", "en", "Our Private Label program covers packaging; personal care products are excluded."),
    _clean("nearmiss-2", "zh", "附件是公司新产品画册，我们工厂直接发货给贵司。", charset="gbk"),
]
