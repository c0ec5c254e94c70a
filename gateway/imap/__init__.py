"""mailwarden.gateway.imap: what the IMAP server serves each salesperson from the store.

- :mod:`.bodystructure`: :func:`~.bodystructure.describe` computes, once when the sync imports a
  message, everything FETCH answers about it (ENVELOPE, BODY/BODYSTRUCTURE, sizes, where each
  section lies in the stored bytes) as :class:`~.bodystructure.MessageFacts`, kept as one JSON
  text; :mod:`.envelope`, :mod:`.fields` and :mod:`.rfc822` read the header fields for it.
- :mod:`.wire`: the IMAP wire form of those facts; :mod:`.sections`: section specifiers
  (``1.2.MIME``, ``HEADER``, ``TEXT``) to byte ranges.
- :mod:`.commands`: client commands as values; :mod:`.reader`: the sans-I/O
  :class:`~.reader.CommandReader` that frames the client's bytes (lines, literals, limits) and
  gives commands, parsed by :mod:`.parse` (FETCH items in :mod:`.parsefetch`, SEARCH keys in
  :mod:`.parsesearch`, the tokens in :mod:`.tokens`).
- :mod:`.names`: mailbox names (modified UTF-7, the canonical form, LIST patterns);
  :mod:`.respond`: strings, flag lists and sequence sets for responses.
"""
