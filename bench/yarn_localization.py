"""Benchmark: YARN's PUBLIC localization of ``--archives`` against the node cache (``fetch``).

Starts MiniDFS with a MiniYARNCluster of two NodeManagers, publishes a
fake SavedModel (valid protobuf, random variables; default 200 MB; ``--quick`` 40 MB),
packs it with ``hdfs-models pack`` and stores the archive world-readable on
HDFS. Then, per contender, two applications in a row (4 executors, two per
NodeManager, 8 tasks that each ask for the model's local path):

- ``public``: ``--archives hdfs://…/model.tar#model`` +
  ``ModelHandle.submitted``: YARN downloads and unpacks the archive once per
  NodeManager into its shared filecache, before the executors start, and keeps
  it for later applications; each Python worker verifies the tree once
  (sha256 against the manifest).
- ``fetch-app``: the node cache in the application's ``LOCAL_DIRS`` (the
  default): once per node per application, deleted with it.
- ``fetch-user``: ``HDFS_MODELS_CACHE_SCOPE=user`` (``LOCAL_USER_DIRS``): once per
  node, kept across the user's applications.

Figures per application: DataNode bytes read (÷ model size), spark-submit wall
seconds, and the slowest task's seconds to a verified local path. Prints a
table, writes ``bench/results/yarn_localization-<UTC>.json`` and prints the JSON
object as its last line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
MB = 1 << 20

JOB = textwrap.dedent("""
    import json, os, sys, time
    from pyspark.sql import SparkSession
    from hdfs_models import ModelHandle, distribute

    model, out = sys.argv[1:3]
    spark = SparkSession.builder.getOrCreate()
    handle = ModelHandle.submitted("model") if model == "submitted" else distribute(spark, model, strategy="fetch")

    def task(_):
        started = time.monotonic()
        path = handle.local_path()
        yield [os.environ["CONTAINER_ID"], os.getpid(), path, time.monotonic() - started]

    rows = spark.sparkContext.parallelize(range(8), 8).mapPartitions(task).collect()
    with open(out, "w") as fh:
        json.dump(rows, fh)
    spark.stop()
""")


def _cpu_model() -> str:
    from localize import _cpu_model as cpu

    return cpu()


def _publish(cluster: Any, scratch: str, data_bytes: int) -> tuple[str, str, int]:
    """Publish the model, pack version 1 and store the archive world-readable; (base, archive, bytes)."""
    from hdfs_models import publish
    from hdfs_models.testing import write_fake_model

    local = write_fake_model(os.path.join(scratch, "model"), data_bytes=data_bytes)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(local) for f in files)
    base = f"{cluster.url}/models/bench-yarn/model"
    publish(local, base)
    tar = os.path.join(scratch, "model-1.tar")
    env = {**os.environ, **cluster.env()}
    subprocess.run(["hdfs-models", "pack", base, tar, "--version", "1"], check=True, env=env, stdout=subprocess.DEVNULL)
    archive = "/models/bench-yarn/_archives/model-1.tar"
    fs = cluster.fs()
    fs.put_file(tar, archive)  # 0644 under the default umask: YARN localizes it PUBLIC
    return base, f"{cluster.url}{archive}", size


def _run_app(cluster: Any, script: str, contender: str, base: str, archive: str, out: str) -> dict[str, Any]:
    conf = cluster.spark_yarn_conf(
        executors=4,
        env={"PYTHONPATH": REPO, **({"HDFS_MODELS_CACHE_SCOPE": "user"} if contender == "fetch-user" else {})},
    )
    conf["spark.scheduler.minRegisteredResourcesRatio"] = "1.0"
    conf["spark.scheduler.maxRegisteredResourcesWaitingTime"] = "300s"
    options = ["--archives", f"{archive}#model"] if contender == "public" else []
    model = "submitted" if contender == "public" else base
    before = cluster.bytes_read()
    result = cluster.yarn.submit(
        script, [model, out], deploy_mode="cluster", conf=conf, options=options, env={"PYTHONPATH": REPO}
    )
    read = cluster.bytes_read() - before
    if result.final_status != "SUCCEEDED":
        raise RuntimeError(result.log_tail())
    with open(out) as fh:
        rows = json.load(fh)
    return {
        "bytes_read": read,
        "wall_s": round(result.seconds, 1),
        "slowest_task_s": round(max(r[3] for r in rows), 2),
        "workers": len({(r[0], r[1]) for r in rows}),
    }


def _table(rows: list[dict[str, Any]], size: int) -> str:
    lines = [f"{'contender':<11} {'app':>3} {'read/model':>10} {'wall s':>7} {'slowest task s':>14}"]
    for r in rows:
        lines.append(
            f"{r['contender']:<11} {r['app']:>3} {r['bytes_read'] / size:>10.2f} {r['wall_s']:>7.1f} "
            f"{r['slowest_task_s']:>14.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 40 MB model instead of 200 MB")
    parser.add_argument("--size-mb", type=int, default=None)
    args = parser.parse_args(argv)
    from hdfs_models.testing.minidfs import MiniDFS

    data_bytes = (args.size_mb or (40 if args.quick else 200)) * MB
    scratch = tempfile.mkdtemp(prefix="bench-yarn-")
    script = os.path.join(scratch, "job.py")
    with open(script, "w") as fh:
        fh.write(JOB)
    rows: list[dict[str, Any]] = []
    try:
        with MiniDFS(datanodes=1, block_size=128 << 20, yarn_nodemanagers=2) as cluster:
            base, archive, size = _publish(cluster, scratch, data_bytes)
            for contender in ("public", "fetch-app", "fetch-user"):
                for app in (1, 2):
                    out = os.path.join(scratch, f"{contender}-{app}.json")
                    row = {
                        "contender": contender,
                        "app": app,
                        **_run_app(cluster, script, contender, base, archive, out),
                    }
                    rows.append(row)
                    print(_table([row], size).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "bench": "yarn_localization",
        "quick": args.quick,
        "model_bytes": size,
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()},
        "setup": "MiniDFS (1 DataNode) + MiniYARNCluster (2 NodeManagers), 4 executors (2 per node), 8 tasks",
        "apps": rows,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    out = os.path.join(HERE, "results", f"yarn_localization-{stamp}{'-quick' if args.quick else ''}.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    print(_table(rows, size))
    print(f"model {size / MB:.0f} MB; machine: {os.cpu_count()} cores, {_cpu_model()}; results: {out}")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
