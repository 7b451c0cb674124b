"""Scorer(precision=...): validated on the driver, decided per worker, kept apart in the model cache."""

import numpy as np
import pytest

from hdfs_models._runtime import CpuInfo, read_cpu
from hdfs_models.testing.pytest_plugin import require_module
from scoring import PrecisionError, Scorer
from scoring import _model_cache as cache

require_module("tensorflow", "tf")
pa = require_module("pyarrow", "arrow")

NO_BF16 = "this CPU has no native bfloat16 (avx512_bf16 / amx_bf16)"  # allowed in .ci/check_junit.py
PLAIN = CpuInfo("Plain CPU 9000", frozenset({"avx2"}))
N_IN, ROWS = 32, 300


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from hdfs_models.testing import save_dense

    return save_dense(str(tmp_path_factory.mktemp("scorer-precision") / "2"), n_in=N_IN, n_out=10, hidden=256)


@pytest.fixture(scope="module")
def batch():
    x = np.random.default_rng(7).normal(scale=0.05, size=(ROWS, N_IN)).astype(np.float32)
    offsets = pa.array(np.arange(0, (ROWS + 1) * N_IN, N_IN, dtype=np.int32))
    features = pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1)))
    return x, pa.RecordBatch.from_arrays([pa.array(np.arange(ROWS)), features], names=["id", "features"])


def _scores(scorer, batch):
    out = pa.Table.from_batches(list(scorer.predict_arrow([batch])))
    return np.asarray(out.column("prediction").to_pylist(), dtype=np.float32)


def test_unknown_precision_fails_on_the_driver(model):
    with pytest.raises(ValueError, match=r"precision must be one of float32, bfloat16, auto, not 'fp16'"):
        Scorer(model, precision="fp16")


def test_bfloat16_on_a_worker_without_it_is_a_precision_error(model, batch, monkeypatch):
    monkeypatch.setattr("scoring._device.this_cpu", lambda: PLAIN)
    scorer = Scorer(model, keep_cols=["id"], returns="probabilities", precision="bfloat16")
    with pytest.raises(PrecisionError, match=r"Plain CPU 9000\) has neither avx512_bf16 nor amx_bf16"):
        _scores(scorer, batch[1])
    assert cache.load_count() == 0  # decided before any load


def test_auto_on_a_worker_without_it_scores_float32(model, batch, monkeypatch):
    from hdfs_models.testing import predict_in_process

    monkeypatch.setattr("scoring._device.this_cpu", lambda: PLAIN)
    x, b = batch
    got = _scores(Scorer(model, keep_cols=["id"], returns="probabilities", precision="auto"), b)
    np.testing.assert_array_equal(got, predict_in_process(model, features=x)["probabilities"])
    assert cache.cache_info()["keys"] == [k for k in cache.cache_info()["keys"] if "bfloat16" not in k]


@pytest.mark.skipif(not read_cpu().bfloat16, reason=NO_BF16)
def test_bfloat16_scorer_next_to_a_float32_one_in_the_same_worker(model, batch):
    from hdfs_models.testing import predict_in_process

    x, b = batch
    want = predict_in_process(model, features=x)["probabilities"]
    low = _scores(Scorer(model, keep_cols=["id"], returns="probabilities", precision="bfloat16"), b)
    full = _scores(Scorer(model, keep_cols=["id"], returns="probabilities"), b)
    np.testing.assert_array_equal(full, want)  # the float32 scorer is untouched by the bfloat16 one
    assert 0 < np.abs(low - want).max() < 0.1
    assert np.mean(low.argmax(axis=1) == want.argmax(axis=1)) >= 0.9
    keys = cache.cache_info()["keys"]
    assert len(keys) == 2 and keys[0].endswith("#serving_default#bfloat16") and keys[1].endswith("#serving_default")


def test_job_takes_precision(capsys):
    from scoring.job import build_parser

    base = ["--model", "m", "--input-path", "i", "--output-path", "o", "--features", "f"]
    assert build_parser().parse_args(base).precision == "float32"
    assert build_parser().parse_args([*base, "--precision", "auto"]).precision == "auto"
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*base, "--precision", "fp16"])
    assert exit_info.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err
