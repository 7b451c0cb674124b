"""P5: a cache root whose ``flock`` does not exclude is refused at first use, unless locking is off.

For real: a FUSE filesystem whose ``flock`` succeeds and locks nothing
(``tests/_noflock_fuse.py``, mounted for the test; needs root, /dev/fuse,
libfuse2 and fusepy). In process, for the two kinds everywhere: a no-op
``flock`` and POSIX record locks (``lockf``), which is how Linux's NFS
client emulates ``flock``: per process, so two descriptors of one process
never conflict. With ``locking=False`` (the documented opt-in,
``HDFS_MODELS_LOCKING=0``) the cache works there and never removes an
entry: no eviction, no sweep, and :func:`discard` only moves aside.
"""

import fcntl
import os
import subprocess
import sys
import time

import pytest

from hdfs_models import CacheError, discard, localize
from hdfs_models.cache._options import check_locking, filesystem_type, flock_defect
from hdfs_models.testing import write_fake_model
from hdfs_models.testing.pytest_plugin import require_module

REAL_FLOCK = fcntl.flock


@pytest.fixture
def store(tmp_path):
    for version in (1, 2):
        write_fake_model(tmp_path / "store" / "m" / str(version), seed=version)
    return str(tmp_path / "store" / "m")


@pytest.fixture(params=["no-op", "posix"])
def broken_flock(request, monkeypatch):
    """Every ``flock`` in this process behaves like the broken kind (the cache's locks included)."""
    if request.param == "no-op":
        monkeypatch.setattr(fcntl, "flock", lambda fd, op: None)
    else:
        monkeypatch.setattr(fcntl, "flock", lambda fd, op: fcntl.lockf(fd, op))
    return request.param


def test_flock_on_a_local_disk_excludes(tmp_path):
    assert flock_defect(str(tmp_path)) is None
    check_locking(str(tmp_path))
    assert os.listdir(tmp_path) == []  # the probe file is gone
    assert filesystem_type(str(tmp_path)) and filesystem_type("/proc") == "proc"


def test_a_root_whose_flock_does_not_exclude_is_refused_naming_the_fix_p5(store, tmp_path, broken_flock):
    root = tmp_path / f"cache-{broken_flock}"
    with pytest.raises(CacheError) as info:
        localize(store, cache_dir=root)
    message = str(info.value)
    assert f"cache root {root}" in message and "cannot be locked" in message
    assert "HDFS_MODELS_LOCKING=0" in message and "local disk" in message
    assert info.value.reason == "flock does not exclude"
    assert os.listdir(root) == []  # nothing downloaded, no probe left


def test_without_locks_nothing_in_use_is_ever_removed_p5(store, tmp_path, broken_flock):
    root = tmp_path / f"cache-{broken_flock}"
    first = localize(store, 1, cache_dir=root, locking=False, max_versions=1)
    second = localize(store, 2, cache_dir=root, locking=False, max_versions=1)
    assert os.path.isdir(first.path) and os.path.isdir(second.path)  # max_versions=1 evicted nothing
    assert discard(second.path, locking=False)
    assert os.path.isdir(first.path) and not os.path.exists(second.path)
    aside = [n for n in os.listdir(root) if n.startswith(".corrupt-")]
    assert len(aside) == 1 and os.listdir(root / aside[0]) == ["entry"]  # moved aside, not deleted
    localize(store, 2, cache_dir=root, locking=False, max_versions=1)  # a fresh copy; no sweep removes the old
    assert [n for n in os.listdir(root) if n.startswith(".corrupt-")] == aside
    first.release()


@pytest.fixture
def no_flock_mount(tmp_path):
    """A real FUSE mount (tests/_noflock_fuse.py) whose flock claims every lock and takes none."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):  # a privilege, not a dependency: .ci/check_junit.py
        pytest.skip("this machine cannot mount FUSE filesystems (needs root and /dev/fuse)")
    require_module("fuse", "test")  # fusepy; it loads libfuse.so.2 (Debian: libfuse2)
    source, mountpoint = tmp_path / "backing", tmp_path / "mnt"
    source.mkdir()
    mountpoint.mkdir()
    daemon = os.path.join(os.path.dirname(__file__), "_noflock_fuse.py")
    proc = subprocess.Popen([sys.executable, daemon, str(source), str(mountpoint)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not os.path.ismount(mountpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the FUSE filesystem did not mount: {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)
    proc.wait(timeout=30)


def test_a_real_filesystem_whose_flock_does_nothing_is_detected_p5(store, no_flock_mount):
    assert filesystem_type(str(no_flock_mount)) == "fuse"
    assert "does not exclude" in (flock_defect(str(no_flock_mount)) or "")
    root = no_flock_mount / "cache"
    with pytest.raises(CacheError, match=f"cache root {root} \\(filesystem fuse\\) cannot be locked"):
        localize(store, cache_dir=root)
    first = localize(store, 1, cache_dir=root, locking=False, max_versions=1)  # the opt-in works there
    second = localize(store, 2, cache_dir=root, locking=False, max_versions=1)
    assert os.path.isdir(first.path) and os.path.isdir(second.path)  # nothing evicted without locks
    assert discard(first.path, locking=False) and not os.path.exists(first.path)
    assert [n for n in os.listdir(root) if n.startswith(".corrupt-")]  # moved aside, not deleted
