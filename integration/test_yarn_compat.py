"""YARN the way users' clusters run it: the job's Python environment shipped with venv-pack,
holding no pyspark, so the driver and executors import the cluster's own ``pyspark.zip``.

Both CI legs run it (marker ``compat``): on the compatibility leg that is spark-submit from
pyspark 3.5 against a Hadoop 3.3.6 MiniYARNCluster. The environment is a fresh venv with
``pip install '.[executor]'`` (the extra made for this: everything the workers need, no
pyspark), packed once per module with ``venv-pack`` and passed as
``--archives env.tar#environment``; no ``PYTHONPATH`` points at this checkout. Client and
cluster mode each score a Parquet input with the model shipped by ``fetch`` from HDFS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from hdfs_models import publish
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = [pytest.mark.integration, pytest.mark.yarn, pytest.mark.compat]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
JOB = os.path.join(REPO, "scoring", "job.py")
N_IN, ROWS = 12, 64


def _constraints() -> str:
    """The pins of the leg this interpreter belongs to (numpy 1 here means the Spark 3.5 leg)."""
    import pyspark

    name = "constraints-compat.txt" if pyspark.__version__.startswith("3.") else "constraints.txt"
    return os.path.join(REPO, name)


def _package_source(dest) -> str:
    """This checkout's package sources, copied: pip builds in-tree (``build/``), and a build
    dir left from an older tree would carry modules that no longer exist into the wheel."""
    import shutil

    skip = shutil.ignore_patterns("__pycache__", "target")
    for package in ("hdfs_models", "scoring", os.path.join("integration", "minidfs")):
        shutil.copytree(os.path.join(REPO, package), dest / package, ignore=skip)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(REPO, name), dest / name)
    return str(dest)


@pytest.fixture(scope="module")
def cluster(minidfs_yarn):
    require_module("pyspark", "spark")
    require_module("tensorflow", "tf")
    require_module("venv_pack", "test")
    return minidfs_yarn


@pytest.fixture(scope="module")
def packed_env(tmp_path_factory, cluster):
    """``env.tar``: a venv with hdfs-models[executor] and no pyspark, packed by venv-pack."""
    root = tmp_path_factory.mktemp("yarn-env")
    env_dir, archive = root / "env", root / "env.tar"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(env_dir)], check=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run(
        [*pip, "-c", _constraints(), f"{_package_source(root / 'src')}[executor]"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    no_spark = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import pyspark"], capture_output=True)
    assert no_spark.returncode != 0, "the executor environment must not carry a pyspark of its own"
    subprocess.run([sys.executable, "-m", "venv_pack", "-p", str(env_dir), "-o", str(archive), "-q"], check=True)
    # A local archive, as users pass it: spark-submit uploads it to the application's staging dir
    # with Hadoop's own client, which waits out NotReplicatedYetException on a busy one-DataNode
    # cluster (hdfs-native's put of these ~900 one-MiB blocks gave up once: "Failed to complete file").
    return f"file://{archive}"


@pytest.fixture(scope="module")
def scored_input(cluster, tmp_path_factory):
    """A published dense model and a Parquet input on HDFS; the reference predictions."""
    from hdfs_models.testing import predict_in_process, save_dense, write_features

    root = tmp_path_factory.mktemp("yarn-compat")
    local = save_dense(str(root / "dense"), n_in=N_IN, seed=5)
    base = f"{cluster.url}/models/compat-{uuid.uuid4().hex[:8]}/dense"
    publish(local, base)
    x = (np.arange(ROWS * N_IN).reshape(ROWS, N_IN) % 11 / 10.0).astype(np.float32)
    src = write_features(str(root / "in"), x, files=2)
    work = f"/tmp/compat-{uuid.uuid4().hex[:8]}"
    fs = cluster.fs()
    for name in sorted(os.listdir(src)):
        fs.put_file(os.path.join(src, name), f"{work}/in/{name}")
    return {"base": base, "work": work, "expected": predict_in_process(local, features=x)["probabilities"]}


@pytest.mark.parametrize("deploy_mode", ["client", "cluster"])
def test_job_in_a_venv_pack_environment_without_pyspark(cluster, packed_env, scored_input, deploy_mode, tmp_path):
    import pyarrow.parquet as pq

    shipped_python = "./environment/bin/python"
    conf = cluster.yarn.spark_conf(python=shipped_python, executors=2)
    conf["spark.hadoop.dfs.client.block.write.locateFollowingBlock.retries"] = "10"
    if deploy_mode == "client":  # the driver runs here, in this interpreter; only executors use the archive
        conf["spark.pyspark.driver.python"] = sys.executable
    work = scored_input["work"]
    out = f"{work}/out-{deploy_mode}"
    result = cluster.yarn.submit(
        JOB,
        [
            "--model",
            scored_input["base"],
            "--input-path",
            f"{cluster.url}{work}/in",
            "--output-path",
            f"{cluster.url}{out}",
            "--features",
            "features",
            "--keep",
            "id",
            "--returns",
            "probabilities",
            "--json",
        ],
        deploy_mode=deploy_mode,
        conf=conf,
        options=["--archives", f"{packed_env}#environment"],
    )
    assert result.returncode == 0, result.log_tail()
    assert (result.state, result.final_status) == ("FINISHED", "SUCCEEDED"), result.log_tail()
    cluster.fs().get(out, str(tmp_path / "out"), recursive=True)
    table = pq.read_table(str(tmp_path / "out")).to_pandas().sort_values("id")
    assert table["id"].tolist() == list(range(ROWS))
    assert set(table["model_version"]) == {1}
    np.testing.assert_allclose(np.stack(table["prediction"].to_numpy()), scored_input["expected"], atol=1e-6)
