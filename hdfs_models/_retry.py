"""Bounded retries: attempts, a deadline and exponential backoff.

The clock and the sleep are injectable so tests run without waiting. The
caller decides which exceptions are worth retrying (and how often) with a
``classify`` function; anything else propagates at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Deadline", "RetryExhausted", "RetryPolicy", "call_with_retry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """``attempts`` tries at most, waiting ``backoff * 2**k`` (capped at
    ``backoff_max``) between them."""

    attempts: int = 4
    backoff: float = 0.5
    backoff_max: float = 30.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        return float(min(self.backoff * (2 ** (failures - 1)), self.backoff_max))


class Deadline:
    """A point in time shared by every retry of one operation."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start = clock()
        self.seconds = seconds

    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock() - self.start

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(self.seconds - self.elapsed(), 0.0)

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
