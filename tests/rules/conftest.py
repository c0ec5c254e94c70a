"""Fixtures for the rules engine tests."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Callable

import pytest

from mailwarden.rules import CheckContext, Decision, Policy, RulesSettings, evaluate, load_policy
from tests.rules.rulesutil import COMPANY, CTX


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(COMPANY, RulesSettings())


@pytest.fixture
def check(policy: Policy) -> Callable[..., Decision]:
    def run(msg: EmailMessage | bytes, ctx: CheckContext = CTX) -> Decision:
        data = msg if isinstance(msg, bytes) else msg.as_bytes()
        return evaluate(policy, data, ctx)

    return run


