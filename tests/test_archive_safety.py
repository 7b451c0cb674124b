"""RELIABILITY S1-S12: hostile archives built by hand are refused, never repaired.

Each test asserts the error type and message (archive path + member), that
nothing was written outside the target, and that no partial ``dest`` (nor a
temporary directory beside it) is left.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tarfile
import zipfile

import pytest
from test_archive_helpers import make_model, tar_with, walk_is_safe, zip_with

from hdfs_models.archive import pack, unpack
from hdfs_models.archive._check import Limits, Member, Planner, check_spans, normalise_name, resolve_limits
from hdfs_models.errors import UnsafeArchiveError
from hdfs_models.testing import tree_digest


@pytest.fixture
def box(tmp_path):
    """tmp_path/box/work is where archives live and dest goes; box/ catches escapes."""
    work = tmp_path / "box" / "work"
    work.mkdir(parents=True)
    return work


def refused(archive, dest, match, **kwargs):
    """unpack must raise UnsafeArchiveError(match); nothing left beside the archive."""
    before = set(os.listdir(os.path.dirname(archive)))
    with pytest.raises(UnsafeArchiveError, match=match) as info:
        unpack(archive, dest, **kwargs)
    assert info.value.path == str(archive)
    assert not os.path.lexists(dest)
    assert set(os.listdir(os.path.dirname(archive))) == before  # no temp dir left
    box = os.path.dirname(os.path.dirname(str(archive)))
    assert sorted(os.listdir(box)) == ["work"], "something escaped the target"
    return info.value


def test_s1_tar_parent_traversal(box):
    archive = tar_with(box / "a.tar", [({"name": "ok"}, b"1"), ({"name": "../evil"}, b"pwn")])
    err = refused(archive, box / "dest", r"member '\.\./evil' of archive .*a\.tar: '\.\.' in the name")
    assert err.member == "../evil"


def test_s1_deep_traversal_after_a_directory(box):
    archive = tar_with(
        box / "a.tar", [({"name": "d", "type": tarfile.DIRTYPE}, None), ({"name": "d/../../evil"}, b"x")]
    )
    refused(archive, box / "dest", r"'d/\.\./\.\./evil'")


def test_s2_tar_absolute_name_is_not_stripped(box, tmp_path):
    target = tmp_path / "abs-evil"
    archive = tar_with(box / "a.tar", [({"name": str(target)}, b"pwn")])
    refused(archive, box / "dest", r"absolute name")
    assert not target.exists()


def test_s3_symlink_then_write_through_it_stops_at_the_link(box):
    archive = tar_with(
        box / "a.tar",
        [({"name": "l", "type": tarfile.SYMTYPE, "linkname": "../.."}, None), ({"name": "l/pwn"}, b"x")],
    )
    refused(archive, box / "dest", r"member 'l' .*symlink member")


@pytest.mark.parametrize(
    "fields, what",
    [
        ({"name": "inner", "type": tarfile.SYMTYPE, "linkname": "saved_model.pb"}, "symlink"),
        ({"name": "inner", "type": tarfile.LNKTYPE, "linkname": "saved_model.pb"}, "hardlink"),
    ],
)
def test_s4_any_link_even_inside(box, fields, what):
    archive = tar_with(box / "a.tar", [({"name": "saved_model.pb"}, b"pb"), (fields, None)])
    refused(archive, box / "dest", rf"member 'inner' .*{what} member \(a SavedModel never needs links\)")


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "device member"),
        ({"name": "blk", "type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0}, "device member"),
        ({"name": "fifo", "type": tarfile.FIFOTYPE}, "fifo member"),
        ({"name": "suid", "mode": 0o4755}, "setuid/setgid/sticky mode 4755"),
        ({"name": "sgid", "mode": 0o2755}, "setuid/setgid/sticky mode 2755"),
        ({"name": "sticky", "type": tarfile.DIRTYPE, "mode": 0o1777}, "setuid/setgid/sticky mode 1777"),
        ({"name": "cont", "type": tarfile.CONTTYPE}, "other member"),
    ],
)
def test_s5_devices_fifos_and_special_modes(box, fields, reason):
    data = b"#!/bin/sh\n" if fields.get("type", tarfile.REGTYPE) in (tarfile.REGTYPE, tarfile.CONTTYPE) else None
    archive = tar_with(box / "a.tar", [(dict(fields), data)])
    refused(archive, box / "dest", rf"member '{fields['name']}' .*{reason}")


def test_s6_existing_target_is_never_extracted_into(box):
    archive = pack(make_model(box / "3"), box / "m.tar")
    existing = box / "dest"
    existing.mkdir()
    (existing / "keep").write_bytes(b"mine")
    with pytest.raises(UnsafeArchiveError, match=r"target .*dest already exists; unpack extracts only into a new"):
        unpack(archive, existing)
    assert tree_digest(existing) == {"keep": hashlib.sha256(b"mine").hexdigest()}


def test_s6_symlink_target_is_refused(box, tmp_path):
    archive = pack(make_model(box / "3"), box / "m.tar")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = box / "dest"
    link.symlink_to(elsewhere)
    dangling = box / "dangling"
    dangling.symlink_to(tmp_path / "missing")
    for dest in (link, dangling):
        with pytest.raises(UnsafeArchiveError, match="already exists"):
            unpack(archive, dest)
    assert os.listdir(elsewhere) == [] and not (tmp_path / "missing").exists()


def test_s6_extraction_happens_in_a_fresh_temp_dir_then_renames(box, monkeypatch):
    import hdfs_models.archive._unpack as archive_mod

    archive = pack(make_model(box / "3"), box / "m.tar")
    seen = []
    real = archive_mod.rename_noreplace

    def spy(src, dst):
        seen.append((os.path.basename(src), os.path.basename(dst), os.path.exists(dst), sorted(os.listdir(src))))
        return real(src, dst)

    monkeypatch.setattr(archive_mod, "rename_noreplace", spy)
    unpack(archive, box / "dest")
    assert len(seen) == 1 and seen[0][0].startswith(".dest.unpack-")
    assert seen[0][1:3] == ("dest", False) and "saved_model.pb" in seen[0][3]


def test_s6_target_created_during_extraction_is_not_replaced(box, monkeypatch):
    import hdfs_models.archive._unpack as archive_mod

    real = archive_mod.extract_into

    def racing(archive, kind, root, limits, progress=None):
        out = real(archive, kind, root, limits, progress)
        os.mkdir(box / "dest")  # an empty dir: os.rename would silently replace it
        return out

    monkeypatch.setattr(archive_mod, "extract_into", racing)
    archive = pack(make_model(box / "3"), box / "m.tar")
    with pytest.raises(UnsafeArchiveError, match="appeared during extraction; not replacing it"):
        unpack(archive, box / "dest")
    assert os.listdir(box / "dest") == []
    assert sorted(os.listdir(box)) == ["3", "dest", "m.tar"]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../evil", r"'\.\.' in the name"),
        ("/abs", "absolute name"),
        ("a/../../x", r"'\.\.' in the name"),
        ("..\\evil", "backslash"),
        ("a\\b", "backslash"),
        ("C:/evil", "drive letter"),
        ("c:evil", "drive letter"),
        ("ok\x00/../../evil", "control character or NUL"),
    ],
)
def test_s7_zip_names_are_checked_raw(box, name, reason):
    placeholder = name.replace("\x00", "#")  # ZipInfo cuts names at NUL: patch the bytes after
    archive = zip_with(box / "a.zip", [("saved_model.pb", b"pb", None), (placeholder, b"pwn", None)])
    if placeholder != name:
        data = open(archive, "rb").read().replace(placeholder.encode(), name.encode())
        open(archive, "wb").write(data)
    err = refused(archive, box / "dest", rf"of archive .*a\.zip: {reason}")
    assert err.member == name


@pytest.mark.parametrize(
    "mode, reason",
    [
        (stat.S_IFLNK | 0o777, "symlink member"),
        (stat.S_IFCHR | 0o644, "device member"),
        (stat.S_IFIFO | 0o644, "fifo member"),
        (stat.S_IFSOCK | 0o644, "other member"),
        (stat.S_IFREG | 0o4755, "setuid"),
    ],
)
def test_s8_zip_mode_bits(box, mode, reason):
    archive = zip_with(box / "a.zip", [("saved_model.pb", b"pb", None), ("link", b"../../etc/passwd", mode)])
    refused(archive, box / "dest", rf"member 'link' .*{reason}")


def test_s9_too_many_members_stops_early(box):
    archive = tar_with(box / "a.tar", [({"name": f"f{i}"}, b"") for i in range(50)])
    refused(archive, box / "dest", r"member 'f10' .*more than 10 members", max_members=10)


def test_s9_total_bytes_cap(box):
    archive = tar_with(box / "a.tar", [({"name": "a"}, b"x" * 600), ({"name": "b"}, b"x" * 600)])
    refused(archive, box / "dest", r"member 'b' .*more than 1000 uncompressed bytes", max_bytes=1000)


def test_s9_tar_gz_ratio_cap(box):
    archive = tar_with(box / "a.tar.gz", [({"name": "zeros"}, bytes(2_000_000))], mode="w:gz")
    refused(archive, box / "dest", r"uncompressed bytes from \d+ bytes exceeds ratio 100", max_ratio=100)


def test_s9_zip_entry_ratio_cap(box):
    archive = zip_with(box / "a.zip", [("zeros", bytes(1_000_000), None)])
    refused(archive, box / "dest", r"member 'zeros' .*compression ratio 1000000/\d+ exceeds 50", max_ratio=50)


def _overlapping_zip(path):
    """Two central-directory entries pointing at the same local header (bomb trick)."""
    zip_with(path, [("a", bytes(10_000), None), ("b", b"tiny", None)])
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    data = bytearray(open(path, "rb").read())
    # Rewrite b's central record: same name length, offset of a's local header,
    # and a's sizes (a second copy of a's data under another name).
    cd = data.rfind(b"PK\x01\x02")
    import struct

    struct.pack_into("<I", data, cd + 42, infos[0].header_offset)
    struct.pack_into("<I", data, cd + 20, infos[0].compress_size)
    struct.pack_into("<I", data, cd + 24, infos[0].file_size)
    struct.pack_into("<I", data, cd + 16, infos[0].CRC)
    open(path, "wb").write(bytes(data))
    return str(path)


def test_s9_overlapping_zip_entries(box):
    archive = _overlapping_zip(box / "a.zip")
    refused(archive, box / "dest", r"overlaps 'a' \(zip bomb\?\)|overlaps")


def test_s9_lying_header_is_caught_while_streaming(box):
    """A zip whose central size is smaller than its data: zipfile's CRC/size check fires."""
    path = box / "a.zip"
    zip_with(path, [("f", b"y" * 5000, None)])
    data = bytearray(open(path, "rb").read())
    import struct

    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10)  # central file_size: 10 instead of 5000
    open(path, "wb").write(bytes(data))
    refused(str(path), box / "dest", r"unreadable archive|more data|CRC|ratio")


@pytest.mark.parametrize(
    "names",
    [["saved_model.pb", "saved_model.pb"], ["a/b", "./a//b"], ["x", "x/"], ["dir/f", "dir/f/g"]],
)
def test_s10_duplicates_after_normalisation(box, names):
    members = []
    for name in names:
        if name.endswith("/"):
            members.append(({"name": name, "type": tarfile.DIRTYPE}, None))
        else:
            members.append(({"name": name}, b"x"))
    archive = tar_with(box / "a.tar", members)
    refused(archive, box / "dest", r"duplicate member name|is a file member")


def test_s10_zip_duplicates(box):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name"
        archive = zip_with(box / "a.zip", [("f", b"1", None), ("f", b"2", None)])
    refused(archive, box / "dest", r"member 'f' .*duplicate member name")


def test_s11_shell_metacharacters_are_literal(box, tmp_path):
    model = make_model(box / "3")
    name = "m; touch PWNED $(touch PWNED2) `touch PWNED3` & | > ' \" *.tar.gz"
    archive = pack(model, box / name, "tar.gz")
    assert os.path.isfile(archive)
    dest = unpack(archive, box / ("dest " + name))
    assert tree_digest(dest) == tree_digest(model)
    for cwd in (box, tmp_path, os.getcwd()):
        assert not any(n.startswith("PWNED") for n in os.listdir(cwd))


def test_s11_cli_takes_names_literally(box):
    model = make_model(box / "3")
    name = str(box / "$(touch PWNED);x.zip")
    run = subprocess.run(
        [sys.executable, "-m", "hdfs_models.cli", "pack", model, name, "--format", "zip", "--json"],
        capture_output=True,
        text=True,
        cwd=box,
    )
    assert run.returncode == 0, run.stderr
    assert os.path.isfile(name) and "PWNED" not in os.listdir(box)


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "zip"])
def test_s12_after_extraction_no_links_and_all_inside(box, fmt):
    dest = unpack(pack(make_model(box / "3"), box / f"m.{fmt}", fmt), box / "dest")
    assert walk_is_safe(dest)
    assert oct(os.stat(os.path.join(dest, "saved_model.pb")).st_mode & 0o7777) == "0o644"


def test_s12_audit_catches_a_link_planted_during_extraction(box, monkeypatch):
    import hdfs_models.archive._unpack as archive_mod

    real = archive_mod.extract_into

    def planting(archive, kind, root, limits, progress=None):
        out = real(archive, kind, root, limits, progress)
        os.symlink("/etc", os.path.join(root, "planted"))
        return out

    monkeypatch.setattr(archive_mod, "extract_into", planting)
    archive = pack(make_model(box / "3"), box / "m.tar")
    refused(archive, box / "dest", r"member 'planted' .*symlink member .*points to '/etc' \(outside the tree\)")


# ---------------------------------------------------------------- pure checks


@pytest.mark.parametrize(
    "raw, expected",
    [("a/b", "a/b"), ("./a//b/", "a/b"), (".", ""), ("./", ""), ("a/./b", "a/b")],
)
def test_normalise_name_accepts(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "/a", "../a", "a/..", "a\\b", "D:x", "a\x00b", "a\nb"])
def test_normalise_name_rejects(raw):
    with pytest.raises(ValueError):
        normalise_name(raw)


def test_planner_counts_and_kinds():
    planner = Planner("x.tar", Limits(max_members=3, max_bytes=10))
    assert planner.add(Member("a/b", "file", 4)) == "a/b"
    assert planner.kinds == {"a": "dir", "a/b": "file"}
    with pytest.raises(UnsafeArchiveError, match="file named like the root"):
        planner.add(Member(".", "file", 1))


def test_check_spans_rejects_data_past_the_end():
    with pytest.raises(UnsafeArchiveError, match="outside the file"):
        check_spans("x.zip", [("a", 0, 100)], 50)
    check_spans("x.zip", [("a", 0, 10), ("b", 10, 20)], 20)


def test_limits_resolution_explicit_env_default():
    assert resolve_limits(env={}) == Limits()
    env = {"HDFS_MODELS_UNPACK_MAX_MEMBERS": "7", "HDFS_MODELS_UNPACK_MAX_BYTES": "99"}
    assert resolve_limits(env=env) == Limits(max_members=7, max_bytes=99)
    assert resolve_limits(max_members=5, env=env).max_members == 5
    with pytest.raises(ValueError, match="HDFS_MODELS_UNPACK_MAX_RATIO='x'"):
        resolve_limits(env={"HDFS_MODELS_UNPACK_MAX_RATIO": "x"})
    with pytest.raises(ValueError, match="must be positive"):
        resolve_limits(max_bytes=0, env={})


def test_s9_stream_guard_stops_data_beyond_the_declared_size(tmp_path):
    """Headers can lie: the writer counts bytes and stops at the declared size."""
    import io

    from hdfs_models.archive._read import Extracted, _write

    member = Member("f", "file", 10)
    with pytest.raises(UnsafeArchiveError, match=r"member 'f' .*more data than its header's 10 bytes"):
        _write("x.tar", str(tmp_path), "f", member, io.BytesIO(b"y" * (2 << 20)), Extracted())
    assert os.path.getsize(tmp_path / "f") == 0  # the first over-long chunk is never written
    with pytest.raises(UnsafeArchiveError, match=r"member 'g' .*truncated: 3 of 10 bytes"):
        _write("x.tar", str(tmp_path), "g", Member("g", "file", 10), io.BytesIO(b"abc"), Extracted())
