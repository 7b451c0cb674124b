"""Tests that cannot skip silently: ``require_module`` and the CI report check (.ci/check_junit.py)."""

import importlib.util
import os

import pytest

from hdfs_models.testing.pytest_plugin import require_module

CHECK = os.path.join(os.path.dirname(__file__), os.pardir, ".ci", "check_junit.py")


def _checker():
    spec = importlib.util.spec_from_file_location("check_junit", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_require_module_returns_the_module():
    assert require_module("json", "none").dumps([1]) == "[1]"


def test_missing_module_skips_naming_the_extra_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"needs no_such_mod_x \(pip install 'hdfs-models\[tf\]'\)"):
        require_module("no_such_mod_x", "tf")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_missing_module_fails_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true: nothing may skip for a missing dependency"):
        require_module("no_such_mod_x", "tf")


REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="integration.test_a" name="test_ran" time="1"/>
<testcase classname="integration.test_a" name="test_tf">
  <skipped type="pytest.skip" message="could not import 'tensorflow': No module named 'tensorflow'">x</skipped>
</testcase>
<testcase classname="tests.test_b" name="test_spark">
  <skipped type="pytest.skip" message="needs pyspark (pip install 'hdfs-models[spark]'): nope">x</skipped>
</testcase>
<testcase classname="tests.test_b" name="test_whim">
  <skipped type="pytest.skip" message="flaky today">x</skipped>
</testcase>
<testcase classname="integration.test_c" name="test_memory">
  <skipped type="pytest.skip" message="the memory store has no atomic rename: publish there is check-then-move">x</skipped>
</testcase>
</testsuite></testsuites>
"""


def test_ci_check_fails_on_missing_dependency_and_unjustified_skips(tmp_path, capsys):
    report = tmp_path / "junit.xml"
    report.write_text(REPORT)
    check = _checker()
    found, ran, collected = check.problems(str(report))
    assert (ran, collected) == (1, 3)
    assert [line.split(":", 2)[:2] for line in found] == [
        ["integration.test_a", ""],
        ["tests.test_b", ""],
        ["tests.test_b", ""],
    ]
    assert "missing dependency" in found[0] and "missing dependency" in found[1]
    assert "test_whim: skip not allowed in CI" in found[2]
    assert check.main(["check", str(report)]) == 1
    assert "ci: 1 integration tests ran (3 collected)" in capsys.readouterr().out


def test_ci_check_passes_a_clean_report_and_fails_one_without_integration(tmp_path):
    check = _checker()
    clean = tmp_path / "clean.xml"
    clean.write_text(
        '<testsuites><testsuite><testcase classname="integration.t" name="a"/>'
        '<testcase classname="tests.t" name="b"/></testsuite></testsuites>'
    )
    assert check.main(["check", str(clean)]) == 0
    unit_only = tmp_path / "unit.xml"
    unit_only.write_text('<testsuites><testsuite><testcase classname="tests.t" name="b"/></testsuite></testsuites>')
    assert check.main(["check", str(unit_only)]) == 1
