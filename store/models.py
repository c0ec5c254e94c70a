"""Tables of the store.

Timestamps are timezone-aware UTC.  Lookup columns (login, domain, contact
address, spool state) are indexed.  The audit table is append-only; see
:mod:`mailwarden.store.audit` for the hash chain.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

ROLES = ("sales", "senior", "supervisor", "admin")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(**kw: object) -> object:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kw))


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    role: str = Field(default="sales", max_length=16)
    team: str | None = Field(default=None, max_length=64)
    title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    password_hash: str = Field(max_length=255)
    enabled: bool = Field(default=True)
    created_at: datetime = _ts()  # type: ignore[assignment]
    # Bumped on disable/passwd so that live sessions notice and end.
    generation: int = Field(default=0)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    owner_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    created_at: datetime = _ts()  # type: ignore[assignment]
    created_by: str | None = Field(default=None, max_length=64)


class CustomerDomain(SQLModel, table=True):
    __tablename__ = "customer_domains"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    domain: str = Field(index=True, unique=True, max_length=255)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    email: str = Field(index=True, unique=True, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)


class Message(SQLModel, table=True):
    """One message the gateway handled, in either direction."""

    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True)
    direction: str = Field(max_length=8)  # "out" | "in"
    operator_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", index=True)
    recipients: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    message_id: str | None = Field(default=None, max_length=998, index=True)
    size: int = 0
    status: str = Field(default="queued", max_length=16, index=True)
    status_detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()  # type: ignore[assignment]
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class MessageCustomer(SQLModel, table=True):
    """Every customer a message was addressed to (a message may reach several)."""

    __tablename__ = "message_customers"
    __table_args__ = (UniqueConstraint("message_id", "customer_id"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)


class SpoolItem(SQLModel, table=True):
    """A message accepted for relay.  The bytes live in a file under the spool folder.

    ``stage``: where it is in its lifecycle (``relay``, ``append``, ``done``, ``bounced``, ``held``,
    ``shunt:<stage>`` …), named in :mod:`mailwarden.store.spool.states`, changed only by the spool
    and quarantine modules of the store.
    """

    __tablename__ = "spool"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    blob: str = Field(max_length=255)
    mail_from: str = Field(max_length=320)
    rcpts: str = Field(sa_column=Column(Text, nullable=False))
    operator: str = Field(max_length=64)
    keywords: str = Field(default="", max_length=500)
    sent_headers: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    decision: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # rules' findings (JSON)
    stage: str = Field(default="relay", max_length=16, index=True)
    attempts: int = 0
    next_attempt: datetime = _ts(index=True)  # type: ignore[assignment]
    created_at: datetime = _ts()  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # SHA-256 (hex) of the spool file when it was accepted, checked before it is sent; None for
    # rows from before digests (sent as they are) and for notices.
    digest: str | None = Field(default=None, max_length=64)


class AuditEvent(SQLModel, table=True):
    """Append-only; ``seq`` is contiguous and ``mac`` chains each row to the previous."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True, unique=True)
    ts: datetime = _ts()  # type: ignore[assignment]
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    target: str = Field(default="", max_length=320)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    peer: str | None = Field(default=None, max_length=64)
    prev_mac: str = Field(max_length=64)
    mac: str = Field(max_length=64)

