"""RELIABILITY P3 on an HA MiniDFS: a 30-second NameNode failover in the middle of a multi-block
download, and in the middle of a publish, with default settings.

One HA cluster for the module: two NameNodes behind the nameservice ``minidfs-ns``, two DataNodes,
256 KiB blocks, so the 15 MiB model spans 60 blocks in 14 files (more files than the download's
8 parallel readers: files are still to be opened while the NameNode is away). The outage is
:meth:`~hdfs_models.testing.MiniDFS.failover` with ``seconds=30``: the active NameNode stops,
the standby answers ``StandbyException`` and becomes active only 30 s later, as with a real
ZKFC failover; then the stopped one restarts as the standby for the next test. Each test
triggers it from the progress callback once some bytes have moved (other readers wait at their
next chunk until the NameNode is down), so the outage really falls mid-transfer.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from _ha import Outage, ha_cluster, settled

from hdfs_models import MANIFEST_NAME, HdfsModelsError, localize, publish
from hdfs_models.testing import tree_digest, write_fake_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30.0
BLOCK = 256 << 10
SHARDS, DATA_BYTES = 12, 15 << 20
WAIT = 180.0


@pytest.fixture(scope="module")
def ha():
    yield from ha_cluster(block_size=BLOCK)


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


def _without_manifest(path: str) -> dict[str, str]:
    tree = tree_digest(path)
    tree.pop(MANIFEST_NAME, None)
    return tree


def test_a_30s_failover_mid_download_ends_with_identical_bytes_p3(ha, tmp_path, caplog, record_property):
    """P3: a 30 s failover during the download of a multi-block model, with default options: the
    model is localized and its bytes are identical (every file checked against the manifest)."""
    settled(ha, WAIT)
    local = write_fake_model(tmp_path / "model", shards=SHARDS, data_bytes=DATA_BYTES, seed=3)
    base = f"{ha.url}/tmp/p3-{uuid.uuid4().hex[:8]}/download"
    publish(local, base, signatures=False)
    assert len(ha.block_locations(f"{base}/1/variables/variables.data-00000-of-{SHARDS:05d}")) > 1
    outage = Outage(ha, after=1)
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    model = localize(base, 1, tmp_path / "cache", progress=outage)
    elapsed = time.monotonic() - started
    retries = _retries(caplog)
    record_property("elapsed_s", round(elapsed, 1))
    record_property("retries", len(retries))
    logging.getLogger(__name__).warning("P3 download: %.1f s, %d retries: %s", elapsed, len(retries), retries)
    assert outage.done is not None and outage.done < outage.total, "the outage did not start mid-download"
    assert outage.at is not None and elapsed >= OUTAGE_S - 1, "the download finished before the outage ended?"
    assert _without_manifest(model.path) == tree_digest(local)
    model.release()


def test_a_30s_failover_mid_publish_commits_a_whole_version_or_leaves_only_a_temp_p3(
    ha, tmp_path, caplog, record_property
):
    """P3: a 30 s failover during a publish, with default settings: the base then holds the complete
    version (it localizes with every digest matching) or only ``_tmp-*`` dirs, never a partial version."""
    settled(ha, WAIT)
    local = write_fake_model(tmp_path / "model", shards=SHARDS, data_bytes=DATA_BYTES, seed=4)
    base = f"{ha.url}/tmp/p3-{uuid.uuid4().hex[:8]}/publish"
    outage = Outage(ha, after=DATA_BYTES // 4)
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    try:
        published = publish(local, base, signatures=False, progress=outage)
        outcome = f"committed version {published.version}"
    except HdfsModelsError as exc:
        published, outcome = None, f"failed: {exc!r}"
    elapsed = time.monotonic() - started
    retries = _retries(caplog)
    record_property("elapsed_s", round(elapsed, 1))
    record_property("outcome", outcome)
    logging.getLogger(__name__).warning(
        "P3 publish: %s in %.1f s, %d retries: %s", outcome, elapsed, len(retries), retries
    )
    assert outage.done is not None and outage.done < outage.total, "the outage did not start mid-publish"
    settled(ha, WAIT)
    fs = ha.fs()
    names = sorted(p.rstrip("/").rsplit("/", 1)[1] for p in fs.ls(base.replace(ha.url, ""), detail=False))
    versions = [n for n in names if not n.startswith("_tmp-")]
    if published is None:
        assert versions == [], f"a failed publish left {names}"
    else:
        assert versions == [str(published.version)], names
        model = localize(base, published.version, tmp_path / "cache")  # verifies every file's sha256
        assert _without_manifest(model.path) == tree_digest(local)
        model.release()
