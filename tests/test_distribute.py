"""distribute(): fetch / archive / files / submitted handles on a local[2] Spark.

The model is a fake SavedModel tree (no TensorFlow); what is checked is that
every Python worker gets a complete, verified copy of the pinned version.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
from test_archive_helpers import make_model, tar_with

from hdfs_models import _distribute
from hdfs_models._distribute import (
    ARCHIVE_STATS,
    ModelHandle,
    alias_for,
    archive_name,
    archive_url,
    distribute,
    spark_uri,
)
from hdfs_models.archive import pack
from hdfs_models.cache import cache_stats
from hdfs_models.errors import DistributionError, ModelNotFoundError
from hdfs_models.testing import tree_digest


@pytest.fixture(scope="module", autouse=True)
def _pickle_test_code_by_value():
    """Workers cannot import test modules: ship their functions by value."""
    try:
        from pyspark import cloudpickle
    except ImportError:
        yield
        return
    import test_archive_helpers

    modules = [sys.modules[__name__], test_archive_helpers]
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    yield
    for module in modules:
        cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(autouse=True)
def _reset():
    _distribute.reset_verified()
    before = dict(ARCHIVE_STATS)
    yield
    _distribute.reset_verified()
    ARCHIVE_STATS.update(before)


@pytest.fixture
def base(tmp_path):
    root = tmp_path / "models" / "mnist"
    make_model(root / "3", name="mnist", version=3)
    return str(root)


def on_workers(spark, handle, parts=4):
    """Run handle.local_path() in ``parts`` tasks; return [(version, digest, tree)]."""

    def task(_):
        path = handle.local_path()
        yield (handle.version, handle.digest, sorted(tree_digest(path).items()), os.getpid())

    return spark.sparkContext.parallelize(range(parts), parts).mapPartitions(task).collect()


def test_pure_names():
    assert archive_name(3, "ab" * 32) == "3-abababababababab.tar"
    d = "ef" * 32
    assert archive_url("hdfs://nn/m", "hdfs://nn/m/3", "m", 3, d) == "hdfs://nn/m/_archives/3-efefefefefefefef.tar"
    # a version dir that is the SavedModel itself: stored beside it, never inside
    assert archive_url("/data/cnn", "/data/cnn", "cnn", 0, d) == "/data/_archives/cnn-0-efefefefefefefef.tar"
    assert alias_for("my model/x", 3, "cd" * 32) == "my_model_x-v3-cdcdcdcdcdcdcdcd"
    assert spark_uri("hdfs://nn:8020/m") == "hdfs://nn:8020/m"
    assert spark_uri("/tmp/x") == "file:///tmp/x"


def test_fetch_handle_is_small_picklable_and_pinned(tmp_path, base):
    handle = distribute(None, base, cache_dir=str(tmp_path / "cache"))
    assert (handle.strategy, handle.version) == ("fetch", 3)
    data = pickle.dumps(handle)
    assert len(data) < 4096 and b"LocalFileSystem" not in data
    make_model(os.path.join(base, "4"), name="mnist", version=4)  # published after pinning
    back = pickle.loads(data)
    before = cache_stats()
    path = back.local_path()
    first = cache_stats()
    assert back.local_path() == path and cache_stats() == first  # once per process: no second localize
    assert (first.misses - before.misses, first.hits - before.hits) == (1, 0)
    assert path.startswith(str(tmp_path / "cache"))
    assert tree_digest(path) == tree_digest(os.path.join(base, "3"))
    assert back.digest == handle.digest and back.version == 3


def test_fetch_on_workers(spark, tmp_path, base):
    handle = distribute(spark, base, cache_dir=str(tmp_path / "cache"))
    rows = on_workers(spark, handle)
    expected = sorted(tree_digest(os.path.join(base, "3")).items())
    assert {(v, d) for v, d, _, _ in rows} == {(3, handle.digest)}
    assert all(t == expected for _, _, t, _ in rows)


def test_archive_is_built_once_and_reused(spark, base):
    first = distribute(spark, base, strategy="archive")
    second = distribute(spark, base, strategy="archive")
    assert (ARCHIVE_STATS["built"], ARCHIVE_STATS["reused"]) == (1, 1)
    stored = os.path.join(base, "_archives", archive_name(3, first.digest))
    assert os.listdir(os.path.dirname(stored)) == [os.path.basename(stored)]  # no temp left
    local = pack(os.path.join(base, "3"), os.path.join(os.path.dirname(base), "again.tar"))
    assert open(stored, "rb").read() == open(local, "rb").read()  # deterministic
    assert first.alias == second.alias == f"mnist-v3-{first.digest[:16]}"
    rows = on_workers(spark, first)
    expected = sorted(tree_digest(os.path.join(base, "3")).items())
    assert all(t == expected and v == 3 for v, _, t, _ in rows)


def test_files_strategy_recreates_empty_dirs(spark, base):
    handle = distribute(spark, base, version=3, strategy="files")
    rows = on_workers(spark, handle, parts=2)
    for version, _, items, _ in rows:
        assert version == 3
        assert dict(items)["assets"] == "<dir>"  # the empty dir exists
        assert dict(items)["saved_model.pb"] == tree_digest(os.path.join(base, "3"))["saved_model.pb"]


def test_submitted_alias_found_and_verified(spark, tmp_path, base):
    archive = pack(os.path.join(base, "3"), tmp_path / "model.tar.gz", "tar.gz")
    spark.sparkContext.addArchive(spark_uri(archive) + "#submitted_ok")
    handle = ModelHandle.submitted("submitted_ok", version=3)
    rows = on_workers(spark, handle, parts=2)
    assert {v for v, _, _, _ in rows} == {3}
    assert handle.version == 3  # the driver sees it too (Spark unpacks there as well)
    wrong = ModelHandle.submitted("submitted_ok", version=9)
    with pytest.raises(DistributionError, match="is version 3, not the expected 9"):
        wrong.local_path()


def test_alias_never_shipped_says_how_to_ship(spark):
    handle = ModelHandle.submitted("never_shipped")
    with pytest.raises(
        ModelNotFoundError, match=r"'never_shipped' was not shipped.*spark-submit --archives model.tar.gz#never_shipped"
    ):
        handle.local_path()

    def task(_):
        try:
            handle.local_path()
        except ModelNotFoundError as exc:
            yield (type(exc).__name__, exc.alias, "spark-submit --archives" in str(exc))

    assert spark.sparkContext.parallelize([0], 1).mapPartitions(task).collect() == [
        ("ModelNotFoundError", "never_shipped", True)
    ]


def test_shipped_archive_without_manifest(spark, tmp_path):
    archive = tar_with(tmp_path / "plain.tar", [({"name": "saved_model.pb"}, b"pb")])
    spark.sparkContext.addArchive(spark_uri(archive) + "#plain_no_manifest")
    with pytest.raises(DistributionError, match=r"has no MANIFEST.json.*hdfs-models pack"):
        ModelHandle.submitted("plain_no_manifest").local_path()


def test_handle_used_outside_spark(tmp_path, base):
    handle = pickle.dumps(ModelHandle.submitted("model"))
    code = (
        "import pickle, sys\n"
        "from hdfs_models.errors import DistributionError\n"
        f"h = pickle.loads({handle!r})\n"
        "try:\n    h.local_path()\nexcept DistributionError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("ERR model 'model' (strategy 'submitted') is looked up outside Spark"), out.stderr
    assert "strategy='fetch'" in out.stdout


def test_unknown_strategy(base):
    with pytest.raises(ValueError, match=r"unknown strategy 'submitted'.*ModelHandle.submitted"):
        distribute(None, base, strategy="submitted")
    with pytest.raises(ValueError, match="unknown strategy 'rsync'"):
        distribute(None, base, strategy="rsync")


def test_shipped_copy_that_differs_from_its_manifest(spark, tmp_path, base):
    from hdfs_models._manifest import MANIFEST_NAME
    from hdfs_models.errors import IntegrityError

    src = os.path.join(base, "3")
    members = [({"name": MANIFEST_NAME}, open(os.path.join(src, MANIFEST_NAME), "rb").read())]
    for name in (
        "saved_model.pb",
        "fingerprint.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    ):
        data = open(os.path.join(src, name), "rb").read()
        members.append(({"name": name}, data[::-1] if name == "saved_model.pb" else data))
    archive = tar_with(tmp_path / "tampered.tar", members)
    spark.sparkContext.addArchive(spark_uri(archive) + "#tampered")
    with pytest.raises(IntegrityError, match=r"tampered: saved_model.pb has size \d+ sha256"):
        ModelHandle.submitted("tampered").local_path()


def test_shipped_copy_of_another_version_is_refused(spark, tmp_path, base):
    from hdfs_models._versions import resolve

    make_model(os.path.join(base, "4"), name="mnist", version=4)
    archive = pack(os.path.join(base, "4"), tmp_path / "v4.tar")
    spark.sparkContext.addArchive(spark_uri(archive) + "#holds_v4")
    pinned3 = resolve(base, 3)
    handle = ModelHandle("archive", url=pinned3.url, alias="holds_v4", pinned=pinned3)
    with pytest.raises(DistributionError, match=r"holds manifest [0-9a-f]{16}, but the job pinned .*/3 at"):
        handle.local_path()


def test_files_strategy_for_a_version_without_manifest(spark, tmp_path):
    root = tmp_path / "plain" / "legacy"
    make_model(root / "5", manifest=False)
    (root / "5" / "_SUCCESS").write_bytes(b"")
    handle = distribute(spark, str(root), strategy="files")
    assert handle.version == 5 and handle.pinned.manifest is None
    rows = on_workers(spark, handle, parts=2)
    assert all(dict(items)["assets"] == "<dir>" and v == 5 for v, _, items, _ in rows)
