"""P9: a hostile archive shipped with ``--archives`` / ``addArchive``; Spark unpacks it, the handle judges.

Spark unpacks these archives itself, not through :func:`hdfs_models.unpack`.
What it does with each hostile member (Spark 4.3 and its Hadoop 3.4 client,
found with a local SparkSession; ``integration/test_hostile_archives_spark.py``
keeps checking it):

============================  ============================  ===========================  ======================
member                        ``.tar`` (Spark's Java untar)  ``.tar.gz`` (GNU tar)        ``.zip`` (Hadoop unZip)
============================  ============================  ===========================  ======================
symlink to ``/etc``, ``../``  refused (entry outside)        **created**                  a regular file
symlink, then ``l/x``         refused                        ``l`` **created**, then fails  —
``../x``                      refused, earlier members kept  refused (tar exit 2)         refused
``/abs/x``                    written inside as ``abs/x``    written inside (``/`` cut)   written inside
hard link to ``/etc/...``     refused                        refused (tar exit 2)         —
hard link to a member         **a hard link**                **a hard link**              —
FIFO, device                  an empty regular file          **created** (as root)        a regular file
setuid bit                    dropped                        **kept**                     —
============================  ============================  ===========================  ======================

Nothing is ever written outside the unpack directory, but what **bold**
marks is left inside it. The handle walks the tree Spark left (lstat) and
refuses to serve it, naming the entry and the alias it was shipped as, when
it finds a symlink (saying where it points and whether that is outside), a
FIFO, device or socket, a setuid/setgid/sticky bit, or a hard link; absolute
names turn up as files the manifest does not list (an ``IntegrityError``
naming them).
"""

from __future__ import annotations

import os
import stat

import pytest
from test_archive_helpers import make_model

from hdfs_models._distribute import ModelHandle, reset_verified
from hdfs_models._distribute._handle import _verify_tree
from hdfs_models.errors import IntegrityError, UnsafeArchiveError


@pytest.fixture(autouse=True)
def _reset():
    reset_verified()
    yield
    reset_verified()


@pytest.fixture
def tree(tmp_path):
    """A complete model version as Spark leaves it at ``<SparkFiles root>/alias``."""
    return make_model(tmp_path / "userFiles" / "alias")


def _refused(tree, match, strategy="submitted"):
    handle = ModelHandle.submitted("alias") if strategy == "submitted" else ModelHandle(strategy, alias="alias")
    with pytest.raises(UnsafeArchiveError, match=match) as info:
        _verify_tree(str(tree), handle)
    assert "shipped as #alias (unpacked by Spark into" in str(info.value)
    assert str(info.value).endswith("refusing to serve it")
    return info.value


def test_a_clean_tree_is_served_p9(tree):
    assert _verify_tree(str(tree), ModelHandle.submitted("alias")).version == 3


@pytest.mark.parametrize(
    ("target", "where"),
    [("/etc", "outside"), ("../../..", "outside"), ("saved_model.pb", "inside")],
)
def test_symlinks_are_refused_saying_where_they_point_p9(tree, target, where):
    os.symlink(target, os.path.join(tree, "assets", "link"))
    err = _refused(
        tree, rf"member 'assets/link' of archive .*symlink member .*points to '{target}' \({where} the tree\)"
    )
    assert err.member == "assets/link" and err.reason.startswith("symlink member")


def test_a_symlinked_directory_is_refused_before_anything_under_it_p9(tree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"x")
    os.symlink(outside, os.path.join(tree, "variables", "more"))
    _refused(tree, r"member 'variables/more' .*symlink member .*\(outside the tree\)")


def test_fifo_is_refused_p9(tree):
    os.mkfifo(os.path.join(tree, "assets", "pipe"))
    _refused(tree, r"member 'assets/pipe' .*fifo member \(only regular files and directories")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root (GNU tar makes them only as root)")
def test_device_is_refused_p9(tree):
    os.mknod(os.path.join(tree, "null"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    _refused(tree, r"member 'null' .*device member")


@pytest.mark.parametrize("bits", [0o4755, 0o2755, 0o1755])
def test_setuid_setgid_sticky_bits_are_refused_p9(tree, bits):
    path = os.path.join(tree, "saved_model.pb")
    os.chmod(path, bits)
    _refused(tree, rf"member 'saved_model.pb' .*setuid/setgid/sticky mode {bits:o}")


def test_hard_link_in_an_unpacked_tree_is_refused_p9(tree):
    os.link(os.path.join(tree, "saved_model.pb"), os.path.join(tree, "assets", "again"))
    _refused(tree, r"member '(assets/again|saved_model.pb)' .*hardlink member \(a SavedModel never needs links\)")
    _refused(tree, r"hardlink member", strategy="archive")


def test_hard_links_are_fine_in_a_tree_the_handle_built_itself(tree, tmp_path):
    """``files`` trees are assembled from hard links to the added files (``link_or_copy``)."""
    os.link(os.path.join(tree, "saved_model.pb"), tmp_path / "added.0")
    assert _verify_tree(str(tree), ModelHandle("files", alias="alias")).version == 3


def test_an_absolute_name_spark_wrote_inside_is_named_as_unlisted_p9(tree):
    os.makedirs(os.path.join(tree, "tmp", "x"))
    with open(os.path.join(tree, "tmp", "x", "evil"), "wb") as fh:
        fh.write(b"x")
    with pytest.raises(IntegrityError, match=r"holds files its manifest does not list: tmp/x/evil") as info:
        _verify_tree(str(tree), ModelHandle.submitted("alias"))
    assert info.value.member == "tmp/x/evil"
