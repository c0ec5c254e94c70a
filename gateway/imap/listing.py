"""LIST, LSUB and STATUS answers from a user's mailboxes (the store decides which they have)."""

from __future__ import annotations

from mailwarden.store.imapstate import BoxInfo

from .commands import List
from .names import list_matcher, wire_name

DELIMITER = "/"
SPECIAL_USE = {"sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "retention": "\\Archive"}


def tree(boxes: list[BoxInfo]) -> dict[str, BoxInfo | None]:
    """Every name to list: the boxes, and the levels above them that are no box (None)."""
    out: dict[str, BoxInfo | None] = {b.name: b for b in boxes}
    for b in boxes:
        parts = b.name.split(DELIMITER)
        for n in range(1, len(parts)):
            out.setdefault(DELIMITER.join(parts[:n]), None)
    return out


def attributes(name: str, box: BoxInfo | None, names: dict[str, BoxInfo | None], *,
               subscribed: bool) -> list[str]:
    """Children are always said (RFC 3348: cheap here, and clients rely on it), special use too,
    in plain LIST and LSUB alike: clients look for it there."""
    attrs: list[str] = []
    if box is None:
        attrs.append("\\Noselect")
    has = any(other.startswith(name + DELIMITER) for other in names)
    attrs.append("\\HasChildren" if has else "\\HasNoChildren")
    if box is not None and box.kind in SPECIAL_USE:
        attrs.append(SPECIAL_USE[box.kind])
    if subscribed and box is not None and box.subscribed:
        attrs.append("\\Subscribed")
    return attrs


def list_lines(cmd: List, boxes: list[BoxInfo], *, utf8: bool, lost: tuple[str, ...] = ()) -> list[bytes]:
    """The untagged LIST/LSUB responses of ``cmd`` (names already canonical in ``boxes``;
    ``lost``: subscribed names of folders that no longer exist, for LIST (SUBSCRIBED))."""
    verb = cmd.name.encode()
    reference = cmd.reference.decode("utf-8", "replace")
    if len(cmd.patterns) == 1 and cmd.patterns[0] == b"" and not cmd.extended:
        # LIST "" "": the delimiter and the root
        return [verb + b' (\\Noselect) "/" ""']
    names = tree(boxes)
    lsub = cmd.name == "LSUB"
    want_subscribed = lsub or "SUBSCRIBED" in cmd.select
    special_only = "SPECIAL-USE" in cmd.select
    lost = tuple(n for n in lost if n not in names) if want_subscribed and not lsub else ()
    subscribed = {n for n, b in names.items() if b is not None and b.subscribed} | set(lost)
    matchers = []
    for pattern in cmd.patterns:
        try:
            matchers.append((pattern, list_matcher(reference, pattern.decode("utf-8") if utf8
                                                   else _decode_pattern(pattern), DELIMITER)))
        except ValueError:
            continue
    out: list[bytes] = []
    seen: set[str] = set()

    def line(name: str, attrs: list[str], extra: bytes = b"") -> None:
        seen.add(name)
        out.append(verb + b" (" + " ".join(attrs).encode() + b') "/" ' + wire_name(name, utf8=utf8) + extra)

    for pattern, match in matchers:
        for name in sorted([*names, *lost], key=_order):
            if name in seen or not match(name):
                continue
            box = names.get(name)
            if lsub:
                # RFC 3501 6.3.9: a level that is not subscribed itself, above one that is,
                # answers "%" as \Noselect
                if box is not None and box.subscribed:
                    # special use in LSUB too: clients that read folders from LSUB look for it there
                    line(name, [SPECIAL_USE[box.kind]] if box.kind in SPECIAL_USE else [])
                elif "%" in pattern.decode("latin-1") and any(
                        b.subscribed for other, b in names.items() if b and other.startswith(name + DELIMITER)):
                    line(name, ["\\Noselect"])
                continue
            if name in lost:
                line(name, ["\\NonExistent", "\\Subscribed"])
                continue
            if want_subscribed and name not in subscribed:
                # RFC 5258 RECURSIVEMATCH: a parent is listed for subscribed descendants the
                # patterns do not list themselves
                if "RECURSIVEMATCH" in cmd.select and any(
                        other.startswith(name + DELIMITER) and not any(m(other) for _, m in matchers)
                        for other in subscribed):
                    line(name, attributes(name, box, names, subscribed=False), b' (CHILDINFO ("SUBSCRIBED"))')
                continue
            if special_only and (box is None or box.kind not in SPECIAL_USE):
                continue
            line(name, attributes(name, box, names, subscribed="SUBSCRIBED" in cmd.returns or want_subscribed))
    return out


def _decode_pattern(pattern: bytes) -> str:
    from .names import decode_mutf7

    return decode_mutf7(pattern)


def _order(name: str) -> tuple[int, str]:
    first = ("INBOX", "Drafts", "Sent", "Trash", "Pool", "Customers", "Retention")
    top = name.split(DELIMITER)[0]
    return (first.index(top) if top in first else len(first), name)


def status_line(box: BoxInfo, items: tuple[str, ...], messages: int, unseen: int, recent: int,
                *, utf8: bool) -> bytes:
    values = {"MESSAGES": messages, "RECENT": recent, "UIDNEXT": box.uid_next, "UIDVALIDITY": box.uidvalidity,
              "UNSEEN": unseen, "HIGHESTMODSEQ": box.highest_modseq}
    body = " ".join(f"{item} {values[item]}" for item in items if item in values)
    return b"STATUS " + wire_name(box.name, utf8=utf8) + b" (" + body.encode() + b")"
