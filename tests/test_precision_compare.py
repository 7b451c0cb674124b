"""compare_precision and ``python -m scoring.precision``: float32 against bfloat16 on a sample."""

import json

import numpy as np
import pytest

from hdfs_models._runtime import CpuInfo, read_cpu
from hdfs_models.testing.pytest_plugin import require_module
from scoring import PrecisionError, SignatureError

require_module("tensorflow", "tf")
pa = require_module("pyarrow", "arrow")

NO_BF16 = "this CPU has no native bfloat16 (avx512_bf16 / amx_bf16)"  # allowed in .ci/check_junit.py
PLAIN = CpuInfo("Plain CPU 9000", frozenset({"avx2", "avx512f"}))
needs_bf16 = pytest.mark.skipif(not read_cpu().bfloat16, reason=NO_BF16)
N_IN, ROWS = 64, 700


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    from hdfs_models.testing import save_dense

    return save_dense(str(tmp_path_factory.mktemp("compare") / "1"), n_in=N_IN, n_out=10, hidden=256)


@pytest.fixture(scope="module")
def sample():
    from hdfs_models.testing import predict_in_process  # noqa: F401 - TF imported once here

    x = np.random.default_rng(3).normal(scale=0.05, size=(ROWS, N_IN)).astype(np.float32)
    return x, np.arange(ROWS) % 10


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.setattr("scoring._device.this_cpu", lambda: PLAIN)


def test_auto_on_a_plain_cpu_compares_float32_with_itself(dense, sample, plain_cpu):
    from hdfs_models.testing import predict_in_process
    from scoring._faces import compare_precision

    x, labels = sample
    report = compare_precision(dense, x, precision="auto", labels=labels, batch_size=256)
    assert (report.precision, report.rows, report.output_tensor) == ("float32", ROWS, "probabilities")
    assert report.class_agreement == 1.0 and report.max_abs_diff == 0.0
    truth = predict_in_process(dense, features=x)["probabilities"].argmax(axis=1)
    assert report.accuracy == {"float32": float(np.mean(truth == labels))}
    assert "class agreement      100.00% (700/700 rows)" in str(report)


def test_bfloat16_on_a_plain_cpu_is_a_precision_error(dense, sample, plain_cpu):
    from scoring._faces import compare_precision

    with pytest.raises(PrecisionError, match="Plain CPU 9000"):
        compare_precision(dense, sample[0], precision="bfloat16")


@needs_bf16
def test_bfloat16_report(dense, sample):
    from hdfs_models.testing import predict_in_process
    from scoring._faces import compare_precision

    x, labels = sample
    report = compare_precision(dense, {"features": x}, labels=labels, batch_size=256)
    full = predict_in_process(dense, features=x)["probabilities"]
    assert report.precision == "bfloat16" and report.rows == ROWS
    assert 0.0 < report.max_abs_diff < 0.1  # the rewrite ran, and moved the outputs only a little
    assert 0.9 <= report.class_agreement <= 1.0
    assert report.accuracy["float32"] == float(np.mean(full.argmax(axis=1) == labels))
    assert set(report.accuracy) == {"float32", "bfloat16"} and set(report.seconds) == {"float32", "bfloat16"}


def test_several_outputs_need_a_name_and_labels_must_match(tmp_path):
    from hdfs_models.testing import save_multi
    from scoring._faces import compare_precision

    multi = save_multi(str(tmp_path / "1"))
    feats = {"image": np.zeros((4, 2, 3, 1), np.float32), "extra": np.zeros((4, 2), np.float64)}
    with pytest.raises(SignatureError, match=r"outputs \['label', 'probabilities', 'score'\]: name the output"):
        compare_precision(multi, feats, precision="float32")
    with pytest.raises(SignatureError, match="no features for input 'image'"):
        compare_precision(multi, {"extra": feats["extra"]}, output_tensor="score", precision="float32")
    with pytest.raises(ValueError, match="labels has 3 rows, features 4"):
        compare_precision(multi, feats, output_tensor="probabilities", labels=np.zeros(3), precision="float32")
    report = compare_precision(multi, feats, output_tensor="score", precision="float32")
    assert report.class_agreement is None and report.max_abs_diff == 0.0  # one value per row: no classes


def _parquet(path, x, labels):
    import pyarrow.parquet as pq

    flat = pa.array(x.reshape(-1))
    offsets = pa.array(np.arange(0, (len(x) + 1) * N_IN, N_IN, dtype=np.int32))
    table = pa.table({"features": pa.ListArray.from_arrays(offsets, flat), "label": labels})
    pq.write_table(table, path)
    return str(path)


def test_cli_prints_a_json_report(dense, sample, tmp_path, capsys, plain_cpu):
    from scoring.precision import main

    data = _parquet(tmp_path / "sample.parquet", *sample)
    code = main([dense, "--input-path", data, "--features", "features", "--labels", "label",
                 "--rows", "500", "--precision", "auto", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (out["rows"], out["precision"], out["class_agreement"]) == (500, "float32", 1.0)
    assert set(out["accuracy"]) == {"float32"}


def test_cli_errors(dense, tmp_path, capsys, plain_cpu):
    from scoring.precision import main

    missing = str(tmp_path / "nowhere.parquet")
    assert main([dense, "--input-path", missing, "--features", "features"]) == 1
    assert "nowhere.parquet" in capsys.readouterr().err
    data = _parquet(tmp_path / "s.parquet", np.zeros((3, N_IN), np.float32), np.zeros(3, np.int64))
    assert main([dense, "--input-path", data, "--features", "features"]) == 1
    assert "precision='bfloat16' cannot run here" in capsys.readouterr().err
    assert main([dense, "--input-path", data, "--features", "features", "--rows", "0"]) == 2
