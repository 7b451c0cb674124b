"""The Spark floor (3.5.0) and what differs between the supported lines."""

from __future__ import annotations

import os
import pickle

import pytest

from hdfs_models import UnsupportedSparkError, distribute, publish
from hdfs_models._runtime import MIN_SPARK, parse_spark_version, require_spark, spark_version
from hdfs_models.testing.pytest_plugin import require_module


@pytest.mark.parametrize(
    "text, parsed",
    [("3.5.0", (3, 5, 0)), ("3.5.2-amzn-0", (3, 5, 2)), ("4.1.0.dev1", (4, 1, 0)), ("4.0", (4, 0, 0))],
)
def test_parse_spark_version(text, parsed):
    assert parse_spark_version(text) == parsed


def test_parse_refuses_what_is_not_a_version():
    with pytest.raises(ValueError, match="not a Spark version: 'custom'"):
        parse_spark_version("custom")


def test_the_installed_pyspark_is_supported():
    require_module("pyspark", "spark")
    assert spark_version() >= MIN_SPARK
    assert require_spark("Scorer") == spark_version()


@pytest.fixture
def old_spark(monkeypatch):
    pyspark = require_module("pyspark", "spark")
    monkeypatch.setattr(pyspark, "__version__", "3.4.4")
    return pyspark


def test_below_the_floor_names_the_version_and_where_it_came_from(old_spark):
    with pytest.raises(
        UnsupportedSparkError, match=r"distribute needs Spark 3\.5\.0 or newer.*pyspark 3\.4\.4"
    ) as info:
        require_spark("distribute")
    err = info.value
    assert (err.found, err.needed, err.reason) == ("3.4.4", "3.5.0", "spark too old")
    assert old_spark.__file__ in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert back.found == "3.4.4" and isinstance(back, RuntimeError)


def test_scorer_distribute_and_job_refuse_an_old_spark(old_spark, tmp_path, capsys):
    require_module("tensorflow", "tf")
    from hdfs_models.testing import save_dense
    from scoring import Scorer
    from scoring.job import main

    base = str(tmp_path / "store" / "dense")
    publish(save_dense(str(tmp_path / "m")), base)
    with pytest.raises(UnsupportedSparkError, match="Scorer needs Spark 3.5.0"):
        Scorer(base)
    with pytest.raises(UnsupportedSparkError, match="distribute needs Spark 3.5.0"):
        distribute(None, base, strategy="archive")
    assert (
        main(
            [
                "--model",
                base,
                "--input-path",
                str(tmp_path),
                "--output-path",
                str(tmp_path / "o"),
                "--features",
                "features",
            ]
        )
        == 1
    )
    assert "scoring.job: error: hdfs-models score needs Spark 3.5.0 or newer" in capsys.readouterr().err


# -- the Hadoop the test harness runs -------------------------------------------------------


def test_hadoop_version_explicit_then_environment_then_default():
    from hdfs_models.testing.launcher import DEFAULT_HADOOP_VERSION, MiniDFSError, resolve_hadoop_version

    env = {"HDFS_MODELS_HADOOP_VERSION": "3.3.6"}
    assert resolve_hadoop_version("3.4.2", env) == "3.4.2"
    assert resolve_hadoop_version(None, env) == "3.3.6"
    assert resolve_hadoop_version(None, {}) == DEFAULT_HADOOP_VERSION == "3.4.1"
    for bad in ("3.3", "2.10.2", "3.x.1", "latest"):
        with pytest.raises(MiniDFSError, match=f"Hadoop version '{bad}' is not a Hadoop 3.x.y release"):
            resolve_hadoop_version(bad, {})


def test_launcher_is_built_and_cached_once_per_hadoop_version(tmp_path, monkeypatch):
    """Two versions, two cache dirs, each built with -Dhadoop.version=<it>; a second call builds nothing."""
    import subprocess

    from hdfs_models.testing import launcher

    builds = []

    def fake_mvn(cmd, **kwargs):
        version = next(a.split("=", 1)[1] for a in cmd if a.startswith("-Dhadoop.version="))
        out = next(a.split("=", 1)[1] for a in cmd if a.startswith("-Dmdep.outputFile="))
        os.makedirs(os.path.join(os.path.dirname(out), "classes"))
        with open(out, "w") as fh:
            fh.write(f"/jars/hadoop-{version}.jar")
        builds.append(version)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setenv("HDFS_MODELS_MINIDFS_CACHE", str(tmp_path))
    monkeypatch.setattr(launcher, "missing_tools", lambda: "")
    monkeypatch.setattr(launcher.subprocess, "run", fake_mvn)
    first = launcher.ensure_launcher(hadoop_version="3.3.6")
    second = launcher.ensure_launcher(hadoop_version="3.4.1")
    again = launcher.ensure_launcher(hadoop_version="3.3.6")
    assert builds == ["3.3.6", "3.4.1"]
    assert first == again and first.endswith("/jars/hadoop-3.3.6.jar") and second.endswith("/jars/hadoop-3.4.1.jar")
    assert sorted(p.name.split("-hadoop-")[1] for p in tmp_path.iterdir() if p.is_dir()) == ["3.3.6", "3.4.1"]
