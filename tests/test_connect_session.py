"""Issue 23: telling a Spark Connect session from a classic one, and what refuses to run under Connect.

Hermetic: Connect objects are stood in for by classes whose module is under
``pyspark.sql.connect`` and whose ``sparkContext`` raises an AttributeError,
as a Connect session's ``__getattr__`` does. The real Connect client runs in
``integration/test_spark_connect.py``.
"""

import argparse

import pytest

from hdfs_models import distribute
from hdfs_models._runtime import classic_only, connect_client, describe_jobs, is_connect, spark_context
from hdfs_models.errors import DistributionError, UnsupportedSparkError
from hdfs_models.testing.pytest_plugin import require_module


class _ConnectSession:
    def __getattr__(self, name):
        raise AttributeError(f"[JVM_ATTRIBUTE_NOT_SUPPORTED] Attribute `{name}` is not supported in Spark Connect")


_ConnectSession.__module__ = "pyspark.sql.connect.session"


class _ConnectSubclass(_ConnectSession):  # a user's wrapper class keeps the Connect ancestry
    pass


class _Context:
    def __init__(self):
        self.descriptions = []

    def setJobDescription(self, text):
        self.descriptions.append(text)


class _ClassicSession:
    sparkContext = _Context()


def test_connect_is_told_by_class_not_by_a_getattr_default():
    session = _ConnectSession()
    assert getattr(session, "sparkContext", session) is session  # what the old code fell for
    assert is_connect(session) and is_connect(_ConnectSubclass())
    assert not is_connect(_ClassicSession()) and not is_connect(object())


def test_spark_context_of_classic_objects_and_the_error_under_connect():
    classic = _ClassicSession()
    assert spark_context(classic, "x", "y") is classic.sparkContext
    assert spark_context(classic.sparkContext, "x", "y") is classic.sparkContext
    with pytest.raises(UnsupportedSparkError, match="distribute needs a classic Spark session.*use fetch") as info:
        spark_context(_ConnectSession(), "distribute", "use fetch")
    assert (info.value.reason, info.value.found, info.value.needed) == ("spark connect", "connect", "classic")


def test_job_descriptions_are_set_on_classic_and_skipped_under_connect():
    classic = _ClassicSession()
    classic.sparkContext.descriptions.clear()
    describe_jobs(classic, "hdfs-models score m version 1")
    describe_jobs(_ConnectSession(), "never set")  # no SparkContext to call: nothing raises
    assert classic.sparkContext.descriptions == ["hdfs-models score m version 1"]


def test_connect_client_is_the_driver_side_of_a_connect_process():
    require_module("pyspark", "spark")
    assert connect_client({"SPARK_CONNECT_MODE_ENABLED": "1"}) is True
    assert connect_client({}) is False  # the full pyspark, no Connect session started


@pytest.mark.parametrize("strategy", ["archive", "files"])
def test_archive_and_files_are_refused_under_connect_before_the_store_is_touched(strategy):
    require_module("pyspark", "spark")
    url = "hdfs://nowhere.invalid:8020/models/m"  # never resolved: the refusal comes first
    with pytest.raises(DistributionError, match=f"strategy '{strategy}' cannot ship .*strategy='fetch'") as info:
        distribute(_ConnectSession(), url, strategy=strategy)
    assert (info.value.reason, info.value.url) == ("spark connect", url)


def test_classic_only_pickles_with_its_fields():
    import pickle

    error = pickle.loads(pickle.dumps(classic_only("--watch", "use spark-submit")))
    assert isinstance(error, RuntimeError) and error.reason == "spark connect"
    assert "--watch needs a classic Spark session" in str(error) and "use spark-submit" in str(error)


def test_the_job_refuses_watch_and_metrics_json_under_connect(tmp_path):
    from hdfs_models.cli._score import run

    base = {"watch": None, "metrics_json": None, "output_table": None, "output_path": str(tmp_path / "o"),
            "mode": "error"}  # fmt: skip
    for extra, flag in (({"watch": 5.0}, "--watch"), ({"metrics_json": str(tmp_path / "m.json")}, "--metrics-json")):
        with pytest.raises(UnsupportedSparkError, match=f"{flag} needs a classic Spark session"):
            run(_ConnectSession(), argparse.Namespace(**{**base, **extra}))


def test_store_paths_check_move_and_remove_without_a_jvm(tmp_path):
    from hdfs_models.cli._score_io import _paths, path_exists, qualified

    paths = _paths(_ConnectSession())
    staging, target = tmp_path / ".out._staging-1", tmp_path / "out"
    staging.mkdir()
    (staging / "part-0.parquet").write_bytes(b"x")
    assert path_exists(_ConnectSession(), str(staging)) and not paths.exists(str(target))
    assert qualified(_ConnectSession(), "hdfs://nn:8020/x") == "hdfs://nn:8020/x"
    paths.rename(str(staging), str(target))
    assert (target / "part-0.parquet").read_bytes() == b"x" and not staging.exists()
    staging.mkdir()
    with pytest.raises(Exception, match="could not rename"):  # never over an existing target
        paths.rename(str(staging), str(target))
    paths.delete(str(target))
    assert not target.exists()


def test_scorer_metrics_raise_after_a_connect_transform_and_score_partition_on_a_client(tmp_path, monkeypatch):
    from hdfs_models.testing.pytest_plugin import require_module

    require_module("tensorflow", "tf")
    require_module("pyspark", "spark")
    from pyspark.sql.types import ArrayType, FloatType, LongType, StructField, StructType

    from hdfs_models.testing import save_dense
    from scoring import Scorer

    class _ConnectFrame:
        schema = StructType([StructField("id", LongType()), StructField("features", ArrayType(FloatType()))])
        columns = ["id", "features"]

        def mapInArrow(self, function, schema):
            return ("mapInArrow", function.__self__.metrics, schema)

    _ConnectFrame.__module__ = "pyspark.sql.connect.dataframe"
    scorer = Scorer(save_dense(str(tmp_path / "2")), keep_cols=["id"])
    assert scorer.metrics()["rows"] == 0  # nothing ran: empty, as on classic
    _, accumulator, schema = scorer.transform(_ConnectFrame())
    assert accumulator is None and schema.fieldNames() == ["id", "prediction", "model_version"]
    with pytest.raises(UnsupportedSparkError, match=r"Scorer.metrics\(\) needs a classic Spark session"):
        scorer.metrics()
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    with pytest.raises(UnsupportedSparkError, match=r"scorer.transform\(df\) or scorer.udf\(\)"):
        scorer.score_partition(iter([]))


def test_a_submitted_archive_looked_up_on_a_connect_client_names_fetch(monkeypatch):
    pyspark = require_module("pyspark", "spark")
    from hdfs_models import ModelHandle

    monkeypatch.setattr(pyspark.SparkContext, "_active_spark_context", None)  # a client: no SparkContext
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    with pytest.raises(DistributionError, match="Spark Connect client.*strategy='fetch'") as info:
        ModelHandle.submitted("model").local_path()
    assert info.value.reason == "spark connect"
