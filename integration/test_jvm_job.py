"""The article's own system beside ours (issue 24): a Java Spark job on TF-Java, fed by hdfs-models.

The model is published to MiniDFS; ``distribute(strategy="archive")`` packs
the version (each file checked against the manifest) into
``BASE/_archives/<v>-<digest>.tar``; the job of ``examples/jvm`` gets that
very archive with ``spark-submit --archives hdfs://…#model`` on
``local-cluster[2,1,1024]`` (two executor JVMs, each loading the model from
its own unpacked copy). Both of its ways to score (the per-row UDF and
``mapPartitions`` in batches of 1024) must give the Python scorer's classes
on every one of 10,240 rows.

Cost: the Maven build (cached like the MiniDFS launcher; cold, it downloads
TF-Java's 160 MB native jar) and two spark-submits of about half a minute.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from hdfs_models import distribute, publish
from hdfs_models._distribute import ARCHIVE_STATS, ensure_archive
from hdfs_models._versions import resolve
from hdfs_models.testing.pytest_plugin import require_module, require_or_skip

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[1] / "examples" / "jvm"
ROWS, WIDTH, CLASSES = 10_240, 784, 10
MASTER = "local-cluster[2,1,1024]"


@pytest.fixture(scope="module")
def jvm_job():
    """The built job (``examples/jvm``); skips without Java/Maven, fails under CI=true."""
    from hdfs_models.testing.jvm import ensure_jvm_job
    from hdfs_models.testing.launcher import missing_tools

    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    return ensure_jvm_job(PROJECT)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Parquet of ``id`` + ``features`` float[784] (seeded normal noise: centred, so a random-weight
    model spreads its classes), in 4 files; and the features."""
    np = require_module("numpy", "tf")
    from hdfs_models.testing import write_features

    x = np.random.default_rng(24).standard_normal((ROWS, WIDTH), dtype=np.float32)
    return write_features(str(tmp_path_factory.mktemp("jvm-in")), x, files=4), x


@pytest.fixture(scope="module")
def base(minidfs, tmp_path_factory):
    """A 784 → 64 → 10 softmax model published on MiniDFS (version 1)."""
    require_module("tensorflow", "tf")
    from hdfs_models.testing import save_dense

    model = save_dense(str(tmp_path_factory.mktemp("jvm-model") / "m"), n_in=WIDTH, n_out=CLASSES, hidden=64, seed=5)
    url = f"{minidfs.url}/models/{uuid.uuid4().hex}/mnist"
    publish(model, url)
    return url


def _classes(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["id", "prediction"])
    return dict(zip(table.column("id").to_pylist(), table.column("prediction").to_pylist()))


def test_jvm_job_classes_equal_the_python_scorers(spark_cluster, jvm_job, rows, base, tmp_path):
    from scoring import Scorer

    data, _ = rows
    handle = distribute(spark_cluster, base, strategy="archive")
    scored = Scorer(handle, keep_cols=("id",)).transform(spark_cluster.read.parquet(data))
    python = {r["id"]: r["prediction"] for r in scored.collect()}
    built = ARCHIVE_STATS["built"]
    archive = ensure_archive(resolve(base))  # the archive distribute() packed and verified, on MiniDFS
    assert archive.startswith("hdfs://") and ARCHIVE_STATS["built"] == built

    out = tmp_path / "jvm-out"
    run = jvm_job.submit(
        MASTER, archive, ["--input", data, "--output", str(out), "--mode", "partitions,udf"], timeout=400
    )
    assert run.returncode == 0, run.stderr[-6000:]
    assert [s["mode"] for s in run.summaries] == ["partitions", "udf"]
    assert all(s["rows"] == ROWS for s in run.summaries), run.summaries
    assert run.summaries[0]["batch_size"] == 1024
    # local-cluster[2,1,...]: one core per executor, so one task slot: intra 1, inter 1, as the Python scorer
    assert (run.summaries[0]["intra_op"], run.summaries[0]["inter_op"]) == (1, 1)
    assert len(python) == ROWS and len(set(python.values())) >= 5, "a model that predicts one class proves nothing"
    for mode in ("partitions", "udf"):
        jvm = _classes(str(out / mode))
        differ = sorted(i for i in python if jvm.get(i) != python[i])
        assert jvm.keys() == python.keys() and differ == [], f"{mode}: {len(differ)} rows differ, first {differ[:10]}"


def test_jvm_job_without_the_archive_names_the_alias(jvm_job, rows, tmp_path):
    """No ``--archives``: the job fails, saying where it looked for ``model`` and how to ship it."""
    data, _ = rows
    run = jvm_job.submit("local[1]", None, ["--input", data, "--output", str(tmp_path / "out")], timeout=300)
    assert run.returncode != 0
    assert "no SavedModel at 'model'" in run.stderr and "--archives" in run.stderr, run.stderr[-4000:]
    assert not os.path.exists(tmp_path / "out" / "_SUCCESS")
