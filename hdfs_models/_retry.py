"""Bounded retries: attempts, a deadline and exponential backoff.

The clock and the sleep are injectable so tests run without waiting. The
caller decides which exceptions are worth retrying (and how often) with a
``classify`` function; anything else propagates at once.

:func:`retry_transient` is the one policy for a store's *metadata* calls on
the executors (the node cache's resolution and its cache-hit check,
RELIABILITY P14): when thousands of tasks start at once, a busy NameNode
pushes back (``RetriableException``, call-queue backoff, ``StandbyException``
mid-failover), and a failover takes about half a minute. Such failures are
retried with jittered exponential backoff for a time window (60 s by
default), never reported as permission denied, and never failing a task on
the first push-back. Refusals, missing files and authentication failures
are not retried.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from hdfs_models.errors import EncryptionZoneError, ModelNotFoundError, StoreAuthError, StoreError, StorePermissionError

__all__ = ["Deadline", "RetryExhausted", "RetryPolicy", "call_with_retry", "is_transient", "retry_transient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """``attempts`` tries at most, waiting ``backoff * 2**k`` (capped at
    ``backoff_max``) between them; ``jitter`` (0 to 1) takes a random part of
    up to that fraction off each wait, so that many clients pushed back at
    once do not come back at once."""

    attempts: int = 4
    backoff: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        full = float(min(self.backoff * (2 ** (failures - 1)), self.backoff_max))
        return full * (1.0 - self.jitter * random.random()) if self.jitter else full


class Deadline:
    """A time limit shared by every retry of one operation, counted from its last progress.

    :meth:`progressed` (a download calls it as bytes arrive) starts the count
    again, so the limit bounds time *without progress*, not total time
    (RELIABILITY P4): a healthy 40-minute download of a multi-GB model still
    retries a transient error at its end. Without calls to it, it is a plain
    deadline from its creation.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start = self.mark = clock()
        self.seconds = seconds

    def progressed(self) -> None:
        """Record progress now: the time without progress starts again from zero."""
        self.mark = self.clock()

    def elapsed(self) -> float:
        """Seconds since the deadline was set (total, progress or not)."""
        return self.clock() - self.start

    def idle(self) -> float:
        """Seconds since the last progress (or the start)."""
        return self.clock() - self.mark

    def remaining(self) -> float:
        """Seconds left before the limit without progress (never negative)."""
        return max(self.seconds - self.idle(), 0.0)

    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0.0


class RetryExhausted(Exception):
    """Raised by :func:`call_with_retry` when it gives up.

    ``last`` is the last exception, ``attempts`` how many calls were made,
    ``elapsed`` the seconds since the deadline started and ``deadline_hit``
    whether the deadline (rather than the attempt count) stopped it.
    """

    def __init__(self, last: BaseException, attempts: int, elapsed: float, deadline_hit: bool) -> None:
        super().__init__(f"gave up after {attempts} attempt(s) in {elapsed:.1f}s: {last}")
        self.last = last
        self.attempts = attempts
        self.elapsed = elapsed
        self.deadline_hit = deadline_hit


def call_with_retry(
    fn: Callable[[int], T],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    classify: Callable[[BaseException], int],
    sleep: Callable[[float], None] = time.sleep,
    what: str = "operation",
) -> T:
    """Call ``fn(attempt)`` (attempt counts from 1) until it returns.

    ``classify(exc)`` gives the most attempts allowed for that kind of
    failure (``0``: not retryable, re-raised as is); it is capped by
    ``policy.attempts``. Raises :class:`RetryExhausted` (chained from the last
    failure) when the attempts or the deadline run out; a backoff that would
    cross the deadline is not started.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(attempt)
        except Exception as exc:
            allowed = min(classify(exc), policy.attempts)
            if allowed <= 0:
                raise
            delay = policy.delay(attempt)
            out_of_time = deadline.expired() or delay >= deadline.remaining()
            if attempt >= allowed or out_of_time:
                raise RetryExhausted(exc, attempt, deadline.elapsed(), out_of_time and attempt < allowed) from exc
            logger.warning("%s failed (attempt %d/%d), retrying in %.2fs: %s", what, attempt, allowed, delay, exc)
            sleep(delay)


#: Seconds :func:`retry_transient` keeps retrying by default: twice a NameNode failover.
TRANSIENT_WINDOW = 60.0
_TRANSIENT_POLICY = RetryPolicy(attempts=1000, backoff=0.5, backoff_max=8.0, jitter=0.5)


def is_transient(exc: BaseException) -> bool:
    """A store failure worth retrying: a :class:`~hdfs_models.errors.StoreError` that is not a
    refusal, an authentication failure or a missing file (those are answers, not push-back)."""
    refused = (StorePermissionError, StoreAuthError, ModelNotFoundError, EncryptionZoneError)
    return isinstance(exc, StoreError) and not isinstance(exc, refused)


def retry_transient(
    fn: Callable[[], T],
    *,
    what: str,
    window: float = TRANSIENT_WINDOW,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``fn()``, retried on :func:`is_transient` failures for ``window`` seconds (P14).

    Jittered exponential backoff from 0.5 s up to 8 s. When the window runs
    out, the last failure is raised with ``attempts`` and ``elapsed`` set;
    ``window=0`` calls once.
    """

    def call(_: int) -> T:
        return fn()

    def classify(exc: BaseException) -> int:
        return _TRANSIENT_POLICY.attempts if window > 0 and is_transient(exc) else 0

    try:
        return call_with_retry(
            call, policy=_TRANSIENT_POLICY, deadline=Deadline(window, clock), classify=classify, sleep=sleep, what=what
        )
    except RetryExhausted as exhausted:
        last = exhausted.last
        for name, value in (("attempts", exhausted.attempts), ("elapsed", round(exhausted.elapsed, 1))):
            if isinstance(getattr(last, "details", None), dict):
                last.details[name] = value  # type: ignore[attr-defined]  # what err.attempts and callers read
            try:
                setattr(last, name, value)
            except AttributeError:
                pass
        raise last from last.__cause__
