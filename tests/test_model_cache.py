"""Per-worker model cache: loads once, bounded LRU, new before old, errors name the path."""

import os
import shutil

import pytest

from hdfs_models.testing.pytest_plugin import require_module

require_module("tensorflow", "tf")

from hdfs_models.testing import save_dense  # noqa: E402
from scoring import ModelLoadError, SignatureError  # noqa: E402
from scoring import _model_cache as cache  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_dense(str(tmp_path_factory.mktemp("cache-models") / "1"))


def test_loads_once_then_hits(model):
    first = cache.get_model("k1", model, "serving_default")
    for _ in range(5):
        assert cache.get_model("k1", model, "serving_default") is first
    info = cache.cache_info()
    assert (cache.load_count(), info["hits"]) == (1, 5)
    assert info["pid"] == os.getpid() and info["load_seconds"] > 0


def test_bounded_lru_drops_the_least_recently_used(model):
    cache.get_model("a", model, "serving_default", capacity=2)
    cache.get_model("b", model, "serving_default", capacity=2)
    cache.get_model("a", model, "serving_default", capacity=2)  # a is now the most recent
    cache.get_model("c", model, "serving_default", capacity=2)
    assert cache.cache_info()["keys"] == ["a#serving_default", "c#serving_default"]
    assert cache.load_count() == 3


def test_new_version_is_loaded_before_the_old_one_is_dropped(model, monkeypatch):
    cache.get_model("v1", model, "serving_default", capacity=1)
    seen = []
    real = cache._load

    def spy(*args):
        seen.append(list(cache._entries))  # what the cache holds while v2 loads
        return real(*args)

    monkeypatch.setattr(cache, "_load", spy)
    cache.get_model("v2", model, "serving_default", capacity=1)
    assert seen == [["v1#serving_default"]]
    assert cache.cache_info()["keys"] == ["v2#serving_default"]


def test_missing_signature(model):
    with pytest.raises(SignatureError, match=r"has no signature 'nope'; signatures: \['serving_default'\]") as err:
        cache.get_model("k", model, "nope")
    assert err.value.path == model
    assert cache.load_count() == 0


def test_corrupt_variables_raise_model_load_error_naming_the_path(model, tmp_path):
    copy = shutil.copytree(model, tmp_path / "2")
    for name in os.listdir(copy / "variables"):
        if name.startswith("variables.data"):
            (copy / "variables" / name).write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match=f"TensorFlow could not load {copy}") as err:
        cache.get_model("bad", str(copy), "serving_default")
    assert err.value.path == str(copy)
    assert cache.cache_info()["keys"] == []


def test_task_cpus_from_the_task_context():
    class Context:
        def cpus(self):
            return 3

    assert cache.task_cpus(lambda: Context()) == 3
    assert cache.task_cpus(lambda: None) == 1
    assert cache.task_cpus() == 1  # outside a Spark task


def test_corrupt_cached_entry_is_discarded_and_fetched_again_l2(model, tmp_path, monkeypatch):
    """RELIABILITY L2: TensorFlow cannot load a cached entry → it is evicted; the retry downloads again."""
    import numpy as np
    import pyarrow as pa

    from hdfs_models import publish
    from scoring import Scorer

    monkeypatch.setenv("HDFS_MODELS_CACHE", str(tmp_path / "cache"))
    base = f"memory://l2-{tmp_path.name}/dense"  # a store URL: localized into the node cache
    publish(model, base, signatures=False)
    scorer = Scorer(base, input_cols="features", keep_cols=["id"], returns="probabilities")
    x = np.random.default_rng(0).random((8, 12), dtype=np.float32)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(np.arange(8)), pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 12)],
        names=["id", "features"],
    )

    def score() -> np.ndarray:
        out = pa.Table.from_batches(list(scorer.predict_arrow([batch])))
        return np.stack(out.column("prediction").to_numpy(zero_copy_only=False))

    expected = score()
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir() and not p.name.startswith(".")]
    for data in (entry / "variables").glob("variables.data*"):
        # the cached copy rots after it was verified, keeping its size (a changed size is
        # found on the next hit without TensorFlow: H7, tests/test_cache_lifecycle.py)
        data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))
    cache.clear()  # a fresh Python worker

    with pytest.raises(ModelLoadError, match=str(entry)):
        score()
    assert not entry.exists(), "the corrupt entry must not be served again"

    cache.clear()
    np.testing.assert_array_equal(score(), expected)  # the retry downloaded a good copy
    assert entry.is_dir()


def test_precision_and_device_are_part_of_the_key(model):
    import numpy as np

    from scoring._device import Placement

    plain = cache.get_model("k", model, "serving_default", capacity=3)
    low = cache.get_model("k", model, "serving_default", precision="bfloat16", capacity=3)
    gpu = Placement("/GPU:0", gpus=("3",), asked=("3",))
    on_gpu = cache.get_model("k", model, "serving_default", placement=gpu, capacity=3)
    assert len({id(plain), id(low), id(on_gpu)}) == 3 and cache.load_count() == 3
    assert cache.cache_info()["keys"] == ["k#serving_default", "k#serving_default#bfloat16", "k#serving_default@gpu:3"]
    assert (low.precision, low.device, on_gpu.precision, on_gpu.device) == ("bfloat16", "cpu", "float32", "/GPU:0")
    assert cache.get_model("k", model, "serving_default", precision="bfloat16", capacity=3) is low
    models = cache.cache_info()["models"]
    assert models["k#serving_default@gpu:3"]["device"] == "/GPU:0"
    # Without a GPU, TensorFlow's soft placement runs the "/GPU:0" model on the CPU: same numbers.
    x = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32)
    np.testing.assert_array_equal(
        on_gpu.function(features=x)["probabilities"].numpy(), plain.function(features=x)["probabilities"].numpy()
    )


def test_dropping_the_last_model_from_an_entry_ends_the_workers_claim_c9(tmp_path):
    """C9: the worker holds a node-cache entry only while a model loaded from it is cached."""
    from hdfs_models import evict, localize, publish

    base, root = str(tmp_path / "store" / "dense"), str(tmp_path / "node-cache")
    for seed in (1, 7):
        publish(save_dense(str(tmp_path / f"seed{seed}"), seed=seed), base, signatures=False)
    v1 = localize(base, 1, cache_dir=root)  # what a task does before get_model
    cache.get_model("v1", v1.path, "serving_default", capacity=1)
    assert evict(root, max_versions=0) == []  # v1 is claimed
    v2 = localize(base, 2, cache_dir=root)
    cache.get_model("v2", v2.path, "serving_default", capacity=1)  # loads v2, drops v1
    assert cache.cache_info()["keys"] == ["v2#serving_default"]
    assert evict(root, max_versions=0) == [v1.path]  # v1's claim ended with its model; v2 is in use
    cache.clear()
    assert evict(root, max_versions=0) == [v2.path]


def test_an_entry_stays_claimed_while_another_model_from_it_is_cached_c9(tmp_path):
    from hdfs_models import evict, localize, publish

    base, root = str(tmp_path / "store" / "dense"), str(tmp_path / "node-cache")
    publish(save_dense(str(tmp_path / "m")), base, signatures=False)
    local = localize(base, cache_dir=root)
    cache.get_model("a", local.path, "serving_default", capacity=2)
    cache.get_model("b", local.path, "serving_default", capacity=2)  # same files, another key
    cache.get_model("c", str(tmp_path / "m"), "serving_default", capacity=2)  # drops "a" only
    assert evict(root, max_versions=0) == []  # "b" still comes from the entry
