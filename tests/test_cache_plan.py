"""Pure planning of the node cache: keys, plans, checks, eviction choices."""

import pytest

from hdfs_models._manifest import FileEntry, changed_files, extra_files, plan_download, verify_file
from hdfs_models.cache._layout import EntryInfo, entry_key, parse_temp_name, select_evictions, temp_name
from hdfs_models.errors import IntegrityError, UnsafeNameError

DIGEST = "9439eda466b3c9f41a504c9b9810a9e1707a89123b6bd5748b094323ee39da06"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist", "mnist-3-9439eda466b3c9f4"),
        ("my model/../x", "my_model_.._x-3-9439eda466b3c9f4"),
        ("..hidden", "hidden-3-9439eda466b3c9f4"),
        ("", "model-3-9439eda466b3c9f4"),
        ("ünï", "n-3-9439eda466b3c9f4"),
    ],
)
def test_entry_key_is_sanitised(name, expected):
    key = entry_key(name, 3, DIGEST)
    assert key == expected
    assert "/" not in key and not key.startswith(".")


def test_entry_key_changes_with_the_digest():
    assert entry_key("m", 1, DIGEST) != entry_key("m", 1, "0" * 64)
    with pytest.raises(ValueError, match="no hex"):
        entry_key("m", 1, "zzz")


@pytest.mark.parametrize(
    "name, parsed",
    [
        (temp_name("mnist-3-9439eda466b3c9f4", 1234, "ab_c9"), ("mnist-3-9439eda466b3c9f4", 1234)),
        (".tmp-a-b-c-77-x", ("a-b-c", 77)),
        ("mnist-3-9439eda466b3c9f4", None),
        (".tmp-nopid", None),
        (".tmp-k-notapid-x", None),
    ],
)
def test_parse_temp_name(name, parsed):
    assert parse_temp_name(name) == parsed


def test_plan_orders_largest_first_and_lists_every_dir():
    plan = plan_download(
        [
            ("saved_model.pb", 10, "a" * 64),
            ("variables/variables.data-00000-of-00001", 500, None),
            ("variables/variables.index", 5, None),
            ("MANIFEST.json", 99, None),
        ],
        ["assets", "assets/deep/er"],
        "hdfs://nn/m/1",
    )
    assert [t.path for t in plan.files] == [
        "variables/variables.data-00000-of-00001",
        "saved_model.pb",
        "variables/variables.index",
    ]
    assert plan.dirs == ("assets", "variables", "assets/deep", "assets/deep/er")
    assert plan.total_bytes == 515
    assert plan.sizes()["saved_model.pb"] == 10


@pytest.mark.parametrize("bad", ["../evil", "/etc/passwd", "a/../../x", "a\\b", "a/./b", "", "x\x00"])
def test_plan_rejects_names_escaping_the_entry_b6(bad):
    with pytest.raises(UnsafeNameError, match="unsafe file name"):
        plan_download([(bad, 1, None)], [], "hdfs://nn/m/1")


def test_plan_rejects_unsafe_empty_dirs_and_clashes():
    with pytest.raises(UnsafeNameError):
        plan_download([], ["../up"], "u")
    with pytest.raises(UnsafeNameError, match="both a file and a directory"):
        plan_download([("a", 1, None), ("a/b", 1, None)], [], "u")
    with pytest.raises(UnsafeNameError, match="duplicate"):
        plan_download([("a", 1, None), ("a", 1, None)], [], "u")


@pytest.mark.parametrize(
    "size, sha, match",
    [
        (9, None, "short read"),
        (11, None, "too many bytes"),
        (10, "b" * 64, "sha256 of f is b+, the manifest says a+"),
    ],
)
def test_verify_file_rejects_wrong_size_or_digest(size, sha, match):
    task = FileEntry("f", 10, "a" * 64)
    with pytest.raises(IntegrityError, match=match) as info:
        verify_file(task, size, sha, url="hdfs://nn/m/1", path="/tmp/x.part1")
    assert info.value.url == "hdfs://nn/m/1" and info.value.file == "f"


def test_verify_file_accepts_matching_bytes_and_listing_without_digest():
    verify_file(FileEntry("f", 10, "A" * 64), 10, "a" * 64, url="u", path="p")
    verify_file(FileEntry("f", 10, None), 10, "whatever", url="u", path="p")


def test_changed_files_and_extras():
    before = {"a": (1, 5.0), "b": (2, 5.0), "c": (3, None)}
    after = {"a": (1, 5.0), "b": (2, 6.0), "d": (4, 1.0)}
    assert changed_files(before, after) == ["b", "c", "d"]
    assert changed_files(before, dict(before)) == []
    assert extra_files(["a", "b"], ["a", "b", "MANIFEST.json", "zz", "extra/x"]) == ["extra/x", "zz"]


def _entries():
    return [EntryInfo("old", 100, 1.0), EntryInfo("mid", 200, 2.0), EntryInfo("new", 300, 3.0)]


@pytest.mark.parametrize(
    "max_versions, max_bytes, busy, expected",
    [
        (None, None, set(), []),
        (3, None, set(), []),
        (1, None, set(), ["old", "mid"]),
        (0, None, set(), ["old", "mid", "new"]),
        (None, 500, set(), ["old"]),
        (None, 300, set(), ["old", "mid"]),
        (1, None, {"old"}, ["mid", "new"]),
        (None, 300, {"old", "mid"}, ["new"]),
        (0, None, {"old", "mid", "new"}, []),
    ],
)
def test_select_evictions_lru_and_never_busy(max_versions, max_bytes, busy, expected):
    assert select_evictions(_entries(), max_versions, max_bytes, busy) == expected


@pytest.mark.parametrize(
    "name, ok",
    [
        ("mnist-3-9439eda466b3c9f4", True),
        ("my_model.v2-10-0123456789abcdef", True),
        ("photos", False),
        (".tmp-mnist-3-9439eda466b3c9f4-1-x", False),
        ("mnist-3-9439eda466b3c9f4.lock", False),
        ("a-1-XYZ", False),
    ],
)
def test_only_entry_shaped_names_are_entries(name, ok):
    from hdfs_models.cache._layout import is_entry_name

    assert is_entry_name(name) is ok
