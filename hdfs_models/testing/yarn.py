"""A MiniYARNCluster beside MiniDFS, and ``spark-submit --master yarn`` against it.

``MiniDFS(yarn_nodemanagers=N)`` starts, in the launcher JVM, one
ResourceManager and N NodeManagers, each with its own local and log dirs
(N stand-in nodes on one machine), and writes ``yarn-site.xml`` into the
conf dir. ``dfs.yarn`` is a :class:`Yarn` view of it::

    with MiniDFS(datanodes=1, yarn_nodemanagers=2) as dfs:
        result = dfs.yarn.submit("job.py", ["--input", "..."], deploy_mode="cluster")
        assert result.final_status == "SUCCEEDED", result.log_tail()

Sizes (``spark_conf``): each NodeManager offers 5120 MB, which holds two
executors of 1792 MB (1 GiB heap + 768 MiB overhead) plus one application
master (1408 MB in cluster mode, 896 MB in client mode), but never three
executors: with four executors on two NodeManagers, each node runs exactly
two. Memory limits are not enforced (the JVMs use far less than they reserve).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["NodeManager", "SubmitResult", "Yarn", "java_home", "launch_settings", "spark_home"]

_APP_ID = re.compile(r"application_\d+_\d+")
_FINAL_STATES = ("FINISHED", "FAILED", "KILLED")
#: JVM flags the launcher needs on Java 17: Guice in YARN's RM web app, and Hadoop 3.3's shaded
#: JAXB 2.2 behind WebHDFS (its AccessorInjector fails with ExceptionInInitializerError without
#: it, and every WebHDFS call is a 500).
JAVA_OPENS = ("--add-opens=java.base/java.lang=ALL-UNNAMED",)


def launch_settings(java_opts: tuple[str, ...], yarn: bool) -> tuple[tuple[str, ...], dict[str, str] | None]:
    """The launcher JVM's flags and environment (``None``: inherit) with or without YARN in it."""
    opts = (*java_opts, *JAVA_OPENS)
    if not yarn:
        return opts, None
    return opts, {**os.environ, "JAVA_HOME": java_home()}  # containers inherit it


def java_home(env: Mapping[str, str] | None = None) -> str:
    """``JAVA_HOME``, or the JDK that ``java`` on ``PATH`` belongs to (containers need it)."""
    env = os.environ if env is None else env
    if env.get("JAVA_HOME"):
        return env["JAVA_HOME"]
    import shutil

    java = shutil.which("java", path=env.get("PATH", os.defpath))
    if java is None:
        raise FileNotFoundError("java is not on PATH and JAVA_HOME is unset")
    return os.path.dirname(os.path.dirname(os.path.realpath(java)))


def spark_home() -> str:
    """The pip-installed pyspark directory (it holds ``bin/spark-submit`` and ``jars/``)."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("spark-submit on YARN needs pyspark: pip install 'hdfs-models[spark]'") from exc
    return os.path.dirname(pyspark.__file__)


@dataclasses.dataclass(frozen=True)
class NodeManager:
    """One stand-in node: ``node_id`` (``host:port``), its local and log dirs."""

    index: int
    node_id: str
    local_dirs: tuple[str, ...]
    log_dirs: tuple[str, ...]

    def owns(self, path: str) -> bool:
        """Whether ``path`` lies under one of this NodeManager's local or log dirs."""
        real = os.path.realpath(path)
        return any(
            real == d or real.startswith(d.rstrip("/") + "/")
            for d in map(os.path.realpath, self.local_dirs + self.log_dirs)
        )

    def user_dirs(self, user: str) -> list[str]:
        """``<local-dir>/usercache/<user>``: what YARN gives containers as ``LOCAL_USER_DIRS``."""
        return [os.path.join(d, "usercache", user) for d in self.local_dirs]


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    """What one ``spark-submit`` did: exit code, output, and YARN's view of the application."""

    returncode: int
    stdout: str
    stderr: str
    app_id: str | None
    state: str | None
    final_status: str | None
    seconds: float
    container_logs: tuple[str, ...] = ()

    def log_tail(self, chars: int = 6000) -> str:
        """spark-submit's stderr tail and the application's container logs (AM first), for failures."""
        parts = [
            f"spark-submit exit {self.returncode}, app {self.app_id} {self.state}/{self.final_status}",
            self.stderr[-chars:],
        ]
        for path in self.container_logs:
            try:
                with open(path, errors="replace") as fh:
                    text = fh.read()
            except OSError:
                continue
            if text.strip():
                parts.append(f"--- {path}\n{text[-chars:]}")
        return "\n".join(parts)


class Yarn:
    """The MiniYARNCluster of a running :class:`~hdfs_models.testing.MiniDFS`."""

    def __init__(self, dfs: Any, info: Mapping[str, Any]) -> None:
        """``dfs``: the running MiniDFS (its ``command`` and ``conf_dir``); ``info``: its ready line's "yarn"."""
        self._dfs = dfs
        self.rm_address = str(info["rm"])
        self.scheduler_address = str(info["scheduler"])
        self.nodemanagers = [
            NodeManager(int(n["index"]), str(n["node_id"]), tuple(n["local_dirs"]), tuple(n["log_dirs"]))
            for n in info["nodemanagers"]
        ]

    @property
    def local_dirs(self) -> list[str]:
        """Every NodeManager's local dirs (``yarn.nodemanager.local-dirs``), NodeManager order."""
        return [d for nm in self.nodemanagers for d in nm.local_dirs]

    def node_of(self, path: str) -> NodeManager:
        """The NodeManager whose dirs hold ``path`` (an executor's ``LOCAL_DIRS`` or cwd)."""
        for nm in self.nodemanagers:
            if nm.owns(path):
                return nm
        raise ValueError(f"{path} is in no NodeManager's dirs ({self.local_dirs})")

    def apps(self) -> list[dict[str, Any]]:
        """Every application the ResourceManager knows: id, name, user, state, final_status."""
        return list(self._dfs.command("yarn-apps"))

    def app(self, app_id: str) -> dict[str, Any]:
        """One application by id (``KeyError`` when the ResourceManager does not know it)."""
        for app in self.apps():
            if app["id"] == app_id:
                return app
        raise KeyError(f"the ResourceManager knows no application {app_id}")

    def wait_final(self, app_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The application's record once it is FINISHED, FAILED or KILLED (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.app(app_id)
            if record["state"] in _FINAL_STATES or time.monotonic() > deadline:
                return record
            time.sleep(0.5)

    def containers(self) -> dict[int, list[dict[str, Any]]]:
        """Live containers per NodeManager index: id, state, user."""
        return {int(n["index"]): list(n["containers"]) for n in self._dfs.command("yarn-nodes")}

    def container_logs(self, app_id: str) -> list[str]:
        """The application's container log files (stdout, stderr) on every NodeManager, AM first."""
        found = []
        for nm in self.nodemanagers:
            for d in nm.log_dirs:
                found += glob.glob(os.path.join(d, app_id, "container_*", "std*"))
        return sorted(found)

    def spark_conf(
        self,
        *,
        python: str | None = None,
        executors: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The ``spark-submit --conf`` settings a job on this cluster needs.

        ``spark.yarn.jars`` names pyspark's jars as ``local:`` paths (no
        400 MB upload per job); the driver, AM and executors run ``python``
        (default: this interpreter); ``env`` is set in the AM and every
        executor (e.g. ``PYTHONPATH``, ``HDFS_MODELS_CACHE_SCOPE``). One
        application attempt, so a failure comes back once.
        """
        python = python or sys.executable
        conf = {
            "spark.yarn.jars": "local:" + os.path.join(spark_home(), "jars", "*"),
            "spark.pyspark.python": python,
            "spark.pyspark.driver.python": python,
            "spark.executor.instances": str(executors),
            "spark.executor.cores": "1",
            "spark.executor.memory": "1g",
            "spark.executor.memoryOverhead": "768m",
            "spark.driver.memory": "1g",
            "spark.yarn.am.memory": "512m",
            "spark.yarn.maxAppAttempts": "1",
            "spark.yarn.submit.waitAppCompletion": "true",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.sql.shuffle.partitions": "4",
        }
        for key, value in {"PYSPARK_PYTHON": python, **(env or {})}.items():
            conf[f"spark.executorEnv.{key}"] = value
            conf[f"spark.yarn.appMasterEnv.{key}"] = value
        krb5 = self._java_krb5()
        if krb5:  # a Kerberized cluster: every JVM of the job must find the KDC
            for key in (
                "spark.driver.extraJavaOptions",
                "spark.executor.extraJavaOptions",
                "spark.yarn.am.extraJavaOptions",
            ):
                conf[key] = krb5
        return conf

    def _java_krb5(self) -> str | None:
        """``-Djava.security.krb5.conf=…`` for a Kerberized cluster (JVMs ignore ``KRB5_CONFIG``)."""
        if not getattr(self._dfs, "kerberized", False):
            return None
        return f"-Djava.security.krb5.conf={self._dfs.krb5_conf}"

    def submit_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a ``spark-submit`` against this cluster (``HADOOP_CONF_DIR`` …).

        On a Kerberized cluster also ``KRB5_CONFIG`` and ``SPARK_SUBMIT_OPTS`` naming the
        KDC's krb5.conf; who submits is up to the caller: ``--principal``/``--keytab`` in
        ``options``, or a ticket cache (``KRB5CCNAME``) in ``extra``.
        """
        krb5 = self._java_krb5()
        secure = {"KRB5_CONFIG": self._dfs.krb5_conf, "SPARK_SUBMIT_OPTS": krb5} if krb5 else {}
        return {
            **os.environ,
            "HADOOP_CONF_DIR": self._dfs.conf_dir,
            "SPARK_HOME": spark_home(),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "JAVA_HOME": java_home(),
            "PYSPARK_PYTHON": sys.executable,
            **secure,
            **(extra or {}),
        }

    def submit(
        self,
        app: str,
        args: Sequence[str] = (),
        *,
        deploy_mode: str = "cluster",
        conf: Mapping[str, str] | None = None,
        options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> SubmitResult:
        """Run ``spark-submit --master yarn`` and wait for it; never raises on a failed job.

        ``conf`` overrides :meth:`spark_conf`'s defaults; ``options`` go
        before the application (``--archives``, ``--py-files`` …).
        ``env`` is added to spark-submit's environment (:meth:`submit_env`).
        """
        settings = {**self.spark_conf(), **(conf or {})}
        cmd = [os.path.join(spark_home(), "bin", "spark-submit"), "--master", "yarn", "--deploy-mode", deploy_mode]
        for key, value in settings.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [*options, app, *args]
        known = {a["id"] for a in self.apps()}
        started = time.monotonic()
        try:
            run = subprocess.run(cmd, env=self.submit_env(env), capture_output=True, text=True, timeout=timeout)
            returncode, out, err = run.returncode, run.stdout, run.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = -9
            out = _text(exc.stdout)
            err = _text(exc.stderr) + f"\n(spark-submit killed after {timeout:g}s)"
        seconds = time.monotonic() - started
        app_id = self._new_app_id(known, err)
        record = self.wait_final(app_id) if app_id else {}
        logs = tuple(self.container_logs(app_id)) if app_id else ()
        return SubmitResult(
            returncode, out, err, app_id, record.get("state"), record.get("final_status"), seconds, logs
        )

    def _new_app_id(self, known: set[str], stderr: str) -> str | None:
        ids = _APP_ID.findall(stderr)
        if ids:
            return ids[-1]
        fresh = sorted(a["id"] for a in self.apps() if a["id"] not in known)
        return fresh[-1] if fresh else None


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")
