"""Prometheus metrics (prometheus-client), served at ``/metrics`` on ``[listen] http``.

What each process counts where it happens: the submission its messages by action, the scan time
and the failed logins; the relay (in the delivery process) the upstream's errors.  The delivery
process is spawned with ``PROMETHEUS_MULTIPROC_DIR`` set to ``<data_dir>/metrics``, so its
counters live in the library's memory-mapped files there and ``/metrics`` adds them to serve's
own (:func:`render`); serve itself keeps its values in memory.  What the store knows (the queue)
and what serve holds (sessions, the upstream's health) is read when Prometheus asks.

Hooks for code that counts: :func:`message`, :func:`scanned`, :func:`login_failed`,
:func:`upstream_error`, and :func:`session_opened` / :func:`session_closed` per protocol (the
SMTP submission calls them; the IMAP server is to call them with ``"imap"``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mailwarden.store.models import SpoolItem
from mailwarden.store.spool import states as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR = "metrics"  # under the data directory: the delivery process's counters

MESSAGES = Counter("mailwarden_messages", "Messages submitted, by what the rules decided (refused: "
                   "turned away before the rules, e.g. too big or no recipient)", ["action"])
SCAN_SECONDS = Histogram("mailwarden_scan_seconds", "Time from a message's end of DATA to the rules' decision "
                         "(rules, signature and header rewrite; attachments read in a scan worker)",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
LOGIN_FAILURES = Counter("mailwarden_login_failures", "Failed logins of salespeople (SMTP and IMAP): a wrong "
                         "login or password, or refused while locked out", ["reason"])
UPSTREAM_ERRORS = Counter("mailwarden_upstream_errors", "Errors from the company mailbox: SMTP relay (temporary, "
                          "permanent), IMAP Sent copies, and failed logins of the start-up and health checks",
                          ["service", "kind"])
PROTOCOL_SESSIONS = Gauge("mailwarden_protocol_sessions", "Logged-in sessions by protocol, as the servers report "
                          "them", ["protocol"], multiprocess_mode="livesum")


def message(action: str) -> None:
    MESSAGES.labels(action).inc()


def scanned(seconds: float) -> None:
    SCAN_SECONDS.observe(seconds)


def login_failed(reason: str) -> None:
    LOGIN_FAILURES.labels(reason).inc()


def upstream_error(service: str, kind: str) -> None:
    UPSTREAM_ERRORS.labels(service, kind).inc()


def session_opened(protocol: str) -> None:
    PROTOCOL_SESSIONS.labels(protocol).inc()


def session_closed(protocol: str) -> None:
    PROTOCOL_SESSIONS.labels(protocol).dec()


# ---- the child's files ------------------------------------------------------------------------

def metrics_dir(data_dir: Path) -> Path:
    return data_dir / METRICS_DIR


def fresh_metrics_dir(data_dir: Path) -> Path:
    """An empty directory for the delivery process's counters (those of an earlier serve are
    gone with it: a counter starts again from 0 with serve, which Prometheus takes as a reset)."""
    path = metrics_dir(data_dir)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True)
    return path


@contextmanager
def multiprocess_env(path: Path | None) -> Iterator[None]:
    """``PROMETHEUS_MULTIPROC_DIR`` set while a child process is started, then as it was: the
    library chooses its mode when imported, so only the new process counts into files."""
    if path is None:
        yield
        return
    before = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before


# ---- what is read when asked -----------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What serve holds, read on its event loop before the rest is gathered in a thread."""

    sessions: int                  # logged-in sessions, SMTP and IMAP (the session registry)
    upstream_up: bool | None       # the last upstream login check; None: not checked yet


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _queue(engine: Engine) -> list[Metric]:
    depth = GaugeMetricFamily("mailwarden_queue_messages", "Spool items waiting, by stage (relay: to the upstream "
                              "SMTP; append: its Sent copy; notice; bounce; held: for a supervisor; shunt)",
                              labels=["stage"])
    age = GaugeMetricFamily("mailwarden_queue_oldest_seconds", "Age of the oldest spool item waiting, by stage "
                            "(0: none waiting)", labels=["stage"])
    now = datetime.now(timezone.utc)
    with Session(engine) as s:
        rows = s.exec(select(SpoolItem.stage, func.count(), func.min(SpoolItem.created_at))
                      .where(SpoolItem.stage.notin_((st.DONE, st.BOUNCED, st.REJECTED)))  # type: ignore[attr-defined]
                      .group_by(SpoolItem.stage)).all()
    found: dict[str, tuple[int, float]] = {}
    for stage, count, oldest in rows:
        name = st.state_name(stage)
        if isinstance(oldest, str):
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        seconds = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        n, a = found.get(name, (0, 0.0))
        found[name] = (n + count, max(a, seconds))
    for name in (*st.PENDING, st.HELD, st.SHUNT):
        n, a = found.get(name, (0, 0.0))
        depth.add_metric([name], n)
        age.add_metric([name], a)
    return [depth, age]


def _merged(own: list[Metric], files: list[Metric]) -> list[Metric]:
    """serve's families with the delivery process's counters and histograms added in."""
    by_name = {m.name: m for m in own}
    for fam in files:
        if fam.type not in ("counter", "histogram"):
            continue  # gauges are serve's alone
        mine = by_name.get(fam.name)
        if mine is None:
            by_name[fam.name] = fam
            continue
        index = {(s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(mine.samples)}
        for sample in fam.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in index:
                i = index[key]
                mine.samples[i] = mine.samples[i]._replace(value=mine.samples[i].value + sample.value)
            else:
                mine.samples.append(sample)
    return list(by_name.values())


def render(engine: Engine, snapshot: Snapshot, files_dir: Path | None) -> bytes:
    """The text exposition of every metric (blocking: the queue is a query)."""
    own = list(REGISTRY.collect())
    if files_dir is not None and files_dir.is_dir():
        files = [str(p) for p in files_dir.glob("*.db")]
        own = _merged(own, list(multiprocess.MultiProcessCollector.merge(files, accumulate=True)))
    sessions = GaugeMetricFamily("mailwarden_sessions", "Logged-in sessions now, SMTP and IMAP",
                                 value=snapshot.sessions)
    up = GaugeMetricFamily("mailwarden_upstream_up", "1 when the shared account's last upstream login check "
                           "worked, 0 when it failed (-1: not checked yet)",
                           value=-1 if snapshot.upstream_up is None else int(snapshot.upstream_up))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*own, sessions, up, *_queue(engine)]))
    return generate_latest(registry)
