"""``BODY[section]<partial>`` as a byte range of the stored message.

A section is the part number (``1.2``), optionally followed by ``MIME``, ``HEADER`` or
``TEXT``; an empty part number is the message itself. The part number is followed through
the tree the way Dovecot follows it (RFC 3501 6.4.5 leaves corners open, and clients see
Dovecot's answers through the upstream): in a part that is not a multipart, ``1`` is the part
itself, so ``1`` of a single-part message is its body and ``2.1`` of a text part is ``2``
again; a number continuing past a message/rfc822 part goes into the embedded message;
``HEADER`` and ``TEXT`` after a part number need a message/rfc822 part. A section that names
no part is None (the server answers an empty string). ``HEADER.FIELDS`` is a filter of the
header range, not a range, and is the server's to apply.
"""

from __future__ import annotations

from .bodystructure import MessageFacts, PartFacts

__all__ = ["locate", "partial", "section_map"]

Range = tuple[int, int]
_SUFFIXES = ("MIME", "HEADER", "TEXT")


def _find(root: PartFacts, numbers: list[int]) -> PartFacts | None:
    part: PartFacts | None = root
    for i, num in enumerate(numbers):
        if part is None:
            return None
        more = i + 1 < len(numbers)
        if part.kind == "multipart":
            part = part.children[num - 1] if 0 < num <= len(part.children) else None
        elif num != 1 or (more and part.kind != "message"):
            return None
        if part is not None and part.kind == "message" and more and part.children:
            part = part.children[0]
    return part


def locate(facts: MessageFacts, section: str) -> Range | None:
    """The range ``[start, end)`` of *section* (``""``, ``"TEXT"``, ``"1.2.MIME"`` …,
    case-insensitive), or None when the message has no such part or the section is malformed."""
    spec = section.strip().upper()
    root = facts.root
    numbers: list[int] = []
    suffix = ""
    for item in spec.split(".") if spec else []:
        if item.isdigit() and not suffix and item.isascii():
            numbers.append(int(item))
        elif item in _SUFFIXES and not suffix:
            suffix = item
        else:
            return None
    if not numbers:
        if suffix == "MIME":
            return None
        if suffix == "HEADER":
            return root.start, root.body_start
        if suffix == "TEXT":
            return root.body_start, root.end
        return 0, facts.size
    part = _find(root, numbers)
    if part is None:
        return None
    if suffix == "MIME":
        return part.start, part.body_start
    if suffix in ("HEADER", "TEXT"):
        if part.kind != "message" or not part.children:
            return None
        inner = part.children[0]
        return (inner.start, inner.body_start) if suffix == "HEADER" else (inner.body_start, inner.end)
    return part.body_start, part.end


def partial(span: Range, offset: int, count: int | None = None) -> Range:
    """The ``<offset.count>`` slice of *span* (clamped to it, as IMAP partials are)."""
    start, end = span
    first = min(start + max(offset, 0), end)
    return first, end if count is None else min(end, first + max(count, 0))


def section_map(facts: MessageFacts) -> dict[str, Range]:
    """Every section of the message by its canonical name (``"HEADER"``, ``"1"``,
    ``"1.MIME"``, ``"2.HEADER"`` …) and its range; what :func:`locate` answers for each."""
    out: dict[str, Range] = {"": (0, facts.size), "HEADER": (facts.root.start, facts.root.body_start),
                             "TEXT": (facts.root.body_start, facts.root.end)}

    def numbered(part: PartFacts, prefix: str) -> None:
        # the parts a part number reaches under *part* (a message's root, or a multipart)
        if part.kind != "multipart":
            _add(part, prefix + "1")
            return
        for i, child in enumerate(part.children, 1):
            _add(child, prefix + str(i))

    def _add(part: PartFacts, name: str) -> None:
        out[name] = (part.body_start, part.end)
        out[name + ".MIME"] = (part.start, part.body_start)
        if part.kind == "multipart":
            numbered(part, name + ".")
        elif part.kind == "message" and part.children:
            inner = part.children[0]
            out[name + ".HEADER"] = (inner.start, inner.body_start)
            out[name + ".TEXT"] = (inner.body_start, inner.end)
            numbered(inner, name + ".")

    numbered(facts.root, "")
    return out
