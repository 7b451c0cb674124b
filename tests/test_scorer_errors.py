"""Bad inputs: each raises a ScoringError subclass naming the column and what was expected.

Schema problems raise on the driver, in ``transform()``, before any job runs;
row problems (wrong length, nulls) raise on the executor and reach the driver
inside Spark's PythonException, message intact.
"""

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

require_module("tensorflow", "tf")
require_module("pyspark", "spark")

from hdfs_models.testing import save_dense, save_multi  # noqa: E402
from scoring import (  # noqa: E402
    ColumnTypeError,
    NullValueError,
    Scorer,
    ShapeMismatchError,
    SignatureError,
    SignatureMismatchError,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("error-models")
    return {"dense": save_dense(str(root / "1")), "multi": save_multi(str(root / "2"))}


@pytest.fixture
def df(spark):
    rows = [(i, [0.5] * 12, "x", 1.0, [[[0.5] * 12]]) for i in range(4)]
    return spark.createDataFrame(
        rows, "id long, features array<float>, name string, one double, deep array<array<array<float>>>"
    )


def test_signature_input_without_matching_column(models, df):
    scorer = Scorer(models["dense"], input_cols={"features": "pixels"})
    with pytest.raises(
        SignatureMismatchError,
        match=r"signature input 'features' \(float32\[-1, 12\]\) has no matching column 'pixels'; columns: \[.*'features'.*\]",
    ) as err:
        scorer.transform(df)
    assert err.value.column == "pixels" and err.value.expected == "float32[-1, 12]"
    multi = Scorer(models["multi"], returns="all")
    with pytest.raises(
        SignatureMismatchError, match=r"signature input 'extra' \(float64\[-1, 2\]\) has no matching column 'extra'"
    ):
        multi.transform(df)


def test_non_numeric_column(models, df):
    with pytest.raises(
        ColumnTypeError,
        match=r"column 'name' has type string, expected numbers, arrays of numbers or binary tensor bytes for input 'features' float32\[-1, 12\]",
    ) as err:
        Scorer(models["dense"], input_cols="name").transform(df)
    assert err.value.column == "name"


def test_scalar_and_too_deep_columns_contradict_the_shape(models, df):
    with pytest.raises(
        ShapeMismatchError,
        match=r"column 'one' \(double\) holds one value per row, expected 12 for input 'features' float32\[-1, 12\]",
    ):
        Scorer(models["dense"], input_cols="one").transform(df)
    with pytest.raises(ShapeMismatchError, match=r"column 'deep' .* is nested 3 deep, expected at most 1"):
        Scorer(models["dense"], input_cols="deep").transform(df)


def test_fixed_size_list_of_the_wrong_size_fails_before_conversion(models):
    import pyarrow as pa

    batch = pa.RecordBatch.from_arrays(
        [pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(20, np.float32)), 10)], names=["features"]
    )
    with pytest.raises(
        ShapeMismatchError,
        match=r"column 'features' \(fixed_size_list<item: float>\[10\]\) holds 10 values per row, expected 12",
    ):
        list(Scorer(models["dense"]).predict_arrow([batch]))


def test_wrong_length_row_on_the_executor(spark, models):
    rows = [(i, [0.5] * (12 if i != 5 else 11)) for i in range(8)]
    df = spark.createDataFrame(rows, "id long, features array<float>").coalesce(1)
    with pytest.raises(
        Exception,
        match=r"ShapeMismatchError: column 'features' row 5 has 11 values, expected 12 \(input 'features' float32\[-1, 12\]\)",
    ):
        Scorer(models["dense"], batch_size=3).transform(df).collect()


def test_null_row_and_null_element_on_the_executor(spark, models):
    rows = [(0, [0.5] * 12), (1, None), (2, [0.5] * 11 + [None])]
    df = spark.createDataFrame(rows, "id long, features array<float>").coalesce(1)
    with pytest.raises(Exception, match=r"NullValueError: column 'features' row 1: the row is null"):
        Scorer(models["dense"]).transform(df).collect()
    with pytest.raises(Exception, match=r"NullValueError: column 'features' row 1: element 11 is null"):
        Scorer(models["dense"]).transform(df.where("id != 1")).collect()


def test_row_errors_in_process_keep_their_type(models):
    import pyarrow as pa

    scorer = Scorer(models["dense"])
    bad_len = pa.RecordBatch.from_arrays([pa.array([[0.5] * 12, [0.5] * 13])], names=["features"])
    with pytest.raises(ShapeMismatchError, match=r"row 1 has 13 values, expected 12") as err:
        list(scorer.predict_arrow([bad_len]))
    assert (err.value.column, err.value.row) == ("features", 1)
    null = pa.RecordBatch.from_arrays([pa.array([[0.5] * 12, None], pa.list_(pa.float32()))], names=["features"])
    with pytest.raises(NullValueError, match=r"column 'features' row 1: the row is null"):
        list(scorer.predict_arrow([null]))


def test_score_partition_reports_the_row_position(models):
    from pyspark.sql import Row

    rows = [Row(id=i, features=[0.5] * 12) for i in range(7)] + [Row(id=7, features=[0.5] * 2)]
    with pytest.raises(ShapeMismatchError, match=r"column 'features' row 7 has 2 values, expected 12"):
        list(Scorer(models["dense"], batch_size=3).score_partition(rows))
    with pytest.raises(NullValueError, match=r"column 'features' row 3: the row is null"):
        list(
            Scorer(models["dense"], batch_size=3).score_partition(
                [Row(features=[0.5] * 12)] * 3 + [Row(features=None)] * 3
            )
        )


def test_bad_options(models):
    with pytest.raises(SignatureError, match=r"has no signature 'nope'; signatures: \['serving_default'\]"):
        Scorer(models["dense"], signature="nope")
    with pytest.raises(
        SignatureError, match=r"outputs \['label', 'probabilities', 'score'\]: choose one with output_tensor="
    ):
        Scorer(models["multi"], returns="probabilities")
    with pytest.raises(
        SignatureError, match=r"input_cols maps \['pixels'\], which signature 'serving_default' does not have"
    ):
        Scorer(models["dense"], input_cols={"pixels": "features"}).plan([])
    with pytest.raises(
        SignatureMismatchError,
        match=r"input_cols='img' names one column but signature 'serving_default' has inputs \['extra', 'image'\]",
    ):
        Scorer(models["multi"], input_cols="img", returns="all").plan([])
    with pytest.raises(
        SignatureError, match=r"output 'score' float32\[-1\] holds one float32 per row, not class scores"
    ):
        Scorer(models["multi"], output_tensor="score")
    assert (
        Scorer(models["multi"], output_tensor="label").output_columns[0].kind == "class"
    )  # int64[-1]: classes already
    with pytest.raises(ValueError, match=r"returns must be one of \('class', 'probabilities', 'all'\), not 'logits'"):
        Scorer(models["dense"], returns="logits")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Scorer(models["dense"], batch_size=0)


def test_duplicate_and_missing_output_columns(models, df):
    with pytest.raises(SignatureMismatchError, match=r"output columns \['id'\] appear twice"):
        Scorer(models["dense"], keep_cols=["id"], prediction_col="id").transform(df)
    with pytest.raises(SignatureMismatchError, match=r"keep column 'key' is not in the data"):
        Scorer(models["dense"], keep_cols=["key"]).transform(df)
