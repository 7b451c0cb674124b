"""The MiniDFS harness against three independent real clients (issue: real HDFS under test).

One multi-block file is written once and read back through hdfs-native
(fsspec ``hdfs://``), fsspec WebHDFS and Spark's JVM Hadoop client; DataNode
failures and corrupt replicas are injected through the launcher's protocol.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import pytest

from hdfs_models.testing import MiniDFS, MiniDFSError
from hdfs_models.testing.launcher import resolve_hadoop_version

pytestmark = pytest.mark.integration

SIZE = 3 * (1 << 20) + 123_457  # four 1 MiB blocks, the last one partial


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture(scope="module")
def faulty():
    """A private cluster with replication 2, so tests may stop DataNodes and corrupt replicas."""
    with MiniDFS(datanodes=3, replication=2) as cluster:
        yield cluster


def _write(fs, path: str, data: bytes) -> None:
    with fs.open(path, "wb") as fh:
        fh.write(data)


@pytest.mark.compat
def test_fixture_reports_addresses_and_startup(minidfs, record_property):
    # the JVM runs the Hadoop this leg asked for (HDFS_MODELS_HADOOP_VERSION: 3.3.6 on the compatibility leg)
    assert minidfs.info["hadoop_version"] == minidfs.hadoop_version == resolve_hadoop_version()
    record_property("hadoop_version", minidfs.hadoop_version)
    assert minidfs.url.startswith("hdfs://127.0.0.1:")
    assert minidfs.webhdfs_url.startswith("webhdfs://127.0.0.1:")
    assert len(minidfs.datanodes()) == 3
    conf = open(os.path.join(minidfs.conf_dir, "core-site.xml")).read()
    assert minidfs.url in conf
    assert minidfs.startup_seconds is not None and 0 < minidfs.startup_seconds < minidfs.startup_timeout
    record_property("minidfs_startup_s", round(minidfs.startup_seconds, 1))


def test_multiblock_file_identical_through_three_clients(minidfs, payload, spark_cluster):
    path = f"/tmp/harness-{uuid.uuid4().hex}/model.bin"
    _write(minidfs.fs(), path, payload)
    blocks = minidfs.block_locations(path)
    assert len(blocks) == 4 and sum(b["length"] for b in blocks) == SIZE

    via_native = minidfs.fs().cat_file(path)
    via_webhdfs = minidfs.webhdfs_fs().cat_file(path)
    rows = spark_cluster.read.format("binaryFile").load(minidfs.url + path).collect()
    via_spark = bytes(rows[0]["content"])

    expected = _sha(payload)
    assert [_sha(via_native), _sha(via_webhdfs), _sha(via_spark)] == [expected] * 3


def test_read_survives_stopping_a_datanode_mid_read(faulty, payload):
    path = f"/tmp/harness-{uuid.uuid4().hex}/dn.bin"
    fs = faulty.fs()
    _write(fs, path, payload)
    blocks = faulty.block_locations(path)
    assert all(len(b["locations"]) == 2 for b in blocks)
    victim = blocks[2]["locations"][0]  # holds a replica of a block not read yet
    try:
        with fs.open(path, "rb") as fh:
            head = fh.read(1 << 20)
            faulty.stop_datanode(victim)
            rest = fh.read()
        assert _sha(head + rest) == _sha(payload)
        assert _sha(faulty.webhdfs_fs().cat_file(path)) == _sha(payload)
    finally:
        faulty.restart_datanode(victim)


def test_one_corrupt_replica_is_read_around(faulty, payload):
    path = f"/tmp/harness-{uuid.uuid4().hex}/one.bin"
    _write(faulty.fs(), path, payload)
    hit = faulty.corrupt_replica(path, block=1)
    assert len(hit["corrupted"]) == 1
    assert _sha(faulty.fs().cat_file(path)) == _sha(payload)
    assert _sha(faulty.webhdfs_fs().cat_file(path)) == _sha(payload)


def test_every_replica_corrupt_fails_the_read(faulty, payload):
    """F11 at the client level: each client raises, none returns corrupt or short bytes."""
    import requests

    path = f"/tmp/harness-{uuid.uuid4().hex}/all.bin"
    _write(faulty.fs(), path, payload)
    hit = faulty.corrupt_all_replicas(path, block=1)
    assert len(hit["corrupted"]) == 2
    # hdfs-native tries every replica, then gives up (a RuntimeError from Rust's DataTransferError)
    with pytest.raises(RuntimeError, match="All DataNodes failed"):
        faulty.fs().cat_file(path)
    # WebHDFS: the DataNode streams the good first block, then breaks the chunked response
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        faulty.webhdfs_fs().cat_file(path)
    # what hdfs-models makes of it: a StoreError naming the URL (localize: integration/test_reliability_minidfs.py)
    from hdfs_models.errors import StoreError
    from hdfs_models.store._open import translate_errors

    url = faulty.url + path
    with pytest.raises(StoreError, match="All DataNodes failed") as info:
        with translate_errors(url, "read"):
            faulty.fs().cat_file(path)
    assert info.value.url == url and url in str(info.value)


def _read_as(cluster: MiniDFS, user: str, path: str) -> subprocess.CompletedProcess[str]:
    # hdfs-native takes the simple-auth user from HADOOP_USER_NAME: use a fresh process.
    code = (
        "import sys\n"
        "from hdfs_models.testing.minidfs import MiniDFS\n"
        "from hdfs_native.fsspec import HdfsFileSystem\n"
        f"fs = HdfsFileSystem(host='127.0.0.1', port={cluster.url.rsplit(':', 1)[1]}, skip_instance_cache=True)\n"
        "try:\n"
        f"    fs.cat_file({path!r})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc); sys.exit(3)\n"
    )
    env = dict(os.environ, HADOOP_USER_NAME=user)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_permission_denied_is_not_not_found(minidfs):
    base = f"/tmp/perm-{uuid.uuid4().hex}"
    alice = minidfs.webhdfs_fs(user="alice")
    alice.mkdir(base)
    alice.pipe_file(f"{base}/secret.bin", b"alice only")
    alice.chmod(f"{base}/secret.bin", "700")  # WebHDFS takes octal digits
    assert alice.cat_file(f"{base}/secret.bin") == b"alice only"

    with pytest.raises(PermissionError, match="Permission denied"):
        minidfs.webhdfs_fs(user="bob").cat_file(f"{base}/secret.bin")

    as_bob = _read_as(minidfs, "bob", f"{base}/secret.bin")
    assert as_bob.returncode == 3, as_bob.stderr
    assert "PermissionError" in as_bob.stdout or "AccessControlException" in as_bob.stdout
    assert "not found" not in as_bob.stdout.lower()
    as_alice = _read_as(minidfs, "alice", f"{base}/secret.bin")
    assert as_alice.returncode == 0, as_alice.stdout + as_alice.stderr


def test_ha_nameservice_survives_failover(payload, monkeypatch):
    with MiniDFS(ha=True, datanodes=2) as cluster:
        assert cluster.url == "hdfs://minidfs-ns"
        monkeypatch.setenv("HADOOP_CONF_DIR", cluster.conf_dir)
        from hdfs_native.fsspec import HdfsFileSystem

        fs = HdfsFileSystem(host="minidfs-ns", skip_instance_cache=True)
        path = f"/tmp/ha-{uuid.uuid4().hex}.bin"
        _write(fs, path, payload)
        assert _sha(fs.cat_file(path)) == _sha(payload)
        web_nn1 = cluster.webhdfs_fs()

        moved = cluster.failover()
        assert moved["active"] == "nn2"
        # The same hdfs-native client fails over to nn2 by itself.
        assert _sha(fs.cat_file(path)) == _sha(payload)
        # WebHDFS names one NameNode: nn1 is gone (connection refused), nn2 serves.
        import requests

        with pytest.raises(requests.exceptions.ConnectionError):
            web_nn1.cat_file(path)
        from fsspec.implementations.webhdfs import WebHDFS

        host, port = cluster.info["webhdfs"][1].split(":")
        web_nn2 = WebHDFS(host=host, port=int(port), skip_instance_cache=True)
        assert _sha(web_nn2.cat_file(path)) == _sha(payload)


# -- bad input -------------------------------------------------------------------------------


def test_missing_java_and_maven_is_explained(monkeypatch, tmp_path):
    from hdfs_models.testing.minidfs import ensure_launcher, missing_tools

    assert missing_tools({"PATH": str(tmp_path)}).startswith("MiniDFS needs java and mvn on PATH")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MiniDFSError, match="apt-get install"):
        ensure_launcher()


def test_no_ready_line_before_deadline_carries_the_log():
    cluster = MiniDFS(datanodes=1, startup_timeout=0.5)
    with pytest.raises(MiniDFSError, match=r"no ready line within 0.5s") as info:
        cluster.start()
    assert "last lines of" in str(info.value)
    assert not cluster.running


def test_bad_options_fail_fast_with_the_cause():
    with pytest.raises(MiniDFSError, match="replication 3 exceeds the number of DataNodes 1"):
        MiniDFS(datanodes=1, replication=3).start()


def test_crashed_jvm_is_reported_not_hung():
    cluster = MiniDFS(datanodes=1, command_timeout=30).start()
    try:
        assert cluster.command("ping") == "pong"
        cluster._proc.kill()  # the JVM dies under the test
        cluster._proc.wait()
        with pytest.raises(MiniDFSError, match="not running|exited"):
            cluster.datanodes()
    finally:
        cluster.stop()
