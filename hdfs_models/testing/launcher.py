"""The MiniDFS launcher: a small Maven project, compiled once per source hash.

The project (``integration/minidfs``) ships as the package data
``hdfs_models._minidfs``. :func:`ensure_launcher` compiles it once and caches
the result under ``~/.cache/hdfs-models/minidfs/<hash>``, keyed by the hash
of the pom, the sources and the Hadoop version it is built against (the pom's
``hadoop.version``, set with ``-Dhadoop.version``), so later starts take seconds. :class:`MiniDFSError`
is what the test cluster raises when it cannot be built, started or kept up.

:func:`ensure_maven_build` is that build-once cache for any small Maven
project (the TF-Java job of ``examples/jvm`` uses it through
:mod:`hdfs_models.testing.jvm`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from hdfs_models._runtime import setting
from hdfs_models.errors import HdfsModelsError

__all__ = [
    "DEFAULT_HADOOP_VERSION",
    "HADOOP_VERSIONS",
    "MAIN_CLASS",
    "MiniDFSError",
    "ensure_kms_classpath",
    "ensure_launcher",
    "ensure_maven_build",
    "missing_tools",
    "project_hash",
    "resolve_hadoop_version",
]

log = logging.getLogger(__name__)


class MiniDFSError(HdfsModelsError, RuntimeError):
    """The MiniDFS test cluster could not be built or started, or it crashed."""


MAIN_CLASS = "io.hdfsmodels.minidfs.Launcher"
#: The Hadoop of today's clusters (Cloudera 7.3.3, EMR 7.x) and of the current CI leg.
DEFAULT_HADOOP_VERSION = "3.4.1"
#: The versions the launcher is tested with: 3.3.6 is Dataproc 2.x and older EMR 7 (compatibility leg).
HADOOP_VERSIONS = ("3.3.6", "3.4.1")
_INSTALL_HINT = "install OpenJDK 17+ and Maven (Debian: apt-get install -y openjdk-17-jdk-headless maven)"


def missing_tools(env: Mapping[str, str] | None = None) -> str:
    """Return why the launcher cannot be built or run here, or ``""`` if it can."""
    env = os.environ if env is None else env
    path = env.get("PATH", os.defpath)
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool, path=path) is None]
    if not missing:
        return ""
    return f"MiniDFS needs {' and '.join(missing)} on PATH: {_INSTALL_HINT}"


def _project_dir() -> Path:
    override = os.environ.get("HDFS_MODELS_MINIDFS_PROJECT")
    if override:
        return Path(override)
    return Path(str(resources.files("hdfs_models._minidfs")))


def _project_files(project: Path) -> list[Path]:
    files = [project / "pom.xml"]
    files += sorted(p for p in (project / "src").rglob("*") if p.is_file())
    return files


def project_hash(project: Path) -> str:
    """A short sha256 of a Maven project's ``pom.xml`` and every file under ``src/`` (names and bytes)."""
    digest = hashlib.sha256()
    for path in _project_files(project):
        digest.update(str(path.relative_to(project)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _cache_root() -> Path:
    root = os.environ.get("HDFS_MODELS_MINIDFS_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hdfs-models" / "minidfs"


def resolve_hadoop_version(version: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``version`` > ``HDFS_MODELS_HADOOP_VERSION`` > :data:`DEFAULT_HADOOP_VERSION`; checked, not looked up."""
    chosen = setting(version, "HDFS_MODELS_HADOOP_VERSION", DEFAULT_HADOOP_VERSION, env=env)
    parts = chosen.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or parts[0] != "3":
        raise MiniDFSError(
            f"Hadoop version {chosen!r} is not a Hadoop 3.x.y release (tested: {', '.join(HADOOP_VERSIONS)})",
            reason="bad hadoop version",
        )
    return chosen


def ensure_launcher(timeout: float = 1200.0, hadoop_version: str | None = None) -> str:
    """Build the launcher if needed and return the Java classpath to run it.

    ``hadoop_version``: see :func:`resolve_hadoop_version`. Built and cached
    by :func:`ensure_maven_build` (``mvn compile dependency:build-classpath``
    with ``-Dhadoop.version``), so concurrent test processes build it once
    and never see half a build. Raises :class:`MiniDFSError` naming what is
    missing or carrying the last 50 lines of Maven's output.
    """
    problem = missing_tools()
    if problem:
        raise MiniDFSError(problem, reason="missing tools")
    project = _project_dir()
    if not (project / "pom.xml").is_file():
        raise MiniDFSError(f"MiniDFS launcher project not found at {project}", path=str(project))
    version = resolve_hadoop_version(hadoop_version)
    final = _cache_root() / f"{project_hash(project)}-hadoop-{version}"
    built = ensure_maven_build(
        project, final, defines={"hadoop.version": version}, timeout=timeout, what="the MiniDFS launcher"
    )
    classpath = (built / "classpath.txt").read_text().strip()
    return os.pathsep.join([str(built / "classes"), classpath])


def ensure_maven_build(
    project: Path,
    final: Path,
    *,
    goals: tuple[str, ...] = ("compile",),
    defines: Mapping[str, str] | None = None,
    timeout: float = 1200.0,
    what: str = "a Maven project",
    error: type[HdfsModelsError] = MiniDFSError,
) -> Path:
    """Build ``project`` (its ``pom.xml`` and ``src/``) into the cache dir ``final`` once; return ``final``.

    ``final`` names the build: callers key it by :func:`project_hash` and
    whatever else changes the output (a ``-D`` version). Maven runs ``goals``
    then ``dependency:build-classpath`` with ``-Dkey=value`` for each of
    ``defines``, in a temporary directory beside ``final`` that is renamed
    into place under ``<final>.lock``: concurrent processes build once, and
    nobody sees half a build. ``final`` then holds ``classes/``,
    ``classpath.txt`` (the dependencies, ``:``-separated) and any jar that
    ``package`` made. Failures raise ``error`` (the project's path, and the
    last 50 lines of Maven's output).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "classpath.txt").is_file():
            _build(project, final, goals, dict(defines or {}), timeout, what, error)
    return final


def _build(
    project: Path,
    final: Path,
    goals: tuple[str, ...],
    defines: dict[str, str],
    timeout: float,
    what: str,
    error: type[HdfsModelsError],
) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=final.parent))
    try:
        shutil.copy2(project / "pom.xml", work / "pom.xml")
        shutil.copytree(project / "src", work / "src")
        goals_ = [*goals, "dependency:build-classpath", f"-Dmdep.outputFile={work / 'target' / 'classpath.txt'}"]
        goals_ += [f"-D{key}={value}" for key, value in defines.items()]
        started = time.monotonic()
        _run_maven(work, goals_, timeout, project, what, error)
        target = work / "target"
        (target / "classes").rename(work / "classes")
        (target / "classpath.txt").rename(work / "classpath.txt")
        for jar in target.glob("*.jar"):
            jar.rename(work / jar.name)
        shutil.rmtree(target)
        work.rename(final)
        log.info("built %s in %.1fs", what, time.monotonic() - started)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def ensure_kms_classpath(timeout: float = 1200.0, hadoop_version: str | None = None) -> str:
    """Resolve Hadoop's MiniKMS (``kms/pom.xml``) once and return the file holding its classpath.

    Only ``MiniDFS(kms=True)`` needs it, so the launcher's own build does not
    download it. Cached beside the launcher, keyed by the hash of that pom and
    the Hadoop version, built under a lock and renamed into place like
    :func:`ensure_launcher`. The launcher loads it in a class loader of its
    own (``Kms.java``): MiniKMS needs unshaded hadoop-common and Jetty.
    """
    problem = missing_tools()
    if problem:
        raise MiniDFSError(problem, reason="missing tools")
    pom = _project_dir() / "kms" / "pom.xml"
    version = resolve_hadoop_version(hadoop_version)
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"kms-{hashlib.sha256(pom.read_bytes()).hexdigest()[:16]}-hadoop-{version}"
    with open(root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "classpath.txt").is_file():
            work = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=root))
            try:
                shutil.copy2(pom, work / "pom.xml")
                goals = ["dependency:build-classpath", f"-Dmdep.outputFile={work / 'classpath.txt'}"]
                goals.append(f"-Dhadoop.version={version}")
                _run_maven(work, goals, timeout, pom.parent, f"MiniKMS for Hadoop {version}", MiniDFSError)
                work.rename(final)
            finally:
                if work.exists():
                    shutil.rmtree(work, ignore_errors=True)
    return str(final / "classpath.txt")


def _run_maven(
    work: Path, goals: list[str], timeout: float, project: Path, what: str, error: type[HdfsModelsError]
) -> None:
    cmd = ["mvn", "-B", "-q", "-f", str(work / "pom.xml"), *goals]
    log.info("building %s: %s", what, " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise error(
            f"building {what} took longer than {timeout:.0f}s ({project})", path=str(project), reason="timeout"
        ) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-50:])
        raise error(
            f"building {what} failed (mvn exit {proc.returncode}) in {project}:\n{tail}",
            path=str(project),
            reason="maven failed",
        )
