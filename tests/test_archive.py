"""pack/unpack round trips: determinism, manifest inside, verification."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zipfile

import pytest
from test_archive_helpers import MODEL_FILES, make_model, tar_with, walk_is_safe

from hdfs_models._manifest import MANIFEST_NAME, Manifest
from hdfs_models.archive import pack, unpack
from hdfs_models.archive._pack import FIXED_MTIME
from hdfs_models.errors import IntegrityError
from hdfs_models.testing import tree_digest

FORMATS = ["tar", "tar.gz", "zip"]


def sha(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_gives_the_same_tree_and_empty_dirs(tmp_path, fmt):
    src = make_model(tmp_path / "base" / "3")
    out = pack(src, tmp_path / f"m.{fmt}", fmt)
    dest = unpack(out, tmp_path / "dest")
    assert dest == str(tmp_path / "dest")
    assert tree_digest(dest) == tree_digest(src)
    assert os.path.isdir(os.path.join(dest, "assets"))
    assert walk_is_safe(dest)
    assert sorted(os.listdir(tmp_path)) == ["base", "dest", f"m.{fmt}"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_pack_and_unpack_report_done_and_total_bytes(tmp_path, fmt):
    src = make_model(tmp_path / "base" / "3")
    packed, unpacked = [], []
    out = pack(src, tmp_path / f"m.{fmt}", fmt, progress=lambda done, total: packed.append((done, total)))
    model_bytes = sum(len(data) for data in MODEL_FILES.values())
    assert packed[-1] == (model_bytes, model_bytes) and {t for _, t in packed} == {model_bytes}
    unpack(out, tmp_path / "dest", progress=lambda done, total: unpacked.append((done, total)))
    with_manifest = model_bytes + os.path.getsize(os.path.join(src, MANIFEST_NAME))
    assert unpacked[-1] == (with_manifest, with_manifest) and {t for _, t in unpacked} == {with_manifest}
    assert [d for d, _ in unpacked] == sorted(d for d, _ in unpacked)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pack_is_byte_identical_across_runs_and_copies(tmp_path, fmt):
    a = make_model(tmp_path / "a" / "3")
    b = tmp_path / "b" / "3"
    b.parent.mkdir()
    os.rename(a, b)  # same bytes, different path, then touch every file
    for dirpath, _, files in os.walk(b):
        for name in files:
            os.utime(os.path.join(dirpath, name), (12345, 12345))
    first = pack(b, tmp_path / f"1.{fmt}", fmt)
    os.chmod(os.path.join(b, "saved_model.pb"), 0o600)
    second = pack(str(b), str(tmp_path / f"2.{fmt}"), format=fmt)
    assert sha(first) == sha(second)


def test_tar_members_are_sorted_with_fixed_metadata_and_manifest_first(tmp_path):
    out = pack(make_model(tmp_path / "3"), tmp_path / "m.tar.gz", "tar.gz")
    with open(out, "rb") as fh:
        head = fh.read(10)
    assert head[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    assert gzip.decompress(open(out, "rb").read())  # valid gzip
    with tarfile.open(out) as tar:
        infos = tar.getmembers()
    names = [i.name for i in infos]
    assert names[0] == MANIFEST_NAME
    assert names[1:] == sorted(names[1:])
    assert "assets" in names and "variables" in names
    for info in infos:
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (FIXED_MTIME, 0, 0, "", "")
        assert info.mode == (0o755 if info.isdir() else 0o644)


def test_zip_entries_carry_unix_modes(tmp_path):
    out = pack(make_model(tmp_path / "3"), tmp_path / "m.zip", "zip")
    with zipfile.ZipFile(out) as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert modes["assets/"] == 0o40755
    assert modes["saved_model.pb"] == 0o100644


def test_pack_without_manifest_builds_a_reproducible_one(tmp_path):
    src = make_model(tmp_path / "mnist" / "7", manifest=False)
    first = pack(src, tmp_path / "a.tar")
    second = pack(src, tmp_path / "b.tar")
    assert sha(first) == sha(second)
    dest = unpack(first, tmp_path / "out")
    manifest = Manifest.from_json(open(os.path.join(dest, MANIFEST_NAME), "rb").read(), dest)
    assert (manifest.name, manifest.version) == ("mnist", 7)
    assert {e.path for e in manifest.files} == set(MODEL_FILES)
    assert manifest.empty_dirs == ("assets",)
    assert not os.path.exists(os.path.join(src, MANIFEST_NAME))  # the source is not modified


def test_pack_refuses_a_source_that_does_not_match_its_manifest(tmp_path):
    src = make_model(tmp_path / "3")
    with open(os.path.join(src, "saved_model.pb"), "r+b") as fh:
        fh.write(b"X")
    with pytest.raises(IntegrityError, match=r"saved_model.pb does not match its manifest"):
        pack(src, tmp_path / "m.tar")
    assert os.listdir(tmp_path) == ["3"]  # no archive, no temp file


def test_pack_rejects_an_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown archive format 'rar'"):
        pack(make_model(tmp_path / "3"), tmp_path / "m.rar", "rar")


def test_unpack_detects_a_file_changed_inside_the_archive(tmp_path):
    src = make_model(tmp_path / "3")
    members = [({"name": MANIFEST_NAME}, open(os.path.join(src, MANIFEST_NAME), "rb").read())]
    for rel, data in MODEL_FILES.items():
        members.append(({"name": rel}, data if rel != "saved_model.pb" else data[:-1] + b"Z"))
    archive = tar_with(tmp_path / "bad.tar", members)
    with pytest.raises(IntegrityError, match=r"bad.tar: saved_model.pb has size \d+ sha256 [0-9a-f]+; the manifest"):
        unpack(archive, tmp_path / "dest")
    assert sorted(os.listdir(tmp_path)) == ["3", "bad.tar"]


def test_unpack_rejects_files_the_manifest_does_not_list(tmp_path):
    src = make_model(tmp_path / "3")
    members = [({"name": MANIFEST_NAME}, open(os.path.join(src, MANIFEST_NAME), "rb").read())]
    members += [({"name": rel}, data) for rel, data in MODEL_FILES.items()]
    members.append(({"name": "variables/extra"}, b"x"))
    archive = tar_with(tmp_path / "extra.tar", members)
    with pytest.raises(IntegrityError, match="does not list: variables/extra"):
        unpack(archive, tmp_path / "dest")
    assert not os.path.exists(tmp_path / "dest")


def test_unpack_without_manifest_says_how_to_ship_one(tmp_path):
    archive = tar_with(tmp_path / "plain.tar", [({"name": k}, v) for k, v in MODEL_FILES.items()])
    with pytest.raises(IntegrityError, match=r"plain.tar has no MANIFEST.json.*hdfs-models pack") as info:
        unpack(archive, tmp_path / "dest")
    assert info.value.path == archive
    assert not os.path.exists(tmp_path / "dest")
    # verify=False extracts a manifest-less archive (the caller takes the risk).
    dest = unpack(archive, tmp_path / "dest", verify=False)
    assert tree_digest(dest)["saved_model.pb"] == hashlib.sha256(MODEL_FILES["saved_model.pb"]).hexdigest()


def test_unpack_accepts_dot_slash_names_from_plain_tar(tmp_path):
    src = make_model(tmp_path / "3")
    archive = str(tmp_path / "dot.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:  # what `tar czf m.tgz -C dir .` writes
        tar.add(src, arcname=".")
    dest = unpack(archive, tmp_path / "dest")
    assert tree_digest(dest) == tree_digest(src)


def test_truncated_archive_is_an_error_and_leaves_nothing(tmp_path):
    out = pack(make_model(tmp_path / "3"), tmp_path / "m.tar.gz", "tar.gz")
    data = open(out, "rb").read()
    with open(out, "wb") as fh:
        fh.write(data[: len(data) // 2])
    from hdfs_models.errors import UnsafeArchiveError

    with pytest.raises(UnsafeArchiveError, match="unreadable archive"):
        unpack(out, tmp_path / "dest")
    assert sorted(os.listdir(tmp_path)) == ["3", "m.tar.gz"]


def _upload(local, fs, path):
    for dirpath, _dirnames, filenames in os.walk(local):
        rel = os.path.relpath(dirpath, local)
        target = path if rel == "." else f"{path}/{rel}"
        fs.makedirs(target, exist_ok=True)
        for name in filenames:
            fs.pipe_file(f"{target}/{name}", open(os.path.join(dirpath, name), "rb").read())


@pytest.mark.parametrize("with_manifest", [True, False])
def test_pack_from_a_store_url_matches_the_local_pack(tmp_path, with_manifest):
    import fsspec

    fs = fsspec.filesystem("memory")
    base = f"/pack-{os.getpid()}-{with_manifest}/mnist"
    local = make_model(tmp_path / "mnist" / "2", manifest=with_manifest, name="mnist", version=2)
    if not with_manifest:
        fs.pipe_file(f"{base}/2/_SUCCESS", b"")
    _upload(local, fs, f"{base}/2")
    try:
        remote = pack(f"memory://{base}", tmp_path / "remote.tar", version=2)
        dest = unpack(remote, tmp_path / "dest")
        got = tree_digest(dest)
        got.pop(MANIFEST_NAME)
        want = tree_digest(local)
        want.pop(MANIFEST_NAME, None)
        got.pop("_SUCCESS", None)
        assert got == want
        if with_manifest:
            assert sha(remote) == sha(pack(local, tmp_path / "local.tar"))
    finally:
        fs.rm(base.rsplit("/", 1)[0], recursive=True)
