"""The node cache against a real MiniDFSCluster (hdfs-native and WebHDFS clients).

C1 counts the bytes the DataNodes actually served; the acceptance case loads
localized models with TensorFlow and compares predictions bit for bit.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import uuid

import pytest

from hdfs_models import localize, resolve
from hdfs_models._publish import publish
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = pytest.mark.integration

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
from hdfs_models.testing import tree_digest, write_fake_model  # noqa: E402

DATA = "variables/variables.data-00000-of-00001"


def _worker(url, cache, barrier, results):
    barrier.wait()
    model = localize(url, cache_dir=cache)
    results.put((model.path, tree_digest(model.path)))


@pytest.fixture
def base(minidfs):
    return f"{minidfs.url}/models/{uuid.uuid4().hex[:8]}/cnn"


def _size(tree_dir):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree_dir) for f in fs)


def test_sixteen_processes_read_the_model_once_from_hdfs_c1(minidfs, base, tmp_path):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=8_000_000, shards=2)
    publish(src, base, signatures=False)
    size = _size(src)
    cache = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(16), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(base, cache, barrier, results)) for _ in range(16)]
    before = minidfs.bytes_read()
    for proc in procs:
        proc.start()
    out = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    served = minidfs.bytes_read() - before
    # One download, plus 16 manifest reads and checksum overhead: far from 2x.
    assert size <= served < 1.15 * size, (served, size)
    expected = tree_digest(src)
    assert len({path for path, _ in out}) == 1
    for _, tree in out:
        tree.pop("MANIFEST.json")
        assert tree == expected


@pytest.mark.parametrize("client", ["hdfs", "webhdfs"])
def test_localize_and_warm_hit_reads_no_data_l4(minidfs, base, tmp_path, client):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=3_000_000)
    publish(src, base, signatures=False)
    url = base if client == "hdfs" else base.replace(minidfs.url, minidfs.webhdfs_url)
    cache = str(tmp_path / "cache")
    model = localize(url, cache_dir=cache)
    tree = tree_digest(model.path)
    tree.pop("MANIFEST.json")
    assert tree == tree_digest(src)
    before = minidfs.bytes_read()
    again = localize(url, cache_dir=cache)
    assert again.path == model.path
    assert minidfs.bytes_read() - before < 64 * 1024  # the manifest, not the model


def test_plain_put_without_manifest_localizes(minidfs, base, tmp_path):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=2_000_000)
    fs = minidfs.fs()
    fs.put(src, base.replace(minidfs.url, "") + "/1", recursive=True)
    pinned = resolve(base)
    assert pinned.manifest is None and pinned.version == 1
    model = localize(base, cache_dir=str(tmp_path / "cache"))
    assert model.digest == pinned.digest
    got = tree_digest(model.path)
    assert {k: v for k, v in got.items() if v != "<dir>"} == {k: v for k, v in tree_digest(src).items() if v != "<dir>"}


def _keras_model(export_dir):
    tf = require_module("tensorflow", "tf")
    import numpy as np

    keras = tf.keras
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.export(export_dir)
    inputs = np.random.default_rng(3).normal(size=(32, 6)).astype("float32")
    return tf, inputs


def _predict(tf, path, inputs):
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](tf.constant(inputs))
    return {name: tensor.numpy() for name, tensor in outputs.items()}


@pytest.mark.slow
def test_published_and_plain_put_models_predict_exactly_like_the_original(minidfs, base, tmp_path):
    import numpy as np

    export = str(tmp_path / "export")
    tf, inputs = _keras_model(export)
    expected = _predict(tf, export, inputs)
    publish(export, base)  # with manifest and signatures
    plain_base = base + "-plain"
    minidfs.fs().put(export, plain_base.replace(minidfs.url, "") + "/1", recursive=True)
    for url, has_manifest in ((base, True), (plain_base, False)):
        model = localize(url, cache_dir=str(tmp_path / "cache"))
        assert os.path.exists(os.path.join(model.path, "MANIFEST.json")) == has_manifest
        got = _predict(tf, model.path, inputs)
        assert got.keys() == expected.keys()
        for name in expected:
            assert np.array_equal(got[name], expected[name]), name
