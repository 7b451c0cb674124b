"""P13 on a real MiniDFS with 5 DataNodes: what ``publish`` and the ``archive`` strategy write is spread.

A version is read by every executor of a job at once; at HDFS's default
replication of 3, three DataNodes would serve all of them. ``publish`` and
the ``archive`` strategy's upload ask for replication 10 (MapReduce's
job-jar replication) unless told otherwise. The NameNode places at most one
replica per DataNode, so on 5 DataNodes every block must have replicas on
min(10, 5) = 5 of them: asserted from the NameNode's block locations (the
launcher's ``block-locations``; the cluster's own re-replication is off, so
every replica was placed by the write pipeline). The replication asked for is capped at
the live DataNode count the NameNode's ``/jmx`` reports, so the files are not left
under-replicated: each file's replication is 5, not 10.
"""

from __future__ import annotations

import uuid

import pytest

from hdfs_models import publish, resolve
from hdfs_models._distribute import ensure_archive
from hdfs_models.store import DEFAULT_REPLICATION, cap_replication
from hdfs_models.store._replication import live_datanodes
from hdfs_models.testing import MiniDFS, write_fake_model
from hdfs_models.testing.minidfs import missing_tools
from hdfs_models.testing.pytest_plugin import require_or_skip

pytestmark = pytest.mark.integration

DATANODES = 5
MiB = 1 << 20


@pytest.fixture(scope="module")
def wide_minidfs():
    """A MiniDFS of 5 DataNodes (the default replication of new files stays 3)."""
    missing = missing_tools()
    if missing:
        require_or_skip(missing)
    with MiniDFS(datanodes=DATANODES, replication=3) as cluster:
        yield cluster


@pytest.fixture
def base(wide_minidfs):
    return f"{wide_minidfs.url}/models/p13-{uuid.uuid4().hex[:8]}/cnn"


def _hdfs_path(cluster, url: str) -> str:
    return url.replace(cluster.url, "") or "/"


def _replicas_per_block(cluster, url: str) -> list[int]:
    """For each block of ``url``: on how many distinct DataNodes the NameNode lists a replica."""
    return [len(set(block["locations"])) for block in cluster.block_locations(_hdfs_path(cluster, url))]


def _version_files(cluster, version_url: str) -> list[str]:
    fs = cluster.fs()
    return sorted(p for p in fs.find(_hdfs_path(cluster, version_url)) if fs.isfile(p))


def test_publish_spreads_every_block_over_min_10_n_datanodes_p13(wide_minidfs, base, tmp_path, monkeypatch):
    """P13: publish (default replication 10) puts each block of every file on all 5 DataNodes."""
    monkeypatch.setenv("HADOOP_CONF_DIR", wide_minidfs.conf_dir)
    monkeypatch.delenv("HDFS_MODELS_REPLICATION", raising=False)
    assert len([d for d in wide_minidfs.datanodes() if d["alive"]]) == DATANODES
    src = write_fake_model(str(tmp_path / "src"), data_bytes=3 * MiB + 123)  # 4 blocks of 1 MiB
    pinned = publish(src, base, signatures=False)
    files = _version_files(wide_minidfs, pinned.url)
    assert any(f.endswith("MANIFEST.json") for f in files) and len(files) >= 4
    expected = min(DEFAULT_REPLICATION, DATANODES)
    fs = wide_minidfs.fs()
    blocks = 0
    for path in files:
        per_block = _replicas_per_block(wide_minidfs, path)
        assert per_block and all(n == expected for n in per_block), (path, per_block)
        # 10 asked, capped at the 5 live DataNodes the NameNode's /jmx reports: not under-replicated
        assert fs.client.get_file_info(path).replication == expected
        blocks += len(per_block)
    assert blocks >= 4 + len(files) - 1  # the data file spans 4 blocks


def test_publish_replication_option_and_webhdfs_p13(wide_minidfs, base, tmp_path, monkeypatch):
    """P13: ``replication=4`` gives 4 DataNodes per block, through hdfs-native and through WebHDFS."""
    monkeypatch.setenv("HADOOP_CONF_DIR", wide_minidfs.conf_dir)
    src = write_fake_model(str(tmp_path / "src"), data_bytes=2 * MiB)
    native = publish(src, base, signatures=False, replication=4)
    web_base = f"{wide_minidfs.webhdfs_url}/tmp/p13-{uuid.uuid4().hex[:8]}/cnn"  # /tmp: world-writable
    web = publish(src, web_base, signatures=False, replication=2, storage_options={"user": "modeler"})
    for pinned, want in ((native, 4), (web, 2)):
        version = pinned.url.replace(wide_minidfs.webhdfs_url, wide_minidfs.url)
        for path in _version_files(wide_minidfs, version):
            assert set(_replicas_per_block(wide_minidfs, path)) == {want}, (pinned.url, path)


def test_archive_strategy_upload_is_spread_over_min_10_n_datanodes_p13(wide_minidfs, base, tmp_path, monkeypatch):
    """P13: the archive strategy's ``_archives/<v>-<digest>.tar`` has each block on all 5 DataNodes."""
    monkeypatch.setenv("HADOOP_CONF_DIR", wide_minidfs.conf_dir)
    monkeypatch.delenv("HDFS_MODELS_REPLICATION", raising=False)
    src = write_fake_model(str(tmp_path / "src"), data_bytes=3 * MiB)
    pinned = publish(src, base, signatures=False, replication=3)
    stored = ensure_archive(resolve(pinned.url))
    assert "/_archives/" in stored
    per_block = _replicas_per_block(wide_minidfs, stored)
    assert len(per_block) >= 3 and set(per_block) == {min(DEFAULT_REPLICATION, DATANODES)}, per_block
    assert wide_minidfs.fs().client.get_file_info(_hdfs_path(wide_minidfs, stored)).replication == DATANODES
    again = f"{base}-again"
    narrow = ensure_archive(resolve(publish(src, again, signatures=False).url), replication=2)
    assert set(_replicas_per_block(wide_minidfs, narrow)) == {2}


def test_the_live_datanode_count_comes_from_the_namenodes_jmx_p13(wide_minidfs, monkeypatch):
    """P13's cap: the count is the NameNode's, through hdfs-native's conf and through WebHDFS's URL."""
    monkeypatch.setenv("HADOOP_CONF_DIR", wide_minidfs.conf_dir)
    assert live_datanodes(wide_minidfs.url, wide_minidfs.fs()) == DATANODES
    assert live_datanodes(wide_minidfs.webhdfs_url, wide_minidfs.webhdfs_fs()) == DATANODES
    assert cap_replication(DEFAULT_REPLICATION, wide_minidfs.url, wide_minidfs.fs()) == DATANODES
    assert cap_replication(2, wide_minidfs.url, wide_minidfs.fs()) == 2
