"""Scoring benchmark (bench/README.md "Scoring"): one run, same input and cores.

For each model (``cnn``, ``mlp`` — see ``bench/_models.py``) and a Parquet
input of ``id`` + ``features`` array<float>[784] (MNIST digits tiled):

- ``raw``: TensorFlow alone in this process, batch 1024, all cores; timed over
  the features already in memory (the Parquet read is reported separately);
- ``data_path``: the same Spark job (read, mapInArrow round trip, write
  Parquet) returning only the ids: Spark's own ceiling;
- ``scorer``: ``Scorer(...).transform(df)`` writing id, class, model_version;
- ``predict_batch_udf``: ``pyspark.ml.functions.predict_batch_udf``, batch 1024,
  same model, returning the class;
- ``row_udf``: a plain per-row Python UDF (model cached per worker), on a
  slice; its rate is per row, so it scales to the full input;
- ``raw_bf16`` / ``scorer_bf16``: the same with ``precision="bfloat16"``
  (oneDNN auto mixed precision), where the CPU has AVX512-BF16 or AMX;
- ``mlflow``: ``mlflow.pyfunc.spark_udf`` over the same SavedModel saved with
  MLflow's TensorFlow flavor (``bench/_mlflow.py`` says how and why so);
  needs the ``bench`` extra, else it is left out with a note.
- ``scorer_direct``: ``Scorer(...).transform_files`` over the same files: the
  Python workers read the Parquet row groups themselves with pyarrow (issue
  21), so Spark's data path is not its ceiling; ``raw`` is;
- ``data_path_direct``: that direct read with no inference (the same planned
  tasks, row groups and Arrow types, ids only out): the direct path's own
  ceiling, beside ``data_path``;
- ``data_path_binary`` / ``scorer_binary``: ``data_path`` and ``scorer`` over
  the same rows with ``features`` stored as ``binary`` tensor bytes
  (``scoring.pack_tensors``, written once before timing), which Spark hands
  to Python without its per-element array conversion. MLflow's ``spark_udf``
  cannot read that column, so ``scorer_binary/mlflow`` compares each on the
  input it can take; the ratio targets are for the array input.

Spark runs on ``local[2]`` with ``spark.sql.files.minPartitionNum`` = 4 × cores
(otherwise two input splits make one straggler idle a core); Python workers import TensorFlow in a warm-up job
before any timing, so each contender's time includes its model loads but not
the TensorFlow import; every Spark contender first runs once on the slice
(its workers load its model), so timed rounds compare steady states. Each
figure is the median of ``--repeats`` runs.
Each contender runs in Python workers of its own (:func:`pooled`): its
workers hold only its model, and TensorFlow's thread pools are what that
contender makes of them (the peers leave them at TensorFlow's defaults, the
scorer sets intra-op threads to the task's CPUs and inter-op to 1). In one
shared pool the first contender to touch TensorFlow would set them for all.
Before each timed run the contender scores the slice (untimed): Spark stops
Python workers idle for a minute, and each run must start warm.
Model load time, peak RSS and TensorFlow's (intra, inter) threads per worker
are probed from the scorer's workers after a warm-up on the slice
(``scorer_workers``), again after every contender ran (``workers_after_all``),
and from predict_batch_udf's (``peer_workers``). Contenders alternate within
each repeat round (noise is shared, not concentrated on one contender).

Sweeps: ``--threads 1,2`` and ``--read-ahead 1,0,2`` add one scorer contender
per setting (``scorer[threads=2]``, each in its own pool, so each gets its own
TensorFlow threads), printed one line per setting with its range over the
rounds. The CPU model, family/model and the flags that decide TensorFlow's
kernels are printed first and recorded in the JSON.

Usage: ``python bench/scoring.py [--quick] [--models cnn,mlp] [--rows N] [--threads 1,2] [--read-ahead 1,0]``.
Prints a table, then the JSON object as the last line (also written to
``bench/results/scoring-<UTC date>T<time>[-quick].json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# Running this file puts bench/ first on sys.path, where this module would shadow the
# `scoring` package: drop it, and load the sibling _models module by path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.dirname(HERE))


def _load_models(name: str = "_models") -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_bench{name}", os.path.join(HERE, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_models = _load_models()
MODELS, mnist_features, save_model = _models.MODELS, _models.mnist_features, _models.save_model
_peer = _load_models("_mlflow")  # imports mlflow only when the contender runs

FULL = {"cnn": 200_000, "mlp": 400_000}
QUICK = {"cnn": 30_000, "mlp": 150_000}
ROW_UDF = {"cnn": 3_000, "mlp": 10_000}
ROW_UDF_QUICK = {"cnn": 600, "mlp": 2_000}


#: The CPU flags that decide TensorFlow's kernels here (recorded with every figure).
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine() -> dict[str, Any]:
    """nproc, CPU model, family/model/stepping and the flags in :data:`CPU_FLAGS`, library versions."""
    from hdfs_models._runtime import read_cpu

    cpu = read_cpu()
    ident: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "cpu family", "model", "stepping") and key not in ident:
                    ident[key] = value.strip()
                if not line.strip():
                    break  # the first CPU is enough
    except OSError:
        pass
    import pyspark
    import tensorflow as tf

    return {"nproc": os.cpu_count(), "cpu": cpu.model or platform.processor(), "cpu_id": ident,
            "cpu_flags": [flag for flag in CPU_FLAGS if flag in cpu.flags], "python": platform.python_version(),
            "tensorflow": tf.__version__, "pyspark": pyspark.__version__,
            "load_avg_start": os.getloadavg()}  # fmt: skip


def write_parquet(path: str, rows: int, files: int = 8) -> str:
    """``files`` Parquet files holding ``rows`` rows of id + 784 MNIST floats."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(path, exist_ok=True)
    digits = mnist_features()
    per_file = -(-rows // files)
    for i, start in enumerate(range(0, rows, per_file)):
        ids = np.arange(start, min(rows, start + per_file), dtype=np.int64)
        flat = digits[ids % len(digits)].reshape(-1)
        features = pa.ListArray.from_arrays(
            pa.array(np.arange(0, (len(ids) + 1) * 784, 784, dtype=np.int32)), pa.array(flat)
        )
        table = pa.table({"id": ids, "features": features})
        pq.write_table(table, os.path.join(path, f"part-{i:03d}.parquet"), row_group_size=10_000)
    return path


def packed_copy(spark: Any, path: str, dest: str) -> str:
    """``path``'s Parquet rows with ``features`` as binary tensor bytes (``scoring.pack_tensors``)."""
    from scoring import pack_tensors

    pack_tensors(spark.read.parquet(path), "features").write.mode("overwrite").parquet(dest)
    return dest


POOL_VAR = "HDFS_MODELS_BENCH_POOL"


def pooled(spark: Any, pool: str, job: Callable[[Any], None]) -> Callable[[Any], None]:
    """``job(df)`` run in Python workers of its own (pool ``pool``).

    Spark keys its Python worker pools by the environment a UDF captures when
    it is made (``SparkContext.environment``), so each contender gets workers
    that hold only its model and its own TensorFlow thread settings.
    TensorFlow's are process-wide: in a shared worker the first contender to
    touch TensorFlow (the scorer sets intra-op threads to the task's CPUs and
    inter-op to 1) would decide them for every other contender.
    """

    def run(df: Any) -> None:
        env = spark.sparkContext.environment
        before = env.get(POOL_VAR)
        env[POOL_VAR] = pool
        try:
            job(df)
        finally:
            if before is None:
                env.pop(POOL_VAR, None)
            else:
                env[POOL_VAR] = before

    return run


def timed_rounds(
    runs: dict[str, Callable[[], Any]],
    rows: dict[str, int],
    repeats: int,
    warm: dict[str, Callable[[], Any]] | None = None,
) -> dict[str, Any]:
    """Median rows/s of each contender; contenders alternate within each round.

    ``warm[name]()`` (untimed) runs right before each of ``name``'s timed runs:
    the slice, so that its pool's workers are up and hold its model.

    Alternating spreads a shared machine's load changes over every contender
    instead of penalising whichever happened to run during a burst.
    """
    rates: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for round_no in range(repeats):
        for name, fn in runs.items():
            if warm and name in warm:
                warm[name]()  # Spark stops Python workers idle for a minute: start each run warm
            busy0, start = busy_seconds(), time.perf_counter()
            fn()
            wall, busy1 = time.perf_counter() - start, busy_seconds()
            rates[name].append(rows[name] / wall)
            if busy0 is not None and busy1 is not None:
                cpu[name].append((busy1 - busy0, wall))
            print(f"  round {round_no}: {name} {rates[name][-1]:.0f} rows/s", file=sys.stderr, flush=True)
    result: dict[str, Any] = {}
    for name, r in rates.items():
        result[name] = {"rows_per_s": statistics.median(r), "runs": [round(x, 1) for x in r], "rows": rows[name]}
        if cpu[name]:
            busy = statistics.median(b for b, _ in cpu[name])
            result[name]["cpu_us_per_row"] = round(busy / rows[name] * 1e6, 2)
            result[name]["cpu_busy_share"] = round(statistics.median(b / (w * CORES) for b, w in cpu[name]), 3)
    return result


CORES = os.cpu_count() or 1


def busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores, /proc/stat: not idle, not iowait) so far.

    Machine-wide on purpose: a Spark contender's CPU is spread over the JVM, its Python workers
    and their threads, so the run's share of the machine is what says whether a core sat idle.
    None where /proc/stat is not there (not Linux).
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def raw_tf(
    model_dir: str, data: str, batch: int, precision: str = "float32"
) -> tuple[Callable[[], Any], dict[str, float]]:
    """The raw contender's body (in ``precision``) and its setup times (parquet read, model load)."""
    import numpy as np
    import pyarrow.parquet as pq
    import tensorflow as tf

    start = time.perf_counter()
    column = pq.read_table(data, columns=["features"]).column("features").combine_chunks()
    x = column.flatten().to_numpy().reshape(-1, 784)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    from scoring._device import with_precision

    fn = with_precision(tf.saved_model.load(model_dir).signatures["serving_default"], precision)
    load_s = time.perf_counter() - start
    fn(features=tf.constant(x[:batch]))

    def run() -> None:
        for i in range(0, len(x), batch):
            np.argmax(fn(features=tf.constant(x[i : i + batch]))["probabilities"].numpy(), axis=1)

    return run, {"parquet_read_s": round(read_s, 3), "model_load_s": round(load_s, 3)}


def spark_jobs(
    spark: Any,
    model_dir: str,
    data: str,
    out: str,
    batch: int,
    read_ahead: int,
    extra: tuple[str, ...] = (),
    sweeps: dict[str, tuple[int, ...]] | None = None,
) -> dict[str, Callable[[Any], None]]:
    """Each Spark contender as ``job(df)`` writing Parquet to ``out``, each in its own worker pool.

    ``extra``: scorer_bf16, mlflow, binary. ``sweeps``: ``{"threads": (1, 2), "read_ahead": (0, 2)}``
    adds one scorer contender per value, named ``scorer[threads=2]``.
    """
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.functions import col, udf

    from scoring import Scorer

    def write(df: Any) -> None:
        df.write.mode("overwrite").parquet(out)

    def ids_only(batches: Any) -> Any:
        import pyarrow as pa

        for b in batches:
            yield pa.RecordBatch.from_arrays([b.column("id")], names=["id"])

    def make_predict_fn() -> Callable[[Any], Any]:
        import numpy as np
        import tensorflow as tf

        fn = tf.saved_model.load(model_dir).signatures["serving_default"]
        return lambda x: np.argmax(fn(features=tf.constant(x))["probabilities"].numpy(), axis=1).astype(np.int32)

    from pyspark.sql.types import IntegerType

    pb_udf = predict_batch_udf(
        make_predict_fn, return_type=IntegerType(), batch_size=batch, input_tensor_shapes=[[784]]
    )

    @udf("int")
    def row_udf(v):  # type: ignore[no-untyped-def]  # hints would make Spark guess an Arrow UDF
        import numpy as np
        import tensorflow as tf

        # A per-process cache that survives tasks (a closure's dict is re-pickled per task).
        cache = tf.__dict__.setdefault("_bench_row_models", {})
        if model_dir not in cache:
            cache[model_dir] = tf.saved_model.load(model_dir).signatures["serving_default"]
        fn = cache[model_dir]
        x = tf.constant(np.asarray(v, dtype=np.float32)[None, :])
        return int(np.argmax(fn(features=x)["probabilities"].numpy()[0]))

    scorer = Scorer(model_dir, keep_cols=["id"], batch_size=batch, read_ahead=read_ahead)
    jobs: dict[str, Callable[[Any], None]] = {
        "data_path": lambda df: write(df.mapInArrow(ids_only, "id long")),
        "scorer": lambda df: write(scorer.transform(df)),
        "predict_batch_udf": lambda df: write(df.select("id", pb_udf(col("features")).alias("prediction"))),
        "row_udf": lambda df: write(df.select("id", row_udf(col("features")).alias("prediction"))),
    }
    if "scorer_bf16" in extra:
        bf16 = Scorer(model_dir, keep_cols=["id"], batch_size=batch, read_ahead=read_ahead, precision="bfloat16")
        jobs["scorer_bf16"] = lambda df: write(bf16.transform(df))
    if "direct" in extra:  # the files read in the Python workers (issue 21), past Spark's Arrow conversion
        jobs["scorer_direct"] = lambda df: write(scorer.transform_files(spark, df.inputFiles()))
        jobs["data_path_direct"] = lambda df: write(direct_ids(spark, scorer, df))
    if "binary" in extra:
        jobs["scorer_binary"] = jobs["scorer"]  # the same Scorer: its input column is features either way
        jobs["data_path_binary"] = jobs["data_path"]
    if "mlflow" in extra:
        jobs["mlflow"] = _peer.mlflow_job(spark, _peer.save_mlflow_model(model_dir, out + "-mlflow-model"), write)
    for knob, values in (sweeps or {}).items():
        for value in values:
            options = {"read_ahead": read_ahead, knob: value}
            swept = Scorer(model_dir, keep_cols=["id"], batch_size=batch, **options)
            jobs[f"scorer[{knob}={value}]"] = functools.partial(lambda df, sc: write(sc.transform(df)), sc=swept)
    return {name: pooled(spark, name, job) for name, job in jobs.items()}


def direct_ids(spark: Any, scorer: Any, df: Any) -> Any:
    """``data_path_direct``: the scorer's direct read of ``df``'s files (its plan, tasks and Arrow
    types: :func:`scoring._files.plan_direct_read`) with no inference; each batch yields its ids."""
    from scoring._arrow import describe_spark_field
    from scoring._files import ReadCounter, default_parallelism, plan_direct_read

    source = spark.read.parquet(*df.inputFiles())
    runner = scorer._runner().planned([describe_spark_field(f) for f in source.schema.fields])
    read = plan_direct_read(source, "parquet", runner, parallelism=default_parallelism(spark))

    def ids(batches: Any) -> Any:
        import pyarrow as pa

        for batch in batches:
            for task in batch.column(0).to_pylist():
                for part in read.batches(int(task), ReadCounter()):
                    part.column("features")  # the column the scorer would hand to TensorFlow, as Arrow
                    yield pa.RecordBatch.from_arrays([part.column("id")], names=["id"])

    return spark.range(0, len(read.tasks), 1, max(1, len(read.tasks))).mapInArrow(ids, "id long")


def _on_sql_workers(spark: Any, body: Callable[[], dict[str, Any]], tasks: int = 16) -> list[dict[str, Any]]:
    """Run ``body`` in ``tasks`` short overlapping mapInArrow tasks; one dict per task.

    SQL Python UDFs (mapInArrow, pandas/Arrow UDFs) use another worker pool
    than RDD jobs, so warming up or probing must go through mapInArrow too.
    """
    import json as _json

    def run(batches: Any) -> Any:
        import pyarrow as pa

        for _ in batches:
            pass
        time.sleep(0.3)  # keep tasks overlapping so they spread over the idle workers
        yield pa.RecordBatch.from_arrays([pa.array([_json.dumps(body())])], names=["info"])

    rows = spark.range(0, tasks, 1, tasks).mapInArrow(run, "info string").collect()
    return [_json.loads(r.info) for r in rows]


def probe_workers(spark: Any, model_dir: str | None = None, pool: str | None = None) -> list[dict[str, Any]]:
    """pid, peak RSS (MiB), TensorFlow's (intra, inter) threads and, for ``model_dir``, the
    scorer's load seconds per worker of ``pool`` (:func:`pooled`; None: the default pool).

    Only the workers holding ``model_dir`` in the scorer's cache are kept (all
    of them when ``model_dir`` is None or none does). RSS is the process peak.
    """

    def probe() -> dict[str, Any]:
        import resource

        import tensorflow as tf

        from scoring._model_cache import cache_info

        info = cache_info()
        mine = [m["load_seconds"] for m in info["models"].values() if m["path"] == model_dir]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"pid": info["pid"], "loads_total": info["loads"], "peak_rss_mib": round(rss, 1),
                "model_load_s": round(mine[0], 3) if mine else None,
                "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                               tf.config.threading.get_inter_op_parallelism_threads()]}  # fmt: skip

    found: list[dict[str, Any]] = []
    if pool is None:
        found = _on_sql_workers(spark, probe)
    else:
        pooled(spark, pool, lambda _: found.extend(_on_sql_workers(spark, probe)))(None)
    workers = {d["pid"]: d for d in found}.values()
    loaded = [d for d in workers if d["model_load_s"] is not None] or list(workers)
    return sorted(loaded, key=lambda d: d["pid"])


def warm_workers(spark: Any) -> None:
    """Start the SQL Python workers and import TensorFlow in each, before any timing."""

    def imp() -> dict[str, Any]:
        import tensorflow  # noqa: F401

        return {"pid": os.getpid()}

    _on_sql_workers(spark, imp, tasks=4)


def _rows_for(spec: str | None, kind: str) -> int | None:
    """``--rows``: ``"N"`` for every model, or ``"cnn=N,mlp=M"`` (a model not named keeps its default)."""
    if not spec:
        return None
    if "=" not in spec:
        return int(spec)
    sizes = dict(item.split("=", 1) for item in spec.split(",") if item.strip())
    return int(sizes[kind]) if kind in sizes else None


def bench_model(kind: str, spark: Any, work: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every contender for one model."""
    rows = _rows_for(args.rows, kind) or (QUICK if args.quick else FULL)[kind]
    slice_rows = (ROW_UDF_QUICK if args.quick else ROW_UDF)[kind]
    model_dir = save_model(kind, os.path.join(work, kind, "1"))
    data = write_parquet(os.path.join(work, f"{kind}-data"), rows)
    small = write_parquet(os.path.join(work, f"{kind}-slice"), slice_rows, files=4)
    out = os.path.join(work, f"{kind}-out")
    result: dict[str, Any] = {"rows": rows, "row_udf_rows": slice_rows, "notes": dict(NOTES)}
    run, setup = raw_tf(model_dir, data, args.batch_size)
    jobs = spark_jobs(spark, model_dir, data, out, args.batch_size, args.read_ahead, args.extra, args.sweeps)
    df, df_small = spark.read.parquet(data), spark.read.parquet(small)
    swept = [name for name in jobs if name.startswith("scorer[")]
    inputs = dict.fromkeys(
        (
            "data_path",
            "data_path_direct",
            "scorer",
            "scorer_direct",
            "scorer_bf16",
            "predict_batch_udf",
            "mlflow",
            *swept,
        ),
        (df, df_small),
    )
    if "binary" in args.extra:
        packed = [spark.read.parquet(packed_copy(spark, path, path + "-binary")) for path in (data, small)]
        inputs.update(dict.fromkeys(("data_path_binary", "scorer_binary"), tuple(packed)))
    jobs["scorer"](df_small)  # loads the model in each worker; the probe reads load time, RSS
    result["scorer_workers"] = probe_workers(spark, model_dir, pool="scorer")
    runs: dict[str, Callable[[], Any]] = {"raw": run}
    warm: dict[str, Callable[[], Any]] = {}
    if "scorer_bf16" in args.extra:
        runs["raw_bf16"] = raw_tf(model_dir, data, args.batch_size, "bfloat16")[0]
    for name, (full, part) in inputs.items():
        if name in jobs:
            jobs[name](part)  # every contender's workers hold its model before timing
            runs[name] = functools.partial(jobs[name], full)
            warm[name] = functools.partial(jobs[name], part)
    if "mlflow" in jobs:
        result["notes"]["mlflow_direct_log"] = _peer.DIRECT_LOG_ERROR.get("error")
    result.update(timed_rounds(runs, dict.fromkeys(runs, rows), args.repeats, warm))
    result["raw"].update(setup)
    result.update(timed_rounds({"row_udf": lambda: jobs["row_udf"](df_small)}, {"row_udf": slice_rows}, 1))
    jobs["scorer"](df_small)  # its pool's workers stop after a minute idle: the probe wants them warm
    result["workers_after_all"] = probe_workers(spark, model_dir, pool="scorer")
    jobs["predict_batch_udf"](df_small)
    result["peer_workers"] = probe_workers(spark, pool="predict_batch_udf")  # TF threads left at defaults
    scorer = result["scorer"]["rows_per_s"]
    ceiling = min(result["raw"]["rows_per_s"], result["data_path"]["rows_per_s"])
    result["ratios"] = {
        "scorer/min(raw,data_path)": round(scorer / ceiling, 3),
        "scorer/predict_batch_udf": round(scorer / result["predict_batch_udf"]["rows_per_s"], 3),
        "scorer/row_udf": round(scorer / result["row_udf"]["rows_per_s"], 1),
    }
    rate = {name: result[name]["rows_per_s"] for name in runs}
    for name in swept:
        result["ratios"][f"{name}/scorer"] = round(rate[name] / scorer, 3)
    if "scorer_bf16" in rate:
        result["ratios"]["scorer_bf16/scorer"] = round(rate["scorer_bf16"] / scorer, 3)
        bf16_ceiling = min(rate["raw_bf16"], rate["data_path"])
        result["ratios"]["scorer_bf16/min(raw_bf16,data_path)"] = round(rate["scorer_bf16"] / bf16_ceiling, 3)
    if "mlflow" in rate:
        result["ratios"]["scorer/mlflow"] = round(scorer / rate["mlflow"], 3)
        if "scorer_bf16" in rate:
            result["ratios"]["scorer_bf16/mlflow"] = round(rate["scorer_bf16"] / rate["mlflow"], 3)
    if "scorer_direct" in rate:
        direct = rate["scorer_direct"]
        result["ratios"]["scorer_direct/data_path"] = round(direct / rate["data_path"], 3)
        result["ratios"]["data_path_direct/data_path"] = round(rate["data_path_direct"] / rate["data_path"], 3)
        direct_ceiling = min(rate["raw"], rate["data_path_direct"])
        result["ratios"]["scorer_direct/min(raw,data_path_direct)"] = round(direct / direct_ceiling, 3)
        result["ratios"]["scorer_direct/raw"] = round(direct / rate["raw"], 3)
        result["ratios"]["scorer_direct/scorer"] = round(direct / scorer, 3)
        result["ratios"]["scorer_direct/predict_batch_udf"] = round(direct / rate["predict_batch_udf"], 3)
        if "mlflow" in rate:
            result["ratios"]["scorer_direct/mlflow"] = round(direct / rate["mlflow"], 3)
    if "scorer_binary" in rate:
        result["ratios"]["data_path_binary/data_path"] = round(rate["data_path_binary"] / rate["data_path"], 3)
        binary_ceiling = min(result["raw"]["rows_per_s"], rate["data_path_binary"])
        result["ratios"]["scorer_binary/min(raw,data_path_binary)"] = round(rate["scorer_binary"] / binary_ceiling, 3)
        if "mlflow" in rate:
            result["ratios"]["scorer_binary/mlflow (binary vs array input)"] = round(
                rate["scorer_binary"] / rate["mlflow"], 3
            )
    result["cpu_accounting"] = cpu_accounting(result)
    return result


def cpu_accounting(result: dict[str, Any]) -> dict[str, float]:
    """Where a scorer's CPU goes beyond TensorFlow's, from the contenders' CPU per row (issue 22).

    ``scorer - data_path`` is what the scorer spends on top of the Spark job with no inference;
    ÷ ``raw`` (TensorFlow alone) near 1.0 means it is TensorFlow's own work, nothing else. The
    bound: on cores that the data path already keeps busy, no scorer on that path exceeds
    ``1 / (1/raw + 1/data_path)`` rows/s; ``scorer/bound`` says how close it comes.
    """
    cpu = {name: res["cpu_us_per_row"] for name, res in result.items()
           if isinstance(res, dict) and "cpu_us_per_row" in res}  # fmt: skip
    rate = {name: result[name]["rows_per_s"] for name in cpu}
    out: dict[str, float] = {}
    for scorer, path in (("scorer", "data_path"), ("scorer_direct", "data_path_direct"),
                         ("scorer_binary", "data_path_binary")):  # fmt: skip
        if scorer in cpu and path in cpu and "raw" in cpu:
            extra = cpu[scorer] - cpu[path]
            out[f"{scorer} - {path} (cpu us/row)"] = round(extra, 2)
            out[f"({scorer} - {path}) / raw (cpu)"] = round(extra / cpu["raw"], 3)
            bound = 1 / (1 / rate["raw"] + 1 / rate[path])
            out[f"{scorer}/bound(raw,{path})"] = round(rate[scorer] / bound, 3)
    return out


# bench/README.md: scorer/row_udf is reported only; the binary contenders have no targets of their own.
TARGETS = {
    "cnn": {
        "scorer/min(raw,data_path)": 0.95,
        "scorer/predict_batch_udf": 1.0,
        "scorer_bf16/scorer": 1.4,
        "scorer/mlflow": 1.05,
        "scorer_bf16/mlflow": 1.5,
        "scorer_direct/min(raw,data_path_direct)": 0.95,  # issue 21
    },
    "mlp": {
        "scorer/min(raw,data_path)": 0.90,
        "scorer/predict_batch_udf": 1.5,
        "scorer/mlflow": 2.0,
        "scorer_direct/scorer": 2.0,  # issue 21
        "scorer_direct/mlflow": 2.0,  # issue 21
    },
}
NOTES: dict[str, str] = {}  # why a contender was left out (filled by main)


def cpu_line(cpu: dict[str, Any]) -> str:
    """``cpu: MODEL (family F model M), N cores, flags: ...`` from :func:`machine`'s object."""
    ident = cpu.get("cpu_id", {})
    return (f"cpu: {cpu['cpu']} (family {ident.get('cpu family', '?')} model {ident.get('model', '?')}), "
            f"{cpu['nproc']} cores, flags: {' '.join(cpu.get('cpu_flags', [])) or 'none of ' + ','.join(CPU_FLAGS)}")  # fmt: skip


def table(results: dict[str, Any]) -> str:
    """A short human-readable summary."""
    lines = [
        cpu_line(results["machine"]),
        f"{'model':5} {'contender':18} {'rows/s':>10}  (cpu: the machine's busy CPU per row)",
    ]
    for kind, res in results["models"].items():
        for name in (
            "raw",
            "raw_bf16",
            "data_path",
            "data_path_direct",
            "scorer",
            "scorer_direct",
            "scorer_bf16",
            "predict_batch_udf",
            "mlflow",
            "row_udf",
            "data_path_binary",
            "scorer_binary",
        ):
            if name in res:
                cpu = res[name].get("cpu_us_per_row")
                usage = "" if cpu is None else f"  cpu {cpu:8.2f} us/row, busy {res[name]['cpu_busy_share']:.0%}"
                lines.append(f"{kind:5} {name:18} {res[name]['rows_per_s']:10.0f}{usage}")
        for name in sorted(n for n in res if n.startswith("scorer[")):
            runs = res[name]["runs"]
            lines.append(f"{kind:5} sweep {name:22} {res[name]['rows_per_s']:10.0f}  [{min(runs):.0f}-{max(runs):.0f}]")
        for ratio, value in res["ratios"].items():
            target = TARGETS[kind].get(ratio)
            mark = "" if target is None else f"  (target >= {target}: {'ok' if value >= target else 'MISS'})"
            lines.append(f"{kind:5} {ratio:44} {value}{mark}")
        for figure, value in res.get("cpu_accounting", {}).items():
            lines.append(f"{kind:5} {figure:44} {value}")
        for note, why in res.get("notes", {}).items():
            lines.append(f"{kind:5} note {note}: {str(why)[:200]}")
        for w in res["scorer_workers"]:
            lines.append(f"{kind:5} worker {w['pid']}: model load {w['model_load_s']} s, "
                         f"peak RSS {w['peak_rss_mib']} MiB")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, one repeat (~2 min)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rows", default=None,
                        help="rows per model: N for every model, or kind=N,... (default by model)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--read-ahead", default="1",
                        help="Scorer(read_ahead=...); a comma list sweeps: the first value is the scorer's, "
                             "each value adds a contender scorer[read_ahead=N]")  # fmt: skip
    parser.add_argument("--threads", default="",
                        help="comma list of Scorer(threads=...) to sweep, one contender scorer[threads=N] each "
                             "(the plain scorer keeps its rule: the task's CPUs)")  # fmt: skip
    parser.add_argument("--arrow-batch", type=int, default=None,
                        help="spark.sql.execution.arrow.maxRecordsPerBatch for every contender")  # fmt: skip
    parser.add_argument("--no-bf16", action="store_true", help="leave out raw_bf16 and scorer_bf16")
    parser.add_argument("--no-mlflow", action="store_true", help="leave out the mlflow contender")
    parser.add_argument("--no-binary", action="store_true", help="leave out data_path_binary and scorer_binary")
    parser.add_argument("--no-direct", action="store_true", help="leave out scorer_direct (Scorer.transform_files)")
    parser.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    read_aheads = tuple(int(v) for v in args.read_ahead.split(",") if v.strip())
    args.read_ahead = read_aheads[0] if read_aheads else 1
    args.sweeps = {}
    if len(read_aheads) > 1:
        args.sweeps["read_ahead"] = read_aheads
    if args.threads.strip():
        args.sweeps["threads"] = tuple(int(v) for v in args.threads.split(",") if v.strip())
    args.extra, notes = _peer.extra_contenders(args.no_bf16, args.no_mlflow)
    args.extra += () if args.no_binary else ("binary",)
    args.extra += () if args.no_direct else ("direct",)
    NOTES.update(notes)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from hdfs_models.testing.spark import spark_session, stop_spark

    results: dict[str, Any] = {"bench": "scoring", "quick": args.quick, "machine": machine(),
                               "repeats": args.repeats, "batch_size": args.batch_size,
                               "read_ahead": args.read_ahead, "arrow_batch": args.arrow_batch,
                               "models": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as work:
        # Same conf for every contender: 4 file splits per core, so a slow task at the end
        # of a stage leaves a core idle for a quarter of a task, not for half the job.
        conf = {"spark.sql.files.minPartitionNum": str(4 * (os.cpu_count() or 2))}
        if args.arrow_batch:
            conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(args.arrow_batch)
        spark = spark_session("local[2]", conf=conf)
        try:
            warm_workers(spark)
            results["tf_only_workers"] = probe_workers(spark)
            for kind in args.models.split(","):
                results["models"][kind] = bench_model(kind, spark, work, args)
        finally:
            stop_spark()
    results["machine"]["load_avg_end"] = os.getloadavg()
    print(table(results))
    os.makedirs(args.results_dir, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    name = f"scoring-{stamp}{'-quick' if args.quick else ''}.json"
    with open(os.path.join(args.results_dir, name), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
