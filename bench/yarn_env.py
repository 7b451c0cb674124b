"""Benchmark and check: the Python environment shipped the way YARN users ship it (venv-pack).

Builds a fresh venv (``python -m venv``; no system site-packages) with
``pip install -c constraints.txt '.[executor]' venv-pack`` (no pyspark: the containers import the cluster's pyspark.zip), packs it with
``venv-pack -o env.tar.gz``, puts the archive on a MiniDFS with a MiniYARNCluster
of two NodeManagers, and runs ``scoring/job.py`` in ``--deploy-mode cluster`` with

    --archives hdfs://…/env.tar.gz#environment
    --conf spark.pyspark.python=./environment/bin/python

and no ``PYTHONPATH``: the driver (AM) and executors import hdfs_models, scoring,
TensorFlow and pyarrow from the shipped environment only. The predictions are
compared with in-process TensorFlow. venv-pack keeps the base interpreter
outside the archive, so every node needs the same Python at the same path
(conda-pack ships the interpreter too). Prints the install, pack and job
times and the archive size; the last line is a JSON object (also written to
``bench/results/``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# bench/scoring.py would shadow the `scoring` package if bench/ stayed first on sys.path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, REPO)
MB = 1 << 20


def _timed(cmd: list[str], **kwargs: Any) -> float:
    started = time.monotonic()
    subprocess.run(cmd, check=True, **kwargs)
    return time.monotonic() - started


def build_env(scratch: str) -> dict[str, Any]:
    """venv + pip install + venv-pack; returns the archive path, its size and the times."""
    env_dir, archive = os.path.join(scratch, "env"), os.path.join(scratch, "env.tar.gz")
    quiet = {"stdout": subprocess.DEVNULL}
    venv_s = _timed([sys.executable, "-m", "venv", env_dir], **quiet)
    pip = [os.path.join(env_dir, "bin", "pip"), "install", "-q", "--disable-pip-version-check"]
    install_s = _timed([*pip, "-c", os.path.join(REPO, "constraints.txt"), f"{REPO}[executor]", "venv-pack"], **quiet)
    pack_s = _timed([os.path.join(env_dir, "bin", "venv-pack"), "-p", env_dir, "-o", archive, "-q"], **quiet)
    return {
        "archive": archive,
        "archive_mb": round(os.path.getsize(archive) / MB, 1),
        "venv_s": round(venv_s, 1),
        "install_s": round(install_s, 1),
        "pack_s": round(pack_s, 1),
    }


def run_job(cluster: Any, scratch: str, archive: str) -> dict[str, Any]:
    """The scoring job with the shipped environment; checks its predictions."""
    import numpy as np
    import pyarrow.parquet as pq

    from hdfs_models import publish
    from hdfs_models.testing import predict_in_process, save_dense, write_features

    model = save_dense(os.path.join(scratch, "model"), n_in=12, seed=3)
    base = f"{cluster.url}/models/bench-env/dense"
    publish(model, base)
    x = np.random.default_rng(0).random((256, 12), dtype=np.float32)
    write_features(os.path.join(scratch, "in"), x)
    fs = cluster.fs()
    fs.put_file(archive, "/user/envs/env.tar.gz")
    conf = cluster.spark_yarn_conf(python="./environment/bin/python")
    out = os.path.join(scratch, "out")
    args = [
        "--model",
        base,
        "--input-path",
        f"file://{scratch}/in",
        "--output-path",
        f"file://{out}",
        "--features",
        "features",
        "--keep",
        "id",
        "--returns",
        "probabilities",
    ]
    result = cluster.yarn.submit(
        os.path.join(REPO, "scoring", "job.py"),
        args,
        deploy_mode="cluster",
        conf=conf,
        options=["--archives", f"{cluster.url}/user/envs/env.tar.gz#environment"],
        env={"PYTHONPATH": ""},
        timeout=900,
    )
    if result.final_status != "SUCCEEDED":
        raise RuntimeError(result.log_tail())
    table = pq.read_table(out).to_pydict()
    reference = predict_in_process(model, features=x)["probabilities"]
    worst = max(float(np.max(np.abs(np.array(p) - reference[i]))) for i, p in zip(table["id"], table["prediction"]))
    if len(table["id"]) != 256 or worst > 1e-6:
        raise AssertionError(f"{len(table['id'])} rows, largest difference {worst}")
    return {"job_s": round(result.seconds, 1), "rows": len(table["id"]), "max_abs_diff": worst}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    from hdfs_models.testing.minidfs import MiniDFS

    scratch = tempfile.mkdtemp(prefix="bench-yarn-env-")
    try:
        built = build_env(scratch)
        print(
            f"venv {built['venv_s']} s, pip install {built['install_s']} s, venv-pack {built['pack_s']} s, "
            f"archive {built['archive_mb']} MB",
            file=sys.stderr,
            flush=True,
        )
        with MiniDFS(datanodes=1, block_size=128 << 20, yarn_nodemanagers=2) as cluster:
            ran = run_job(cluster, scratch, built.pop("archive"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "bench": "yarn_env",
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        **built,
        **ran,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    with open(os.path.join(HERE, "results", f"yarn_env-{stamp}.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    print(
        f"scoring.job on YARN with the packed env: {ran['rows']} rows in {ran['job_s']} s, "
        f"predictions = TF (max |diff| {ran['max_abs_diff']:.1e})"
    )
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
