"""What reduced precision costs a given model: score a sample both ways and compare.

:func:`compare_precision` runs one signature over the same rows in float32 and
in the reduced precision (one model load, in this process, no Spark) and
reports the class agreement (argmax of the output), the largest absolute
difference of any output value, each precision's accuracy when labels are
given, and each run's seconds. ``python -m scoring.precision`` is the same
from a shell over a Parquet sample.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hdfs_models import import_tensorflow
from scoring._precision import resolve_precision, with_precision
from scoring._signature import parse_signature
from scoring._source import ModelRef, model_source
from scoring.errors import SignatureError

__all__ = ["PrecisionReport", "compare_precision"]


@dataclass(frozen=True)
class PrecisionReport:
    """float32 against ``precision`` over ``rows`` rows of one output tensor (``output_tensor``).

    ``class_agreement``: share of rows whose argmax is the same (None for an
    output of one value per row); ``max_abs_diff``: largest absolute difference
    of any output value; ``accuracy``: per precision, when labels were given;
    ``seconds``: per precision, the timed pass after one warm-up batch.
    """

    model: str
    output_tensor: str
    rows: int
    precision: str
    class_agreement: float | None
    max_abs_diff: float
    accuracy: dict[str, float] | None
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"{self.model}: output {self.output_tensor!r}, {self.rows} rows, float32 vs {self.precision}"]
        if self.class_agreement is not None:
            same = round(self.class_agreement * self.rows)
            lines.append(f"  class agreement      {self.class_agreement:.2%} ({same}/{self.rows} rows)")
        lines.append(f"  largest difference   {self.max_abs_diff:.6f} (absolute, any output value)")
        if self.accuracy:
            lines.append("  accuracy             " + ", ".join(f"{k} {v:.2%}" for k, v in self.accuracy.items()))
        rates = ", ".join(f"{k} {self.rows / s:,.0f} rows/s" for k, s in self.seconds.items() if s > 0)
        lines.append(f"  speed (this process) {rates}")
        return "\n".join(lines)


def compare_precision(
    model: ModelRef,
    features: np.ndarray | Mapping[str, np.ndarray],
    *,
    precision: str = "bfloat16",
    signature: str = "serving_default",
    output_tensor: str | None = None,
    labels: np.ndarray | None = None,
    batch_size: int = 1024,
) -> PrecisionReport:
    """Score ``features`` in float32 and in ``precision``; compare the two.

    ``model``: a local SavedModel dir, a model URL or a handle (as for
    :class:`scoring.Scorer`). ``features``: one array for a single-input
    signature, else ``{input name: array}``, rows first. ``output_tensor``: which
    output tensor to compare (needed when the signature has several). Raises
    PrecisionError when ``precision`` cannot run on this CPU (``"auto"`` that
    falls back to float32 compares float32 with itself).
    """
    tf = import_tensorflow()

    source = model_source(model)
    sig = parse_signature(source.signatures(), signature, source.describe())
    inputs = dict(features) if isinstance(features, Mapping) else {_only(sig.input_names, "input", sig.name): features}
    for name in sig.input_names:
        if name not in inputs:
            raise SignatureError(f"no features for input {name!r} of {sig.name!r}", reason="missing input")
    output = output_tensor or _only(sig.output_names, "output", sig.name)
    sig.output(output)
    rows = len(next(iter(inputs.values())))
    if labels is not None and len(labels) != rows:
        raise ValueError(f"labels has {len(labels)} rows, features {rows}")
    resolved = resolve_precision(precision)
    function = tf.saved_model.load(source.localize().path).signatures[signature]
    results, seconds = {}, {}
    for name in ("float32", resolved) if resolved != "float32" else ("float32",):
        results[name], seconds[name] = _run(with_precision(function, name), inputs, output, rows, batch_size)
    low = results.get(resolved, results["float32"])
    return _report(source.describe(), output, resolved, results["float32"], low, labels, seconds)


def _only(names: list[str], kind: str, signature: str) -> str:
    if len(names) != 1:
        raise SignatureError(f"signature {signature!r} has {kind}s {names}: name the {kind} to compare",
                             reason=f"several {kind}s")  # fmt: skip
    return names[0]


def _run(function: Any, inputs: Mapping[str, np.ndarray], output: str, rows: int, batch: int) -> tuple[Any, float]:
    tf = import_tensorflow()

    def call(start: int) -> np.ndarray:
        chunk = {k: tf.constant(v[start : start + batch]) for k, v in inputs.items()}
        return np.asarray(function(**chunk)[output].numpy())

    call(0)  # the first call of each variant pays its graph rewrite
    started = time.perf_counter()
    parts = [call(i) for i in range(0, rows, batch)]
    return np.concatenate(parts), time.perf_counter() - started


def _report(
    model: str, output: str, precision: str, full: np.ndarray, low: np.ndarray,
    labels: np.ndarray | None, seconds: dict[str, float],
) -> PrecisionReport:  # fmt: skip
    rows = len(full)
    flat, flat_low = full.reshape(rows, -1).astype(np.float64), low.reshape(rows, -1).astype(np.float64)
    agreement = None
    accuracy = None
    if flat.shape[1] > 1:
        classes, classes_low = flat.argmax(axis=1), flat_low.argmax(axis=1)
        agreement = float(np.mean(classes == classes_low))
        if labels is not None:
            truth = np.asarray(labels).reshape(-1)
            accuracy = {"float32": float(np.mean(classes == truth))}
            accuracy[precision] = float(np.mean(classes_low == truth))
    diff = float(np.abs(flat - flat_low).max()) if rows else 0.0
    secs = {k: round(v, 3) for k, v in seconds.items()}
    return PrecisionReport(model, output, rows, precision, agreement, diff, accuracy, secs)
