"""The production job at full size: 3,000,000 MNIST rows, Parquet → Parquet.

The reference CNN (random weights: speed does not depend on training) is
published to a MiniDFS started here; the job is ``python -m scoring.job``
in a fresh process on ``local[2]``, timed from process start to exit — Spark
start-up, fetching the model from HDFS into the node cache, TensorFlow start-up
and model load included. The same input is then scored on a slice by a plain
per-row Python UDF, and that rate is the comparison.

The 5,000 real digits are replicated to ``--rows``. Generating the input is
not timed.

    python bench/seed_job.py            # 3,000,000 rows (about 10-15 minutes on 2 cores)
    python bench/seed_job.py --quick    # 200,000 rows, about 2 minutes
    python bench/seed_job.py --precision bfloat16   # the job with --precision bfloat16 (target 10,000 rows/s)
    python bench/seed_job.py --read spark           # one mode only (default: direct, then spark)

``--read direct,spark`` (the default) runs the job once with each of its ``--read`` modes
(issue 21: the Python workers read the Parquet row groups themselves, or Spark's reader feeds
them), over the same input, and reports both and their ratio; the outputs must hold the same
rows.

Prints a table and, as its last line, a JSON object (also written to
bench/results/seed_job-<date>.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_sibling(name: str, filename: str) -> Any:
    # bench/scoring.py would shadow the `scoring` package if bench/ were on sys.path.
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, filename))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _load_sibling("_bench_scoring", "scoring.py")
machine, spark_jobs, write_parquet, save_model = (
    _bench.machine,
    _bench.spark_jobs,
    _bench.write_parquet,
    _bench.save_model,
)

REFERENCE_ROWS_PER_S = 5_500  # the production job: 3M rows in 9 min on 20 cores
TARGET_ROWS_PER_S = {"float32": 6_000, "bfloat16": 10_000, "auto": 10_000}


def run_job(
    base: str, data: str, out: str, env: dict[str, str], batch: int, precision: str = "float32", read: str = "direct"
) -> dict[str, Any]:
    """Run scoring.job in a new process; wall time covers everything from exec to exit."""
    cmd = [
        sys.executable,
        "-m",
        "scoring.job",
        "--master",
        "local[2]",
        "--model",
        base,
        "--input-path",
        data,
        "--output-path",
        out,
        "--features",
        "features",
        "--keep",
        "id",
        "--batch-size",
        str(batch),
        "--precision",
        precision,
        "--read",
        read,
        "--json",
        "--conf",
        "spark.driver.memory=4g",
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"seed_job: scoring.job failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(wall, 1),
        "rows": summary["rows"],
        "job_reported_s": summary["seconds"],
        "rows_per_s": round(summary["rows"] / wall, 1),
        "version": summary["version"],
        "read": read,
    }


def _same_rows(a: str, b: str) -> None:
    """The two jobs' outputs hold the same (id, prediction, model_version) rows."""
    import pyarrow.dataset as ds

    def rows(path: str) -> Any:
        table = ds.dataset(path, format="parquet").to_table()
        return table.sort_by([("id", "ascending")])

    left, right = rows(a), rows(b)
    if left.num_rows != right.num_rows or not left.select(right.column_names).equals(right):
        raise SystemExit(f"seed_job: --read direct and --read spark wrote different rows ({a}, {b})")


def run_row_udf(model_dir: str, data: str, rows: int, work: str) -> dict[str, Any]:
    """A per-row Python UDF over the first ``rows`` rows, in this process's Spark (local[2])."""
    from hdfs_models.testing import spark_session, stop_spark

    spark = spark_session("local[2]", {"spark.ui.showConsoleProgress": "false"})
    try:
        job = spark_jobs(spark, model_dir, data, os.path.join(work, "row_udf_out"), 1024, 1)["row_udf"]
        df = spark.read.parquet(data).limit(rows).repartition(2).cache()
        df.count()
        job(df.limit(64))  # warm the two workers: model loaded once each, as in a long job
        started = time.perf_counter()
        job(df)
        seconds = time.perf_counter() - started
    finally:
        stop_spark()
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--udf-rows", type=int, default=3_000)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="200,000 rows, a 600-row UDF slice")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16", "auto"],
        help="scoring.job --precision (bfloat16 target: 10,000 rows/s)",
    )
    parser.add_argument("--read", default="direct,spark", help="the job's --read modes to run, comma-separated")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.read.split(",") if m.strip()]
    if not modes or set(modes) - {"direct", "spark"}:
        parser.error(f"--read takes direct and/or spark, got {args.read!r}")
    if args.quick:
        args.rows, args.udf_rows, args.files = 200_000, 600, 8
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from hdfs_models import publish
    from hdfs_models.testing import MiniDFS

    info = machine()
    work = tempfile.mkdtemp(prefix="seed-job-")
    with MiniDFS() as dfs:
        model_dir = save_model("cnn", os.path.join(work, "cnn"))
        base = f"{dfs.url}/models/cnn"
        version = publish(model_dir, base).version
        started = time.perf_counter()
        data = write_parquet(os.path.join(work, "in"), args.rows, files=args.files)
        gen_s = time.perf_counter() - started
        print(f"input: {args.rows} rows in {args.files} Parquet files ({gen_s:.0f}s, not timed)", file=sys.stderr)
        env = dict(os.environ, **dfs.env())
        # HADOOP_CONF_DIR makes bare paths resolve on HDFS: the Parquet lives on local disk.
        jobs = {}
        for mode in modes:
            out = os.path.join(work, f"out-{mode}")
            jobs[mode] = run_job(base, "file://" + data, "file://" + out, env, args.batch_size, args.precision, mode)
            assert jobs[mode]["rows"] == args.rows, jobs[mode]
            print(f"scoring.job --read {mode}: {json.dumps(jobs[mode])}", file=sys.stderr, flush=True)
        if len(jobs) == 2:
            _same_rows(os.path.join(work, "out-direct"), os.path.join(work, "out-spark"))
    job = jobs[modes[0]]
    udf = run_row_udf(model_dir, data, args.udf_rows, work)

    target = TARGET_ROWS_PER_S[args.precision]
    result = {
        "bench": "seed_job",
        "date": datetime.date.today().isoformat(),
        "machine": info,
        "model": "cnn",
        "model_version": version,
        "rows": args.rows,
        "quick": args.quick,
        "precision": args.precision,
        "job": job,
        "jobs": jobs,
        "direct_vs_spark": round(jobs["direct"]["rows_per_s"] / jobs["spark"]["rows_per_s"], 3)
        if len(jobs) == 2
        else None,
        "row_udf": udf,
        "job_vs_row_udf": round(job["rows_per_s"] / udf["rows_per_s"], 1),
        "job_vs_reference_20_cores": round(job["rows_per_s"] / REFERENCE_ROWS_PER_S, 2),
        "target_rows_per_s": target,
        "meets_target": job["rows_per_s"] >= target,
    }
    print(f"{'contender':<28}{'rows':>10}{'seconds':>10}{'rows/s':>10}")
    for mode, run in jobs.items():
        label = f"job --read {mode} (startup)"
        print(f"{label:<28}{run['rows']:>10}{run['wall_s']:>10.1f}{run['rows_per_s']:>10.0f}")
    print(f"{'per-row UDF (slice)':<28}{udf['rows']:>10}{udf['seconds']:>10.1f}{udf['rows_per_s']:>10.0f}")
    print(
        f"job / row UDF = {result['job_vs_row_udf']}x; job / production reference (5,500 rows/s on 20 cores) "
        f"= {result['job_vs_reference_20_cores']}x; target {target} rows/s on 2 cores ({args.precision})"
    )
    if result["direct_vs_spark"] is not None:
        print(f"job --read direct / --read spark = {result['direct_vs_spark']}x (same rows in both outputs)")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"seed_job-{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
