"""Read the serving signatures of a local SavedModel without loading it.

The result is the ``signatures`` format of ``MANIFEST.json`` (see
``docs/INTERFACES.md``)::

    {"serving_default": {"method_name": "tensorflow/serving/predict",
                         "inputs": {"x": {"dtype": "float32", "shape": [-1, 784]}},
                         "outputs": {"output_0": {"dtype": "float32", "shape": [-1, 10]}}}}

``shape`` is ``None`` for an unknown rank and ``-1`` marks an unknown
dimension. Only ``saved_model.pb`` is parsed (the protobuf message, through
TensorFlow's generated classes): variables are never read, so this is cheap
even for large models. TensorFlow is imported inside the function.
"""

from __future__ import annotations

import os
from typing import Any

from hdfs_models.errors import InvalidModelError

__all__ = ["read_signatures"]

_INTERNAL = "__saved_model_init_op"


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
    try:
        import tensorflow as tf
        from google.protobuf.message import DecodeError
        from tensorflow.core.protobuf import saved_model_pb2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading signatures needs TensorFlow: pip install 'hdfs-models[tf]'"
        ) from exc
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
