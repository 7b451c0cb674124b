"""docs/reliability.md's index names real tests: a renamed or deleted test fails here, so it cannot rot.

Every ``t/<file>.py::<test>`` and ``i/<file>.py::<test>`` the index cites must
exist (``[param]`` suffixes are ignored, ``*`` matches a family of tests),
every row of the case tables must have an index entry, and every index entry
must be a row of the case tables.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
INDEX_HEADING = "## Where each row is tested"
REFERENCE = re.compile(r"\b([ti])/([\w/]+\.py)(?:::([\w*\[\]\-.]+))?")
ROW = re.compile(r"^\|\s*([A-Z]\d+(?:-[A-Z]?\d+)?)(?:\s*\(in part\))?\s*\|")


def _sections() -> tuple[str, str]:
    text = DOC.read_text(encoding="utf-8")
    cases, _, index = text.partition(INDEX_HEADING)
    assert index, f"{DOC} has no '{INDEX_HEADING}' section"
    return cases, index


def _ids(cell: str) -> set[str]:
    """``S1-S12`` → S1 … S12; ``P2`` → P2."""
    first, _, last = cell.partition("-")
    if not last:
        return {first}
    letter, start = first[0], int(first[1:])
    return {f"{letter}{n}" for n in range(start, int(last.lstrip(letter)) + 1)}


def _rows(section: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if match := ROW.match(line):
            for row_id in _ids(match.group(1)):
                rows[row_id] = line
    return rows


def _test_names(path: Path) -> list[str]:
    return re.findall(r"^\s*(?:async\s+)?def\s+(test_\w+)\s*\(", path.read_text(encoding="utf-8"), re.M)


def test_every_test_the_index_names_exists():
    _cases, index = _sections()
    missing, cited = [], 0
    for line in index.splitlines():
        for kind, rel, name in REFERENCE.findall(line):
            path = ROOT / ("tests" if kind == "t" else "integration") / rel
            cited += 1
            if not path.is_file():
                missing.append(f"{kind}/{rel} (no such file)")
                continue
            if name:
                pattern = name.split("[", 1)[0]
                if not fnmatch.filter(_test_names(path), pattern):
                    missing.append(f"{kind}/{rel}::{name}")
    assert cited > 80, f"only {cited} test references found in {DOC}: is the index still a table?"
    assert missing == [], f"{DOC} names tests that do not exist: {missing}"


def test_every_case_row_has_an_index_entry_and_back():
    cases, index = _sections()
    case_rows, index_rows = _rows(cases), _rows(index)
    assert len(case_rows) > 70
    assert sorted(set(case_rows) - set(index_rows)) == [], "rows without an index entry"
    assert sorted(set(index_rows) - set(case_rows)) == [], "index entries without a row"


def test_the_checker_sees_a_missing_test(tmp_path):
    path = tmp_path / "test_x.py"
    path.write_text("def test_present():\n    pass\n")
    assert _test_names(path) == ["test_present"]
    assert not fnmatch.filter(_test_names(path), "test_absent")
    assert _ids("S1-S3") == {"S1", "S2", "S3"} and _ids("P2") == {"P2"}
