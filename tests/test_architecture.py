"""The shape of the code, checked: the floors of docs/design.md, no import cycles, lazy imports
with a reason (on the import's lines), and the size limits of rooms and functions.

Every rule reads the source as text (``ast``); nothing is imported, so this runs in a second.
The floors and the list of files allowed past the size limit are read from docs/design.md, so the
map and the check cannot drift apart: change the map first, then the code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "beenet"
DESIGN = ROOT / "docs" / "design.md"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
LAZY_MARK = "# lazy:"


# --------------------------------------------------------------------------- reading the tree


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported beenet module (the longest dotted prefix that is a module)
    line: int
    in_function: bool


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mod: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from beenet import atomic`` imports the module beenet.atomic; ``from beenet import
            # __version__`` imports the package beenet itself.
            names = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name) if name.split(".")[0] == "beenet" else None
            if target and target != mod:
                found.append(Import(mod, target, node.lineno, id(node) in inside))
    return found


IMPORTS: list[Import] = [imp for mod, path in MODULES.items() for imp in _imports(mod, path)]


# --------------------------------------------------------------------------- the map


def read_floors(text: str) -> dict[str, int]:
    """``{unit: floor}`` from the design doc's floor table: rows ``| N | `unit`, `unit/` ... |``."""
    section = text.split("## Floors", 1)[1].split("\n## ", 1)[0]
    floors: dict[str, int] = {}
    for row in section.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|(.*?)\|", row)
        if m:
            for unit in re.findall(r"`([\w./]+)`", m.group(2)):
                floors["beenet." + unit.strip("/").replace("/", ".") if unit != "beenet" else "beenet"] = int(m.group(1))
    return floors


def read_large_files(text: str) -> set[str]:
    """Files of the design doc's table of rooms allowed over the size limit (each with its reason)."""
    section = text.split("## Rooms over", 1)[1].split("\n## ", 1)[0] if "## Rooms over" in text else ""
    return {m for row in section.splitlines() for m in re.findall(r"^\|\s*`(src/beenet/[\w/]+\.py)`", row)}


DESIGN_TEXT = DESIGN.read_text(encoding="utf-8")
FLOORS = read_floors(DESIGN_TEXT)


def unit_of(mod: str) -> str:
    """The unit of the map a module belongs to: the longest unit that is it or contains it."""
    parts = mod.split(".")
    for k in range(len(parts), 1, -1):
        name = ".".join(parts[:k])
        if name in FLOORS:
            return name
    if mod == "beenet":
        return mod
    raise AssertionError(f"{mod} is on no floor of docs/design.md (## Floors): add it to the table")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


# --------------------------------------------------------------------------- the rules


def test_the_map_has_floors_and_every_module_is_on_one() -> None:
    assert len(set(FLOORS.values())) >= 5, FLOORS
    for mod in MODULES:
        unit_of(mod)


def test_no_import_goes_up_a_floor() -> None:
    bad = []
    for imp in IMPORTS:
        a, b = unit_of(imp.source), unit_of(imp.target)
        if FLOORS[b] > FLOORS[a]:
            bad.append(f"{MODULES[imp.source].relative_to(ROOT)}:{imp.line} ({a}, floor {FLOORS[a]}) imports "
                       f"{imp.target} ({b}, floor {FLOORS[b]})")
    assert not bad, "imports from a lower floor to a higher one:\n" + "\n".join(bad)


def test_no_import_cycle_between_files() -> None:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        # A package's __init__ re-exports its modules: that edge down into the package is no loop.
        if imp.target.startswith(imp.source + "."):
            continue
        edges.setdefault(imp.source, set()).add(imp.target)
    assert not _cycles(edges), f"file import cycles: {_cycles(edges)}"


def test_no_import_cycle_between_units() -> None:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        a, b = unit_of(imp.source), unit_of(imp.target)
        if a != b:
            edges.setdefault(a, set()).add(b)
    assert not _cycles(edges), f"cycles between the units of docs/design.md: {_cycles(edges)}"


def test_every_import_inside_a_function_says_why() -> None:
    """Imports live at the top of a module; one inside a function keeps start-up fast (or an
    optional dependency optional) and says so on its line: ``# lazy: <reason>``."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    text = " ".join(lines[node.lineno - 1:node.end_lineno])
                    if LAZY_MARK not in text or not text.split(LAZY_MARK, 1)[1].strip():
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not bad, (f"imports inside functions without a '{LAZY_MARK} <reason>' comment ({len(bad)}):\n"
                     + "\n".join(bad))


def test_no_room_over_the_size_limit_without_a_reason() -> None:
    allowed = read_large_files(DESIGN_TEXT)
    big = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    unexplained = {p: n for p, n in big.items() if p not in allowed}
    assert not unexplained, (f"files over {MAX_FILE_LINES} lines with no reason in docs/design.md "
                             f"('## Rooms over {MAX_FILE_LINES} lines'): {unexplained}")
    stale = allowed - set(big)
    assert not stale, f"docs/design.md lists files that are no longer over the limit: {sorted(stale)}"


def test_no_function_over_the_size_limit() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = fn.end_lineno - fn.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


@pytest.mark.parametrize("text, expected", [
    ("## Floors\n| 1 | `errors`, `media/` |\n| 2 | `models/` |\n\n## Next\n| 9 | `cli/` |\n",
     {"beenet.errors": 1, "beenet.media": 1, "beenet.models": 2}),
])
def test_the_floor_table_is_read_as_written(text, expected) -> None:
    assert read_floors(text) == expected


def test_the_checks_catch_what_they_are_for() -> None:
    """The rules are not vacuous: a loop and an upward import in a made-up graph are found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []
    src = "def f():\n    import os\n    from beenet import x  # lazy: fast start\n"
    fns = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef)]
    assert [n.lineno for n in ast.walk(fns[0]) if isinstance(n, (ast.Import, ast.ImportFrom))] == [2, 3]
