"""From a rules decision to what the gateway does with the message.

``allow`` and ``tag`` deliver; ``warn`` delivers and tells the sender why;
``flag`` delivers and records it for the supervisors' digest; ``redact``
replaces the matches and delivers (the original is kept for the audit);
``quarantine`` holds the message until a supervisor releases or rejects it;
``block`` refuses at SMTP time with a reason the salesperson can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailwarden.rules import (
    CheckContext,
    Decision,
    Policy,
    evaluate,
    redact,
)
from mailwarden.rules.mail import Mail
from mailwarden.store.spool import states as st

from mailwarden.gateway.submission.replies import say
from mailwarden.gateway.submission.rewrite import MessageRejected


@dataclass
class Verdict:
    """The rules' decision plus what it means here."""

    decision: Decision | None
    content: bytes                      # what goes on (redacted when the action is redact)
    original: bytes | None = None       # kept for the audit when redacted
    stage: str = st.RELAY               # st.RELAY, or st.HELD (quarantine)
    notices: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, subject, text) for the sender

    @property
    def action(self) -> str:
        return self.decision.enforced_action if self.decision else "allow"

    def audit_detail(self) -> dict[str, Any]:
        if self.decision is None:
            return {}
        return decision_detail(self.decision)


def decision_detail(decision: Decision) -> dict[str, Any]:
    """The decision as audit-event detail (no key may clash with the event's own fields)."""
    return {"decided": decision.action, "enforced": decision.enforced_action, "mode": decision.mode,
            "findings": decision.to_json()["findings"]}


def smtp_reason(decision: Decision, language: str) -> str:
    """One line for the 550 reply: no CR/LF, bounded, names the rule and the match."""
    reason = decision.reason(language).replace("\r", " ").replace("\n", " ")
    return reason[:400]


def judge(policy: Policy | None, content: bytes, ctx: CheckContext, *, language: str,
          mail: Mail | None = None, decision: Decision | None = None, readers: bool = True) -> Verdict:
    """Run the rules and turn the decision into a :class:`Verdict`; raises
    :class:`MessageRejected` for ``block``. *mail*: the model of ``content``, when the
    caller shares it with the signature engine; *decision*: the rules' decision, when the
    caller had it evaluated elsewhere (a scan worker process); ``readers=False``: raise
    :class:`~mailwarden.rules.mail.attachments.ReadersNeeded` rather than open an attachment."""
    if policy is None:
        return Verdict(None, content)
    if decision is None:
        decision = evaluate(policy, content, ctx, mail=mail, readers=readers)
    action = decision.enforced_action
    if action == "block":
        raise Blocked(decision, say("blocked", language, reason=smtp_reason(decision, language)))
    verdict = Verdict(decision, content)
    if action == "redact":
        verdict.original = content
        verdict.content = redact(content, decision)
    elif action == "quarantine":
        verdict.stage = st.HELD
        verdict.notices.append((
            "quarantine", "Held for review / 邮件待审核",
            "Your message was held for a supervisor to review before it is sent.\n"
            f"Reason: {decision.reason('en')}\n\n"
            "您的邮件需主管审核后才会发出。\n"
            f"原因：{decision.reason('zh')}\n",
        ))
    elif action == "warn":
        verdict.notices.append((
            "warn", "Sent with a warning / 邮件已发送（提醒）",
            f"Your message was sent, but please note: {decision.reason('en')}\n\n"
            f"邮件已发送，但请注意：{decision.reason('zh')}\n",
        ))
    return verdict


class Blocked(MessageRejected):
    def __init__(self, decision: Decision, smtp_reply: str) -> None:
        super().__init__(smtp_reply)
        self.decision = decision

