"""The HA MiniDFS the outage tests share (P1 ``test_watch_outage.py``, P3 ``test_failover.py``).

:func:`ha_cluster` is the body of a module fixture: two NameNodes (``minidfs-ns``), two
DataNodes, ``HADOOP_CONF_DIR`` pointed at the cluster's client conf for the module.
(:class:`Outage` starts one from a progress callback mid-transfer.) :func:`settled` waits until no outage runs and one NameNode is active, the other standby, so a
test starts from a calm cluster whatever the test before it did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hdfs_models.testing import MiniDFS, missing_tools
from hdfs_models.testing.pytest_plugin import require_or_skip


def ha_cluster(**options: Any) -> Iterator[MiniDFS]:
    """Start the HA cluster (``options`` as :class:`MiniDFS`'s) and yield it, its conf in the environment."""
    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    with MiniDFS(ha=True, datanodes=2, **options) as cluster, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HADOOP_CONF_DIR", cluster.conf_dir)
        yield cluster


def settled(cluster: MiniDFS, wait: float) -> dict[str, Any]:
    """Wait up to ``wait`` seconds until no outage runs and the NameNodes are active + standby; ``ha-state``."""
    deadline = time.monotonic() + wait
    while True:
        state = cluster.command("ha-state")
        if not state["outage"] and sorted(n["state"] for n in state["namenodes"]) == ["active", "standby"]:
            return dict(state)
        assert time.monotonic() < deadline, f"the cluster did not settle: {state}"
        time.sleep(0.5)


class Outage:
    """A progress callback that starts a failover of ``seconds`` once ``after`` bytes have moved.

    The callback that crosses ``after`` starts it (the command returns once the active NameNode
    is down). The download's threads report under one lock, so every other reader waits at its
    next chunk until the NameNode is down: none runs ahead of the outage. ``done``: bytes moved
    when it started; ``at``: when (monotonic).
    """

    def __init__(self, cluster: MiniDFS, after: int, seconds: float = 30.0) -> None:
        self.cluster, self.after, self.seconds = cluster, after, seconds
        self.lock = threading.Lock()
        self.done: int | None = None
        self.at: float | None = None
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        with self.lock:
            if self.done is None and done >= self.after:
                self.cluster.failover(self.seconds)
                self.done, self.at = done, time.monotonic()
