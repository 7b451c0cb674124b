"""Scoring metrics: task records, retried attempts counted once, the report."""

import itertools
import json
import logging
import os
import pickle

import pytest

from hdfs_models import CacheStats
from hdfs_models.testing.pytest_plugin import require_module
from scoring._metrics import STAGES, MetricsParam, SideOutput, TaskRecorder, summarize, task_key
from scoring.errors import ScoringError


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


# -- the side output (Spark Connect: no accumulators) -------------------------------------


def test_side_output_counts_each_partition_once_the_highest_attempt_wins(tmp_path):
    side = pickle.loads(pickle.dumps(SideOutput.under(str(tmp_path / "metrics"))))  # as a task gets it
    assert side.url.startswith(str(tmp_path / "metrics") + "/scorer-") and side.records() == []  # not made yet
    side.create()
    side.add({(0, 0): record(rows=7, attempt=5)})
    side.add({(0, 1): record(rows=3, attempt=6)})
    side.add({(0, 0): record(rows=8, attempt=9)})  # the retry (or a speculative copy) of partition 0
    side.add({(0, 0): record(rows=1, attempt=2)})  # a straggler of an older attempt, finishing late
    side.add({(4, 0): record(rows=8, attempt=12)})  # a second action: a new stage, counted again
    names = sorted(os.listdir(side.url))
    assert names == ["0-0-2.json", "0-0-5.json", "0-0-9.json", "0-1-6.json", "4-0-12.json"]  # no temp file left
    records = side.records()
    assert sorted((r["attempt_id"], r["rows_out"]) for r in records) == [(6, 3), (9, 8), (12, 8)]
    assert summarize(records)["rows"] == 19 and summarize(records)["tasks"] == 3


def test_side_output_ignores_a_record_still_being_written(tmp_path):
    side = SideOutput(str(tmp_path))
    side.add({(1, 0): record(rows=4, attempt=3)})
    (tmp_path / ".1-1-4.json.0123abcd.tmp").write_text('{"rows_in": 5, "rows_o')  # a task mid-write (or dead)
    (tmp_path / "_SUCCESS").write_text("")  # not a record either
    assert [r["rows_out"] for r in side.records()] == [4]


def test_a_record_is_renamed_into_place_or_not_written_at_all(tmp_path, monkeypatch):
    import scoring._metrics as metrics

    def failing_rename(fs, src, dst):
        raise OSError(5, "Input/output error", dst)

    monkeypatch.setattr(metrics, "store_rename_noreplace", failing_rename)
    side = SideOutput(str(tmp_path))
    with pytest.raises(ScoringError, match=r"1-2-7\.json: .*Input/output error.*share") as info:
        side.add({(1, 2): record(attempt=7)})
    assert info.value.path == f"{tmp_path}/1-2-7.json" and info.value.reason == "metrics record not written"
    assert side.records() == []  # the temp file is never taken for a record


def test_a_directory_the_task_does_not_see_fails_the_task_naming_the_file(tmp_path):
    side = SideOutput(str(tmp_path / "never-created"))  # the driver made it on another machine
    with pytest.raises(ScoringError, match="never-created/0-0-1.json.*driver and every executor share"):
        side.add({(0, 0): record(attempt=1)})


def test_a_corrupt_record_is_skipped_with_a_warning_naming_it(tmp_path, caplog):
    side = SideOutput(str(tmp_path))
    side.add({(2, 0): record(rows=6, attempt=1)})
    (tmp_path / "2-1-2.json").write_text('{"rows_in": 5, "rows_o')  # torn by hand: never by a task
    (tmp_path / "2-2-3.json").write_text(json.dumps({"rows_out": 5}))  # not a task record
    with caplog.at_level(logging.WARNING, logger="scoring._metrics"):
        records = side.records()
    assert [r["rows_out"] for r in records] == [6]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert f"{tmp_path}/2-1-2.json skipped" in warned and f"{tmp_path}/2-2-3.json skipped" in warned
    assert "missing ['batches'," in warned


def test_an_unlistable_directory_raises_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ScoringError, match="cannot list the metrics records in .*file") as info:
        SideOutput(str(tmp_path / "file")).records()
    assert info.value.reason == "metrics records unreadable"


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
    # the side output (what Spark Connect uses) gives the accumulator's figures for the same action
    side = Scorer(model, keep_cols=("id",), batch_size=64, metrics_dir=str(tmp_path / "metrics"))
    assert side.transform(df).count() == 300
    counts = ("rows", "rows_in", "rows_out", "batches", "tasks", "versions", "cache")
    assert {k: side.metrics()[k] for k in counts} == {k: report[k] for k in counts}
    assert len(os.listdir(side._metrics.url)) == 3  # one record per partition
    assert scorer.description == f"hdfs-models score {model} version 5"
