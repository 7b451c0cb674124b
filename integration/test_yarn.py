"""Spark on a real YARN: MiniDFS + a MiniYARNCluster with two NodeManagers (issue 12).

One cluster for the module (``minidfs_yarn``) and four ``spark-submit --master yarn``
runs of ``scoring/job.py`` or a small job, each checked against YARN's own record of the
application and against in-process TensorFlow:

- Y1: ``--deploy-mode cluster`` with the model shipped by ``--archives hdfs://…#model``
  (``--strategy submitted``), and with ``fetch``; ``--deploy-mode client`` once.
- Y2: ``fetch`` with two executors on each NodeManager reads the model from the
  DataNodes once per NodeManager; a second application on the same (user-scoped)
  cache root reads nothing but the driver's manifest.
- Y3: an executor container SIGKILLed in the middle of its download: the task is
  retried in another container, the job succeeds, no torn cache entry anywhere.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import subprocess
import textwrap
import threading
import time
import uuid

import numpy as np
import pytest

from hdfs_models import evict, localize, publish, resolve
from hdfs_models.testing import write_features
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = [pytest.mark.integration, pytest.mark.yarn]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
JOB = os.path.join(REPO, "scoring", "job.py")
N_IN, ROWS, FILES = 12, 64, 8
# The job's Python (driver, AM, executors) imports this checkout's packages.
CODE_ENV = {"PYTHONPATH": REPO}


@pytest.fixture(scope="module")
def cluster(minidfs_yarn):
    require_module("pyspark", "spark")
    require_module("tensorflow", "tf")
    return minidfs_yarn


@pytest.fixture(scope="module")
def models(tmp_path_factory, cluster):
    """Three tiny TF models, each published as version 1 under its own HDFS base."""
    from hdfs_models.testing import save_dense

    root = tmp_path_factory.mktemp("yarn-models")
    out = {}
    for seed in (1, 7, 11):
        local = save_dense(str(root / f"seed{seed}"), n_in=N_IN, seed=seed)
        base = f"{cluster.url}/models/yarn-{uuid.uuid4().hex[:8]}/dense{seed}"
        publish(local, base)
        out[seed] = (local, base)
    return out


def features() -> np.ndarray:
    return np.array([[float((i * 7 + j) % 11) / 10.0 for j in range(N_IN)] for i in range(ROWS)], dtype="float32")


def check_predictions(table, model_dir: str) -> None:
    """Every row scored once, by version 1, equal to TensorFlow in this process."""
    from hdfs_models.testing import predict_in_process

    reference = predict_in_process(model_dir, features=features())["probabilities"]
    rows = table.to_pydict()
    assert sorted(rows["id"]) == list(range(ROWS))
    assert set(rows["model_version"]) == {1}
    for i, probs in zip(rows["id"], rows["prediction"]):
        assert probs == pytest.approx(reference[i].tolist(), abs=1e-6)


def read_parquet(path: str):
    import pyarrow.parquet as pq

    return pq.read_table(path)


def job_args(model: str, strategy: str, input_path: str, output_path: str) -> list[str]:
    return [
        "--model",
        model,
        "--strategy",
        strategy,
        "--input-path",
        input_path,
        "--output-path",
        output_path,
        "--features",
        "features",
        "--keep",
        "id",
        "--returns",
        "probabilities",
        "--json",
    ]


def conf(cluster, executors: int = 2, env: dict | None = None, **extra: str) -> dict:
    settings = cluster.spark_yarn_conf(executors=executors, env={**CODE_ENV, **(env or {})})
    # One input split per file, so every executor gets a task in the first wave.
    settings["spark.sql.files.openCostInBytes"] = str(128 << 20)
    # Start tasks only once every executor has registered.
    settings["spark.scheduler.minRegisteredResourcesRatio"] = "1.0"
    settings["spark.scheduler.maxRegisteredResourcesWaitingTime"] = "300s"
    settings.update(extra)
    return settings


def succeeded(result) -> None:
    assert result.returncode == 0, result.log_tail()
    assert (result.state, result.final_status) == ("FINISHED", "SUCCEEDED"), result.log_tail()


def tree(path: str) -> dict[str, str]:
    """Relative path → sha256 for files, "dir" for directories; MANIFEST.json left out."""
    out = {}
    for dirpath, _dirnames, filenames in os.walk(path):
        rel = os.path.relpath(dirpath, path)
        if rel != ".":
            out[rel] = "dir"
        for name in filenames:
            if name == "MANIFEST.json" and rel == ".":
                continue
            with open(os.path.join(dirpath, name), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, name))] = hashlib.sha256(fh.read()).hexdigest()
    return out


def entries(root: str) -> list[str]:
    """Committed cache entries under ``root`` (visible directories; temp dirs are hidden)."""
    if not os.path.isdir(root):
        return []
    return sorted(p for p in glob.glob(os.path.join(root, "*")) if os.path.isdir(p))


def user_root(nm) -> str:
    import getpass

    return os.path.join(nm.user_dirs(getpass.getuser())[0], "hdfs-models")


def executors_per_node(cluster, app_id: str) -> dict[int, int]:
    """Executor containers each NodeManager ran for ``app_id`` (from its container log dirs)."""
    counts = {}
    for nm in cluster.yarn.nodemanagers:
        found = [c for d in nm.log_dirs for c in glob.glob(os.path.join(d, app_id, "container_*"))]
        counts[nm.index] = sum(1 for c in found if not c.endswith("_000001"))  # 000001: the AM
    return counts


def test_cluster_mode_with_the_model_in_archives_from_hdfs(cluster, models, tmp_path):
    """Y1: ``--deploy-mode cluster --archives hdfs://…/model.tar#model``: SUCCEEDED, TF's predictions.

    The archive is world-readable on HDFS, so YARN localizes it PUBLIC: into the
    NodeManager's shared ``filecache``, not the user's.
    """
    local, base = models[1]
    fs = cluster.fs()
    work = f"/tmp/yarn-{uuid.uuid4().hex[:8]}"
    # README's commands: hdfs-models pack, then put the tar on HDFS (0644 under the default umask).
    tar = tmp_path / "dense-1.tar"
    pack = subprocess.run(
        ["hdfs-models", "pack", base, str(tar), "--version", "1"],
        env={**os.environ, **cluster.env()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pack.returncode == 0, pack.stderr
    fs.put_file(str(tar), f"{work}/dense-1.tar")
    archive = f"{cluster.url}{work}/dense-1.tar"
    src = write_features(str(tmp_path / "in"), features(), FILES)
    for name in sorted(os.listdir(src)):
        fs.put_file(os.path.join(src, name), f"{work}/in/{name}")
    result = cluster.yarn.submit(
        JOB,
        job_args("model", "submitted", f"{cluster.url}{work}/in", f"{cluster.url}{work}/out") + ["--version", "1"],
        deploy_mode="cluster",
        conf=conf(cluster),
        options=["--archives", f"{archive}#model"],
        env=CODE_ENV,
    )
    succeeded(result)
    fs.get(f"{work}/out", str(tmp_path / "out"), recursive=True)
    check_predictions(read_parquet(str(tmp_path / "out")), local)
    name = archive.rsplit("/", 1)[1]
    public = [p for d in cluster.yarn.local_dirs for p in glob.glob(os.path.join(d, "filecache", "*", name))]
    assert public, f"{name} not in any NodeManager's public filecache"


def test_fetch_once_per_node_then_a_second_application_reads_nothing(cluster, models, tmp_path):
    """Y1 (cluster, then client mode) and Y2: bytes read = model × NodeManagers, then 0.

    Four executors, two per NodeManager (the harness sizes a node for exactly
    two), share one download per node in the user-scoped cache root
    (``HDFS_MODELS_CACHE_SCOPE=user``, ``LOCAL_USER_DIRS``), which outlives the
    application: the second one (client mode) downloads nothing. Input, output
    and Spark's staging dir are on the local disk, so the DataNodes serve only
    the driver's resolution (measured here, same code) and the executors' downloads.
    """
    local, base = models[7]
    before = cluster.bytes_read()
    pinned = resolve(base)
    resolve_bytes = cluster.bytes_read() - before
    before = cluster.bytes_read()
    localize(base, pinned=pinned, cache_dir=str(tmp_path / "probe-cache"))
    model_bytes = cluster.bytes_read() - before
    assert model_bytes >= pinned.total_bytes > 0

    src = write_features(str(tmp_path / "in"), features(), FILES)
    local_only = {"spark.yarn.stagingDir": f"file://{tmp_path / 'staging'}"}
    settings = conf(cluster, executors=4, env={"HDFS_MODELS_CACHE_SCOPE": "user"}, **local_only)
    before = cluster.bytes_read()
    first = cluster.yarn.submit(
        JOB,
        job_args(base, "fetch", f"file://{src}", f"file://{tmp_path / 'out1'}"),
        deploy_mode="cluster",
        conf=settings,
        env=CODE_ENV,
    )
    read_first = cluster.bytes_read() - before
    succeeded(first)
    check_predictions(read_parquet(str(tmp_path / "out1")), local)
    assert executors_per_node(cluster, first.app_id) == {0: 2, 1: 2}
    want = tree(local)
    for nm in cluster.yarn.nodemanagers:
        mine = [e for e in entries(user_root(nm)) if tree(e) == want]
        assert len(mine) == 1, (nm, entries(user_root(nm)))
    assert read_first == resolve_bytes + 2 * model_bytes, (read_first, resolve_bytes, model_bytes)

    before = cluster.bytes_read()
    second = cluster.yarn.submit(
        JOB,
        job_args(base, "fetch", f"file://{src}", f"file://{tmp_path / 'out2'}"),
        deploy_mode="client",
        conf=settings,
        env=CODE_ENV,
    )
    read_second = cluster.bytes_read() - before
    succeeded(second)
    check_predictions(read_parquet(str(tmp_path / "out2")), local)
    assert read_second == resolve_bytes, (read_second, resolve_bytes)


HELD_FS = textwrap.dedent('''
    """hdfs-native on the same MiniDFS under the scheme heldhdfs://, whose first read can be held.

    Shipped with --py-files, so tasks pickle these classes by reference (fsspec's
    filesystem classes carry a lock and cannot be pickled by value).
    """
    import json, os, time
    import fsspec
    from hdfs_native import Client
    from hdfs_native.fsspec import HdfsFileSystem

    class Held:
        """A file whose first read blocks (up to 240 s) in the one process that creates the marker.

        Whichever first attempt reads first (it holds its node's download lock) wins the
        marker (an exclusive link: complete, and only once per job); later readers see it
        and read normally.
        """
        def __init__(self, inner, marker):
            self.inner, self.marker, self.tried = inner, marker, False
        def read(self, n=-1):
            if not self.tried and os.environ.get("HOLD_FIRST_READ"):
                self.tried = True
                tmp = f"{self.marker}.{os.getpid()}.tmp"
                with open(tmp, "w") as fh:
                    json.dump({"pid": os.getpid(), "container": os.environ["CONTAINER_ID"],
                               "partition": int(os.environ["HOLD_PARTITION"]),
                               "user_dirs": os.environ["LOCAL_USER_DIRS"]}, fh)
                try:
                    os.link(tmp, self.marker)
                    won = True
                except FileExistsError:
                    won = False
                os.unlink(tmp)
                deadline = time.monotonic() + (240 if won else 0)
                while time.monotonic() < deadline:
                    time.sleep(0.2)
            return self.inner.read(n)
        def close(self):
            self.inner.close()
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.close()

    class HeldHdfs(HdfsFileSystem):
        protocol = "heldhdfs"
        def __init__(self, host=None, port=None, **options):
            fsspec.AbstractFileSystem.__init__(self, host, port, **options)
            self.host, self.port = host, port
            self.client = Client(f"hdfs://{host}:{port}", options)
        def _open(self, path, mode="rb", **kwargs):
            f = super()._open(path, mode, **kwargs)
            return Held(f, os.environ.get("HOLD_MARKER", "")) if mode == "rb" else f

    def register():
        fsspec.register_implementation("heldhdfs", HeldHdfs, clobber=True)
''')

KILL_JOB = textwrap.dedent('''
    """Localize a model in 8 tasks; the first task to read the model holds its first read."""
    import json, os, sys
    from pyspark import TaskContext
    from pyspark.sql import SparkSession
    from hdfs_models import distribute
    import held_fs

    base, marker, out = sys.argv[1:4]
    held_fs.register()
    spark = SparkSession.builder.getOrCreate()
    handle = distribute(spark, base.replace("hdfs://", "heldhdfs://", 1), strategy="fetch")

    def task(_):
        import held_fs
        held_fs.register()
        ctx = TaskContext.get()
        os.environ["HOLD_MARKER"] = marker
        os.environ["HOLD_PARTITION"] = str(ctx.partitionId())
        if ctx.attemptNumber() == 0:
            os.environ["HOLD_FIRST_READ"] = "1"
        else:
            os.environ.pop("HOLD_FIRST_READ", None)
        path = handle.local_path()
        yield [ctx.partitionId(), ctx.attemptNumber(), os.environ["CONTAINER_ID"], path]

    rows = spark.sparkContext.parallelize(range(8), 8).mapPartitions(task).collect()
    with open(out, "w") as fh:
        json.dump(rows, fh)
    spark.stop()
''')


def container_pids(container_id: str) -> list[int]:
    """Every process of a YARN container: the ones whose environment names it."""
    wanted = f"CONTAINER_ID={container_id}".encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if wanted in fh.read().split(b"\0"):
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def test_executor_killed_while_localizing(cluster, models, tmp_path):
    """Y3: SIGKILL an executor container mid-download: task retried elsewhere, job succeeds, no torn entry.

    Deterministic: the job reads the model through hdfs-native under another
    scheme (a fault-injecting wrapper over the real client and MiniDFS); the first
    task attempt to read (whichever holds its node's download lock) creates a
    marker (pid, container, partition) exclusively and blocks in that read. The test waits for the marker, sees that
    process's temp dir in the node cache, kills every process of the container,
    and lets the job go on.
    """
    local, base = models[11]
    script = tmp_path / "kill_job.py"
    script.write_text(KILL_JOB)
    (tmp_path / "held_fs.py").write_text(HELD_FS)
    marker, out = tmp_path / "marker.json", tmp_path / "rows.json"
    settings = conf(cluster, executors=2, env={"HDFS_MODELS_CACHE_SCOPE": "user"})
    results = []
    runner = threading.Thread(
        target=lambda: results.append(
            cluster.yarn.submit(
                str(script),
                [base, str(marker), str(out)],
                deploy_mode="cluster",
                conf=settings,
                options=["--py-files", str(tmp_path / "held_fs.py")],
                env=CODE_ENV,
            )
        )
    )
    runner.start()
    deadline = time.monotonic() + 480
    while not marker.exists() and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not marker.exists():
        runner.join()
        pytest.fail("no task started its download: " + (results[0].log_tail() if results else ""))
    held = json.loads(marker.read_text())
    root = os.path.join(held["user_dirs"].split(",")[0], "hdfs-models")
    temps = [n for n in os.listdir(root) if n.startswith(".") and f"-{held['pid']}-" in n]
    assert temps, f"no temp dir of pid {held['pid']} in {root}: {os.listdir(root)}"
    pids = container_pids(held["container"])
    assert held["pid"] in pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    runner.join()
    result = results[0]
    succeeded(result)
    rows = json.loads(out.read_text())
    assert sorted(r[0] for r in rows) == list(range(8))
    retried = [r for r in rows if r[0] == held["partition"]][0]
    assert retried[1] >= 1 and retried[2] != held["container"], retried
    want = tree(local)
    assert all(tree(path) == want for path in {r[3] for r in rows})
    for nm in cluster.yarn.nodemanagers:
        for entry in entries(user_root(nm)):
            assert tree(entry) in (want, tree(models[7][0])), f"torn or foreign entry {entry}"
    evict(cache_dir=root)  # sweeps the dead download's temp dir (C4); no limits, so no eviction
    assert not [n for n in os.listdir(root) if f"-{held['pid']}-" in n]
