"""Messages written after the detectors were tuned, in phrasings the rest of the corpus does
not use: always in the held-out split, never tuned on (their first numbers are reported as
the honest held-out result). Grow the corpus elsewhere; move a case here only unseen."""

from __future__ import annotations

from .special import _clean, _risky

_W = ("sensitive_word",)


def _fresh(entry: dict) -> dict:
    entry["id"] = entry["id"].replace("-x-", "-f-").replace("-h-", "-fh-")
    entry["split_override"] = "heldout"
    return entry


FRESH: list[dict] = [_fresh(e) for e in [
    # ---------------------------------------------------------------- risky
    _risky("telegram-0", "en", "Going forward, ping me on Telegram @tom_trade88 instead of this mailbox."),
    _risky("fee-0", "en", "I can arrange a consulting fee of 2% paid to you in cash once the order ships.", cats=_W),
    _risky("outfit-0", "en", "Once I set up my own outfit next month, send the orders my way and I'll undercut them.",
           cats=_W, action="quarantine"),
    _risky("record-0", "en", "Let's keep this off the record, no need to copy anyone from my office.", cats=_W,
           action="quarantine"),
    _risky("friend-0", "zh", "以后单子直接下给我朋友的厂，价格更低，别走公司。", cats=_W, action="quarantine", charset="gbk"),
    _risky("cash-0", "zh", "回扣我会按老规矩用现金给您。", cats=_W, charset="gb18030"),
    _risky("qq-0", "zh", "加我QQ 12345678 私聊。", charset="gbk"),
    _risky("wa-0", "es", "Mándeme un WhatsApp al +34 655 443 322, es mi número personal.", charset="windows-1252"),
    _risky("mano-0", "es", "Le doy una comisión del 3% en mano si firma con nosotros.", cats=_W, charset="windows-1252"),
    _risky("tg-0", "de", "Schreiben Sie mir lieber auf Telegram: @tomli_de.", charset="windows-1252"),
    _risky("privat-0", "de", "Die Anzahlung bitte direkt auf mein Privatkonto, IBAN folgt.", cats=_W,
           charset="windows-1252"),
    _risky("perso-0", "fr", "Contactez-moi plutôt sur mon WhatsApp perso : +33 6 98 76 54 32.", charset="windows-1252"),
    _risky("boite-0", "fr", "Je lance ma propre boîte ; transférez-y vos commandes.", cats=_W, action="quarantine",
           charset="windows-1252"),
    _risky("zap-0", "pt", "Me chama no zap: +55 11 99887 6655.", charset="windows-1252"),
    _risky("conta-0", "pt", "Deposite o valor na minha conta pessoal, por favor.", cats=_W, charset="windows-1252"),
    _risky("votsap-0", "ru", "Пишите мне в вотсап +7 903 111 22 33.", charset="koi8-r"),
    _risky("otkat-0", "ru", "Откат как обычно, 5% наличными.", cats=_W, charset="windows-1251"),
    _risky("wechat-0", "ja", "今後は個人のWeChat liming_jp2 にご連絡ください。", charset="iso-2022-jp"),
    _risky("cashback-0", "ja", "ご発注いただければ、3%を個人的にキャッシュバックします。", cats=_W, charset="shift_jis"),
    _risky("tg-1", "ar", "أرسل لي على تيليجرام @tomli_ar.", charset="windows-1256"),
    _risky("hisabi-0", "ar", "حوّل المبلغ إلى حسابي الشخصي من فضلك.", cats=_W, charset="windows-1256"),
    _risky("wechat-1", "zh-Hant", "請加我的微信 liming_tw88，以後私下聯絡。", charset="big5"),
    _risky("secret-0", "zh-Hant", "這件事請保密，不要讓公司知道。", cats=_W, action="quarantine", charset="big5"),
    # ---------------------------------------------------------------- hard clean
    _clean("reminder-0", "en", "Reminder: Bright Lighting will never request payment to a private bank account; "
           "please verify any change of bank details by phone with our office."),
    _clean("broker-0", "en", "Our customs broker, Grand Logistics, can be reached at +86 20 8765 4321."),
    _clean("parts-0", "en", "Part numbers: BL-600-4000K, EAN 6971234567890, HS 9405.42.9000, container CMAU 1234567."),
    _clean("chat-0", "en", "We chat about new colours every season; Private Label orders start at 500 pcs."),
    _clean("reminder-1", "zh", "提醒：我司不会通过个人账户收款，如有变更请致电公司确认。", charset="gbk"),
    _clean("forwarder-0", "zh", "货代联系人：张先生，电话 021-6543 2100。", charset="gbk"),
    _clean("congrats-0", "zh", "恭喜您的新公司成立，期待合作！", charset="gb18030"),
    _clean("reminder-2", "es", "Le recordamos que nunca solicitamos pagos a cuentas personales.", charset="windows-1252"),
    _clean("reminder-3", "de", "Bitte zahlen Sie niemals auf ein privates Konto; unsere Bankverbindung steht auf der "
           "Rechnung.", charset="windows-1252"),
    _clean("reminder-4", "fr", "Rappel : nous ne demandons jamais de paiement sur un compte personnel.",
           charset="windows-1252"),
    _clean("reminder-5", "pt", "Lembrete: nunca pedimos pagamento em conta pessoal.", charset="windows-1252"),
    _clean("reminder-6", "ru", "Напоминаем: мы никогда не просим оплачивать на личный счёт.", charset="koi8-r"),
    _clean("reminder-7", "ja", "弊社が個人口座へのお振込みをお願いすることは決してございません。", charset="iso-2022-jp"),
    _clean("reminder-8", "ar", "نذكركم بأننا لا نطلب أبداً الدفع إلى حساب شخصي.", charset="windows-1256"),
    _clean("reminder-9", "zh-Hant", "提醒您：本公司不會以個人帳戶收款。", charset="big5"),
    _clean("gmail-0", "en", "John's Gmail john.acme@gmail.com is in copy as he requested."),
    _clean("dates-0", "en", "Invoice date 2024-03-15, PO 4500987654, due 2024-04-14."),
    _clean("firma-0", "de", "Herzlichen Glückwunsch zur neuen Firma!", charset="windows-1252"),
    _clean("bank-0", "ru", "Контакт нашего банка: Bank of China, тел. +86 755 8123 4567.", charset="windows-1251"),
    _clean("forwarder-1", "ja", "フォワーダーの担当者は佐藤様（電話 03-1234-5678）です。", charset="shift_jis"),
]]
