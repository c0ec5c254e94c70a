"""The company mailbox's folders and what each is for (its **role**), pure: LIST items in,
:class:`Folder` out.

A role comes from the folder's special-use attribute first (RFC 6154 ``\\Sent``..., or the older
XLIST names ``\\Inbox``, ``\\AllMail``, ``\\Spam`` that Gmail and QQ Mail send), then from its
name: hosted mailboxes without SPECIAL-USE (Exchange, QQ, Exmail) name their folders in
English or in the account's language, e.g. ``Sent Messages`` (QQ, Exmail), ``Sent Items``
(Exchange), ``已发送`` (163), ``[Gmail]/Gesendet`` (Gmail in German).  A name counts only at
the top of the hierarchy, under ``INBOX`` (servers whose folders live below it) or under
``[Gmail]``: a customer's folder ``Acme/Sent`` is a folder like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from mailwarden.gateway.upstream.imapwire import ListItem, ProtocolError, decode_mailbox

log = logging.getLogger(__name__)

ROLES = ("inbox", "sent", "drafts", "trash", "junk", "archive", "all", "other")

_BY_ATTRIBUTE = {
    "\\inbox": "inbox",  # XLIST
    "\\sent": "sent",
    "\\drafts": "drafts",
    "\\trash": "trash",
    "\\junk": "junk",
    "\\spam": "junk",  # XLIST
    "\\archive": "archive",
    "\\all": "all",
    "\\allmail": "all",  # XLIST
}

_NAMES = {
    "sent": ("Sent", "Sent Messages", "Sent Items", "Sent Mail", "Sent-Mail", "Outbox Sent", "已发送", "已发送邮件",
             "已发邮件", "发件箱", "寄件備份", "已傳送郵件", "寄件备份", "Gesendet", "Gesendete Objekte",
             "Gesendete Elemente", "Enviados", "Elementos enviados", "Envoyés", "Messages envoyés", "Éléments envoyés",
             "Inviata", "Posta inviata", "Elementi inviati", "Verzonden", "Verzonden items", "Отправленные",
             "送信済み", "送信済みメール", "보낸편지함", "Wysłane", "Skickat", "Enviadas", "Itens Enviados"),
    "drafts": ("Drafts", "Draft", "草稿箱", "草稿", "草稿夹", "Entwürfe", "Borradores", "Brouillons", "Bozze",
               "Concepten", "Черновики", "下書き", "임시보관함", "Rascunhos"),
    "trash": ("Trash", "Deleted Messages", "Deleted Items", "Deleted", "Bin", "已删除", "已删除邮件", "废纸篓",
              "垃圾箱", "已刪除郵件", "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte", "Papelera",
              "Elementos eliminados", "Corbeille", "Éléments supprimés", "Cestino", "Prullenbak", "Корзина",
              "Удаленные", "ゴミ箱", "휴지통", "Lixeira", "Lixo"),
    "junk": ("Junk", "Junk Email", "Junk E-mail", "Junk Mail", "Spam", "Bulk Mail", "垃圾邮件", "广告邮件",
             "垃圾郵件", "Spamverdacht", "Junk-E-Mail", "Correo no deseado", "Courrier indésirable", "Indésirables",
             "Posta indesiderata", "Ongewenste e-mail", "Спам", "迷惑メール", "스팸편지함", "Lixo Eletrônico"),
    "archive": ("Archive", "Archives", "归档", "存档", "封存", "Archiv", "Archivo", "Archivio", "Archief", "Архив",
                "アーカイブ", "보관함", "Arquivo"),
    "all": ("All Mail", "所有邮件", "全部邮件", "Alle Nachrichten", "Todos", "Tous les messages", "Tutti i messaggi",
            "Alle berichten", "Вся почта", "すべてのメール", "전체보관함"),
}
_BY_NAME = {name.casefold(): role for role, names in _NAMES.items() for name in names}
_PARENTS = ("inbox", "[gmail]", "[google mail]")  # where a name means a role too, besides the top


@dataclass(frozen=True)
class Folder:
    """One selectable folder of the company mailbox."""

    name: str  # readable (modified UTF-7 decoded), hierarchy as the server writes it
    wire: str  # as LIST gave it: what SELECT wants
    delimiter: str | None
    attributes: tuple[str, ...]
    role: str  # one of ROLES

    @property
    def special_use(self) -> bool:
        """Whether the role came from the server's attribute, not from the name."""
        return role_by_attribute(self.attributes) is not None


def role_by_attribute(attributes: Iterable[str]) -> str | None:
    """The role an attribute gives (``\\Sent`` → ``sent``), None when none does."""
    for attribute in attributes:
        role = _BY_ATTRIBUTE.get(attribute.lower())
        if role is not None:
            return role
    return None


def role_of(name: str, attributes: Iterable[str], delimiter: str | None) -> str:
    """The role of the folder called ``name`` (decoded), with its LIST ``attributes`` and the
    hierarchy ``delimiter``: by the special-use attribute, else by the name, else ``other``."""
    role = role_by_attribute(attributes)
    if role is not None:
        return role
    if name.casefold() == "inbox":
        return "inbox"
    parent, leaf = "", name
    if delimiter and delimiter in name:
        parent, _, leaf = name.rpartition(delimiter)
    if parent and parent.casefold() not in _PARENTS:
        return "other"
    return _BY_NAME.get(" ".join(leaf.split()).casefold(), "other")


def selectable(attributes: Iterable[str]) -> bool:
    """False for a folder that holds no messages (``\\Noselect``, ``\\NonExistent``)."""
    return not any(a.lower() in ("\\noselect", "\\nonexistent") for a in attributes)


def folders_from(items: Iterable[ListItem]) -> list[Folder]:
    """The selectable folders among LIST (or XLIST) ``items``, each with its role, in the
    server's order, each name once.  A name that is not valid modified UTF-7 is kept as sent."""
    out: list[Folder] = []
    seen: set[str] = set()
    for item in items:
        if not selectable(item.flags) or item.name in seen:
            continue
        seen.add(item.name)
        try:
            name = decode_mailbox(item.name)
        except ProtocolError:
            log.warning("upstream folder %r is not modified UTF-7: its name is kept as sent", item.name)
            name = item.name
        if item.name.upper() == "INBOX":  # case-insensitive (RFC 3501 5.1): one spelling
            name = "INBOX"
        out.append(Folder(name, item.name, item.delimiter, item.flags, role_of(name, item.flags, item.delimiter)))
    return out


def find_role(folders: Iterable[Folder], role: str) -> Folder | None:
    """The folder that plays ``role``: the one the server marked so, else the first named so."""
    candidates = [f for f in folders if f.role == role]
    return next((f for f in candidates if f.special_use), candidates[0] if candidates else None)
