"""Dependencies inside ``scoring`` point one way (issue 9), read from the source with ``ast``.

Imports inside functions count. A cycle or a ``from x import _private`` across
modules fails with the modules named.
"""

import ast
import pathlib

import scoring

PACKAGE = pathlib.Path(scoring.__file__).parent


def _imports() -> dict[str, list[tuple[str, str]]]:
    """Module → [(imported module, imported name)] for every import in ``scoring``."""
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        module = "scoring" if path.stem == "__init__" else f"scoring.{path.stem}"
        edges = found.setdefault(module, [])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                edges += [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                edges += [(alias.name, "") for alias in node.names]
    return found


def _sibling_graph() -> dict[str, set[str]]:
    imports = _imports()
    graph: dict[str, set[str]] = {m: set() for m in imports if m != "scoring"}
    for module in graph:
        for target, name in imports[module]:
            for candidate in (target, f"{target}.{name}"):
                if candidate in graph and candidate != module:
                    graph[module].add(candidate)
    return graph


def test_no_import_cycle_counting_function_level_imports():
    graph = _sibling_graph()
    assert graph["scoring._rows"] and graph["scoring._udf"], "the graph must see sibling imports"
    cycles = []

    def visit(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                cycles.append(path)
            elif nxt not in path:
                visit(start, nxt, [*path, nxt])

    for module in graph:
        visit(module, module, [module])
    assert cycles == []


def test_faces_do_not_import_the_scorer():
    graph = _sibling_graph()
    for face in ("scoring._rows", "scoring._udf", "scoring._runner", "scoring._signature"):
        assert "scoring._scorer" not in graph[face], face
    assert "scoring._source" not in graph["scoring._signature"], "parsing must not read"


def test_no_private_names_and_only_public_hdfs_models_modules():
    bad = []
    for module, edges in _imports().items():
        for target, name in edges:
            if name.startswith("_") and not name.startswith("__"):
                bad.append(f"{module}: from {target} import {name}")
            if target.startswith("hdfs_models") and any(p.startswith("_") for p in target.split(".")):
                bad.append(f"{module}: from {target} (a private hdfs_models module)")
    assert bad == []
