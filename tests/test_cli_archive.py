"""``hdfs-models pack`` / ``unpack``: results, --json, exit codes, literal paths."""

from __future__ import annotations

import json
import os

import pytest
from test_archive_helpers import make_model, tar_with

from hdfs_models import cli
from hdfs_models.cli._archive import format_for
from hdfs_models.testing import tree_digest


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pack_then_unpack_json(tmp_path, capsys):
    src = make_model(tmp_path / "3")
    code, out, _ = run(capsys, "pack", src, str(tmp_path / "m.tgz"), "--json")
    assert code == 0
    packed = json.loads(out)
    assert packed["format"] == "tar.gz" and packed["bytes"] == os.path.getsize(tmp_path / "m.tgz")
    assert len(packed["sha256"]) == 64
    code, out, _ = run(capsys, "unpack", str(tmp_path / "m.tgz"), str(tmp_path / "d"), "--json")
    assert code == 0
    assert json.loads(out) == {
        "archive": str(tmp_path / "m.tgz"),
        "dest": str(tmp_path / "d"),
        "files": 5,
        "verified": True,
    }
    assert tree_digest(tmp_path / "d") == tree_digest(src)


def test_text_output(tmp_path, capsys):
    code, out, _ = run(capsys, "pack", make_model(tmp_path / "3"), str(tmp_path / "m.zip"))
    assert code == 0 and out.startswith(f"packed {tmp_path / 'm.zip'} (zip, ")
    code, out, _ = run(capsys, "unpack", str(tmp_path / "m.zip"), str(tmp_path / "d"))
    assert code == 0 and out.strip().endswith("(5 files, verified)")


def test_unsafe_archive_exits_1_naming_member(tmp_path, capsys):
    archive = tar_with(tmp_path / "a.tar", [({"name": "../evil"}, b"x")])
    code, _, err = run(capsys, "unpack", archive, str(tmp_path / "d"), "--json")
    assert code == 1
    doc = json.loads(err)
    assert doc["error"] == "UnsafeArchiveError" and "'../evil'" in doc["message"] and archive in doc["message"]
    assert not (tmp_path / "d").exists() and not (tmp_path.parent / "evil").exists()


def test_caps_from_the_command_line(tmp_path, capsys):
    archive = tar_with(tmp_path / "a.tar", [({"name": f"f{i}"}, b"") for i in range(5)])
    code, _, err = run(capsys, "unpack", archive, str(tmp_path / "d"), "--max-members", "2", "--no-verify")
    assert code == 1 and "more than 2 members" in err


def test_unpack_without_manifest_says_how(tmp_path, capsys):
    archive = tar_with(tmp_path / "a.tar", [({"name": "saved_model.pb"}, b"x")])
    code, _, err = run(capsys, "unpack", archive, str(tmp_path / "d"))
    assert code == 1 and "hdfs-models pack" in err
    code, out, _ = run(capsys, "unpack", archive, str(tmp_path / "d"), "--no-verify")
    assert code == 0 and "NOT verified" in out


def test_usage_error_exit_2(capsys):
    code, _, _ = run(capsys, "pack")
    assert code == 2


@pytest.mark.parametrize(
    "out, explicit, expected",
    [
        ("m.tar", None, "tar"),
        ("m.tar.gz", None, "tar.gz"),
        ("m.tgz", None, "tar.gz"),
        ("m.zip", None, "zip"),
        ("m.bin", None, "tar"),
        ("m.zip", "tar", "tar"),
    ],
)
def test_format_for(out, explicit, expected):
    assert format_for(out, explicit) == expected
