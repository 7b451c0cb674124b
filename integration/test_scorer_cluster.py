"""Scorer on real executors (local-cluster[2,1,1024]): L1 and a model URL on MiniDFS.

L1: the model loads once per Python worker, not once per task — counted in
each worker (``scoring._model_cache.load_count``) over many tasks and jobs.
"""

import uuid

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

require_module("tensorflow", "tf")
require_module("pyspark", "spark")

N_IN, ROWS, PARTS = 12, 600, 12


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from hdfs_models.testing import save_dense

    return save_dense(str(tmp_path_factory.mktemp("scorer-cluster") / "4"), n_in=N_IN)


@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(5).normal(size=(ROWS, N_IN)).astype(np.float32)


def _df(spark, features):
    rows = [(i, features[i].tolist()) for i in range(ROWS)]
    return spark.createDataFrame(rows, "id long, features array<float>").repartition(PARTS)


def _tasks_with_loads(scorer):
    """mapPartitions body: score the partition, then report (pid, loads so far, rows)."""

    def run(rows):
        from scoring._model_cache import cache_info

        scored = sum(1 for _ in scorer.score_partition(rows))
        info = cache_info()
        yield info["pid"], info["loads"], scored

    return run


def test_model_loads_once_per_python_worker_not_per_task(spark_cluster, model_dir, features):
    from hdfs_models.testing import predict_in_process
    from scoring import Scorer

    scorer = Scorer(model_dir, keep_cols=["id"], batch_size=16)
    df = _df(spark_cluster, features)
    want = predict_in_process(model_dir, features=features)["probabilities"].argmax(axis=1)
    for _ in range(2):  # DataFrame face: two jobs of 12 tasks each
        rows = scorer.transform(df).collect()
        assert sorted((r.id, r.prediction) for r in rows) == list(enumerate(want.tolist()))
    reports = []
    for _ in range(3):  # RDD face: three more jobs, each task reporting its worker's loads
        reports += df.rdd.mapPartitions(_tasks_with_loads(scorer)).collect()
    assert len(reports) == 3 * PARTS and sum(r[2] for r in reports) == 3 * ROWS
    loads_by_pid = {}
    for pid, loads, _ in reports:
        loads_by_pid[pid] = max(loads, loads_by_pid.get(pid, 0))
    # Every worker that ran a task loaded the model exactly once, whatever the
    # number of tasks and jobs it served (and whichever face loaded it first).
    assert set(loads_by_pid.values()) == {1}, loads_by_pid
    assert sum(loads_by_pid.values()) == len(loads_by_pid) < len(reports)


def test_model_url_on_minidfs_is_pinned_and_tags_rows(spark_cluster, minidfs, model_dir, features):
    from hdfs_models._publish import publish
    from hdfs_models.testing import predict_in_process
    from scoring import Scorer

    base = f"{minidfs.url}/models/{uuid.uuid4().hex}/dense"
    first = publish(model_dir, base)
    scorer = Scorer(base, keep_cols=["id"], returns="probabilities")
    publish(model_dir, base)  # a newer version appears after the driver pinned the first
    rows = scorer.transform(_df(spark_cluster, features)).collect()
    assert {r.model_version for r in rows} == {first.version}
    want = predict_in_process(model_dir, features=features)["probabilities"]
    got = np.array([r.prediction for r in sorted(rows, key=lambda r: r.id)])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert {
        r.model_version for r in Scorer(base, keep_cols=["id"]).transform(_df(spark_cluster, features)).collect()
    } == {first.version + 1}


def test_direct_read_of_parquet_on_minidfs_through_hdfs_native(spark_cluster, minidfs, model_dir, features):
    """Issue 21: executors read the Parquet files on MiniDFS themselves (hdfs-native), partitions
    included, and score what Spark's own reader would give them."""
    from hdfs_models.testing import predict_in_process
    from scoring import Scorer

    data = f"{minidfs.url}/direct/{uuid.uuid4().hex[:8]}/features"
    _df(spark_cluster, features).selectExpr("*", "id % 3 AS part").write.partitionBy("part").parquet(data)
    scorer = Scorer(model_dir, keep_cols=["id", "part"], returns="probabilities")
    direct = scorer.transform_files(spark_cluster, data)
    through_spark = scorer.transform(spark_cluster.read.parquet(data))
    assert direct.schema == through_spark.schema
    rows = sorted(direct.collect(), key=lambda r: r.id)
    assert [(r.id, r.part) for r in rows] == [(i, i % 3) for i in range(ROWS)]
    want = predict_in_process(model_dir, features=features)["probabilities"]
    np.testing.assert_allclose(np.array([r.prediction for r in rows]), want, atol=1e-6)
    assert scorer.metrics()["read_bytes"] > 0  # read by the executors' own store clients
