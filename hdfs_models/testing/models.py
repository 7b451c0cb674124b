"""Tiny random-weight SavedModels for tests and examples (TensorFlow imported inside).

- :func:`save_dense`: ``features`` float32[-1, n_in] → ``probabilities`` float32[-1, n_out]
  (``input_name`` renames the input, e.g. ``keras_tensor`` as a Keras export names it).
- :func:`save_multi`: ``image`` float32[-1, 2, 3, 1] and ``extra`` float64[-1, 2] →
  ``probabilities`` float32[-1, 5], ``score`` float32[-1], ``label`` int64[-1].
- :func:`write_features`: a Parquet dir of ``id`` + ``features`` rows to score.

Weights come from a fixed seed, so predictions are reproducible; saving takes
well under a second once TensorFlow is imported.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["predict_in_process", "save_dense", "save_multi", "write_features"]


def save_dense(
    path: str, n_in: int = 12, n_out: int = 5, hidden: int = 16, seed: int = 1, input_name: str = "features"
) -> str:
    """Save a 2-layer softmax MLP at ``path`` (created); returns ``path``."""
    import tensorflow as tf

    class Dense(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = tf.Variable(tf.random.stateless_normal([n_in, hidden], [seed, 1]))
            self.w2 = tf.Variable(tf.random.stateless_normal([hidden, n_out], [seed, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, n_in], tf.float32, name=input_name)])
        def serve(self, features: Any) -> Any:
            h = tf.nn.relu(features @ self.w1)
            return {"probabilities": tf.nn.softmax(h @ self.w2)}

    module = Dense()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def save_multi(path: str, seed: int = 2) -> str:
    """Save a two-input, three-output model at ``path``; returns ``path``."""
    import tensorflow as tf

    class Multi(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal([8, 5], [seed, 1]))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2, 3, 1], tf.float32, name="image"),
                tf.TensorSpec([None, 2], tf.float64, name="extra"),
            ]
        )
        def serve(self, image: Any, extra: Any) -> Any:
            flat = tf.concat([tf.reshape(image, [-1, 6]), tf.cast(extra, tf.float32)], axis=1)
            logits = flat @ self.w
            return {
                "probabilities": tf.nn.softmax(logits),
                "score": tf.reduce_max(logits, axis=1),
                "label": tf.argmax(logits, axis=1),
            }

    module = Multi()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def predict_in_process(path: str, signature: str = "serving_default", **inputs: Any) -> dict[str, Any]:
    """Reference: TensorFlow's own prediction, as numpy, for the whole input at once."""
    import tensorflow as tf

    fn = tf.saved_model.load(os.fspath(path)).signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def write_features(directory: str, features: Any, files: int = 1) -> str:
    """``files`` Parquet files of ``id`` (row index) and ``features`` (``array<float>``); the dir.

    Row ``i`` holds ``features[i]``; rows are dealt round-robin over the files,
    so each file (one Spark input split) holds every ``files``-th id.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.asarray(features, dtype=np.float32)
    width = int(np.prod(x.shape[1:]))
    x = x.reshape(len(x), width)
    os.makedirs(directory, exist_ok=True)
    for k in range(files):
        ids = np.arange(k, len(x), files, dtype=np.int64)
        offsets = pa.array(np.arange(len(ids) + 1, dtype=np.int32) * width)
        column = pa.ListArray.from_arrays(offsets, pa.array(x[ids].reshape(-1)), type=pa.list_(pa.float32()))
        pq.write_table(pa.table({"id": ids, "features": column}), os.path.join(directory, f"part-{k}.parquet"))
    return directory
