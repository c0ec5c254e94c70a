"""公海: a customer nobody writes to returns to the pool, after a reminder in the owner's view."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mailwarden.gateway.config import Filing, Store
from mailwarden.gateway.sync.pool import return_idle_customers
from mailwarden.store import open_store
from mailwarden.store.directory import add_customer, add_user, claim_customer
from mailwarden.store.mails import Filing as Filed
from mailwarden.store.mails import NewMail, add_mail, list_mails
from mailwarden.store.models import AuditEvent, Customer
from sqlmodel import select

CFG = Filing(return_after_days=30, remind_days_before=7)


def test_idle_customers_are_reminded_then_returned_and_mail_starts_the_clock_again(tmp_path):
    store = open_store(Store(url=f"sqlite:///{tmp_path / 'mw.db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    now = datetime.now(timezone.utc)
    with store.session() as s:
        add_user(session=s, login="zhang", name="Zhang", password="password1")
        for name in ("Quiet", "Busy"):
            c = add_customer(session=s, name=name, owner="zhang")
            c.created_at = now - timedelta(days=100)
        busy = s.exec(select(Customer).where(Customer.name == "Busy")).one()
        add_mail(session=s, new=NewMail(blob="a" * 64, size=1, internal_date=now - timedelta(days=2)),
                 filing=Filed("contact", customer_id=busy.id))
    first = return_idle_customers(store, CFG, shared="sales@company.test", now=now)
    assert (first.reminded, first.returned) == ([("Quiet", "zhang")], [])
    with store.session() as s:
        notices = [m for m in list_mails(session=s, owner="zhang") if m.direction == "notice"]
        assert len(notices) == 1 and "Quiet" in notices[0].subject
    # the same day again: no second reminder, no return before the reminder's days have passed
    again = return_idle_customers(store, CFG, shared="sales@company.test", now=now + timedelta(hours=6))
    assert (again.reminded, again.returned) == ([], [])
    later = return_idle_customers(store, CFG, shared="sales@company.test", now=now + timedelta(days=7))
    assert later.returned == [("Quiet", "zhang")]
    with store.session() as s:
        assert s.exec(select(Customer.owner_id).where(Customer.name == "Quiet")).one() is None
        actions = [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()]
        assert actions[-2:] == ["customer.return_reminder", "customer.return"]
        claim_customer(session=s, name_or_id="Quiet", login="zhang", limits={})
    store.close()


def test_off_by_default(tmp_path):
    store = open_store(Store(url=f"sqlite:///{tmp_path / 'mw.db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    assert return_idle_customers(store, Filing(), shared="sales@company.test").returned == []
    store.close()
