"""One logging set-up for every mailwarden process (the CLI, serve and its delivery process)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import datetime, timezone

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ENV_FORMAT = "MAILWARDEN_LOG_FORMAT"  # text | json; serve's delivery process inherits it
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for journald, Loki, Elasticsearch): ``ts`` (UTC, ISO 8601),
    ``level``, ``logger``, ``pid``, ``message`` and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "pid": record.process,
                 "message": record.getMessage()}
        if record.exc_info and record.exc_info[0] is not None:  # exc_info=True outside an except: none
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_format(value: str | None = None) -> str:
    """``value``, else ``$MAILWARDEN_LOG_FORMAT``, else text; anything else is a ValueError."""
    chosen = (value if value is not None else os.environ.get(ENV_FORMAT, "")).strip().lower() or "text"
    if chosen not in FORMATS:
        raise ValueError(f"log format {chosen!r} ({ENV_FORMAT} or --log-format): use text or json")
    return chosen


def configure(level: int, fmt: str | None = None) -> None:
    """Log to standard error at ``level``, as text lines or JSON Lines (``fmt``, see :func:`log_format`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format(fmt) == "json" else logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])  # a no-op where handlers exist (under pytest)
    # Library chatter would bury the gateway's own lines.
    for noisy in ("alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class LineLimiter:
    """Keeps a flood of one kind of line (a login failure per attempt, a refused connection per
    connect) from filling the disk: at most ``burst`` lines of a kind per ``window`` seconds;
    the first line after a quiet spell says how many were left out."""

    def __init__(self, burst: int = 20, window: float = 10.0, clock: Callable[[], float] | None = None) -> None:
        import time

        self.burst = burst
        self.window = window
        self.clock = clock or time.monotonic
        self._kinds: dict[str, list[float | int]] = {}  # kind: [window start, lines in it, left out]

    def __call__(self, logger: logging.Logger, kind: str, msg: str, *args: object, level: int = logging.INFO) -> None:
        now = self.clock()
        state = self._kinds.get(kind)
        if state is None or now - state[0] >= self.window:
            left_out = int(state[2]) if state is not None else 0
            state = self._kinds[kind] = [now, 0, 0]
            if len(self._kinds) > 1000:  # kinds are few and fixed; never let them grow unbounded
                self._kinds = {kind: state}
            if left_out:
                logger.log(level, "%s: %d similar lines left out in the last %gs", kind, left_out, self.window)
        if state[1] >= self.burst:
            state[2] = int(state[2]) + 1
            return
        state[1] = int(state[1]) + 1
        logger.log(level, msg, *args)


limited_log = LineLimiter()
"""The gateway's one limiter of repeated lines (one event loop: no locking needed)."""
