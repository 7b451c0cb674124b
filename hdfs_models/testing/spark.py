"""A SparkSession for tests, switched between ``local[N]`` and ``local-cluster``.

One Python process can hold one SparkContext at a time, so both fixtures go
through :func:`spark_session`, which stops the current session when a test
asks for a different master. Order tests so that switches are rare (pytest
runs ``tests/`` before ``integration/``).

``local-cluster[E,C,M]`` starts E real executor JVMs (C cores, M MiB each)
from the pip-installed pyspark: use it wherever per-executor or per-node
behaviour is being tested.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from hdfs_models.errors import MissingExtraError

_lock = threading.Lock()
_current: dict[str, Any] = {}

LOCAL = "local[2]"
LOCAL_CLUSTER = "local-cluster[2,1,1024]"


def spark_session(master: str = LOCAL, conf: Mapping[str, str] | None = None) -> Any:
    """Return a SparkSession on ``master``, reusing the current one if it matches.

    ``conf`` entries are applied when a session is created; a request with a
    different master or conf stops the running session first. Python
    workers run ``sys.executable``.
    """
    try:
        import pyspark
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "hdfs_models.testing.spark needs pyspark: pip install 'hdfs-models[spark]'",
            reason="no pyspark",
            extra="hdfs-models[spark]",
        ) from exc
    key = (master, tuple(sorted((conf or {}).items())))
    with _lock:
        if _current.get("key") == key and _current["session"].sparkContext._jsc is not None:
            return _current["session"]
        stop_spark()
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
        # local-cluster launches executors with SPARK_HOME's scripts and jars.
        os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))
        # Keep every Spark socket on loopback: tests talk to nothing else.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            SparkSession.builder.master(master)
            .appName("hdfs-models-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.memory", "1g")
            .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        for k, v in (conf or {}).items():
            builder = builder.config(k, v)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("WARN")
        _current.update(key=key, session=session)
        return session


def stop_spark() -> None:
    """Stop the session started by :func:`spark_session`, if any."""
    session = _current.pop("session", None)
    _current.pop("key", None)
    if session is not None:
        session.stop()
