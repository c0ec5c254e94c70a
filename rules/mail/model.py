"""The mail model: the one parsed form of a message, built once and shared.

A submitted message is parsed once, into a :class:`Mail`, and the same object goes to the
rules (:func:`mailwarden.rules.evaluate`) and to the signature engine
(:func:`mailwarden.signatures.apply_signature`):

* :meth:`Mail.segments` parses the message (:mod:`.mimeparse`) and decodes the text of
  every part, split into the operator's new text, quoted history and the company signature
  (:mod:`.segments`): what the rules read;
* :attr:`Mail.structure` is where each part lies in the bytes (:mod:`.structure`): what the
  signature engine cuts and splices. When the rules parsed the message first, the parser's
  fast path found the structure on the way, and it is not scanned again.

Only the structure is kept; the decoded text is the rules' and goes when they are done.
Up to :data:`~.segments.STRIP_MEDIA_ABOVE` bytes the structure shares the parsed tree's
entities (their payloads included: at most the message's size again); above, it is scanned
and holds header fields and offsets only, so a large message is not held more often than
before. A :class:`Mail` is per-message state, used by one thread at a time (the submission
hands it from the rules to the signature on the same worker thread).
"""

from __future__ import annotations

import logging
from email.message import Message

from ..budget import Deadline
from .mimeparse import parse
from .segments import STRIP_MEDIA_ABOVE, ParsedMessage, SignatureCheck, build_segments, without_media
from .structure import Part, from_spans, scan

__all__ = ["Mail"]

log = logging.getLogger(__name__)


class Mail:
    """One message: its bytes (never copied) and the forms the rules and the signatures read."""

    __slots__ = ("raw", "_structure")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._structure: Part | None = None

    def __repr__(self) -> str:
        return f"<Mail {len(self.raw)} bytes>"

    def is_of(self, message: bytes | memoryview) -> bool:
        """True when this is the model of *message* (the same bytes)."""
        return self.raw is message or self.raw == message

    @property
    def structure(self) -> Part:
        """The byte-offset structure of the message, found once (may raise on input the
        scanner cannot read: the signature engine then leaves the message alone)."""
        if self._structure is None:
            self._structure = scan(self.raw)
        return self._structure

    def _tree(self) -> tuple[Message | None, bytes]:
        """The parsed tree the rules read (None when the parser failed) and the bytes it is
        of: above :data:`~.segments.STRIP_MEDIA_ABOVE` the message without its big media
        bodies (they carry no text, and parsing them costs seconds)."""
        raw = self.raw
        big = len(raw) > STRIP_MEDIA_ABOVE
        if big:
            try:
                structure: Part | None = self.structure
            except Exception:  # noqa: BLE001 - a structure the scanner cannot read: parse it all
                structure = None
            if structure is not None:
                raw = without_media(raw, structure)
        try:
            parsed = parse(raw)
        except Exception as e:  # noqa: BLE001 - the stdlib parser should not raise, but be sure
            log.warning("unparseable message: %s", type(e).__name__)
            return None, raw
        if not big and parsed.spans is not None and self._structure is None:
            self._structure = from_spans(parsed.spans)
        return parsed.tree, raw

    def segments(self, *, is_company_signature: SignatureCheck, deadline: Deadline,
                 readers: bool = True) -> ParsedMessage:
        """Parse the message and decode its text into segments; never raises on malformed
        input, but :class:`~mailwarden.rules.budget.EvaluationTimeout` when *deadline* passes
        (and, with ``readers=False``, :class:`~.attachments.ReadersNeeded` at an attachment)."""
        tree, raw = self._tree()
        return build_segments(tree, raw, is_company_signature=is_company_signature, deadline=deadline,
                              readers=readers)
