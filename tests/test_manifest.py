"""MANIFEST.json: canonical bytes, digest, parsing errors, local walks."""

import hashlib
import json
import os

import pytest

from hdfs_models._manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    build_manifest,
    listing_digest,
    walk_local,
)
from hdfs_models.errors import InvalidModelError, UnsafeNameError
from hdfs_models.testing import write_fake_model


@pytest.fixture
def model_dir(tmp_path):
    return write_fake_model(str(tmp_path / "mnist"), shards=2)


def test_build_manifest_hashes_every_file_and_records_empty_dirs(model_dir):
    (open(os.path.join(model_dir, MANIFEST_NAME), "w")).write("{}")  # never listed in itself
    m = build_manifest(model_dir, "mnist", 3, {"serving_default": {"method_name": "predict"}})
    paths = [f.path for f in m.files]
    assert paths == sorted(paths) and MANIFEST_NAME not in paths
    assert paths == [
        "saved_model.pb",
        "variables/variables.data-00000-of-00002",
        "variables/variables.data-00001-of-00002",
        "variables/variables.index",
    ]
    pb = open(os.path.join(model_dir, "saved_model.pb"), "rb").read()
    assert m.files[0].sha256 == hashlib.sha256(pb).hexdigest() and m.files[0].size == len(pb)
    assert m.empty_dirs == ("assets",)
    assert m.total_bytes == sum(f.size for f in m.files)
    assert (m.name, m.version, m.format_version) == ("mnist", 3, 1)
    assert m.producer.startswith("hdfs-models ")
    assert m.created_at.endswith("+00:00")
    assert m.signatures["serving_default"]["method_name"] == "predict"


def test_to_json_is_canonical_and_round_trips(model_dir):
    m = build_manifest(model_dir, "mnist", 1)
    data = m.to_json()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    back = Manifest.from_json(data, "memory://m/1/MANIFEST.json")
    assert back == m
    assert back.digest == m.digest == hashlib.sha256(data).hexdigest()


def test_digest_changes_with_any_file_hash_or_version(model_dir):
    m = build_manifest(model_dir, "mnist", 1)
    changed = Manifest(
        **{**m.__dict__, "files": (FileEntry(m.files[0].path, m.files[0].size, "0" * 64),) + m.files[1:]}
    )
    assert changed.digest != m.digest
    assert m.with_version(2).digest != m.digest and m.with_version(2).version == 2


def _doc(**overrides):
    doc = {
        "format_version": 1,
        "name": "m",
        "version": 1,
        "files": [{"path": "saved_model.pb", "size": 3, "sha256": "a" * 64}],
        "empty_dirs": [],
        "total_bytes": 3,
        "signatures": {},
        "created_at": "",
        "producer": "x",
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "data, match",
    [
        (b"not json", "invalid manifest"),
        (b"[]", "not a JSON object"),
        (_doc(format_version=99), "newer than this library"),
        (_doc(files=[{"path": "../evil", "size": 3}]), "escapes"),
        (_doc(files=[{"path": "/etc/passwd", "size": 3}]), "absolute"),
        (_doc(files=[{"path": "a", "size": -1}]), "non-negative"),
        (_doc(files=[{"path": "a", "size": 3, "sha256": "xyz"}]), "bad sha256"),
        (_doc(total_bytes=4), "total_bytes 4"),
        (_doc(name="../x"), "unsafe"),
        (_doc(empty_dirs=["../../tmp"]), "escapes"),
        (_doc(files=[{"path": "a", "size": 1}, {"path": "a", "size": 2}], total_bytes=3), "duplicate"),
    ],
)
def test_from_json_rejects_bad_manifests(data, match):
    with pytest.raises(InvalidModelError, match=match) as info:
        Manifest.from_json(data, "hdfs://nn/m/1/MANIFEST.json")
    assert info.value.url == "hdfs://nn/m/1/MANIFEST.json"
    assert "hdfs://nn/m/1/MANIFEST.json" in str(info.value)


def test_listing_digest_depends_on_path_size_mtime_not_order():
    a = [FileEntry("a", 1, None, 10.0), FileEntry("b", 2, None, 11.0)]
    assert listing_digest(a) == listing_digest(list(reversed(a)))
    assert listing_digest(a) != listing_digest([FileEntry("a", 1, None, 10.5), a[1]])
    assert listing_digest(a) != listing_digest([FileEntry("a", 2, None, 10.0), a[1]])


def test_walk_local_refuses_symlinks_and_missing_dirs(tmp_path, model_dir):
    with pytest.raises(InvalidModelError, match="not a directory"):
        walk_local(str(tmp_path / "nope"))
    os.symlink("/etc/passwd", os.path.join(model_dir, "link"))
    with pytest.raises(InvalidModelError, match="symbolic links"):
        walk_local(model_dir)


def test_build_manifest_validates_the_name(model_dir):
    with pytest.raises(UnsafeNameError, match="model name"):
        build_manifest(model_dir, "../x", 1)
