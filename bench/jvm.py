"""The article's own system beside ours (issue 24): a TF-Java Spark job and the Python scorer, one run.

The seed job's input (MNIST digits tiled, Parquet of ``id`` + ``features``
array<float>[784]), the same CNN (``bench/_models.py``, random weights), the
same cores (``local[2]``), every contender a fresh process:

- ``jvm_partitions``: ``examples/jvm`` (TF-Java 1.1) with ``mapPartitions``
  in batches of 1024, the model from ``spark-submit --archives
  hdfs://…/_archives/<v>-<digest>.tar#model``, the archive that
  ``distribute(strategy="archive")`` packs (verified against the manifest);
- ``jvm_row_udf``: the same job's per-row UDF, on a slice (``--udf-rows``);
- ``python_f32``: ``python -m scoring.job --model hdfs://…`` (the Scorer,
  the node cache), as ``bench/seed_job.py`` runs it, with the job's default
  ``--read auto`` (for Parquet the Python workers read the files; ``--python-read
  spark`` feeds them through Spark's reader, as the JVM job is fed);
- ``python_bf16``: the same with ``--precision bfloat16``, only where the
  CPU has AVX512-BF16 or AMX.

Threads: the Python scorer gives each Python worker intra-op = spark.task.cpus
(1) and inter-op 1, one worker per task; the JVM job, one model per executor
JVM shared by its tasks, takes intra-op = spark.task.cpus and inter-op = task
slots (2): each concurrent task a thread of its own, the same cores in all.

Two figures per contender: ``wall`` (process start to exit: JVM, Spark and
TensorFlow start-up included) and ``job`` (the span each job reports: read,
model, score, write, count the output; start-up excluded, which is what a
3,000,000-row run's rate tends to). Ratios use ``job`` (``wall`` beside);
each is the median of ``--repeats`` rounds, contenders alternating within a
round. The JVM's classes are compared with the Python scorer's (agreement).

    python bench/jvm.py [--quick] [--rows N] [--udf-rows N] [--repeats N] [--no-bf16] [--python-read spark]

Prints the CPU, a table and, as its last line, a JSON object (also written to
``bench/results/jvm-<date>-<time>.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import seed_job  # noqa: E402  (loads bench/scoring.py by path, which puts the repository first on sys.path)

_bench = seed_job._bench
REPO = os.path.dirname(HERE)
ARTICLE = {"udf_s": 20 * 60, "map_partitions_s": 9 * 60, "rows": 3_000_000, "cores": 20}


def jvm_contender(job: Any, archive: str, data: str, out: str, mode: str) -> Callable[[], dict[str, Any]]:
    """One spark-submit of the TF-Java job on local[2] in ``mode``; returns its figures."""

    def run() -> dict[str, Any]:
        args = ["--input", "file://" + data, "--output", "file://" + out, "--mode", mode]
        done = job.submit("local[2]", archive, args, conf={"spark.driver.memory": "4g"}, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"jvm: the TF-Java job ({mode}) failed ({done.returncode}):\n{done.stderr[-3000:]}")
        summary = done.summary(mode)
        loaded = re.search(r"tf-java-job: loaded .* \(TensorFlow ([^)]+)\)", done.stderr)  # local: the driver's log
        return {"wall_s": round(done.seconds, 1), "job_s": summary["seconds"], "rows": summary["rows"],
                "threads": [summary["intra_op"], summary["inter_op"]],
                "tensorflow": loaded.group(1) if loaded else None}  # fmt: skip

    return run


def python_contender(
    base: str, data: str, out: str, env: dict[str, str], precision: str, read: str
) -> Callable[[], dict[str, Any]]:
    """``python -m scoring.job`` on local[2] (bench/seed_job.py's run) in ``precision``, ``--read read``."""

    def run() -> dict[str, Any]:
        shutil.rmtree(out, ignore_errors=True)  # the job refuses an existing output: each round writes anew
        done = seed_job.run_job(base, "file://" + data, "file://" + out, env, 1024, precision, read)
        return {"wall_s": done["wall_s"], "job_s": done["job_reported_s"], "rows": done["rows"]}

    return run


def rounds(contenders: dict[str, Callable[[], dict[str, Any]]], repeats: int) -> dict[str, Any]:
    """Each contender ``repeats`` times, alternating; the median wall and job rows/s of each."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for round_no in range(repeats):
        for name, fn in contenders.items():
            runs[name].append(fn())
            last = runs[name][-1]
            print(f"  round {round_no}: {name} {last['rows'] / last['job_s']:.0f} rows/s (job), "
                  f"{last['rows'] / last['wall_s']:.0f} (wall)", file=sys.stderr, flush=True)  # fmt: skip
    return {
        name: {
            "rows": r[0]["rows"],
            "job_rows_per_s": round(statistics.median(x["rows"] / x["job_s"] for x in r), 1),
            "wall_rows_per_s": round(statistics.median(x["rows"] / x["wall_s"] for x in r), 1),
            "runs": r,
        }
        for name, r in runs.items()
    }


def agreement(left: str, right: str) -> float:
    """The share of ids whose ``prediction`` is the same in two Parquet outputs."""
    import pyarrow.parquet as pq

    a, b = (pq.read_table(p, columns=["id", "prediction"]).to_pydict() for p in (left, right))
    theirs = dict(zip(b["id"], b["prediction"]))
    same = sum(theirs.get(i) == c for i, c in zip(a["id"], a["prediction"]))
    return round(same / max(1, len(a["id"])), 6)


def ratios(res: dict[str, Any]) -> dict[str, float]:
    """The issue's ratios, on the job span and on wall time."""
    out: dict[str, float] = {}
    for basis in ("job", "wall"):
        rate = {name: r[f"{basis}_rows_per_s"] for name, r in res.items()}
        out[f"python_f32/jvm_partitions ({basis})"] = round(rate["python_f32"] / rate["jvm_partitions"], 2)
        if "python_bf16" in rate:
            out[f"python_bf16/jvm_partitions ({basis})"] = round(rate["python_bf16"] / rate["jvm_partitions"], 2)
    out["jvm_partitions/jvm_row_udf (job)"] = round(
        res["jvm_partitions"]["job_rows_per_s"] / res["jvm_row_udf"]["job_rows_per_s"], 2
    )
    out["article: map_partitions/udf"] = round(ARTICLE["udf_s"] / ARTICLE["map_partitions_s"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--udf-rows", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument(
        "--python-read",
        default="auto",
        choices=["auto", "direct", "spark"],
        help="scoring.job --read (auto, the job's default, reads Parquet in the Python workers; "
        "spark: through Spark's reader, as the JVM job does)",
    )
    parser.add_argument("--quick", action="store_true", help="50,000 rows, a 5,000-row UDF slice, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.udf_rows, args.files, args.repeats = 50_000, 5_000, 4, 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from hdfs_models import publish
    from hdfs_models._distribute import ensure_archive
    from hdfs_models._runtime import read_cpu
    from hdfs_models._versions import resolve
    from hdfs_models.testing import MiniDFS
    from hdfs_models.testing.jvm import ensure_jvm_job

    info = _bench.machine()
    print(_bench.cpu_line(info), file=sys.stderr, flush=True)
    started = time.perf_counter()
    job = ensure_jvm_job(os.path.join(REPO, "examples", "jvm"))
    build_s = time.perf_counter() - started
    work = tempfile.mkdtemp(prefix="jvm-bench-")
    data = _bench.write_parquet(os.path.join(work, "in"), args.rows, files=args.files)
    sliced = _bench.write_parquet(os.path.join(work, "slice"), args.udf_rows, files=4)
    bf16 = read_cpu().bfloat16 and not args.no_bf16
    with MiniDFS() as dfs:
        base = f"{dfs.url}/models/{uuid.uuid4().hex}/cnn"
        version = publish(_bench.save_model("cnn", os.path.join(work, "cnn")), base).version
        archive = ensure_archive(resolve(base))
        out = {name: os.path.join(work, f"out-{name}") for name in ("jvm_partitions", "jvm_row_udf", "f32", "bf16")}
        env = dict(os.environ, **dfs.env())
        contenders = {
            "jvm_partitions": jvm_contender(job, archive, data, out["jvm_partitions"], "partitions"),
            "jvm_row_udf": jvm_contender(job, archive, sliced, out["jvm_row_udf"], "udf"),
            "python_f32": python_contender(base, data, out["f32"], env, "float32", args.python_read),
        }
        if bf16:
            contenders["python_bf16"] = python_contender(base, data, out["bf16"], env, "bfloat16", args.python_read)
        res = rounds(contenders, args.repeats)
    result = {
        "bench": "jvm",
        "date": datetime.date.today().isoformat(),
        "machine": info,
        "model": "cnn",
        "model_version": version,
        "archive": archive,
        "rows": args.rows,
        "udf_rows": args.udf_rows,
        "repeats": args.repeats,
        "quick": args.quick,
        "python_read": args.python_read,
        "jvm_build_s": round(build_s, 1),
        "contenders": res,
        "ratios": ratios(res),
        "agreement_jvm_vs_python_f32": agreement(out["jvm_partitions"], out["f32"]),
        "notes": {}
        if bf16
        else {"python_bf16": "--no-bf16" if args.no_bf16 else f"{info['cpu']} has no AVX512-BF16 or AMX"},
    }
    print(table(result))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"jvm-{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result, sort_keys=True))
    return 0


def table(result: dict[str, Any]) -> str:
    """The CPU, one line per contender, the ratios."""
    lines = [_bench.cpu_line(result["machine"]), f"{'contender':16}{'rows':>10}{'job rows/s':>12}{'wall rows/s':>13}"]
    for name, r in result["contenders"].items():
        lines.append(f"{name:16}{r['rows']:>10}{r['job_rows_per_s']:>12.0f}{r['wall_rows_per_s']:>13.0f}")
    for name, value in result["ratios"].items():
        target = " (target >= 1.0)" if name.startswith("python_f32/jvm_partitions") else ""
        lines.append(f"{name:40} {value}{target}")
    lines.append(f"classes: JVM mapPartitions = Python float32 on {result['agreement_jvm_vs_python_f32']:.2%} of rows")
    lines += [f"note {k}: {v}" for k, v in result["notes"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
