"""Test helpers for hdfs-models and for Spark jobs that use it.

- :class:`MiniDFS`: a real HDFS (Hadoop's MiniDFSCluster in a JVM built from
  Maven Central) with fault injection; ``kerberos=True`` adds a real KDC
  (:mod:`hdfs_models.testing.kerberos`).
- :func:`spark_session`: a SparkSession switched between ``local[N]`` and
  ``local-cluster[...]`` (real executor JVMs).
- :func:`write_fake_model`: a fake SavedModel tree (valid protobuf, no
  TensorFlow); :func:`tree_digest`: every file's sha256, to compare trees.
- :func:`save_dense`, :func:`save_multi`: tiny real SavedModels (TensorFlow
  imported inside); :func:`predict_in_process`: their predictions without
  Spark; :func:`write_features`: a Parquet dir of rows to score
  (:mod:`hdfs_models.testing.models`, was ``scoring.testing``).
- pytest fixtures ``minidfs``, ``spark`` and ``spark_cluster`` come from the
  plugin :mod:`hdfs_models.testing.pytest_plugin`, registered automatically
  when hdfs-models is installed.
"""

from __future__ import annotations

from hdfs_models.testing.fake_model import SAVED_MODEL_PB, fake_model_files, tree_digest, write_fake_model
from hdfs_models.testing.kerberos import missing_kerberos_tools
from hdfs_models.testing.launcher import MiniDFSError, ensure_launcher, missing_tools
from hdfs_models.testing.minidfs import MiniDFS
from hdfs_models.testing.models import predict_in_process, save_dense, save_multi, write_features
from hdfs_models.testing.spark import spark_session, stop_spark

__all__ = [
    "MiniDFS",
    "MiniDFSError",
    "SAVED_MODEL_PB",
    "ensure_launcher",
    "fake_model_files",
    "missing_kerberos_tools",
    "missing_tools",
    "predict_in_process",
    "save_dense",
    "save_multi",
    "spark_session",
    "stop_spark",
    "tree_digest",
    "write_fake_model",
    "write_features",
]
