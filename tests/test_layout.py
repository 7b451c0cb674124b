"""The package's shape (issue 9): no import cycles, no private names across modules, small modules.

Imports are read from the source (every ``import`` statement, at the top or
inside a function), so a cycle hidden in a function body counts too.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ["hdfs_models", "scoring"]
# Heavy or optional dependencies that must stay lazy (imported inside functions).
LAZY = ("tensorflow", "pyspark", "pyarrow", "hdfs_native")


def _modules(package: str) -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: pathlib.Path) -> list[tuple[str, list[str], bool]]:
    """(imported module, names taken from it, at module top?) for every import in a module."""
    tree = ast.parse(path.read_text(), str(path))
    top = set(map(id, tree.body))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names], id(node) in top))
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _ in _imports(name, path):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in modules and candidate != name:
                    graph[name].add(candidate)
                    break
    return graph


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles_counting_imports_inside_functions(package):
    graph = _graph(package)
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def _boundaries(package: str) -> set[str]:
    """Modules that import a lazy dependency at their top: importing them is what stays lazy."""
    return {
        name
        for name, path in _modules(package).items()
        if any(at_top and target.split(".")[0] in LAZY for target, _, at_top in _imports(name, path))
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_siblings_are_imported_at_the_top_and_no_private_name_crosses_modules(package):
    late, private = [], []
    boundaries = _boundaries(package)
    for name, path in _modules(package).items():
        for target, names, at_top in _imports(name, path):
            if target.split(".")[0] == package and not at_top and target not in boundaries:
                late.append(f"{name} imports {target} inside a function")
            if target.split(".")[0] == package and any(n.startswith("_") and n != "__version__" for n in names):
                # importing a private *module* from its package is fine; a private name is not
                if not all(f"{target}.{n}" in _modules(package) for n in names if n.startswith("_")):
                    private.append(f"{name}: from {target} import {', '.join(names)}")
    assert late == [] and private == []


@pytest.mark.parametrize("package", PACKAGES)
def test_heavy_dependencies_stay_lazy(package):
    """Only boundary modules import them at the top, and nothing imports a boundary module at its top."""
    boundaries = _boundaries(package)
    eager = [
        f"{name} imports {target} at module top"
        for name, path in _modules(package).items()
        for target, _, at_top in _imports(name, path)
        if at_top and target in boundaries
    ]
    assert eager == []


@pytest.mark.parametrize("package", PACKAGES)
def test_at_most_15_modules_at_the_top_and_none_over_400_lines(package):
    top = sorted(p.name for p in (ROOT / package).glob("*.py"))
    if package == "hdfs_models":  # scoring stays flat: spark-submit takes scoring/job.py
        assert len(top) <= 15, top
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_one_manifest_name_literal(package):
    literals = [
        str(path.relative_to(ROOT))
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value == "MANIFEST.json"
    ]
    assert literals == (["hdfs_models/_manifest.py"] if package == "hdfs_models" else [])


def test_scoring_dependencies_point_one_way():
    """The RDD and column faces take a runner (not the Scorer); parsing signatures reads nothing;
    the core (hdfs_models without its commands) never imports scoring. scoring may use
    hdfs_models internals: one distribution, released together (DESIGN.md, layers)."""
    graph = _graph("scoring")
    for face in ("scoring._faces", "scoring._runner"):
        assert graph[face] and "scoring._scorer" not in graph[face], face
    assert graph["scoring._signature"] <= {"scoring.errors"}
    upward = [
        f"{name}: imports {target}"
        for name, path in _modules("hdfs_models").items()
        if not name.startswith("hdfs_models.cli")
        for target, _, _ in _imports(name, path)
        if target.split(".")[0] == "scoring"
    ]
    assert upward == []
