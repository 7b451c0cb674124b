"""Node-cache lifecycle: claims that end (C9), waiting on a progressing download (C10),
a damaged entry found on a hit (H7), discard and eviction never take an entry another process holds."""

import multiprocessing
import os
import time

import pytest
from _faulty_fs import Fault, FaultyFS, bytes_read, read_log

from hdfs_models import LockTimeoutError, discard, evict, localize, publish, release, resolve
from hdfs_models.testing import fake_model_files, tree_digest, write_fake_model

DATA = "variables/variables.data-00000-of-00001"
JOIN = 120


def _without_manifest(path):
    tree = tree_digest(path)
    tree.pop("MANIFEST.json", None)
    return tree


@pytest.fixture
def store(tmp_path):
    """(base with version 1 published, the source dir, its size)."""
    src = write_fake_model(str(tmp_path / "src"), data_bytes=2_000_000)
    base = str(tmp_path / "store" / "m")
    publish(src, base, signatures=False)
    size = sum(len(d) for d in fake_model_files(data_bytes=2_000_000).values())
    return base, src, size


def _entries(cache):
    return sorted(n for n in os.listdir(cache) if not n.startswith(".") and os.path.isdir(os.path.join(cache, n)))


# -- C9: claims end ----------------------------------------------------------------------------


def test_release_ends_this_process_claim_so_eviction_can_reclaim_c9(store, tmp_path):
    base, _, _ = store
    cache = str(tmp_path / "cache")
    first = localize(base, cache_dir=cache)
    again = localize(base, cache_dir=cache)  # a second claim by the same process (a later task)
    assert evict(cache, max_versions=0) == []  # held: never evicted
    assert release(first.path) is True  # every claim of this process on the entry ends
    assert release(first.path) is False  # nothing left to release
    again.release()  # a LocalModel of the released claim: harmless
    assert evict(cache, max_versions=0) == [first.path]


def test_a_stale_release_does_not_drop_a_newer_claim_c9(store, tmp_path):
    base, _, _ = store
    cache = str(tmp_path / "cache")
    old = localize(base, cache_dir=cache)
    release(old.path)
    new = localize(base, cache_dir=cache)  # claimed again
    old.release()  # the old object's release must not end the new claim
    assert evict(cache, max_versions=0) == []
    new.release()
    assert evict(cache, max_versions=0) == [new.path]


def test_long_lived_process_through_ten_versions_keeps_disk_bounded_c9(tmp_path, monkeypatch):
    """C9: each version is used then dropped (claim released); max_versions=2 bounds the disk."""
    monkeypatch.setenv("HDFS_MODELS_MAX_VERSIONS", "2")
    base = str(tmp_path / "store" / "m")
    cache = str(tmp_path / "cache")
    in_use = []
    for version in range(1, 11):
        publish(write_fake_model(str(tmp_path / f"src{version}"), seed=version), base, signatures=False)
        model = localize(base, cache_dir=cache)
        assert model.version == version
        in_use.append(model)
        if len(in_use) > 2:  # like the worker's model cache: new one in, least recent one out
            release(in_use.pop(0).path)
        entries = _entries(cache)
        assert len(entries) <= 2 + len(in_use), entries  # max_versions + versions in use
        assert os.path.basename(model.path) in entries
    assert len(_entries(cache)) <= 4


# -- C10: waiting on a large download that makes progress ------------------------------------


def _slow_download(base, cache, log, ready, results, max_read, delay):
    fs = FaultyFS(log, {DATA: Fault(delay=delay, max_read=max_read, on_open=lambda _: ready.set())})
    model = localize(base, cache_dir=cache, filesystem=fs)
    results.put(("holder", model.path))


def _wait_for_it(base, cache, lock_timeout, results):
    try:
        model = localize(base, cache_dir=cache, lock_timeout=lock_timeout)
        results.put(("waiter", model.path))
    except LockTimeoutError as exc:
        results.put(("timeout", str(exc)))


def test_waiter_keeps_waiting_while_the_download_progresses_c10(store, tmp_path):
    """C10: the holder needs ~4x lock_timeout but its temp grows steadily; the waiter gets the entry."""
    base, src, size = store
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    ctx = multiprocessing.get_context("fork")
    ready, results = ctx.Event(), ctx.Queue()
    holder = ctx.Process(target=_slow_download, args=(base, cache, log, ready, results, 40_000, 0.15))
    holder.start()
    assert ready.wait(JOIN)  # the holder has the download lock and is reading the data file
    started = time.monotonic()
    waiter = ctx.Process(target=_wait_for_it, args=(base, cache, 2.0, results))
    waiter.start()
    got = dict(results.get(timeout=JOIN) for _ in range(2))
    for proc in (holder, waiter):
        proc.join(JOIN)
        assert proc.exitcode == 0
    assert "timeout" not in got, got
    assert got["waiter"] == got["holder"]
    assert time.monotonic() - started > 2.0  # it did wait past lock_timeout
    assert bytes_read(log) == size  # one download
    assert _without_manifest(got["holder"]) == tree_digest(src)


def _stall(base, cache, log, ready):
    def stop_here(_):
        ready.set()
        time.sleep(JOIN)  # holds the download lock, writes nothing

    fs = FaultyFS(log, {DATA: Fault(on_open=stop_here)})
    localize(base, cache_dir=cache, filesystem=fs)


def test_waiter_gives_up_after_lock_timeout_without_progress_c10(store, tmp_path):
    base, _, _ = store
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_stall, args=(base, cache, log, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(JOIN)
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=r"no download progress for \d+\.\ds") as info:
            localize(base, cache_dir=cache, lock_timeout=1.0)
        assert time.monotonic() - started >= 1.0
        assert info.value.path.endswith(".lock")
    finally:
        holder.kill()
        holder.join(JOIN)


# -- H7: a committed entry damaged later -------------------------------------------------------


@pytest.mark.parametrize("damage", ["remove", "truncate"])
def test_damaged_entry_is_found_on_the_next_hit_and_downloaded_again_h7(store, tmp_path, damage):
    base, src, size = store
    cache, log = str(tmp_path / "cache"), str(tmp_path / "io.log")
    with localize(base, cache_dir=cache) as model:
        path = model.path
    victim = os.path.join(path, DATA)
    if damage == "remove":
        os.remove(victim)  # a tmp cleaner took one file
    else:
        os.truncate(victim, 1000)
    fs = FaultyFS(log)
    with localize(base, cache_dir=cache, filesystem=fs) as again:
        assert again.path == path
        assert _without_manifest(path) == tree_digest(src)
    assert bytes_read(log) == size  # downloaded again, whole
    os.remove(log)
    with localize(base, cache_dir=cache, filesystem=fs) as third:  # healthy again: a plain hit
        assert third.path == path
    assert [op for op, _, _ in read_log(log) if op == "open"] == ["open"]  # the manifest only


# -- discard never deletes an entry another process holds; a corrupt one is moved aside (P8) ------


def _hold(base, cache, ready, stop):
    model = localize(base, cache_dir=cache)
    ready.set()
    stop.wait(JOIN)
    model.release()


def test_a_corrupt_entry_another_process_holds_is_moved_aside_and_downloaded_fresh_p8(store, tmp_path):
    from hdfs_models.cache._state import sweep_condemned

    base, src, _ = store
    cache = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(base, cache, ready, stop))
    holder.start()
    try:
        assert ready.wait(JOIN)
        mine = localize(base, cache_dir=cache)  # this process holds it too
        root = os.path.dirname(mine.path)
        with open(os.path.join(mine.path, DATA), "r+b") as fh:  # corrupt, same size: no hit check sees it
            fh.write(b"\xff" * 64)
        assert discard(mine.path) is True  # the other process still holds it: moved aside, not deleted
        aside = [n for n in os.listdir(root) if n.startswith(".corrupt-")]
        assert len(aside) == 1 and os.path.isfile(os.path.join(root, aside[0], "entry", DATA))  # holder's files
        fresh = localize(base, cache_dir=cache)  # the retried task: a fresh copy, not the corrupt one
        assert fresh.path == mine.path and _without_manifest(fresh.path) == tree_digest(src)
        assert sweep_condemned(root) == [] and aside[0] in os.listdir(root)  # still held elsewhere
    finally:
        stop.set()
        holder.join(JOIN)
    assert holder.exitcode == 0
    fresh.release()
    assert sweep_condemned(root) == [os.path.join(root, aside[0])]  # nobody holds the key: it goes
    assert not [n for n in os.listdir(root) if n.startswith(".corrupt-")]
    assert discard(mine.path) is True and not os.path.exists(mine.path)  # no holder: deleted outright
    assert resolve(base).version == 1 and localize(base, cache_dir=cache).path == mine.path
