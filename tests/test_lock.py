"""flock-based locks: exclusion, sharing, timeouts (C7), release on process death."""

import multiprocessing
import os
import signal
import time

import pytest

from hdfs_models._tree import FileLock
from hdfs_models.errors import CacheError, LockTimeoutError


def _hold(path, shared, ready, seconds):
    lock = FileLock(path, shared=shared)
    lock.acquire()
    ready.set()
    time.sleep(seconds)


def _holder(path, shared=False, seconds=60.0):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(path, shared, ready, seconds), daemon=True)
    proc.start()
    assert ready.wait(20), "holder did not take the lock"
    return proc


def test_exclusive_excludes_even_inside_one_process(tmp_path):
    path = str(tmp_path / "k.lock")
    first = FileLock(path)
    assert first.try_acquire() and first.held
    second = FileLock(path)
    assert second.try_acquire() is False and not second.held
    first.release()
    assert second.try_acquire() is True
    second.release()


def test_shared_locks_coexist_and_block_exclusive(tmp_path):
    path = str(tmp_path / "k.use")
    a, b = FileLock(path, shared=True), FileLock(path, shared=True)
    assert a.try_acquire() and b.try_acquire()
    assert FileLock(path).try_acquire() is False
    a.release()
    assert FileLock(path).try_acquire() is False
    b.release()
    excl = FileLock(path)
    assert excl.try_acquire()
    assert FileLock(path, shared=True).try_acquire() is False
    excl.release()


def test_timeout_names_the_lock_path_c7(tmp_path):
    path = str(tmp_path / "model-1-abc.lock")
    proc = _holder(path)
    try:
        start = time.monotonic()
        with pytest.raises(LockTimeoutError, match="model-1-abc.lock") as info:
            FileLock(path).acquire(timeout=0.3)
        waited = time.monotonic() - start
        assert 0.3 <= waited < 5
        assert info.value.path == path
        assert info.value.timeout == 0.3
        assert info.value.elapsed >= 0.3
        assert isinstance(info.value, TimeoutError)
    finally:
        proc.kill()
        proc.join()


def test_kernel_releases_the_lock_when_the_holder_is_killed(tmp_path):
    path = str(tmp_path / "k.lock")
    proc = _holder(path)
    assert FileLock(path).try_acquire() is False
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    lock = FileLock(path)
    assert lock.acquire(timeout=5)
    lock.release()


def test_waiter_gets_the_lock_when_the_holder_exits(tmp_path):
    path = str(tmp_path / "k.lock")
    proc = _holder(path, seconds=0.3)
    lock = FileLock(path)
    assert lock.acquire(timeout=20)
    lock.release()
    proc.join()


def test_disabled_lock_never_excludes(tmp_path):
    path = str(tmp_path / "k.lock")
    real = FileLock(path)
    assert real.try_acquire()
    with FileLock(path, enabled=False) as fake:
        assert fake.held
    assert not os.path.exists(str(tmp_path / "other.lock"))
    real.release()


def test_context_manager_releases(tmp_path):
    path = str(tmp_path / "k.lock")
    with FileLock(path) as lock:
        assert lock.held
    assert not lock.held
    assert FileLock(path).try_acquire()


def test_lock_in_a_missing_directory_is_a_cache_error(tmp_path):
    path = str(tmp_path / "missing" / "k.lock")
    with pytest.raises(CacheError, match="cannot create lock file .*missing/k.lock") as info:
        FileLock(path).acquire(timeout=0)
    assert info.value.path == path
