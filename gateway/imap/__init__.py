"""mailwarden.gateway.imap: what the IMAP server serves, and (later) the server itself.

- :mod:`.bodystructure`: :func:`~.bodystructure.describe` computes, once at import, everything
  FETCH answers about a message (ENVELOPE, BODY/BODYSTRUCTURE, sizes, where each section
  lies in the stored bytes) as :class:`~.bodystructure.MessageFacts`, kept as one JSON text;
  :mod:`.envelope`, :mod:`.fields` and :mod:`.rfc822` read the header fields for it.
- :mod:`.wire`: the IMAP wire form of those facts; :mod:`.sections`: section specifiers
  (``1.2.MIME``, ``HEADER``, ``TEXT``) to byte ranges.
"""
