"""RELIABILITY P6: the executor's disk fills during a download.

Entries nobody holds are evicted (least recently used first) and the download is tried once
more; if it still does not fit, a CacheError names the root, the bytes needed and the bytes
free; entries in use are untouched. The disk is a real 4 MiB tmpfs where this process may mount
one (root in a container, as on CI); elsewhere a byte quota on the cache's own writes gives the
same ENOSPC at the same point (the download's write seam) and the same free-space answers.
"""

import collections
import errno
import os
import subprocess

import pytest
from _faulty_fs import FileProxy

from hdfs_models import CacheError, localize
from hdfs_models._publish import publish
from hdfs_models.testing import write_fake_model

MiB = 1024 * 1024
DISK = 4 * MiB
MODEL = 1_500_000  # bytes of variables data: two fit on the disk, three do not


def _du(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


class _QuotaFile(FileProxy):
    def __init__(self, inner, root):
        super().__init__(inner)
        self.root = root

    def write(self, data):
        if _du(self.root) + len(data) > DISK:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.inner.write(data)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    root = tmp_path / "disk"
    root.mkdir()
    try:
        command = ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(root)]
        mounted = subprocess.run(command, capture_output=True).returncode == 0
    except OSError:  # no mount command at all
        mounted = False
    if mounted:
        yield str(root), "tmpfs"
        subprocess.run(["umount", "-l", str(root)], check=True)
        return
    import hdfs_models._download as download
    import hdfs_models.cache._state as state

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(download, "_open_part", lambda path: _QuotaFile(open(path, "xb"), str(root)))
    monkeypatch.setattr(state.shutil, "disk_usage", lambda p: usage(DISK, _du(str(root)), DISK - _du(str(root))))
    yield str(root), "quota"


@pytest.fixture
def base(tmp_path):
    base = str(tmp_path / "store" / "m")
    for seed in range(4):  # versions 1-4, each its own bytes
        publish(write_fake_model(str(tmp_path / f"src{seed}"), data_bytes=MODEL, seed=seed), base, signatures=False)
    return base


def test_a_full_disk_evicts_the_least_recently_used_unheld_entry_and_retries(small_disk, base):
    root, _ = small_disk
    first = localize(base, version=1, cache_dir=root)
    first.release()
    second = localize(base, version=2, cache_dir=root)
    second.release()
    os.utime(first.path + ".use", (1, 1))  # the least recently used
    third = localize(base, version=3, cache_dir=root)  # does not fit beside both: version 1 goes
    assert (
        third.version == 3
        and os.path.getsize(os.path.join(third.path, "variables", "variables.data-00000-of-00001")) > 0
    )
    assert not os.path.exists(first.path) and os.path.isdir(second.path)
    third.release()


def test_a_disk_full_of_entries_in_use_fails_naming_the_root_and_the_bytes(small_disk, base):
    root, _ = small_disk
    held = [localize(base, version=v, cache_dir=root) for v in (1, 2)]
    with pytest.raises(
        CacheError, match=r"cache root .* is full \(No space left on device\): .* needs \d+ bytes, \d+ bytes are free"
    ) as caught:
        localize(base, version=3, cache_dir=root)
    err = caught.value
    assert err.reason == "ENOSPC" and err.path.startswith(root) and err.details["needed"] > err.details["free"]
    for model in held:  # untouched, still complete
        assert os.path.getsize(os.path.join(model.path, "variables", "variables.data-00000-of-00001")) > 0
        model.release()
    leftovers = [n for d, dirs, _ in os.walk(root) for n in dirs if n.startswith(".tmp-")]
    assert leftovers == []  # the partial download is gone
