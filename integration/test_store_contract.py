"""The loader contract, written once and run on four stores.

One parametrised ``store`` fixture: the local filesystem, fsspec's memory
store, WebHDFS and hdfs-native (the last two on the real MiniDFSCluster of the
``minidfs`` fixture; permissions are on, so each test writes under a fresh
``/tmp/<uuid>`` dir, /tmp being 1777). Every test goes through the public
API only: publish → list_versions → resolve → localize, comparing digests.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
import pytest

from hdfs_models import cli, list_versions, localize, publish, resolve
from hdfs_models.errors import IncompleteVersionError, InvalidModelError, ModelNotFoundError, StorePermissionError
from hdfs_models.store._open import clear_store_cache
from hdfs_models.testing.pytest_plugin import require_module, require_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.compat]  # both CI legs: MiniDFS 3.4.x and 3.3.6

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
from hdfs_models.testing import tree_digest, write_fake_model  # noqa: E402

WEBHDFS_USER = "modeler"


@dataclass
class Store:
    """One store under test: URLs for the API, and a raw fsspec client for setup."""

    kind: str
    base: str  # URL of a fresh, empty-to-be base dir
    raw: Any  # fsspec filesystem writing to the same place
    raw_base: str  # ``base`` as a path for ``raw``
    options: dict[str, Any]

    def url(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def path(self, *parts: str) -> str:
        return "/".join([self.raw_base, *parts])


@pytest.fixture(params=["local", "memory", "webhdfs", "hdfs"])
def store(request, tmp_path):
    clear_store_cache()
    unique = uuid.uuid4().hex
    if request.param == "local":
        root = str(tmp_path / "store")
        yield Store("local", f"{root}/mnist", fsspec.filesystem("file"), f"{root}/mnist", {})
        return
    if request.param == "memory":
        raw = fsspec.filesystem("memory")
        yield Store("memory", f"memory://{unique}/mnist", raw, f"/{unique}/mnist", {})
        if raw.exists(f"/{unique}"):
            raw.rm(f"/{unique}", recursive=True)
        return
    dfs = request.getfixturevalue("minidfs")
    path = f"/tmp/{unique}/mnist"
    if request.param == "webhdfs":
        raw = dfs.webhdfs_fs(user=WEBHDFS_USER)
        yield Store("webhdfs", dfs.webhdfs_url + path, raw, path, {"user": WEBHDFS_USER})
    else:
        raw = dfs.fs()
        yield Store("hdfs", dfs.url + path, raw, path, {})
    if raw.exists(f"/tmp/{unique}"):
        raw.rm(f"/tmp/{unique}", recursive=True)
    clear_store_cache()


def _put_plain(store: Store, local: str, version: int) -> None:
    """Upload like ``hdfs dfs -put`` would: a recursive copy, no manifest, no marker."""
    target = store.path(str(version))
    for dirpath, _dirs, files in os.walk(local):
        rel = os.path.relpath(dirpath, local)
        remote_dir = target if rel == "." else f"{target}/{rel}"
        store.raw.makedirs(remote_dir, exist_ok=True)
        for name in files:
            store.raw.put_file(os.path.join(dirpath, name), f"{remote_dir}/{name}")


def test_publish_list_resolve_localize(store, tmp_path):
    src = write_fake_model(str(tmp_path / "export"), shards=2, data_bytes=400_000)
    first = publish(src, store.base, storage_options=store.options, signatures=False)
    second = publish(src, store.base, storage_options=store.options, signatures=False)
    assert (first.version, second.version) == (1, 2)
    assert list_versions(store.base, storage_options=store.options) == [1, 2]
    pinned = resolve(store.base, storage_options=store.options)
    assert pinned.version == 2 and pinned.digest == second.digest and pinned.manifest is not None
    assert resolve(store.url("1"), storage_options=store.options).digest == first.digest
    assert not [p for p in store.raw.ls(store.raw_base, detail=False) if "_tmp-" in p]
    local = localize(store.base, cache_dir=str(tmp_path / "cache"), storage_options=store.options)
    assert (local.version, local.digest) == (2, pinned.digest)
    tree = tree_digest(local.path)
    tree.pop("MANIFEST.json", None)
    assert tree == tree_digest(src)  # same bytes, empty assets/ recreated


def test_plain_put_without_manifest_localizes(store, tmp_path):
    src = write_fake_model(str(tmp_path / "export"), shards=3, data_bytes=150_000)
    _put_plain(store, src, 7)
    pinned = resolve(store.base, storage_options=store.options)
    assert pinned.version == 7 and pinned.manifest is None
    assert sorted(f.path for f in pinned.files) == sorted(p for p, v in tree_digest(src).items() if v != "<dir>")
    assert resolve(store.base, 7, storage_options=store.options).digest == pinned.digest  # stable fingerprint
    local = localize(store.base, 7, cache_dir=str(tmp_path / "cache"), storage_options=store.options)
    assert local.digest == pinned.digest
    files = {k: v for k, v in tree_digest(local.path).items() if v != "<dir>"}
    assert files == {k: v for k, v in tree_digest(src).items() if v != "<dir>"}


def test_latest_skips_incomplete_and_ignores_other_names(store, tmp_path):  # H2, H5
    src = write_fake_model(str(tmp_path / "export"))
    publish(src, store.base, storage_options=store.options, signatures=False)
    store.raw.makedirs(store.path("2", "variables"), exist_ok=True)
    store.raw.pipe_file(store.path("2", "saved_model.pb"), b"\x08\x01\x12\x00")  # being written
    store.raw.makedirs(store.path("_tmp-deadbeef"), exist_ok=True)
    store.raw.pipe_file(store.path("_logs"), b"x")
    assert list_versions(store.base, storage_options=store.options) == [1]
    assert list_versions(store.base, storage_options=store.options, complete_only=False) == [1, 2]
    assert resolve(store.base, storage_options=store.options).version == 1
    with pytest.raises(IncompleteVersionError, match="version 2 is incomplete"):
        resolve(store.base, 2, storage_options=store.options)
    assert publish(src, store.base, storage_options=store.options, signatures=False).version == 3


def test_missing_and_file_urls(store, tmp_path):  # B1, B2
    with pytest.raises(ModelNotFoundError, match="not found") as info:
        resolve(store.url("nope"), storage_options=store.options)
    assert info.value.url == store.url("nope")
    store.raw.makedirs(store.raw_base, exist_ok=True)
    store.raw.pipe_file(store.path("model.tar"), b"not a dir")
    with pytest.raises(InvalidModelError, match="is a file, not a directory"):
        resolve(store.url("model.tar"), storage_options=store.options)


def test_concurrent_publishers_never_share_a_version(store, tmp_path):
    if store.kind == "memory":
        pytest.skip("the memory store has no atomic rename: publish there is check-then-move")
    src = write_fake_model(str(tmp_path / "export"))
    publish(src, store.base, storage_options=store.options, signatures=False)
    got, errors = [], []

    def one():
        try:
            got.append(publish(src, store.base, storage_options=store.options, signatures=False).version)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and sorted(got) == [2, 3, 4, 5]
    for v in got:
        assert resolve(store.base, v, storage_options=store.options).manifest.version == v


def _versions_in_child(base, options, queue):
    queue.put(list_versions(base, storage_options=options))


def test_client_made_before_fork_is_not_reused_after(store, tmp_path):  # F8
    import multiprocessing

    src = write_fake_model(str(tmp_path / "export"))
    publish(src, store.base, storage_options=store.options, signatures=False)
    assert list_versions(store.base, storage_options=store.options) == [1]  # parent's client now cached
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_versions_in_child, args=(store.base, store.options, queue)) for _ in range(2)]
    for child in children:
        child.start()
    got = [queue.get(timeout=60) for _ in children]  # a hang here is the F8 failure
    for child in children:
        child.join(30)
    assert got == [[1], [1]] and [c.exitcode for c in children] == [0, 0]
    assert list_versions(store.base, storage_options=store.options) == [1]  # the parent's client still works


def test_permission_denied_says_permission(store, request):  # F12
    if store.kind not in ("hdfs", "webhdfs"):
        pytest.skip("permissions are only enforced on HDFS here (tests run as root)")
    dfs = request.getfixturevalue("minidfs")
    private = f"/tmp/{uuid.uuid4().hex}-private"
    admin = dfs.fs()
    admin.makedirs(f"{private}/m/1", exist_ok=True)
    admin.client.set_permission(private, 0o700)
    url = (dfs.webhdfs_url if store.kind == "webhdfs" else dfs.url) + f"{private}/m"
    options = {"user": "mallory"} if store.kind == "webhdfs" else {}
    try:
        if store.kind == "hdfs":
            _assert_denied_as_other_user(dfs.url + f"{private}/m", dfs.conf_dir)
        else:
            with pytest.raises(StorePermissionError, match="permission denied"):
                resolve(url, storage_options=options)
    finally:
        admin.rm(private, recursive=True)


def _assert_denied_as_other_user(url: str, conf_dir: str) -> None:
    """hdfs-native reads HADOOP_USER_NAME when it connects: run the check in a fresh process."""
    import subprocess

    code = (
        "import sys\nfrom hdfs_models import resolve\nfrom hdfs_models.errors import StorePermissionError\n"
        f"try:\n    resolve({url!r})\nexcept StorePermissionError as e:\n    print('DENIED', e)\n"
    )
    env = dict(os.environ, HADOOP_USER_NAME="mallory", HADOOP_CONF_DIR=conf_dir)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("DENIED") and "permission denied" in out.stdout, out.stdout + out.stderr[-2000:]


@pytest.fixture(scope="module")
def real_model(tmp_path_factory):
    """A tiny real SavedModel and its predictions on a fixed batch."""
    tf = require_module("tensorflow", "tf")

    class Dense(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float32) / 7.0, [4, 3]))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"probs": tf.nn.softmax(tf.matmul(x, self.w))}

    export = str(tmp_path_factory.mktemp("real") / "dense")
    tf.saved_model.save(Dense(), export)
    batch = tf.reshape(tf.range(20, dtype=tf.float32) / 3.0, [5, 4])
    expected = tf.saved_model.load(export).signatures["serving_default"](x=batch)["probs"].numpy()
    return export, batch, expected


def test_cli_publish_and_plain_put_predict_like_the_original(store, tmp_path, real_model):
    tf = require_module("tensorflow", "tf")
    export, batch, expected = real_model
    opts = [arg for k, v in store.options.items() for arg in ("-o", f"{k}={v}")]
    assert cli.main(["publish", export, store.base, *opts, "--json"]) == 0
    _put_plain(store, export, 2)
    for version in (1, 2):
        local = localize(store.base, version, cache_dir=str(tmp_path / "cache"), storage_options=store.options)
        got = tf.saved_model.load(local.path).signatures["serving_default"](x=batch)["probs"].numpy()
        assert (got == expected).all(), (store.kind, version)
    pinned = resolve(store.base, 1, storage_options=store.options)
    assert pinned.signatures["serving_default"]["inputs"]["x"] == {"dtype": "float32", "shape": [-1, 4]}
    shutil.rmtree(tmp_path / "cache")


def test_viewfs_mount_reaches_the_same_versions(minidfs, tmp_path):
    """viewfs:// through hdfs-native with a mount table given as storage options."""
    unique = uuid.uuid4().hex
    mounts = {  # hdfs-native wants a fallback mount as well
        "fs.viewfs.mounttable.lake.link./models": f"{minidfs.url}/tmp/{unique}",
        "fs.viewfs.mounttable.lake.linkFallback": f"{minidfs.url}/",
    }
    src = write_fake_model(str(tmp_path / "export"))
    try:
        pinned = publish(src, "viewfs://lake/models/mnist", storage_options=mounts, signatures=False)
        assert pinned.url == "viewfs://lake/models/mnist/1"
        direct = resolve(f"{minidfs.url}/tmp/{unique}/mnist")
        assert (direct.version, direct.digest) == (1, pinned.digest)
        assert list_versions("viewfs://lake/models/mnist", storage_options=mounts) == [1]
    finally:
        minidfs.fs().rm(f"/tmp/{unique}", recursive=True)


def test_ha_nameservice_from_hadoop_conf_dir_survives_failover(tmp_path, monkeypatch):
    """hdfs://<nameservice> resolved through HADOOP_CONF_DIR; the cached client follows a failover."""
    from hdfs_models.testing import MiniDFS
    from hdfs_models.testing.minidfs import missing_tools

    if missing_tools():
        require_or_skip(missing_tools())
    src = write_fake_model(str(tmp_path / "export"), data_bytes=100_000)
    with MiniDFS(ha=True, datanodes=2) as cluster:
        monkeypatch.setenv("HADOOP_CONF_DIR", cluster.conf_dir)
        clear_store_cache()
        base = f"{cluster.url}/tmp/{uuid.uuid4().hex}/mnist"
        first = publish(src, base, signatures=False)
        assert cluster.failover()["active"] == "nn2"
        second = publish(src, base, signatures=False)
        assert (first.version, second.version) == (1, 2)
        assert resolve(base).digest == second.digest
        local = localize(base, 1, cache_dir=str(tmp_path / "cache"))
        assert local.digest == first.digest
    clear_store_cache()
