"""A real HDFS for tests: Hadoop's MiniDFSCluster in a JVM, driven from Python.

The launcher is a small Maven project built by
:func:`~hdfs_models.testing.launcher.ensure_launcher` (once per source hash).

:class:`MiniDFS` starts the JVM, waits for its JSON ready line, and speaks a
line protocol on its stdin for fault injection (stop/restart DataNodes,
corrupt replicas, fail over the NameNode). The JVM exits when its stdin
closes, so it never outlives the Python process that started it.

Example::

    from hdfs_models.testing import MiniDFS

    with MiniDFS(datanodes=3) as dfs:
        fs = dfs.fs()
        fs.pipe(dfs.url + "/tmp/x", b"hello")
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any
from unittest import mock

from hdfs_models.testing.kerberos import DEFAULT_USERS, KerberosMixin, kerberos_launcher_args
from hdfs_models.testing.kms import KmsMixin, kms_launcher_args
from hdfs_models.testing.launcher import (
    MAIN_CLASS,
    MiniDFSError,
    ensure_launcher,
    missing_tools,
    resolve_hadoop_version,
)
from hdfs_models.testing.yarn import Yarn, launch_settings

__all__ = ["MiniDFS", "MiniDFSError", "ensure_launcher", "missing_tools"]

log = logging.getLogger(__name__)


class MiniDFS(KerberosMixin, KmsMixin):
    """A MiniDFSCluster in a child JVM; use as a context manager.

    Options: ``datanodes`` (3), ``replication`` (min(3, datanodes)),
    ``block_size`` (1 MiB, so a model spans many blocks), ``permissions``
    (on), ``ha`` (one nameservice ``minidfs-ns`` with two NameNodes),
    ``base_dir`` (a fresh temp dir, removed on stop), ``startup_timeout``,
    ``yarn_nodemanagers`` (N > 0 also starts a MiniYARNCluster with N
    NodeManagers in the same JVM: :attr:`yarn`, :meth:`spark_yarn_conf`,
    ``yarn-site.xml`` in the conf dir; see :mod:`hdfs_models.testing.yarn`).
    Every port is ephemeral, so parallel clusters never collide.
    ``hadoop_version``: the Hadoop the JVM runs (``3.4.1``, ``3.3.6`` ...;
    default ``HDFS_MODELS_HADOOP_VERSION``, else
    :data:`~hdfs_models.testing.launcher.DEFAULT_HADOOP_VERSION`); the
    launcher is built and cached once per version.

    ``kerberos=True`` makes it secure, with a KDC in the same JVM:
    ``protection`` (``authentication``, ``integrity`` or ``privacy``: the
    SASL quality of protection of RPC and data transfer) and ``users``
    (principals with keytabs and ``/user/<name>`` homes; ``alice``, ``bob``).
    See :mod:`hdfs_models.testing.kerberos` for ``kerberos_env(user)`` and
    ``token_env(user)``. ``kms=True`` adds a MiniKMS for encryption zones
    (:meth:`create_zone`; :mod:`hdfs_models.testing.kms`).

    After :meth:`start`: ``url`` (``hdfs://127.0.0.1:PORT``, or
    ``hdfs://minidfs-ns`` in HA mode), ``webhdfs_url``, ``conf_dir`` (a
    client config dir with core-site.xml and hdfs-site.xml; point
    ``HADOOP_CONF_DIR`` at it), ``namenodes``, ``info`` (the ready line).
    """

    def __init__(
        self,
        *,
        datanodes: int = 3,
        replication: int | None = None,
        block_size: int = 1 << 20,
        permissions: bool = True,
        ha: bool = False,
        base_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 180.0,
        command_timeout: float = 120.0,
        java_opts: tuple[str, ...] = ("-Xmx1g",),
        kerberos: bool = False,
        protection: str = "authentication",
        users: tuple[str, ...] = DEFAULT_USERS,
        yarn_nodemanagers: int = 0,
        hadoop_version: str | None = None,
        kms: bool = False,
    ) -> None:
        self.hadoop_version = resolve_hadoop_version(hadoop_version)
        self.datanodes_count = datanodes
        self.replication, self.block_size, self.permissions, self.ha = replication, block_size, permissions, ha
        self.startup_timeout, self.command_timeout = startup_timeout, command_timeout
        self.java_opts = java_opts
        self.kerberized, self.protection, self.kms_enabled = kerberos, protection, kms
        self.users = tuple(users)
        self.yarn_nodemanagers = yarn_nodemanagers
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else None
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._io_lock = threading.Lock()
        self._log_file: IO[str] | None = None
        self.startup_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> MiniDFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> MiniDFS:
        """Build the launcher if needed, start the JVM and wait for the ready line."""
        started = time.monotonic()
        classpath = ensure_launcher(hadoop_version=self.hadoop_version)
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="minidfs-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "w")
        java_opts, env = launch_settings(self.java_opts, bool(self.yarn_nodemanagers))
        cmd = ["java", *java_opts, "-cp", classpath, MAIN_CLASS, *self._launcher_args()]
        log.info("starting MiniDFS: %s", " ".join(cmd[:2] + cmd[-len(self._launcher_args()) - 1 :]))
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
            env=env,
            cwd=str(self.base_dir),
        )
        threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True).start()
        try:
            line = self._next_line(self.startup_timeout, "ready line")
            self.info = json.loads(line)
            if not self.info.get("ready"):
                raise MiniDFSError(
                    f"MiniDFS failed to start: {self.info.get('error')}\n{self.log_tail()}",
                    path=str(self.log_path),
                    reason="start failed",
                )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        log.info("MiniDFS ready at %s in %.1fs", self.url, self.startup_seconds)
        return self

    def _launcher_args(self) -> list[str]:
        assert self.base_dir is not None
        args = ["--datanodes", str(self.datanodes_count), "--block-size", str(self.block_size)]
        args += ["--base-dir", str(self.base_dir / "data"), "--conf-dir", str(self.base_dir / "conf")]
        if self.replication is not None:
            args += ["--replication", str(self.replication)]
        if not self.permissions:
            args.append("--no-permissions")
        if self.ha:
            args.append("--ha")
        if self.yarn_nodemanagers:
            args += ["--yarn-nodemanagers", str(self.yarn_nodemanagers)]
        args += kms_launcher_args(self.kms_enabled, self.hadoop_version)
        return args + kerberos_launcher_args(self.kerberized, self.base_dir, self.protection, self.users)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the JVM to quit (closing its stdin), wait, then kill it if needed."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin and not proc.stdin.closed:
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_base and self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        """Whether the JVM is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- the line protocol --------------------------------------------------
    def _pump(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MiniDFSError(
                    f"MiniDFS: no {what} within {timeout:g}s; last lines of {self.log_path}:\n{self.log_tail()}",
                    path=str(self.log_path),
                    reason="timeout",
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait() if self._proc is not None else None
                raise MiniDFSError(
                    f"the MiniDFS JVM exited (code {code}) while waiting for {what}; last lines "
                    f"of {self.log_path}:\n{self.log_tail()}",
                    path=str(self.log_path),
                    reason="jvm exited",
                    exit_code=code,
                )
            if line.startswith("{"):
                return line
            log.debug("minidfs stdout: %s", line)

    def command(self, *words: str) -> Any:
        """Send one protocol command and return its ``result``.

        Raises :class:`MiniDFSError` if the command fails, the JVM has died,
        or no answer arrives within ``command_timeout``.
        """
        if any(not w or any(c.isspace() for c in w) for w in words):
            raise ValueError(f"protocol words must be non-empty and without spaces: {words!r}")
        with self._io_lock:
            proc = self._proc
            if proc is None or proc.poll() is not None or proc.stdin is None:
                raise MiniDFSError(
                    f"MiniDFS is not running (command {' '.join(words)}); last lines of "
                    f"{self.log_path}:\n{self.log_tail()}",
                    path=str(self.log_path),
                    reason="not running",
                )
            try:
                proc.stdin.write(" ".join(words) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise MiniDFSError(f"MiniDFS JVM is gone: {exc}\n{self.log_tail()}", path=str(self.log_path)) from exc
            answer = json.loads(self._next_line(self.command_timeout, f"answer to {words[0]}"))
        if not answer.get("ok"):
            raise MiniDFSError(
                f"MiniDFS command {' '.join(words)!r} failed: {answer.get('error')}",
                reason=str(answer.get("error")),
            )
        return answer.get("result")

    # -- addresses -----------------------------------------------------------
    @property
    def url(self) -> str:
        """``hdfs://127.0.0.1:PORT``, or ``hdfs://minidfs-ns`` in HA mode."""
        return str(self.info["url"])

    @property
    def namenodes(self) -> list[str]:
        """RPC URL of each NameNode (two in HA mode)."""
        return list(self.info["namenodes"])

    @property
    def webhdfs_url(self) -> str:
        """``webhdfs://127.0.0.1:HTTPPORT`` of the first NameNode."""
        return f"webhdfs://{self.info['webhdfs'][0]}"

    @property
    def conf_dir(self) -> str:
        """A Hadoop client config dir (core-site.xml, hdfs-site.xml) for this cluster."""
        return str(self.info["conf_dir"])

    @property
    def yarn(self) -> Yarn:
        """The MiniYARNCluster (:class:`hdfs_models.testing.yarn.Yarn`); needs ``yarn_nodemanagers``."""
        if not self.info.get("yarn"):
            raise MiniDFSError("this MiniDFS runs no YARN: start it with yarn_nodemanagers=N", reason="no yarn")
        return Yarn(self, self.info["yarn"])

    def spark_yarn_conf(self, **options: Any) -> dict[str, str]:
        """``spark-submit --conf`` settings for this YARN (:meth:`~hdfs_models.testing.yarn.Yarn.spark_conf`)."""
        return dict(self.yarn.spark_conf(**options))

    @property
    def log_path(self) -> Path:
        """The JVM's log (its stderr)."""
        assert self.base_dir is not None
        return self.base_dir / "minidfs.log"

    def env(self) -> dict[str, str]:
        """Environment variables a client process needs (``HADOOP_CONF_DIR``; ``KRB5_CONFIG`` if secure)."""
        return self.client_env() if self.kerberized else {"HADOOP_CONF_DIR": self.conf_dir}

    def log_tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the JVM's log."""
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines))
        except OSError:
            return "(no log)"

    # -- clients -------------------------------------------------------------
    def fs(self, user: str | None = None) -> Any:
        """A fresh hdfs-native fsspec filesystem on this cluster.

        Simple auth: hdfs-native takes the user from the process's
        ``HADOOP_USER_NAME`` when it first talks to the NameNode, so one process
        acts as one user (``user`` must be None): to act as another, use
        :meth:`webhdfs_fs` with ``user=`` or a subprocess. With
        ``kerberos=True`` it logs in from ``user``'s keytab (default ``hdfs``,
        the superuser); the process needs ``KRB5_CONFIG`` (:meth:`env`).
        """
        from hdfs_native.fsspec import HdfsFileSystem

        host_port = self.url.split("://", 1)[1]
        host, _, port = host_port.partition(":")
        with mock.patch.dict(os.environ, self.env()):
            fs = HdfsFileSystem(host=host, port=int(port) if port else None, skip_instance_cache=True)
            if self.kerberized:
                from hdfs_native import Client

                who = user or "hdfs"
                fs.client = Client(self.url, kerberos_principal=self.principal(who), kerberos_keytab=self.keytab(who))
            elif user is not None:
                raise ValueError("fs(user=...) needs kerberos=True; see the docstring")
        return fs

    def webhdfs_fs(self, user: str | None = None) -> Any:
        """A fresh fsspec WebHDFS filesystem on the first NameNode."""
        from fsspec.implementations.webhdfs import WebHDFS

        host, port = self.info["webhdfs"][0].split(":")
        return WebHDFS(host=host, port=int(port), user=user, skip_instance_cache=True)

    # -- fault injection -------------------------------------------------------
    def datanodes(self) -> list[dict[str, Any]]:
        """Each DataNode: ``index``, ``xfer`` address, ``alive``."""
        return list(self.command("datanodes"))

    def stop_datanode(self, address: str) -> None:
        """Stop the DataNode whose transfer address is ``address`` (``127.0.0.1:PORT``)."""
        self.command("stop-datanode", address)

    def restart_datanode(self, address: str) -> None:
        """Restart a DataNode stopped by :meth:`stop_datanode`, on the same port."""
        self.command("restart-datanode", address)

    def block_locations(self, path: str) -> list[dict[str, Any]]:
        """The blocks of ``path`` with offset, length and replica addresses."""
        return list(self.command("block-locations", _hdfs_path(path)))

    def corrupt_replica(self, path: str, block: int = 0, datanode: str | None = None) -> dict[str, Any]:
        """Corrupt one replica of block ``block`` of ``path``; returns which.

        ``datanode`` (a transfer address from :meth:`block_locations`) picks
        the replica; by default the first one the NameNode lists.
        """
        words = ["corrupt-replica", _hdfs_path(path), str(block)]
        return dict(self.command(*words, *([datanode] if datanode else [])))

    def corrupt_all_replicas(self, path: str, block: int = 0) -> dict[str, Any]:
        """Corrupt every replica of block ``block`` of ``path``."""
        return dict(self.command("corrupt-all", _hdfs_path(path), str(block)))

    def bytes_read(self) -> int:
        """Sum of the running DataNodes' BytesRead counters."""
        return int(self.command("bytes-read")["total"])

    def failover(self, seconds: float = 0.0) -> dict[str, Any]:
        """HA mode: kill the active NameNode and make the standby active; with ``seconds``, a failover that
        takes that long, as a real one (~30 s): it returns at once, the standby becomes active ``seconds``
        later and the killed one restarts as the standby (``command("ha-state")`` says when; RELIABILITY P3)."""
        return dict(self.command("outage", f"{seconds:g}") if seconds > 0 else self.command("failover"))


def _hdfs_path(path: str) -> str:
    if "://" in path:
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path
