"""mailwarden.rules.mail — the mail model: the one parsed form of a message.

Built once per message (:class:`Mail`) and shared by the rules, the signatures and filing:
the parsed tree and the byte-offset structure (:mod:`.mimeparse`, :mod:`.structure`),
charsets (:mod:`.charset`), HTML text (:mod:`.htmltext`), attachment text
(:mod:`.attachments`), quoted history (:mod:`.quotes`, :mod:`.quotes_html`) and the
segments the detectors read, with the signature block (:mod:`.segments`). Nothing here
imports the detectors or the signature engine.
"""

from __future__ import annotations

from .model import Mail
from .segments import ParsedMessage, Problem, Segment
from .structure import Part

__all__ = ["Mail", "ParsedMessage", "Part", "Problem", "Segment"]
