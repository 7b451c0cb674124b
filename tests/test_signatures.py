"""Signature reading (hdfs_models.read_signatures, scoring.inspect_signatures) and parsing."""

import json
import os
import shutil

import pytest

from hdfs_models.testing.pytest_plugin import require_module

require_module("tensorflow", "tf")

from hdfs_models import read_signatures  # noqa: E402
from hdfs_models.errors import InvalidModelError, ModelNotFoundError  # noqa: E402
from hdfs_models.testing import save_dense, save_multi  # noqa: E402
from scoring import SignatureError, format_signatures, inspect_signatures  # noqa: E402
from scoring._plan import TensorSpec, parse_signature  # noqa: E402

DENSE = {
    "serving_default": {
        "method_name": "tensorflow/serving/predict",
        "inputs": {"features": {"dtype": "float32", "shape": [-1, 12]}},
        "outputs": {"probabilities": {"dtype": "float32", "shape": [-1, 5]}},
    }
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sig-models")
    return {"dense": save_dense(str(root / "3")), "multi": save_multi(str(root / "multi"))}


def test_read_signatures_from_saved_model(models):
    assert read_signatures(models["dense"]) == DENSE
    multi = read_signatures(models["multi"])["serving_default"]
    assert multi["inputs"] == {
        "extra": {"dtype": "float64", "shape": [-1, 2]},
        "image": {"dtype": "float32", "shape": [-1, 2, 3, 1]},
    }
    assert multi["outputs"]["label"] == {"dtype": "int64", "shape": [-1]}
    assert "__saved_model_init_op" not in read_signatures(models["multi"])


def test_inspect_prefers_the_manifest(models, tmp_path):
    copy = shutil.copytree(models["dense"], tmp_path / "5")
    fake = {"serving_default": {"method_name": "m", "inputs": {"a": {"dtype": "int64", "shape": [-1]}},
                                "outputs": {"b": {"dtype": "float32", "shape": None}}}}  # fmt: skip
    (copy / "MANIFEST.json").write_text(json.dumps({"format_version": 1, "signatures": fake}))
    assert inspect_signatures(str(copy)) == fake
    assert inspect_signatures(models["dense"]) == DENSE  # no manifest: parsed from saved_model.pb


def test_inspect_accepts_file_urls_and_handles(models):
    assert inspect_signatures("file://" + models["dense"]) == DENSE

    class Handle:
        version, digest = 3, "abc"

        def local_path(self):
            return models["dense"]

    assert inspect_signatures(Handle()) == DENSE


def test_missing_model_dir_is_not_found(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match=f"model {missing} does not exist"):
        inspect_signatures(missing)


def test_file_instead_of_dir(tmp_path):
    path = tmp_path / "model.pb"
    path.write_bytes(b"x")
    with pytest.raises(InvalidModelError, match="is a file, not a SavedModel directory"):
        inspect_signatures(str(path))


def test_dir_without_saved_model_pb_or_variables(models, tmp_path):
    (tmp_path / "variables").mkdir()
    with pytest.raises(InvalidModelError, match=r"not a complete SavedModel: missing saved_model.pb"):
        inspect_signatures(str(tmp_path))
    copy = shutil.copytree(models["dense"], tmp_path / "novars")
    shutil.rmtree(copy / "variables")
    with pytest.raises(
        InvalidModelError, match=r"novars: not a complete SavedModel: missing variables/variables.index"
    ):
        inspect_signatures(str(copy))


def test_empty_and_truncated_saved_model_pb(models, tmp_path):
    copy = shutil.copytree(models["dense"], tmp_path / "m")
    pb = copy / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes(b"")
    with pytest.raises(InvalidModelError, match=r"saved_model.pb is empty \(0 bytes\)") as err:
        read_signatures(str(copy))
    assert err.value.path == str(pb)
    pb.write_bytes(data[: len(data) // 3])
    with pytest.raises(InvalidModelError, match=r"saved_model.pb is not a SavedModel protobuf"):
        read_signatures(str(copy))


def test_unknown_signature_lists_the_known_ones():
    with pytest.raises(SignatureError, match=r"m/1 has no signature 'predict'; signatures: \['serving_default'\]"):
        parse_signature(DENSE, "predict", "m/1")
    sig = parse_signature(DENSE, "serving_default", "m/1")
    with pytest.raises(SignatureError, match=r"no input 'x'; inputs: \['features'\]"):
        sig.input("x")


def test_tensor_spec_sizes():
    assert TensorSpec(name="a", dtype="float32", shape=(-1, 28, 28, 1)).row_size == 784
    assert TensorSpec(name="a", dtype="float32", shape=(-1, -1)).row_size is None
    assert TensorSpec(name="a", dtype="float32", shape=None).describe() == "float32[?]"


def test_format_signatures_reads_like_saved_model_cli(models):
    text = format_signatures(inspect_signatures(models["multi"]))
    # one renderer (hdfs_models._signatures): what `hdfs-models inspect` prints too
    assert "signature_def['serving_default']:" in text
    assert "Method name is: tensorflow/serving/predict" in text
    assert "    inputs['image'] tensor_info:\n        dtype: float32\n        shape: (-1, 2, 3, 1)" in text
    assert "    outputs['label'] tensor_info:\n        dtype: int64\n        shape: (-1,)" in text
    assert os.path.basename(models["dense"]) == "3"
