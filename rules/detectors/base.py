"""What every detector gets (:class:`Doc`) and returns (:class:`Hit`)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, TypeVar

from ..context import CheckContext
from ..mail.segments import ParsedMessage, Segment
from ..normalize import NormText, normalize

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["Doc", "Hit", "SEP"]

# Joins the segment views for scanning (see Doc.joined): not whitespace, not a letter or digit,
# not in any pattern (word lists with it are searched segment by segment).
SEP = "\x00"
T = TypeVar("T")


@dataclass
class Hit:
    """A detector's raw observation; the policy table turns it into a :class:`Finding`.

    ``start``/``end`` index ``segment.text`` (None for whole-message hits). ``severity`` and
    ``action`` are per-term values from word lists (None: the rule's own).
    """

    rule: str
    match: str
    segment: Segment | None
    start: int | None = None
    end: int | None = None
    severity: str | None = None
    action: str | None = None
    where: str | None = None  # for hits without a segment

    @property
    def location(self) -> str:
        """The finding's ``where``."""
        if self.segment is not None:
            return self.segment.where
        return self.where or "message"

    @property
    def region(self) -> str:
        """``new``, ``quoted`` or ``signature``."""
        return self.segment.region if self.segment is not None else "new"


@dataclass
class Doc:
    """A parsed message plus the per-evaluation exception lists, shared by all detectors."""

    parsed: ParsedMessage
    ctx: CheckContext
    policy: Policy
    customer_domains: frozenset[str] = frozenset()
    customer_contacts: frozenset[str] = frozenset()
    customer_phones: tuple[str, ...] = ()
    _views: dict[int, NormText] = field(default_factory=dict)
    cache: dict[object, object] = field(default_factory=dict)  # per-evaluation detector cache
    _joined: tuple[str, list[int]] | None = None

    @classmethod
    def build(cls, parsed: ParsedMessage, ctx: CheckContext, policy: Policy) -> Doc:
        """Collect the recipient customers' domains, contacts and phones (never trigger)."""
        domains: set[str] = set()
        contacts: set[str] = set()
        phones: list[str] = []
        for r in ctx.recipients:
            if r.customer_id is None and not r.domains and not r.contacts:
                continue
            domains.update(d.lower().lstrip("@").rstrip(".") for d in r.domains)
            contacts.update(c.lower() for c in r.contacts)
            contacts.add(r.address.lower())
            phones.extend(r.phones)
        return cls(parsed, ctx, policy, frozenset(domains), frozenset(contacts), tuple(phones))

    @property
    def segments(self) -> list[Segment]:
        """All text segments of the message."""
        return self.parsed.segments

    def view(self, seg: Segment) -> NormText:
        """The normalised view of a segment (computed once, shared by the detectors)."""
        key = id(seg)
        v = self._views.get(key)
        if v is None:
            v = self._views[key] = normalize(seg.text)
        return v

    def joined(self) -> tuple[str, list[int]]:
        """The views of all segments joined by :data:`SEP`, and where each one starts in it.

        Scanners with a per-call cost (the automata, the phone skeleton) run once over this
        text instead of once per segment (a long thread has hundreds of quoted segments).
        They must only find matches that cannot contain :data:`SEP` and must treat it as any
        other character that is neither a letter, a digit nor whitespace; :meth:`split` then
        hands each segment its own matches with positions in its own view.
        """
        if self._joined is None:
            texts = [self.view(seg).text for seg in self.segments]
            starts = []
            pos = 0
            for t in texts:
                starts.append(pos)
                pos += len(t) + 1
            self._joined = (SEP.join(texts), starts)
        return self._joined

    def split(self, positions: Iterable[tuple[int, T]]) -> list[list[tuple[int, T]]]:
        """``(position in the joined text, item)`` pairs grouped by segment, with positions
        made relative to the segment's view. The pairs must come segment by segment (sorted
        by position, or as an automaton reports them: by end position)."""
        starts = self.joined()[1]
        out: list[list[tuple[int, T]]] = [[] for _ in starts]
        k = 0
        nxt = starts[1] if len(starts) > 1 else None
        for pos, item in positions:
            if nxt is not None and pos >= nxt:
                k = bisect_right(starts, pos) - 1
                nxt = starts[k + 1] if k + 1 < len(starts) else None
            out[k].append((pos - starts[k], item))
        return out

    def is_customer_domain(self, domain: str) -> bool:
        """A domain (or subdomain) of a recipient's customer."""
        domain = domain.lower()
        return any(domain == d or domain.endswith("." + d) for d in self.customer_domains)

    def hit(self, rule: str, seg: Segment, view: NormText, start: int, end: int,
            **kw: str | None) -> Hit:
        """A hit for the view range ``[start, end)``, mapped back to the segment's text."""
        s, e = view.span(start, end)
        return Hit(rule, seg.text[s:e].strip(), seg, s, e, **kw)  # type: ignore[arg-type]
