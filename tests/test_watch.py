"""P1: a --watch job's model checks (hdfs_models.cli._watch.Watcher) never end a job that scores."""

import logging

import pytest

from hdfs_models.cli._watch import Watcher
from hdfs_models.errors import IncompleteVersionError, StoreAuthError, StoreError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def watcher(answers, made, clock):
    """A Watcher whose latest() plays ``answers`` in order (an exception is raised, a number returned)."""

    def latest():
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def make_scorer(version):
        made.append(version)
        return f"scorer-v{version}"

    return Watcher(interval=5, latest=latest, make_scorer=make_scorer, clock=clock)


def test_failed_checks_keep_the_pinned_version_warn_once_each_and_switch_when_resolution_works(caplog):
    clock, made = Clock(), []
    outage = [
        StoreError("hdfs://nn:8020/models/m: Connection refused", url="hdfs://nn:8020/models/m"),
        StoreAuthError("no valid Kerberos ticket (expired)", reason="no ticket"),
        IncompleteVersionError("hdfs://nn:8020/models/m: no complete version", url="hdfs://nn:8020/models/m"),
        ConnectionResetError("reset by peer"),
    ]
    w = watcher([1, *outage, 2], made, clock)
    assert w.current() == "scorer-v1"
    scored = []
    with caplog.at_level(logging.WARNING, logger="hdfs_models.cli._watch"):
        for _ in outage:
            clock.now += 5
            scored.append(w.current())
    assert scored == ["scorer-v1"] * 4 and w.version == 1 and w.failed_checks == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4 and all("still scoring with version 1" in m for m in warnings)
    assert "Connection refused" in warnings[0] and "expired" in warnings[1]
    clock.now += 5
    assert w.current() == "scorer-v2" and w.versions_seen == [1, 2] and made == [1, 2]


def test_a_version_that_cannot_be_shipped_keeps_the_old_one():
    clock, made = Clock(), []
    w = watcher([1, 2, 2], made, clock)
    w.current()
    broken = {"on": True}
    make = w.make_scorer

    def flaky_make(version):
        if broken.pop("on", False):
            raise StoreError("archive upload failed")
        return make(version)

    w.make_scorer = flaky_make
    clock.now += 5
    assert w.current() == "scorer-v1" and w.version == 1 and w.failed_checks == 1
    clock.now += 5
    assert w.current() == "scorer-v2" and w.versions_seen == [1, 2]


def test_checks_wait_for_the_interval_and_the_first_resolution_must_work():
    clock, made = Clock(), []
    w = watcher([1], made, clock)
    w.current()
    clock.now += 4.9
    assert w.current() == "scorer-v1"  # no second check inside the interval (the answers would run out)
    first = watcher([StoreError("Connection refused")], [], Clock())
    with pytest.raises(StoreError, match="Connection refused"):
        first.current()
