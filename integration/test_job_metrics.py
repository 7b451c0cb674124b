"""Job metrics on real executors (local-cluster[2,1,1024]) with the model on MiniDFS.

``scoring.job --metrics-json`` must report what the executors did: every
input row once, one node-cache miss that downloaded the model's bytes once
for the node (both executors share one ``--cache-dir``, as executors on one
host share a node cache), hits for every other localize call, rows per
version adding up to ``rows``, and stage times that account for the task
time. A task Spark retries is counted once.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 2000


@pytest.fixture(scope="module")
def published(minidfs, tmp_path_factory):
    require_module("tensorflow", "tf")
    from hdfs_models import publish
    from hdfs_models.testing import save_dense

    local = save_dense(str(tmp_path_factory.mktemp("dense") / "export"))
    base = f"{minidfs.url}/tmp/metrics-{uuid.uuid4().hex[:8]}/models/dense"
    return base, publish(local, base)


def _input(spark, path: str, rows: int = ROWS, partitions: int = 8) -> None:
    rng = np.random.default_rng(3)
    data = [(i, rng.normal(size=12).astype(np.float32).tolist()) for i in range(rows)]
    spark.createDataFrame(data, "id long, features array<float>").repartition(partitions).write.parquet(path)


def _jobs(spark):
    """The jobs this SparkContext ran, from its status store (the UI is off in tests), as a java List."""
    context = spark.sparkContext
    return context._jvm.scala.jdk.javaapi.CollectionConverters.asJava(context._jsc.sc().statusStore().jobsList(None))


def _job_descriptions(spark) -> list[str]:
    """Descriptions of the jobs this SparkContext ran."""
    jobs = _jobs(spark)
    out = []
    for i in range(jobs.size()):
        description = jobs.get(i).description()
        if description.isDefined():
            out.append(description.get())
    return out


def test_metrics_json_accounts_for_every_row_and_byte(spark_cluster, published, tmp_path):
    from scoring.job import main

    base, pinned = published
    _input(spark_cluster, str(tmp_path / "in"))
    metrics_path = tmp_path / "metrics.json"
    code = main(
        [
            "--model",
            base,
            "--input-path",
            str(tmp_path / "in"),
            "--output-path",
            str(tmp_path / "out"),
            "--features",
            "features",
            "--keep",
            "id",
            "--batch-size",
            "256",
            "--cache-dir",
            str(tmp_path / "node-cache"),
            "--metrics-json",
            str(metrics_path),
        ]
    )
    assert code == 0
    m = json.loads(metrics_path.read_text())
    print("\n" + json.dumps(m, indent=1, sort_keys=True))

    assert m["rows"] == m["rows_in"] == m["rows_written"] == ROWS
    assert m["versions"] == {"1": ROWS} and sum(m["versions"].values()) == m["rows"]
    assert m["version"] == 1 and m["tasks"] >= 2

    cache = m["cache"]
    assert cache["errors"] == 0 and cache["localize_calls"] >= 1
    assert cache["hits"] + cache["misses"] == cache["localize_calls"]
    assert cache["misses"] == 1 and cache["bytes_downloaded"] == pinned.total_bytes  # once for the node
    loads = m["model_loads"]
    assert loads["count"] == len(loads["per_worker"]) >= 1  # each Python worker loads once
    assert cache["localize_calls"] == loads["count"]  # a handle localizes once per worker, before its load

    stage_sum = sum(m["stages"].values())
    assert abs(stage_sum - m["task_seconds"]) <= 0.10 * m["task_seconds"], (stage_sum, m["task_seconds"])
    assert m["stages"]["inference"] > 0 and m["stages"]["load"] > 0
    assert m["seconds"] >= m["scoring_seconds"] > 0
    assert m["rows_per_second"] == round(ROWS / m["seconds"], 1)

    assert f"hdfs-models score {pinned.url} version 1" in _job_descriptions(spark_cluster)


def test_a_retried_task_is_counted_once(spark_cluster, published):
    from pyspark import TaskContext
    from pyspark.sql.functions import col, udf
    from pyspark.sql.functions import sum as sum_

    from scoring import Scorer

    base, _ = published

    @udf("long")
    def fail_first_attempt(i):
        # Partition 0 (ids 0..99) fails once on its last row, after its rows went through the scorer.
        context = TaskContext.get()
        if i == 99 and context.partitionId() == 0 and context.attemptNumber() == 0:
            raise RuntimeError("injected failure of the first attempt")
        return i

    df = spark_cluster.range(0, 400, numPartitions=4).selectExpr(
        "id", "array_repeat(cast(id as float), 12) AS features"
    )
    scorer = Scorer(base, keep_cols=("id",), batch_size=32)
    out = scorer.transform(df).withColumn("checked", fail_first_attempt(col("id")))
    assert out.select(sum_("checked")).first()[0] == sum(range(400))  # forces the failing column
    assert _failed_tasks(spark_cluster) >= 1  # the injected failure happened, and was retried
    report = scorer.metrics()
    assert report["rows"] == report["rows_in"] == 400 and report["tasks"] == 4


def _failed_tasks(spark) -> int:
    """Failed task attempts over every job this SparkContext ran (its status store)."""
    jobs = _jobs(spark)
    return sum(jobs.get(i).numFailedTasks() for i in range(jobs.size()))
