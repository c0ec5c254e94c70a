"""The evaluation time budget."""

from __future__ import annotations

import time

__all__ = ["Deadline", "EvaluationTimeout"]


class EvaluationTimeout(Exception):
    """Raised by :meth:`Deadline.check` once the budget is spent."""


class Deadline:
    """Checked between steps; a step that overruns is caught at the next check."""

    __slots__ = ("start", "limit")

    def __init__(self, budget_ms: float) -> None:
        self.start = time.perf_counter()
        self.limit = self.start + budget_ms / 1000.0 if budget_ms > 0 else float("inf")

    def check(self) -> None:
        """Raise :class:`EvaluationTimeout` when the budget is exceeded."""
        if time.perf_counter() > self.limit:
            raise EvaluationTimeout()

    def elapsed_ms(self) -> float:
        """Milliseconds since the start."""
        return (time.perf_counter() - self.start) * 1000.0
