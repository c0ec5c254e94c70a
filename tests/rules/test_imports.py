"""The rules and the signatures import one way: no file import cycles in either package, and
nothing in ``rules/`` imports ``signatures/`` (the signatures import the mail model from the
rules)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"rules": "mailwarden.rules", "signatures": "mailwarden.signatures"}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, name in PACKAGES.items():
        for f in (ROOT / folder).rglob("*.py"):
            rel = f.relative_to(ROOT / folder).with_suffix("").parts
            out[".".join((name, *rel)).removesuffix(".__init__")] = f
    return out


def _imports(mod: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The modules of both packages that *path* imports, at the top or inside a function
    (``from . import x`` imports the module x, not its package)."""
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            subs = {f"{target}.{a.name}" for a in node.names} & mods.keys()
            out |= subs or ({target} & mods.keys())
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names} & mods.keys()
    out.discard(mod)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {mod: _imports(mod, path, mods) for mod, path in mods.items()}


def test_no_file_import_cycles_in_rules_and_signatures() -> None:
    graph = _graph()
    cycles = []
    done: set[str] = set()

    def visit(mod: str, path: list[str]) -> None:
        for dep in sorted(graph[mod]):
            if dep in path:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in done:
                visit(dep, [*path, dep])
        done.add(mod)

    for mod in sorted(graph):
        if mod not in done:
            visit(mod, [mod])
    assert not cycles


def test_the_rules_never_import_the_signatures() -> None:
    graph = _graph()
    assert not [(m, d) for m, deps in graph.items() for d in deps
                if m.startswith("mailwarden.rules") and d.startswith("mailwarden.signatures")]
    assert "mailwarden.rules.mail" in graph["mailwarden.signatures.insert"] | {
        d.rsplit(".", 1)[0] for d in graph["mailwarden.signatures.insert"]}


def test_the_graph_sees_imports() -> None:
    graph = _graph()
    assert "mailwarden.rules.detectors.fixedscan" in graph["mailwarden.rules.detectors.emails"]
    assert "mailwarden.rules.detectors.phones" in graph["mailwarden.rules.detectors.handles"]  # in a function
