"""RELIABILITY P1 on an HA MiniDFS: a ``--watch`` job rides out a 30-second NameNode outage.

The streaming job (``python -m scoring.job --watch 2``, a subprocess with its own ``local[2]``
Spark) scores Parquet files that arrive in a local directory, one every few seconds, with
version 1 of a small model on ``hdfs://minidfs-ns``. Once it has scored some, the active
NameNode stops and the standby becomes active only 30 s later
(:meth:`~hdfs_models.testing.MiniDFS.failover` with ``seconds=30``, as in
``test_failover.py``); a publish of version 2 starts at once and is retried until the store
answers again. Files keep arriving during and after the outage. The job must keep scoring
through it (micro-batches finish while the NameNode is away), warn once per failed check
instead of dying, switch to version 2 once resolution works again, and exit 0 at
``--idle-timeout``; every output row carries the version that scored it, and its prediction
is in-process TensorFlow's for that version.

Both Python workers of ``local[2]`` start before the outage (a micro-batch of two files, two
tasks at once): a worker that starts during it makes its first cache-hit check (K5) against the
store, which retries for ``store_window`` (60 s) and holds its task, and with it the stream, until
the NameNode is back (a run without the warm-up: one micro-batch held about 60 s, one failed check).

Input and output are ``file://`` URLs: the job's Spark sees ``HADOOP_CONF_DIR`` (whose
``fs.defaultFS`` is the cluster), and only the model may live on the store that goes away.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
from _ha import ha_cluster, settled

from hdfs_models import HdfsModelsError, publish
from hdfs_models.testing import MiniDFS, predict_in_process, save_dense
from hdfs_models.testing.pytest_plugin import require_module

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30.0
ROWS, N_IN = 40, 12
FEED_S = 3.0  # one input file every FEED_S seconds, from the first scored batch to the end
WATCH_S, IDLE_S = 2, 30
WAIT = 240.0
ROOT = os.path.join(os.path.dirname(__file__), os.pardir)

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def ha():
    yield from ha_cluster()


def _active(cluster: MiniDFS) -> float:
    """When (monotonic) a NameNode is active again: the outage is over for clients."""
    deadline = time.monotonic() + WAIT
    while True:
        state = cluster.command("ha-state")
        if any(n["state"] == "active" for n in state["namenodes"]):
            return time.monotonic()
        assert time.monotonic() < deadline, f"no NameNode became active: {state}"
        time.sleep(0.2)


def _write_part(directory: str, k: int, x: np.ndarray) -> None:
    """Part ``k``: ids ``k*1000 + i`` for row ``i`` of ``x`` (``write_features``' schema), written
    under a hidden name and renamed, so the stream never sees it half-written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = np.arange(k * 1000, k * 1000 + len(x), dtype=np.int64)
    offsets = pa.array(np.arange(len(x) + 1, dtype=np.int32) * x.shape[1])
    column = pa.ListArray.from_arrays(offsets, pa.array(x.reshape(-1)), type=pa.list_(pa.float32()))
    hidden = os.path.join(directory, f".part-{k}.parquet.tmp")
    pq.write_table(pa.table({"id": ids, "features": column}), hidden)
    os.rename(hidden, os.path.join(directory, f"part-{k}.parquet"))


class _Job:
    """The watching job in a subprocess; its stderr lines are kept with the time each arrived."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        self.log_path = log_path
        env = dict(os.environ, PYTHONUNBUFFERED="1", SPARK_LOCAL_IP="127.0.0.1")
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scoring.job", *argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.stdout = ""
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.out_reader.start()

    def _read_stdout(self) -> None:  # not communicate(): that would take stderr lines from _read
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with open(self.log_path, "w", buffering=1) as kept:  # the whole stderr, for a look after the test
            for line in self.proc.stderr:
                kept.write(f"{time.monotonic():.1f} {line}")
                with self.cond:
                    self.lines.append((time.monotonic(), line.rstrip("\n")))
                    self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT) -> float:
        """When (monotonic) the first stderr line matching ``pattern`` arrived."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, line in self.lines:
                    if re.search(pattern, line):
                        return at
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, (
                    f"no stderr line matching {pattern!r} (exit {self.proc.poll()}):\n{self.tail()}"
                )
                self.cond.wait(min(left, 1.0))

    def matching(self, pattern: str) -> list[tuple[float, re.Match[str]]]:
        with self.cond:
            return [(at, m) for at, line in self.lines if (m := re.search(pattern, line))]

    def tail(self, n: int = 60) -> str:
        with self.cond:
            return "\n".join(line for _, line in self.lines[-n:])


class _Feeder(threading.Thread):
    """Writes one part every ``FEED_S`` seconds until stopped; ``written[k]`` is when part ``k`` appeared."""

    def __init__(self, directory: str, x: np.ndarray, first: int) -> None:
        super().__init__(daemon=True)
        self.directory, self.x, self.next = directory, x, first
        self.written: dict[int, float] = {}
        self.stopped = threading.Event()

    def write(self, parts: int = 1) -> None:
        for _ in range(parts):
            _write_part(self.directory, self.next, self.x)
            self.written[self.next] = time.monotonic()
            self.next += 1

    def run(self) -> None:
        while not self.stopped.wait(FEED_S):
            self.write()


class _Publisher(threading.Thread):
    """Publishes ``local`` under ``base``, calling :func:`publish` again after each failure until
    ``deadline``: a publish retries each file's upload, not its first metadata calls (creating the
    base dir), which fail while no NameNode is active (about 7 s a call in the runs so far)."""

    def __init__(self, local: str, base: str, deadline: float) -> None:
        super().__init__(daemon=True)
        self.local, self.base, self.deadline = local, base, deadline
        self.failures: list[tuple[float, str]] = []
        self.version: int | None = None
        self.done_at: float | None = None

    def run(self) -> None:
        while self.version is None and time.monotonic() < self.deadline:
            try:
                self.version = publish(self.local, self.base).version
                self.done_at = time.monotonic()
            except HdfsModelsError as exc:
                self.failures.append((time.monotonic(), " ".join(str(exc).split())[:200]))
                time.sleep(1.0)


def test_a_watch_job_scores_through_a_30s_outage_and_switches_to_the_version_published_in_it_p1(
    ha, tmp_path, record_property
):
    """P1: ``--watch`` keeps scoring with version 1 through a 30 s outage, warns per failed check,
    switches to version 2 (published during the outage) after it; each row carries its version."""
    require_module("tensorflow", "tf")
    require_module("pyspark", "spark")
    settled(ha, WAIT)
    models = {v: save_dense(str(tmp_path / f"m{v}"), n_in=N_IN, n_out=5, seed=seed) for v, seed in ((1, 1), (2, 7))}
    base = f"{ha.url}/tmp/p1-{uuid.uuid4().hex[:8]}/models/dense"
    assert publish(models[1], base).version == 1
    x = np.random.default_rng(11).normal(size=(ROWS, N_IN)).astype(np.float32)
    expected = {v: predict_in_process(path, features=x)["probabilities"] for v, path in models.items()}
    assert not np.allclose(expected[1], expected[2], atol=1e-3)  # the two models really differ
    incoming, out = tmp_path / "incoming", tmp_path / "scored"
    incoming.mkdir()
    _write_part(str(incoming), 0, x)

    started = time.monotonic()
    job = _Job(
        ["--master", "local[2]", "--model", base, "--input-path", f"file://{incoming}"]
        + ["--output-path", f"file://{out}", "--watch", str(WATCH_S), "--idle-timeout", str(IDLE_S)]
        + ["--features", "features", "--keep", "id", "--returns", "probabilities", "--json", "-v"],
        log_path=str(tmp_path / "job-stderr.log"),
    )
    feeder = _Feeder(str(incoming), x, first=1)
    try:
        job.wait_for(r"micro-batch \d+: [1-9]\d* rows with version 1")
        feeder.write(parts=2)  # two files, two tasks at once: both Python workers of local[2] start now
        while not any(int(m.group(1)) >= 2 * ROWS for _, m in job.matching(r"micro-batch \d+: (\d+) rows")):
            assert job.proc.poll() is None and time.monotonic() - started < 2 * WAIT, job.tail()
            time.sleep(0.5)
        feeder.start()
        while len(job.matching(r"micro-batch \d+: [1-9]\d* rows with version 1")) < 3:  # scoring steadily
            assert job.proc.poll() is None and time.monotonic() - started < 2 * WAIT, job.tail()
            time.sleep(0.5)
        ha.failover(OUTAGE_S)
        outage_at = time.monotonic()
        publisher = _Publisher(models[2], base, deadline=outage_at + WAIT)
        publisher.start()
        back_at = _active(ha)
        settled(ha, WAIT)
        publisher.join(WAIT)
        assert publisher.version == 2, f"publish of version 2: {publisher.version}, failures {publisher.failures}"
        switched_at = job.wait_for(r"scoring with model version 2 \(was 1\)")
        while sum(1 for at in feeder.written.values() if at > switched_at) < 2:
            assert job.proc.poll() is None, job.tail()
            time.sleep(0.5)
        feeder.stopped.set()
        feeder.join()
        job.proc.wait(timeout=WAIT)
    finally:
        feeder.stopped.set()
        if job.proc.poll() is None:
            job.proc.kill()
            job.proc.wait()
    job.reader.join(10)
    job.out_reader.join(10)
    elapsed = time.monotonic() - started

    retried = job.matching(r"checking access to \S+ failed \(attempt")  # a new worker's cache-hit check (K5)
    failed = job.matching(r"model check failed; still scoring with version (\d+) \(failed checks: (\d+)\)")
    batches = job.matching(r"micro-batch (\d+): (\d+) rows with version (\d+)")
    in_outage = [m.group(0) for at, m in batches if outage_at <= at <= back_at and int(m.group(2)) > 0]
    report = {
        "elapsed_s": round(elapsed, 1),
        "outage_s": round(back_at - outage_at, 1),
        "failed_checks": len(failed),
        "batches_in_outage": len(in_outage),
        "publish_failures": len(publisher.failures),
        "publish_done_after_outage_start_s": round((publisher.done_at or 0) - outage_at, 1),
        "switch_after_outage_end_s": round(switched_at - back_at, 1),
        "parts": len(feeder.written) + 1,
        "batches": [(round(at - outage_at, 1), int(m.group(2)), int(m.group(3))) for at, m in batches],
        "failed_at": [round(at - outage_at, 1) for at, _ in failed],
        "executor_check_retries": len(retried),
        "written_at": [round(at - outage_at, 1) for at in feeder.written.values()],
        "stderr": job.log_path,
    }
    for key, value in report.items():
        record_property(key, value)
    log.warning("P1 watch outage: %s; first publish failure: %s", report, publisher.failures[:1])

    assert job.proc.returncode == 0, f"the job failed (exit {job.proc.returncode}):\n{job.tail()}"
    assert failed, f"no failed check was warned about:\n{job.tail()}"
    assert [int(m.group(1)) for _, m in failed] == [1] * len(failed)  # the pinned version kept scoring
    assert [int(m.group(2)) for _, m in failed] == list(range(1, len(failed) + 1))  # one warning per check
    assert all(outage_at <= at <= switched_at + 1 for at, _ in failed), "a check failed outside the outage"
    assert in_outage, f"no micro-batch finished during the outage:\n{job.tail()}"
    assert [int(m.group(3)) for at, m in batches if at > switched_at] and all(
        int(m.group(3)) == 2 for at, m in batches if at > switched_at
    ), report["batches"]
    assert sum(int(m.group(2)) for _, m in batches) == ROWS * (len(feeder.written) + 1), report["batches"]

    import pyarrow.parquet as pq

    scored = pq.read_table(str(out)).to_pandas()
    parts = {0: started, **feeder.written}
    assert sorted(scored["id"]) == sorted(k * 1000 + i for k in parts for i in range(ROWS)), "rows lost or doubled"
    assert scored["model_version"].notna().all()
    tags = {k: set(scored[scored["id"] // 1000 == k]["model_version"]) for k in parts}
    assert all(len(t) == 1 for t in tags.values()), tags  # one file, one micro-batch, one version
    version_of = {k: int(t.pop()) for k, t in tags.items()}
    order = [version_of[k] for k in sorted(parts)]
    assert order == sorted(order) and order[0] == 1 and order[-1] == 2, order
    during = [k for k, at in parts.items() if outage_at <= at <= back_at]
    assert during and all(version_of[k] in (1, 2) for k in during), (during, version_of)
    after_switch = [k for k, at in parts.items() if at > switched_at]
    assert len(after_switch) >= 2 and all(version_of[k] == 2 for k in after_switch), (after_switch, version_of)
    for version in (1, 2):
        rows = scored[scored["model_version"] == version].sort_values("id")
        got = np.stack(rows["prediction"].to_numpy())
        np.testing.assert_allclose(got, expected[version][(rows["id"] % 1000).to_numpy()], atol=1e-6)

    summary = json.loads(job.stdout.strip().splitlines()[-1])
    assert summary["versions"] == [1, 2] and summary["rows"] == ROWS * len(parts), summary
