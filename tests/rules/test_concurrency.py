"""The compiled policy is shared by the threads that evaluate messages: immutable once built,
and concurrent evaluations decide exactly as serial ones."""

from __future__ import annotations

import dataclasses
import random
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailwarden.rules import Policy, RulesSettings, evaluate, load_policy
from tests.rules.rulesutil import COMPANY, CTX, make_message

_LINES = [
    "Please call me on my mobile 138 0013 8000 tonight.",
    "My WeChat: tom_private88, WhatsApp +86 139 1234 5678",
    "Write to tom.li at gmail dot com or tom_li@163.com",
    "我的私人微信：zhang_8888，手机一三八零零一三八零零零",
    "Order No. 4500123456, HS code 9405.40.90, unit price USD 12.50",
    "I am starting my new company next month, 新公司 contact me privately",
    "Official line +86 755 8888 6666, buyer@acme-imports.com is in copy",
    "QQ 123456789 or telegram @tomli_trade",
]


def _corpus() -> list[bytes]:
    rng = random.Random(3)
    out = []
    for i in range(24):
        new = "\n".join(rng.sample(_LINES, 3))
        history = "".join(f"\n\nOn Mon, 4 Mar 2024, John <buyer@acme-imports.com> wrote:\n> {rng.choice(_LINES)}\n"
                          f"> Mobile: +1 650 253 000{i % 10}\n" for _ in range(rng.randint(0, 4)))
        html = f"<p>{rng.choice(_LINES)}</p><div class=\"gmail_quote\">{rng.choice(_LINES)}</div>" if i % 3 == 0 else None
        charset = "gbk" if i % 4 == 1 else "utf-8"
        out.append(make_message(new + history, html=html, charset=charset).as_bytes())
    return out


def test_the_policy_cannot_be_changed_once_built(policy: Policy) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.mode = "audit"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.rules["EXTRA"] = policy.rules["PRIVATE_PHONE"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.extra["signature_check"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.severity_actions["high"] = "allow"  # type: ignore[index]


def test_concurrent_evaluations_decide_as_serial_ones() -> None:
    corpus = _corpus()
    serial_policy = load_policy(COMPANY, RulesSettings(budget_ms=60_000))
    expected = [evaluate(serial_policy, raw, CTX) for raw in corpus]
    # the corpus exercises every detector that keeps memos, and more than one outcome
    assert {f.kind for d in expected for f in d.findings} >= {"phone", "email", "wechat"}
    assert len({d.action for d in expected}) > 1

    # A fresh policy, so that its memos fill up while the threads race; switch threads often.
    shared = load_policy(COMPANY, RulesSettings(budget_ms=60_000))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        def run(seed: int) -> list[tuple[int, object]]:
            order = list(range(len(corpus))) * 3
            random.Random(seed).shuffle(order)
            return [(i, evaluate(shared, corpus[i], CTX)) for i in order]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(run, range(8)))
    finally:
        sys.setswitchinterval(old)
    for per_thread in results:
        for i, decision in per_thread:
            assert decision == expected[i], i
