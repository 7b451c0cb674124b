"""Local trees: one walk, one hash, one comparison, one no-replace rename."""

import hashlib
import os

import pytest

from hdfs_models._manifest import FileEntry
from hdfs_models._tree import compare_tree, rename_noreplace, sha256_file, walk_tree


@pytest.fixture
def tree_dir(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "top.bin").write_bytes(b"top")
    (tmp_path / "a" / "b" / "deep.bin").write_bytes(b"deeper")
    return tmp_path


def test_walk_tree_lists_files_dirs_and_empty_dirs(tree_dir):
    tree = walk_tree(str(tree_dir))
    assert dict(tree.files) == {"a/b/deep.bin": 6, "top.bin": 3}
    assert tree.dirs == ("a", "a/b", "empty")
    assert tree.empty_dirs == ("empty",)
    assert tree.others == () and tree.total_bytes == 9
    assert tree.sha256("a/b/deep.bin") == hashlib.sha256(b"deeper").hexdigest()


def test_walk_tree_reports_links_and_fifos_without_following_them(tree_dir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret").write_bytes(b"s" * 100)
    os.symlink(outside, tree_dir / "dirlink")
    os.symlink(outside / "secret", tree_dir / "a" / "filelink")
    os.mkfifo(tree_dir / "fifo")
    tree = walk_tree(str(tree_dir))
    assert tree.others == ("a/filelink", "dirlink", "fifo")
    assert "dirlink/secret" not in tree.files and tree.total_bytes == 9


def test_walk_tree_of_a_missing_dir_or_a_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        walk_tree(str(tmp_path / "nope"))
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        walk_tree(str(tmp_path / "f"))


def test_sha256_file_reads_in_chunks(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "big").write_bytes(data)
    assert sha256_file(str(tmp_path / "big")) == hashlib.sha256(data).hexdigest()


def test_compare_tree_names_missing_wrong_and_extra_files():
    sha_a = hashlib.sha256(b"a").hexdigest()
    expected = [FileEntry("a", 1, sha_a), FileEntry("b", 2), FileEntry("c", 3, sha_a.upper()), FileEntry("M", 9)]
    found = {"a": 1, "b": 5, "c": 3, "x": 0, "M": 1}
    hashed = []

    def sha256(path):
        hashed.append(path)
        return {"a": sha_a, "c": "0" * 64}[path]

    mismatch = compare_tree(expected, found, sha256, ignore=("M",))
    assert mismatch.missing == ()
    assert mismatch.wrong == (("b", "size 5 != 2"), ("c", "sha256 mismatch"))
    assert mismatch.extra == ("x",)
    assert mismatch.paths == ["b", "c", "x"] and bool(mismatch)
    assert sorted(hashed) == ["a", "c"]  # only where the size matched and a sha256 is expected
    gone = compare_tree(expected, {"a": 1})
    assert gone.missing == ("M", "b", "c") and gone.wrong == ()
    assert not compare_tree([FileEntry("a", 1, sha_a)], {"a": 1}, lambda p: sha_a)


def test_rename_noreplace_refuses_an_existing_target_even_an_empty_dir(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    dst.mkdir()  # os.rename would silently replace this
    with pytest.raises(FileExistsError):
        rename_noreplace(str(src), str(dst))
    assert os.listdir(dst) == [] and (src / "f").exists()
    dst.rmdir()
    rename_noreplace(str(src), str(dst))
    assert (dst / "f").read_bytes() == b"x" and not src.exists()
