"""Bounded retries with backoff and a deadline, on a fake clock."""

import pytest

from hdfs_models._retry import Deadline, RetryExhausted, RetryPolicy, call_with_retry


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures, exc=None):
    exc = OSError("boom") if exc is None else exc
    calls = []

    def fn(attempt):
        calls.append(attempt)
        if len(calls) <= failures:
            raise exc
        return "ok"

    return fn, calls


def test_succeeds_after_transient_failures_with_exponential_backoff():
    clock = FakeClock()
    fn, calls = flaky(2)
    result = call_with_retry(
        fn,
        policy=RetryPolicy(attempts=4, backoff=0.5),
        deadline=Deadline(60, clock),
        classify=lambda e: 99,
        sleep=clock.sleep,
    )
    assert result == "ok"
    assert calls == [1, 2, 3]
    assert clock.sleeps == [0.5, 1.0]


def test_gives_up_after_attempts_with_count_and_elapsed():
    clock = FakeClock()
    fn, calls = flaky(10)
    with pytest.raises(RetryExhausted, match="gave up after 3 attempt") as info:
        call_with_retry(
            fn,
            policy=RetryPolicy(attempts=3, backoff=1.0),
            deadline=Deadline(60, clock),
            classify=lambda e: 99,
            sleep=clock.sleep,
        )
    assert info.value.attempts == 3
    assert info.value.elapsed == pytest.approx(3.0)  # slept 1 + 2
    assert info.value.deadline_hit is False
    assert isinstance(info.value.last, OSError)


def test_deadline_stops_before_attempts_run_out():
    clock = FakeClock()
    fn, calls = flaky(10)
    with pytest.raises(RetryExhausted) as info:
        call_with_retry(
            fn,
            policy=RetryPolicy(attempts=10, backoff=1.0),
            deadline=Deadline(5, clock),
            classify=lambda e: 99,
            sleep=clock.sleep,
        )
    assert info.value.deadline_hit is True
    assert clock.now - 100.0 <= 5.0  # never sleeps past the deadline
    assert info.value.attempts == len(calls) == 3  # waits 1, 2, then 4 would cross 5 s


def test_backoff_is_capped():
    assert RetryPolicy(backoff=1.0, backoff_max=3.0).delay(10) == 3.0


def test_non_retryable_errors_propagate_unchanged():
    clock = FakeClock()
    fn, calls = flaky(1, exc=PermissionError("denied"))
    with pytest.raises(PermissionError, match="denied"):
        call_with_retry(
            fn,
            policy=RetryPolicy(attempts=5),
            deadline=Deadline(60, clock),
            classify=lambda e: 0 if isinstance(e, PermissionError) else 5,
            sleep=clock.sleep,
        )
    assert calls == [1] and clock.sleeps == []


def test_classify_can_allow_fewer_attempts_than_the_policy():
    clock = FakeClock()
    fn, calls = flaky(10, exc=ValueError("digest"))
    with pytest.raises(RetryExhausted) as info:
        call_with_retry(
            fn,
            policy=RetryPolicy(attempts=5, backoff=0.1),
            deadline=Deadline(60, clock),
            classify=lambda e: 2,
            sleep=clock.sleep,
        )
    assert info.value.attempts == 2 and calls == [1, 2]


def test_the_deadline_counts_time_without_progress_p4():
    clock = FakeClock()
    deadline = Deadline(60, clock)
    clock.now += 50
    deadline.progressed()
    clock.now += 50  # 100 s in all, 50 s since the last progress
    assert not deadline.expired() and deadline.remaining() == 10
    assert deadline.elapsed() == 100 and deadline.idle() == 50
    clock.now += 10
    assert deadline.expired()
