"""GPU assignment on real executors: local-cluster workers that discover fake GPUs.

As Spark's own tests do (pyspark ``TaskContextTestsWithResources``), each
worker runs a discovery script reporting GPU addresses "0" and "1"; executors
get both and every task one (``spark.task.resource.gpu.amount=1``). The
executors also inherit ``CUDA_VISIBLE_DEVICES=4,6``, so addresses are positions
in that list: a task given "1" must be bound to physical GPU 6.

No GPU is needed: the probe runs :func:`scoring._device.bind_task` in each task
with TensorFlow's GPU count given as 2 (tensorflow-cpu sees none), and reports
what the task was assigned, what the process's CUDA_VISIBLE_DEVICES became,
and the placement chosen. Then a Scorer runs on the same cluster with the real
TensorFlow: each worker is bound to its first task's GPU and, TensorFlow
seeing no GPU, scores on the CPU with the right predictions.
"""

import json
import os
import stat
import time

import pytest

from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

require_module("pyspark", "spark")

PHYSICAL = {"0": "4", "1": "6"}


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory):
    from hdfs_models.testing.spark import spark_session, stop_spark

    script = tmp_path_factory.mktemp("gpus") / "discover-gpus.sh"
    script.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    conf = {
        "spark.worker.resource.gpu.discoveryScript": str(script),
        "spark.worker.resource.gpu.amount": "2",
        "spark.executor.resource.gpu.amount": "2",
        "spark.task.resource.gpu.amount": "1",
        "spark.executorEnv.CUDA_VISIBLE_DEVICES": ",".join(PHYSICAL.values()),
    }
    spark = spark_session("local-cluster[2,2,1024]", conf)
    yield spark
    stop_spark()  # the next test's fixture must not inherit fake GPUs


def _make_probe():
    """The per-task probe, built here so cloudpickle ships it by value (executors cannot import tests)."""

    def _probe(_index, rows):
        from scoring._device import bind_task, task_gpu_addresses

        list(rows)
        started = time.time()
        placement = bind_task(tf_gpu_count=lambda: 2)
        time.sleep(0.2)  # overlap tasks, so both of an executor's GPUs are in use at once
        yield json.dumps({
            "pid": os.getpid(), "started": started, "addresses": list(task_gpu_addresses()),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": placement.device,
            "gpus": list(placement.gpus), "asked": list(placement.asked),
        })  # fmt: skip

    return _probe


def test_each_task_is_bound_to_the_gpu_spark_assigned_it(gpu_cluster):
    sc = gpu_cluster.sparkContext
    reports = [json.loads(r) for r in sc.parallelize(range(16), 16).mapPartitionsWithIndex(_make_probe()).collect()]
    assert len(reports) == 16
    assert {a for r in reports for a in r["addresses"]} == {"0", "1"}  # both fake GPUs were handed out
    for r in reports:
        assert len(r["addresses"]) == 1, r
        assert r["asked"] == [PHYSICAL[r["addresses"][0]]], r  # address = position in CUDA_VISIBLE_DEVICES
    by_worker: dict[int, list[dict]] = {}
    for r in sorted(reports, key=lambda r: r["started"]):
        by_worker.setdefault(r["pid"], []).append(r)
    for pid, tasks in by_worker.items():
        first = tasks[0]
        # The worker's first task bound the process to its own GPU...
        assert first["gpus"] == first["asked"] and first["device"] == "/GPU:0", first
        for r in tasks:
            # ...and CUDA_VISIBLE_DEVICES never moves after that: CUDA reads it once per process.
            assert r["visible"] == first["asked"][0], (pid, r)
            assert r["gpus"] == first["asked"] and r["device"] == "/GPU:0", (pid, r)


def test_scorer_tasks_bind_their_gpu_and_score_on_cpu_when_tensorflow_sees_none(gpu_cluster, tmp_path):
    import numpy as np

    from hdfs_models.testing import predict_in_process, save_dense
    from scoring import Scorer

    model = save_dense(str(tmp_path / "3"), n_in=8)
    x = np.random.default_rng(2).normal(size=(64, 8)).astype(np.float32)
    scorer = Scorer(model, keep_cols=["id"], batch_size=16)

    def score(rows):
        from pyspark import TaskContext

        from scoring._model_cache import cache_info

        scored = [(r.id, r.prediction) for r in scorer.score_partition(rows)]
        gpu = TaskContext.get().resources()["gpu"].addresses
        yield json.dumps(
            {
                "scored": scored,
                "addresses": list(gpu),
                "pid": os.getpid(),
                "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "keys": cache_info()["keys"],
            }
        )

    df = gpu_cluster.createDataFrame([(i, x[i].tolist()) for i in range(64)], "id long, features array<float>")
    reports = [json.loads(r) for r in df.repartition(8).rdd.mapPartitions(score).collect()]
    want = predict_in_process(model, features=x)["probabilities"].argmax(axis=1)
    assert sorted(p for r in reports for p in map(tuple, r["scored"])) == list(enumerate(want.tolist()))
    for r in reports:
        assert r["visible"] in PHYSICAL.values(), r  # the worker was bound to one fake GPU...
        assert r["keys"] and all("@gpu" not in k for k in r["keys"]), r  # ...and, seeing none, used the CPU
