"""Is this a complete SavedModel? Checked without TensorFlow (RELIABILITY B3, B4, B10).

A SavedModel directory holds ``saved_model.pb`` (or ``saved_model.pbtxt``),
``variables/variables.index`` and every ``variables/variables.data-K-of-N``
shard. :func:`check_complete` works on a ``{relative path: size}`` mapping,
so it runs the same on a local walk and a store listing, before anything is
downloaded or TensorFlow is imported. :func:`check_local_model` is the one
check of a local directory (publish, ``verify``, the node cache's last look
before its commit); :func:`local_model_dir` tells a local version dir from
a URL (``pack``, ``verify``, ``inspect``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from typing import Any

from hdfs_models._manifest import MANIFEST_NAME, walk_local
from hdfs_models.errors import InvalidModelError, ModelNotFoundError

__all__ = [
    "SAVED_MODEL_PB",
    "check_complete",
    "check_graph_file",
    "check_local_model",
    "check_saved_model_pb",
    "is_saved_model_listing",
    "local_model_dir",
]

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
VARIABLES_INDEX = "variables/variables.index"
_SHARD = re.compile(r"variables/variables\.data-(\d{5})-of-(\d{5})")


def is_saved_model_listing(names: Collection[str] | Mapping[str, Any]) -> bool:
    """True when the top level names a SavedModel graph file. Pure."""
    return SAVED_MODEL_PB in names or SAVED_MODEL_PBTXT in names


def _missing_shards(files: Mapping[str, int]) -> list[str]:
    shards = {(int(m.group(1)), int(m.group(2))) for m in map(_SHARD.fullmatch, files) if m}
    if not shards:
        return ["variables/variables.data-00000-of-00001 (no variables data shard)"]
    counts = {n for _, n in shards}
    if len(counts) > 1:
        return [f"a consistent shard count (found shards 'of' {sorted(counts)})"]
    total = counts.pop()
    present = {k for k, _ in shards}
    return [f"variables/variables.data-{k:05d}-of-{total:05d}" for k in range(total) if k not in present]


def check_complete(files: Mapping[str, int], where: str) -> None:
    """Raise :class:`InvalidModelError` naming everything missing from a SavedModel.

    ``files`` maps posix paths relative to the model dir to sizes; ``where``
    (a URL or local path) is named in the error. Checks: ``saved_model.pb``
    (or ``.pbtxt``) present and not 0 bytes, ``variables/variables.index``
    present, and every ``variables.data-K-of-N`` shard for K in 0..N-1. Pure.
    """
    missing: list[str] = []
    graph = SAVED_MODEL_PB if SAVED_MODEL_PB in files else SAVED_MODEL_PBTXT
    if graph not in files:
        missing.append(SAVED_MODEL_PB)
    elif files[graph] == 0:
        raise InvalidModelError(
            f"{where}: {graph} is empty (0 bytes)", url=where, reason=f"empty {graph}", missing=[graph]
        )
    if VARIABLES_INDEX not in files:
        missing.append(VARIABLES_INDEX)
    missing.extend(_missing_shards(files))
    if missing:
        raise InvalidModelError(
            f"{where}: not a complete SavedModel: missing {', '.join(missing)}",
            url=where,
            reason="incomplete SavedModel",
            missing=missing,
        )


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError(f"truncated varint at byte {pos}")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos


def _walk_fields(data: bytes) -> set[int]:
    """Field numbers of a protobuf message; ValueError if the wire format breaks off."""
    pos, fields = 0, set()
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire} at byte {pos}")
        if number == 0 or pos > len(data):
            raise ValueError(f"field {number} runs past the end ({pos} > {len(data)} bytes)")
        fields.add(number)
    return fields


def check_saved_model_pb(data: bytes, where: str) -> None:
    """Raise :class:`InvalidModelError` if ``saved_model.pb`` bytes are empty or truncated (B4).

    Walks the top-level protobuf wire format (no TensorFlow): every field must
    end inside the data and at least one MetaGraphDef (field 2) must exist.
    """
    if not data:
        raise InvalidModelError(f"{where}: saved_model.pb is empty (0 bytes)", url=where, reason="empty saved_model.pb")
    try:
        fields = _walk_fields(data)
    except ValueError as exc:
        raise InvalidModelError(
            f"{where}: saved_model.pb is truncated or corrupt ({exc})", url=where, reason="corrupt saved_model.pb"
        ) from exc
    if 2 not in fields:
        raise InvalidModelError(
            f"{where}: saved_model.pb holds no MetaGraphDef (truncated or not a SavedModel)",
            url=where,
            reason="corrupt saved_model.pb",
        )


def check_graph_file(local_dir: str, where: str | None = None) -> None:
    """B4 on a local dir: its ``saved_model.pb``, if present, must not be empty or truncated.

    ``where`` (default: the file's local path) is named in the error.
    """
    path = os.path.join(local_dir, SAVED_MODEL_PB)
    if os.path.exists(path):
        with open(path, "rb") as fh:
            check_saved_model_pb(fh.read(), where or path)


def check_local_model(local_dir: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """Walk and check a local SavedModel dir (B3, B4, B10); return (sizes, empty dirs).

    The sizes leave ``MANIFEST.json`` out. Raises :class:`ModelNotFoundError`
    when nothing is at ``local_dir``, and :class:`InvalidModelError` naming it
    for a file, a link, an incomplete tree or a corrupt ``saved_model.pb``.
    The one SavedModel check of a local directory: publish, ``verify``, the
    node cache before its commit, and the scorer's local models.
    """
    if not os.path.lexists(local_dir):
        raise ModelNotFoundError(f"model {local_dir} does not exist", path=local_dir, reason="not found")
    if os.path.isfile(local_dir):
        raise InvalidModelError(
            f"model {local_dir} is a file, not a SavedModel directory", path=local_dir, reason="not a dir"
        )
    sizes, empty = walk_local(local_dir)
    check_complete(sizes, local_dir)
    check_graph_file(local_dir)
    return sizes, empty


def local_model_dir(url_or_dir: str) -> str | None:
    """The local path when ``url_or_dir`` (plain or ``file://``) is a local version dir, else ``None``.

    A local version dir holds ``MANIFEST.json`` or ``saved_model.pb``; a
    base dir (``BASE/<n>/``) or any other URL gives ``None``.
    """
    path = url_or_dir[len("file://") :] if url_or_dir.startswith("file://") else url_or_dir
    if "://" in path or not os.path.isdir(path):
        return None
    if any(os.path.isfile(os.path.join(path, name)) for name in (MANIFEST_NAME, SAVED_MODEL_PB)):
        return path
    return None
