"""Typed reading of one TOML table, with errors that name the file, the section and the key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem a person can fix; ``str()`` names file, key and problem."""


class Secret:
    """A string that never prints itself (passwords, keys)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class TableReader:
    """Typed access to one section, with errors that name file, section and key."""

    def __init__(self, where: str, section: str, data: Any) -> None:
        self.where = where
        self.section = section
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        self.data = data

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: [{self.section}] {key}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, required: bool = False) -> Any:
        if key not in self.data:
            if required or default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be {_article(name)} {name}, not {type(value).__name__}")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(key, "must be a list of non-empty strings")
        return tuple(item.strip() for item in value)

    def hostport(self, key: str, default: str | None = ..., *, required: bool = False) -> HostPort | None:  # type: ignore[assignment]
        value = self.get(key, str, default, required=required)
        if value is None or value == "":
            return None
        return parse_hostport(value, lambda problem: self.fail(key, problem))

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def duration(self, key: str, default: str) -> float:
        value = self.get(key, (str, int, float), default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def path(self, key: str, base: Path, default: Path | None = None) -> Path | None:
        value = self.get(key, str, None)
        if value is None:
            return default
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p)

    def unknown_keys(self, known: set[str]) -> None:
        extra = sorted(set(self.data) - known)
        if extra:
            raise self.fail(extra[0], f"unknown key (known keys: {', '.join(sorted(known))})")


def _article(name: str) -> str:
    return "an" if name[:1] in "aeiou" else "a"


def parse_hostport(value: str, fail: Any = None) -> HostPort:
    """``host:port`` or ``[v6]:port`` → HostPort."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\s\[\]]+):(\d+)", value.strip())
    if not m:
        problem = f"must look like host:port, not {value!r}"
        raise fail(problem) if fail else ValueError(problem)
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        problem = f"port {port} is out of range"
        raise fail(problem) if fail else ValueError(problem)
    return HostPort(host, port)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")


def parse_duration(value: str | int | float) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"4h"``, ``"5d"`` → seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.fullmatch(value.strip())
    if not m:
        raise ValueError(f"must be a duration like 30s, 15m, 4h or 5d, not {value!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


