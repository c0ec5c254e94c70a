"""``load_policy`` and ``evaluate``: parse, normalise, detect, decide — within a time budget."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from types import MappingProxyType

from . import detectors
from . import normalize as _normalize
from .budget import Deadline, EvaluationTimeout
from .confidence import LOW_CAP, assess, official_pattern, personal_cue
from .context import CheckContext, CompanyProfile, RulesSettings
from .detectors import DETECTORS, handles, phones
from .detectors.disguised import REVEALED
from .detectors.base import Doc, Hit
from .findings import Decision, Finding, action_rank, min_action, severity_rank
from .mail import Mail, ParsedMessage
from .mail import attachments as _attachments
from .mail.attachments import ReadersNeeded
from .policy import Policy, build_policy

__all__ = ["load_policy", "evaluate", "decide", "held_unscanned"]

log = logging.getLogger(__name__)

_QUOTED_REGIONS = ("quoted", "signature")


def load_policy(company: CompanyProfile, settings: RulesSettings) -> Policy:
    """Load the shipped pack, site packs and word lists; build the automata once.

    Raises :class:`~mailwarden.rules.errors.RulesConfigError` naming the file, the line or
    key, and the problem.
    """
    _normalize.warm_up()
    _attachments.warm_up()
    policy = build_policy(company, settings)
    policy = replace(policy, official_phones=phones.official_phones(company, policy.phone_region),
                     official_handles=handles.official_handles(company))
    extra = detectors.prepare(policy)
    extra["signature_check"] = _signature_check(policy)
    extra["official_pattern"] = official_pattern(company)
    return replace(policy, extra=MappingProxyType(extra))


def _signature_check(policy: Policy):  # type: ignore[no-untyped-def]
    """A block only counts as the company signature if it names the company.

    The markers (``-- `` line, ``class="mailwarden-signature"``) can be typed by anyone, and
    findings inside the signature are capped at ``tag``; requiring the company's name, a
    company domain or an official phone keeps the marker from hiding a private contact.
    """
    company = policy.company
    needles = [company.name.strip().lower()] if company.name.strip() else []
    needles += [d.lower() for d in policy.company_domains]
    digits = [re.sub(r"\D", "", p)[-8:] for p in company.official_phones]

    def check(text: str) -> bool:
        low = text.lower()
        if any(n and n in low for n in needles):
            return True
        flat = re.sub(r"\D", "", text)
        return any(d and len(d) >= 6 and d in flat for d in digits)

    return check


def budget_for(settings: RulesSettings, size: int) -> float:
    """The CPU-time budget (ms) for a message of ``size`` bytes: ``budget_ms`` plus
    ``budget_ms_per_mb`` per MB, so a large attachment is inspected rather than quarantined
    for taking longer than a quote."""
    return settings.budget_ms + settings.budget_ms_per_mb * size / 1_000_000


def evaluate(policy: Policy, message: bytes, ctx: CheckContext, *, mail: Mail | None = None,
             readers: bool = True) -> Decision:
    """Decide what happens to *message* sent by ``ctx.operator`` to ``ctx.recipients``.

    *mail*: the message's model, when the caller built it (to share it with the signature
    engine); built here otherwise. Never raises on malformed input. Over its time budget
    (:func:`budget_for`: CPU time of the evaluating thread, wall time only as a ceiling far
    above it, see :mod:`.budget`) the decision is ``quarantine`` with an ``EVALUATION_TIMEOUT``
    finding; out of memory (``EVALUATION_MEMORY``) and an internal error (``EVALUATION_ERROR``)
    likewise quarantine rather than pass the message unchecked.

    ``readers=False``: raise :class:`~.mail.attachments.ReadersNeeded` rather than open an
    attachment (a caller that cannot stop a reader which hangs evaluates such a message
    elsewhere).
    """
    if mail is None:
        mail = Mail(message)
    elif not mail.is_of(message):
        raise ValueError("mail is the model of another message")
    budget = budget_for(policy.settings, len(message))
    deadline = Deadline(budget)
    hits: list[Hit] = []
    doc: Doc | None = None
    try:
        parsed = mail.segments(is_company_signature=policy.extra["signature_check"],
                               deadline=deadline, readers=readers)
        deadline.check()
        doc = Doc.build(parsed, ctx, policy)
        for det in DETECTORS:
            hits.extend(det.check(doc))
            deadline.check()
    except EvaluationTimeout:
        found = decide(policy, hits, ctx, doc).findings
        return _decision(policy, [evaluation_finding("timeout", deadline.describe()), *found])
    except ReadersNeeded:
        raise
    except MemoryError:
        hits.clear()  # give back what can be given back before building the answer
        doc = None
        return held_unscanned(policy, "memory", "the message needs more memory than a scan may use")
    except Exception:  # noqa: BLE001 - never pass a message unchecked because of a bug
        log.exception("rules evaluation failed (operator=%s)", ctx.operator)
        return held_unscanned(policy, "error", "internal error")
    return decide(policy, hits, ctx, doc)


_EVALUATION_RULES = {"timeout": "EVALUATION_TIMEOUT", "memory": "EVALUATION_MEMORY", "error": "EVALUATION_ERROR"}


def evaluation_finding(kind: str, detail: str) -> Finding:
    """The finding of an evaluation that could not finish (``kind``: ``timeout``, ``memory`` or
    ``error``): always ``quarantine``, whatever the packs say, so nothing passes unscanned."""
    return Finding(_EVALUATION_RULES[kind], "evaluation", kind, detail, "high", "quarantine", "message")


def held_unscanned(policy: Policy, kind: str, detail: str) -> Decision:
    """The decision for a message whose scan was stopped from outside (a scan worker killed
    past its time or memory limit, or dead): quarantined with *detail* as the reason."""
    return _decision(policy, [evaluation_finding(kind, detail)])


def decide(policy: Policy, hits: list[Hit], ctx: CheckContext, doc: Doc | None = None) -> Decision:
    """Apply the decision table to the hits: the most severe action wins.

    *doc*: the message the hits are of, for the context layer (:mod:`.confidence`): a
    low-confidence finding is capped at ``tag``, and a contact marked personal in the
    signature block keeps its action."""
    findings: list[Finding] = []
    lexicon = policy.extra.get("lexicon") if policy.extra else None
    seen: dict[tuple[str, str, str], int] = {}
    im_spans: list[tuple[int, int, int]] = []  # (segment id, start, end) of IM handles
    for h in hits:
        rule = policy.rules.get(h.rule)
        if rule is None:
            continue
        if rule.kind == "phone" and h.segment is not None and h.start is not None:
            if any(sid == id(h.segment) and s <= h.start and h.end <= e  # type: ignore[operator]
                   for sid, s, e in im_spans):
                continue  # already reported as a WhatsApp/WeChat/… handle
        resolved = policy.resolve(h.rule, ctx, h.severity, h.action)
        if resolved is None:
            continue
        action, severity = resolved
        confidence, cue = assess(doc, h, rule) if doc is not None else ("high", "")
        if h.region == "quoted":
            action = min_action(action, policy.quoted_max_action)
        elif h.region == "signature":
            marked = personal_cue(doc, h) if doc is not None and rule.category == "private_contact" else None
            if marked is None:
                action = min_action(action, min_action("tag", policy.quoted_max_action))
            else:
                cue = cue or f"personal: {marked}"
        if confidence == "low":
            action = min_action(action, lexicon.low_cap(rule.category) if lexicon is not None else LOW_CAP)
        elif doc is not None and h.segment is not None and id(h.segment) in doc.cache.get(REVEALED, ()):  # type: ignore[operator]
            cue = "disguised"
        if rule.category == "private_contact" and rule.kind != "phone" and h.segment is not None \
                and h.start is not None and rule.kind != "email":
            im_spans.append((id(h.segment), h.start, h.end or h.start))
        where = h.location
        key = (h.rule, " ".join(h.match.lower().split()),
               "body" if where in ("body", "html") else where)
        f = Finding(h.rule, rule.category, rule.kind, h.match, severity, action, where, confidence, cue)
        if key in seen:
            i = seen[key]
            if action_rank(action) > action_rank(findings[i].action):
                findings[i] = f
            continue
        seen[key] = len(findings)
        findings.append(f)
    return _decision(policy, findings)


def _decision(policy: Policy, findings: list[Finding]) -> Decision:
    findings.sort(key=lambda f: (-action_rank(f.action), -severity_rank(f.severity),
                                 f.where in _QUOTED_REGIONS))
    action = findings[0].action if findings else "allow"
    if policy.mode == "audit":
        enforced = "allow" if action == "allow" else "tag"
    else:
        enforced = action
    return Decision(action=action, findings=findings, mode=policy.mode, enforced_action=enforced)


def parse_only(policy: Policy, message: bytes) -> ParsedMessage:
    """The message model alone (for debugging and the CLI)."""
    return Mail(message).segments(is_company_signature=policy.extra["signature_check"],
                                  deadline=Deadline(0))
