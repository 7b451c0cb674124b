"""The production scenario end to end on MiniDFS + local-cluster Spark.

Train the reference CNN on real MNIST digits, ``hdfs-models publish`` it to
HDFS, score a Hive table with ``scoring.job``, compare with in-process
TensorFlow; hot update under ``--watch``; the job's bad-input behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "examples"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from train_mnist import load_mnist_5k, train

    model_dir = str(tmp_path_factory.mktemp("cnn") / "savedmodel")
    accuracy = train(model_dir, epochs=8, seed=0)
    _, _, x_test, y_test = load_mnist_5k(seed=0)
    return {"dir": model_dir, "accuracy": accuracy, "x": x_test, "y": y_test}


def _publish(minidfs, local_dir: str, base: str) -> dict:
    env = dict(os.environ, **minidfs.env())
    proc = subprocess.run(["hdfs-models", "publish", local_dir, base, "--json"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def published(minidfs, trained):
    base = f"{minidfs.url}/tmp/e2e-{uuid.uuid4().hex[:8]}/models/mnist"
    return base, _publish(minidfs, trained["dir"], base)


def _features_df(spark, x: np.ndarray, ids: np.ndarray, labels: np.ndarray | None = None):
    import pyarrow as pa

    cols = {"id": pa.array(ids.astype(np.int64))}
    if labels is not None:
        cols["label"] = pa.array(labels.astype(np.int64))
    cols["features"] = pa.FixedSizeListArray.from_arrays(
        pa.array(x.reshape(-1).astype(np.float32)), x.shape[1]).cast(pa.list_(pa.float32()))
    return spark.createDataFrame(pa.table(cols).to_pandas())


def _in_process(model_dir: str, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    fn = tf.saved_model.load(model_dir).signatures["serving_default"]
    return fn(features=tf.constant(x))["probabilities"].numpy()


def _job_args(*argv: str):
    from scoring.job import build_parser

    return build_parser().parse_args(list(argv))


def test_publish_score_hive_table_matches_tensorflow(spark_cluster, trained, published):
    from scoring.job import run

    base, info = published
    assert info["version"] == 1
    spark = spark_cluster
    spark.sql("DROP TABLE IF EXISTS e2e_digits")
    spark.sql("DROP TABLE IF EXISTS e2e_predictions")
    ids = np.arange(len(trained["y"]))
    _features_df(spark, trained["x"], ids, trained["y"]).write.format("parquet").saveAsTable("e2e_digits")

    summary = run(spark, _job_args("--model", base, "--input-table", "e2e_digits", "--output-table",
                                   "e2e_predictions", "--features", "features", "--keep", "id,label",
                                   "--outputs", "probabilities"))
    assert summary["rows"] == len(ids) and summary["version"] == 1

    out = spark.table("e2e_predictions").orderBy("id").toPandas()
    assert out["id"].tolist() == ids.tolist()
    assert set(out["model_version"]) == {1}
    got = np.stack(out["prediction"].to_numpy())
    expected = _in_process(trained["dir"], trained["x"])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (np.argmax(got, axis=1) == np.argmax(expected, axis=1)).all()
    accuracy = float(np.mean(np.argmax(got, axis=1) == trained["y"]))
    print(f"\nheld-out accuracy through HDFS + Spark: {accuracy:.4f} (in-process {trained['accuracy']:.4f})")
    assert accuracy >= 0.95


def _write_parquet_atomically(df, directory: str, name: str) -> None:
    """Write one Parquet file where the stream cannot see it half-written (hidden, then renamed)."""
    import pyarrow.parquet as pq
    import pyarrow as pa

    hidden = os.path.join(directory, f".{name}.tmp")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), hidden)
    os.rename(hidden, os.path.join(directory, name))


def _wait_for_rows(spark, path: str, rows: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(path) and any(f.endswith(".parquet") for f in os.listdir(path)):
            if spark.read.parquet(path).count() >= rows:
                return
        time.sleep(1)
    raise AssertionError(f"{path} did not reach {rows} rows within {timeout}s")


def test_hot_update_switches_version_without_losing_rows(spark_cluster, minidfs, trained, tmp_path):
    import pandas as pd
    from scoring.job import run

    spark = spark_cluster
    base = f"{minidfs.url}/tmp/hot-{uuid.uuid4().hex[:8]}/models/mnist"
    _publish(minidfs, trained["dir"], base)
    incoming, out = tmp_path / "incoming", str(tmp_path / "scored")
    incoming.mkdir()
    x = trained["x"][:200]

    def batch(first: int) -> pd.DataFrame:
        ids = np.arange(first, first + len(x))
        return pd.DataFrame({"id": ids, "features": list(x)})

    _write_parquet_atomically(batch(0), str(incoming), "part-0.parquet")
    args = _job_args("--model", base, "--input-path", str(incoming), "--output-path", out,
                     "--features", "features", "--keep", "id", "--watch", "1", "--idle-timeout", "20")
    result: dict = {}
    job = threading.Thread(target=lambda: result.update(run(spark, args)), daemon=True)
    job.start()
    _wait_for_rows(spark, out, 200)
    assert _publish(minidfs, trained["dir"], base)["version"] == 2
    time.sleep(2)  # more than --watch: the next micro-batch resolves latest again
    _write_parquet_atomically(batch(1000), str(incoming), "part-1.parquet")
    _write_parquet_atomically(batch(2000), str(incoming), "part-2.parquet")
    job.join(timeout=300)
    assert not job.is_alive(), "the watching job did not stop after --idle-timeout"

    scored = spark.read.parquet(out).toPandas()
    assert sorted(scored["id"]) == sorted(list(range(200)) + list(range(1000, 1200)) + list(range(2000, 2200)))
    first = scored[scored["id"] < 1000]
    later = scored[scored["id"] >= 1000]
    assert set(first["model_version"]) == {1}
    assert set(later["model_version"]) == {2}
    assert result["versions"] == [1, 2] and result["rows"] == 600


# -- bad input: one clear line, exit 1, no partial output -----------------------------------


def _main(capsys, *argv: str) -> tuple[int, str]:
    from scoring.job import main

    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_missing_table_and_path(spark_cluster, published, capsys, tmp_path):
    base, _ = published
    code, line = _main(capsys, "--model", base, "--input-table", "no_such_table", "--output-table", "never_written",
                       "--features", "features")
    assert code == 1 and "input table no_such_table does not exist" in line
    missing = str(tmp_path / "nothing-here")
    code, line = _main(capsys, "--model", base, "--input-path", missing, "--output-path", str(tmp_path / "o"),
                       "--features", "features")
    assert code == 1 and f"input path {missing} does not exist" in line
    assert not spark_cluster.catalog.tableExists("never_written")
    assert not (tmp_path / "o").exists()


def test_wrong_feature_shape_writes_no_table(spark_cluster, published, trained, capsys):
    base, _ = published
    spark = spark_cluster
    spark.sql("DROP TABLE IF EXISTS e2e_short")
    short = trained["x"][:50, :783]
    _features_df(spark, short, np.arange(50)).write.format("parquet").saveAsTable("e2e_short")
    code, line = _main(capsys, "--model", base, "--input-table", "e2e_short", "--output-table", "e2e_short_out",
                       "--features", "features", "--keep", "id")
    assert code == 1
    assert "features" in line and "784" in line and "783" in line, line
    assert not spark.catalog.tableExists("e2e_short_out")
    assert not [t for t in spark.catalog.listTables() if "staging" in t.name]


def test_unreachable_namenode_is_one_line(spark_cluster, trained, capsys, tmp_path):
    _features_df(spark_cluster, trained["x"][:10], np.arange(10)).write.parquet(str(tmp_path / "in"))
    started = time.monotonic()
    code, line = _main(capsys, "--model", "hdfs://127.0.0.1:1/models/mnist", "--input-path", str(tmp_path / "in"),
                       "--output-path", str(tmp_path / "o"), "--features", "features")
    assert code == 1
    assert "hdfs://127.0.0.1:1/models/mnist" in line and "Connection refused" in line, line
    assert not (tmp_path / "o").exists()
    print(f"\nunreachable NameNode reported in {time.monotonic() - started:.1f}s: {line}")
