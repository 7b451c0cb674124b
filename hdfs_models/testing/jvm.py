"""The TF-Java Spark job of ``examples/jvm``, built once and run with ``spark-submit``.

:func:`ensure_jvm_job` builds the Maven project (``mvn package
dependency:build-classpath``) with :func:`~hdfs_models.testing.launcher.ensure_maven_build`,
the MiniDFS launcher's build-once cache: under ``~/.cache/hdfs-models/jvm-job/<hash>-spark-<v>``
(``HDFS_MODELS_JVM_CACHE`` overrides the root), keyed by the hash of the pom and the sources and by
the Spark it compiles against, which is pip pyspark's own ``jars/`` (the jars spark-submit runs it
with). :meth:`JvmJob.submit` runs it on a local master with the model from ``--archives
ARCHIVE#model``; TF-Java's jars go on the driver's and executors' class path from the local Maven
repository (one machine: nothing to copy; a cluster would pass them with ``--jars``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hdfs_models.errors import HdfsModelsError
from hdfs_models.testing.launcher import ensure_maven_build, missing_tools, project_hash
from hdfs_models.testing.yarn import spark_home

__all__ = ["MAIN_CLASS", "JvmJob", "JvmJobError", "JvmRun", "ensure_jvm_job", "spark_versions"]

MAIN_CLASS = "io.hdfsmodels.jvm.ScoreJob"
_SPARK_SQL = re.compile(r"^spark-sql_(\d+\.\d+)-(\d+\.\d+\.\d+)\.jar$")
_SCALA = re.compile(r"^scala-library-(\d+\.\d+\.\d+)\.jar$")


class JvmJobError(HdfsModelsError, RuntimeError):
    """The TF-Java job could not be built (tools missing, Maven failed, no Spark jars to compile against)."""


def spark_versions(jars_dir: str) -> dict[str, str]:
    """``spark.version``, ``scala.binary.version`` and ``scala.version`` read from the names in ``jars_dir``."""
    names = os.listdir(jars_dir) if os.path.isdir(jars_dir) else []
    sql = [m for m in map(_SPARK_SQL.match, names) if m]
    scala = [m for m in map(_SCALA.match, names) if m]
    if len(sql) != 1 or len(scala) != 1:
        raise JvmJobError(
            f"{jars_dir} should hold one spark-sql_<scala>-<spark>.jar and one scala-library-<v>.jar "
            f"(found {len(sql)} and {len(scala)}): it is not a Spark jars directory",
            path=jars_dir,
            reason="no spark jars",
        )
    return {"spark.version": sql[0][2], "scala.binary.version": sql[0][1], "scala.version": scala[0][1]}


@dataclasses.dataclass(frozen=True)
class JvmRun:
    """One ``spark-submit`` of the job: exit code, wall seconds, output, and one summary per mode."""

    returncode: int
    seconds: float
    stdout: str
    stderr: str
    summaries: tuple[dict[str, Any], ...]

    def summary(self, mode: str) -> dict[str, Any]:
        """The JSON line the job printed for ``mode`` (``udf`` or ``partitions``)."""
        found = [s for s in self.summaries if s.get("mode") == mode]
        if not found:
            raise KeyError(f"no summary for mode {mode!r} (exit {self.returncode}):\n{self.stderr[-4000:]}")
        return found[0]


@dataclasses.dataclass(frozen=True)
class JvmJob:
    """A built job: its jar and TF-Java's runtime jars (TensorFlow's native library among them)."""

    jar: str
    classpath: tuple[str, ...]

    def command(
        self,
        master: str,
        archive: str | None,
        args: Sequence[str],
        conf: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The ``spark-submit`` command line: ``archive`` (a URL or path) ships as ``#model``."""
        jars = os.pathsep.join(self.classpath)
        settings = {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.extraClassPath": jars,
            "spark.executor.extraClassPath": jars,
            **(conf or {}),
        }
        cmd = [os.path.join(spark_home(), "bin", "spark-submit"), "--master", master, "--class", MAIN_CLASS]
        for key, value in settings.items():
            cmd += ["--conf", f"{key}={value}"]
        if archive is not None:
            cmd += ["--archives", f"{archive}#model"]
        return [*cmd, self.jar, *args]

    def submit(
        self,
        master: str,
        archive: str | None,
        args: Sequence[str],
        *,
        conf: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> JvmRun:
        """Run the job and wait; never raises on a failed job (check :attr:`JvmRun.returncode`).

        ``args`` are the job's own (``--input``, ``--output``, ``--mode`` ...).
        """
        full_env = {**os.environ, "SPARK_HOME": spark_home(), "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})}
        full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        started = time.monotonic()
        try:
            proc = subprocess.run(
                self.command(master, archive, args, conf), env=full_env, capture_output=True, text=True, timeout=timeout
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:  # its output may be bytes even with text=True
            code, out = -9, _decoded(exc.stdout)
            err = _decoded(exc.stderr) + f"\n(spark-submit killed after {timeout:g}s)"
        seconds = time.monotonic() - started
        summaries = tuple(json.loads(line) for line in out.splitlines() if line.startswith('{"mode"'))
        return JvmRun(code, seconds, out, err, summaries)


def _decoded(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def _cache_root() -> Path:
    root = os.environ.get("HDFS_MODELS_JVM_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hdfs-models" / "jvm-job"


def ensure_jvm_job(project: str | os.PathLike[str], jars_dir: str | None = None, timeout: float = 1200.0) -> JvmJob:
    """Build the job at ``project`` (``examples/jvm``) once and return it.

    ``jars_dir``: the Spark jars to compile against (default pip pyspark's
    ``jars/``). Raises :class:`JvmJobError` when Java or Maven is missing,
    the project or the jars are not there, or Maven fails (its output's tail).
    """
    problem = missing_tools()
    if problem:
        raise JvmJobError(problem.replace("MiniDFS needs", "the TF-Java job needs"), reason="missing tools")
    project = Path(project)
    if not (project / "pom.xml").is_file():
        raise JvmJobError(f"no Maven project at {project}", path=str(project), reason="no project")
    jars_dir = jars_dir or os.path.join(spark_home(), "jars")
    versions = spark_versions(jars_dir)
    final = _cache_root() / f"{project_hash(project)}-spark-{versions['spark.version']}"
    defines = {**versions, "spark.jars.dir": jars_dir, "mdep.includeScope": "runtime"}
    built = ensure_maven_build(
        project, final, goals=("package",), defines=defines, timeout=timeout, what="the TF-Java job", error=JvmJobError
    )
    jars = sorted(built.glob("*.jar"))
    if len(jars) != 1:
        raise JvmJobError(f"{built} should hold the job's one jar, not {len(jars)}", path=str(built), reason="no jar")
    listed = (built / "classpath.txt").read_text().strip().split(os.pathsep)
    # build-classpath lists the system-scoped Spark jars with TF-Java's: spark-submit brings its own
    spark_jars = os.path.realpath(jars_dir) + os.sep
    classpath = tuple(p for p in listed if p and not os.path.realpath(p).startswith(spark_jars))
    gone = [p for p in classpath if not os.path.isfile(p)]
    if gone:  # the build names jars in the local Maven repository, which may have been cleared since
        raise JvmJobError(
            f"{built} names jars that are gone ({', '.join(gone[:3])}): delete {built} to rebuild",
            path=str(built),
            reason="stale build",
        )
    return JvmJob(str(jars[0]), classpath)
