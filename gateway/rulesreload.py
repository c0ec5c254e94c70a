"""Rule changes reach the running gateway, without a restart.

Once a second (never per message) the watch looks at two things:

* the store's rules epoch (:mod:`mailwarden.store.rulesstate`), which ``rules import-words`` and
  ``rules reload`` move: so every gateway sharing the store sees an admin's change;
* the size and modification time of the site packs, the word lists and the word-list
  directory's files: so a pack edited in place is seen too.

When either moved, the rules are loaded again on a worker thread and, if they load, the
submission judges the next message by them (a message being judged finishes with the old
ones).  Each load that changed the policy is an audit event (``rules.reloaded``: the old and
new version, the files that changed, and who moved the epoch); one that fails keeps the old
policy running, is logged and audited once (``rules.reload_failed``) and shown by ``rules
list`` and ``/healthz`` until a load succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwarden.rules import Policy, load_policy
from mailwarden.rules.context import CompanyProfile, RulesSettings
from mailwarden.store import StoreHandle
from mailwarden.store.db import writer_engine
from mailwarden.store.rulesstate import current_epoch, epoch_info, record_loaded
from sqlmodel import Session

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between looks
SEEN_EVERY = 60.0  # seconds between the writes that say this gateway is still there

Fingerprint = tuple[tuple[str, int, int], ...]


def gateway_name(data_dir: Path) -> str:
    """How ``rules list`` names this gateway: its host and data directory."""
    return f"{socket.gethostname()}:{data_dir}"


def fingerprint(settings: RulesSettings) -> Fingerprint:
    """Name, size and modification time of every file the rules are loaded from (-1 when missing)."""
    files = [Path(p) for p in (*settings.packs, *settings.word_lists)]
    for d in settings.word_dirs:
        try:
            files += sorted(p for p in Path(d).glob("*.txt"))
        except OSError:
            pass
    out = []
    for p in files:
        try:
            st = os.stat(p)
            out.append((str(p), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


@dataclass
class RulesState:
    """What this gateway runs, for ``/healthz``."""

    version: str
    epoch: int
    problem: str | None = None


class RulesWatch:
    """Loads the rules again when the store's epoch or the files moved; *apply* gets each new policy."""

    def __init__(self, store: StoreHandle, company: CompanyProfile, settings: RulesSettings, policy: Policy,
                 apply: Callable[[Policy], None], *, name: str, interval: float = INTERVAL) -> None:
        self.store = store
        self.company = company
        self.settings = settings
        self.apply = apply
        self.name = name
        self.interval = interval
        self.policy = policy
        self.files = fingerprint(settings)
        self.state = RulesState(policy.version, current_epoch(engine=store.engine))
        self._since_seen = 0.0

    def start_record(self) -> None:
        """Say in the store what this gateway runs (at start)."""
        with Session(writer_engine(self.store.engine)) as s:
            record_loaded(session=s, gateway=self.name, version=self.policy.version, epoch=self.state.epoch,
                          error=None, loaded=True)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # the store away for a moment: look again next time
                log.exception("cannot check for rule changes")

    def check(self) -> bool:
        """One look (on a worker thread); True when a new policy was applied.  What it saw is
        taken as seen only once its audit event is written: a store away meanwhile means the
        next look tries again."""
        epoch = current_epoch(engine=self.store.engine)
        files = fingerprint(self.settings)
        self._since_seen += self.interval
        if epoch == self.state.epoch and files == self.files:
            if self._since_seen >= SEEN_EVERY:
                self._record(loaded=False)
            return False
        changed = sorted({f[0] for f in set(files) ^ set(self.files)})
        old = self.policy
        try:
            policy = load_policy(self.company, self.settings)
            if epoch == self.state.epoch:  # a word list the CLI renamed into place just before it moved the epoch
                epoch = current_epoch(engine=self.store.engine)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the old policy goes on
            problem = str(exc)
            if problem != self.state.problem:
                log.error("the rules did not load (%s); the gateway keeps the rules of version %s", problem,
                          old.version)
                self._audit("rules.reload_failed", epoch, changed, error=problem, running=old.version)
            self.files, self.state.epoch, self.state.problem = files, epoch, problem
            self._record(loaded=False)
            return False
        if policy.version == old.version:
            self.files, self.state.epoch, self.state.problem = files, epoch, None
            self._record(loaded=False)
            return False
        # Recorded before it is in force: no message is judged by rules the audit does not know yet.
        self._audit("rules.reloaded", epoch, changed, version=policy.version, before=old.version)
        self.policy = policy
        self.apply(policy)
        self.files = files
        self.state = RulesState(policy.version, epoch)
        log.info("rules loaded again: version %s (was %s)", policy.version, old.version)
        self._record(loaded=True)
        return True

    def _audit(self, action: str, epoch: int, files: list[str], **detail: object) -> None:
        """The event of a load; when *epoch* moved, it names who moved it and why."""
        with Session(writer_engine(self.store.engine)) as s:
            by: dict[str, object] = {}
            if epoch != self.state.epoch:
                info = epoch_info(session=s)
                by = {"epoch": epoch, "changed_by": info.changed_by, "change": info.change}
            self.store.audit.append(actor="system", action=action, target=self.name, session=s,
                                    files=files, **by, **detail)
            s.commit()

    def _record(self, *, loaded: bool) -> None:
        self._since_seen = 0.0
        with Session(writer_engine(self.store.engine)) as s:
            record_loaded(session=s, gateway=self.name, version=self.state.version, epoch=self.state.epoch,
                          error=self.state.problem, loaded=loaded)
