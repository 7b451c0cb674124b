"""Helpers (no tests): model trees and hand-made, hostile tar and zip archives."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile

from hdfs_models._manifest import MANIFEST_NAME, build_manifest
from hdfs_models.testing import fake_model_files, write_fake_model

MODEL_FILES = fake_model_files(fingerprint=True)


def make_model(root, *, manifest=True, name="mnist", version=3):
    """A fake SavedModel version dir (:data:`MODEL_FILES`, an empty assets/), with its manifest."""
    root = write_fake_model(root, fingerprint=True)
    if manifest:
        m = build_manifest(root, name, version)
        with open(os.path.join(root, MANIFEST_NAME), "wb") as fh:
            fh.write(m.to_json())
    return root


def tar_with(path, members, mode="w"):
    """Write a tar of (TarInfo kwargs, data or None) pairs, exactly as given."""
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return str(path)


def zip_with(path, members):
    """Write a zip of (name, data, unix mode or None) triples with raw names."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (mode if mode is not None else (stat.S_IFREG | 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return str(path)


def walk_is_safe(root):
    """S12: an lstat walk finds no links and every path inside ``root``."""
    real = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), path
            assert os.path.commonpath([real, os.path.realpath(path)]) == real, path
            assert not mode & 0o7000, path
    return True
