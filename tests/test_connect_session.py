"""Issue 23: telling a Spark Connect session from a classic one, and what refuses to run under Connect.

Hermetic: Connect objects are stood in for by classes whose module is under
``pyspark.sql.connect`` and whose ``sparkContext`` raises an AttributeError,
as a Connect session's ``__getattr__`` does. The real Connect client runs in
``integration/test_spark_connect.py``.
"""

import argparse
import os
import pickle

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


def test_the_job_refuses_watch_under_connect_before_any_work(tmp_path):
    from hdfs_models.cli._score import run

    args = {"watch": 5.0, "metrics_json": str(tmp_path / "m.json"), "output_table": None,
            "output_path": str(tmp_path / "o"), "mode": "error"}  # fmt: skip
    with pytest.raises(UnsupportedSparkError, match="--watch needs a classic Spark session"):
        run(_ConnectSession(), argparse.Namespace(**args))
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.json").exists()


def test_the_jobs_metrics_records_go_beside_the_output_or_under_metrics_dir(tmp_path):
    from hdfs_models.cli._score_io import Output, metrics_dir, remove_path

    class _Conf:
        def get(self, key):
            assert key == "spark.sql.warehouse.dir"
            return "file:/warehouse"

    class _Session(_ConnectSession):
        conf = _Conf()

    beside = metrics_dir(_Session(), Output(path="hdfs://nn:8020/data/out/"), None, None)
    assert beside.startswith("hdfs://nn:8020/data/.out._metrics-") and len(beside.rsplit("-", 1)[1]) == 12
    assert metrics_dir(_Session(), Output(path="hdfs://nn/o"), None, None) != metrics_dir(
        _Session(), Output(path="hdfs://nn/o"), None, None
    )  # one directory per job
    assert metrics_dir(_Session(), Output(table="db.t"), None, None).startswith("file:/warehouse/.db.t._metrics-")
    assert metrics_dir(_Session(), Output(table="t"), None, "/wh").startswith("/wh/.t._metrics-")
    chosen = metrics_dir(_Session(), Output(table="t"), str(tmp_path) + "/", "/wh")
    assert chosen.startswith(f"{tmp_path}/.t._metrics-")
    os.makedirs(f"{chosen}/scorer-1")
    remove_path(chosen)
    remove_path(chosen)  # gone already: nothing to do
    assert os.listdir(tmp_path) == []


def test_the_job_warns_naming_the_records_directory_when_they_count_fewer_rows(caplog):
    from hdfs_models.cli._score_io import gather_metrics
    from scoring._metrics import TaskRecorder

    class _Scorer:
        def metric_records(self):
            task = TaskRecorder()
            task.rows_in = task.rows_out = 30
            return [task.record(attempt_id=1)]

    with caplog.at_level("WARNING", logger="hdfs_models.cli._score_io"):
        assert gather_metrics(_Scorer(), "hdfs://nn/o/.out._metrics-1", 30)["rows"] == 30
        assert not caplog.records
        assert gather_metrics(_Scorer(), "hdfs://nn/o/.out._metrics-1", 50)["rows"] == 30
    assert "hdfs://nn/o/.out._metrics-1 count 30 rows, the output holds 50" in caplog.text


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
            self.function = function
            return ("mapInArrow", function.__self__.metrics, schema)

    _ConnectFrame.__module__ = "pyspark.sql.connect.dataframe"
    scorer = Scorer(save_dense(str(tmp_path / "2")), keep_cols=["id"])
    assert scorer.metrics()["rows"] == 0  # nothing ran: empty, as on classic
    _, accumulator, schema = scorer.transform(_ConnectFrame())
    assert accumulator is None and schema.fieldNames() == ["id", "prediction", "model_version"]
    with pytest.raises(UnsupportedSparkError, match=r"Scorer.metrics\(\) needs a classic Spark session.*metrics_dir="):
        scorer.metrics()
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    with pytest.raises(UnsupportedSparkError, match=r"scorer.transform\(df\) or scorer.udf\(\)"):
        scorer.score_partition(iter([]))
    monkeypatch.delenv("SPARK_CONNECT_MODE_ENABLED")
    # with metrics_dir, the tasks write their records there and metrics() reads them (here: two tasks, in-process)
    import pyarrow as pa

    import scoring._runner as runner_module

    side = Scorer(save_dense(str(tmp_path / "2")), keep_cols=["id"], metrics_dir=str(tmp_path / "metrics"))
    frame = _ConnectFrame()
    _, sink, _ = side.transform(frame)
    assert os.path.isdir(sink.url) and sink.url.startswith(str(tmp_path / "metrics" / "scorer-"))
    task = pickle.loads(pickle.dumps(frame.function))  # the transform's own body, as a task unpickles it
    for partition, n in ((0, 5), (1, 3)):
        monkeypatch.setattr(runner_module, "task_key", lambda p=partition: ((9, p), 40 + p))
        batch = pa.RecordBatch.from_pydict({"id": list(range(n)), "features": [[0.5] * 12] * n})
        assert sum(b.num_rows for b in task(iter([batch]))) == n
    report = side.metrics()
    assert (report["rows"], report["tasks"], report["batches"]) == (8, 2, 2)


def test_a_submitted_archive_looked_up_on_a_connect_client_names_fetch(monkeypatch):
    pyspark = require_module("pyspark", "spark")
    from hdfs_models import ModelHandle

    monkeypatch.setattr(pyspark.SparkContext, "_active_spark_context", None)  # a client: no SparkContext
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    with pytest.raises(DistributionError, match="Spark Connect client.*strategy='fetch'") as info:
        ModelHandle("submitted", alias="model").local_path()
    assert info.value.reason == "spark connect"
    with pytest.raises(DistributionError, match=r"no active session.*submitted\(alias, spark=spark\)") as info:
        ModelHandle.submitted("model")  # a client with no session to ask an executor through
    assert (info.value.reason, info.value.alias) == ("spark connect", "model")


class _OneTaskConnect(_ConnectSession):
    """A Connect session whose one-task jobs run here, as an executor whose SparkFiles root is ``root``."""

    def __init__(self, monkeypatch, root):
        import hdfs_models._distribute._handle as handle_module

        self.__dict__.update(monkeypatch=monkeypatch, root=root, module=handle_module, jobs=[])

    def range(self, *args):
        return self

    def mapInArrow(self, function, schema):
        self.jobs.append(schema)
        return _Collect(lambda: self._run(function))

    def _run(self, function):
        with self.monkeypatch.context() as patch:
            patch.setattr(self.module, "_spark_roots", lambda strategy, name: [str(self.root)])
            return [{"manifest": batch.column(0)[0].as_py()} for batch in function(iter([]))]


class _Collect:
    def __init__(self, run):
        self.collect = run


def _shipped(root, version, payload):
    from hdfs_models._manifest import MANIFEST_NAME, build_manifest

    tree = root / "model"
    (tree / "variables").mkdir(parents=True)
    (tree / "saved_model.pb").write_bytes(payload)
    (tree / "variables" / "variables.index").write_bytes(b"index")
    signatures = {"serving_default": {"inputs": {"x": {"dtype": "float32", "shape": [-1, 3]}}}}
    manifest = build_manifest(str(tree), "dense", version, signatures)
    (tree / MANIFEST_NAME).write_bytes(manifest.to_json())
    return manifest


def test_submitted_on_connect_takes_the_manifest_from_an_executor_not_the_clients_disk(tmp_path, monkeypatch):
    require_module("pyarrow", "arrow")
    import hdfs_models._distribute._handle as handle_module
    from hdfs_models import ModelHandle

    executor = tmp_path / "executor"
    manifest = _shipped(executor, 7, b"graph")
    spark = _OneTaskConnect(monkeypatch, executor)
    handle = ModelHandle.submitted("model", version=7, spark=spark)
    assert spark.jobs == ["manifest binary"]  # one task asked, at once

    def no_copy_here(strategy, name):
        raise AssertionError("the client's disk was read")

    monkeypatch.setattr(handle_module, "_spark_roots", no_copy_here)
    assert (handle.version, handle.digest) == (7, manifest.digest)
    assert handle.signatures == manifest.signatures
    handle = pickle.loads(pickle.dumps(handle))  # as a task gets it: each executor checks its own copy
    monkeypatch.setattr(handle_module, "_spark_roots", lambda strategy, name: [str(executor)])
    assert handle.local_path() == str(executor / "model")
    other = tmp_path / "other-executor"
    _shipped(other, 7, b"another graph")  # an executor given another archive under the same alias
    monkeypatch.setattr(handle_module, "_spark_roots", lambda strategy, name: [str(other)])
    with pytest.raises(DistributionError, match="Spark Connect client was sent") as info:
        handle.local_path()
    assert info.value.reason == "digest mismatch"


def test_submitted_on_connect_names_the_alias_when_no_executor_has_it(tmp_path, monkeypatch):
    require_module("pyarrow", "arrow")
    from hdfs_models import ModelHandle

    with pytest.raises(DistributionError, match=r"'model'.*ModelNotFoundError: .*not shipped.*addArtifacts") as info:
        ModelHandle.submitted("model", spark=_FailingConnect(tmp_path, monkeypatch))
    assert (info.value.reason, info.value.alias) == ("executor check failed", "model")
    _shipped(tmp_path, 3, b"graph")
    with pytest.raises(DistributionError, match="version 3, not the expected 4"):  # the executor's check, relayed
        ModelHandle.submitted("model", version=4, spark=_FailingConnect(tmp_path, monkeypatch))


class _FailingConnect(_OneTaskConnect):
    """Errors reach a Connect client as text (the executor's traceback), never as the exception."""

    def __init__(self, root, monkeypatch):
        super().__init__(monkeypatch, root)

    def _run(self, function):
        try:
            return super()._run(function)
        except Exception as exc:
            raise RuntimeError(f"[PYTHON_EXCEPTION] Traceback ...\n  File x\n{type(exc).__name__}: {exc}") from None
