"""Read the serving signatures of a local SavedModel without loading it.

The result is the ``signatures`` format of ``MANIFEST.json`` (see
``docs/api.md``)::

    {"serving_default": {"method_name": "tensorflow/serving/predict",
                         "inputs": {"x": {"dtype": "float32", "shape": [-1, 784]}},
                         "outputs": {"output_0": {"dtype": "float32", "shape": [-1, 10]}}}}

``shape`` is ``None`` for an unknown rank and ``-1`` marks an unknown
dimension. Only ``saved_model.pb`` is parsed (the protobuf message, through
TensorFlow's generated classes): variables are never read, so this is cheap
even for large models. TensorFlow is imported inside the function, through
:func:`import_tensorflow`, which every TensorFlow import of both packages uses.

This module is the one home of signatures: reading them from a SavedModel
(:func:`read_signatures`), from a model directory's ``MANIFEST.json`` else its
``saved_model.pb`` (:func:`model_signatures`), from a pinned store version
without downloading more than ``saved_model.pb`` (:func:`version_signatures`),
for publish where TensorFlow may be missing (:func:`publish_signatures`), and
rendering them like ``saved_model_cli show --all`` (:func:`format_signatures`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from hdfs_models._manifest import MANIFEST_NAME
from hdfs_models._savedmodel import SAVED_MODEL_PB, local_model_dir
from hdfs_models._versions import PinnedVersion
from hdfs_models.errors import HdfsModelsError, InvalidModelError, MissingExtraError
from hdfs_models.store import open_store, translate_errors

__all__ = [
    "format_signatures",
    "import_tensorflow",
    "model_signatures",
    "publish_signatures",
    "read_signatures",
    "version_signatures",
]

log = logging.getLogger(__name__)

_INTERNAL = "__saved_model_init_op"
_import_lock = threading.Lock()
# absl's C++ INFO lines ("I0000 00:00:1795843950.158696   30696 port.cc:153] oneDNN custom
# operations are on ...") and the banner absl prints before them. TF_CPP_MIN_LOG_LEVEL does not
# reach them: TensorFlow's shared libraries log while loading, before reading it.
# A line that does not start like a log line continues the previous one.
_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"


def import_tensorflow() -> Any:
    """``import tensorflow``, without the INFO lines it writes to stderr while loading.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` unless the environment sets it, and drops
    absl ``I…`` lines written to file descriptor 2 during the import; every
    other line (warnings, errors) is written through. With
    ``TF_CPP_MIN_LOG_LEVEL`` set to ``0`` in the environment nothing is
    filtered. Raises ``ImportError`` naming the extra when TensorFlow is
    missing.

    On x86-64 it also sets ``TF_ENABLE_ONEDNN_OPTS=1`` unless the environment
    sets it: TensorFlow's oneDNN kernels, which it turns
    on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX. On an AMD Zen 3
    (AVX2 and FMA) they run the bench CNN 1.8x faster than TensorFlow's default
    Eigen kernels on one thread (docs/performance.md). Both are read once, when
    TensorFlow loads: a process that imported TensorFlow before keeps its own.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    verbose = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with _import_lock, contextlib.nullcontext() if verbose else _filtered_stderr():
        try:
            import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingExtraError(
                f"TensorFlow is not installed ({exc}): pip install 'hdfs-models[tf]'",
                reason="no TensorFlow",
                extra="hdfs-models[tf]",
            ) from exc
    return tf


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Send fd 2 to a temp file for the block, then write back the lines that are not absl INFO."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = _without_info(captured.read().decode("utf-8", "replace"))
            if kept:
                os.write(2, kept.encode("utf-8"))


def _without_info(text: str) -> str:
    """``text`` less absl INFO lines (with their continuation lines) and absl's banner. Pure."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match:
            dropping = match.group(1) == "I"
        elif line.startswith(_BANNER):
            dropping = True
        if not dropping:
            kept.append(line)
    return "".join(kept)


def read_signatures(local_dir: str) -> dict[str, Any]:
    """Return the signatures of the SavedModel in ``local_dir``.

    Signatures of every meta graph are merged (the ``serve`` graph wins on a
    name clash); TensorFlow's internal ``__saved_model_init_op`` is left out.
    Raises :class:`InvalidModelError` naming the path when ``saved_model.pb``
    is missing, empty or not a SavedModel protobuf.
    """
    pb_path = os.path.join(local_dir, "saved_model.pb")
    try:
        with open(pb_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InvalidModelError(
            f"cannot read {pb_path}: {exc.strerror or exc}", path=pb_path, reason="unreadable"
        ) from exc
    if not data:
        raise InvalidModelError(f"{pb_path} is empty (0 bytes)", path=pb_path, reason="empty")
    tf = import_tensorflow()
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    message = saved_model_pb2.SavedModel()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidModelError(
            f"{pb_path} is not a SavedModel protobuf (truncated or corrupt): {exc}",
            path=pb_path,
            reason="corrupt",
        ) from exc
    graphs = sorted(message.meta_graphs, key=lambda g: "serve" in g.meta_info_def.tags)
    result: dict[str, Any] = {}
    for graph in graphs:
        for name, sig in graph.signature_def.items():
            if name == _INTERNAL:
                continue
            result[name] = {
                "method_name": sig.method_name,
                "inputs": {k: _tensor_info(tf, v) for k, v in sorted(sig.inputs.items())},
                "outputs": {k: _tensor_info(tf, v) for k, v in sorted(sig.outputs.items())},
            }
    return dict(sorted(result.items()))


def _tensor_info(tf: Any, info: Any) -> dict[str, Any]:
    """One TensorInfo as ``{"dtype": name, "shape": [dims] | None}``."""
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else [int(d.size) for d in shape.dim]
    return {"dtype": tf.dtypes.as_dtype(info.dtype).name, "shape": dims}


def model_signatures(local_dir: str) -> dict[str, Any]:
    """Signatures of the model in ``local_dir``: its ``MANIFEST.json``'s when it lists any, else ``saved_model.pb``'s.

    Returns ``{}`` for a SavedModel without serving signatures. Raises
    :class:`InvalidModelError` naming the file for an unreadable manifest or
    ``saved_model.pb``.
    """
    manifest = os.path.join(local_dir, MANIFEST_NAME)
    if os.path.isfile(manifest):
        with open(manifest, "rb") as fh:
            try:
                listed = json.loads(fh.read()).get("signatures")
            except (ValueError, AttributeError) as exc:
                raise InvalidModelError(
                    f"{manifest} is not valid JSON: {exc}", path=manifest, reason="bad manifest"
                ) from exc
        if listed:
            return dict(listed)
    return read_signatures(local_dir)


def version_signatures(pinned: PinnedVersion, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Signatures of a pinned version: from its manifest, else from its ``saved_model.pb`` alone.

    A local version dir is read in place; from any other store only
    ``saved_model.pb`` is copied (to a temp dir, removed afterwards), never
    the variables.
    """
    if pinned.signatures:
        return dict(pinned.signatures)
    local = local_model_dir(pinned.url)
    if local is not None:
        return model_signatures(local)
    fs, path = open_store(pinned.url, storage_options)
    with tempfile.TemporaryDirectory(prefix="hdfs-models-signatures-") as tmp:
        with translate_errors(pinned.url, f"reading {SAVED_MODEL_PB}"):
            fs.get_file(f"{path.rstrip('/')}/{SAVED_MODEL_PB}", os.path.join(tmp, SAVED_MODEL_PB))
        return read_signatures(tmp)


def publish_signatures(local_dir: str) -> dict[str, Any]:
    """What publish records: :func:`read_signatures`, or ``{}`` (logged) when TensorFlow is not importable."""
    try:
        return dict(read_signatures(local_dir))
    except ImportError as exc:
        log.info("publishing %s without signatures (TensorFlow not importable: %s)", local_dir, exc)
        return {}
    except HdfsModelsError:
        raise
    except Exception as exc:  # TensorFlow raises many types for an unreadable model
        raise InvalidModelError(
            f"{local_dir}: TensorFlow could not read the SavedModel's signatures: {exc}",
            path=local_dir,
            reason="unreadable SavedModel",
        ) from exc


def _shape_text(shape: list[int] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def format_signatures(signatures: Mapping[str, Any]) -> str:
    """A signatures dict as text, laid out like ``saved_model_cli show --all``. Pure."""
    if not signatures:
        return "no serving signatures"
    lines: list[str] = []
    for name in sorted(signatures):
        sig = signatures[name]
        lines.append(f"signature_def['{name}']:")
        for kind in ("inputs", "outputs"):
            lines.append(f"  The given SavedModel SignatureDef contains the following {kind[:-1]}(s):")
            for tensor, info in sorted(sig.get(kind, {}).items()):
                lines += [
                    f"    {kind}['{tensor}'] tensor_info:",
                    f"        dtype: {info.get('dtype')}",
                    f"        shape: {_shape_text(info.get('shape'))}",
                ]
        lines.append(f"  Method name is: {sig.get('method_name', '')}")
    return "\n".join(lines)
