"""Users and customers: keyword-only query functions taking a ``session``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from .models import ROLES, Contact, Customer, CustomerDomain, User
from .passwords import hash_password
from .views import bump_epoch

LANGUAGES = ("en", "zh")  # what refusals and notices are written in
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{2,63}$")


class DirectoryError(ValueError):
    """A request the directory refuses; the message says what to change."""


def _one_line(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\x00"):
        raise DirectoryError(f"{what} must be one line without control characters")
    value = value.strip()
    if not value:
        raise DirectoryError(f"{what} must not be empty")
    return value


def normalise_login(login: str) -> str:
    login = login.strip().lower()
    if not LOGIN_RE.match(login):
        raise DirectoryError(f"login {login!r} must be 1-64 of a-z 0-9 . _ - and start with a letter or digit")
    return login


def normalise_email(address: str) -> str:
    address = address.strip()
    if not EMAIL_RE.match(address):
        raise DirectoryError(f"{address!r} is not an email address")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}".lower()


def normalise_domain(domain: str) -> str:
    d = domain.strip().lower().lstrip("@").rstrip(".")
    try:
        d = d.encode("idna").decode("ascii")
    except UnicodeError:
        raise DirectoryError(f"{domain!r} is not a domain name") from None
    if not DOMAIN_RE.match(d):
        raise DirectoryError(f"{domain!r} is not a domain name")
    return d


# ---- users -----------------------------------------------------------------

def get_user(*, session: Session, login: str) -> User | None:
    return session.exec(select(User).where(User.login == login.strip().lower())).first()


def require_user(*, session: Session, login: str) -> User:
    user = get_user(session=session, login=login)
    if user is None:
        raise DirectoryError(f"no user {login!r} (see `mailwarden user list`)")
    return user


def add_user(*, session: Session, login: str, name: str, password: str, role: str = "sales",
             team: str | None = None, title: str | None = None, phone: str | None = None) -> User:
    login = normalise_login(login)
    if role not in ROLES:
        raise DirectoryError(f"role {role!r} must be one of {', '.join(ROLES)}")
    if get_user(session=session, login=login):
        raise DirectoryError(f"user {login!r} exists already")
    check_password(password)
    user = User(login=login, name=_one_line(name, "name"), role=role,
                team=_one_line(team, "team") if team else None,
                title=_one_line(title, "title") if title else None,
                phone=_one_line(phone, "phone") if phone else None,
                password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def check_password(password: str) -> None:
    if len(password) < 8:
        raise DirectoryError("the password must have at least 8 characters")
    if any(c in password for c in "\r\n\x00"):
        raise DirectoryError("the password must not contain line breaks")


def set_password(*, session: Session, login: str, password: str) -> User:
    user = require_user(session=session, login=login)
    check_password(password)
    user.password_hash = hash_password(password)
    user.generation += 1
    session.add(user)
    return user


def set_enabled(*, session: Session, login: str, enabled: bool) -> User:
    user = require_user(session=session, login=login)
    user.enabled = enabled
    user.generation += 1
    session.add(user)
    return user


def list_users(*, session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(User.login)).all()


def edit_user(*, session: Session, login: str, name: str | None = None, team: str | None = None,
              role: str | None = None, lang: str | None = None) -> tuple[User, dict[str, tuple[object, object]]]:
    """Change what is given (``team=""`` / ``lang=""``: none).  Returns the user and each changed
    field as ``(before, after)``.  A new role or team changes whose mail the user and their
    supervisors see: the views follow at their next command."""
    user = require_user(session=session, login=login)
    wanted: dict[str, object] = {}
    if name is not None:
        wanted["name"] = _one_line(name, "name")
    if team is not None:
        wanted["team"] = _one_line(team, "team") if team.strip() else None
    if role is not None:
        if role not in ROLES:
            raise DirectoryError(f"role {role!r} must be one of {', '.join(ROLES)}")
        wanted["role"] = role
    if lang is not None:
        code = lang.strip().lower() or None
        if code is not None and code not in LANGUAGES:
            raise DirectoryError(f"language {lang!r} must be one of {', '.join(LANGUAGES)} (or '' for the config's)")
        wanted["lang"] = code
    changes = {k: (getattr(user, k), v) for k, v in wanted.items() if getattr(user, k) != v}
    for k, (_before, after) in changes.items():
        setattr(user, k, after)
    if changes:
        session.add(user)
        if "role" in changes or "team" in changes:
            bump_epoch(session)
    return user, changes


# ---- customers -------------------------------------------------------------

@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    owner: str | None
    domains: tuple[str, ...]
    contacts: tuple[str, ...]


def name_key(name: str) -> str:
    """What makes two customer names the same: case and surrounding blanks do not count."""
    return name.strip().casefold()


def get_customer(*, session: Session, name_or_id: str) -> Customer | None:
    if name_or_id.isdigit():
        c = session.get(Customer, int(name_or_id))
        if c:
            return c
    return session.exec(select(Customer).where(Customer.name_key == name_key(name_or_id))).first()


def require_customer(*, session: Session, name_or_id: str) -> Customer:
    c = get_customer(session=session, name_or_id=name_or_id)
    if c is None:
        raise DirectoryError(f"no customer {name_or_id!r} (see `mailwarden customer list`)")
    return c


def add_customer(*, session: Session, name: str, domains: Sequence[str] = (), contacts: Sequence[str] = (),
                 owner: str | None = None, created_by: str | None = None,
                 freemail: Sequence[str] = ()) -> Customer:
    name = _one_line(name, "customer name")
    if len(name) > 200:
        raise DirectoryError("customer name is longer than 200 characters")
    existing = get_customer(session=session, name_or_id=name)
    if existing is not None and existing.name_key == name_key(name):
        same = "" if existing.name == name else f" as {existing.name!r} (names do not differ by case)"
        raise DirectoryError(f"customer {name!r} exists already{same}")
    owner_id = _owner_id(session, owner)
    customer = Customer(name=name, name_key=name_key(name), owner_id=owner_id, created_by=created_by)
    session.add(customer)
    session.flush()
    set_domains(session=session, customer=customer, domains=domains, freemail=freemail)
    set_contacts(session=session, customer=customer, contacts=contacts)
    session.flush()
    return customer


def _owner_id(session: Session, owner: str | None) -> int | None:
    """The id of an owner to be: an enabled user (None: the pool)."""
    if not owner:
        return None
    user = require_user(session=session, login=owner)
    if not user.enabled:
        raise DirectoryError(f"user {user.login!r} is disabled: customers go to enabled users only "
                             "(`mailwarden user enable`, or give them to someone else)")
    return user.id


def _replace_rows(session: Session, customer: Customer, model: type[CustomerDomain] | type[Contact], column: str,
                  want: list[str], what: str, check: Callable[[str], None] = lambda _v: None) -> tuple[list[str], list[str]]:
    """Make ``want`` the customer's values in ``model``'s ``column``; returns those added and removed.
    A value another customer has is refused, naming that customer."""
    assert customer.id is not None
    field = getattr(model, column)
    rows = {getattr(r, column): r for r in session.exec(select(model).where(model.customer_id == customer.id)).all()}
    for value in want:
        if value in rows:
            continue
        check(value)
        taken = session.exec(select(model).where(field == value)).first()
        if taken:
            other = session.get(Customer, taken.customer_id)
            raise DirectoryError(f"{what} {value} belongs to customer {other.name if other else taken.customer_id!r} already")
        session.add(model(customer_id=customer.id, **{column: value}))
    removed = [v for v in rows if v not in want]
    for v in removed:
        session.delete(rows[v])
    return [v for v in want if v not in rows], removed


def set_domains(*, session: Session, customer: Customer, domains: Sequence[str],
                freemail: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Make ``domains`` the customer's domains; returns those added and those removed."""
    def not_freemail(d: str) -> None:
        if d in freemail:
            raise DirectoryError(f"{d} is a free-mail domain: add the customer's addresses with --contact instead")

    want = list(dict.fromkeys(normalise_domain(d) for d in domains))
    return _replace_rows(session, customer, CustomerDomain, "domain", want, "domain", not_freemail)


def set_contacts(*, session: Session, customer: Customer, contacts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Make ``contacts`` the customer's contact addresses; returns those added and those removed."""
    want = list(dict.fromkeys(normalise_email(e) for e in contacts))
    return _replace_rows(session, customer, Contact, "email", want, "contact")


def assign_customer(*, session: Session, name_or_id: str, owner: str | None) -> tuple[Customer, str | None]:
    """Give a customer to ``owner`` (None: to the pool; a disabled user is refused).  Returns the
    customer and the previous owner.  The one way a customer changes hands: the IMAP views
    follow (the epoch moves), at the next command of every session."""
    customer = require_customer(session=session, name_or_id=name_or_id)
    before = session.get(User, customer.owner_id).login if customer.owner_id else None  # type: ignore[union-attr]
    customer.owner_id = _owner_id(session, owner)
    customer.return_reminded_at = None  # a new owner is reminded afresh before the pool takes it back
    session.add(customer)
    bump_epoch(session)
    return customer, before


def reassign_customers(*, session: Session, from_login: str | None, to_login: str | None) -> list[Customer]:
    """Every customer of ``from_login`` (None: the pool's) to ``to_login`` (None: the pool), each
    through :func:`assign_customer`.  A disabled ``from_login`` is fine: that is who leaves."""
    source = require_user(session=session, login=from_login).id if from_login else None
    _owner_id(session, to_login)  # refused before anything moves
    q = select(Customer).order_by(Customer.name)
    q = q.where(Customer.owner_id == source) if source is not None else q.where(col(Customer.owner_id).is_(None))
    moved = list(session.exec(q).all())
    for c in moved:
        assign_customer(session=session, name_or_id=str(c.id), owner=to_login)
    return moved


def customer_view(*, session: Session, customer: Customer) -> CustomerView:
    assert customer.id is not None
    owner = session.get(User, customer.owner_id) if customer.owner_id else None
    domains = session.exec(select(CustomerDomain.domain).where(CustomerDomain.customer_id == customer.id).order_by(CustomerDomain.domain)).all()
    contacts = session.exec(select(Contact.email).where(Contact.customer_id == customer.id).order_by(Contact.email)).all()
    return CustomerView(customer.id, customer.name, owner.login if owner else None, tuple(domains), tuple(contacts))


def list_customers(*, session: Session, owner: str | None = None) -> list[CustomerView]:
    """Every customer by name; ``owner``: only that user's (``"pool"``: only those nobody owns)."""
    q = select(Customer).order_by(Customer.name_key)
    if owner == "pool":
        q = q.where(col(Customer.owner_id).is_(None))
    elif owner:
        q = q.where(Customer.owner_id == require_user(session=session, login=owner).id)
    return [customer_view(session=session, customer=c) for c in session.exec(q).all()]


def resolve_recipient(*, session: Session, address: str, freemail: Sequence[str] = ()) -> Customer | None:
    """The customer an address belongs to: an exact contact first, then the
    domain (never for free-mail domains, where one domain holds many people)."""
    address = address.strip().lower()
    contact = session.exec(select(Contact).where(Contact.email == address)).first()
    if contact:
        return session.get(Customer, contact.customer_id)
    domain = address.rsplit("@", 1)[-1]
    if domain in freemail:
        return None
    # the domain itself, then each parent domain (mail.buyer.com → buyer.com)
    parts = domain.split(".")
    candidates = [".".join(parts[i:]) for i in range(len(parts) - 1)]
    rows = session.exec(select(CustomerDomain).where(col(CustomerDomain.domain).in_(candidates))).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: len(r.domain))
    return session.get(Customer, best.customer_id)


def claim_customer(*, session: Session, name_or_id: str, login: str, limits: dict[str, int]) -> Customer:
    """``login`` takes a customer from the pool, up to their role's limit of customers
    (``limits``: role -> number; a role not named has no limit)."""
    customer = require_customer(session=session, name_or_id=name_or_id)
    user = require_user(session=session, login=login)
    if not user.enabled:
        raise DirectoryError(f"user {user.login!r} is disabled")
    if customer.owner_id is not None:
        owner = session.get(User, customer.owner_id)
        raise DirectoryError(f"customer {customer.name!r} is not in the pool: {owner.login if owner else '?'} owns it "
                             "(an admin moves it with `mailwarden customer assign`)")
    limit = limits.get(user.role)
    if limit is not None:
        held = len(session.exec(select(Customer.id).where(Customer.owner_id == user.id)).all())
        if held >= limit:
            raise DirectoryError(f"{user.login} holds {held} customers, the most a {user.role} may hold by claiming "
                                 f"([filing] claim_limits); return one to the pool first")
    customer.owner_id = user.id
    customer.return_reminded_at = None
    session.add(customer)
    bump_epoch(session)
    return customer


class AddressBook:
    """Every contact address and customer domain, read at once: for filing a batch of mail
    without a query per address.  The same rules as :func:`resolve_recipient`."""

    def __init__(self, session: Session) -> None:
        self.contacts: dict[str, int] = dict(session.exec(select(Contact.email, Contact.customer_id)).all())  # type: ignore[arg-type]
        self.domains: dict[str, int] = dict(session.exec(select(CustomerDomain.domain, CustomerDomain.customer_id)).all())  # type: ignore[arg-type]

    def contact(self, address: str) -> int | None:
        return self.contacts.get(address.strip().lower())

    def domain(self, address: str, freemail: Sequence[str] | frozenset[str] = ()) -> int | None:
        """The customer of the address's domain or nearest parent domain (never a free-mail one)."""
        domain = address.strip().lower().rsplit("@", 1)[-1]
        if domain in freemail:
            return None
        parts = domain.split(".")
        for i in range(len(parts) - 1):
            cid = self.domains.get(".".join(parts[i:]))
            if cid is not None:
                return cid
        return None
