"""Folder roles, pure: by the special-use attribute first, then by the names providers use."""

from __future__ import annotations

import pytest
from mailwarden.gateway.sync.folders import Folder, find_role, folders_from, role_of
from mailwarden.gateway.upstream.imapwire import ListItem, encode_mailbox


@pytest.mark.parametrize(("name", "attributes", "role"), [
    ("Sent", ["\\HasNoChildren", "\\Sent"], "sent"),
    ("Elsewhere", ["\\Sent"], "sent"),  # the attribute wins over the name
    ("Trash", ["\\Junk"], "junk"),
    ("[Gmail]/All Mail", ["\\All"], "all"),
    ("[Gmail]/Alle Nachrichten", ["\\AllMail"], "all"),  # XLIST's name
    ("Spam", ["\\Spam"], "junk"),
    ("Inbox", ["\\Inbox"], "inbox"),  # XLIST names INBOX in the account's language
    ("收件箱", ["\\Inbox"], "inbox"),
    ("Archive", ["\\Archive"], "archive"),
    ("Important", ["\\Important"], "other"),
    ("Starred", ["\\Flagged"], "other"),
])
def test_the_special_use_attribute_decides(name, attributes, role):
    assert role_of(name, attributes, "/") == role


@pytest.mark.parametrize(("name", "role"), [
    ("INBOX", "inbox"), ("inbox", "inbox"),
    ("Sent", "sent"), ("Sent Messages", "sent"), ("Sent Items", "sent"), ("sent items", "sent"),
    ("已发送", "sent"), ("已发送邮件", "sent"), ("发件箱", "sent"), ("[Gmail]/Sent Mail", "sent"),
    ("[Gmail]/已发邮件", "sent"), ("[Google Mail]/Gesendet", "sent"), ("Gesendet", "sent"), ("Enviados", "sent"),
    ("Envoyés", "sent"), ("Отправленные", "sent"), ("INBOX.Sent", "sent"), ("INBOX/Sent Items", "sent"),
    ("Drafts", "drafts"), ("草稿箱", "drafts"), ("Entwürfe", "drafts"), ("[Gmail]/Drafts", "drafts"),
    ("Trash", "trash"), ("Deleted Messages", "trash"), ("Deleted Items", "trash"), ("已删除", "trash"),
    ("Papierkorb", "trash"), ("Корзина", "trash"),
    ("Junk", "junk"), ("Junk Email", "junk"), ("垃圾邮件", "junk"), ("[Gmail]/Spam", "junk"), ("Spam", "junk"),
    ("Archive", "archive"), ("Archives", "archive"), ("归档", "archive"),
    ("[Gmail]/All Mail", "all"),
    ("Acme GmbH", "other"), ("其他文件夹/QQ邮件订阅", "other"),
])
def test_without_attributes_the_name_decides(name, role):
    delimiter = "." if name.startswith("INBOX.") else "/"
    assert role_of(name, ["\\HasNoChildren"], delimiter) == role


def test_a_role_name_deep_in_a_customer_folder_is_just_a_folder():
    assert role_of("Customers/Acme/Sent", [], "/") == "other"
    assert role_of("Acme/已发送", [], "/") == "other"
    assert role_of("Sent", [], None) == "sent"  # a flat mailbox: no hierarchy at all


def test_folders_skip_noselect_and_decode_modified_utf7():
    items = [
        ListItem(("\\HasNoChildren",), "/", "INBOX"),
        ListItem(("\\HasNoChildren",), "/", encode_mailbox("已发送")),
        ListItem(("\\Noselect", "\\HasChildren"), "/", encode_mailbox("其他文件夹")),
        ListItem(("\\NonExistent",), "/", "Gone"),
        ListItem(("\\HasNoChildren",), "/", encode_mailbox("其他文件夹") + "/" + encode_mailbox("订阅邮件")),
        ListItem(("\\HasNoChildren",), "/", "Tom &- Jerry"),
        ListItem(("\\HasNoChildren",), "/", "&Bad"),  # not modified UTF-7: kept as sent
        ListItem(("\\HasNoChildren",), "/", "INBOX"),  # twice (LIST-EXTENDED may): once
    ]
    folders = folders_from(items)
    assert [(f.name, f.role) for f in folders] == [
        ("INBOX", "inbox"), ("已发送", "sent"), ("其他文件夹/订阅邮件", "other"), ("Tom & Jerry", "other"),
        ("&Bad", "other")]
    assert folders[1].wire == "&XfJT0ZAB-"


def test_find_role_prefers_the_attribute_over_a_name():
    named = Folder("Sent", "Sent", "/", (), "sent")
    marked = Folder("Sent Messages", "Sent Messages", "/", ("\\Sent",), "sent")
    assert find_role([named, marked], "sent") is marked
    assert find_role([named], "sent") is named
    assert find_role([named], "trash") is None
