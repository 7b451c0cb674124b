"""Two real Unix users share one node-cache root (RELIABILITY K6), and the pinned-hit store check (K5).

The tests run as root (as CI does) and create two users with ``useradd``;
each child process imports hdfs-models as root (the interpreter lives under
/root), then drops to its user before touching the cache, so what it may do
is exactly what that user may do.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from fsspec.implementations.local import LocalFileSystem

from hdfs_models import localize, publish, resolve
from hdfs_models._versions import version_files
from hdfs_models.errors import CacheError, StorePermissionError
from hdfs_models.testing import write_fake_model
from hdfs_models.testing.pytest_plugin import require_or_skip

USERS = ("hmcache1", "hmcache2")

_CHILD = r"""
import json, os, sys
import hdfs_models, fsspec.implementations.local  # imported as root: the interpreter is under /root
from hdfs_models import localize
uid, store, root, other = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
out = {}
try:
    model = localize(store, cache_dir=root)
    out["path"] = model.path
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
tries = {
    "list": lambda: os.listdir(other),
    "rename": lambda: os.rename(other, other + "-moved"),
    "remove": lambda: os.rmdir(other),
    "create": lambda: open(os.path.join(other, "planted"), "w").close(),
}
out["denied"] = {}
for name, attempt in tries.items():
    if other == "-":
        break
    try:
        attempt()
        out["denied"][name] = False
    except PermissionError:
        out["denied"][name] = True
print(json.dumps(out))
"""


def _ensure_users() -> dict[str, int]:
    if os.geteuid() != 0:
        require_or_skip("K6 needs root to create two Unix users (useradd)")
    # root's tools live in /usr/sbin, which a minimal PATH (env -i PATH=/usr/bin:/bin) leaves out
    useradd = shutil.which("useradd", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if useradd is None:
        require_or_skip("K6 needs useradd (Debian: passwd)")
    uids = {}
    for name in USERS:
        try:
            uids[name] = pwd.getpwnam(name).pw_uid
        except KeyError:
            proc = subprocess.run(
                [useradd, "-M", "-U", "-s", "/usr/sbin/nologin", name], capture_output=True, text=True
            )
            if proc.returncode not in (0, 9):  # 9: created meanwhile by a parallel run
                pytest.fail(f"useradd {name}: {proc.stderr}")
            uids[name] = pwd.getpwnam(name).pw_uid
    return uids


def _as(uid: int, store: str, root: str, other: str = "-") -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(uid), store, root, other],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.getcwd(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def shared():
    """A world-readable model store and a node-wide root created by an admin: mode 1777, like /tmp."""
    top = tempfile.mkdtemp(prefix="hm-k6-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        store = write_fake_model(os.path.join(top, "store", "m", "1"), shards=2)
        for dirpath, _dirnames, filenames in os.walk(os.path.join(top, "store")):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        root = os.path.join(top, "cache")
        os.mkdir(root)
        os.chmod(root, 0o1777)
        yield os.path.dirname(store), root
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_k6_two_users_share_a_root_in_private_subtrees(shared):
    """K6: each user's entries live in their own 0700 subtree; neither can alter the other's."""
    uids = _ensure_users()
    store, root = shared
    first = _as(uids[USERS[0]], store, root)
    assert "error" not in first, first
    mine = os.path.join(root, f"user-{uids[USERS[0]]}")
    assert first.get("path", first).startswith(mine + os.sep)
    second = _as(uids[USERS[1]], store, root, other=mine)
    assert "error" not in second, second
    theirs = os.path.join(root, f"user-{uids[USERS[1]]}")
    assert second.get("path", second).startswith(theirs + os.sep)
    assert second["denied"] == {"list": True, "rename": True, "remove": True, "create": True}
    for uid, subtree in ((uids[USERS[0]], mine), (uids[USERS[1]], theirs)):
        st = os.lstat(subtree)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o700)
    for dirpath, _dirnames, filenames in os.walk(root):
        for path in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
            if path != root:
                assert not os.lstat(path).st_mode & stat.S_IWOTH, f"{path} is world-writable"
    assert sorted(os.listdir(root)) == sorted([os.path.basename(mine), os.path.basename(theirs)])


def test_k6_a_planted_subtree_is_refused(shared):
    """K6: a ``user-<uid>`` dir made by someone else is a CacheError naming it, nothing is used."""
    uids = _ensure_users()
    store, root = shared
    planted = os.path.join(root, f"user-{uids[USERS[1]]}")
    os.mkdir(planted)
    os.chown(planted, uids[USERS[0]], uids[USERS[0]])
    out = _as(uids[USERS[1]], store, root)
    assert out["error"].startswith("CacheError: cache subtree " + planted)
    assert "not a private directory" in out["error"] and os.listdir(planted) == []


def test_private_root_is_used_as_is_and_created_0700(tmp_path):
    """A root only its owner can write holds entries directly; one hdfs-models creates is 0700."""
    store = write_fake_model(tmp_path / "store" / "m" / "1")
    root = tmp_path / "fresh" / "cache"
    model = localize(os.path.dirname(store), cache_dir=root)
    assert os.path.dirname(model.path) == str(root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


class _RefusingFS(LocalFileSystem):
    """A local store that refuses the caller once ``refuse`` is set: every file (True) or the files
    whose names end with one of the given suffixes (the store's answer to another user)."""

    refuse: bool | tuple[str, ...] = False
    calls: list[str]

    def _refused(self, path):
        return self.refuse is True or (bool(self.refuse) and str(path).endswith(self.refuse))

    def info(self, path, **kwargs):
        self.calls.append(f"info {path}")
        if self._refused(path):
            raise PermissionError(f"Permission denied: {path}")
        return super().info(path, **kwargs)

    def _open(self, path, mode="rb", *args, **kwargs):
        self.calls.append(f"open {path}")
        if "r" in mode and self._refused(path):
            raise PermissionError(f"Permission denied: {path}")
        return super()._open(path, mode, *args, **kwargs)


def _refusing_fs():
    fs = _RefusingFS(skip_instance_cache=True)
    fs.calls = []
    return fs


def test_k5_pinned_hit_asks_the_store_first(tmp_path):
    """K5 (hermetic): a pinned, cached version is not served once the store refuses the caller."""
    fs = _refusing_fs()
    store = write_fake_model(tmp_path / "store" / "m" / "1")
    pinned = resolve(os.path.dirname(store), filesystem=fs)
    first = localize("ignored", cache_dir=tmp_path / "c", pinned=pinned, filesystem=fs)
    fs.refuse = True
    with pytest.raises(StorePermissionError, match="store/m/1/saved_model.pb: checking access"):
        localize("ignored", cache_dir=tmp_path / "c", pinned=pinned, filesystem=fs)
    offline = localize("ignored", cache_dir=tmp_path / "c", pinned=pinned, filesystem=fs, trust_cache=True)
    assert offline.path == first.path


@pytest.mark.parametrize("shards", [1, 6])
def test_p10_one_unreadable_data_file_is_not_served_and_a_warm_hit_costs_one_read_per_file(tmp_path, shards):
    """P10 (hermetic; the Kerberized case is integration/test_kerberos_store.py): the manifest is
    readable, one variables shard is not: the cached entry is refused, naming that file. A warm hit
    costs exactly one open per file of the version, whatever the files' sizes."""
    fs = _refusing_fs()
    source = write_fake_model(tmp_path / "src", shards=shards, data_bytes=(1 << 20) * shards)
    publish(source, str(tmp_path / "store" / "m"), signatures=False)
    store = str(tmp_path / "store" / "m" / "1")
    pinned = resolve(os.path.dirname(store), filesystem=fs)
    assert pinned.manifest is not None
    first = localize("ignored", cache_dir=tmp_path / "c", pinned=pinned, filesystem=fs)
    fs.calls.clear()
    assert localize("ignored", cache_dir=tmp_path / "c", pinned=pinned, filesystem=fs).path == first.path
    assert sorted(fs.calls) == sorted(f"open {store}/{rel}" for rel in version_files(pinned))
    assert len(fs.calls) == len(pinned.files) + 1
    shard = sorted(f.path for f in pinned.files if "variables.data" in f.path)[-1]
    fs.refuse = (shard,)
    with pytest.raises(StorePermissionError) as info:
        localize("ignored", cache_dir=tmp_path / "c", pinned=pinned, filesystem=fs)
    assert f"store/m/1/{shard}: checking access" in str(info.value)


def test_cache_root_that_is_a_file_is_a_cache_error(tmp_path):
    (tmp_path / "file").write_text("x")
    store = write_fake_model(tmp_path / "store" / "m" / "1")
    with pytest.raises(CacheError, match="is not a directory"):
        localize(os.path.dirname(store), cache_dir=tmp_path / "file")


def test_through_hdfs_native_the_open_is_the_check_and_no_byte_is_read_p10():
    """hdfs-native's open asks the NameNode for block locations (READ-checked) and no DataNode: the
    library's own Kerberos subclasses included; a store whose open may be lazy reads one byte."""
    import fsspec

    from hdfs_models.store._access import _open_checks
    from hdfs_models.store._hdfs_native import KerberosHdfsFileSystem, KerberosViewfsFileSystem

    for cls in (KerberosHdfsFileSystem, KerberosViewfsFileSystem):
        assert _open_checks(cls.__new__(cls)), cls
    assert _open_checks(fsspec.filesystem("file")) and not _open_checks(fsspec.filesystem("memory"))
