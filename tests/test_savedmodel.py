"""SavedModel completeness without TensorFlow (RELIABILITY B3, B4, B10)."""

import pytest

from hdfs_models._savedmodel import check_complete, check_saved_model_pb
from hdfs_models.errors import InvalidModelError
from hdfs_models.testing import SAVED_MODEL_PB

COMPLETE = {
    "saved_model.pb": 10,
    "variables/variables.index": 5,
    "variables/variables.data-00000-of-00002": 7,
    "variables/variables.data-00001-of-00002": 7,
    "assets/vocab.txt": 3,
}


def _without(*names):
    return {k: v for k, v in COMPLETE.items() if k not in names}


def test_complete_model_passes():
    assert check_complete(COMPLETE, "hdfs://nn/m/1") is None
    assert check_complete({**_without("saved_model.pb"), "saved_model.pbtxt": 4}, "x") is None


@pytest.mark.parametrize(
    "files, missing",
    [
        (_without("saved_model.pb"), ["saved_model.pb"]),  # B3
        (_without("variables/variables.index"), ["variables/variables.index"]),  # B3
        (
            {"saved_model.pb": 3},
            ["variables/variables.index", "variables/variables.data-00000-of-00001 (no variables data shard)"],
        ),  # B3: no variables/ at all
        (_without("variables/variables.data-00001-of-00002"), ["variables/variables.data-00001-of-00002"]),  # B10
        (_without("variables/variables.data-00000-of-00002"), ["variables/variables.data-00000-of-00002"]),  # B10
    ],
)
def test_missing_parts_are_named(files, missing):
    with pytest.raises(InvalidModelError, match="hdfs://nn/m/1: not a complete SavedModel: missing") as info:
        check_complete(files, "hdfs://nn/m/1")
    assert info.value.missing == missing
    for name in missing:
        assert name in str(info.value)


def test_inconsistent_shard_counts_are_rejected():
    files = {**COMPLETE, "variables/variables.data-00000-of-00003": 1}
    with pytest.raises(InvalidModelError, match="consistent shard count"):
        check_complete(files, "x")


def test_zero_byte_saved_model_pb():  # B4
    with pytest.raises(InvalidModelError, match=r"/m/1: saved_model.pb is empty \(0 bytes\)"):
        check_complete({**COMPLETE, "saved_model.pb": 0}, "/m/1")


def test_well_formed_pb_passes():
    assert check_saved_model_pb(SAVED_MODEL_PB, "/m/saved_model.pb") is None


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty"),
        (SAVED_MODEL_PB + b"\x12\x10abc", "truncated or corrupt"),  # B4: a field cut short
        (b"\x08", "truncated or corrupt"),  # varint cut short
        (b"\x08\x01", "no MetaGraphDef"),
        (b"\x0f", "truncated or corrupt"),  # wire type 7
    ],
)
def test_truncated_or_empty_pb_is_rejected(data, match):  # B4
    with pytest.raises(InvalidModelError, match=match) as info:
        check_saved_model_pb(data, "/m/saved_model.pb")
    assert info.value.url == "/m/saved_model.pb"
