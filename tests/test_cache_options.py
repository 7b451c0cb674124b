"""One options object that reaches executors (issue 19): CacheOptions through localize, hold,
distribute's ModelHandle and Scorer(cache=), over the executor's HDFS_MODELS_* variables; the one
explicit > environment > default resolver; and a cache miss walking at most 5 cache modules."""

import os
import pickle
import subprocess
import sys
import threading

import pytest

from hdfs_models import CacheOptions, cache_stats, distribute, localize, release, resolve
from hdfs_models._publish import publish
from hdfs_models._runtime import setting
from hdfs_models.cache import hold, holds
from hdfs_models.testing import tree_digest, write_fake_model
from hdfs_models.testing.pytest_plugin import require_module


@pytest.fixture
def base(tmp_path):
    base = str(tmp_path / "store" / "mnist")
    publish(write_fake_model(str(tmp_path / "src"), data_bytes=50_000), base, signatures=False)
    return base


def _entries(root):
    return sorted(n for n in os.listdir(root) if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))


# -- the resolver -----------------------------------------------------------------------------------


def test_setting_is_explicit_then_environment_then_default():
    env = {"HDFS_MODELS_X": "7"}
    assert setting(3, "HDFS_MODELS_X", 1, parse=int, env=env) == 3
    assert setting(None, "HDFS_MODELS_X", 1, parse=int, env=env) == 7
    assert setting("", "HDFS_MODELS_X", 1, parse=int, env=env) == 7  # an empty explicit value is unset
    assert setting(None, "HDFS_MODELS_X", 1, parse=int, env={"HDFS_MODELS_X": ""}) == 1
    assert setting(None, "HDFS_MODELS_X", 1, parse=int, env={}) == 1


def test_setting_names_the_variable_of_an_unparsable_value():
    with pytest.raises(ValueError, match=r"HDFS_MODELS_X='soon'"):
        setting(None, "HDFS_MODELS_X", 1.0, parse=float, env={"HDFS_MODELS_X": "soon"})


def test_the_launcher_and_the_cache_resolve_through_the_same_resolver(monkeypatch):
    from hdfs_models.cache import cache_root
    from hdfs_models.testing.launcher import resolve_hadoop_version

    monkeypatch.setenv("HDFS_MODELS_HADOOP_VERSION", "3.3.6")
    assert resolve_hadoop_version() == "3.3.6" and resolve_hadoop_version("3.4.1") == "3.4.1"
    assert cache_root(None, {"HDFS_MODELS_CACHE": "/srv/c"}) == "/srv/c"
    assert cache_root("/x", {"HDFS_MODELS_CACHE": "/srv/c"}) == "/x"


# -- localize and hold ------------------------------------------------------------------------------


def test_localize_takes_an_options_object_and_fields_over_it(base, tmp_path, monkeypatch):
    monkeypatch.setenv("HDFS_MODELS_CACHE", str(tmp_path / "env-cache"))
    monkeypatch.setenv("HDFS_MODELS_STRICT", "1")
    opts = CacheOptions(cache_dir=str(tmp_path / "opt-cache"), strict=False)
    model = localize(base, options=opts)
    assert model.path.startswith(str(tmp_path / "opt-cache") + os.sep)  # options.cache_dir over the env
    assert not os.path.exists(tmp_path / "env-cache")
    other = localize(base, cache_dir=str(tmp_path / "arg-cache"), options=opts)  # the argument wins
    assert other.path.startswith(str(tmp_path / "arg-cache") + os.sep)
    with pytest.raises(TypeError, match="unknown cache option"):
        localize(base, options=opts, paralellism=2)
    with pytest.raises(TypeError, match="options must be a CacheOptions"):
        localize(base, options={"strict": True})


def test_an_options_object_is_explicit_as_a_whole(monkeypatch):
    monkeypatch.setenv("HDFS_MODELS_MAX_VERSIONS", "3")
    from hdfs_models.cache import resolve_options

    assert resolve_options({}).max_versions == 3  # fields: env over default
    opts = CacheOptions()
    assert resolve_options(opts) is opts and opts.max_versions == 8 and opts.cache_dir is None


def test_hold_localizes_once_per_process_until_released(base, tmp_path):
    pinned = resolve(base)
    opts = CacheOptions(cache_dir=str(tmp_path / "held"))
    before = cache_stats()
    path = hold(pinned, options=opts)
    assert path.startswith(str(tmp_path / "held") + os.sep) and holds(path)
    after_first = cache_stats()
    assert (after_first - before).misses == 1
    assert hold(pinned, options=opts) == path and cache_stats() == after_first  # no store I/O, no lock
    assert release(path) and not holds(path)
    assert hold(pinned, options=opts) == path and holds(path)  # claimed again: a hit
    assert (cache_stats() - after_first).hits == 1
    release(path)


# -- distribute: the options travel in the handle ------------------------------------------------------

_EXECUTOR = """
import pickle, sys
handle = pickle.loads(sys.stdin.buffer.read())
print(handle.local_path())
"""


def test_distribute_options_reach_an_executor_over_its_environment(base, tmp_path):
    opts = CacheOptions(cache_dir=str(tmp_path / "job-cache"), max_versions=1, lock_timeout=5.0)
    handle = distribute(None, base, options=opts)
    data = pickle.dumps(handle)
    assert pickle.loads(data).options == opts
    env = dict(os.environ, HDFS_MODELS_CACHE=str(tmp_path / "executor-env-cache"), HDFS_MODELS_LOCK_TIMEOUT="1")
    out = subprocess.run(
        [sys.executable, "-c", _EXECUTOR], input=data, env=env, capture_output=True, check=True, timeout=120
    )
    path = out.stdout.decode().strip().splitlines()[-1]
    assert path.startswith(str(tmp_path / "job-cache") + os.sep), out.stderr.decode()
    assert not os.path.exists(tmp_path / "executor-env-cache")
    assert tree_digest(path)["saved_model.pb"] == tree_digest(os.path.join(base, "1"))["saved_model.pb"]


def test_distribute_refuses_options_of_the_wrong_type(base):
    with pytest.raises(TypeError, match="options must be a CacheOptions"):
        distribute(None, base, options={"cache_dir": "/tmp/x"})


# -- Scorer(cache=) -----------------------------------------------------------------------------------


def test_scorer_cache_options_localize_a_model_url_where_they_say(tmp_path, monkeypatch):
    require_module("tensorflow", "tf")
    pa = require_module("pyarrow", "arrow")
    import numpy as np

    from hdfs_models.testing import predict_in_process, save_dense
    from scoring import Scorer, _model_cache

    _model_cache.clear()
    monkeypatch.setenv("HDFS_MODELS_CACHE", str(tmp_path / "env-cache"))
    src = save_dense(str(tmp_path / "m"))
    url = f"memory://scorer-cache-{tmp_path.name}/dense"
    publish(src, url, signatures=False)
    opts = CacheOptions(cache_dir=str(tmp_path / "scorer-cache"))
    scorer = Scorer(url, input_cols="features", returns="probabilities", cache=opts)
    assert pickle.loads(pickle.dumps(scorer._source)).options == opts  # what a task receives
    x = np.random.default_rng(3).random((5, 12), dtype=np.float32)
    batch = pa.RecordBatch.from_arrays([pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 12)], ["features"])
    out = pa.Table.from_batches(list(scorer.predict_arrow([batch])))
    got = np.stack(out.column("prediction").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(got, predict_in_process(src, features=x)["probabilities"], atol=1e-6)
    assert len(_entries(str(tmp_path / "scorer-cache"))) == 1 and not os.path.exists(tmp_path / "env-cache")
    _model_cache.clear()


def test_scorer_cache_is_refused_where_it_would_be_ignored(tmp_path, base):
    from scoring._source import model_source

    opts = CacheOptions(cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="a local directory is used in place"):
        model_source(str(tmp_path), opts)
    with pytest.raises(ValueError, match=r"distribute\(\.\.\., options=\)"):
        model_source(distribute(None, base), opts)
    with pytest.raises(TypeError, match="cache must be a CacheOptions"):
        model_source("memory://x/y", {"cache_dir": "/c"})


# -- the walk of a cache miss (issue 19 acceptance) ------------------------------------------------------


def test_a_cache_miss_walks_through_at_most_5_cache_modules(base, tmp_path):
    seen = set()

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_globals.get("__name__", "")
            if name.startswith("hdfs_models."):
                seen.add(name)

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        model = localize(base, cache_dir=str(tmp_path / "walk"))
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    assert model.path and (cache_stats().misses >= 1)
    cache_modules = sorted(m for m in seen if m.startswith("hdfs_models.cache"))
    assert "hdfs_models.cache._localize" in cache_modules and "hdfs_models._download" in seen
    assert len(cache_modules) <= 5, cache_modules
