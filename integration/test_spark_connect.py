"""Issue 23: scoring from a Spark Connect client, with the model on MiniDFS.

A local Connect server (``SparkSession.builder.remote("local[2]")``) starts a
classic SparkContext inside the client's own process, and refuses to when one
exists already; the ``spark`` fixtures of other tests may have started one in
this pytest process. So the client runs in a fresh interpreter
(:data:`_CLIENT`), once for the module, and reports what it saw as JSON; the
tests compare it with TensorFlow run in this process.
"""

import inspect
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

require_module("tensorflow", "tf")
require_module("pyspark", "spark")
require_module("grpc_status", "spark")  # pyspark[connect]'s dependencies

N_IN, ROWS = 12, 200
#: rows per Arrow batch while metrics are compared: 4 partitions of 50 rows make 4 batches each
METRICS_BATCH = 16


def metrics_frame(spark):
    """The frame both modes score for the metrics comparison: 4 partitions by construction, in either mode."""
    from pyspark.sql.functions import array, col

    features = array(*[((col("id") * (j + 1)) % 7).cast("float") for j in range(12)])
    return spark.range(0, 200, 1, 4).select("id", features.alias("features"))


_CLIENT = r"""
import json, os, sys
import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql.functions import col

args = json.loads(sys.argv[1])
builder = SparkSession.builder.remote("local[2]").config("spark.ui.enabled", "false")
for key, value in args["conf"].items():  # Hive support: static settings, passed to the local server
    builder = builder.config(key, value)
spark = builder.getOrCreate()
out = {"session": f"{type(spark).__module__}.{type(spark).__qualname__}"}
exec(args["metrics_frame"])

from hdfs_models import ModelHandle, distribute
from hdfs_models._runtime import is_connect
from hdfs_models.archive import pack
from hdfs_models.store import open_store
from hdfs_models.cli._score import build_parser, metrics_report, run
from scoring import Scorer


def failure(call):
    try:
        call()
    except Exception as exc:
        return {"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                "reason": getattr(exc, "reason", None), "message": str(exc)}
    return None


out["is_connect"] = is_connect(spark)
features = np.load(args["features"])
df = spark.createDataFrame([(i, features[i].tolist()) for i in range(len(features))],
                           "id long, features array<float>").repartition(4)
handle = distribute(spark, args["base"], strategy="fetch", cache_dir=args["cache"])
scorer = Scorer(handle, keep_cols=["id"], returns="probabilities", batch_size=32)
out["transform"] = sorted([r.id, r.prediction, r.model_version] for r in scorer.transform(df).collect())
scored = df.withColumn("p", scorer.udf()(col("features"))).select("id", "p").collect()
out["udf"] = sorted([r.id, r.p] for r in scored)
for strategy in ("archive", "files"):
    out[strategy] = failure(lambda: distribute(spark, args["base"], strategy=strategy))
out["metrics"] = failure(scorer.metrics)
out["score_partition"] = failure(lambda: scorer.score_partition(iter([])))

# metrics through the side output (records on MiniDFS), on the frame the classic test scores too
spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(args["batch"]))
counted = Scorer(handle, keep_cols=["id"], metrics_dir=args["data"] + "/metrics")
out["metrics_rows"] = counted.transform(metrics_frame(spark)).count()
out["metrics_connect"] = counted.metrics()
spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")

# a submitted archive: shipped by this client as an artifact, its manifest read by an executor
spark.addArtifacts(pack(args["base"], args["root"] + "/model.tar") + "#shipped", archive=True)
shipped = Scorer(ModelHandle.submitted("shipped", version=args["version"]), keep_cols=["id"],
                 returns="probabilities")
out["submitted"] = sorted([r.id, r.prediction, r.model_version] for r in shipped.transform(df).collect())

store, data = open_store(args["data"])
# the job, Parquet on MiniDFS in and out (read directly by default), then a Hive table read by Spark
df.write.parquet(args["data"] + "/in")
job = ["--model", args["base"], "--features", "features", "--keep", "id", "--returns", "class",
       "--cache-dir", args["cache"]]
summary = run(spark, build_parser().parse_args(job + ["--input-path", args["data"] + "/in", "--output-path",
                                                      args["data"] + "/out", "--metrics-json", args["root"] + "/p.json"]))
out["job_parquet"] = {"summary": {k: summary[k] for k in ("rows", "read", "version")},
                      "metrics": metrics_report(summary),
                      "left": [p for p in store.ls(data, detail=False) if "._metrics-" in p],
                      "rows": sorted([r.id, r.prediction, r.model_version]
                                     for r in spark.read.parquet(args["data"] + "/out").collect())}
summary = run(spark, build_parser().parse_args(job + ["--model", "shipped", "--strategy", "submitted", "--version",
    str(args["version"]), "--input-path", args["data"] + "/in", "--output-path", args["data"] + "/sub"]))
out["job_submitted"] = {"summary": {k: summary[k] for k in ("rows", "read", "version")},
                        "rows": sorted([r.id, r.prediction, r.model_version]
                                       for r in spark.read.parquet(args["data"] + "/sub").collect())}
df.write.saveAsTable("digits")
summary = run(spark, build_parser().parse_args(job + ["--input-table", "digits", "--output-table", "scored",
                                                      "--read", "spark", "--metrics-json", args["root"] + "/t.json"]))
out["job_table"] = {"summary": {k: summary[k] for k in ("rows", "read", "version")},
                    "metrics": metrics_report(summary),
                    "left": [n for n in os.listdir(args["conf"]["spark.sql.warehouse.dir"]) if "._metrics-" in n],
                    "rows": sorted([r.id, r.prediction, r.model_version] for r in spark.table("scored").collect())}
table_scorer = Scorer(handle, keep_cols=["id"], returns="probabilities")
out["transform_table"] = sorted([r.id, r.prediction] for r in table_scorer.transform_table(spark, "digits").collect())
out["job_watch"] = failure(lambda: run(spark, build_parser().parse_args(
    job + ["--input-path", args["data"] + "/in", "--output-path", args["data"] + "/w", "--watch", "5"])))
spark.stop()
with open(args["out"], "w") as fh:
    json.dump(out, fh)
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from hdfs_models.testing import save_dense

    return save_dense(str(tmp_path_factory.mktemp("connect") / "1"), n_in=N_IN)


@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(23).normal(size=(ROWS, N_IN)).astype(np.float32)


@pytest.fixture(scope="module")
def published(minidfs, model_dir):
    from hdfs_models._publish import publish

    base = f"{minidfs.url}/models/{uuid.uuid4().hex}/dense"
    return base, publish(model_dir, base).version


@pytest.fixture(scope="module")
def client(tmp_path_factory, minidfs, published, features):
    """What the Connect client saw (see :data:`_CLIENT`)."""
    root = tmp_path_factory.mktemp("connect-client")
    np.save(root / "features.npy", features)
    hive = {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
    }
    args = {"base": published[0], "cache": str(root / "cache"), "features": str(root / "features.npy"),
            "out": str(root / "out.json"), "conf": hive, "data": f"{minidfs.url}/connect/{uuid.uuid4().hex[:8]}",
            "root": str(root), "version": published[1], "batch": METRICS_BATCH,
            "metrics_frame": inspect.getsource(metrics_frame)}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    done = subprocess.run([sys.executable, "-c", _CLIENT, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    with open(args["out"]) as fh:
        return json.load(fh)


def test_the_client_is_spark_connect(client):
    assert client["session"] == "pyspark.sql.connect.session.SparkSession"
    assert client["is_connect"] is True


def test_fetch_and_transform_equal_tensorflow(client, model_dir, features, published):
    from hdfs_models.testing import predict_in_process

    want = predict_in_process(model_dir, features=features)["probabilities"]
    assert [r[0] for r in client["transform"]] == list(range(ROWS))
    assert {r[2] for r in client["transform"]} == {published[1]}
    np.testing.assert_allclose(np.array([r[1] for r in client["transform"]]), want, atol=1e-6)


def test_udf_equals_tensorflow(client, model_dir, features):
    from hdfs_models.testing import predict_in_process

    want = predict_in_process(model_dir, features=features)["probabilities"]
    assert [r[0] for r in client["udf"]] == list(range(ROWS))
    np.testing.assert_allclose(np.array([r[1] for r in client["udf"]]), want, atol=1e-6)


@pytest.mark.parametrize("strategy", ["archive", "files"])
def test_archive_and_files_raise_the_documented_error(client, strategy):
    error = client[strategy]
    assert error is not None and error["type"] == "DistributionError" and error["reason"] == "spark connect"
    assert f"strategy {strategy!r}" in error["message"] and "strategy='fetch'" in error["message"]


def test_score_partition_names_transform_and_udf(client):
    error = client["score_partition"]
    assert error is not None and error["type"] == "UnsupportedSparkError" and error["reason"] == "spark connect"
    assert "scorer.transform(df)" in error["message"] and "scorer.udf()" in error["message"]


def test_metrics_raise_instead_of_staying_empty_without_a_metrics_dir(client):
    error = client["metrics"]
    assert error is not None and error["type"] == "UnsupportedSparkError" and error["reason"] == "spark connect"
    assert "Scorer.metrics()" in error["message"] and "metrics_dir=" in error["message"]


def test_metrics_through_the_side_output_equal_classic_modes(client, spark, published, tmp_path):
    from hdfs_models import distribute
    from scoring import Scorer

    handle = distribute(spark, published[0], strategy="fetch", cache_dir=str(tmp_path / "cache"))
    scorer = Scorer(handle, keep_cols=["id"])  # an accumulator: classic Spark
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(METRICS_BATCH))
    try:
        assert scorer.transform(metrics_frame(spark)).count() == ROWS
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    classic, connect = scorer.metrics(), client["metrics_connect"]
    assert client["metrics_rows"] == ROWS
    assert (classic["rows"], classic["tasks"], classic["batches"]) == (ROWS, 4, 16)  # 4 x (16+16+16+2 rows)
    counts = ("rows", "rows_in", "rows_out", "batches", "tasks", "versions", "read_bytes")
    assert {k: connect[k] for k in counts} == {k: classic[k] for k in counts}
    # not compared: timings, and the node-cache and model-load counters, which depend on how warm
    # each Python worker already was (a worker localizes and loads once, for every later task)
    assert connect["stages"]["inference"] > 0 and connect["seconds"] > 0


def test_submitted_on_connect_predicts_like_tensorflow(client, model_dir, features, published):
    from hdfs_models.testing import predict_in_process

    want = predict_in_process(model_dir, features=features)["probabilities"]
    assert [r[0] for r in client["submitted"]] == list(range(ROWS))
    assert {r[2] for r in client["submitted"]} == {published[1]}  # the version an executor's manifest names
    np.testing.assert_allclose(np.array([r[1] for r in client["submitted"]]), want, atol=1e-6)


@pytest.mark.parametrize("kind", ["job_parquet", "job_table"])
def test_the_job_writes_tensorflow_classes_with_parquet_and_a_table(client, model_dir, features, published, kind):
    from hdfs_models.testing import predict_in_process

    want = predict_in_process(model_dir, features=features)["probabilities"].argmax(axis=1)
    job = client[kind]
    read = "direct" if kind == "job_parquet" else "spark"
    assert job["summary"] == {"rows": ROWS, "read": read, "version": published[1]}
    assert job["rows"] == [[i, int(c), published[1]] for i, c in enumerate(want)]
    metrics = job["metrics"]  # what --metrics-json writes, from the tasks' record files
    assert (metrics["rows"], metrics["rows_written"], metrics["rows_in"]) == (ROWS, ROWS, ROWS)
    assert metrics["versions"] == {str(published[1]): ROWS} and metrics["tasks"] >= 1
    assert metrics["read_bytes"] > 0 if read == "direct" else metrics["read_bytes"] == 0
    assert job["left"] == []  # the records' directory is removed once read


def test_the_job_scores_a_submitted_archive_like_tensorflow(client, model_dir, features, published):
    from hdfs_models.testing import predict_in_process

    want = predict_in_process(model_dir, features=features)["probabilities"].argmax(axis=1)
    job = client["job_submitted"]  # --strategy submitted --model shipped: the archive the client added
    assert job["summary"] == {"rows": ROWS, "read": "direct", "version": published[1]}
    assert job["rows"] == [[i, int(c), published[1]] for i, c in enumerate(want)]


def test_the_job_refuses_watch_at_start(client):
    error = client["job_watch"]
    assert error is not None and error["type"] == "UnsupportedSparkError" and error["reason"] == "spark connect"
    assert "--watch needs a classic Spark session" in error["message"]


def test_transform_table_reads_the_files_directly_and_equals_tensorflow(client, model_dir, features):
    from hdfs_models.testing import predict_in_process

    want = predict_in_process(model_dir, features=features)["probabilities"]
    assert [r[0] for r in client["transform_table"]] == list(range(ROWS))
    np.testing.assert_allclose(np.array([r[1] for r in client["transform_table"]]), want, atol=1e-6)
