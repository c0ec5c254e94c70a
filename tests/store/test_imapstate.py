"""What IMAP sessions do to the store: flags of one user's own, with MODSEQs raised in each of
their boxes; Trash and delete as placements (the mail kept, in Retention); drafts appended."""

from __future__ import annotations

from mailwarden.store import imapchanges as changes, imapfolders as folders, imapstate as st
from mailwarden.store.models import Mail

from mailwarden.store.blobs import name_of
from mailwarden.store.mails import NewMail

from .test_views import T0, _setup


def _ids(store):
    with store.session() as s:
        u = _setup(s)
        return {k: v.id for k, v in u.items()}


def test_flags_are_the_users_own_and_raise_modseq_in_each_box(store):
    u = _ids(store)
    inbox = st.open_box(store.engine, u["zhang"], "INBOX")
    acme = st.open_box(store.engine, u["zhang"], "Customers/Acme")
    m1 = inbox.messages[0]
    before = st.box_state(store.engine, acme.box.id)
    after, refused = changes.store_flags(store.engine, u["zhang"], inbox.box.id, [m1.mail_id], "+", ["\\Seen", "$Work"])
    assert refused == [] and after[m1.mail_id].flags == {"\\Seen", "$Work"}
    assert after[m1.mail_id].modseq > m1.modseq
    # the same mail in Customers/Acme shows the change, with a MODSEQ of its own box
    update = st.poll(store.engine, u["zhang"], acme.box.id, acme.box.highest_modseq, resolve=False)
    assert [(m.mail_id, m.flags) for m in update.changed] == [(m1.mail_id, {"\\Seen", "$Work"})]
    assert st.box_state(store.engine, acme.box.id)[1] > before[1]
    # the supervisor sees the same mail unread
    boss = st.open_box(store.engine, u["boss"], "Customers/Acme")
    assert all(not m.flags for m in boss.messages)
    # CONDSTORE: a change since the given MODSEQ refuses the STORE for that mail
    _, refused = changes.store_flags(store.engine, u["zhang"], inbox.box.id, [m1.mail_id], "-", ["\\Seen"],
                                unchanged_since=m1.modseq, modseqs={m1.mail_id: after[m1.mail_id].modseq})
    assert refused == [m1.mail_id]


def test_trash_then_delete_keeps_the_mail_for_retention(store):
    u = _ids(store)
    inbox = st.open_box(store.engine, u["zhang"], "INBOX")
    m1 = inbox.messages[0]
    placed = changes.place(store.engine, u["zhang"], [m1.mail_id], "Trash")
    assert list(placed) == [m1.mail_id]
    assert st.open_box(store.engine, u["zhang"], "INBOX").messages == []
    trash = st.open_box(store.engine, u["zhang"], "Trash")
    assert [m.mail_id for m in trash.messages] == [m1.mail_id]
    changes.delete(store.engine, u["zhang"], trash.box.id, [m1.mail_id], audit=store.audit, login="zhang", peer="192.0.2.1")
    for name in ("INBOX", "Trash", "Customers/Acme"):
        assert m1.mail_id not in [m.mail_id for m in st.open_box(store.engine, u["zhang"], name).messages], name
    assert [m.mail_id for m in st.open_box(store.engine, u["root"], "Retention").messages] == [m1.mail_id]
    with store.session() as s:
        assert s.get(Mail, m1.mail_id) is not None  # kept


def test_only_trash_inbox_drafts_and_own_folders_take_mail_by_hand(store):
    u = _ids(store)
    inbox = st.open_box(store.engine, u["zhang"], "INBOX")
    for target in ("Sent", "Customers/Acme"):
        try:
            changes.place(store.engine, u["zhang"], [inbox.messages[0].mail_id], target)
        except changes.CannotPlace:
            continue
        raise AssertionError(f"placed in {target}")
    # li's mail cannot be "restored" into zhang's INBOX
    li_mail = st.open_box(store.engine, u["li"], "INBOX").messages[0].mail_id
    try:
        changes.place(store.engine, u["zhang"], [li_mail], "INBOX")
    except changes.CannotPlace:
        pass
    else:
        raise AssertionError("another user's mail entered INBOX")
    assert [m.mail_id for m in st.open_box(store.engine, u["zhang"], "INBOX").messages] == [inbox.messages[0].mail_id]
    folders.create(store.engine, u["zhang"], "Projects")
    changes.place(store.engine, u["zhang"], [inbox.messages[0].mail_id], "Projects")
    assert len(st.open_box(store.engine, u["zhang"], "Projects").messages) == 1
    folders.remove(store.engine, u["zhang"], "Projects")
    assert len(st.open_box(store.engine, u["zhang"], "INBOX").messages) == 1  # back where filing shows it


def test_nobody_opens_a_box_that_is_not_theirs(store):
    u = _ids(store)
    for name in ("Customers/Beta-Sub", "Pool", "Retention", "inbox"):
        try:
            st.open_box(store.engine, u["zhang"], name)
        except st.NotYours:
            continue
        raise AssertionError(name)


def test_own_folders_rename_with_their_children_and_uids(store):
    u = _ids(store)
    folders.create(store.engine, u["zhang"], "Projects")
    folders.create(store.engine, u["zhang"], "Projects/2027")
    inbox = st.open_box(store.engine, u["zhang"], "INBOX")
    changes.place(store.engine, u["zhang"], [inbox.messages[0].mail_id], "Projects/2027")
    before = st.open_box(store.engine, u["zhang"], "Projects/2027")
    folders.rename(store.engine, u["zhang"], "Projects", "Archive")
    names = {b.name for b in st.mailboxes(store.engine, u["zhang"])}
    assert {"Archive", "Archive/2027"} <= names and not {"Projects", "Projects/2027"} & names
    after = st.open_box(store.engine, u["zhang"], "Archive/2027")
    assert [m.uid for m in after.messages] == [m.uid for m in before.messages]
    assert after.box.uidvalidity == before.box.uidvalidity
    for old, new in (("INBOX", "Mine"), ("Archive", "Archive/2027")):
        try:
            folders.rename(store.engine, u["zhang"], old, new)
        except (changes.CannotPlace, FileExistsError):
            continue
        raise AssertionError(f"renamed {old} to {new}")


def test_copies_and_appends_of_the_same_bytes_are_messages_of_their_own(store):
    u = _ids(store)
    folders.create(store.engine, u["zhang"], "Projects")
    inbox = st.open_box(store.engine, u["zhang"], "INBOX")
    m1 = inbox.messages[0].mail_id
    changes.store_flags(store.engine, u["zhang"], inbox.box.id, [m1], "+", ["\\Flagged"])
    first = changes.place(store.engine, u["zhang"], [m1], "Projects", copy=True)
    second = changes.place(store.engine, u["zhang"], [m1], "Projects", copy=True)
    assert first[m1] != second[m1]
    # the original stays where it was; the copies keep its flags
    assert [m.mail_id for m in st.open_box(store.engine, u["zhang"], "INBOX").messages] == [m1]
    projects = st.open_box(store.engine, u["zhang"], "Projects").messages
    assert len(projects) == 2 and all(m.flags == {"\\Flagged"} for m in projects)
    # nobody else sees the copies, and no customer box shows them twice
    assert len(st.open_box(store.engine, u["zhang"], "Customers/Acme").messages) == 2  # m1 and the Sent mail
    raw = b"Subject: same\r\n\r\nsame bytes\r\n"
    for _ in range(2):
        new = NewMail(blob=name_of(raw), size=len(raw), internal_date=T0, subject="same", direction="draft",
                      folder_role="drafts")
        changes.append(store.engine, u["zhang"], "Drafts", new, [], store.blobs, raw)
    assert len(st.open_box(store.engine, u["zhang"], "Drafts").messages) == 2


def test_sessions_opening_a_box_in_one_state_share_its_snapshot(store):
    u = _ids(store)
    first = st.open_box(store.engine, u["zhang"], "INBOX", claim=True)
    second = st.open_box(store.engine, u["zhang"], "INBOX", claim=True)
    assert first.messages and second.messages is first.messages  # one list for both sessions
    assert isinstance(first.messages, st.Snapshot)
    # a change to the box (a flag) makes the next opening read the box anew
    m1 = first.messages[0]
    changes.store_flags(store.engine, u["zhang"], first.box.id, [m1.mail_id], "+", ["\\Flagged"])
    third = st.open_box(store.engine, u["zhang"], "INBOX")
    assert third.messages is not first.messages
    assert "\\Flagged" in third.messages[0].flags and "\\Flagged" not in first.messages[0].flags
    # another user's box of the same customer is theirs alone
    boss = st.open_box(store.engine, u["boss"], "Customers/Acme")
    assert boss.messages is not st.open_box(store.engine, u["zhang"], "Customers/Acme").messages
