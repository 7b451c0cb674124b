"""Pure planning: which column feeds which signature input (no TensorFlow, no Spark)."""

import pytest

from scoring import SignatureError, SignatureMismatchError
from scoring._plan import ColumnType, OutputColumn, Request, Signature, TensorSpec, make_plan


def _signature(*inputs: str) -> Signature:
    return Signature(
        name="serving_default",
        method_name="tensorflow/serving/predict",
        inputs=tuple(TensorSpec(name=n, dtype="float32", shape=(-1, 12)) for n in inputs),
        outputs=(TensorSpec(name="output_0", dtype="float32", shape=(-1, 5)),),
    )


KERAS = _signature("keras_tensor")  # what a Keras export names a lone input
OUT = (OutputColumn("prediction", "output_0", "class", "int32"),)
ID = ColumnType("id", "bigint", "numeric")
FEATURE = ColumnType("feature", "array<float>", "numeric", 1, (None,))
OTHER = ColumnType("other", "array<float>", "numeric", 1, (None,))


def _inputs(plan):
    return [(spec.name, column) for spec, column in plan.inputs]


def test_lone_input_takes_the_only_column_outside_keep_cols():
    plan = make_plan(KERAS, [ID, FEATURE], None, OUT, keep_cols=("id",))
    assert _inputs(plan) == [("keras_tensor", "feature")]
    assert plan.keep_cols == ("id",)
    request = Request(KERAS, None, "class", OUT, ("id",))
    assert request.needed_columns(["id", "feature"]) == ["id", "feature"]
    assert _inputs(request.plan([FEATURE, ID])) == [("keras_tensor", "feature")]


def test_several_candidate_columns_are_an_error_naming_them():
    with pytest.raises(
        SignatureMismatchError,
        match=r"signature input 'keras_tensor' \(float32\[-1, 12\]\) has no column of its name and 2 "
        r"columns could feed it: \['feature', 'other'\]; pick one with input_cols",
    ) as err:
        make_plan(KERAS, [ID, FEATURE, OTHER], None, OUT, keep_cols=("id",))
    assert (err.value.column, err.value.reason) == ("keras_tensor", "ambiguous column")
    assert err.value.expected == "float32[-1, 12]"
    with pytest.raises(SignatureMismatchError, match=r"could feed it: \['feature', 'id'\]"):
        make_plan(KERAS, [ID, FEATURE], None, OUT)  # id is a candidate unless kept


def test_a_column_named_like_the_input_wins_over_other_columns():
    plan = make_plan(_signature("feature"), [ID, FEATURE, OTHER], None, OUT)
    assert _inputs(plan) == [("feature", "feature")]


def test_explicit_input_cols_are_taken_as_given():
    assert _inputs(make_plan(KERAS, [ID, FEATURE, OTHER], "other", OUT)) == [("keras_tensor", "other")]
    mapped = make_plan(KERAS, [FEATURE, OTHER], {"keras_tensor": "feature"}, OUT)
    assert _inputs(mapped) == [("keras_tensor", "feature")]
    with pytest.raises(SignatureError, match=r"input_cols maps \['x'\], which signature 'serving_default'"):
        make_plan(KERAS, [FEATURE], {"x": "feature"}, OUT)


def test_no_candidate_or_several_inputs_still_need_a_matching_column():
    no_column = r"input 'keras_tensor' .* has no matching column 'keras_tensor'; columns: \['id'\]"
    with pytest.raises(SignatureMismatchError, match=no_column):
        make_plan(KERAS, [ID], None, OUT, keep_cols=("id",))
    with pytest.raises(SignatureMismatchError, match=r"signature input 'a' .* has no matching column 'a'"):
        make_plan(_signature("a", "b"), [FEATURE, OTHER], None, OUT)
