"""localize on local and memory stores: hits, misses, integrity and store faults."""

import contextlib
import errno
import logging
import os
import pickle
import posixpath
import shutil
import subprocess
import uuid

import fsspec
import pytest
from _faulty_fs import Fault, FaultyFS, FileProxy, bytes_read, read_log

import hdfs_models._download as download_module
from hdfs_models import (
    CacheError,
    CacheStats,
    ExtraFilesWarning,
    IntegrityError,
    InvalidModelError,
    LocalModel,
    ModelNotFoundError,
    SourceChangedError,
    StoreError,
    cache_stats,
    evict,
    localize,
    resolve,
)
from hdfs_models._publish import publish
from hdfs_models._versions import version_files
from hdfs_models.testing import fake_model_files, tree_digest, write_fake_model

FAST = {"backoff": 0.01, "attempts": 3}
DATA = "variables/variables.data-00000-of-00001"
DATA_BYTES = 300_000
MODEL_BYTES = sum(len(data) for data in fake_model_files(data_bytes=DATA_BYTES).values())


@pytest.fixture
def model_dir(tmp_path):
    return write_fake_model(str(tmp_path / "src"), data_bytes=DATA_BYTES)


@pytest.fixture
def published(tmp_path, model_dir):
    """A base dir with version 1 published with a manifest."""
    base = str(tmp_path / "store" / "mnist")
    publish(model_dir, base, signatures=False)
    return base


@pytest.fixture
def plain(tmp_path, model_dir):
    """A base dir whose version 1 was copied by a plain recursive copy (no manifest)."""
    base = tmp_path / "plain" / "mnist"
    shutil.copytree(model_dir, base / "1")
    return str(base)


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def _leftovers(cache):
    return sorted(n for n in os.listdir(cache) if n.startswith(".tmp-")) if os.path.isdir(cache) else []


def _entries(cache):
    return (
        sorted(n for n in os.listdir(cache) if not n.startswith(".") and "." not in n) if os.path.isdir(cache) else []
    )


@pytest.mark.parametrize("kind", ["manifest", "plain"])
def test_localize_gives_a_verified_copy(kind, published, plain, model_dir, cache):
    base = published if kind == "manifest" else plain
    model = localize(base, cache_dir=cache)
    assert isinstance(model, LocalModel)
    assert (model.name, model.version) == ("mnist", 1)
    assert model.path == os.path.join(cache, _entries(cache)[0])
    assert model.digest == resolve(base).digest
    got = tree_digest(model.path)
    if kind == "manifest":
        assert got.pop("MANIFEST.json")
    assert got == tree_digest(model_dir)
    assert _leftovers(cache) == []
    model.release()


def test_memory_store(model_dir, cache):
    base = f"memory://hm-{uuid.uuid4().hex}/mnist"
    try:
        publish(model_dir, base, signatures=False)
        model = localize(base, cache_dir=cache)
        got = tree_digest(model.path)
        got.pop("MANIFEST.json")
        assert got == tree_digest(model_dir)
    finally:
        fsspec.filesystem("memory").rm(base.split("://")[1].split("/")[0], recursive=True)


def test_hit_and_miss_are_logged_with_bytes_and_duration_l3(published, cache, caplog):
    caplog.set_level(logging.INFO, logger="hdfs_models")
    localize(published, cache_dir=cache)
    miss = [r.getMessage() for r in caplog.records if "cache miss" in r.getMessage()]
    assert len(miss) == 1 and f"{MODEL_BYTES} bytes" in miss[0] and "MB/s" in miss[0]
    caplog.clear()
    localize(published, cache_dir=cache)
    hit = [r.getMessage() for r in caplog.records if "cache hit" in r.getMessage()]
    assert len(hit) == 1 and " ms)" in hit[0]
    assert not any("cache miss" in r.getMessage() for r in caplog.records)


def test_cache_stats_count_every_call_as_hit_miss_or_error(published, cache, tmp_path):
    before = cache_stats()
    localize(published, cache_dir=cache).release()
    localize(published, cache_dir=cache).release()
    with pytest.raises(ModelNotFoundError):
        localize(str(tmp_path / "nope"), cache_dir=cache)
    pinned = resolve(published)
    (tmp_path / "ro").write_text("a file where the cache root should be")
    with pytest.raises(CacheError):
        localize(published, cache_dir=str(tmp_path / "ro" / "cache"), pinned=pinned)
    delta = cache_stats() - before
    assert delta == CacheStats(
        localize_calls=4,
        hits=1,
        misses=1,
        errors=2,
        bytes_downloaded=MODEL_BYTES,
        download_seconds=delta.download_seconds,
    )
    assert delta.download_seconds > 0
    assert delta.to_dict()["bytes_downloaded"] == MODEL_BYTES


def test_warm_localize_reads_nothing_but_the_resolution_l4(published, cache, tmp_path):
    log = str(tmp_path / "io.log")
    fs = FaultyFS(log)
    first = localize(published, cache_dir=cache, filesystem=fs)
    assert bytes_read(log) == MODEL_BYTES
    os.unlink(log)
    second = localize(published, cache_dir=cache, filesystem=fs)
    assert second.path == first.path
    opened = [os.path.basename(p) for op, p, _ in read_log(log) if op == "open"]
    assert opened == ["MANIFEST.json"]  # the resolution; no data file, no extra listing
    os.unlink(log)
    pinned = resolve(published)
    third = localize("ignored", cache_dir=cache, filesystem=fs, pinned=pinned)
    assert third.path == first.path
    # pinned + cached: each file opened as the caller (K5, P10; a local open is the check); no byte read
    checked = read_log(log)
    opened = sorted(os.path.basename(p) for op, p, _ in checked if op == "open")
    assert opened == sorted(posixpath.basename(rel) for rel in version_files(pinned))
    assert len(opened) == len(pinned.files) + 1 and {op for op, _, _ in checked} == {"open"}
    os.unlink(log)
    fourth = localize("ignored", cache_dir=cache, filesystem=fs, pinned=resolve(published), trust_cache=True)
    assert fourth.path == first.path
    assert read_log(log) == []  # trust_cache: no store I/O at all


def test_deleted_version_keeps_serving_the_pinned_job_h4(published, cache, caplog):
    """H4 (the MiniDFS case: integration/test_reliability_minidfs.py): gone from the store, still cached."""
    pinned = resolve(published)
    with localize(published, cache_dir=cache) as first:
        path = first.path
    shutil.rmtree(os.path.join(published, "1"))
    with caplog.at_level(logging.WARNING, logger="hdfs_models._versions"):
        with localize(published, cache_dir=cache, pinned=pinned) as again:
            assert again.path == path and os.path.isfile(os.path.join(path, DATA))
    assert "gone from the store; the pinned job keeps using the cached copy" in caplog.text
    with pytest.raises(ModelNotFoundError, match=published):
        localize(published, cache_dir=cache)  # a new resolution fails clearly
    other = str(published) + "-never-cached"
    publish(write_fake_model(os.path.join(os.path.dirname(cache), "src2"), seed=9), other, signatures=False)
    never = resolve(other)
    shutil.rmtree(os.path.join(other, "1"))
    with pytest.raises(ModelNotFoundError, match=other):
        localize(other, cache_dir=cache, pinned=never)  # nothing cached: the store's answer stands


def test_unknown_option_is_a_type_error(published, cache):
    with pytest.raises(TypeError, match="unknown cache option"):
        localize(published, cache_dir=cache, paralellism=2)


def test_missing_url_b1(tmp_path, cache):
    with pytest.raises(ModelNotFoundError, match="nope") as info:
        localize(str(tmp_path / "nope"), cache_dir=cache)
    assert isinstance(info.value, FileNotFoundError)
    assert _leftovers(cache) == [] and _entries(cache) == []


@pytest.mark.parametrize(
    "missing, named", [("saved_model.pb", "saved_model.pb"), (DATA, "variables.data-00000-of-00001")]
)
def test_incomplete_tree_is_refused_before_download_b3_b10(published, cache, tmp_path, missing, named):
    pinned = resolve(published)
    files = tuple(f for f in pinned.files if f.path != missing)
    broken = type(pinned)(pinned.base_url, pinned.name, 9, pinned.url, pinned.digest, files)
    log = str(tmp_path / "io.log")
    with pytest.raises(InvalidModelError, match=named):
        localize("x", cache_dir=cache, pinned=broken, filesystem=FaultyFS(log))
    assert bytes_read(log) == 0
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_manifest_names_a_missing_file_b7(published, cache, tmp_path):
    os.unlink(os.path.join(published, "1", DATA))
    log = str(tmp_path / "io.log")
    with pytest.raises(IntegrityError, match="the manifest lists variables/variables.data") as info:
        localize(published, cache_dir=cache, filesystem=FaultyFS(log), **FAST)
    assert info.value.attempts == 2  # one retry
    assert _entries(cache) == [] and _leftovers(cache) == []


@pytest.mark.parametrize("damage, match", [("resize", "has 11 bytes, expected 300000"), ("rewrite", "sha256 of")])
def test_wrong_size_or_digest_b7_h3(published, cache, damage, match):
    path = os.path.join(published, "1", DATA)
    if damage == "resize":
        open(path, "wb").write(b"x" * 11)
    else:
        data = bytearray(open(path, "rb").read())
        data[1000] ^= 1
        open(path, "wb").write(bytes(data))
    with pytest.raises(IntegrityError, match=match) as info:
        localize(published, cache_dir=cache, **FAST)
    assert info.value.attempts == 2
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_unlisted_files_warn_or_fail_in_strict_mode_b8(published, cache):
    open(os.path.join(published, "1", "stray.txt"), "w").write("x")
    with pytest.raises(IntegrityError, match=r"not listed in the manifest: \['stray.txt'\].*strict"):
        localize(published, cache_dir=cache, strict=True)
    assert _entries(cache) == []
    with pytest.warns(ExtraFilesWarning, match="stray.txt"):
        model = localize(published, cache_dir=cache)
    assert not os.path.exists(os.path.join(model.path, "stray.txt"))


def test_read_failure_is_retried_into_a_new_temp_name_f1(published, cache, tmp_path, model_dir):
    log = str(tmp_path / "io.log")
    fs = FaultyFS(log, {DATA: Fault(fail_after=100_000, times=1)})
    model = localize(published, cache_dir=cache, filesystem=fs, **FAST)
    opens = [p for op, p, _ in read_log(log) if op == "open" and p.endswith(DATA)]
    assert len(opens) == 2
    assert tree_digest(model.path)[DATA] == tree_digest(model_dir)[DATA]
    assert not any(name.endswith((".part1", ".part2")) for name in os.listdir(os.path.join(model.path, "variables")))


def test_progress_reports_done_and_total_bytes_and_takes_back_a_failed_attempt(published, cache):
    calls = []
    fs = FaultyFS(None, {DATA: Fault(flip=True, times=1)})  # the first copy fails its digest check
    localize(
        published, cache_dir=cache, filesystem=fs, progress=lambda done, total: calls.append((done, total)), **FAST
    )
    assert {total for _, total in calls} == {MODEL_BYTES}
    assert calls[-1] == (MODEL_BYTES, MODEL_BYTES)
    assert max(done for done, _ in calls) <= MODEL_BYTES  # the failed copy's bytes were taken back
    assert any(b < a for (a, _), (b, _) in zip(calls, calls[1:]))
    calls.clear()
    localize(published, cache_dir=cache, progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # a hit moves no bytes


def test_persistent_failure_gives_up_with_attempts_and_elapsed_f2_l3(published, cache):
    fs = FaultyFS(None, {DATA: Fault(fail_after=10)})
    with pytest.raises(StoreError, match=r"failed after 3 attempt\(s\)") as info:
        localize(published, cache_dir=cache, filesystem=fs, **FAST)
    err = info.value
    assert err.url.endswith("mnist/1") and err.version == 1
    assert err.attempts == 3 and err.elapsed > 0
    assert err.local_path.startswith(cache)
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_deadline_bounds_the_retries_f2(published, cache):
    fs = FaultyFS(None, {DATA: Fault(fail_after=10)})
    with pytest.raises(StoreError, match="deadline reached") as info:
        localize(published, cache_dir=cache, filesystem=fs, attempts=50, backoff=0.2, deadline=0.5)
    assert info.value.attempts < 50 and info.value.elapsed < 5


@pytest.mark.parametrize("kind", ["manifest", "plain"])
def test_short_read_is_detected_and_retried_f3(kind, published, plain, cache):
    base = published if kind == "manifest" else plain
    model = localize(base, cache_dir=cache, filesystem=FaultyFS(None, {DATA: Fault(short_after=5, times=1)}), **FAST)
    assert os.path.getsize(os.path.join(model.path, DATA)) == DATA_BYTES
    model.release()
    shutil.rmtree(cache)
    with pytest.raises(IntegrityError, match="short read"):
        localize(base, cache_dir=cache, filesystem=FaultyFS(None, {DATA: Fault(short_after=5)}), **FAST)
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_flipped_bytes_with_a_manifest_f4(published, cache, model_dir):
    model = localize(published, cache_dir=cache, filesystem=FaultyFS(None, {DATA: Fault(flip=True, times=1)}), **FAST)
    assert tree_digest(model.path)[DATA] == tree_digest(model_dir)[DATA]
    model.release()
    shutil.rmtree(cache)
    with pytest.raises(IntegrityError, match="sha256") as info:
        localize(published, cache_dir=cache, filesystem=FaultyFS(None, {DATA: Fault(flip=True)}), **FAST)
    assert info.value.attempts == 2
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_source_rewritten_during_download_f5(plain, cache):
    index = os.path.join(plain, "1", "variables", "variables.index")

    def rewrite(_path):
        data = open(index, "rb").read()
        open(index, "wb").write(bytes(b ^ 1 for b in data))  # same size, new bytes and mtime
        os.utime(index, (1, 1))

    fs = FaultyFS(None, {DATA: Fault(on_open=rewrite, times=1)})
    with pytest.raises(SourceChangedError, match="changed during the download"):
        localize(plain, cache_dir=cache, filesystem=fs, **FAST)
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_source_deleted_during_download_f5(plain, cache):
    fs = FaultyFS(None, {DATA: Fault(on_open=os.unlink)})
    with pytest.raises(SourceChangedError, match="disappeared during the download"):
        localize(plain, cache_dir=cache, filesystem=fs, **FAST)
    assert _entries(cache) == [] and _leftovers(cache) == []


class _FullDisk(FileProxy):
    def __init__(self, inner, limit):
        super().__init__(inner)
        self.limit, self.written = limit, 0

    def write(self, data):
        if self.written + len(data) > self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += len(data)
        return self.inner.write(data)


def test_disk_full_names_the_root_and_keeps_earlier_entries_f6(published, tmp_path, cache, monkeypatch):
    first = localize(published, cache_dir=cache)
    before = tree_digest(first.path)
    publish(write_fake_model(str(tmp_path / "v2"), data_bytes=200_000, seed=2), published, signatures=False)
    real_open = download_module._open_part
    monkeypatch.setattr(download_module, "_open_part", lambda path: _FullDisk(real_open(path), 1000))
    with pytest.raises(CacheError, match=f"cache root {cache}.*No space left") as info:
        localize(published, cache_dir=cache, **FAST)
    assert info.value.path == cache and info.value.reason == "ENOSPC"
    assert info.value.attempts == 1  # a full disk is not retried
    assert _entries(cache) == [os.path.basename(first.path)] and _leftovers(cache) == []
    assert tree_digest(first.path) == before


def test_read_only_root_is_an_error_at_first_use_f7(published, tmp_path):
    """As root, permission bits stop nothing: the root is a read-only tmpfs mounted for the test
    (or the kernel's read-only /sys where mounting is not allowed)."""
    if os.geteuid() == 0:
        with _read_only_mount(tmp_path / "ro") as ro:
            if ro is not None:
                roots = [ro, os.path.join(ro, "sub")]
            elif os.access("/sys", os.W_OK) and not _cannot_write("/sys"):
                pytest.skip("running as root with a writable /sys: no read-only directory to test with")
            else:
                roots = ["/sys", "/sys/hdfs-models-test"]
            _assert_unusable(published, roots)
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    _assert_unusable(published, [str(ro), str(ro / "sub")])


def _assert_unusable(published, roots):
    for root in roots:
        with pytest.raises(CacheError, match=f"cache root {root} is not usable") as info:
            localize(published, cache_dir=root)
        assert info.value.path == root


@contextlib.contextmanager
def _read_only_mount(path):
    """A read-only tmpfs at ``path`` (None where this process may not mount), unmounted after."""
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0755", "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:  # no CAP_SYS_ADMIN (an unprivileged container)
        yield None
        return
    try:
        yield str(path) if _cannot_write(str(path)) else None
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _cannot_write(directory):
    try:
        fd = os.open(os.path.join(directory, ".hm-probe"), os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError:
        return True
    os.close(fd)
    os.unlink(os.path.join(directory, ".hm-probe"))
    return False


def test_permissions_after_commit_c8(published, cache):
    old = os.umask(0o077)
    try:
        model = localize(published, cache_dir=cache)
    finally:
        os.umask(old)
    modes = {}
    for dirpath, _dirnames, filenames in os.walk(model.path):
        modes[dirpath] = os.stat(dirpath).st_mode & 0o777
        for name in filenames:
            modes[os.path.join(dirpath, name)] = os.stat(os.path.join(dirpath, name)).st_mode & 0o777
    assert {m for p, m in modes.items() if os.path.isdir(p)} == {0o755}
    assert {m for p, m in modes.items() if os.path.isfile(p)} == {0o644}
    assert os.path.isdir(os.path.join(model.path, "assets"))  # empty dir recreated


def test_local_model_release_pickle_and_context(published, cache):
    with localize(published, cache_dir=cache) as model:
        clone = pickle.loads(pickle.dumps(model))
        assert clone == model and clone.path == model.path
        assert evict(cache, max_versions=0) == []  # in use: not evicted (C6)
    clone.release()  # a copy holds nothing; releasing is harmless
    assert evict(cache, max_versions=0) == [model.path]
    assert _entries(cache) == []


def test_gc_evicts_least_recently_used_not_in_use(published, tmp_path, cache):
    v1 = localize(published, version=1, cache_dir=cache)
    publish(write_fake_model(str(tmp_path / "v2"), data_bytes=1000, seed=2), published, signatures=False)
    publish(write_fake_model(str(tmp_path / "v3"), data_bytes=1000, seed=3), published, signatures=False)
    v2 = localize(published, version=2, cache_dir=cache)
    v3 = localize(published, version=3, cache_dir=cache)
    os.utime(v2.path + ".use", (1, 1))  # v2 is the oldest use
    v2.release()
    v3.release()
    assert evict(cache, max_versions=2) == [v2.path]  # v2 has the oldest use
    assert sorted(_entries(cache)) == sorted(os.path.basename(p) for p in (v1.path, v3.path))
    assert evict(cache, max_versions=0) == [v3.path]  # v1 is in use: kept although over the limit (C6)
    v1.release()
    assert evict(cache, max_bytes=1_000_000) == []
    assert evict(cache, max_bytes=1000) == [v1.path]
    assert evict(cache) == []  # no limits: nothing evicted


def test_localize_evicts_by_max_versions(published, tmp_path, cache):
    localize(published, version=1, cache_dir=cache).release()
    publish(write_fake_model(str(tmp_path / "v2"), data_bytes=1000, seed=2), published, signatures=False)
    v2 = localize(published, cache_dir=cache, max_versions=1)
    assert _entries(cache) == [os.path.basename(v2.path)]


def test_dead_downloads_are_swept_live_ones_kept_c4(published, cache):
    import multiprocessing

    proc = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    os.makedirs(cache)
    dead = os.path.join(cache, f".tmp-mnist-1-0123456789abcdef-{proc.pid}-abc")
    live = os.path.join(cache, f".tmp-mnist-1-0123456789abcdef-{os.getppid()}-abc")
    for path in (dead, live):
        os.makedirs(os.path.join(path, "variables"))
    evict(cache)
    assert os.path.isdir(live) and not os.path.exists(dead)


def test_loser_of_a_commit_race_uses_the_winner_c5(published, cache, monkeypatch):
    import hdfs_models.cache._layout as store

    winner = {}
    real_rename = store.rename_noreplace

    def racing_rename(src, dst):
        if os.path.basename(src).startswith(".tmp-") and not winner:
            shutil.copytree(src, dst)  # another process commits the same key first
            winner["tree"] = tree_digest(dst)
        return real_rename(src, dst)

    monkeypatch.setattr(store, "rename_noreplace", racing_rename)
    model = localize(published, cache_dir=cache)
    assert tree_digest(model.path) == winner["tree"]
    assert _leftovers(cache) == []


def test_commit_never_replaces_what_is_at_the_entry_even_an_empty_dir_c5(tmp_path):
    from hdfs_models.cache._layout import commit_entry

    tmp, entry = tmp_path / ".tmp-m-1-0123456789abcdef-1-x", tmp_path / "m-1-0123456789abcdef"
    tmp.mkdir()
    (tmp / "saved_model.pb").write_bytes(b"ours")
    entry.mkdir()  # plain os.rename would silently replace an empty directory
    assert commit_entry(str(tmp), str(entry)) is False
    assert os.listdir(entry) == [] and not tmp.exists()


def test_a_file_larger_than_the_chunks_streams_through_the_writer(tmp_path, cache):
    src = write_fake_model(str(tmp_path / "big"), data_bytes=20_000_000)
    base = str(tmp_path / "store" / "big")
    publish(src, base, signatures=False)
    log = str(tmp_path / "io.log")
    model = localize(base, cache_dir=cache, filesystem=FaultyFS(log))
    reads = [n for op, p, n in read_log(log) if op == "read" and p.endswith(DATA) and n]
    assert len(reads) == 5 and sum(reads) == 20_000_000  # 4 MiB chunks
    assert tree_digest(model.path)[DATA] == tree_digest(src)[DATA]


def test_gc_never_touches_what_is_not_an_entry(published, cache):
    os.makedirs(os.path.join(cache, "photos"))
    open(os.path.join(cache, "notes.txt"), "w").write("mine")
    model = localize(published, cache_dir=cache)
    model.release()
    assert evict(cache, max_versions=0) == [model.path]
    assert sorted(n for n in os.listdir(cache) if "." not in n or n == "notes.txt") == ["notes.txt", "photos"]


def test_truncated_graph_without_a_manifest_is_refused_b4(plain, cache):
    pb = os.path.join(plain, "1", "saved_model.pb")
    open(pb, "wb").write(b"\x08\x01\x12\x40\x08")  # declares 64 bytes, holds 1
    with pytest.raises(InvalidModelError, match=r"mnist/1/saved_model.pb: saved_model.pb is truncated"):
        localize(plain, cache_dir=cache)
    assert _entries(cache) == [] and _leftovers(cache) == []


def test_discard_refuses_a_path_that_is_not_a_cache_entry(tmp_path):
    from hdfs_models import discard

    victim = tmp_path / "my-own-model"
    victim.mkdir()
    with pytest.raises(CacheError, match="is not a node-cache entry"):
        discard(victim)
    assert victim.is_dir()
