"""A fake SavedModel for tests: the files TensorFlow writes, made without TensorFlow.

``saved_model.pb`` is a valid ``SavedModel`` protobuf (schema version 1, one
``MetaGraphDef`` tagged ``serve``, no signatures); the variables are
seeded random bytes. Enough for everything hdfs-models checks (completeness,
the graph's wire format, sizes and digests); TensorFlow could parse the graph
but there is nothing to run. For models that run, use :mod:`hdfs_models.testing.models`.
"""

from __future__ import annotations

import os
import random
from typing import Any

from hdfs_models._tree import walk_tree

__all__ = ["SAVED_MODEL_PB", "fake_model_files", "tree_digest", "write_fake_model"]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _saved_model_pb() -> bytes:
    meta_info_def = _field(4, b"serve")  # MetaInfoDef.tags
    meta_graph_def = _field(1, meta_info_def)  # MetaGraphDef.meta_info_def
    return b"\x08\x01" + _field(2, meta_graph_def)  # SavedModel: schema version 1, meta_graphs


#: The bytes of :func:`write_fake_model`'s ``saved_model.pb``.
SAVED_MODEL_PB = _saved_model_pb()


def fake_model_files(
    *, shards: int = 1, data_bytes: int = 4096, seed: int = 0, fingerprint: bool = False
) -> dict[str, bytes]:
    """Relative path → bytes of a fake SavedModel (empty directories aside).

    ``saved_model.pb``, ``variables/variables.index`` (97 bytes) and
    ``shards`` data shards of ``data_bytes // shards`` bytes each, random
    from ``seed`` (a different seed gives a different version);
    ``fingerprint.pb`` too when ``fingerprint``.
    """
    rng = random.Random(seed)
    files = {"saved_model.pb": SAVED_MODEL_PB, "variables/variables.index": rng.randbytes(97)}
    for k in range(shards):
        files[f"variables/variables.data-{k:05d}-of-{shards:05d}"] = rng.randbytes(data_bytes // shards)
    if fingerprint:
        files["fingerprint.pb"] = rng.randbytes(20)
    return files


def write_fake_model(
    path: str | os.PathLike[str],
    *,
    fs: Any = None,
    shards: int = 1,
    data_bytes: int = 4096,
    seed: int = 0,
    fingerprint: bool = False,
    empty_assets: bool = True,
    marker: str | None = None,
) -> str:
    """Write :func:`fake_model_files` under ``path`` and return ``path`` (as a string).

    ``fs``: an fsspec filesystem to write into (default: the local disk, as
    a model export would be); ``empty_assets``: also an empty ``assets/``;
    ``marker``: an empty file of that name too (e.g. ``_SUCCESS``).
    """
    root = os.fspath(path)
    files = fake_model_files(shards=shards, data_bytes=data_bytes, seed=seed, fingerprint=fingerprint)
    if marker:
        files[marker] = b""
    for rel, data in files.items():
        if fs is not None:
            fs.makedirs(f"{root}/{rel}".rsplit("/", 1)[0], exist_ok=True)
            fs.pipe_file(f"{root}/{rel}", data)
            continue
        local = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as fh:
            fh.write(data)
    if empty_assets:
        if fs is not None:
            fs.makedirs(f"{root}/assets", exist_ok=True)
        else:
            os.makedirs(os.path.join(root, "assets"), exist_ok=True)
    return root


def tree_digest(path: str | os.PathLike[str]) -> dict[str, str]:
    """Relative posix path → sha256 of every file under ``path``; each empty dir → ``"<dir>"``."""
    tree = walk_tree(os.fspath(path))
    out = {rel: tree.sha256(rel) for rel in tree.files}
    out.update({rel: "<dir>" for rel in tree.empty_dirs})
    return out
