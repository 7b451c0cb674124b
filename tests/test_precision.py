"""Precision: the CPU decision (from injected /proc/cpuinfo text) and the bfloat16 rewrite."""

import logging

import numpy as np
import pytest

from hdfs_models._runtime import CpuInfo, read_cpu
from hdfs_models.testing.pytest_plugin import require_module
from scoring import PrecisionError
from scoring._device import check_precision, resolve_precision, with_precision

SAPPHIRE = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""
SKYLAKE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
flags\t\t: fpu vme sse sse2 avx2 avx512f avx512bw avx512_vnni
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics bf16 i8mm
"""

NO_BF16 = "this CPU has no native bfloat16 (avx512_bf16 / amx_bf16)"  # allowed in .ci/check_junit.py
BF16_CPU = read_cpu(SAPPHIRE)
PLAIN_CPU = read_cpu(SKYLAKE)


def test_read_cpu_takes_model_and_flags():
    assert BF16_CPU.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx512_bf16", "amx_bf16"} <= BF16_CPU.flags and BF16_CPU.bfloat16
    assert PLAIN_CPU.model.startswith("Intel(R) Xeon(R) Gold 6148") and not PLAIN_CPU.bfloat16
    arm = read_cpu(GRAVITON)
    assert "bf16" in arm.flags and arm.model == "unknown"
    assert not arm.bfloat16  # the oneDNN rewrite here is x86's: no AVX512_BF16/AMX, no bfloat16


def test_read_cpu_of_an_unreadable_file_has_no_flags(tmp_path):
    cpu = read_cpu(path=str(tmp_path / "no-cpuinfo"))
    assert cpu.flags == frozenset() and not cpu.bfloat16
    assert "unreadable" in cpu.model and "no-cpuinfo" in cpu.model


def test_unknown_precision_is_a_value_error():
    assert check_precision("auto") == "auto"
    with pytest.raises(ValueError, match=r"float32, bfloat16, auto.*'fp16'"):
        check_precision("fp16")
    with pytest.raises(ValueError, match="'half'"):
        resolve_precision("half", cpu=BF16_CPU, env={})


def test_float32_is_float32_everywhere():
    assert resolve_precision("float32", cpu=PLAIN_CPU, env={}) == "float32"
    assert resolve_precision("float32", cpu=BF16_CPU, device="/GPU:0", env={}) == "float32"


def test_bfloat16_and_auto_on_a_cpu_that_has_it():
    assert resolve_precision("bfloat16", cpu=BF16_CPU, env={}) == "bfloat16"
    assert resolve_precision("auto", cpu=BF16_CPU, env={}) == "bfloat16"
    only_amx = CpuInfo("some cpu", frozenset({"amx_bf16"}))
    assert resolve_precision("bfloat16", cpu=only_amx, env={}) == "bfloat16"


def test_bfloat16_on_a_cpu_without_it_names_the_cpu_and_the_flags():
    with pytest.raises(PrecisionError, match=r"Gold 6148.*avx512_bf16 nor amx_bf16") as info:
        resolve_precision("bfloat16", cpu=PLAIN_CPU, env={})
    assert isinstance(info.value, ValueError)
    assert "emulated" in info.value.reason


def test_bfloat16_needs_onednn_and_a_cpu_device():
    with pytest.raises(PrecisionError, match="TF_ENABLE_ONEDNN_OPTS=0"):
        resolve_precision("bfloat16", cpu=BF16_CPU, env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    with pytest.raises(PrecisionError, match=r"runs on /GPU:1.*only changes CPU kernels"):
        resolve_precision("bfloat16", cpu=BF16_CPU, device="/GPU:1", env={})


def test_auto_falls_back_to_float32_and_says_so_once(caplog, monkeypatch):
    monkeypatch.setattr("scoring._device._said_auto", [])
    with caplog.at_level(logging.WARNING, logger="scoring._device"):
        for _ in range(3):
            assert resolve_precision("auto", cpu=PLAIN_CPU, env={}) == "float32"
    lines = [r.getMessage() for r in caplog.records if r.name == "scoring._device"]
    assert len(lines) == 1, lines
    assert "precision='auto' runs float32" in lines[0] and "Gold 6148" in lines[0]


def test_with_precision_takes_only_a_resolved_precision():
    with pytest.raises(ValueError, match="resolved precision"):
        with_precision(lambda **kw: kw, "auto")


@pytest.fixture(scope="module")
def dense_fn(tmp_path_factory):
    tf = require_module("tensorflow", "tf")

    from hdfs_models.testing import save_dense

    path = save_dense(str(tmp_path_factory.mktemp("precision") / "1"), n_in=64, n_out=10, hidden=256)
    loaded = tf.saved_model.load(path)
    return loaded, loaded.signatures["serving_default"]


def _probabilities(fn, x):
    import tensorflow as tf

    return fn(features=tf.constant(x))["probabilities"]


def test_float32_wrapper_stays_float32_even_with_the_rewrite_on_process_wide(dense_fn):
    import tensorflow as tf

    _, fn = dense_fn
    x = np.random.default_rng(0).normal(size=(256, 64)).astype(np.float32)
    plain = _probabilities(fn, x).numpy()
    tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    try:
        got = _probabilities(with_precision(fn, "float32"), x)
        assert tf.config.optimizer.get_experimental_options()["auto_mixed_precision_onednn_bfloat16"] is True
    finally:
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": False})
    assert got.dtype == tf.float32
    np.testing.assert_array_equal(got.numpy(), plain)


@pytest.mark.skipif(not read_cpu().bfloat16, reason=NO_BF16)
def test_bfloat16_wrapper_computes_in_bfloat16_and_returns_float32(dense_fn):
    import tensorflow as tf

    _, fn = dense_fn
    # Small inputs keep this unscaled random model's softmax off saturation.
    x = np.random.default_rng(1).normal(scale=0.05, size=(512, 64)).astype(np.float32)
    plain = _probabilities(fn, x).numpy()
    got = _probabilities(with_precision(fn, "bfloat16"), x)
    assert got.dtype == tf.float32
    diff = np.abs(got.numpy() - plain).max()
    # bfloat16 keeps 8 significant bits: results move (so the rewrite ran), but not far.
    assert 0 < diff < 0.1, diff
    np.testing.assert_allclose(got.numpy().sum(axis=1), 1.0, atol=0.02)  # softmax in bfloat16 too
    assert not tf.config.optimizer.get_experimental_options().get("auto_mixed_precision_onednn_bfloat16", False)
    np.testing.assert_array_equal(_probabilities(fn, x).numpy(), plain)  # the plain function is untouched
