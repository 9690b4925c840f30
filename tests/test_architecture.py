"""The package's shape: no import circle (but tensor <-> functions), few top-level modules,
every command in the cli package, and no path that points outside the repository."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "neuralab"
ROOT = PKG.parents[1]
# tensor <-> functions is the one deliberate circle: a Tensor's methods run the ops, and
# the ops make Tensors (as in teenygrad).
ALLOWED = [{"neuralab.tensor", "neuralab.functions"}]


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the neuralab modules it imports (anywhere in the file, functions included).

    ``from .a import b`` is an edge to ``a.b`` when that is a module, else to ``a``.
    """
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target
                         for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in found if t in mods and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(comp)
    return out


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_but_tensor_and_functions():
    found = [c for c in circles(import_graph()) if c not in ALLOWED]
    assert not found, f"import circles: {[sorted(c) for c in found]}"


def test_few_modules_at_the_top_of_the_package():
    top = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
    assert len(top) <= 14, top


def test_every_command_is_defined_in_the_cli_package():
    places = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                    if re.search(r"@(click\.|\w+\.)?(command|group)\(", p.read_text(encoding="utf-8"))
                    and p.relative_to(PKG).parts[0] != "cli")
    assert not places, f"click commands outside neuralab/cli: {places}"


@pytest.mark.parametrize("folder", ["src", "docs", "examples", "benchmarks"])
def test_nothing_points_outside_the_repository(folder):
    pattern = re.compile(r"\.\./shared|DESIGN\.md|parents\[\d\]\s*/\s*\"shared\"")
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / folder).rglob("*")
           if p.is_file() and p.suffix in {".py", ".md", ".toml", ".txt", ".js", ".html"}
           and "egg-info" not in str(p)
           for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
           if pattern.search(line)]
    assert not bad, bad
