"""Findings, actions and the decision built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ACTIONS",
    "SEVERITIES",
    "Finding",
    "Decision",
    "action_rank",
    "max_action",
    "min_action",
]

ACTIONS: tuple[str, ...] = ("allow", "tag", "warn", "flag", "redact", "quarantine", "block")
"""All actions, from least to most severe."""

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
"""All severities, from least to most severe."""

_ACTION_RANK = {a: i for i, a in enumerate(ACTIONS)}
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def action_rank(action: str) -> int:
    """Position of *action* in :data:`ACTIONS` (unknown actions rank as ``allow``)."""
    return _ACTION_RANK.get(action, 0)


def severity_rank(severity: str) -> int:
    """Position of *severity* in :data:`SEVERITIES`."""
    return _SEVERITY_RANK.get(severity, 0)


def max_action(*actions: str) -> str:
    """The most severe of *actions* (``allow`` for none)."""
    return max(actions, key=action_rank, default="allow")


def min_action(a: str, b: str) -> str:
    """The less severe of two actions."""
    return a if action_rank(a) <= action_rank(b) else b


@dataclass
class Finding:
    """One thing a rule noticed: which rule, what was matched and where.

    ``where`` is ``"body"``, ``"html"``, ``"subject"``, ``"header:<Name>"``,
    ``"attachment:<filename>"``, ``"quoted"``, ``"signature"`` or ``"recipient"``.
    ``action`` is the action the policy table assigned, already capped for quoted history,
    the company signature and a low ``confidence``.
    """

    rule: str
    category: str
    kind: str
    match: str
    severity: str
    action: str
    where: str
    confidence: str = "high"  # "high" | "low" (the context layer's, see rules.confidence)
    cue: str = ""  # what around the match decided the confidence ("negation: never")

    def to_json(self) -> dict[str, str]:
        """The public JSON shape of a finding (``confidence`` and ``cue`` added by issue 19)."""
        return {
            "rule": self.rule,
            "category": self.category,
            "kind": self.kind,
            "match": self.match,
            "severity": self.severity,
            "confidence": self.confidence,
            "cue": self.cue,
        }


_VERB_EN = {
    "allow": "Allowed",
    "tag": "Tagged",
    "warn": "Warning",
    "flag": "Flagged for your supervisor",
    "redact": "Redacted",
    "quarantine": "Held for review",
    "block": "Blocked",
}
_VERB_ZH = {
    "allow": "已放行",
    "tag": "已标记",
    "warn": "警告",
    "flag": "已通知主管",
    "redact": "已隐去",
    "quarantine": "已暂扣待审核",
    "block": "已拦截",
}
_KIND_EN = {
    "email": "e-mail address",
    "phone": "phone number",
    "wechat": "WeChat ID",
    "whatsapp": "WhatsApp contact",
    "qq": "QQ number",
    "telegram": "Telegram handle",
    "skype": "Skype ID",
    "line": "LINE ID",
    "viber": "Viber contact",
    "word": "phrase",
    "list": "list of addresses",
    "spreadsheet": "contact spreadsheet",
    "freemail": "free-mail recipient",
    "competitor": "competitor recipient",
    "forward": "customer thread forwarded to a private address",
    "cross_owner": "customer owned by another salesperson",
    "undecodable": "part that cannot be read",
    "encrypted": "encrypted part",
    "uninspected": "part that cannot be inspected",
    "timeout": "check took too long",
    "limit": "content beyond the inspection limits",
    "memory": "check needed too much memory",
    "error": "check failed",
}
_KIND_ZH = {
    "email": "邮箱地址",
    "phone": "电话号码",
    "wechat": "微信号",
    "whatsapp": "WhatsApp 联系方式",
    "qq": "QQ 号",
    "telegram": "Telegram 账号",
    "skype": "Skype 账号",
    "line": "LINE 账号",
    "viber": "Viber 联系方式",
    "word": "敏感词",
    "list": "地址列表",
    "spreadsheet": "联系人表格",
    "freemail": "免费邮箱收件人",
    "competitor": "竞争对手收件人",
    "forward": "客户邮件被转发到私人地址",
    "cross_owner": "其他业务员负责的客户",
    "undecodable": "无法读取的部分",
    "encrypted": "加密的部分",
    "uninspected": "无法检查的部分",
    "timeout": "检查超时",
    "limit": "超出检查范围的内容",
    "memory": "检查所需内存过大",
    "error": "检查失败",
}
_WHERE_ZH = {
    "body": "正文",
    "html": "正文",
    "subject": "主题",
    "quoted": "引用的历史邮件",
    "signature": "签名",
    "recipient": "收件人",
}


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Decision:
    """The outcome of an evaluation: the most severe action among the findings.

    ``findings`` is sorted so that the deciding finding comes first. In audit mode
    ``enforced_action`` is ``"tag"`` whenever ``action`` is not ``"allow"``.
    """

    action: str
    findings: list[Finding] = field(default_factory=list)
    mode: str = "enforce"
    enforced_action: str = "allow"

    @property
    def deciding(self) -> Finding | None:
        """The finding that explains :attr:`action` (None when nothing was found)."""
        for f in self.findings:
            if f.action == self.action:
                return f
        return None

    def reason(self, language: str = "en") -> str:
        """One short line for the salesperson: the action, the deciding rule and the match."""
        f = self.deciding
        zh = language.lower().startswith("zh")
        if f is None:
            return "未发现问题" if zh else "No rule matched"
        match = _short(f.match)
        if zh:
            where = _WHERE_ZH.get(f.where, "附件 " + f.where.split(":", 1)[1]
                                  if f.where.startswith("attachment:") else f.where)
            kind = _KIND_ZH.get(f.kind, f.kind)
            return f"{_VERB_ZH.get(self.action, self.action)}：规则 {f.rule}，{where}中的{kind}“{match}”"
        where = f.where.replace("attachment:", "attachment ")
        kind = _KIND_EN.get(f.kind, f.kind)
        return f'{_VERB_EN.get(self.action, self.action)} by rule {f.rule}: {kind} "{match}" in {where}'

    def to_json(self) -> dict[str, object]:
        """``{"action", "findings": [{"rule","category","kind","match","severity"}]}``."""
        return {"action": self.action, "findings": [f.to_json() for f in self.findings]}
