"""mailwarden serve: run the gateway."""

from __future__ import annotations

import asyncio
import logging

import typer
from mailwarden.gateway.config import ConfigError
from mailwarden.gateway.server import SECTIONS, Gateway, run
from mailwarden.rules import RulesConfigError
from mailwarden.signatures import SignatureTemplateError

from .common import fail, store


def serve(ctx: typer.Context) -> None:
    """Run the gateway: SMTP submission for the salespeople, relay to the company mailbox."""
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))
    with store(ctx, SECTIONS) as (cfg, st):
        try:
            gw = Gateway(cfg, st, delivery_process=True)
        except (ConfigError, SignatureTemplateError, RulesConfigError) as exc:
            fail(str(exc))
        st.audit.append(actor="system", action="gateway.start")
        try:
            asyncio.run(run(gw))
        except OSError as exc:  # a port in use, a certificate that cannot be read
            fail(f"cannot start: {exc}")
        st.audit.append(actor="system", action="gateway.stop")
