"""Reading rule-pack TOML: the file, and checks whose errors name the file, the key and the
problem (shared by the policy loader and the context layer's lexicon)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import RulesConfigError

__all__ = ["check_choice", "check_table", "err", "load_toml", "str_set"]


def err(file: object, key: str, problem: str) -> RulesConfigError:
    """The error for *problem* at *key* of *file*."""
    return RulesConfigError(file, key, problem)


def load_toml(path: Path) -> dict[str, Any]:
    """The TOML file at *path* (errors: not found, unreadable, invalid)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise err(path, "", "file not found") from None
    except OSError as e:
        raise err(path, "", f"cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise err(path, "", f"invalid TOML: {e}") from None


def str_set(v: Any, path: Path, key: str, lower: bool = True) -> frozenset[str]:
    """A string or a list of strings (or numbers), as a set."""
    items = [v] if isinstance(v, (str, int)) else v
    if not isinstance(items, list) or not all(isinstance(x, (str, int)) for x in items):
        raise err(path, key, "must be a string or a list of strings")
    return frozenset(str(x).lower() if lower else str(x) for x in items)


def check_table(raw: Any, path: Path, where: str, keys: set[str]) -> None:
    """*raw* must be a TOML table with only *keys* (errors name *where* and the key)."""
    if not isinstance(raw, dict):
        raise err(path, where, "must be a table")
    for k in raw:
        if k not in keys:
            raise err(path, f"{where}.{k}", "unknown key")


def check_choice(v: Any, choices: tuple[str, ...], path: Path, key: str) -> str:
    """*v*, lower case, when it is one of *choices*."""
    if not isinstance(v, str) or v.lower() not in choices:
        raise err(path, key, f"{v!r} is not one of {', '.join(choices)}")
    return v.lower()
