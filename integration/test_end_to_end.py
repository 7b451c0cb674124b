"""The production scenario end to end on MiniDFS + local-cluster Spark.

Train the reference CNN on real MNIST digits, ``hdfs-models publish`` it to
HDFS, score a Hive table with ``scoring.job``, compare with in-process
TensorFlow; hot update under ``--watch``; the job's bad-input behaviour.
"""

from __future__ import annotations

import json
import logging
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
    proc = subprocess.run(
        ["hdfs-models", "publish", local_dir, base, "--json"], env=env, capture_output=True, text=True, timeout=600
    )
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
    cols["features"] = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1).astype(np.float32)), x.shape[1]).cast(
        pa.list_(pa.float32())
    )
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

    summary = run(
        spark,
        _job_args(
            "--model",
            base,
            "--input-table",
            "e2e_digits",
            "--output-table",
            "e2e_predictions",
            "--features",
            "features",
            "--keep",
            "id,label",
            "--returns",
            "probabilities",
        ),
    )
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
    import pyarrow as pa
    import pyarrow.parquet as pq

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


class _SwitchSeen(logging.Handler):
    """Sets ``event`` when the watching job's driver switches to ``version`` (hdfs_models.cli._watch logs it)."""

    def __init__(self, version: int) -> None:
        super().__init__(logging.INFO)
        self.version = version
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("scoring with model version") and record.args and record.args[0] == self.version:
            self.event.set()


@pytest.mark.compat
def test_hot_update_to_a_different_model_h6(spark_cluster, minidfs, tmp_path):
    """H6: version 2 (another model) appears while a --watch job runs; each row carries the version
    whose model scored it (both checked against in-process TensorFlow) and no row is lost."""
    import pandas as pd

    from hdfs_models import publish
    from hdfs_models.testing import predict_in_process, save_dense
    from scoring.job import run

    spark = spark_cluster
    models = {
        1: save_dense(str(tmp_path / "m1"), n_in=12, n_out=5, seed=1),
        2: save_dense(str(tmp_path / "m2"), n_in=12, n_out=5, seed=7),
    }
    base = f"{minidfs.url}/tmp/hot-{uuid.uuid4().hex[:8]}/models/dense"
    assert _publish(minidfs, models[1], base)["version"] == 1
    incoming, out = tmp_path / "incoming", str(tmp_path / "scored")
    incoming.mkdir()
    x = np.random.default_rng(5).normal(size=(200, 12)).astype(np.float32)
    expected = {v: predict_in_process(path, features=x)["probabilities"] for v, path in models.items()}
    assert not np.allclose(expected[1], expected[2], atol=1e-3)  # the two models really differ

    def write_part(k: int) -> None:
        ids = np.arange(k * 1000, k * 1000 + len(x))
        _write_parquet_atomically(pd.DataFrame({"id": ids, "features": list(x)}), str(incoming), f"part-{k}.parquet")

    switched = _SwitchSeen(2)
    watch_log = logging.getLogger("hdfs_models.cli._watch")
    level = watch_log.level
    watch_log.addHandler(switched)
    watch_log.setLevel(logging.INFO)
    try:
        write_part(0)
        args = _job_args(
            "--model",
            base,
            "--input-path",
            str(incoming),
            "--output-path",
            out,
            "--features",
            "features",
            "--keep",
            "id",
            "--returns",
            "probabilities",
            "--watch",
            "1",
            "--idle-timeout",
            "60",
        )
        result: dict = {}
        job = threading.Thread(target=lambda: result.update(run(spark, args)), daemon=True)
        job.start()
        _wait_for_rows(spark, out, 200)
        # in-process (TensorFlow is loaded already): a CLI start on a busy machine could outlast --idle-timeout
        assert publish(models[2], base).version == 2
        parts = 1
        # Each micro-batch re-resolves latest once --watch seconds have passed since the last
        # check: feed one part at a time until the driver reports the switch.
        while not switched.event.is_set():
            assert parts <= 10, "the job never switched to version 2"
            write_part(parts)
            parts += 1
            _wait_for_rows(spark, out, 200 * parts)
        write_part(parts)  # written after the switch: must be scored by model 2
        parts += 1
        job.join(timeout=300)
        assert not job.is_alive(), "the watching job did not stop after --idle-timeout"
    finally:
        watch_log.removeHandler(switched)
        watch_log.setLevel(level)

    scored = spark.read.parquet(out).toPandas()
    assert sorted(scored["id"]) == sorted(i for k in range(parts) for i in range(k * 1000, k * 1000 + 200))
    tags = [set(scored[scored["id"] // 1000 == k]["model_version"]) for k in range(parts)]
    assert all(len(t) == 1 for t in tags), tags  # a micro-batch is scored by one version
    tags = [t.pop() for t in tags]
    assert tags[0] == 1 and tags[-1] == 2 and tags == sorted(tags), tags
    for version in (1, 2):
        rows = scored[scored["model_version"] == version].sort_values("id")
        got = np.stack(rows["prediction"].to_numpy())
        want = expected[version][(rows["id"] % 1000).to_numpy()]
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert result["versions"] == [1, 2] and result["rows"] == 200 * parts


# -- bad input: one clear line, exit 1, no partial output -----------------------------------


def _main(capsys, *argv: str) -> tuple[int, str]:
    from scoring.job import main

    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_missing_table_and_path(spark_cluster, published, capsys, tmp_path):
    base, _ = published
    code, line = _main(
        capsys,
        "--model",
        base,
        "--input-table",
        "no_such_table",
        "--output-table",
        "never_written",
        "--features",
        "features",
    )
    assert code == 1 and "input table no_such_table does not exist" in line
    missing = str(tmp_path / "nothing-here")
    code, line = _main(
        capsys, "--model", base, "--input-path", missing, "--output-path", str(tmp_path / "o"), "--features", "features"
    )
    assert code == 1 and f"input path {missing} does not exist" in line
    assert not spark_cluster.catalog.tableExists("never_written")
    assert not (tmp_path / "o").exists()


def test_wrong_feature_shape_writes_no_table(spark_cluster, published, trained, capsys):
    base, _ = published
    spark = spark_cluster
    spark.sql("DROP TABLE IF EXISTS e2e_short")
    short = trained["x"][:50, :783]
    _features_df(spark, short, np.arange(50)).write.format("parquet").saveAsTable("e2e_short")
    code, line = _main(
        capsys,
        "--model",
        base,
        "--input-table",
        "e2e_short",
        "--output-table",
        "e2e_short_out",
        "--features",
        "features",
        "--keep",
        "id",
    )
    assert code == 1
    assert "features" in line and "784" in line and "783" in line, line
    assert not spark.catalog.tableExists("e2e_short_out")
    assert not [t for t in spark.catalog.listTables() if "staging" in t.name]


def test_unreachable_namenode_is_one_line(spark_cluster, trained, capsys, tmp_path):
    _features_df(spark_cluster, trained["x"][:10], np.arange(10)).write.parquet(str(tmp_path / "in"))
    started = time.monotonic()
    code, line = _main(
        capsys,
        "--model",
        "hdfs://127.0.0.1:1/models/mnist",
        "--input-path",
        str(tmp_path / "in"),
        "--output-path",
        str(tmp_path / "o"),
        "--features",
        "features",
    )
    assert code == 1
    assert "hdfs://127.0.0.1:1/models/mnist" in line and "Connection refused" in line, line
    assert not (tmp_path / "o").exists()
    print(f"\nunreachable NameNode reported in {time.monotonic() - started:.1f}s: {line}")
