"""Parts that could not be decoded or inspected: never skipped in silence.

Content beyond an inspection limit (parts, nesting depth, archive members, nested archives,
rows, pages, characters …) is ``INSPECTION_LIMIT``: held by default, since what lies past
the limit was never read; the finding's match names the limit."""

from __future__ import annotations

from .base import Doc, Hit

NAME = "attachments"
DESCRIPTION = "Encrypted, undecodable or uninspectable parts"

_RULES = {
    "encrypted": "ATTACHMENT_ENCRYPTED",
    "undecodable": "ATTACHMENT_UNDECODABLE",
    "uninspected": "ATTACHMENT_UNINSPECTED",
    "limit": "INSPECTION_LIMIT",
}


def check(doc: Doc) -> list[Hit]:
    """A hit per problem the message model recorded."""
    hits: list[Hit] = []
    for p in doc.parsed.problems:
        where = "body" if "/" in p.name and not p.name.startswith("part.") and "." not in p.name \
            else f"attachment:{p.name}"
        hits.append(Hit(_RULES.get(p.kind, "ATTACHMENT_UNDECODABLE"), f"{p.name}: {p.detail}",
                        None, where=where))
    return hits
