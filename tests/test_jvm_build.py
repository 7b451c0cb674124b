"""The TF-Java job's build (issue 24), hermetic: Maven is faked, the cache and its keys are real.

The job builds through the MiniDFS launcher's cache (``ensure_maven_build``):
once per hash of the pom and sources and per Spark version, compiled against
the Spark jars it is given.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hdfs_models.testing import jvm, launcher

PROJECT = Path(__file__).resolve().parents[1] / "examples" / "jvm"


def _spark_jars(root: Path, spark: str = "4.3.0", scala: str = "2.13.18") -> str:
    jars = root / f"spark-{spark}" / "jars"
    jars.mkdir(parents=True)
    for name in (f"spark-sql_2.13-{spark}.jar", f"scala-library-{scala}.jar", "guava-33.6.0-jre.jar"):
        (jars / name).write_bytes(b"")
    return str(jars)


@pytest.fixture
def fake_mvn(tmp_path, monkeypatch):
    """Record each Maven run; write what ``package dependency:build-classpath`` would."""
    runs: list[list[str]] = []
    tf_jar = tmp_path / "m2" / "tensorflow-core-api-1.1.0.jar"
    tf_jar.parent.mkdir()
    tf_jar.write_bytes(b"")

    def run(cmd, **kwargs):
        runs.append(cmd)
        out = Path(next(a.split("=", 1)[1] for a in cmd if a.startswith("-Dmdep.outputFile=")))
        (out.parent / "classes").mkdir(parents=True)
        (out.parent / "tf-java-spark-job-1.0.jar").write_bytes(b"PK")
        out.write_text(str(tf_jar))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setenv("HDFS_MODELS_JVM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jvm, "missing_tools", lambda: "")
    monkeypatch.setattr(launcher.subprocess, "run", run)
    return runs


def _defines(cmd: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in cmd if a.startswith("-D"))


def test_built_once_per_spark_version_against_the_jars_given(fake_mvn, tmp_path):
    first = jvm.ensure_jvm_job(PROJECT, _spark_jars(tmp_path / "a"))
    again = jvm.ensure_jvm_job(PROJECT, _spark_jars(tmp_path / "b"))  # same version elsewhere: the same build
    other = jvm.ensure_jvm_job(PROJECT, _spark_jars(tmp_path / "c", spark="4.2.0", scala="2.13.16"))
    assert len(fake_mvn) == 2 and first == again != other
    defines = _defines(fake_mvn[0])
    assert defines["spark.version"] == "4.3.0" and defines["scala.version"] == "2.13.18"
    assert defines["spark.jars.dir"] == str(tmp_path / "a" / "spark-4.3.0" / "jars")
    assert defines["mdep.includeScope"] == "runtime"  # TF-Java's jars only: Spark is spark-submit's
    assert "package" in fake_mvn[0] and _defines(fake_mvn[1])["spark.version"] == "4.2.0"
    assert first.jar.endswith("tf-java-spark-job-1.0.jar") and os.path.isfile(first.jar)
    names = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert [n.rsplit("-spark-", 1)[1] for n in names] == ["4.2.0", "4.3.0"]


def test_a_changed_source_is_a_new_build(fake_mvn, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pom.xml").write_text("<project/>")
    (project / "src" / "Job.java").write_text("class Job {}")
    jars = _spark_jars(tmp_path)
    one = jvm.ensure_jvm_job(project, jars)
    (project / "src" / "Job.java").write_text("class Job { }")
    two = jvm.ensure_jvm_job(project, jars)
    assert len(fake_mvn) == 2 and one.jar != two.jar


def test_the_command_ships_the_archive_as_model_and_tf_java_on_both_class_paths(fake_mvn, tmp_path):
    job = jvm.ensure_jvm_job(PROJECT, _spark_jars(tmp_path))
    cmd = job.command("local[2]", "hdfs://nn:8020/m/_archives/1-ab.tar", ["--input", "in"])
    assert cmd[cmd.index("--archives") + 1] == "hdfs://nn:8020/m/_archives/1-ab.tar#model"
    assert cmd[cmd.index("--class") + 1] == jvm.MAIN_CLASS and cmd[-3:] == [job.jar, "--input", "in"]
    conf = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")
    assert (
        conf["spark.executor.extraClassPath"] == conf["spark.driver.extraClassPath"] == os.pathsep.join(job.classpath)
    )
    assert "--archives" not in job.command("local[1]", None, [])


def test_a_stale_build_or_no_spark_jars_is_a_clear_error(fake_mvn, tmp_path):
    with pytest.raises(jvm.JvmJobError, match="not a Spark jars directory"):
        jvm.ensure_jvm_job(PROJECT, str(tmp_path / "nowhere"))
    job = jvm.ensure_jvm_job(PROJECT, _spark_jars(tmp_path))
    os.remove(job.classpath[0])  # the local Maven repository was cleared since the build
    with pytest.raises(jvm.JvmJobError, match="names jars that are gone") as err:
        jvm.ensure_jvm_job(PROJECT, _spark_jars(tmp_path / "again"))
    assert err.value.reason == "stale build"


def test_missing_java_or_maven_names_the_job(monkeypatch):
    monkeypatch.setattr(jvm, "missing_tools", lambda: "MiniDFS needs mvn on PATH: install Maven")
    with pytest.raises(jvm.JvmJobError, match="the TF-Java job needs mvn") as err:
        jvm.ensure_jvm_job(PROJECT)
    assert err.value.reason == "missing tools"
