"""P9 with a real local SparkSession: hostile archives through ``addArchive``, unpacked by Spark itself.

What Spark does with each hostile member is tabled in
``tests/test_shipped_archive_safety.py`` (the handle's checks, unit-tested
there on trees built by hand). Here every case goes through Spark: either
Spark refuses the archive (``addArchive`` raises, and every later task of
the context fails in Spark's own unpack), or the handle refuses the tree
Spark left, on the driver and in a Python worker, naming the member and the
alias. In every case nothing is written outside Spark's unpack directory.
"""

from __future__ import annotations

import os
import sys
import tarfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
from test_archive_helpers import make_model, tar_with, zip_with

from hdfs_models._distribute import ModelHandle, reset_verified
from hdfs_models.errors import IntegrityError, UnsafeArchiveError

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _reset():
    reset_verified()
    yield
    reset_verified()


@pytest.fixture(scope="module", autouse=True)
def _pickle_test_code_by_value():
    """Workers cannot import test modules: ship this module's functions by value."""
    try:
        from pyspark import cloudpickle
    except ImportError:
        yield
        return
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _sym(name, target):
    return ({"name": name, "type": tarfile.SYMTYPE, "linkname": target}, None)


def _hard(name, target):
    return ({"name": name, "type": tarfile.LNKTYPE, "linkname": target}, None)


def _file(name, data=b"x", mode=0o644):
    return ({"name": name, "mode": mode}, data)


SPARK_REFUSES = "Spark refuses"
_AS_ROOT = os.geteuid() == 0
# (case, archive suffix, hostile members after the model's, what must happen: SPARK_REFUSES or a regex
# the handle's UnsafeArchiveError / IntegrityError matches); ``out``: a directory outside Spark's dirs.
SPARK_CASES = [
    ("symlink_etc", ".tar.gz", lambda out: [_sym("etc", "/etc")], r"member 'etc' .*points to '/etc' \(outside"),
    ("symlink_up", ".tar.gz", lambda out: [_sym("up", "../../..")], r"member 'up' .*points to '../../..' \(outside"),
    (
        "symlink_then_write",
        ".tar.gz",
        lambda out: [_sym("l", out), _file("l/pwn")],
        r"member 'l' .*symlink member .*\(outside the tree\)",
    ),
    ("symlink_tar", ".tar", lambda out: [_sym("etc", "/etc")], SPARK_REFUSES),
    (
        "fifo",
        ".tar.gz",
        lambda out: [({"name": "assets/pipe", "type": tarfile.FIFOTYPE}, None)],
        r"'assets/pipe' .*fifo",
    ),
    (
        "device",
        ".tar.gz",
        lambda out: [({"name": "null", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, None)],
        r"member 'null' .*device member" if _AS_ROOT else SPARK_REFUSES,
    ),
    ("setuid", ".tar.gz", lambda out: [_file("run.sh", b"#!/bin/sh\n", 0o4755)], r"'run.sh' .*setuid/setgid/sticky"),
    ("hardlink_in", ".tar", lambda out: [_hard("assets/again", "saved_model.pb")], r"hardlink member"),
    ("hardlink_out", ".tar", lambda out: [_hard("h", "/etc/hostname")], SPARK_REFUSES),
    ("hardlink_out_gz", ".tar.gz", lambda out: [_hard("h", "/etc/hostname")], SPARK_REFUSES),
    ("dotdot", ".tar", lambda out: [_file("../escaped")], SPARK_REFUSES),
    ("dotdot_gz", ".tar.gz", lambda out: [_file("../escaped")], SPARK_REFUSES),
    ("absolute", ".tar", lambda out: [_file(os.path.join(out, "escaped"))], r"does not list: .*outside/escaped"),
    ("absolute_gz", ".tar.gz", lambda out: [_file(os.path.join(out, "escaped"))], r"does not list: .*outside/escaped"),
    ("zip_dotdot", ".zip", lambda out: [("../escaped", b"x", None)], SPARK_REFUSES),
]
# An archive Spark failed to unpack stays added: every later task of the context tries again and fails
# (in local mode too), so those cases run last, and in a session of their own (``isolated_spark``).
SPARK_CASES.sort(key=lambda c: (c[3] == SPARK_REFUSES, c[0] == "symlink_then_write"))


@pytest.fixture(scope="module")
def isolated_spark():
    """A local[2] session for this module alone, stopped after it (hostile archives stay added)."""
    from hdfs_models.testing.pytest_plugin import require_module
    from hdfs_models.testing.spark import LOCAL, spark_session, stop_spark

    require_module("pyspark", "spark")
    yield spark_session(LOCAL, {"spark.hdfs_models.test": "p9-hostile-archives"})
    stop_spark()


def _hostile_archive(path, model, extra):
    """The model's files (manifest included) followed by ``extra`` members, as tar, tar.gz or zip."""
    names = sorted(os.path.relpath(os.path.join(d, f), model) for d, _, fs in os.walk(model) for f in fs)
    if path.endswith(".zip"):
        return zip_with(path, [(n, open(os.path.join(model, n), "rb").read(), None) for n in names] + extra)
    members = [_file(n, open(os.path.join(model, n), "rb").read()) for n in names]
    return tar_with(path, members + extra, mode="w:gz" if path.endswith(".gz") else "w")


def _snapshot(*dirs):
    return {d: sorted(os.listdir(d)) for d in dirs}


@pytest.mark.compat  # Spark's unpack differs by version: pyspark 3.5 (Hadoop 3.3 client) gives the same
@pytest.mark.parametrize(("case", "suffix", "extra", "expected"), SPARK_CASES, ids=[c[0] for c in SPARK_CASES])
def test_hostile_archive_through_add_archive_p9(isolated_spark, tmp_path, case, suffix, extra, expected):
    """P9: Spark's own unpack of a hostile archive; the handle refuses what Spark left; nothing outside."""
    from pyspark import SparkFiles

    from hdfs_models._distribute import spark_uri

    outside = tmp_path / "outside"
    outside.mkdir()
    model = make_model(tmp_path / "model")
    alias = f"p9_{case}_{os.urandom(4).hex()}"
    archive = _hostile_archive(str(tmp_path / f"{case}{suffix}"), model, extra(str(outside)))
    root = SparkFiles.getRootDirectory()
    watched = (root, os.path.dirname(root), str(tmp_path), str(outside))
    before = _snapshot(*watched)
    spark_error = None
    try:
        isolated_spark.sparkContext.addArchive(spark_uri(archive) + "#" + alias)
    except Exception as exc:  # py4j: the JVM's IOException / ExitCodeException
        spark_error = str(exc)
    after = _snapshot(*watched)
    assert after[str(outside)] == [] and not os.path.lexists("/tmp/escaped")  # nothing outside the work dir
    assert after[root] == sorted({*before[root], alias}) or after[root] == before[root]
    assert {d: after[d] for d in watched if d != root} == {d: before[d] for d in watched if d != root}
    handle = ModelHandle.submitted(alias, version=3)
    if expected == SPARK_REFUSES:
        assert spark_error is not None, f"Spark unpacked {case} without complaint"
        return
    assert spark_error is None or case == "symlink_then_write", spark_error  # GNU tar fails at l/pwn
    with pytest.raises((UnsafeArchiveError, IntegrityError), match=expected) as info:
        handle.local_path()
    assert alias in str(info.value) and info.value.member
    if spark_error is not None:
        return  # every task of this context now fails in Spark's own unpack (above)

    def task(_):
        try:
            handle.local_path()
        except (UnsafeArchiveError, IntegrityError) as exc:
            yield type(exc).__name__, exc.member
        else:
            yield "served", None

    rows = isolated_spark.sparkContext.parallelize([0], 1).mapPartitions(task).collect()
    assert rows == [(type(info.value).__name__, info.value.member)]  # the Python worker refuses it too
