"""Log lines as JSON (--log-format json / MAILWARDEN_LOG_FORMAT=json), in a process of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mailwarden.gateway.logsetup import log_format

PROGRAM = """
import logging
from mailwarden.gateway import logsetup
logsetup.configure(logging.INFO)
log = logging.getLogger("mailwarden.gateway.test")
log.info("login ok peer=%s operator=%s", "127.0.0.1", "zhang")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it broke: 中文")
"""


def _run(fmt: str) -> list[str]:
    env = {**os.environ, "MAILWARDEN_LOG_FORMAT": fmt}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stderr.splitlines()


def test_json_lines_carry_the_fields():
    lines = [json.loads(line) for line in _run("json")]
    assert [e["message"] for e in lines] == ["login ok peer=127.0.0.1 operator=zhang", "it broke: 中文"]
    first = lines[0]
    assert first["level"] == "INFO" and first["logger"] == "mailwarden.gateway.test" and first["pid"] > 0
    assert first["ts"].endswith("+00:00")
    assert "ZeroDivisionError" in lines[1]["exception"]


def test_text_is_the_default():
    lines = _run("")
    assert "INFO mailwarden.gateway.test: login ok peer=127.0.0.1" in lines[0]


def test_unknown_format_is_named():
    with pytest.raises(ValueError, match="'xml'.*MAILWARDEN_LOG_FORMAT.*text or json"):
        log_format("xml")


def test_exc_info_outside_an_except_adds_no_exception_field() -> None:
    import logging

    from mailwarden.gateway.logsetup import JsonFormatter
    record = logging.LogRecord("mailwarden.x", logging.ERROR, __file__, 1, "failed", None, (None, None, None))
    assert "exception" not in json.loads(JsonFormatter().format(record))
