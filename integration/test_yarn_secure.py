"""Y4: Spark on a secure YARN, ``spark-submit --principal alice --keytab …`` (issue 12).

One Kerberized MiniDFS with a secure MiniYARNCluster serves the module: a KDC,
SASL-protected RPC and data transfer, a ResourceManager and two NodeManagers
that log in from the service keytab. alice publishes a model under her home
with mode 0700 (only alice, or a token of hers, can read it) and submits
``scoring/job.py`` in cluster mode with her principal and keytab.

Only spark-submit's JVM and the application master's JVM ever log in (from
the keytab, in memory). Every process gets an empty ticket cache
(``KRB5CCNAME``): the Python driver in the AM and the executors' Python
workers can read HDFS with nothing but the delegation tokens YARN writes into
each container's ``container_tokens`` (``HADOOP_TOKEN_FILE_LOCATION``), and
with no ``HADOOP_CONF_DIR`` but the copy Spark ships into each container. The
NameNode's audit log (the harness's ``hdfs-audit.log``) is the witness: every
read of the model after the submit is ``ugi=alice (auth:TOKEN)``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import time

import pytest

from hdfs_models import publish, resolve
from hdfs_models.testing import tree_digest, write_features
from hdfs_models.testing.kerberos import become

pytestmark = [pytest.mark.integration, pytest.mark.yarn]

SECURE_MINIDFS_OPTIONS = {"datanodes": 1, "yarn_nodemanagers": 2}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
JOB = os.path.join(REPO, "scoring", "job.py")
N_IN, ROWS, FILES = 12, 48, 4


@pytest.fixture(scope="module")
def cluster(secure_minidfs):
    from hdfs_models.testing.pytest_plugin import require_module

    require_module("pyspark", "spark")
    require_module("tensorflow", "tf")
    return secure_minidfs


def features():
    import numpy as np

    return np.array([[float((i * 5 + j) % 13) / 10.0 for j in range(N_IN)] for i in range(ROWS)], dtype="float32")


_AUDIT = re.compile(r"ugi=(?P<user>[^\s(]+) \(auth:(?P<auth>\w+)\).*?\tcmd=(?P<cmd>\S+)\tsrc=(?P<src>\S+)")


def audit_since(cluster, offset: int) -> list[dict[str, str]]:
    """The NameNode audit log's records written after byte ``offset``: user, auth, cmd, src."""
    with open(cluster.base_dir / "hdfs-audit.log", "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    return [m.groupdict() for m in map(_AUDIT.search, text.splitlines()) if m]


def audit_size(cluster) -> int:
    return os.path.getsize(cluster.base_dir / "hdfs-audit.log")


def secure_submit_settings(cluster, env: dict[str, str]) -> dict[str, str]:
    """spark-submit --conf for alice's job (the harness adds the KDC's krb5.conf to every JVM)."""
    settings = cluster.spark_yarn_conf(executors=2, env=env)
    settings.update(
        {
            "spark.sql.files.openCostInBytes": str(128 << 20),
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "300s",
        }
    )
    return settings


def test_secure_yarn_job_reads_the_model_with_delegation_tokens_only_y4(cluster, tmp_path):
    """Y4: SUCCEEDED as alice; executors downloaded her 0700 model with her tokens, no ticket."""
    from hdfs_models.testing import predict_in_process, save_dense

    local = save_dense(str(tmp_path / "model"), n_in=N_IN, seed=3)
    base = f"{cluster.url}/user/alice/private/models/dense"
    with pytest.MonkeyPatch.context() as mp:
        become(mp, cluster.kerberos_env("alice"))
        publish(local, base)
        cluster.fs("alice").client.set_permission("/user/alice/private", 0o700)
        pinned = resolve(base)

    no_ticket = cluster.no_ticket_env()  # an empty ticket cache, no token file
    empty_cache = no_ticket["KRB5CCNAME"]
    # The AM and executors get no HADOOP_CONF_DIR and no KRB5_CONFIG: hdfs-models takes the Hadoop
    # configuration spark-submit shipped into each container (__spark_conf__/__hadoop_conf__).
    process_env = {"PYTHONPATH": REPO, "KRB5CCNAME": empty_cache, "HDFS_MODELS_CACHE_SCOPE": "user"}
    metrics = tmp_path / "metrics.json"
    src = write_features(str(tmp_path / "in"), features(), FILES)
    args = [
        "--model",
        base,
        "--strategy",
        "fetch",
        "--input-path",
        f"file://{src}",
        "--output-path",
        f"file://{tmp_path / 'out'}",
        "--features",
        "features",
        "--keep",
        "id",
        "--returns",
        "probabilities",
        "--metrics-json",
        str(metrics),
        "--json",
    ]
    submit_env = {**process_env, "HADOOP_TOKEN_FILE_LOCATION": ""}
    audit_offset = audit_size(cluster)
    with pytest.MonkeyPatch.context() as mp:
        become(mp, {"HADOOP_TOKEN_FILE_LOCATION": ""})  # spark-submit inherits os.environ
        result = cluster.yarn.submit(
            JOB,
            args,
            deploy_mode="cluster",
            conf=secure_submit_settings(cluster, process_env),
            options=["--principal", cluster.principal("alice"), "--keytab", cluster.keytab("alice")],
            env=submit_env,
        )
    assert result.returncode == 0, result.log_tail()
    assert (result.state, result.final_status) == ("FINISHED", "SUCCEEDED"), result.log_tail()
    assert cluster.yarn.app(result.app_id)["user"] == "alice"

    import pyarrow.parquet as pq

    table = pq.read_table(str(tmp_path / "out")).to_pydict()
    reference = predict_in_process(local, features=features())["probabilities"]
    assert sorted(table["id"]) == list(range(ROWS))
    assert set(table["model_version"]) == {pinned.version}
    for i, probs in zip(table["id"], table["prediction"]):
        assert probs == pytest.approx(reference[i].tolist(), abs=1e-6)

    # The executors downloaded the model themselves: once per NodeManager that ran one,
    # into alice's user cache there, with no ticket to read it with.
    report = json.loads(metrics.read_text())
    cached = {
        nm.index: [p for p in glob.glob(os.path.join(nm.user_dirs("alice")[0], "hdfs-models", "*")) if os.path.isdir(p)]
        for nm in cluster.yarn.nodemanagers
    }
    nodes = [entries for entries in cached.values() if entries]
    assert nodes, "no NodeManager holds alice's cached model"
    assert report["cache"]["misses"] == len(nodes) and report["cache"]["errors"] == 0, report["cache"]
    assert report["cache"]["bytes_downloaded"] == len(nodes) * pinned.total_bytes, report["cache"]
    want = tree_digest(local)
    for entries in nodes:
        (entry,) = entries
        got = tree_digest(entry)
        assert {k: v for k, v in got.items() if k != "MANIFEST.json"} == want, entry

    # The NameNode saw every read of the model after the submit come with alice's token.
    model_path = base.split("://", 1)[1].split("/", 1)[1]
    deadline = time.monotonic() + 30
    while True:
        reads = [
            r
            for r in audit_since(cluster, audit_offset)
            if r["cmd"] == "open" and r["src"].startswith(f"/{model_path}/")
        ]
        if len(reads) >= len(nodes) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the audit log may be written asynchronously
    assert len(reads) >= len(nodes), reads
    assert {(r["user"].split("@")[0], r["auth"]) for r in reads} == {("alice", "TOKEN")}, reads


def test_secure_yarn_refuses_a_submit_without_credentials(cluster):
    """No ticket and no keytab: the ResourceManager refuses spark-submit (auth); no application exists."""
    known = {a["id"] for a in cluster.yarn.apps()}
    submit_env = cluster.no_ticket_env()
    with pytest.MonkeyPatch.context() as mp:
        become(mp, {"HADOOP_TOKEN_FILE_LOCATION": ""})
        settings = secure_submit_settings(cluster, {"PYTHONPATH": REPO})
        # A refused client retries the ResourceManager for 15 minutes by default.
        settings["spark.hadoop.yarn.resourcemanager.connect.max-wait.ms"] = "5000"
        settings["spark.hadoop.yarn.resourcemanager.connect.retry-interval.ms"] = "1000"
        result = cluster.yarn.submit(JOB, ["--help"], deploy_mode="cluster", conf=settings, env=submit_env, timeout=240)
    assert result.returncode not in (0, -9), result.log_tail()  # -9: killed at the timeout
    # The ResourceManager itself refused it: the YARN side is secure, not only HDFS.
    assert re.search(r"cannot authenticate via:\[TOKEN, KERBEROS\].*ApplicationClientProtocol", result.stderr), (
        result.stderr[-3000:]
    )
    assert {a["id"] for a in cluster.yarn.apps()} == known
