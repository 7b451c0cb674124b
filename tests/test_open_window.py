"""P3 without a cluster: a download's file opens ride out a NameNode failover for ``store_window``.

On HDFS opening a file is the NameNode's ``getBlockLocations``; during a failover it is refused
until the standby takes over (about 30 s). These opens are retried like the node cache's other
metadata calls (P14), so they cost no file its ``attempts``; a store that stays away a whole
window fails the download once, without per-file retries on top. The MiniDFS version of this,
a real 30 s failover, is ``integration/test_failover.py``.
"""

from __future__ import annotations

import errno
import functools
import threading

import pytest
from fsspec.implementations.local import LocalFileSystem

from hdfs_models import MANIFEST_NAME, StoreError, localize, publish
from hdfs_models import _download as download_module
from hdfs_models._retry import retry_transient
from hdfs_models.testing import tree_digest, write_fake_model

DATA = "variables/variables.data-00000-of-00001"


class _AwayFS(LocalFileSystem):
    """A local store on which opening ``DATA`` is refused ``times`` times, as while a NameNode fails over."""

    cachable = False  # a fresh instance (and count) per test

    def __init__(self, times: int, **kwargs):
        super().__init__(**kwargs)
        self.left, self.opens = times, 0
        self._lock = threading.Lock()

    def _open(self, path, mode="rb", *args, **kwargs):
        if "r" in mode and path.endswith(DATA):
            with self._lock:
                self.opens += 1
                if self.left > 0:
                    self.left -= 1
                    raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return super()._open(path, mode, *args, **kwargs)


class _Clock:
    """A monotonic clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = _Clock()
    patched = functools.partial(retry_transient, sleep=clock.sleep, clock=clock)
    monkeypatch.setattr(download_module, "retry_transient", patched)
    return clock


@pytest.fixture
def base(tmp_path):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=50_000)
    publish(src, str(tmp_path / "store" / "m"), signatures=False)
    return str(tmp_path / "store" / "m"), src


def test_refused_opens_are_retried_for_the_store_window_not_the_attempts_p3(base, tmp_path, clock):
    url, src = base
    fs = _AwayFS(times=10)  # more refusals than the default 4 attempts
    model = localize(url, cache_dir=str(tmp_path / "cache"), filesystem=fs)
    got = tree_digest(model.path)
    got.pop(MANIFEST_NAME)
    assert got == tree_digest(src)
    assert fs.opens == 11 and len(clock.waits) == 10 and clock.now < 60.0
    model.release()


def test_a_store_away_for_the_whole_window_fails_once_without_per_file_retries_p3(base, tmp_path, clock):
    url, _ = base
    fs = _AwayFS(times=10**6)
    with pytest.raises(StoreError, match="opening variables/variables.data.*Connection refused") as info:
        localize(url, cache_dir=str(tmp_path / "cache"), filesystem=fs, store_window=30.0)
    assert clock.now >= 30.0 - 8.0 and fs.opens == len(clock.waits) + 1  # one window, no attempts on top
    assert info.value.attempts == fs.opens


def test_store_window_zero_leaves_the_opens_to_the_attempts(base, tmp_path, clock):
    url, _ = base
    fs = _AwayFS(times=10**6)
    with pytest.raises(StoreError, match="failed after 2 attempt"):
        localize(url, cache_dir=str(tmp_path / "cache"), filesystem=fs, store_window=0, attempts=2, backoff=0)
    assert fs.opens == 2 and clock.waits == []
