"""Arrow column → tensor (scoring._arrow): layouts, zero copy, nulls and lengths by row."""

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

pa = require_module("pyarrow", "arrow")

from scoring._arrow import column_to_tensor  # noqa: E402
from scoring._plan import TensorSpec  # noqa: E402
from scoring.errors import ColumnTypeError, NullValueError, ShapeMismatchError  # noqa: E402

VEC = TensorSpec(name="x", dtype="float32", shape=(-1, 4))
IMG = TensorSpec(name="img", dtype="float32", shape=(-1, 2, 3, 1))


def _values(n, width):
    return np.arange(n * width, dtype=np.float32)


def _list(values, width, large=False):
    n = len(values) // width
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64 if large else np.int32)
    cls = pa.LargeListArray if large else pa.ListArray
    return cls.from_arrays(pa.array(offsets), pa.array(values))


@pytest.mark.parametrize("layout", ["list", "large_list", "fixed_size_list"])
def test_list_layouts_become_a_zero_copy_view(layout):
    values = _values(6, 4)
    if layout == "fixed_size_list":
        array = pa.FixedSizeListArray.from_arrays(pa.array(values), 4)
    else:
        array = _list(values, 4, large=layout == "large_list")
    out = column_to_tensor(array, VEC, "features")
    assert out.shape == (6, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, values.reshape(6, 4))
    assert np.shares_memory(out, array.values.to_numpy())


def test_sliced_arrays_honour_the_slice_offset():
    values = _values(10, 4)
    for array in (_list(values, 4), pa.FixedSizeListArray.from_arrays(pa.array(values), 4)):
        out = column_to_tensor(array.slice(3, 4), VEC, "features")
        np.testing.assert_array_equal(out, values.reshape(10, 4)[3:7])


def test_chunked_array_and_dtype_cast():
    values = np.arange(8, dtype=np.float64)
    chunked = pa.chunked_array([_list(values[:4], 4), _list(values[4:], 4)])
    out = column_to_tensor(chunked, VEC, "features")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.reshape(2, 4))


def test_nested_lists_reshape_to_the_signature():
    images = np.arange(3 * 6, dtype=np.float32).reshape(3, 2, 3, 1)
    array = pa.array(images.tolist(), type=pa.list_(pa.list_(pa.list_(pa.float32()))))
    out = column_to_tensor(array, IMG, "image")
    np.testing.assert_array_equal(out, images)
    flat = pa.array(images.reshape(3, 6).tolist(), type=pa.list_(pa.float32()))
    np.testing.assert_array_equal(column_to_tensor(flat, IMG, "image"), images)


def test_nested_level_of_wrong_length_names_row_and_level():
    good = np.zeros((2, 3, 1)).tolist()
    bad = [[[0.0], [0.0]], [[0.0], [0.0], [0.0]]]  # 2 rows of 2 then 3: 5 values in all
    array = pa.array([good, good, bad], type=pa.list_(pa.list_(pa.list_(pa.float32()))))
    with pytest.raises(
        ShapeMismatchError, match=r"column 'image' row 12 has 2 values at nesting level 1, expected 3"
    ) as err:
        column_to_tensor(array, IMG, "image", row_offset=10)
    assert err.value.row == 12 and err.value.column == "image"


def test_binary_rows_are_little_endian_tensors():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("<f4")
    array = pa.array([row.tobytes() for row in x], type=pa.binary())
    np.testing.assert_array_equal(column_to_tensor(array, VEC, "raw"), x)
    np.testing.assert_array_equal(column_to_tensor(array.slice(2), VEC, "raw"), x[2:])
    large = pa.array([row.tobytes() for row in x], type=pa.large_binary())
    np.testing.assert_array_equal(column_to_tensor(large, VEC, "raw"), x)


def test_binary_row_of_wrong_size():
    rows = [np.zeros(4, "<f4").tobytes(), np.zeros(3, "<f4").tobytes()]
    with pytest.raises(ShapeMismatchError, match=r"column 'raw' row 1 has 3 values, expected 4"):
        column_to_tensor(pa.array(rows), VEC, "raw")
    with pytest.raises(ShapeMismatchError, match=r"row 0 has 7 bytes, expected a multiple of 4"):
        column_to_tensor(pa.array([b"\0" * 7]), VEC, "raw")


def test_scalar_column_for_a_one_value_input():
    spec = TensorSpec(name="v", dtype="float32", shape=(-1,))
    out = column_to_tensor(pa.array([1, 2, 3], type=pa.int64()), spec, "v")
    assert out.dtype == np.float32 and out.tolist() == [1.0, 2.0, 3.0]


def test_wrong_length_names_column_expected_length_and_row():
    rows = [[0.0] * 4, [0.0] * 4, [0.0] * 3, [0.0] * 5]
    with pytest.raises(
        ShapeMismatchError, match=r"column 'features' row 102 has 3 values, expected 4 \(input 'x' float32\[-1, 4\]\)"
    ) as err:
        column_to_tensor(pa.array(rows), VEC, "features", row_offset=100)
    assert (err.value.row, err.value.got, err.value.expected) == (102, 3, 4)


def test_null_row_and_null_element_name_the_row():
    with pytest.raises(NullValueError, match=r"column 'features' row 1: the row is null") as err:
        column_to_tensor(pa.array([[0.0] * 4, None]), VEC, "features")
    assert err.value.row == 1
    with pytest.raises(NullValueError, match=r"column 'features' row 2: element 3 is null"):
        column_to_tensor(pa.array([[0.0] * 4, [1.0] * 4, [0.0, 1.0, 2.0, None]]), VEC, "features")
    nested = pa.array([np.zeros((2, 3, 1)).tolist(), [[[0.0], [None], [0.0]], [[0.0]] * 3]])
    with pytest.raises(NullValueError, match=r"column 'image' row 1: element 1 is null"):
        column_to_tensor(nested, IMG, "image")


def test_non_numeric_column_is_a_type_error():
    with pytest.raises(ColumnTypeError, match=r"column 'name' has type string, expected numbers"):
        column_to_tensor(pa.array(["a", "b"]), VEC, "name")
    with pytest.raises(ColumnTypeError, match=r"column 'tags' holds string values"):
        column_to_tensor(pa.array([["a"] * 4]), VEC, "tags")


def test_unknown_dims_take_the_rows_length_when_uniform():
    spec = TensorSpec(name="seq", dtype="float32", shape=(-1, -1))
    assert column_to_tensor(pa.array([[1.0, 2.0], [3.0, 4.0]]), spec, "seq").shape == (2, 2)
    with pytest.raises(ShapeMismatchError, match=r"row 1 has 1 values, expected 2"):
        column_to_tensor(pa.array([[1.0, 2.0], [3.0]]), spec, "seq")


def test_empty_batch():
    out = column_to_tensor(pa.array([], type=pa.list_(pa.float32())), VEC, "features")
    assert out.shape == (0, 4)


def test_tensor_bytes_is_the_binary_layout_the_scorer_reads():
    from scoring._arrow import tensor_bytes

    x = np.random.default_rng(1).normal(size=(6, 4))
    array = pa.array(x.tolist(), type=pa.list_(pa.float64()))
    packed = tensor_bytes(array, "float32", "features")
    assert packed.type == pa.binary()
    assert packed.to_pylist() == [row.astype("<f4").tobytes() for row in x]
    np.testing.assert_array_equal(column_to_tensor(packed, VEC, "features"), x.astype(np.float32))
    # a slice, a fixed-size list and nested lists flatten in row-major order
    np.testing.assert_array_equal(column_to_tensor(tensor_bytes(array.slice(2, 3), "float32", "f"), VEC, "f"),
                                  x[2:5].astype(np.float32))  # fmt: skip
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4)
    assert tensor_bytes(fixed, "float32", "f").to_pylist() == packed.to_pylist()
    images = np.arange(3 * 6, dtype=np.float32).reshape(3, 2, 3, 1)
    nested = pa.array(images.tolist(), type=pa.list_(pa.list_(pa.list_(pa.float32()))))
    np.testing.assert_array_equal(column_to_tensor(tensor_bytes(nested, "float32", "img"), IMG, "img"), images)
    ints = tensor_bytes(pa.array([[1, 2], [3]], type=pa.list_(pa.int64())), "int16", "ids")
    assert ints.to_pylist() == [np.array([1, 2], "<i2").tobytes(), np.array([3], "<i2").tobytes()]
    assert len(tensor_bytes(array.slice(0, 0), "float32", "f")) == 0
    assert tensor_bytes(array, "bfloat16", "f").to_pylist() == packed.to_pylist()  # fed as float32


def test_tensor_bytes_refuses_nulls_and_non_lists_by_row():
    from scoring._arrow import tensor_bytes

    with pytest.raises(NullValueError, match=r"column 'f' row 41: the row is null") as err:
        tensor_bytes(pa.array([[1.0], None], type=pa.list_(pa.float32())), "float32", "f", row_offset=40)
    assert err.value.row == 41
    with pytest.raises(NullValueError, match=r"column 'f' row 1: element 1 is null"):
        tensor_bytes(pa.array([[1.0, 2.0], [3.0, None]], type=pa.list_(pa.float32())), "float32", "f")
    with pytest.raises(ColumnTypeError, match=r"column 'name' has type string"):
        tensor_bytes(pa.array(["a"]), "float32", "name")
    with pytest.raises(ColumnTypeError, match=r"column 'words' holds string values"):
        tensor_bytes(pa.array([["a"]]), "float32", "words")
