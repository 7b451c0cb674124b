"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

``minidfs``
    session-scoped :class:`hdfs_models.testing.MiniDFS` (3 DataNodes, 1 MiB
    blocks, permissions on). Skips with a reason when Java or Maven is
    missing, except under ``CI=true`` where that is a failure.
``secure_minidfs``
    module-scoped Kerberized :class:`hdfs_models.testing.MiniDFS` (a KDC in
    the same JVM; users ``alice`` and ``bob``), with ``KRB5_CONFIG`` set for
    the module. A module may set ``SECURE_MINIDFS_OPTIONS`` (a dict of
    MiniDFS options, e.g. ``{"ha": True}``). Needs ``kinit`` too; skips, or
    fails under ``CI=true``, without it.
``minidfs_yarn``
    module-scoped :class:`hdfs_models.testing.MiniDFS` with one DataNode and
    a MiniYARNCluster of two NodeManagers (``minidfs_yarn.yarn``,
    ``minidfs_yarn.spark_yarn_conf()``); the same skip/fail rule. Start-up
    takes 15-80 s and it holds ~10 GB of (unenforced) container memory, so
    keep YARN tests in one module.
``spark``
    a ``local[2]`` SparkSession (shared; switched, not duplicated).
``spark_cluster``
    a ``local-cluster[2,1,1024]`` SparkSession: two real executor JVMs.

Helpers: :func:`require_module` imports an optional dependency for a test or
skips naming the extra to install; under ``CI=true`` a missing dependency is
a failure, never a skip (:func:`require_or_skip`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from hdfs_models.testing.kerberos import missing_kerberos_tools
from hdfs_models.testing.minidfs import MiniDFS, missing_tools
from hdfs_models.testing.spark import LOCAL, LOCAL_CLUSTER, spark_session


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_or_skip(reason: str) -> None:
    """Skip the test with ``reason``; under ``CI=true`` fail it instead."""
    if _under_ci():
        pytest.fail(f"{reason} (CI=true: nothing may skip for a missing dependency)", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, extra: str) -> ModuleType:
    """Import and return ``name`` for a test; if it is missing, skip naming ``extra``.

    Use instead of ``pytest.importorskip`` for the optional dependencies
    (TensorFlow, pyspark, pyarrow, hdfs-native): under ``CI=true`` a missing
    module fails the test (or the module, at collection), so a broken install
    cannot silently drop the tests that need it.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require_or_skip(f"needs {name} (pip install 'hdfs-models[{extra}]'): {exc}")
        raise  # unreachable: require_or_skip raised


@pytest.fixture(scope="session")
def minidfs() -> Iterator[Any]:
    """A running MiniDFSCluster shared by the whole test session."""
    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    with MiniDFS() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def secure_minidfs(request: Any) -> Iterator[Any]:
    """A Kerberized MiniDFS shared by one test module (options: ``SECURE_MINIDFS_OPTIONS``)."""
    missing = missing_tools() or missing_kerberos_tools()
    if missing:
        require_or_skip(missing)
    options = {"datanodes": 2, **getattr(request.module, "SECURE_MINIDFS_OPTIONS", {})}
    with MiniDFS(kerberos=True, **options) as cluster, pytest.MonkeyPatch.context() as mp:
        mp.setenv("KRB5_CONFIG", cluster.krb5_conf)
        yield cluster


@pytest.fixture(scope="module")
def minidfs_yarn() -> Iterator[Any]:
    """MiniDFS (one DataNode) plus a MiniYARNCluster with two NodeManagers, shared by one test module."""
    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    with MiniDFS(datanodes=1, yarn_nodemanagers=2) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def spark_hive_conf(tmp_path_factory: Any) -> dict[str, str]:
    """Spark settings for Hive support with a per-session warehouse and Derby metastore."""
    root = tmp_path_factory.mktemp("spark-hive")
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
        "spark.ui.showConsoleProgress": "false",
    }


@pytest.fixture
def spark(spark_hive_conf: dict[str, str]) -> Any:
    """A local[2] SparkSession (Hive support on) whose Python workers run this interpreter."""
    require_module("pyspark", "spark")
    return spark_session(LOCAL, spark_hive_conf)


@pytest.fixture
def spark_cluster(spark_hive_conf: dict[str, str]) -> Any:
    """A local-cluster[2,1,1024] SparkSession (Hive support on): two separate executor JVMs."""
    require_module("pyspark", "spark")
    return spark_session(LOCAL_CLUSTER, spark_hive_conf)


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Group tests by the Spark master they need, so the session switches rarely.

    Within the collected order (``tests/`` before ``integration/``), tests using
    ``spark`` (local) run before tests using neither, and tests using
    ``spark_cluster`` (local-cluster) run last.
    """

    def rank(item: Any) -> int:
        names = getattr(item, "fixturenames", ())
        if "spark_cluster" in names:
            return 2
        return 0 if "spark" in names else 1

    items[:] = sorted(items, key=rank)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """Stop a SparkSession started by the fixtures."""
    import sys

    if "hdfs_models.testing.spark" in sys.modules:
        sys.modules["hdfs_models.testing.spark"].stop_spark()
