"""TensorFlow's absl INFO lines stay out of a Spark job's stderr, on the driver and in the workers.

A subprocess runs a local[1] Spark job that scores with :class:`scoring.Scorer`
(TensorFlow imported by the driver for the signatures and by the Python
worker for the model) with ``TF_CPP_MIN_LOG_LEVEL`` unset. Its stderr holds
what the JVM copies from its Python workers: a marker a worker writes to
fd 2 proves that, and a plain ``import tensorflow`` in a fresh process proves
this TensorFlow build writes the lines the job must not show.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
JOB = """
import os, sys
from pyspark.sql import SparkSession
from scoring import Scorer

spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spark.sparkContext.parallelize([0], 1).foreach(lambda _: os.write(2, b"worker-marker\\n"))
df = spark.createDataFrame([(i, [0.5] * 12) for i in range(16)], "id long, features array<float>")
rows = Scorer(sys.argv[1], keep_cols=("id",)).transform(df).collect()
print(len(rows), sorted({r.model_version for r in rows}))
spark.stop()
"""


def _run(code, *args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True
    )


def test_no_absl_info_lines_from_driver_or_workers(tmp_path):
    require_module("tensorflow", "tf")
    require_module("pyspark", "spark")
    from hdfs_models.testing import save_dense

    model = save_dense(str(tmp_path / "3"))
    plain = _run("import tensorflow as tf; tf.constant(1.0) + 1").stderr
    assert "I0000" in plain, f"this TensorFlow writes no absl INFO lines, so the test proves nothing: {plain!r}"
    job = _run(JOB, model)
    assert job.stdout.strip() == "16 [3]"
    assert "worker-marker" in job.stderr  # a worker's fd 2 reaches this stderr
    noisy = [line for line in job.stderr.splitlines() if line.startswith("I0000") or "absl::InitializeLog" in line]
    assert noisy == [], "\n".join(noisy)
