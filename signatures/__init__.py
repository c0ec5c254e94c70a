"""mailwarden.signatures: the company signature, rendered per salesperson and put into outbound mail.

Pure functions of a message plus context (no sockets, no database)::

    sigs = load_signatures(settings, company)          # once per config load; validates templates
    result = apply_signature(raw_bytes, sigs, user, customer)
    result = apply_signature(raw_bytes, sigs, user, customer, mail=mail)  # on the rules' model
    render(sigs, user, customer)                       # the signature alone (CLI preview)

``mail`` is the message's :class:`mailwarden.rules.mail.Mail`, the one parse the gateway
shares between the rules and the signature; without it the message is scanned here.

See :mod:`.templates` for the template layout and :mod:`.insert` for the MIME shapes handled.
"""

from .insert import apply_signature
from .model import (
    HTML_MARKER_ATTR,
    HTML_MARKER_CLASS,
    TEXT_DELIMITER,
    RenderedSignature,
    SignatureCompany,
    SignatureSettings,
    SignatureTemplateError,
    SignatureUser,
    SignResult,
)
from .templates import SignatureSet, load_signatures, render

__all__ = [
    "HTML_MARKER_ATTR",
    "HTML_MARKER_CLASS",
    "TEXT_DELIMITER",
    "RenderedSignature",
    "SignResult",
    "SignatureCompany",
    "SignatureSet",
    "SignatureSettings",
    "SignatureTemplateError",
    "SignatureUser",
    "apply_signature",
    "load_signatures",
    "render",
]
