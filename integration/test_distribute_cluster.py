"""Shipping a model from MiniDFS to real executors (local-cluster[2,1,1024]).

Acceptance of issue 5: every strategy (fetch, archive, files, and a real
``spark-submit --archives hdfs://…#model``) scores the same DataFrame with
identical predictions; fetch reads the store once per node; the archive is
built once for two jobs; a version published between two jobs is used by
the second while every row of the first carries the first version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from hdfs_models import distribute, publish
from hdfs_models._distribute import ARCHIVE_STATS, ensure_archive
from hdfs_models._versions import resolve
from hdfs_models.store._open import open_store
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

N_IN, ROWS = 12, 64


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Two different tiny TF models saved locally (seeds 1 and 7)."""
    require_module("tensorflow", "tf")
    from hdfs_models.testing import save_dense

    root = tmp_path_factory.mktemp("saved")
    return [save_dense(str(root / f"seed{s}"), n_in=N_IN, seed=s) for s in (1, 7)]


@pytest.fixture(scope="module")
def base(minidfs, model_dirs):
    """``hdfs://…/models/<uuid>/dense`` with version 1 (seed 1) published."""
    url = f"{minidfs.url}/models/{uuid.uuid4().hex}/dense"
    publish(model_dirs[0], url)
    return url


def features_df(spark):
    rows = [([float((i * 7 + j) % 11) / 10.0 for j in range(N_IN)], i) for i in range(ROWS)]
    return spark.createDataFrame(rows, "features array<float>, id int").repartition(4)


def score(spark, model):
    from scoring import Scorer

    scorer = Scorer(model, returns="probabilities", keep_cols=("id",))
    return sorted(
        (r["id"], tuple(r["prediction"]), r["model_version"]) for r in scorer.transform(features_df(spark)).collect()
    )


def expected(model_dir):
    import numpy as np

    from hdfs_models.testing import predict_in_process

    x = np.array([[float((i * 7 + j) % 11) / 10.0 for j in range(N_IN)] for i in range(ROWS)], dtype="float32")
    return predict_in_process(model_dir, features=x)["probabilities"]


@pytest.mark.compat
def test_every_strategy_gives_identical_predictions(spark_cluster, base, model_dirs, tmp_path):
    results = {}
    for strategy in ("fetch", "archive", "files"):
        handle = distribute(spark_cluster, base, strategy=strategy, cache_dir=str(tmp_path / "cache"))
        results[strategy] = score(spark_cluster, handle)
    assert results["fetch"] == results["archive"] == results["files"]
    rows = results["fetch"]
    assert len(rows) == ROWS and {v for _, _, v in rows} == {1}
    reference = expected(model_dirs[0])
    for i, probs, _ in rows:
        assert probs == pytest.approx(tuple(reference[i]), abs=1e-6)


def test_fetch_reads_the_store_once_for_two_executors(spark_cluster, minidfs, base, tmp_path):
    handle = distribute(spark_cluster, base, strategy="fetch", cache_dir=str(tmp_path / "node-cache"))
    total = handle.pinned.total_bytes
    before = minidfs.bytes_read()

    def task(_):
        import os as _os

        yield (_os.environ.get("SPARK_EXECUTOR_ID") or "", _os.getpid(), handle.local_path())

    rows = spark_cluster.sparkContext.parallelize(range(8), 8).mapPartitions(task).collect()
    read = minidfs.bytes_read() - before
    assert len({pid for _, pid, _ in rows}) >= 2, rows  # at least two Python workers
    assert len({path for _, _, path in rows}) == 1  # one node-cache entry
    assert total <= read < 2 * total, (read, total)


def test_archive_is_built_once_for_two_jobs(spark_cluster, minidfs, model_dirs):
    url = f"{minidfs.url}/models/{uuid.uuid4().hex}/dense"
    publish(model_dirs[0], url)
    built = ARCHIVE_STATS["built"]
    first = distribute(spark_cluster, url, strategy="archive")
    one = score(spark_cluster, first)
    fs, archives_dir = open_store(f"{url}/_archives")
    archives = fs.ls(archives_dir, detail=True)
    assert len(archives) == 1 and archives[0]["name"].endswith(f"1-{first.digest[:16]}.tar")
    second = distribute(spark_cluster, url, strategy="archive")
    two = score(spark_cluster, second)
    again = fs.ls(archives_dir, detail=True)
    assert ARCHIVE_STATS["built"] - built == 1
    assert [(a["name"], a["size"], a.get("mtime") or a.get("modification_time")) for a in again] == [
        (a["name"], a["size"], a.get("mtime") or a.get("modification_time")) for a in archives
    ]
    assert one == two


@pytest.mark.compat
def test_spark_submit_archives_predicts_the_same(spark_cluster, base, tmp_path):
    import pyspark

    pinned = resolve(base)
    archive_url = ensure_archive(pinned)
    script = tmp_path / "score_submitted.py"
    out = tmp_path / "out.json"
    script.write_text(
        textwrap.dedent(f"""
        import json, sys
        from pyspark.sql import SparkSession
        from hdfs_models import ModelHandle
        from scoring import Scorer
        spark = SparkSession.builder.getOrCreate()
        rows = [([float((i * 7 + j) % 11) / 10.0 for j in range({N_IN})], i) for i in range({ROWS})]
        df = spark.createDataFrame(rows, "features array<float>, id int").repartition(4)
        scorer = Scorer(ModelHandle.submitted("model", version={pinned.version}), returns="probabilities", keep_cols=("id",))
        got = sorted([r["id"], list(r["prediction"]), r["model_version"]] for r in scorer.transform(df).collect())
        json.dump(got, open(sys.argv[1], "w"))
        spark.stop()
    """)
    )
    spark_home = os.path.dirname(pyspark.__file__)
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_HOME": spark_home,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    cmd = [
        os.path.join(spark_home, "bin", "spark-submit"),
        "--master",
        "local-cluster[2,1,1024]",
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        "spark.driver.bindAddress=127.0.0.1",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        f"spark.executorEnv.PYSPARK_PYTHON={sys.executable}",
        "--archives",
        f"{archive_url}#model",
        str(script),
        str(out),
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-4000:]
    submitted = [(i, tuple(p), v) for i, p, v in json.load(open(out))]
    handle = distribute(spark_cluster, base, strategy="fetch", cache_dir=str(tmp_path / "cache"))
    assert submitted == score(spark_cluster, handle)


def test_version_published_between_jobs(spark_cluster, minidfs, model_dirs, tmp_path):
    from scoring import Scorer

    url = f"{minidfs.url}/models/{uuid.uuid4().hex}/dense"
    publish(model_dirs[0], url)
    cache = str(tmp_path / "cache")
    first = distribute(spark_cluster, url, cache_dir=cache)
    job1 = Scorer(first, returns="probabilities", keep_cols=("id",)).transform(features_df(spark_cluster))
    rows1 = job1.collect()
    publish(model_dirs[1], url)
    second = distribute(spark_cluster, url, cache_dir=cache)
    rows2 = score(spark_cluster, second)
    rows1_again = job1.collect()  # the first job's plan stays pinned to version 1
    assert (first.version, second.version) == (1, 2)
    assert {r["model_version"] for r in rows1} == {r["model_version"] for r in rows1_again} == {1}
    assert {v for _, _, v in rows2} == {2}
    ref2 = expected(model_dirs[1])
    assert all(p == pytest.approx(tuple(ref2[i]), abs=1e-6) for i, p, _ in rows2)
