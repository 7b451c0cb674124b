"""Benchmark: node-cache localize against a plain recursive copy, on a real MiniDFS.

Starts its own MiniDFSCluster (``hdfs_models.testing.minidfs.MiniDFS``),
publishes SavedModel-shaped trees of random bytes (~26 MB, ~100 MB, ~500 MB;
``--quick``: ~8 MB and ~26 MB) and measures, per model, in one run:

- cold localize MB/s (fresh cache each repeat, resolution included) and a
  plain ``fs.get(version_dir, recursive=True)`` with the same hdfs-native
  client, interleaved; the figure is the ratio of medians (target >= 0.8);
- warm localize latency (already cached; with and without a pinned version;
  target < 50 ms);
- DataNode bytes read when 8 processes localize the same cold version at
  once, divided by the model size (target 1.0).

Prints a table, writes ``bench/results/localize-<UTC date>.json`` and prints
the JSON object as the last line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1_000_000


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _write_model(path: str, data_bytes: int) -> int:
    """A fake SavedModel (hdfs_models.testing): graph, index, one ``data_bytes`` data shard, empty assets/."""
    from hdfs_models.testing import write_fake_model

    write_fake_model(path, data_bytes=data_bytes)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cold_pair(fs: Any, url: str, path: str, scratch: str, get_first: bool) -> tuple[float, float]:
    """One cold localize and one plain recursive get, each into a fresh dir."""
    from hdfs_models import localize

    cache, copy = os.path.join(scratch, "cache"), os.path.join(scratch, "copy")

    def get() -> float:
        seconds = _timed(lambda: fs.get(path, copy, recursive=True))
        shutil.rmtree(copy)
        return seconds

    def loc() -> float:
        seconds = _timed(lambda: localize(url, cache_dir=cache, filesystem=fs).release())
        shutil.rmtree(cache)
        return seconds

    if get_first:
        t_get = get()
        return loc(), t_get
    t_loc = loc()
    return t_loc, get()


def _worker(url: str, cache: str, barrier: Any, results: Any) -> None:
    from hdfs_models import localize

    barrier.wait()
    model = localize(url, cache_dir=cache)
    results.put(model.path)


def _many_processes(cluster: Any, url: str, scratch: str, processes: int) -> int:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, os.path.join(scratch, "mp"), barrier, results)) for _ in range(processes)
    ]
    before = cluster.bytes_read()
    for proc in procs:
        proc.start()
    paths = {results.get(timeout=600) for _ in procs}
    for proc in procs:
        proc.join(60)
        if proc.exitcode != 0:
            raise RuntimeError(f"a localize process failed with exit code {proc.exitcode}")
    if len(paths) != 1:
        raise RuntimeError(f"processes got different entries: {paths}")
    shutil.rmtree(os.path.join(scratch, "mp"))
    return int(cluster.bytes_read() - before)


def _warm_ms(fs: Any, url: str, scratch: str, repeats: int) -> tuple[float, float]:
    from hdfs_models import localize, resolve

    cache = os.path.join(scratch, "warm")
    localize(url, cache_dir=cache, filesystem=fs).release()
    plain = [_timed(lambda: localize(url, cache_dir=cache, filesystem=fs).release()) for _ in range(repeats)]
    pinned = resolve(url, filesystem=fs)
    fast = [_timed(lambda: localize(url, cache_dir=cache, pinned=pinned).release()) for _ in range(repeats)]
    shutil.rmtree(cache)
    return statistics.median(plain) * 1e3, statistics.median(fast) * 1e3


def bench_model(cluster: Any, label: str, data_bytes: int, scratch: str, repeats: int) -> dict[str, Any]:
    """All figures for one model size."""
    from hdfs_models._publish import publish

    src = os.path.join(scratch, f"src-{label}")
    size = _write_model(src, data_bytes)
    url = f"{cluster.url}/bench/{label}"
    pinned = publish(src, url, signatures=False)
    shutil.rmtree(src)
    fs = cluster.fs()
    path = pinned.url.replace(cluster.url, "")
    pairs = [_cold_pair(fs, url, path, scratch, get_first=i % 2 == 0) for i in range(repeats)]
    t_loc = statistics.median(p[0] for p in pairs)
    t_get = statistics.median(p[1] for p in pairs)
    warm_ms, warm_pinned_ms = _warm_ms(fs, url, scratch, repeats=max(10, repeats * 3))
    served = _many_processes(cluster, url, scratch, processes=8)
    fs.rm(f"/bench/{label}", recursive=True)
    return {
        "model": label,
        "bytes": size,
        "cold_localize_s": round(t_loc, 4),
        "plain_get_s": round(t_get, 4),
        "cold_localize_MBps": round(size / MB / t_loc, 1),
        "plain_get_MBps": round(size / MB / t_get, 1),
        "cold_ratio": round(t_get / t_loc, 3),
        "warm_ms": round(warm_ms, 2),
        "warm_pinned_ms": round(warm_pinned_ms, 3),
        "bytes_read_8_processes": served,
        "bytes_read_ratio": round(served / size, 3),
        "repeats": repeats,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'model':>8} {'MB':>7} {'cold MB/s':>10} {'get MB/s':>9} {'ratio':>6} "
        f"{'warm ms':>8} {'pinned ms':>9} {'8-proc read':>11}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:>8} {r['bytes'] / MB:7.1f} {r['cold_localize_MBps']:10.1f} {r['plain_get_MBps']:9.1f} "
            f"{r['cold_ratio']:6.2f} {r['warm_ms']:8.2f} {r['warm_pinned_ms']:9.3f} {r['bytes_read_ratio']:10.3f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller models, fewer repeats (about a minute)")
    parser.add_argument("--repeats", type=int, default=None, help="cold repeats per model (median)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from hdfs_models.testing.minidfs import MiniDFS

    sizes = (
        [("8MB", 8 * MB), ("26MB", 26 * MB)]
        if args.quick
        else [("26MB", 26 * MB), ("100MB", 100 * MB), ("500MB", 500 * MB)]
    )
    repeats = args.repeats or (3 if args.quick else 5)
    scratch = tempfile.mkdtemp(prefix="bench-localize-")
    rows = []
    try:
        with MiniDFS(datanodes=3, replication=1, block_size=128 << 20) as cluster:
            for label, data_bytes in sizes:
                rows.append(bench_model(cluster, label, data_bytes, scratch, repeats))
                print(_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "bench": "localize",
        "quick": args.quick,
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()},
        "client": "hdfs-native (fsspec), same instance for localize and fs.get",
        "targets": {"cold_ratio": ">= 0.8", "warm_ms": "< 50", "bytes_read_ratio": "1.0"},
        "models": rows,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    out = os.path.join(HERE, "results", f"localize-{stamp}{'-quick' if args.quick else ''}.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    print(_table(rows))
    print(f"machine: {os.cpu_count()} cores, {_cpu_model()}; results: {out}")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
