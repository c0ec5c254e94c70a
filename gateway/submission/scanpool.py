"""Rules evaluations of messages with attachments, in worker processes that can be killed.

A document reader cannot be interrupted from inside: one call into a PDF or spreadsheet
library may run for seconds or take gigabytes, and a thread that does it holds the
interpreter lock the event loop needs. So a message that carries anything the attachment
readers open (see :func:`needs_worker`) is evaluated in one of ``[rules] scan_workers``
processes (spawned, each with the policy loaded once):

* each worker runs at a lower CPU priority (:data:`NICENESS`), so a scan that takes seconds
  does not slow the answers on the other connections;
* each worker limits its own address space (``RLIMIT_AS``: what it held after loading the
  policy plus ``[rules] scan_memory_mb``); a scan past it fails there with ``MemoryError``
  (quarantined as ``EVALUATION_MEMORY``) or kills the worker;
* each scan has a wall-time limit (the evaluation's wall ceiling, :func:`~mailwarden.rules.budget.wall_ceiling_ms`,
  plus :data:`GRACE`): past it the worker is killed, not asked, and replaced;
* a scan that did not finish is quarantined with a readable reason
  (:func:`~mailwarden.rules.engine.held_unscanned`): never delivered unscanned, never lost.

Small text-only messages (what a salesperson writes all day) stay on the submission's
worker thread: they need no reader that can hang, and a process hop would cost them a second
parse (the signature shares the rules' parse of the message).

:meth:`ScanPool.evaluate` blocks; the submission calls it from its worker threads, so a
process runs at most one scan at a time and a thread waits for a free worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import resource
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from mailwarden.rules import CheckContext, CompanyProfile, Decision, Policy, RulesSettings
from mailwarden.rules.budget import wall_ceiling_ms
from mailwarden.rules.engine import budget_for, held_unscanned
from mailwarden.rules.mail import Mail

__all__ = ["ScanPool", "ScanSettings", "needs_worker", "INLINE_MAX", "GRACE", "default_workers",
           "DEFAULT_MEMORY_MB"]

log = logging.getLogger(__name__)

INLINE_MAX = 512 * 1024  # bytes of text bodies: more go to a worker
GRACE = 2.0  # seconds past the evaluation's own wall ceiling before the worker is killed
WAIT_FOR_WORKER = 300.0  # seconds a scan waits for a free worker before the message is held
RESPAWN_BACKOFF = (0.5, 2.0, 10.0)  # seconds between attempts to start a replacement
NICENESS = 5  # scans yield the CPU to the answers salespeople wait for (the delivery process: +10)
DEFAULT_MEMORY_MB = 1024  # [rules] scan_memory_mb
_READERLESS = ("image/", "audio/", "video/", "font/")  # carry no text: never opened
_INLINE_TYPES = ("text/plain", "text/html")


def default_workers() -> int:
    """``[rules] scan_workers`` when unset: one per core beyond the first, at least 2."""
    return max(2, min(8, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class ScanSettings:
    """``[rules] scan_workers`` and ``scan_memory_mb``."""

    workers: int
    memory_mb: int


def needs_worker(mail: Mail) -> bool:
    """True when evaluating *mail* may open a document reader, or it holds much text: any
    part that is not an unnamed text/plain or text/html body or a picture, sound, video or
    font, or text bodies of more than :data:`INLINE_MAX` bytes together; a structure the
    scanner cannot read counts as such a part. Pictures do not count towards the size: the
    rules cut them out unread (a quote with a 50 MB photo stays on the thread)."""
    try:
        parts = mail.structure.walk()
    except Exception:  # noqa: BLE001 - unreadable structure: the careful path
        return True
    text = 0
    for part in parts:
        if part.children:
            continue
        ctype = part.ctype
        if ctype.startswith(_READERLESS):
            continue
        if ctype not in _INLINE_TYPES:
            return True
        try:
            named = part.headers.get_filename() is not None or part.disposition == "attachment"
        except Exception:  # noqa: BLE001
            return True
        if named:  # an attachment: read by the attachment readers by its name
            return True
        text += part.end - part.body_start
        if text > INLINE_MAX:
            return True
    return False


def _vm_size() -> int:
    """This process's virtual memory size in bytes."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _worker_main(conn: Connection, company: CompanyProfile, settings: RulesSettings, memory_mb: int) -> None:
    """A scan worker: load the policy, limit the address space, then evaluate until the pipe closes."""
    import signal  # noqa: PLC0415

    from mailwarden.rules import evaluate, load_policy  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for serve; it closes the pipe
    os.nice(NICENESS)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s scan-worker %(message)s")
    policy = load_policy(company, settings)
    if memory_mb > 0:
        limit = _vm_size() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")
    while True:
        try:
            message = conn.recv_bytes()
            ctx, version = conn.recv()
        except (EOFError, OSError):
            return
        if version != policy.version:  # the gateway loaded its rules again: so does this worker
            try:
                policy = load_policy(company, settings)
            except Exception as exc:  # noqa: BLE001 - the gateway loaded them; keep the old ones meanwhile
                logging.getLogger(__name__).error("cannot load the rules again: %s", exc)
        try:
            decision: Any = evaluate(policy, message, ctx)
        except MemoryError:
            decision = "memory"
        del message
        try:
            conn.send(decision)
        except MemoryError:
            conn.send("memory")


class _Worker:
    __slots__ = ("proc", "conn", "_killed")

    def __init__(self, proc: Any, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self._killed = threading.Lock()

    def kill(self) -> None:
        """Kill the process and close its pipe, once: a scan past its time and the pool's close
        may both do it at the same moment."""
        if not self._killed.acquire(blocking=False):
            return
        try:
            self.proc.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.proc.join(5)
        try:
            self.conn.close()
        except OSError:  # closed under us by the process's end
            pass


class ScanPool:
    """Up to ``scan.workers`` scan processes for *policy* (its company and settings are
    what each worker loads); :meth:`evaluate` runs one evaluation in one of them.

    The workers start with the first scan that needs one (a gateway that only ever sees text
    pays nothing), each in the background; one killed or dead is replaced the same way."""

    def __init__(self, policy: Policy, scan: ScanSettings) -> None:
        self.policy = policy  # this process's copy: for the decisions about scans that did not finish
        self.scan = scan
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.killed = 0  # workers killed past their time limit

    def update(self, policy: Policy) -> None:
        """Scan with *policy* from now on: each worker loads it (from the same files and
        settings) before its next scan, seeing that the version it is sent differs."""
        self.policy = policy

    # -- workers -----------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(self.scan.workers):
            self._add_later()

    def _add_later(self) -> None:
        threading.Thread(target=self._add, name="mailwarden-scan-start", daemon=True).start()

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, name="mailwarden-scan", daemon=True,
                                 args=(child, self.policy.company, self.policy.settings, self.scan.memory_mb))
        proc.start()
        child.close()
        w = _Worker(proc, parent)
        with self._lock:
            self._all.add(w)
        return w

    def _ready(self, w: _Worker) -> None:
        """Wait for *w* to have loaded the policy."""
        hello = None
        if w.conn.poll(120):
            try:
                hello = w.conn.recv()
            except (EOFError, OSError):
                pass
        if hello != "ready":
            self._drop(w)
            raise RuntimeError(f"a scan worker did not start (exit code {w.proc.exitcode})")

    def _drop(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._all.discard(w)

    def _replace(self, w: _Worker) -> None:
        """Kill *w* and start a replacement in the background (the caller does not wait)."""
        self._drop(w)
        if not self._closed:
            self._add_later()

    def _add(self) -> None:
        """Start one worker and make it available; keep trying, the pool must not shrink for good."""
        for attempt in range(1_000_000):
            if self._closed:
                return
            try:
                w = self._spawn()
                self._ready(w)
            except Exception as exc:  # noqa: BLE001
                delay = RESPAWN_BACKOFF[min(attempt, len(RESPAWN_BACKOFF) - 1)]
                log.error("cannot start a scan worker (%s); trying again in %g s", exc, delay)
                time.sleep(delay)
                continue
            if self._closed:
                self._drop(w)
                return
            log.info("scan worker %d ready", w.proc.pid)
            self._idle.put(w)
            return

    def close(self) -> None:
        """Stop every worker (a scan in progress is cut off: its caller gets a quarantine)."""
        self._closed = True
        self._idle.put(None)  # wakes a caller waiting for a worker
        with self._lock:
            workers = list(self._all)
        for w in workers:
            self._drop(w)

    # -- scans -------------------------------------------------------------

    def time_limit(self, size: int) -> float:
        """Seconds a scan of a message of *size* bytes may take before its worker is killed."""
        return wall_ceiling_ms(budget_for(self.policy.settings, size)) / 1000.0 + GRACE

    def evaluate(self, message: bytes, ctx: CheckContext) -> Decision:
        """The rules' decision on *message*, evaluated in a worker; a scan that did not finish
        (killed past :meth:`time_limit`, out of memory, the worker dead) is a quarantine."""
        self._start()
        try:
            w = self._idle.get(timeout=WAIT_FOR_WORKER)
        except queue.Empty:
            w = None
        if w is None:
            if self._closed:
                self._idle.put(None)
            return held_unscanned(self.policy, "error", "no scan worker was available")
        limit = self.time_limit(len(message))
        try:
            w.conn.send_bytes(message)  # from the buffer: no pickled copy of a large message
            w.conn.send((ctx, self.policy.version))
            if not w.conn.poll(limit):
                self.killed += 1
                self._replace(w)
                log.warning("scan worker killed after %.1f s (operator=%s): message held", limit, ctx.operator)
                return held_unscanned(self.policy, "timeout",
                                      f"scan stopped after {limit:.1f} s wall time (the scan worker was killed)")
            result = w.conn.recv()
        except (EOFError, OSError):
            code = w.proc.exitcode
            self._replace(w)
            log.warning("scan worker died (exit code %s, operator=%s): message held", code, ctx.operator)
            return held_unscanned(self.policy, "memory" if code is not None and code < 0 else "error",
                                  f"the scan worker ended during the scan (exit code {code}; over its memory limit?)")
        if result == "memory":
            self._replace(w)  # a worker that ran out of memory is not trusted with the next scan
            return held_unscanned(self.policy, "memory",
                                  f"the scan needs more than {self.scan.memory_mb} MB")
        self._idle.put(w)
        return result
