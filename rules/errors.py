"""Errors raised by the rules package."""

from __future__ import annotations

__all__ = ["RulesConfigError"]


class RulesConfigError(Exception):
    """A rule pack or word list is wrong; names the file, the line or key, and the problem."""

    def __init__(self, file: object, where: object, problem: str) -> None:
        self.file = str(file)
        self.where = "" if where is None else str(where)
        self.problem = problem
        loc = f"{self.file}: {self.where}" if self.where else self.file
        super().__init__(f"{loc}: {problem}")
