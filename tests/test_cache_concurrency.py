"""The node-cache contract under real concurrency: processes, fork and spawn (C1-C6)."""

import multiprocessing
import os
import signal
import time

import pytest
from _faulty_fs import Fault, FaultyFS, bytes_read

from hdfs_models import evict, localize
from hdfs_models._publish import publish
from hdfs_models.testing import tree_digest, write_fake_model

DATA = "variables/variables.data-00000-of-00001"
SIZE = 3_000_000
JOIN = 120


def _worker(base, cache, log, barrier, results, options, delay):
    faults = {DATA: Fault(delay=delay)} if delay else {}
    fs = FaultyFS(log, faults)
    if barrier is not None:
        barrier.wait()
    model = localize(base, cache_dir=cache, filesystem=fs, **options)
    results.put((os.getpid(), model.path, tree_digest(model.path)))


def _hold_model(base, cache, ready, stop):
    model = localize(base, cache_dir=cache)
    ready.set()
    stop.wait(JOIN)
    model.release()


def _watch(cache, expected, stop, results):
    """Poll the cache root; every entry that is visible must be complete (C3)."""
    seen = bad = 0
    while not stop.is_set():
        for name in os.listdir(cache) if os.path.isdir(cache) else []:
            if name.startswith(".") or "." in name:
                continue
            seen += 1
            tree = tree_digest(os.path.join(cache, name))
            tree.pop("MANIFEST.json", None)
            bad += tree != expected
        time.sleep(0.005)
    results.put((seen, bad))


@pytest.fixture
def model(tmp_path):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=SIZE)
    base = str(tmp_path / "store" / "big")
    publish(src, base, signatures=False)
    expected = tree_digest(src)
    return base, expected, sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(src) for f in fs)


def _run(ctx, n, base, cache, log, options=None, delay=0.0):
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(base, cache, log, barrier, results, options or {}, delay)) for _ in range(n)
    ]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=JOIN) for _ in procs]
    for proc in procs:
        proc.join(JOIN)
        assert proc.exitcode == 0
    return out


def _wait_until(predicate, timeout=JOIN):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.01)


def _has_open(pid, path):
    """Whether process ``pid`` has ``path`` open (Linux /proc)."""
    fds = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(os.path.join(fds, name)) == path:
                return True
        except OSError:
            continue
    return False


def _leftovers(cache):
    return [n for n in os.listdir(cache) if n.startswith(".tmp-")]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sixteen_processes_download_once_c1(method, model, tmp_path):
    base, expected, size = model
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    out = _run(multiprocessing.get_context(method), 16, base, cache, log, delay=0.2)
    assert bytes_read(log) == size  # exactly one download's worth at the store
    paths = {path for _, path, _ in out}
    assert len(paths) == 1
    for _, _, tree in out:
        tree.pop("MANIFEST.json")
        assert tree == expected
    assert _leftovers(cache) == []


def test_without_locking_maybe_duplicates_never_corruption_c2(model, tmp_path):
    base, expected, size = model
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    out = _run(multiprocessing.get_context("fork"), 8, base, cache, log, {"locking": False}, delay=0.1)
    read = bytes_read(log)
    assert size <= read <= 8 * size and read % size == 0
    assert len({path for _, path, _ in out}) == 1
    for _, _, tree in out:
        tree.pop("MANIFEST.json")
        assert tree == expected
    assert _leftovers(cache) == []


def test_readers_during_the_first_download_never_see_a_partial_tree_c3(model, tmp_path):
    base, expected, _ = model
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    ctx = multiprocessing.get_context("fork")
    stop, watch_results = ctx.Event(), ctx.Queue()
    watcher = ctx.Process(target=_watch, args=(cache, expected, stop, watch_results))
    watcher.start()
    results = ctx.Queue()
    first = ctx.Process(target=_worker, args=(base, cache, log, None, results, {}, 0.5))
    first.start()
    _wait_until(lambda: os.path.isdir(cache) and _leftovers(cache))  # the first download is in progress
    late = [ctx.Process(target=_worker, args=(base, cache, log, None, results, {}, 0.0)) for _ in range(3)]
    for proc in late:
        proc.start()
    out = [results.get(timeout=JOIN) for _ in range(4)]
    stop.set()
    seen, bad = watch_results.get(timeout=JOIN)
    for proc in [first, watcher, *late]:
        proc.join(JOIN)
        assert proc.exitcode == 0
    assert seen > 0 and bad == 0
    for _, _, tree in out:
        tree.pop("MANIFEST.json")
        assert tree == expected


def test_killed_lock_holder_others_proceed_and_its_temp_is_swept_c4(model, tmp_path):
    base, expected, size = model
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    holder = ctx.Process(target=_worker, args=(base, cache, log, None, results, {}, 60.0))
    holder.start()
    _wait_until(lambda: os.path.isdir(cache) and _leftovers(cache))
    dead_temp = _leftovers(cache)
    assert str(holder.pid) in dead_temp[0]
    waiters = [ctx.Process(target=_worker, args=(base, cache, log, None, results, {}, 0.0)) for _ in range(3)]
    for proc in waiters:
        proc.start()
    lock = next(os.path.realpath(os.path.join(cache, n)) for n in os.listdir(cache) if n.endswith(".lock"))
    # every waiter has the download lock file open: it is polling for the lock the holder has
    _wait_until(lambda: all(_has_open(proc.pid, lock) for proc in waiters))
    os.kill(holder.pid, signal.SIGKILL)
    start = time.monotonic()
    out = [results.get(timeout=JOIN) for _ in waiters]
    assert time.monotonic() - start < 60  # no hang
    holder.join(JOIN)
    assert holder.exitcode == -signal.SIGKILL
    for proc in waiters:
        proc.join(JOIN)
        assert proc.exitcode == 0
    for _, _, tree in out:
        tree.pop("MANIFEST.json")
        assert tree == expected
    evict(cache)
    assert _leftovers(cache) == []  # the dead holder's temp dir is gone


def test_two_processes_commit_the_same_key_c5(model, tmp_path):
    base, expected, _ = model
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    out = _run(multiprocessing.get_context("fork"), 2, base, cache, log, {"locking": False})
    assert len({path for _, path, _ in out}) == 1
    for _, _, tree in out:
        tree.pop("MANIFEST.json")
        assert tree == expected
    assert _leftovers(cache) == []


def test_eviction_spares_an_entry_another_process_uses_c6(model, tmp_path):
    base, _, _ = model
    cache = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    user = ctx.Process(target=_hold_model, args=(base, cache, ready, stop))
    user.start()
    assert ready.wait(JOIN)
    entries = [n for n in os.listdir(cache) if not n.startswith(".") and "." not in n]
    assert evict(cache, max_versions=0) == [] and evict(cache, max_bytes=0) == []
    assert os.path.isdir(os.path.join(cache, entries[0]))
    stop.set()
    user.join(JOIN)
    assert evict(cache, max_versions=0) == [os.path.join(cache, entries[0])]


def _hold_lock(path, ready, stop):
    from hdfs_models._tree import FileLock

    lock = FileLock(path)
    lock.acquire()
    ready.set()
    stop.wait(JOIN)


def test_localize_gives_up_waiting_for_a_stuck_download_c7(model, tmp_path):
    from hdfs_models import LockTimeoutError, resolve
    from hdfs_models.cache._layout import entry_key

    base, _, _ = model
    cache = str(tmp_path / "cache")
    os.makedirs(cache)
    pinned = resolve(base)
    lock_path = os.path.join(cache, entry_key(pinned.name, pinned.version, pinned.digest) + ".lock")
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(lock_path, ready, stop))
    holder.start()
    try:
        assert ready.wait(JOIN)
        with pytest.raises(LockTimeoutError, match=lock_path) as info:
            localize(base, cache_dir=cache, lock_timeout=0.3)
        assert info.value.path == lock_path and info.value.version == 1 and info.value.url == pinned.url
        assert info.value.elapsed >= 0.3
        assert [n for n in os.listdir(cache) if not n.endswith((".lock", ".use"))] == []
    finally:
        stop.set()
        holder.join(JOIN)
