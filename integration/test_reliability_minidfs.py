"""Reliability rows through ``localize`` on a real MiniDFS: F9, F10, F11, H2, H4 and odd models.

Faults are injected through the launcher's protocol (stop a DataNode, corrupt
chosen replicas); the DataNode to stop is found from the DataNodes' own
BytesRead counters while a gated reader holds the download mid-file, so the
test never relies on which replica the client happens to pick.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from hdfs_models import (
    IncompleteVersionError,
    ModelNotFoundError,
    StoreError,
    distribute,
    list_versions,
    localize,
    publish,
    resolve,
)
from hdfs_models._distribute import ensure_archive
from hdfs_models._store_gc import sweep_store
from hdfs_models.testing import tree_digest, write_fake_model

pytestmark = pytest.mark.integration


DATA = "variables/variables.data-00000-of-00001"
MiB = 1 << 20
WAIT = 120.0  # generous deadline for every event and poll below


@pytest.fixture
def base(minidfs):
    return f"{minidfs.url}/models/rel-{uuid.uuid4().hex[:8]}/cnn"


def _path(minidfs, url: str) -> str:
    return url.replace(minidfs.url, "")


def _cache_state(cache: str) -> tuple[list[str], list[str]]:
    """(committed entries, leftovers: temp dirs and ``.part`` files) under a cache root."""
    if not os.path.isdir(cache):
        return [], []
    names = os.listdir(cache)
    entries = [n for n in names if not n.startswith(".") and os.path.isdir(os.path.join(cache, n))]
    leftovers = [n for n in names if n.startswith(".tmp-")]
    leftovers += [f for _, _, fs in os.walk(cache) for f in fs if ".part" in f]
    return entries, leftovers


def _same_tree(local: str, src: str) -> bool:
    tree = tree_digest(local)
    tree.pop("MANIFEST.json", None)
    return tree == tree_digest(src)


def _per_datanode(cluster) -> dict[str, int]:
    return dict(cluster.command("bytes-read")["per_datanode"])


# -- F9: the DataNode serving the read stops mid-read --------------------------------------------


class _Gate:
    """Holds the data file's reader at ``at`` bytes: pause, one probe read of ``probe`` bytes, pause."""

    def __init__(self, at: int, probe: int) -> None:
        self.at, self.probe = at, probe
        self.paused, self.go, self.probed, self.resume = (threading.Event() for _ in range(4))
        self.opens = 0

    def release_all(self) -> None:
        for event in (self.go, self.resume):
            event.set()


class _GatedReader:
    PIECE = 64 * 1024  # small reads: each is one short DataNode operation

    def __init__(self, inner, gate: _Gate) -> None:
        self.inner, self.gate, self.pos, self.done = inner, gate, 0, False

    def read(self, size: int = -1) -> bytes:
        if not self.done and self.pos >= self.gate.at:
            self.done = True
            self.gate.paused.set()
            if not self.gate.go.wait(WAIT):
                raise AssertionError("the test never let the probe read go")
            data = self.inner.read(self.gate.probe)
            self.gate.probed.set()
            if not self.gate.resume.wait(WAIT):
                raise AssertionError("the test never resumed the read")
        else:
            data = self.inner.read(self.PIECE if size is None or size < 0 else min(size, self.PIECE))
        self.pos += len(data)
        return data

    def close(self) -> None:
        self.inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gated_fs(cluster, gate: _Gate):
    from hdfs_native.fsspec import HdfsFileSystem

    class GatedFS(HdfsFileSystem):
        cachable = False

        def _open(self, path, mode="rb", **kwargs):
            handle = super()._open(path, mode, **kwargs)
            if mode == "rb" and path.endswith(DATA):
                gate.opens += 1
                return _GatedReader(handle, gate)
            return handle

    host, port = cluster.url.split("://", 1)[1].split(":")
    return GatedFS(host=host, port=int(port), skip_instance_cache=True)


def _serving_datanode(cluster, before: dict[str, int], nbytes: int) -> str:
    """The DataNode whose BytesRead grew by at least ``nbytes`` since ``before`` (polled)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        now = _per_datanode(cluster)
        grown = [dn for dn, count in now.items() if count - before.get(dn, 0) >= nbytes]
        if grown:
            assert len(grown) == 1, (before, now)
            return grown[0]
        time.sleep(0.05)  # the DataNode counts an operation when it ends
    raise AssertionError(f"no DataNode reported reading {nbytes} bytes within {WAIT}s")


def test_datanode_serving_the_read_stops_mid_read_f9(minidfs, base, tmp_path, monkeypatch):
    """F9: the DataNode serving the current block stops mid-read; the client reads another replica."""
    monkeypatch.setenv("HADOOP_CONF_DIR", minidfs.conf_dir)
    src = write_fake_model(str(tmp_path / "src"), data_bytes=4 * MiB)
    publish(src, base, signatures=False)
    data_path = _path(minidfs, resolve(base).url) + "/" + DATA
    block1 = minidfs.block_locations(data_path)[1]
    assert len(block1["locations"]) == 3
    probe = 200_000  # far more than one 64 KiB piece, so a late count of an earlier read cannot pass for it
    gate = _Gate(at=MiB + 256 * 1024, probe=probe)  # inside block 1 of the data file
    cache = str(tmp_path / "cache")
    stopped = None
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(localize, base, cache_dir=cache, filesystem=_gated_fs(minidfs, gate), parallelism=1)
        try:
            assert gate.paused.wait(WAIT), "the download never reached block 1"
            before = _per_datanode(minidfs)
            gate.go.set()
            assert gate.probed.wait(WAIT)
            stopped = _serving_datanode(minidfs, before, probe)
            assert stopped in block1["locations"]
            minidfs.stop_datanode(stopped)
            gate.resume.set()
            model = future.result(timeout=WAIT * 2)
        finally:
            gate.release_all()
            if stopped is not None:
                minidfs.restart_datanode(stopped)
    assert _same_tree(model.path, src)  # bytes identical
    assert gate.opens == 1  # the client moved to another replica by itself: localize did not retry
    entries, leftovers = _cache_state(cache)
    assert entries == [os.path.basename(model.path)] and leftovers == []
    model.release()


# -- F10 / F11: corrupt replicas -----------------------------------------------------------------


def test_every_replica_but_one_corrupt_is_read_around_f10(minidfs, base, tmp_path):
    """F10: every block of the data file has all replicas corrupt but one; digests still match."""
    src = write_fake_model(str(tmp_path / "src"), data_bytes=3 * MiB)
    publish(src, base, signatures=False)
    data_path = _path(minidfs, resolve(base).url) + "/" + DATA
    blocks = minidfs.block_locations(data_path)
    assert len(blocks) == 3
    for index, block in enumerate(blocks):
        for address in block["locations"][:-1]:
            assert minidfs.corrupt_replica(data_path, index, address)["corrupted"] == [address]
    cache = str(tmp_path / "cache")
    with localize(base, cache_dir=cache) as model:  # the manifest's sha256 is checked per file
        assert _same_tree(model.path, src)
    entries, leftovers = _cache_state(cache)
    assert len(entries) == 1 and leftovers == []


def test_every_replica_corrupt_is_a_store_error_naming_the_url_f11(minidfs, base, tmp_path):
    """F11: every replica of one block corrupt: StoreError naming the URL; nothing committed or left."""
    src = write_fake_model(str(tmp_path / "src"), data_bytes=3 * MiB)
    publish(src, base, signatures=False)
    version_url = resolve(base).url
    hit = minidfs.corrupt_all_replicas(_path(minidfs, version_url) + "/" + DATA, block=1)
    assert len(hit["corrupted"]) == 3
    cache = str(tmp_path / "cache")
    with pytest.raises(StoreError, match="All DataNodes failed") as info:
        localize(base, cache_dir=cache, attempts=2, backoff=0.05)
    assert info.value.url == version_url and version_url in str(info.value)
    assert DATA in str(info.value)
    assert _cache_state(cache) == ([], [])


# -- H2: a version being copied the way `hdfs dfs -put` copies ----------------------------------


def _put_order(src: str) -> list[str]:
    """The files of ``src`` in the order `hdfs dfs -put` copies them (a sorted, depth-first walk)."""
    out = []
    for name in sorted(os.listdir(src)):
        full = os.path.join(src, name)
        out += [f"{name}/{rel}" for rel in _put_order(full)] if os.path.isdir(full) else [name]
    return out


def _model_with_asset(path: str, data_bytes: int) -> str:
    src = write_fake_model(path, data_bytes=data_bytes)
    with open(os.path.join(src, "assets", "vocab.txt"), "w") as fh:
        fh.write("a\nb\n" * 1000)
    return src


def test_version_being_put_step_by_step_is_never_latest_h2(minidfs, base, tmp_path):
    """H2: each file appears as ``<name>._COPYING_``, is written, then renamed, in -put's order."""
    src = _model_with_asset(str(tmp_path / "src"), 200_000)
    publish(src, base, signatures=False)
    fs = minidfs.fs()
    target = _path(minidfs, base) + "/2"
    order = _put_order(src)
    assert order == [
        "assets/vocab.txt",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    states = 0

    def assert_not_latest() -> None:
        nonlocal states
        states += 1
        assert resolve(base).version == 1
        with pytest.raises(IncompleteVersionError, match=r"/2: version 2 is incomplete"):
            resolve(base, 2)

    fs.makedirs(target, exist_ok=True)
    assert_not_latest()
    for rel in order:
        data = open(os.path.join(src, rel), "rb").read()
        copying = f"{target}/{rel}._COPYING_"
        fs.makedirs(copying.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(copying, "wb") as writer:  # still open: listed, under construction
            writer.write(data[: len(data) // 2])
            assert_not_latest()
            writer.write(data[len(data) // 2 :])
        assert_not_latest()
        fs.mv(copying, f"{target}/{rel}")
        if rel != order[-1]:
            assert_not_latest()
    assert states == 1 + 3 * len(order) - 1
    assert resolve(base).version == 2 and list_versions(base) == [1, 2]
    with localize(base, cache_dir=str(tmp_path / "cache")) as model:
        assert model.version == 2 and _same_tree(model.path, src)


def test_real_hdfs_put_is_never_latest_before_it_is_whole_h2(minidfs, base, tmp_path):
    """H2 with Hadoop's own FsShell ``-put``: whenever ``latest`` is 2, version 2 is whole."""
    from hdfs_models.testing import ensure_launcher

    src = _model_with_asset(str(tmp_path / "src"), 24 * MiB)
    publish(src, base, signatures=False)
    sizes = {rel: os.path.getsize(os.path.join(src, rel)) for rel in _put_order(src)}
    put = subprocess.Popen(
        [
            "java",
            "-Xmx256m",
            "-cp",
            os.pathsep.join([minidfs.conf_dir, ensure_launcher()]),
            "org.apache.hadoop.fs.FsShell",
            "-put",
            src,
            base + "/2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen_copying = latest_two = 0
    try:
        deadline = time.monotonic() + WAIT * 2
        while put.poll() is None:
            assert time.monotonic() < deadline, "hdfs dfs -put did not finish"
            pinned = resolve(base)
            listed = {f.path: f.size for f in pinned.files}
            if pinned.version == 2:
                latest_two += 1
                assert listed == sizes  # never latest while a file is missing, short or ._COPYING_
            elif minidfs.fs().exists(_path(minidfs, base) + "/2"):
                names = [p for p in minidfs.fs().find(_path(minidfs, base) + "/2")]
                seen_copying += any(p.endswith("._COPYING_") for p in names)
    finally:
        output = put.communicate(timeout=WAIT)[0]
    assert put.returncode == 0, output
    assert seen_copying > 0, "the observer never caught the put mid-copy"
    pinned = resolve(base)
    assert pinned.version == 2 and {f.path: f.size for f in pinned.files} == sizes


# -- H4: the version and its archives deleted after localization ---------------------------------


def _local_path_in_fresh_process(handle, results) -> None:
    results.put(handle.local_path())


def test_deleted_version_keeps_serving_pinned_jobs_from_the_cache_h4(minidfs, base, tmp_path):
    """H4: after localizing, the version and its archive vanish from HDFS; pinned jobs still run."""
    src = write_fake_model(str(tmp_path / "src"), data_bytes=1_000_000)
    publish(src, base, signatures=False)
    cache = str(tmp_path / "cache")
    handle = distribute(None, base, strategy="fetch", cache_dir=cache)  # pinned on the "driver"
    archive = ensure_archive(handle.pinned)
    with localize(base, cache_dir=cache) as first:
        path = first.path
    fs = minidfs.fs()
    fs.rm(_path(minidfs, handle.pinned.url), recursive=True)
    fs.rm(_path(minidfs, archive).rsplit("/", 1)[0], recursive=True)
    assert not fs.exists(_path(minidfs, archive))

    before = minidfs.bytes_read()
    ctx = multiprocessing.get_context("spawn")  # a new executor process, nothing in memory
    results = ctx.Queue()
    proc = ctx.Process(target=_local_path_in_fresh_process, args=(handle, results))
    proc.start()
    assert results.get(timeout=WAIT) == path
    proc.join(WAIT)
    assert proc.exitcode == 0
    with localize(base, cache_dir=cache, pinned=handle.pinned) as again:
        assert again.path == path and _same_tree(path, src)
    assert minidfs.bytes_read() == before  # served from the cache: no block read from HDFS

    with pytest.raises(ModelNotFoundError, match=base) as info:
        resolve(base)  # a new job cannot resolve: clear error naming the base
    assert info.value.url is not None and base in info.value.url
    with pytest.raises(ModelNotFoundError, match=base):
        localize(base, 1, cache_dir=cache)


# -- F13: a publisher killed mid-upload leaves BASE/_tmp-*; gc --store sweeps it, later --------


_KILLED_PUBLISHER = """
import os, sys, time
from hdfs_models import publish

def progress(done, total):
    if done and not os.path.exists(sys.argv[3]):
        open(sys.argv[3], "w").close()  # the upload has started: the test may kill us now
        time.sleep(600)

publish(sys.argv[1], sys.argv[2], signatures=False, progress=progress)
"""


def test_killed_publisher_temp_is_swept_only_when_stale_f13(minidfs, base, tmp_path):
    """F13: SIGKILL a publisher mid-upload; gc --store keeps its temp while young, removes it when old."""
    from hdfs_models import cli

    src = write_fake_model(str(tmp_path / "src"), data_bytes=3 * MiB)
    publish(src, base, signatures=False)
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PUBLISHER, src, base, str(started)], env=dict(os.environ, **minidfs.env())
    )
    try:
        deadline = time.monotonic() + WAIT
        while not started.exists():
            assert proc.poll() is None, "the publisher exited before uploading"
            assert time.monotonic() < deadline, "the publisher never started uploading"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(WAIT)
    fs = minidfs.fs()
    left = [p.rsplit("/", 1)[-1] for p in fs.ls(_path(minidfs, base), detail=False)]
    temps = [n for n in left if n.startswith("_tmp-")]
    assert len(temps) == 1 and sorted(set(left) - set(temps)) == ["1"]

    assert cli.main(["gc", "--store", base, "--older-than", "1h", "--json"]) == 0  # too young: kept
    assert fs.exists(_path(minidfs, base) + "/" + temps[0])
    # P7: a client clock two hours ahead changes nothing: ages count from the NameNode's clock
    ahead = sweep_store(base, 3600.0, clock=lambda: time.time() + 7200)
    assert [(t.url, t.removed) for t in ahead] == [(f"{base}/{temps[0]}", False)] and ahead[0].age < 600
    time.sleep(1.5)
    swept = sweep_store(base, 1.0)  # older than the bound by the NameNode's clock: removed
    assert [(t.url, t.removed) for t in swept] == [(f"{base}/{temps[0]}", True)]
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(_path(minidfs, base), detail=False)] == ["1"]
    assert resolve(base).version == 1


# -- odd models: many files, non-ASCII names ------------------------------------------------------


def test_utf8_names_and_many_assets_round_trip(minidfs, base, tmp_path):
    """Odd models: 500 small assets and non-ASCII UTF-8 names, published and localized intact.

    The 10,000-file case and names that are not valid UTF-8 run on a local store in
    tests/test_odd_names.py: here every small file costs NameNode round trips and a
    3-DataNode write pipeline, and HDFS cannot hold a name that is not Unicode at all.
    """
    src = write_fake_model(str(tmp_path / "src"), data_bytes=100_000)
    odd = ["größe.txt", "模型/词汇.txt", "emoji-😀.bin", "e\u0301-nfd.txt", "é-nfc.txt", "space name.txt"]
    for rel in odd:
        full = os.path.join(src, "assets", rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(rel.encode())
    many = os.path.join(src, "assets", "many")
    os.makedirs(many)
    for i in range(500):
        with open(os.path.join(many, f"{i:05d}.txt"), "w") as fh:
            fh.write(str(i))
    pinned = publish(src, base, signatures=False)
    assert len(pinned.files) == 3 + len(odd) + 500
    with localize(base, cache_dir=str(tmp_path / "cache")) as model:
        assert _same_tree(model.path, src)
        assert sorted(os.listdir(os.path.join(model.path, "assets"))) == sorted(
            ["größe.txt", "模型", "emoji-😀.bin", "e\u0301-nfd.txt", "é-nfc.txt", "space name.txt", "many"]
        )


# -- direct reads (issue 21): DataNodes stopped in the middle of reading row groups ---------------


def test_a_direct_read_survives_datanodes_stopped_mid_read(minidfs, tmp_path, monkeypatch):
    """After the first row group is read, every DataNode but one stops: the rest of the groups come
    from the last replica (the client's own failover, or read_groups' re-read of a group), identical."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hdfs_models.store._files import inspect_file, read_groups

    monkeypatch.setenv("HADOOP_CONF_DIR", minidfs.conf_dir)
    n = 8000
    values = np.random.default_rng(11).normal(size=(n, 128)).astype(np.float32)
    table = pa.table({"id": pa.array(np.arange(n)), "features": pa.array(list(values), type=pa.list_(pa.float32()))})
    local = str(tmp_path / "part-0.parquet")
    pq.write_table(table, local, row_group_size=n // 8, compression="none")  # 4 MiB: 8 groups over 4+ blocks
    path = f"/direct-dn/{uuid.uuid4().hex[:8]}/part-0.parquet"
    minidfs.fs().put(local, path)
    url = minidfs.url + path
    layout = inspect_file(url)
    assert len(layout.rows) == 8
    blocks = minidfs.block_locations(path)
    assert len(blocks) >= 4 and all(len(b["locations"]) == 3 for b in blocks)
    keep = blocks[-1]["locations"][-1]
    stopped: list[str] = []

    def on_read(group: int, rows: int, seconds: float) -> None:
        if group == 0 and not stopped:
            for address in sorted({loc for b in blocks for loc in b["locations"]} - {keep}):
                minidfs.stop_datanode(address)
                stopped.append(address)

    try:
        got = pa.Table.from_batches(list(read_groups(url, "parquet", range(8), ["id", "features"], on_read=on_read)))
    finally:
        for address in stopped:
            minidfs.restart_datanode(address)
    assert len(stopped) == 2  # two of the three replicas of every block were gone for groups 1-7
    assert got.equals(table)
