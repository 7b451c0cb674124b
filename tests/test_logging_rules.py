"""Library code logs and never prints: only the command lines print (issue 13).

Every ``print`` call in ``hdfs_models`` and ``scoring`` is in a command-line
module, and every logger a module makes is ``logging.getLogger(__name__)``
(so it sits under the ``hdfs_models`` or ``scoring`` logger). The
applications are all commands now (``hdfs_models/cli``); ``scoring/job.py`` and
``scoring/precision.py`` only hand their arguments to them.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMAND_LINES = {"hdfs_models/cli"}
NAMED_LOGGERS: dict[str, str] = {}


def _modules(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        yield rel, ast.parse(path.read_text(), rel)


def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == name:
                yield node


@pytest.mark.parametrize("package", ["hdfs_models", "scoring"])
def test_only_command_lines_print(package):
    printing = [
        f"{rel}:{call.lineno}"
        for rel, tree in _modules(package)
        for call in _calls(tree, "print")
        if not any(rel == allowed or rel.startswith(allowed + "/") for allowed in COMMAND_LINES)
    ]
    assert printing == []


@pytest.mark.parametrize("package", ["hdfs_models", "scoring"])
def test_loggers_are_named_after_their_module(package):
    odd = []
    for rel, tree in _modules(package):
        for call in _calls(tree, "getLogger"):
            arg = call.args[0] if call.args else None
            if isinstance(arg, ast.Name) and arg.id == "__name__":
                continue
            if isinstance(arg, ast.Constant) and NAMED_LOGGERS.get(rel) == arg.value:
                continue
            odd.append(f"{rel}:{call.lineno}")
    assert odd == []
