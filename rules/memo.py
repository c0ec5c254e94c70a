"""Shared memo caches: the results of pure functions, kept across messages and threads.

The detectors judge the same text windows over and over (the same addresses and numbers recur
all through a thread's quoted history and from one message to the next), so a few verdicts
are remembered per policy. The gateway evaluates messages on several threads at once, and
a :class:`Memo` is safe to share between them because

* every value is a pure function of its key and of the (immutable) policy that owns the
  memo: whichever thread computes it, it is the same value, so a lookup can only miss or
  find the right value, and computing it twice is harmless;
* each operation is one dict operation (``get``, ``__setitem__``, ``clear``), which CPython
  makes atomic (the GIL; per-object locks in free-threaded builds); nothing reads a value
  in one operation and relies on it still being there in the next;
* the size bound is enforced by clearing: a clear racing with a store only costs misses
  (the bound may be passed by one entry per thread).

State that is not such a pure function (anything about the message being evaluated) lives
with the message (:class:`~mailwarden.rules.mail.Mail`) or the evaluation
(``Doc.cache``), never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, TypeVar

__all__ = ["Memo", "Memos"]

V = TypeVar("V")


class Memo(Generic[V]):
    """A bounded memo of a pure function's results (see the module docstring)."""

    __slots__ = ("_data", "max_entries", "get")

    def __init__(self, max_entries: int) -> None:
        self._data: dict[Hashable, V] = {}
        self.max_entries = max_entries
        #: ``get(key, default=None)``: the remembered value of *key*, or *default* (the dict's
        #: own method: lookups sit in the detectors' inner loops, most of them hits).
        self.get: Callable[..., Any] = self._data.get

    def put(self, key: Hashable, value: V) -> V:
        """Remember *value* for *key* (clearing the memo first when it is full); returns it."""
        data = self._data
        if len(data) > self.max_entries:
            data.clear()
        data[key] = value
        return value

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class Memos:
    """The memos of one policy (the only state that changes after the policy is built)."""

    email: Memo[Any] = field(default_factory=lambda: Memo(4096))  # address verdict by text window
    phone: Memo[Any] = field(default_factory=lambda: Memo(4096))  # digit-run verdict by text window
    phone_valid: Memo[Any] = field(default_factory=lambda: Memo(50_000))  # (digits, hinted) → E.164
    phone_shapes: Memo[Any] = field(default_factory=lambda: Memo(50_000))  # candidate → shape
    phone_e164: Memo[Any] = field(default_factory=lambda: Memo(10_000))  # customer phone → E.164
