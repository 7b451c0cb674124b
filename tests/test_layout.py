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


# -- the layer rule (issue 19): core < scorer library < applications ------------------------------

#: The applications: every command (the doctor, the batch job with --watch, the precision
#: comparison included) and the two thin files that hand their arguments to a command.
APPLICATIONS = ("hdfs_models.cli", "hdfs_models._doctor", "scoring.job", "scoring.precision")


def _layer(module: str) -> str:
    if any(module == a or module.startswith(a + ".") for a in APPLICATIONS):
        return "application"
    return "core" if module.split(".")[0] == "hdfs_models" else "scorer"


def layer_violations(imports: dict[str, set[str]]) -> list[str]:
    """Imports pointing down the wrong way: the core never imports scoring or an application,
    the scorer library never imports an application. ``imports``: module -> modules it imports."""
    rank = {"core": 0, "scorer": 1, "application": 2}
    return sorted(
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in imports.items()
        for target in targets
        if target.split(".")[0] in PACKAGES and rank[_layer(target)] > rank[_layer(module)]
    )


def _all_imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for package in PACKAGES:
        for name, path in _modules(package).items():
            out[name] = {target for target, _, _ in _imports(name, path)}
    return out


def test_layer_rule_core_then_scorer_then_applications():
    """scoring may use hdfs_models internals (one distribution, released together); nothing below
    an application imports one, and the core never imports scoring (DESIGN.md, layers)."""
    assert layer_violations(_all_imports()) == []


def test_layer_rule_reports_each_kind_of_violation():
    assert layer_violations(
        {
            "hdfs_models._publish": {"scoring._source"},  # core -> scorer
            "hdfs_models.cache._localize": {"hdfs_models.cli._score"},  # core -> application
            "scoring._runner": {"scoring.job", "hdfs_models._tree"},  # scorer -> application (and a fine one)
            "hdfs_models.cli._score": {"scoring._scorer", "hdfs_models._versions"},  # fine: applications on top
        }
    ) == [
        "hdfs_models._publish (core) imports scoring._source (scorer)",
        "hdfs_models.cache._localize (core) imports hdfs_models.cli._score (application)",
        "scoring._runner (scorer) imports scoring.job (application)",
    ]


def test_faces_take_a_runner_and_parsing_signatures_reads_nothing():
    graph = _graph("scoring")
    for face in ("scoring._faces", "scoring._runner"):
        assert graph[face] and "scoring._scorer" not in graph[face], face
    assert graph["scoring._plan"] <= {"scoring.errors"}


# -- sizes (issue 19) -----------------------------------------------------------------------------

SCORER_LIBRARY_MAX = 12


def scorer_library(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] == "scoring" and _layer(m) == "scorer")


def test_the_scorer_library_has_at_most_12_modules():
    library = scorer_library(list(_modules("scoring")))
    assert "scoring._scorer" in library and "scoring.job" not in library
    assert len(library) <= SCORER_LIBRARY_MAX, library


CACHE_MAX = 5


def cache_modules(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m == "hdfs_models.cache" or m.startswith("hdfs_models.cache."))


def test_the_node_cache_is_at_most_5_modules():
    cache = cache_modules(list(_modules("hdfs_models")))
    assert "hdfs_models.cache._localize" in cache
    assert len(cache) <= CACHE_MAX, cache


def test_size_checks_fail_on_a_violation():
    thirteen = [f"scoring._m{i}" for i in range(13)] + ["scoring.job", "hdfs_models.cli._score"]
    assert len(scorer_library(thirteen)) == 13 > SCORER_LIBRARY_MAX
    six = ["hdfs_models.cache"] + [f"hdfs_models.cache._m{i}" for i in range(5)] + ["hdfs_models._download"]
    assert len(cache_modules(six)) == 6 > CACHE_MAX


# -- the public surface (issue 19): names are added or removed on purpose, never plumbing ---------

PUBLIC = {
    "hdfs_models": [
        "CacheError", "CacheOptions", "CacheStats", "DistributionError", "EncryptionZoneError", "ExtraFilesWarning",
        "FileEntry",
        "HdfsModelsError", "HdfsModelsWarning", "IncompleteVersionError", "IntegrityError", "InvalidModelError",
        "LocalModel", "LockTimeoutError", "MANIFEST_NAME", "Manifest", "MissingExtraError", "ModelHandle",
        "ModelNotFoundError", "PinnedVersion", "PublishError", "SourceChangedError", "StoreAuthError", "StoreError",
        "StorePermissionError", "UnsafeArchiveError", "UnsafeNameError", "UnsupportedProtocolError",
        "UnsupportedSparkError", "cache_stats", "discard", "distribute", "evict", "list_versions", "localize",
        "open_store", "pack", "publish", "read_signatures", "release", "resolve", "unpack", "__version__",
    ],
    "scoring": [
        "ColumnTypeError", "GpuAssignmentError", "JobIOError", "ModelLoadError", "NullValueError", "PrecisionError",
        "PrecisionReport", "Scorer", "ScoringError", "ShapeMismatchError", "Signature", "SignatureError",
        "SignatureMismatchError", "TensorSpec", "compare_precision", "format_signatures", "inspect_signatures",
        "pack_tensors",
    ],
}  # fmt: skip
#: Plumbing that once leaked into hdfs_models.__all__ (docs/changes.md): never public again.
PLUMBING = {"BFLOAT16_FLAGS", "CpuInfo", "read_cpu", "import_tensorflow"}


def surface_problems(package: str, exported: list[str]) -> list[str]:
    problems = [f"{package}.{name} is plumbing" for name in exported if name in PLUMBING]
    problems += [f"{package}.{name} is new: add it to PUBLIC" for name in exported if name not in PUBLIC[package]]
    problems += [f"{package}.{name} is gone" for name in PUBLIC[package] if name not in exported]
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_public_surface_is_exactly_the_documented_names(package):
    import importlib

    assert surface_problems(package, list(importlib.import_module(package).__all__)) == []


def test_public_surface_check_fails_on_plumbing_additions_and_removals():
    exported = [n for n in PUBLIC["hdfs_models"] if n != "localize"] + ["read_cpu"]
    assert surface_problems("hdfs_models", exported) == [
        "hdfs_models.read_cpu is plumbing",
        "hdfs_models.read_cpu is new: add it to PUBLIC",
        "hdfs_models.localize is gone",
    ]
    assert not PLUMBING & set(PUBLIC["hdfs_models"]) and not PLUMBING & set(PUBLIC["scoring"])
