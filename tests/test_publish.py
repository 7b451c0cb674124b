"""Atomic publish: manifest, retry on a taken version, cleanup, concurrency."""

import hashlib
import json
import logging
import multiprocessing
import os
import threading
import uuid

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import hdfs_models._publish as publish_mod
import hdfs_models._signatures as signatures_mod
from hdfs_models import list_versions, publish, resolve
from hdfs_models._manifest import MANIFEST_NAME, Manifest
from hdfs_models.errors import InvalidModelError, PublishError, StoreError, StorePermissionError, UnsafeNameError
from hdfs_models.testing import tree_digest, write_fake_model
from hdfs_models.testing.pytest_plugin import require_module


@pytest.fixture
def model(tmp_path):
    return write_fake_model(str(tmp_path / "export"), shards=2, data_bytes=6_000)


def test_publish_writes_next_version_with_manifest(model, tmp_path):
    base = str(tmp_path / "store" / "mnist")
    first = publish(model, base, signatures=False)
    second = publish(model, base, signatures=False)
    assert (first.version, second.version) == (1, 2)
    assert list_versions(base) == [1, 2]
    assert sorted(os.listdir(base)) == ["1", "2"]  # no _tmp-* left
    copied = tree_digest(os.path.join(base, "1"))
    manifest_sha = copied.pop(MANIFEST_NAME)
    assert copied == tree_digest(model)  # same bytes, empty assets/ recreated
    manifest = Manifest.from_json(open(os.path.join(base, "1", MANIFEST_NAME), "rb").read(), base)
    assert manifest_sha == hashlib.sha256(manifest.to_json()).hexdigest()
    assert (manifest.name, manifest.version, manifest.empty_dirs) == ("mnist", 1, ("assets",))
    assert {f.path: f.sha256 for f in manifest.files} == {k: v for k, v in tree_digest(model).items() if v != "<dir>"}
    assert first.digest == manifest.digest and first.manifest == manifest
    assert resolve(base).version == 2


def test_publish_to_memory_and_pyarrow_stores(model, tmp_path):
    pafs = require_module("pyarrow.fs", "arrow")
    url = f"memory://publish-{uuid.uuid4().hex}/m"
    assert publish(model, url, name="digits", signatures=False).name == "digits"
    assert publish(model, url, signatures=False).version == 2
    assert list_versions(url) == [1, 2]
    assert not [p for p in fsspec.filesystem("memory").ls(url.split("://")[1], detail=False) if "_tmp-" in p]
    arrow_base = str(tmp_path / "arrow")
    pinned = publish(model, arrow_base, filesystem=pafs.LocalFileSystem(), signatures=False)
    assert pinned.version == 1 and sorted(os.listdir(arrow_base)) == ["1"]
    assert resolve(arrow_base, filesystem=pafs.LocalFileSystem()).digest == pinned.digest


def test_progress_reports_bytes_until_total(model, tmp_path):
    calls = []
    pinned = publish(
        model, str(tmp_path / "b"), progress=lambda done, total: calls.append((done, total)), signatures=False
    )
    assert calls[-1] == (pinned.total_bytes, pinned.total_bytes)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: os.remove(os.path.join(d, "saved_model.pb")), "missing saved_model.pb"),  # B3
        (lambda d: os.remove(os.path.join(d, "variables", "variables.index")), "missing variables/variables.index"),
        (
            lambda d: os.remove(os.path.join(d, "variables", "variables.data-00001-of-00002")),
            "variables.data-00001-of-00002",
        ),
        (lambda d: open(os.path.join(d, "saved_model.pb"), "wb").close(), "saved_model.pb is empty"),  # B4
        (lambda d: open(os.path.join(d, "saved_model.pb"), "ab").write(b"\x12\x40"), "truncated or corrupt"),  # B4
    ],
)
def test_incomplete_local_model_is_refused_before_upload(model, tmp_path, damage, match):
    damage(model)
    base = tmp_path / "store"
    with pytest.raises(InvalidModelError, match=match) as info:
        publish(model, str(base), signatures=False)
    assert model in str(info.value)
    assert not base.exists()


def test_unsafe_name_or_base_refused_before_upload(model, tmp_path):
    with pytest.raises(UnsafeNameError, match="model name"):
        publish(model, str(tmp_path / "b"), name="../x", signatures=False)
    with pytest.raises(UnsafeNameError, match="model URL"):
        publish(model, str(tmp_path / "b" / ".." / "c"), signatures=False)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_taken_version_is_never_overwritten(model, tmp_path, monkeypatch):
    base = str(tmp_path / "m")
    existing = publish(model, base, signatures=False)
    # A concurrent publisher that listed before ours committed picks the same number.
    monkeypatch.setattr(publish_mod, "_next_version", lambda fs, path, url: 1)
    second = publish(model, base, signatures=False)
    assert second.version == 2
    assert resolve(base, 1).digest == existing.digest
    assert json.loads(open(os.path.join(base, "2", MANIFEST_NAME)).read())["version"] == 2
    assert sorted(os.listdir(base)) == ["1", "2"]


class _FailingWrites(MemoryFileSystem):
    """Memory store whose file writes fail from the ``fail_from``-th on, ``fail_times`` times."""

    protocol = "failmem"

    def __init__(self, fail_from, fail_times, **kwargs):
        super().__init__(**kwargs)
        self.fail_from, self.fail_times, self.writes = fail_from, fail_times, 0

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode and not path.endswith(MANIFEST_NAME):
            self.writes += 1
            if self.writes >= self.fail_from and self.fail_times > 0:
                self.fail_times -= 1
                raise ConnectionResetError("datanode went away")
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def sleeps(monkeypatch):
    slept = []
    monkeypatch.setattr(publish_mod, "_sleep", slept.append)
    return slept


def test_transient_upload_failure_is_retried(model, sleeps):
    fs = _FailingWrites(3, 1, skip_instance_cache=True)
    base = f"/retry-{uuid.uuid4().hex}"
    pinned = publish(model, f"memory://{base}", filesystem=fs, signatures=False)
    assert pinned.version == 1 and sleeps == [0.5]
    assert {f.path: f.sha256 for f in pinned.files} == {k: v for k, v in tree_digest(model).items() if v != "<dir>"}
    assert fs.ls(base, detail=False) == [f"{base}/1"]


def test_persistent_upload_failure_gives_up_and_removes_temp_dir(model, sleeps):
    fs = _FailingWrites(3, 99, skip_instance_cache=True)
    base = f"/fail-{uuid.uuid4().hex}"
    with pytest.raises(
        StoreError, match=r"uploading variables.data-00001-of-00002: datanode went away \(gave up after 8"
    ) as info:
        publish(model, f"memory://{base}", filesystem=fs, signatures=False)
    # the waits ride out a 30 s NameNode failover (RELIABILITY P3), then it gives up
    assert info.value.attempts == 8 and sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert fs.ls(base, detail=False) == []


def test_rename_failure_without_a_clash_is_reported(model, tmp_path, monkeypatch):
    def broken(fs, src, dst):
        raise OSError(5, "I/O error on rename")

    monkeypatch.setattr(publish_mod, "store_rename_noreplace", broken)
    with pytest.raises(StoreError, match="renaming into version 1: .*I/O error on rename"):
        publish(model, str(tmp_path / "m"), signatures=False)
    assert os.listdir(tmp_path / "m") == []


def test_clash_that_never_ends_gives_publish_error(model, tmp_path, monkeypatch):
    monkeypatch.setattr(publish_mod, "_MAX_ATTEMPTS", 3)
    monkeypatch.setattr(publish_mod, "store_rename_noreplace", _always_taken)
    with pytest.raises(PublishError, match="no free version number after 3 tries"):
        publish(model, str(tmp_path / "m"), signatures=False)
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2", "3"]  # temp dir removed


def _always_taken(fs, src, dst):
    os.makedirs(os.path.join(dst, "x"))
    raise FileExistsError(dst)


def test_concurrent_thread_publishers_get_distinct_versions(model, tmp_path):
    base = str(tmp_path / "m")
    results, errors = [], []

    def one():
        try:
            results.append(publish(model, base, signatures=False).version)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    assert list_versions(base) == [1, 2, 3, 4, 5, 6]
    assert all(resolve(base, v).manifest.version == v for v in results)


def _publish_in_child(model, base, queue):
    queue.put(publish(model, base, signatures=False).version)


def test_concurrent_process_publishers_get_distinct_versions(model, tmp_path):
    base = str(tmp_path / "m")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_publish_in_child, args=(model, base, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    got = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert got == [1, 2, 3, 4] and [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert [n for n in os.listdir(base) if n.startswith("_tmp-")] == []


def test_missing_signature_reader_publishes_without_signatures(model, tmp_path, monkeypatch, caplog):
    def read_signatures(local_dir):
        raise ImportError("reading signatures needs TensorFlow: pip install 'hdfs-models[tf]'")

    monkeypatch.setattr(signatures_mod, "read_signatures", read_signatures)
    with caplog.at_level(logging.INFO, logger="hdfs_models._signatures"):
        pinned = publish(model, str(tmp_path / "m"))
    assert pinned.signatures == {}
    assert "without signatures" in caplog.text


def test_unreadable_signatures_refuse_the_model(model, tmp_path, monkeypatch):
    def read_signatures(local_dir):
        raise RuntimeError("Op type not registered 'MyCustomOp'")

    monkeypatch.setattr(signatures_mod, "read_signatures", read_signatures)
    with pytest.raises(InvalidModelError, match="could not read the SavedModel's signatures: Op type not registered"):
        publish(model, str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_real_savedmodel_signatures_end_to_end(tmp_path):
    """One real tf.Module: signatures land in the manifest; half a saved_model.pb is refused (B4)."""
    tf = require_module("tensorflow", "tf")

    class Dense(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([4, 3]))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"probs": tf.nn.softmax(tf.matmul(x, self.w))}

    export = str(tmp_path / "dense")
    tf.saved_model.save(Dense(), export)
    pinned = publish(export, str(tmp_path / "store" / "dense"))
    sig = pinned.signatures["serving_default"]
    assert sig["inputs"]["x"] == {"dtype": "float32", "shape": [-1, 4]}
    assert sig["outputs"]["probs"] == {"dtype": "float32", "shape": [-1, 3]}
    assert resolve(str(tmp_path / "store" / "dense")).signatures == pinned.signatures
    pb = os.path.join(export, "saved_model.pb")
    data = open(pb, "rb").read()
    open(pb, "wb").write(data[: len(data) // 2])
    with pytest.raises(InvalidModelError, match="saved_model.pb is truncated or corrupt"):
        publish(export, str(tmp_path / "store" / "dense"), signatures=False)


class _DeniedWrites(MemoryFileSystem):
    protocol = "deniedmem"

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode:
            raise PermissionError(f"Permission denied: {path}")
        return super()._open(path, mode, **kwargs)


def test_permission_denied_is_not_retried(model, sleeps):
    fs = _DeniedWrites(skip_instance_cache=True)
    base = f"/denied-{uuid.uuid4().hex}"
    with pytest.raises(StorePermissionError, match="permission denied"):
        publish(model, f"memory://{base}", filesystem=fs, signatures=False)
    assert sleeps == [] and fs.ls(base, detail=False) == []


class _RecordingStore(MemoryFileSystem):
    protocol = "recmem"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.events = []

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode:
            self.events.append(("write", path))
        return super()._open(path, mode, **kwargs)

    def mv(self, path1, path2, **kwargs):
        self.events.append(("rename", path1, path2))
        return super().mv(path1, path2, **kwargs)


def test_files_go_to_a_temp_dir_manifest_last_then_one_rename(model):
    fs = _RecordingStore(skip_instance_cache=True)
    base = f"/order-{uuid.uuid4().hex}"
    publish(model, f"memory://{base}", filesystem=fs, signatures=False)
    writes = [e[1] for e in fs.events if e[0] == "write"]
    renames = [e for e in fs.events if e[0] == "rename"]
    tmp = writes[0].split("/")[2]
    assert tmp.startswith("_tmp-") and all(w.startswith(f"{base}/{tmp}/") for w in writes)
    assert writes[-1] == f"{base}/{tmp}/{MANIFEST_NAME}" and len(writes) == 5
    assert renames == [("rename", f"{base}/{tmp}", f"{base}/1")]
    assert fs.events[-1] == renames[0]


def test_incomplete_model_is_refused_before_tensorflow_is_touched(model, tmp_path, monkeypatch):  # B3
    def read_signatures(local_dir):
        raise AssertionError("TensorFlow was touched")

    monkeypatch.setattr(signatures_mod, "read_signatures", read_signatures)
    os.remove(os.path.join(model, "variables", "variables.index"))
    with pytest.raises(InvalidModelError, match="missing variables/variables.index"):
        publish(model, str(tmp_path / "m"))
