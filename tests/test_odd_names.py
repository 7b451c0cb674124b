"""Odd models: 10,000 small assets, non-ASCII UTF-8 names, names that are not valid UTF-8.

Each goes through publish, localize, pack and unpack on a local store. A name
that is not valid UTF-8 has one defined outcome everywhere: :class:`UnsafeNameError`
(or :class:`UnsafeArchiveError` for an archive member) naming it, before
anything is written (the MiniDFS side: integration/test_reliability_minidfs.py).
"""

import io
import os
import tarfile

import pytest

from hdfs_models import UnsafeArchiveError, UnsafeNameError, localize, pack, publish, resolve, unpack
from hdfs_models.testing import tree_digest, write_fake_model

UTF8 = ["größe.txt", "模型/词汇.txt", "emoji-😀.bin", "e\u0301-nfd.txt", "é-nfc.txt", "space name.txt"]
BAD = b"\xff\xfe-latin1-\xe9.txt"  # not valid UTF-8


def _without_manifest(path):
    tree = tree_digest(path)
    tree.pop("MANIFEST.json", None)
    return tree


def _round_trip(src, tmp_path):
    """publish → localize → pack → unpack; every tree must equal ``src``."""
    base = str(tmp_path / "store" / "odd")
    pinned = publish(src, base, signatures=False)
    expected = tree_digest(src)
    with localize(base, cache_dir=str(tmp_path / "cache")) as model:
        assert _without_manifest(model.path) == expected
        archive = pack(model.path, str(tmp_path / "odd.tar"))
    out = unpack(archive, str(tmp_path / "unpacked"))
    assert _without_manifest(out) == expected
    return pinned


@pytest.mark.slow
def test_ten_thousand_small_assets_round_trip(tmp_path):
    src = write_fake_model(str(tmp_path / "src"), data_bytes=10_000)
    many = os.path.join(src, "assets", "many")
    for group in range(10):
        os.makedirs(os.path.join(many, str(group)))
        for i in range(1000):
            with open(os.path.join(many, str(group), f"{i:04d}.txt"), "w") as fh:
                fh.write(f"{group}-{i}")
    pinned = _round_trip(src, tmp_path)
    assert len(pinned.files) == 3 + 10_000


def test_non_ascii_utf8_names_round_trip_unchanged(tmp_path):
    src = write_fake_model(str(tmp_path / "src"))
    for rel in UTF8:
        full = os.path.join(src, "assets", rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(rel.encode())
    pinned = _round_trip(src, tmp_path)
    # names are kept byte for byte: the decomposed é (NFD) is not normalised to the composed one
    assert {f.path for f in pinned.files} >= {f"assets/{rel}" for rel in UTF8}
    assert sorted(os.listdir(os.path.join(tmp_path, "unpacked", "assets"))) == sorted(
        ["größe.txt", "模型", "emoji-😀.bin", "e\u0301-nfd.txt", "é-nfc.txt", "space name.txt"]
    )


def _with_bad_name(path):
    src = write_fake_model(path)
    with open(os.path.join(os.fsencode(src), b"assets", BAD), "wb") as fh:
        fh.write(b"x")
    return src


def test_name_not_valid_utf8_is_refused_by_publish_before_any_upload(tmp_path):
    src = _with_bad_name(str(tmp_path / "src"))
    base = str(tmp_path / "store" / "odd")
    with pytest.raises(UnsafeNameError, match=r"not valid UTF-8 \(bytes b'assets/\\xff\\xfe-latin1-\\xe9.txt'\)"):
        publish(src, base, signatures=False)
    assert not os.path.exists(base) or os.listdir(base) == []


def test_name_not_valid_utf8_is_refused_by_pack(tmp_path):
    src = _with_bad_name(str(tmp_path / "src"))
    with pytest.raises(UnsafeNameError, match="not valid UTF-8"):
        pack(src, str(tmp_path / "odd.tar"))
    assert os.listdir(tmp_path) == ["src"]


def test_name_not_valid_utf8_on_a_store_is_refused_by_localize(tmp_path):
    """A version copied onto a store by another tool (no manifest) with such a name: E, nothing cached."""
    base = tmp_path / "plain" / "odd"
    _with_bad_name(str(base / "1"))
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeNameError, match="not valid UTF-8") as info:
        localize(str(base), cache_dir=str(cache))
    assert str(base) in str(info.value)
    assert not cache.exists() or [n for n in os.listdir(cache) if not n.startswith(".")] == []
    with pytest.raises(UnsafeNameError, match="not valid UTF-8"):
        resolve(str(base))


def test_archive_member_not_valid_utf8_is_refused_by_unpack(tmp_path):
    src = write_fake_model(str(tmp_path / "src"))
    archive = pack(src, str(tmp_path / "good.tar"))
    data = open(archive, "rb").read()
    buf = io.BytesIO(data)
    with tarfile.open(fileobj=buf, mode="a", encoding="utf-8", errors="surrogateescape") as tar:
        info = tarfile.TarInfo("assets/" + BAD.decode("utf-8", "surrogateescape"))
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="not valid UTF-8") as info:
        unpack(str(bad), str(tmp_path / "out"))
    assert str(bad) in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["bad.tar", "good.tar", "src"]
