"""The evaluation time budget: the evaluation's own CPU time, with wall time as a hard ceiling.

A saturated gateway runs many evaluations at once; each waits for a core (and, in one
process, for the interpreter lock). Counting wall-clock time would hold honest mail for a
supervisor just because the machine was busy, so the budget counts the CPU time of the thread
that evaluates (:func:`time.thread_time`: in a scan worker process, that worker's). Wall time
only matters far above it (:data:`WALL_FACTOR` times the budget, at least
:data:`MIN_WALL_MS`): a step stuck waiting is still stopped.
"""

from __future__ import annotations

import time

__all__ = ["Deadline", "EvaluationTimeout", "WALL_FACTOR", "MIN_WALL_MS", "wall_ceiling_ms"]

WALL_FACTOR = 10.0
MIN_WALL_MS = 2000.0


def wall_ceiling_ms(budget_ms: float) -> float:
    """The wall-time ceiling that goes with a CPU budget of *budget_ms*."""
    return max(WALL_FACTOR * budget_ms, MIN_WALL_MS)


class EvaluationTimeout(Exception):
    """Raised by :meth:`Deadline.check` once the budget is spent."""


class Deadline:
    """Checked between steps; a step that overruns is caught at the next check.

    ``budget_ms``: CPU time of the calling thread (0: no limit); ``wall_ms``: the ceiling on
    wall time (default :func:`wall_ceiling_ms` of the budget)."""

    __slots__ = ("start", "cpu_start", "cpu_limit", "wall_limit", "budget_ms")

    def __init__(self, budget_ms: float, wall_ms: float | None = None) -> None:
        self.start = time.perf_counter()
        self.cpu_start = time.thread_time()
        self.budget_ms = budget_ms
        if budget_ms > 0:
            self.cpu_limit = self.cpu_start + budget_ms / 1000.0
            self.wall_limit = self.start + (wall_ms if wall_ms is not None else wall_ceiling_ms(budget_ms)) / 1000.0
        else:
            self.cpu_limit = self.wall_limit = float("inf")

    def check(self) -> None:
        """Raise :class:`EvaluationTimeout` when the CPU budget or the wall ceiling is exceeded."""
        if time.thread_time() > self.cpu_limit or time.perf_counter() > self.wall_limit:
            raise EvaluationTimeout()

    def elapsed_ms(self) -> float:
        """Wall-clock milliseconds since the start."""
        return (time.perf_counter() - self.start) * 1000.0

    def cpu_ms(self) -> float:
        """CPU milliseconds the calling thread spent since the start."""
        return (time.thread_time() - self.cpu_start) * 1000.0

    def describe(self) -> str:
        """Which limit was passed, for the finding: ``"cpu 231 ms > 201 ms"`` or the wall ceiling."""
        cpu = self.cpu_ms()
        if cpu > self.budget_ms:
            return f"cpu {cpu:.0f} ms > {self.budget_ms:g} ms"
        wall = (self.wall_limit - self.start) * 1000.0
        return f"wall {self.elapsed_ms():.0f} ms > {wall:g} ms (cpu {cpu:.0f} ms)"
