"""Spark 3.5 and 4.x alike: every face, strategy and ``returns=``, the job, and SavedModels
written the ways users write them, each predicting exactly what TensorFlow predicts.

Marked ``compat``: both CI legs run this module, the current one (pyspark 4.x, numpy 2,
Hadoop 3.4) and the compatibility one (pyspark 3.5, numpy 1.26, Hadoop 3.3.6), on
``local-cluster`` (two executor JVMs) with the model on MiniDFS. On Spark 3.5 the
``files`` strategy on a local directory takes the file-by-file route (Spark 3.5 refuses
``addFile`` of a local directory outside ``local[N]``); on 4.x the recursive one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from hdfs_models import distribute, publish
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = [pytest.mark.integration, pytest.mark.compat]

ROWS = 96


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The two-input, three-output model (probabilities, score, label) and a dense one."""
    require_module("tensorflow", "tf")
    from hdfs_models.testing import save_dense, save_multi

    root = tmp_path_factory.mktemp("lines")
    return {"multi": save_multi(str(root / "multi")), "dense": save_dense(str(root / "dense"), n_in=12)}


@pytest.fixture(scope="module")
def bases(minidfs, saved, tmp_path_factory):
    """The multi model published to MiniDFS and to a local base directory.

    ``named``: a copy of the published version dir on MiniDFS under a name of its own
    (``files`` ships a store directory as ``./<its name>``, and other modules of this
    session ship other models' ``.../1``).
    """
    hdfs_base = f"{minidfs.url}/lines/{uuid.uuid4().hex[:8]}/multi"
    local_base = str(tmp_path_factory.mktemp("local-store") / "multi")
    publish(saved["multi"], hdfs_base)
    publish(saved["multi"], local_base)
    named = f"/lines/{uuid.uuid4().hex[:8]}/multi-{uuid.uuid4().hex[:8]}"
    minidfs.fs().put(os.path.join(local_base, "1"), named, recursive=True)
    return {"hdfs": hdfs_base, "local": local_base, "named": f"{minidfs.url}{named}"}


def _inputs() -> dict[str, np.ndarray]:
    i = np.arange(ROWS)
    image = ((i[:, None] * 3 + np.arange(6)[None, :]) % 7 / 7.0).astype(np.float32)
    extra = np.stack([i % 5 / 5.0, i % 3 / 3.0], axis=1).astype(np.float64)
    return {"image": image, "extra": extra}


def _df(spark):
    x = _inputs()
    rows = [(int(i), x["image"][i].tolist(), x["extra"][i].tolist()) for i in range(ROWS)]
    return spark.createDataFrame(rows, "id int, image array<float>, extra array<double>").repartition(4)


@pytest.fixture(scope="module")
def reference(saved):
    from hdfs_models.testing import predict_in_process

    x = _inputs()
    return predict_in_process(saved["multi"], image=x["image"].reshape(-1, 2, 3, 1), extra=x["extra"])


def _check_all(rows, reference, version_col: bool = True) -> None:
    """``rows``: (id, probabilities, score, label[, version]) from any face, in any order."""
    rows = sorted(rows, key=lambda r: r[0])
    assert [r[0] for r in rows] == list(range(ROWS))
    np.testing.assert_allclose(np.array([r[1] for r in rows]), reference["probabilities"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.array([r[2] for r in rows]), reference["score"], rtol=1e-6, atol=1e-7)
    assert [r[3] for r in rows] == reference["label"].tolist()
    if version_col:
        assert {r[4] for r in rows} == {1}


def test_transform_with_every_strategy_predicts_like_tensorflow(spark_cluster, bases, reference, tmp_path):
    from scoring import Scorer

    shipped = {
        "fetch": distribute(spark_cluster, bases["hdfs"], strategy="fetch", cache_dir=str(tmp_path / "cache")),
        "archive": distribute(spark_cluster, bases["hdfs"], strategy="archive"),
        "files (hdfs)": distribute(spark_cluster, bases["named"], strategy="files"),
        "files (local dir)": distribute(spark_cluster, bases["local"], strategy="files"),
    }
    again = distribute(spark_cluster, bases["local"], strategy="files")  # the same version again: nothing re-added
    assert again.flat_files == shipped["files (local dir)"].flat_files
    for name, handle in shipped.items():
        out = Scorer(handle, returns="all", keep_cols=("id",)).transform(_df(spark_cluster)).collect()
        _check_all([(r["id"], r["probabilities"], r["score"], r["label"], r["model_version"]) for r in out], reference)
        assert all(isinstance(r["label"], int) for r in out), name


def test_transform_class_and_probabilities(spark_cluster, bases, reference, tmp_path):
    from scoring import Scorer

    handle = distribute(spark_cluster, bases["hdfs"], cache_dir=str(tmp_path / "cache"))
    probs = Scorer(handle, returns="probabilities", output_tensor="probabilities", keep_cols=("id",))
    classes = Scorer(handle, returns="class", output_tensor="probabilities", keep_cols=("id",))
    probs, classes = probs.transform(_df(spark_cluster)), classes.transform(_df(spark_cluster))
    got = sorted((r["id"], r["prediction"]) for r in probs.collect())
    np.testing.assert_allclose(np.array([p for _, p in got]), reference["probabilities"], rtol=1e-6, atol=1e-7)
    assert sorted((r["id"], r["prediction"]) for r in classes.collect()) == [
        (i, int(c)) for i, c in enumerate(np.argmax(reference["probabilities"], axis=1))
    ]


def test_udf_returns_all_as_a_struct(spark_cluster, bases, reference, tmp_path):
    from pyspark.sql.functions import col

    from scoring import Scorer

    handle = distribute(spark_cluster, bases["hdfs"], cache_dir=str(tmp_path / "cache"))
    predict = Scorer(handle, returns="all").udf()
    out = (
        _df(spark_cluster).withColumn("p", predict(col("extra"), col("image"))).select("id", "p.*").collect()
    )  # signature order
    _check_all([(r["id"], r["probabilities"], r["score"], r["label"]) for r in out], reference, version_col=False)


def test_score_partition_on_an_rdd(spark_cluster, bases, reference, tmp_path):
    from scoring import Scorer

    handle = distribute(spark_cluster, bases["hdfs"], cache_dir=str(tmp_path / "cache"))
    scorer = Scorer(handle, returns="all", keep_cols=("id",))
    out = _df(spark_cluster).rdd.mapPartitions(scorer.score_partition).collect()
    _check_all([(r["id"], r["probabilities"], r["score"], r["label"], r["model_version"]) for r in out], reference)


def test_python_m_scoring_job_with_parquet(minidfs, saved, tmp_path):
    """``python -m scoring.job`` as a user runs it: its own Spark, the model on MiniDFS, Parquet in and out."""
    pq = require_module("pyarrow.parquet", "spark")
    from hdfs_models.testing import predict_in_process, write_features

    base = f"{minidfs.url}/lines/{uuid.uuid4().hex[:8]}/dense"
    publish(saved["dense"], base)
    x = (np.arange(ROWS * 12).reshape(ROWS, 12) % 13 / 13.0).astype(np.float32)
    source = write_features(str(tmp_path / "in"), x, files=2)
    out = str(tmp_path / "out")
    env = dict(os.environ, **minidfs.env(), PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scoring.job",
            "--model",
            base,
            "--input-path",
            f"file://{source}",
            "--output-path",
            f"file://{out}",
            "--features",
            "features",
            "--keep",
            "id",
            "--returns",
            "probabilities",
            "--master",
            "local[2]",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["rows"] == ROWS and summary["version"] == 1
    assert summary["read"] == "direct"  # --read auto: a Parquet path is read in the Python workers
    table = pq.read_table(out).to_pandas().sort_values("id")
    assert table["id"].tolist() == list(range(ROWS))
    expected = predict_in_process(saved["dense"], features=x)["probabilities"]
    np.testing.assert_allclose(np.stack(table["prediction"].to_numpy()), expected, rtol=1e-6, atol=1e-7)


def test_job_with_hive_tables(spark_cluster, minidfs, saved):
    """The job from one Hive table into another (embedded Derby metastore), in this session."""
    from hdfs_models.testing import predict_in_process
    from scoring.job import build_parser, run

    base = f"{minidfs.url}/lines/{uuid.uuid4().hex[:8]}/dense"
    publish(saved["dense"], base)
    x = (np.arange(ROWS * 12).reshape(ROWS, 12) % 17 / 17.0).astype(np.float32)
    spark = spark_cluster
    for table in ("lines_features", "lines_scores"):
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    rows = [(i, x[i].tolist()) for i in range(ROWS)]
    spark.createDataFrame(rows, "id int, features array<float>").write.format("parquet").saveAsTable("lines_features")
    args = build_parser().parse_args(
        [
            "--model",
            base,
            "--input-table",
            "lines_features",
            "--output-table",
            "lines_scores",
            "--features",
            "features",
            "--keep",
            "id",
            "--returns",
            "probabilities",
        ]
    )
    summary = run(spark, args)
    assert summary["rows"] == ROWS and summary["version"] == 1
    assert summary["read"] == "direct"  # --read auto: a table stored as Parquet
    out = spark.table("lines_scores").orderBy("id").toPandas()
    assert out["id"].tolist() == list(range(ROWS)) and set(out["model_version"]) == {1}
    expected = predict_in_process(saved["dense"], features=x)["probabilities"]
    np.testing.assert_allclose(np.stack(out["prediction"].to_numpy()), expected, rtol=1e-6, atol=1e-7)
    # --read spark: Spark reads the same table; the output is the same, schema included
    spark.sql("DROP TABLE IF EXISTS lines_scores_spark")
    args.output_table, args.read = "lines_scores_spark", "spark"
    assert run(spark, args)["read"] == "spark"
    through_spark = spark.table("lines_scores_spark")
    assert through_spark.schema == spark.table("lines_scores").schema
    spark_out = through_spark.orderBy("id").toPandas()
    assert spark_out["id"].tolist() == out["id"].tolist() and set(spark_out["model_version"]) == {1}
    np.testing.assert_allclose(  # batches differ between the two reads: equal to float32 rounding
        np.stack(spark_out["prediction"].to_numpy()), np.stack(out["prediction"].to_numpy()), rtol=1e-6, atol=1e-7
    )


# -- SavedModels written the ways users wrote them -------------------------------------------


def _train_keras(keras, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) > 0).astype(np.int64) + 2 * (x[:, 4:].sum(axis=1) > 0)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(4, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model, x


def _keras2_save_format_tf(path: str):
    """The article's own call: Keras 2 ``model.save(path, save_format="tf")`` (tf-keras)."""
    tf_keras = require_module("tf_keras", "test")
    model, x = _train_keras(tf_keras, 3)
    model.save(path, save_format="tf")
    return x


def _keras3_export(path: str):
    """Keras 3 ``model.export(path)``."""
    keras = require_module("keras", "tf")
    model, x = _train_keras(keras, 4)
    model.export(path, verbose=False)
    return x


@pytest.mark.parametrize("writer", [_keras2_save_format_tf, _keras3_export], ids=["keras2-save-tf", "keras3-export"])
def test_keras_savedmodels_score_like_tensorflow(spark, minidfs, writer, tmp_path):
    import tensorflow as tf

    from scoring import Scorer

    path = str(tmp_path / "model")
    x = writer(path)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    (name,) = signature.structured_input_signature[1].keys()
    (output,) = signature.structured_outputs.keys()
    expected = signature(**{name: tf.constant(x)})[output].numpy()

    base = f"{minidfs.url}/lines/{uuid.uuid4().hex[:8]}/{writer.__name__.strip('_')}"
    publish(path, base)
    rows = [(i, x[i].tolist()) for i in range(len(x))]
    df = spark.createDataFrame(rows, "id int, f array<float>")
    scorer = Scorer(
        distribute(spark, base, cache_dir=str(tmp_path / "cache")),
        input_cols={name: "f"},
        returns="probabilities",
        keep_cols=("id",),
    )
    got = sorted((r["id"], r["prediction"]) for r in scorer.transform(df).collect())
    np.testing.assert_allclose(np.array([p for _, p in got]), expected, rtol=1e-6, atol=1e-7)


def test_tf_module_with_a_custom_multi_input_signature(spark, minidfs, saved, reference, tmp_path):
    """``tf.saved_model.save`` of a ``tf.Module``: two inputs of two dtypes, three outputs."""
    from scoring import Scorer

    base = f"{minidfs.url}/lines/{uuid.uuid4().hex[:8]}/module"
    publish(saved["multi"], base)
    scorer = Scorer(distribute(spark, base, cache_dir=str(tmp_path / "cache")), returns="all", keep_cols=("id",))
    out = scorer.transform(_df(spark)).collect()
    _check_all([(r["id"], r["probabilities"], r["score"], r["label"], r["model_version"]) for r in out], reference)
