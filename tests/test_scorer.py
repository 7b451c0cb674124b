"""Scorer on local[2]: every face predicts exactly what TensorFlow predicts in-process."""

import os

import numpy as np
import pytest

from hdfs_models.testing.pytest_plugin import require_module

require_module("tensorflow", "tf")
require_module("pyspark", "spark")

from hdfs_models.testing import predict_in_process, save_dense, save_multi  # noqa: E402
from scoring import Scorer  # noqa: E402

N = 300


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorer-models")
    return {"dense": save_dense(str(root / "7")), "multi": save_multi(str(root / "multi"))}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    return {
        "features": rng.normal(size=(N, 12)).astype(np.float32),
        "image": rng.normal(size=(N, 2, 3, 1)).astype(np.float32),
        "extra": rng.normal(size=(N, 2)),
    }


@pytest.fixture(scope="module")
def expected(models, data):
    dense = predict_in_process(models["dense"], features=data["features"])
    multi = predict_in_process(models["multi"], image=data["image"], extra=data["extra"])
    return {"dense": dense["probabilities"], "multi": multi}


@pytest.fixture
def df(spark, data):
    rows = [
        (i, data["features"][i].tolist(), data["image"][i].tolist(), data["extra"][i].tolist(),
         data["features"][i].astype("<f4").tobytes())
        for i in range(N)
    ]  # fmt: skip
    schema = "id long, features array<float>, img array<array<array<float>>>, extra array<double>, raw binary"
    return spark.createDataFrame(rows, schema).repartition(3)


def _by_id(rows, field):
    return np.array([getattr(r, field) for r in sorted(rows, key=lambda r: r.id)])


def test_transform_probabilities_and_classes(models, df, expected):
    scorer = Scorer(models["dense"], keep_cols=["id"], returns="probabilities", batch_size=64)
    result = scorer.transform(df)
    assert result.schema.simpleString() == "struct<id:bigint,prediction:array<float>,model_version:int>"
    rows = result.collect()
    assert len(rows) == N and {r.model_version for r in rows} == {7}
    np.testing.assert_allclose(_by_id(rows, "prediction"), expected["dense"], rtol=0, atol=1e-6)
    classes = Scorer(models["dense"], keep_cols=["id"]).transform(df).collect()
    assert (_by_id(classes, "prediction") == expected["dense"].argmax(axis=1)).all()


def test_transform_binary_tensor_bytes(models, df, expected):
    scorer = Scorer(models["dense"], input_cols="raw", keep_cols=["id"], version_col=None)
    rows = scorer.transform(df).collect()
    assert rows[0].__fields__ == ["id", "prediction"]
    assert (_by_id(rows, "prediction") == expected["dense"].argmax(axis=1)).all()


def test_pack_tensors_then_score_equals_scoring_the_arrays(models, df, expected, tmp_path):
    from scoring import ColumnTypeError, pack_tensors

    packed = pack_tensors(df.select("id", "features", "img", "extra"), ["features", "img"])
    assert packed.schema.simpleString() == "struct<id:bigint,features:binary,img:binary,extra:array<double>>"
    packed.write.parquet(str(tmp_path / "packed"))
    stored = df.sparkSession.read.parquet(str(tmp_path / "packed"))
    rows = sorted(stored.collect(), key=lambda r: r.id)
    assert len(rows) == N and bytes(rows[5].features) == bytes(df.filter("id = 5").first().raw)
    scores = Scorer(models["dense"], keep_cols=["id"], returns="probabilities").transform(stored).collect()
    np.testing.assert_allclose(_by_id(scores, "prediction"), expected["dense"], rtol=0, atol=1e-6)
    multi = Scorer(models["multi"], input_cols={"image": "img"}, returns="all", keep_cols=["id"]).transform(stored)
    np.testing.assert_allclose(_by_id(multi.collect(), "score"), expected["multi"]["score"].reshape(-1), atol=1e-5)
    with pytest.raises(ColumnTypeError, match=r"column 'id' has type bigint, expected an array of numbers"):
        pack_tensors(df, "id")
    with pytest.raises(ColumnTypeError, match=r"no column 'nope' to pack; the columns are id, features"):
        pack_tensors(df, "nope")
    with pytest.raises(ValueError, match=r"dtype 'complex64' is not one of"):
        pack_tensors(df, "features", dtype="complex64")
    holes = df.sparkSession.createDataFrame([(1, [1.0]), (2, None)], "id long, v array<float>").coalesce(1)
    with pytest.raises(Exception, match=r"NullValueError: column 'v' row 1: the row is null"):
        pack_tensors(holes, "v").collect()


def test_transform_several_inputs_nested_arrays_all_outputs(models, df, expected):
    scorer = Scorer(models["multi"], input_cols={"image": "img"}, returns="all", keep_cols=["id"])
    result = scorer.transform(df)
    assert result.schema.simpleString() == (
        "struct<id:bigint,label:bigint,probabilities:array<float>,score:float,model_version:int>"
    )
    rows = result.collect()
    want = expected["multi"]
    assert (_by_id(rows, "label") == want["label"]).all()
    np.testing.assert_allclose(_by_id(rows, "probabilities"), want["probabilities"], atol=1e-6)
    np.testing.assert_allclose(_by_id(rows, "score"), want["score"], atol=1e-6)
    assert {r.model_version for r in rows} == {None}  # "multi" is not an integer directory name


def test_score_partition_on_rdd(models, df, expected):
    scorer = Scorer(models["dense"], keep_cols=["id"], returns="probabilities", batch_size=50)
    rows = df.select("id", "features").rdd.mapPartitions(scorer.score_partition).collect()
    assert len(rows) == N and rows[0].__fields__ == ["id", "prediction", "model_version"]
    np.testing.assert_allclose(_by_id(rows, "prediction"), expected["dense"], atol=1e-6)


def test_score_partition_accepts_ml_vectors(spark, models, data, expected):
    from pyspark.ml.linalg import Vectors

    rdd = spark.sparkContext.parallelize(
        [{"id": i, "features": Vectors.dense(data["features"][i].tolist())} for i in range(N)], 2
    )
    rows = rdd.mapPartitions(Scorer(models["dense"], keep_cols=["id"]).score_partition).collect()
    assert (_by_id(rows, "prediction") == expected["dense"].argmax(axis=1)).all()


def test_udf_column_function(models, df, expected):
    from pyspark.sql.functions import col

    probs = Scorer(models["dense"], returns="probabilities").udf()
    classes = Scorer(models["dense"]).udf()
    rows = df.withColumn("p", probs(col("features"))).withColumn("c", classes("features")).collect()
    np.testing.assert_allclose(_by_id(rows, "p"), expected["dense"], atol=1e-6)
    assert (_by_id(rows, "c") == expected["dense"].argmax(axis=1)).all()


def test_udf_several_inputs_returns_a_struct(models, df, expected):
    from pyspark.sql.functions import col

    scorer = Scorer(models["multi"], returns="all")
    assert scorer.signature.input_names == ["extra", "image"]
    rows = df.withColumn("r", scorer.udf()(col("extra"), col("img"))).select("id", "r.*").collect()
    assert (_by_id(rows, "label") == expected["multi"]["label"]).all()
    np.testing.assert_allclose(_by_id(rows, "score"), expected["multi"]["score"], atol=1e-6)


def test_handle_version_tags_the_rows(models, df):
    class Handle:
        version, digest = 12, "d1g3st"

        def local_path(self):
            return models["dense"]

    rows = Scorer(Handle(), keep_cols=["id"]).transform(df).collect()
    assert {r.model_version for r in rows} == {12}


def test_predict_arrow_in_process_matches(models, data, expected):
    import pyarrow as pa

    features = pa.FixedSizeListArray.from_arrays(pa.array(data["features"].ravel()), 12)
    batch = pa.RecordBatch.from_arrays([pa.array(np.arange(N)), features], names=["id", "features"])
    scorer = Scorer(models["dense"], keep_cols=["id"])
    out = pa.Table.from_batches(list(scorer.predict_arrow([batch.slice(0, 100), batch.slice(100)])))
    assert out.column("prediction").to_pylist() == expected["dense"].argmax(axis=1).tolist()
    assert os.path.basename(models["dense"]) == "7"


def test_lone_input_fed_from_the_only_column_outside_keep_cols(spark, tmp_path, data):
    """A Keras-style input name (``keras_tensor``) needs no input_cols over ``id``, ``feature``."""
    from scoring import SignatureMismatchError

    path = save_dense(str(tmp_path / "4"), input_name="keras_tensor")
    want = predict_in_process(path, keras_tensor=data["features"][:40])["probabilities"]
    df = spark.createDataFrame([(i, data["features"][i].tolist()) for i in range(40)], "id long, feature array<float>")
    scorer = Scorer(path, keep_cols=("id",), returns="probabilities")
    np.testing.assert_allclose(_by_id(scorer.transform(df).collect(), "prediction"), want, atol=1e-6)
    rows = df.rdd.mapPartitions(scorer.score_partition).collect()
    np.testing.assert_allclose(_by_id(rows, "prediction"), want, atol=1e-6)
    with pytest.raises(SignatureMismatchError, match=r"2 columns could feed it: \['feature', 'id'\]"):
        Scorer(path).transform(df)


def test_options_are_keyword_only_and_a_built_scorer_is_immutable(models):
    with pytest.raises(TypeError, match="positional"):
        Scorer(models["dense"], "features")  # type: ignore[misc]
    mapping = {"features": "f"}
    scorer = Scorer(models["dense"], input_cols=mapping, batch_size=8)
    mapping["features"] = "other"  # the caller's dict is not the scorer's
    assert scorer.input_cols == {"features": "f"}
    with pytest.raises(AttributeError, match="immutable once built: 'batch_size'"):
        scorer.batch_size = 16
    assert scorer.batch_size == 8
