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
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from hdfs_models.errors import InvalidModelError, MissingExtraError

__all__ = ["import_tensorflow", "read_signatures"]

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
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    verbose = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
