"""Tiny fake SavedModel trees for the core-store unit tests (no TensorFlow)."""

from __future__ import annotations

import os

# A well-formed SavedModel proto: field 1 (schema version) = 1, field 2 (one empty MetaGraphDef).
SAVED_MODEL_PB = b"\x08\x01\x12\x00"


def make_model(path: str, *, shards: int = 1, payload: bytes = b"weights", empty_assets: bool = True) -> str:
    """Write a fake SavedModel (pb, index, data shards, optional empty assets/) under ``path``."""
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    with open(os.path.join(path, "saved_model.pb"), "wb") as fh:
        fh.write(SAVED_MODEL_PB)
    with open(os.path.join(path, "variables", "variables.index"), "wb") as fh:
        fh.write(b"index:" + payload)
    for k in range(shards):
        name = f"variables.data-{k:05d}-of-{shards:05d}"
        with open(os.path.join(path, "variables", name), "wb") as fh:
            fh.write(payload * (k + 1))
    if empty_assets:
        os.makedirs(os.path.join(path, "assets"), exist_ok=True)
    return path


def put_model(fs, path: str, *, shards: int = 1, payload: bytes = b"weights", marker: str | None = None) -> str:
    """Write the same fake SavedModel straight into an fsspec store (no manifest)."""
    fs.makedirs(f"{path}/variables", exist_ok=True)
    fs.pipe_file(f"{path}/saved_model.pb", SAVED_MODEL_PB)
    fs.pipe_file(f"{path}/variables/variables.index", b"index:" + payload)
    for k in range(shards):
        fs.pipe_file(f"{path}/variables/variables.data-{k:05d}-of-{shards:05d}", payload * (k + 1))
    if marker:
        fs.pipe_file(f"{path}/{marker}", b"")
    return path
