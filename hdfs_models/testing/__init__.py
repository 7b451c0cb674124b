"""Test helpers for hdfs-models and for Spark jobs that use it.

- :class:`MiniDFS`: a real HDFS (Hadoop's MiniDFSCluster in a JVM built from
  Maven Central) with fault injection; ``kerberos=True`` adds a real KDC
  (:mod:`hdfs_models.testing.kerberos`).
- :func:`spark_session`: a SparkSession switched between ``local[N]`` and
  ``local-cluster[...]`` (real executor JVMs).
- pytest fixtures ``minidfs``, ``spark`` and ``spark_cluster`` come from the
  plugin :mod:`hdfs_models.testing.pytest_plugin`, registered automatically
  when hdfs-models is installed.
"""

from __future__ import annotations

from hdfs_models.testing.kerberos import missing_kerberos_tools
from hdfs_models.testing.minidfs import MiniDFS, ensure_launcher, missing_tools
from hdfs_models.testing.spark import spark_session, stop_spark

__all__ = [
    "MiniDFS",
    "ensure_launcher",
    "missing_kerberos_tools",
    "missing_tools",
    "spark_session",
    "stop_spark",
]
