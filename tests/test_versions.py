"""Version layout and resolve (RELIABILITY B1, B2, B5, B6, H1, H2, H5)."""

import pickle
import uuid

import fsspec
import fsspec.implementations.local
import pytest
from fsspec.implementations.memory import MemoryFileSystem

import hdfs_models._versions as versions_mod
from hdfs_models._manifest import MANIFEST_NAME, build_manifest, listing_digest
from hdfs_models._versions import PinnedVersion, list_versions, parse_version, resolve
from hdfs_models.errors import (
    IncompleteVersionError,
    InvalidModelError,
    ModelNotFoundError,
    UnsafeNameError,
)
from hdfs_models.testing import SAVED_MODEL_PB, write_fake_model


@pytest.fixture
def mem():
    """(memory filesystem, unique base path) removed afterwards."""
    fs = fsspec.filesystem("memory")
    base = f"/versions-{uuid.uuid4().hex}/mnist"
    yield fs, base
    if fs.exists(base.rsplit("/", 1)[0]):
        fs.rm(base.rsplit("/", 1)[0], recursive=True)


def _publish_manifest(fs, tmp_path, path, version):
    """Write a fake model plus its MANIFEST.json at ``path`` (what publish leaves)."""
    local = write_fake_model(str(tmp_path / f"src{version}"), seed=version)
    fs.put(local, path, recursive=True)
    fs.makedirs(f"{path}/assets", exist_ok=True)
    manifest = build_manifest(local, "mnist", version)
    fs.pipe_file(f"{path}/{MANIFEST_NAME}", manifest.to_json())
    return manifest


def test_latest_is_highest_complete_version_ignoring_other_names(mem, tmp_path):  # H2, H5
    fs, base = mem
    _publish_manifest(fs, tmp_path, f"{base}/1", 1)
    write_fake_model(f"{base}/2", fs=fs, empty_assets=False)  # no manifest, complete SavedModel
    write_fake_model(f"{base}/3", fs=fs, marker="_SUCCESS", empty_assets=False)
    fs.pipe_file(f"{base}/4/saved_model.pb", SAVED_MODEL_PB)  # being written: no variables yet
    write_fake_model(f"{base}/_tmp-abc", fs=fs, empty_assets=False)
    write_fake_model(f"{base}/_logs", fs=fs, empty_assets=False)
    write_fake_model(f"{base}/007", fs=fs, empty_assets=False)  # not canonical: ignored
    fs.pipe_file(f"{base}/9", b"a file, not a version dir")
    assert list_versions(f"memory://{base}") == [1, 2, 3]
    assert list_versions(f"memory://{base}", complete_only=False) == [1, 2, 3, 4]
    pinned = resolve(f"memory://{base}")
    assert (pinned.version, pinned.url, pinned.base_url) == (3, f"memory://{base}/3", f"memory://{base}")
    assert "_SUCCESS" in [f.path for f in pinned.files]


def test_incomplete_version_asked_explicitly_raises(mem):  # H2
    fs, base = mem
    write_fake_model(f"{base}/1", fs=fs, empty_assets=False)
    fs.pipe_file(f"{base}/2/saved_model.pb", SAVED_MODEL_PB)
    with pytest.raises(IncompleteVersionError, match=f"memory://{base}/2: version 2 is incomplete: .*variables.index"):
        resolve(f"memory://{base}", 2)
    with pytest.raises(IncompleteVersionError, match="incomplete"):
        resolve(f"memory://{base}", "2")
    assert resolve(f"memory://{base}").version == 1


def test_file_still_being_copied_makes_the_version_incomplete(mem):  # H2
    """`hdfs dfs -put` writes ``<name>._COPYING_`` then renames: a complete SavedModel is not enough."""
    fs, base = mem
    write_fake_model(f"{base}/1", fs=fs, empty_assets=False)
    write_fake_model(f"{base}/2", fs=fs, empty_assets=False)
    fs.pipe_file(f"{base}/2/assets/vocab.txt._COPYING_", b"half")
    assert resolve(f"memory://{base}").version == 1
    with pytest.raises(
        IncompleteVersionError,
        match=r"/2: version 2 is incomplete: still being copied "
        r"\(assets/vocab.txt._COPYING_ is being written\)",
    ):
        resolve(f"memory://{base}", 2)
    fs.mv(f"{base}/2/assets/vocab.txt._COPYING_", f"{base}/2/assets/vocab.txt")
    assert resolve(f"memory://{base}").version == 2


def test_version_dir_without_any_marker_is_incomplete(mem):  # H2
    fs, base = mem
    fs.pipe_file(f"{base}/1/variables/variables.index", b"x")
    with pytest.raises(IncompleteVersionError, match="no MANIFEST.json, _SUCCESS or saved_model.pb"):
        resolve(f"memory://{base}", 1)
    with pytest.raises(ModelNotFoundError, match=r"no complete version \(incomplete: \[1\]\)"):
        resolve(f"memory://{base}")


def test_manifest_version_pins_manifest_digest(mem, tmp_path):
    fs, base = mem
    manifest = _publish_manifest(fs, tmp_path, f"{base}/5", 5)
    pinned = resolve(f"memory://{base}", 5)
    assert pinned.manifest == manifest
    assert pinned.digest == manifest.digest
    assert pinned.files == manifest.files and pinned.empty_dirs == ("assets",)
    assert pinned.total_bytes == manifest.total_bytes and pinned.signatures == {}


def test_manifestless_version_pins_listing_digest(mem):
    fs, base = mem
    write_fake_model(f"{base}/1", fs=fs, shards=2, empty_assets=False)
    fs.makedirs(f"{base}/1/assets/empty", exist_ok=True)
    pinned = resolve(f"memory://{base}", "latest")
    assert pinned.manifest is None
    assert [f.path for f in pinned.files] == [
        "saved_model.pb",
        "variables/variables.data-00000-of-00002",
        "variables/variables.data-00001-of-00002",
        "variables/variables.index",
    ]
    assert all(f.mtime is not None and f.sha256 is None for f in pinned.files)
    assert pinned.digest == listing_digest(pinned.files)
    assert pinned.empty_dirs == ("assets/empty",)
    fs.pipe_file(f"{base}/1/variables/variables.index", b"rewritten in place, longer")
    assert resolve(f"memory://{base}").digest != pinned.digest


def test_version_dir_url_resolves_to_itself(mem, tmp_path):
    fs, base = mem
    _publish_manifest(fs, tmp_path, f"{base}/3", 3)
    pinned = resolve(f"memory://{base}/3")
    assert (pinned.version, pinned.base_url, pinned.name) == (3, f"memory://{base}", "mnist")
    assert resolve(f"memory://{base}/3/", 3).digest == pinned.digest
    with pytest.raises(ModelNotFoundError, match="is version 3 itself; version 4 was asked for"):
        resolve(f"memory://{base}/3", 4)


def test_plain_savedmodel_dir_is_version_zero(tmp_path):
    local = write_fake_model(str(tmp_path / "export"))
    pinned = resolve(local)
    assert (pinned.version, pinned.name, pinned.base_url, pinned.url) == (0, "export", local, local)


def test_pinned_version_stays_pinned_when_a_new_one_appears(mem, tmp_path):  # H1
    fs, base = mem
    _publish_manifest(fs, tmp_path, f"{base}/1", 1)
    pinned = resolve(f"memory://{base}")
    _publish_manifest(fs, tmp_path, f"{base}/2", 2)
    shipped = pickle.loads(pickle.dumps(pinned))  # what a task receives
    assert shipped == pinned and shipped.version == 1 and shipped.url.endswith("/1")
    assert resolve(shipped.url).digest == pinned.digest
    assert resolve(f"memory://{base}").version == 2


def test_missing_base_or_version_names_the_url(mem, tmp_path):  # B1
    fs, base = mem
    with pytest.raises(ModelNotFoundError, match=f"memory://{base}: listing: not found") as info:
        resolve(f"memory://{base}")
    assert isinstance(info.value, FileNotFoundError) and info.value.url == f"memory://{base}"
    with pytest.raises(ModelNotFoundError, match="not found"):
        list_versions(str(tmp_path / "nope"))
    write_fake_model(f"{base}/1", fs=fs, empty_assets=False)
    with pytest.raises(ModelNotFoundError, match=rf"memory://{base}: version 7 not found \(versions: \[1\]\)"):
        resolve(f"memory://{base}", 7)
    fs.makedirs(f"{base}-empty", exist_ok=True)
    with pytest.raises(ModelNotFoundError, match="no integer-named version dirs"):
        resolve(f"memory://{base}-empty")
    assert sorted(fs.ls(base, detail=False)) == [f"{base}/1"]  # nothing written


def test_file_url_is_invalid_model(mem):  # B2
    fs, base = mem
    fs.pipe_file(f"{base}/model.tar.gz", b"x")
    with pytest.raises(InvalidModelError, match="is a file, not a directory"):
        resolve(f"memory://{base}/model.tar.gz")
    with pytest.raises(InvalidModelError, match="is a file, not a directory"):
        list_versions(f"memory://{base}/model.tar.gz")


@pytest.mark.parametrize("version", ["../1", "1/../2", "%2e%2e", "/1", "1\x00", "1#x", -1, True, "one", "", "١"])
def test_bad_versions_rejected_before_any_io(monkeypatch, version):  # B5
    monkeypatch.setattr(versions_mod, "open_store", _no_io)
    with pytest.raises(UnsafeNameError):
        resolve("memory://models/mnist", version)


@pytest.mark.parametrize("url", ["memory://models/../etc", "/models/%2e%2e/x", "hdfs://nn/m#alias", "/m/\x00"])
def test_bad_urls_rejected_before_any_io(monkeypatch, url):  # B5
    monkeypatch.setattr(versions_mod, "open_store", _no_io)
    with pytest.raises(UnsafeNameError, match="unsafe model URL"):
        resolve(url)
    with pytest.raises(UnsafeNameError, match="unsafe model URL"):
        list_versions(url)


def _no_io(*args, **kwargs):
    raise AssertionError("the filesystem was touched")


def test_parse_version():
    assert parse_version("latest") is None
    assert parse_version("12") == 12 and parse_version(3) == 3


class _EvilListing(MemoryFileSystem):
    """A store whose listings yield names outside the listed directory (B6)."""

    protocol = "evilmem"
    root_marker = "/"
    extra: dict = {}

    def ls(self, path, detail=True, **kwargs):
        out = super().ls(path, detail=True, **kwargs)
        out = out + [dict(info, name=name) for name, info in self.extra.get(path.rstrip("/"), [])]
        return out if detail else [o["name"] for o in out]

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        out = super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=True, **kwargs)
        out.update({name: dict(info, name=name) for name, info in self.extra.get(f"find:{path.rstrip('/')}", [])})
        return out if detail else sorted(out)


@pytest.mark.parametrize("bad_name", ["{base}/..", "/etc", "{base}/../other", "../x"])
def test_listing_with_unsafe_child_names_is_refused(mem, bad_name):  # B6
    fs, base = mem
    write_fake_model(f"{base}/1", fs=fs, empty_assets=False)
    evil = _EvilListing(skip_instance_cache=True)
    evil.extra = {base: [(bad_name.format(base=base), {"type": "directory", "size": 0})]}
    with pytest.raises(UnsafeNameError, match="listing returned"):
        list_versions(f"memory://{base}", filesystem=evil)
    evil.extra = {f"find:{base}/1": [(bad_name.format(base=f"{base}/1/variables"), {"type": "file", "size": 1})]}
    with pytest.raises(UnsafeNameError, match="listing returned"):
        resolve(f"memory://{base}", 1, filesystem=evil)


def test_pinned_version_is_a_frozen_plain_value(mem):
    fs, base = mem
    write_fake_model(f"{base}/1", fs=fs, empty_assets=False)
    pinned = resolve(f"memory://{base}", storage_options={"anything": 1} and None)
    assert isinstance(pinned, PinnedVersion)
    with pytest.raises(AttributeError):
        pinned.version = 2  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(pinned)) == pinned


def test_unnumbered_dir_with_manifest_takes_the_manifest_version(tmp_path):
    local = write_fake_model(str(tmp_path / "unpacked"))
    open(f"{local}/{MANIFEST_NAME}", "wb").write(build_manifest(local, "mnist", 6).to_json())
    pinned = resolve(local)
    assert (pinned.version, pinned.name, pinned.url) == (6, "mnist", local)
    assert resolve(local, 6).digest == pinned.digest
    with pytest.raises(ModelNotFoundError, match="is version 6 itself; version 2 was asked for"):
        resolve(local, 2)
    plain = write_fake_model(str(tmp_path / "plain"))
    assert resolve(plain, 0).version == 0
    with pytest.raises(ModelNotFoundError, match="is version 0 itself"):
        resolve(plain, 1)


class _CountingFS(fsspec.implementations.local.LocalFileSystem):
    """Counts the store operations a caller makes (one per call, as one NameNode RPC would be);
    the local implementation's own nested calls (``ls`` stats every entry) are not counted."""

    cachable = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[str, str]] = []
        self._depth = 0

    def _counted(self, op, path, call):
        if self._depth == 0:
            self.calls.append((op, path))
        self._depth += 1
        try:
            return call()
        finally:
            self._depth -= 1

    def ls(self, path, detail=False, **kwargs):
        return self._counted("ls", path, lambda: super(_CountingFS, self).ls(path, detail=detail, **kwargs))

    def info(self, path, **kwargs):
        return self._counted("info", path, lambda: super(_CountingFS, self).info(path, **kwargs))

    def cat_file(self, path, start=None, end=None, **kwargs):
        return self._counted("cat", path, lambda: super(_CountingFS, self).cat_file(path, start, end, **kwargs))

    def _open(self, path, mode="rb", *args, **kwargs):
        return self._counted("open", path, lambda: super(_CountingFS, self)._open(path, mode, *args, **kwargs))


def _store_calls_to_resolve_latest(tmp_path, count: int) -> list[tuple[str, str]]:
    """Store operations one ``resolve(base)`` makes over ``count`` published versions."""
    import json
    import shutil

    from hdfs_models import publish

    base = tmp_path / f"base-{count}"
    publish(write_fake_model(str(tmp_path / f"m-{count}")), str(base), signatures=False)
    doc = json.loads((base / "1" / MANIFEST_NAME).read_text())
    for number in range(2, count + 1):  # the same complete version under every number
        shutil.copytree(base / "1", base / str(number))
        (base / str(number) / MANIFEST_NAME).write_text(json.dumps({**doc, "version": number}))
    fs = _CountingFS()
    assert resolve(str(base), filesystem=fs).version == count
    return fs.calls


def test_latest_costs_the_same_store_calls_for_500_versions_as_for_5_p11(tmp_path):
    """P11: resolving ``latest`` (what every ``--watch`` check does) lists the base once, then
    walks down from the newest version and stops at the first complete one: its store calls do
    not grow with the number of versions."""
    five = _store_calls_to_resolve_latest(tmp_path, 5)
    many = _store_calls_to_resolve_latest(tmp_path, 500)
    assert [op for op, _ in five].count("ls") <= 2 and len(five) <= 8, five
    assert len(many) <= len(five) + 1, many
    assert not any(path.rstrip("/").endswith("/base-500/1") for _, path in many)  # the oldest is never touched
