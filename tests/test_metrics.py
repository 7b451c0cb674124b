"""Scoring metrics: task records, retried attempts counted once, the report."""

import itertools
import pickle

from hdfs_models import CacheStats
from hdfs_models.testing.pytest_plugin import require_module
from scoring._metrics import STAGES, MetricsParam, TaskRecorder, summarize, task_key


def record(
    version=3, rows=10, worker="h:1", loads=0, attempt=1, started=100.0, ended=101.0, hits=1, misses=0, nbytes=0
):
    return {
        "attempt_id": attempt,
        "worker": worker,
        "rows_in": rows,
        "rows_out": rows,
        "batches": 2,
        "seconds": ended - started,
        "started": started,
        "ended": ended,
        "stages": dict.fromkeys(STAGES, (ended - started) / len(STAGES)),
        "model_loads": loads,
        "load_seconds": 0.5 * loads,
        "cache": {"localize_calls": 1, "hits": hits, "misses": misses, "errors": 0, "bytes_downloaded": nbytes},
        "version": version,
    }


def test_a_retried_task_is_counted_once_the_later_attempt_wins():
    param = MetricsParam()
    value = param.zero({})
    value = param.addInPlace(value, {(0, 0): record(rows=7, attempt=5)})
    value = param.addInPlace(value, {(0, 1): record(rows=3, attempt=6)})
    value = param.addInPlace(value, {(0, 0): record(rows=8, attempt=9)})  # the retry
    value = param.addInPlace(value, {(0, 0): record(rows=1, attempt=2)})  # a late straggler of an old attempt
    assert {k: v["rows_out"] for k, v in value.items()} == {(0, 0): 8, (0, 1): 3}
    value = param.addInPlace(value, {(4, 0): record(rows=8, attempt=12)})  # a second action: a new stage
    assert summarize(value.values())["rows"] == 19
    assert pickle.loads(pickle.dumps(param)).addInPlace({}, value) == value


def test_recorder_times_stages_apart_from_the_task():
    ticks = itertools.count()
    rec = TaskRecorder(clock=lambda: float(next(ticks)), wall=lambda: 50.0)
    with rec.stage("localize"):
        pass  # 1 tick
    items = list(rec.timed(["a", "b"], "read"))  # 3 waits (the last finds the end), 1 tick each
    rec.add_cache(CacheStats(localize_calls=1, misses=1, bytes_downloaded=123))
    rec.rows_in = rec.rows_out = 4
    out = rec.record(attempt_id=7)
    assert items == ["a", "b"]
    assert out["stages"]["localize"] == 1.0 and out["stages"]["read"] == 3.0
    assert out["seconds"] == 9.0  # its own clock readings: start 0, end 9
    assert out["cache"] == {"localize_calls": 1, "hits": 0, "misses": 1, "errors": 0, "bytes_downloaded": 123}
    assert out["attempt_id"] == 7 and out["started"] == out["ended"] == 50.0


def test_summary_versions_loads_cache_and_rate():
    report = summarize(
        [
            record(version=3, rows=10, worker="a:1", loads=1, misses=1, hits=0, nbytes=500, started=100.0, ended=102.0),
            record(version=3, rows=5, worker="a:1", started=102.0, ended=103.0),
            record(version=4, rows=5, worker="b:2", loads=1, started=101.0, ended=104.0),
        ]
    )
    assert (report["rows"], report["rows_in"], report["tasks"], report["batches"]) == (20, 20, 3, 6)
    assert report["versions"] == {"3": 15, "4": 5}
    assert report["seconds"] == 4.0 and report["rows_per_second"] == 5.0
    assert report["task_seconds"] == 6.0 and abs(sum(report["stages"].values()) - 6.0) < 1e-9
    assert report["model_loads"] == {
        "count": 2,
        "seconds": 1.0,
        "per_worker": {"a:1": {"count": 1, "seconds": 0.5}, "b:2": {"count": 1, "seconds": 0.5}},
    }
    assert report["cache"] == {"localize_calls": 3, "hits": 2, "misses": 1, "errors": 0, "bytes_downloaded": 500}


def test_empty_summary_and_task_key():
    assert summarize([])["rows"] == 0 and summarize([])["rows_per_second"] == 0.0

    class Context:
        def stageId(self):
            return 3

        def partitionId(self):
            return 1

        def taskAttemptId(self):
            return 42

    assert task_key(lambda: Context()) == ((3, 1), 42)
    assert task_key(lambda: None) is None


# -- a real local Spark job ---------------------------------------------------------------


def test_scorer_metrics_after_an_action(spark, tmp_path):
    require_module("tensorflow", "tf")
    require_module("pyarrow", "arrow")
    from hdfs_models.testing import save_dense
    from scoring import Scorer

    model = save_dense(str(tmp_path / "5"))
    rows = [(i, [float(i % 7)] * 12) for i in range(300)]
    df = spark.createDataFrame(rows, "id long, features array<float>").repartition(3)
    scorer = Scorer(model, keep_cols=("id",), batch_size=64)
    assert scorer.metrics()["rows"] == 0  # nothing ran yet
    scored = scorer.transform(df)
    assert scored.count() == 300
    report = scorer.metrics()
    assert (report["rows"], report["rows_in"], report["tasks"]) == (300, 300, 3)
    assert report["versions"] == {"5": 300}
    assert report["batches"] >= 3 and report["rows_per_second"] > 0
    assert set(report["stages"]) == set(STAGES) and report["stages"]["inference"] > 0
    # each figure is rounded to the millisecond, so the sum may exceed by half a ms per stage
    rounding = 0.0005 * (len(STAGES) + 1)
    assert sum(report["stages"].values()) <= report["task_seconds"] * 1.0001 + rounding
    assert sum(report["stages"].values()) >= report["task_seconds"] * 0.9
    loads = report["model_loads"]
    assert 1 <= loads["count"] == sum(w["count"] for w in loads["per_worker"].values())
    assert report["cache"]["localize_calls"] == 0  # a local directory never touches the node cache
    scored.count()  # a second action scores again, and is counted again
    assert scorer.metrics()["rows"] == 600
    assert scorer.description == f"hdfs-models score {model} version 5"
