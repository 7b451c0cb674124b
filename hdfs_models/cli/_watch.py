"""Hot update for long-running scoring: a streaming job that follows ``latest``.

New Parquet files in the input directory are scored in micro-batches
(``foreachBatch``). Before a micro-batch, and at most once every ``interval``
seconds, the driver resolves the latest complete version; a new version gets a
new :class:`scoring.Scorer` (shipped by the same strategy), and the per-worker
model cache loads it before it drops the old one. Every output row carries
``model_version``. Each input file is read once (the stream's checkpoint), and
each micro-batch is appended atomically, so no row is lost or scored twice.

A check that fails (the store unreachable, a NameNode failover that outlasts
the client's retries, an expired ticket, a base with no complete version, a
new version that cannot be shipped) never ends the job once it scores: it
keeps the version it has, logs one warning per failed check, and switches
as soon as a check works again (RELIABILITY P1). Only the very first
resolution must succeed: without a version there is nothing to score with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scoring import Scorer

__all__ = ["Watcher", "run_watch"]

log = logging.getLogger(__name__)


@dataclass
class Watcher:
    """Driver-side state of a watching job: the current scorer and its version.

    ``latest()`` returns the newest complete version number (cheap: one
    listing); ``make_scorer(version)`` ships that version and builds its scorer.
    """

    interval: float
    latest: Callable[[], int]
    make_scorer: Callable[[int], Scorer]
    clock: Callable[[], float] = time.monotonic
    scorer: Scorer | None = None
    version: int | None = None
    checked_at: float = float("-inf")
    versions_seen: list[int] = field(default_factory=list)

    failed_checks: int = 0

    def current(self) -> Scorer:
        """The scorer for this micro-batch, re-resolving ``latest`` once the interval has passed."""
        now = self.clock()
        if self.scorer is None:
            self.checked_at = now
            return self._switch(self.latest())  # no version yet: a failure here ends the job
        if now - self.checked_at >= self.interval:
            self.checked_at = now
            try:
                version = self.latest()
                if version != self.version:
                    self._switch(version)
            except Exception as exc:  # P1: any failed check keeps the version that scores
                self.failed_checks += 1
                log.warning(
                    "model check failed; still scoring with version %s (failed checks: %d): %s",
                    self.version, self.failed_checks, " ".join(str(exc).split())[:300] or type(exc).__name__,
                )  # fmt: skip
        return self.scorer

    def _switch(self, version: int) -> Scorer:
        """Ship ``version`` and score with it from now on (the old scorer stays if this fails)."""
        scorer = self.make_scorer(version)
        log.info("scoring with model version %s (was %s)", version, self.version)
        self.scorer, self.version = scorer, version
        self.versions_seen.append(version)
        return scorer


def run_watch(
    spark: Any,
    input_path: str,
    checkpoint: str,
    watcher: Watcher,
    write_batch: Callable[[Any], None],
    idle_timeout: float | None,
    trigger_seconds: float = 1.0,
) -> int:
    """Score new files under ``input_path`` until ``idle_timeout`` seconds pass without input.

    ``idle_timeout=None`` runs until the query is stopped. Returns the number
    of rows scored.
    """
    schema = spark.read.parquet(input_path).schema
    stream = spark.readStream.schema(schema).parquet(input_path)
    scored = {"rows": 0, "last_input": time.monotonic()}
    lock = threading.Lock()

    def each(batch_df: Any, batch_id: int) -> None:
        scorer = watcher.current()
        batch_df = batch_df.persist()
        try:
            rows = batch_df.count()
            if rows:
                write_batch(scorer.transform(batch_df))
        finally:
            batch_df.unpersist()
        with lock:
            scored["rows"] += rows
            if rows:
                scored["last_input"] = time.monotonic()
        log.info("micro-batch %d: %d rows with version %s", batch_id, rows, watcher.version)

    query = (
        stream.writeStream.foreachBatch(each)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{trigger_seconds} seconds")
        .start()
    )
    try:
        while query.isActive:
            query.awaitTermination(1)
            with lock:
                idle = time.monotonic() - scored["last_input"]
            if idle_timeout is not None and idle >= idle_timeout and not query.status["isDataAvailable"]:
                break
        failure = query.exception()
        if failure is not None:
            raise failure
    finally:
        query.stop()
    return int(scored["rows"])
