"""mailwarden.gateway.imap: what the IMAP server serves each salesperson from the store.

- :mod:`.bodystructure`: :func:`~.bodystructure.describe` computes, once when the sync imports a
  message, everything FETCH answers about it (ENVELOPE, BODY/BODYSTRUCTURE, sizes, where each
  section lies in the stored bytes) as :class:`~.bodystructure.MessageFacts`, kept as one JSON
  text; :mod:`.envelope`, :mod:`.fields` and :mod:`.rfc822` read the header fields for it.
- :mod:`.wire`: the IMAP wire form of those facts; :mod:`.sections`: section specifiers
  (``1.2.MIME``, ``HEADER``, ``TEXT``) to byte ranges.
"""
