"""The address and parameters of ``MAIL FROM:`` / ``RCPT TO:`` (RFC 5321 4.1.2), parsed.

A small parser of the SMTP path, not the email package's header address grammar: an SMTP
path has no display names, groups or comments.  It is lenient where real mail programs are
sloppy (a path without angle brackets, blanks inside them, dots at odd places in a local
part, a mailbox without a domain: the submission server refuses that one with a readable
reply of its own) and strict where a mistake would change where mail goes (an empty domain
label, a second ``@``, unbalanced brackets or quotes).
"""

from __future__ import annotations

from functools import lru_cache

NULL_PATH = "<>"
"""What :func:`parse_path` returns for the null reverse-path ``<>`` (bounces use it)."""

_ATEXT_EXTRA = frozenset("!#$%&'*+-/=?^_`{|}~")


def _atext(c: str) -> bool:
    # RFC 5322 atext, and any non-ASCII character (RFC 6531 SMTPUTF8).
    return (c.isascii() and (c.isalnum() or c in _ATEXT_EXTRA)) or (not c.isascii())


def _local_is_dot_atom(local: str) -> bool:
    return bool(local) and all(_atext(c) or c == "." for c in local)


def _quote(local: str) -> str:
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_quoted(text: str, start: int) -> tuple[str, int] | None:
    """The content of the quoted string at ``text[start] == '"'`` and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                return None
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        if c in "\r\n":
            return None
        out.append(c)
        i += 1
    return None


def _valid_domain(domain: str) -> bool:
    if domain.startswith("[") and domain.endswith("]"):
        inner = domain[1:-1]
        return bool(inner) and not any(c in "[]\\" or c <= " " for c in inner)
    labels = domain.split(".")
    return all(label and all(_atext(c) for c in label) for label in labels)


def _mailbox(text: str) -> str | None:
    """``local@domain`` (or a bare local part) in its canonical form, or None if malformed."""
    if text.startswith('"'):
        quoted = _parse_quoted(text, 0)
        if quoted is None:
            return None
        local, end = quoted
        rest = text[end:]
        if rest and not rest.startswith("@"):
            return None
        local = local if _local_is_dot_atom(local) else _quote(local)
    else:
        local, at, domain = text.partition("@")
        if not _local_is_dot_atom(local):
            return None
        rest = at + domain
    if not rest:
        return local
    domain = rest[1:]
    if not _valid_domain(domain):
        return None
    return f"{local}@{domain}"


def _split_path(arg: str) -> tuple[str, str] | None:
    """The path (brackets removed) and what follows it; None if the brackets do not balance."""
    if not arg.startswith("<"):
        path, _, rest = arg.partition(" ")
        return path, (" " + rest if rest else "")
    i, in_quote = 1, False
    while i < len(arg):
        c = arg[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == ">":
            return arg[1:i].strip(" \t"), arg[i + 1:]
        elif c == "<":
            return None
        i += 1
    return None


@lru_cache(maxsize=4096)
def parse_path(arg: str) -> tuple[str | None, str]:
    """The address in a MAIL/RCPT argument (after ``FROM:``/``TO:``) and the text after it.

    Returns ``("", "")`` for an empty argument, ``(NULL_PATH, rest)`` for ``<>``, and
    ``(None, "")`` for a malformed path.  Source routes (``<@a,@b:x@y>``, RFC 5321 C) are
    dropped.  The same few senders and customers come back all day: the answers are kept.
    """
    arg = arg.strip(" \t")
    if not arg:
        return "", ""
    split = _split_path(arg)
    if split is None:
        return None, ""
    path, rest = split
    if path == "" and arg.startswith("<"):
        return NULL_PATH, rest
    if path.startswith("@"):  # a source route: everything up to the last ':' outside quotes
        route, colon, path = path.partition(":")
        if not colon or not all(hop.startswith("@") and _valid_domain(hop[1:]) for hop in route.split(",")):
            return None, ""
    address = _mailbox(path)
    if address is None:
        return None, ""
    return address, rest


def parse_params(text: str) -> dict[str, str | bool] | None:
    """ESMTP parameters (RFC 5321 4.1.2 ``esmtp-param``), keys upper-cased; None if malformed.

    ``SIZE=100 SMTPUTF8`` → ``{"SIZE": "100", "SMTPUTF8": True}``.
    """
    result: dict[str, str | bool] = {}
    for param in text.upper().split():
        key, eq, value = param.partition("=")
        if not key.isalnum() or (eq and not value):
            return None
        result[key] = value if eq else True
    return result


def mail_params_refusal(text: str, *, size_limit: int | None, syntax: str) -> str | None:
    """Why the parameters of MAIL FROM are refused (the reply), or None if they are fine.

    Known: ``BODY=7BIT|8BITMIME`` (RFC 6152), ``SMTPUTF8`` (RFC 6531), ``SIZE=n`` (RFC 1870);
    ``syntax`` is the reply to a malformed parameter."""
    params = parse_params(text)
    if params is None:
        return syntax
    if params.pop("BODY", "7BIT") not in ("7BIT", "8BITMIME"):
        return "501 Error: BODY can only be one of 7BIT, 8BITMIME"
    if not isinstance(params.pop("SMTPUTF8", False), bool):
        return "501 Error: SMTPUTF8 takes no arguments"
    size = params.pop("SIZE", None)
    if size is not None:
        if isinstance(size, bool) or not size.isdigit():
            return syntax
        if size_limit and int(size) > size_limit:
            return "552 Error: message size exceeds fixed maximum message size"
    if params:
        return "555 MAIL FROM parameters not recognized or not implemented"
    return None
