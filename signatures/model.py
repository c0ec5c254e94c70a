"""Value types of the signature engine: who signs, for which company, how, and the outcome.

These are plain frozen dataclasses so the gateway can build them from its config and store
and pass them across threads; nothing here touches templates or MIME.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Marker class of the element that holds the company signature in HTML. Classes survive
#: Outlook's and Gmail's re-encoding of HTML better than ids; the rules engine looks for it too.
HTML_MARKER_CLASS = "mailwarden-signature"
#: Companion attribute, for clients that drop unknown classes but keep data- attributes.
HTML_MARKER_ATTR = "data-mailwarden-signature"
#: The conventional signature delimiter line (RFC 3676 section 4.3) that opens the company
#: signature block in text/plain parts.
TEXT_DELIMITER = "-- "

UNALTERABLE_POLICIES = ("pass", "flag", "block")


class SignatureTemplateError(ValueError):
    """A signature template (or the logo it needs) cannot be loaded, parsed or rendered.

    ``str(err)`` names the file and, where known, the line, so an admin can fix it.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


@dataclass(frozen=True)
class SignatureUser:
    """The salesperson a message is signed for (the operator)."""

    login: str
    name: str
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    team: str | None = None
    role: str = "sales"


@dataclass(frozen=True)
class SignatureCompany:
    """The company's official identity, from the ``[company]`` config section."""

    name: str
    domains: tuple[str, ...]
    official_phones: tuple[str, ...]
    official_handles: tuple[str, ...]
    address: str | None = None
    website: str | None = None
    logo: Path | None = None


@dataclass(frozen=True)
class SignatureSettings:
    """The ``[signatures]`` config section.

    ``unalterable`` is the policy for messages the engine must leave untouched (S/MIME, PGP,
    calendar invitations, delivery reports): ``"pass"``, ``"flag"`` or ``"block"``. The engine
    itself only reports ``SignResult.untouched_reason``; the gateway applies the policy.
    """

    template_dir: Path | None = None
    strip_client_signature: bool = False
    add_text_alternative: bool = False
    unalterable: str = "pass"


@dataclass(frozen=True)
class RenderedSignature:
    """One signature rendered for one user: plain text, HTML fragment, and the template used.

    ``template`` is the level the pair came from: ``"team/<team>"``, ``"role/<role>"``,
    ``"company"`` (site default) or ``"default"`` (shipped default).
    ``html`` is the template's output without the marker wrapper that insertion adds.
    """

    text: str
    html: str
    template: str


@dataclass
class SignResult:
    """Outcome of :func:`mailwarden.signatures.apply_signature`.

    ``message`` is the message to send (the input object itself when nothing changed).
    With ``apply_signature(..., joined=False)`` a signed message is left in ``pieces``
    instead (views of the input and the inserted bytes, nothing copied) and ``message``
    is the input: a large message is then never held twice.
    ``applied`` is true when at least one body part now carries the company signature.
    ``fallback`` is true when the chosen template failed at send time and the plain company
    signature (the shipped default) was used instead; ``detail`` then says why, for the audit
    event. ``untouched_reason`` is set when the message must not be altered (``"smime-signed"``,
    ``"smime-encrypted"``, ``"pgp"``, ``"calendar"``, ``"delivery-report"``) or could not be
    (``"no-text-body"``, ``"undecodable-body"``).
    """

    message: bytes
    applied: bool
    fallback: bool
    untouched_reason: str | None
    detail: str | None = None
    stripped_client_signature: bool = False
    pieces: tuple[bytes | memoryview, ...] | None = None
