"""C9 end to end in one long-lived worker: the real Scorer follows 10 published versions and the
node cache on disk stays within max_versions plus the versions the worker's model cache holds."""

import os

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

require_module("tensorflow", "tf")
pa = require_module("pyarrow", "arrow")

from hdfs_models import distribute, publish  # noqa: E402
from hdfs_models.testing import predict_in_process, save_dense  # noqa: E402
from scoring import Scorer, _model_cache  # noqa: E402

VERSIONS = 10
MAX_VERSIONS = 2


@pytest.fixture(autouse=True)
def fresh_model_cache():
    _model_cache.clear()
    yield
    _model_cache.clear()


def _entries(root):
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))


@pytest.mark.parametrize("through", ["url", "fetch handle"])
def test_worker_following_ten_versions_keeps_disk_bounded_c9(tmp_path, monkeypatch, through):
    root = str(tmp_path / "node-cache")
    monkeypatch.setenv("HDFS_MODELS_CACHE", root)  # the worker's node cache
    monkeypatch.setenv("HDFS_MODELS_MAX_VERSIONS", str(MAX_VERSIONS))
    base = f"memory://c9-{tmp_path.name}-{through.replace(' ', '')}/dense"
    x = np.random.default_rng(1).random((4, 12), dtype=np.float32)
    batch = pa.RecordBatch.from_arrays(
        [pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 12)], names=["features"]
    )
    for version in range(1, VERSIONS + 1):
        src = save_dense(str(tmp_path / f"m{version}"), seed=version)
        assert publish(src, base, signatures=False).version == version
        model = base if through == "url" else distribute(None, base, strategy="fetch")
        scorer = Scorer(model, input_cols="features", returns="probabilities")  # what --watch builds
        out = pa.Table.from_batches(list(scorer.predict_arrow([batch])))
        got = np.stack(out.column("prediction").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(got, predict_in_process(src, features=x)["probabilities"], atol=1e-6)
        assert set(out.column("model_version").to_pylist()) == {version}
        in_use = {os.path.basename(m["path"]) for m in _model_cache.cache_info()["models"].values()}
        assert len(in_use) <= _model_cache.DEFAULT_CAPACITY
        on_disk = _entries(root)
        assert in_use <= set(on_disk)
        assert len(on_disk) <= MAX_VERSIONS + len(in_use), (version, on_disk, in_use)
    assert len(_entries(root)) <= MAX_VERSIONS + _model_cache.DEFAULT_CAPACITY
