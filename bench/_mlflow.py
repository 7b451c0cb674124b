"""The MLflow peer for bench/scoring.py (``mlflow.pyfunc.spark_udf`` over the same SavedModel),
and which optional contenders (bfloat16, MLflow) can run on this machine.

How a user gets there (MLflow 3, ``mlflow-skinny``, the ``bench`` extra):
``mlflow.tensorflow.log_model``/``save_model`` take a Keras model or a
``tf.Module``; the object ``tf.saved_model.load`` returns for an exported
SavedModel is neither (an ``AutoTrackable``: "Unknown model type"), and the
flavor's pyfunc calls the module itself (``model(data)``), not a serving
signature. So the SavedModel is wrapped in a ``tf.Module`` whose ``__call__``
is its ``serving_default`` (features float32[-1, 784] → probabilities), saved
with MLflow's TensorFlow flavor and a tensor signature from an input example,
and served with ``spark_udf(..., result_type="array<float>",
env_manager="local")``. The class is the argmax taken in Spark SQL, as the
other contenders return the class. TensorFlow threads are MLflow's defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DIRECT_LOG_ERROR", "extra_contenders", "mlflow_job", "save_mlflow_model"]

DIRECT_LOG_ERROR: dict[str, str] = {}


def save_mlflow_model(model_dir: str, out: str) -> str:
    """Save ``model_dir``'s serving_default with MLflow's TensorFlow flavor at ``out``."""
    import mlflow.tensorflow
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(model_dir)
    try:  # what a user tries first; recorded for the results
        mlflow.tensorflow.save_model(loaded, out + "-direct")
    except Exception as exc:
        DIRECT_LOG_ERROR["error"] = f"{type(exc).__name__}: {exc}"

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.loaded = loaded
            self.serve = loaded.signatures["serving_default"]

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="features")])
        def __call__(self, features: Any) -> Any:
            return self.serve(features=features)["probabilities"]

    example = np.zeros((2, 784), dtype=np.float32)
    mlflow.tensorflow.save_model(Serving(), out, input_example=example)
    return out


def mlflow_job(spark: Any, mlflow_dir: str, write: Callable[[Any], None]) -> Callable[[Any], None]:
    """``job(df)``: id + predicted class through ``mlflow.pyfunc.spark_udf``, written by ``write``."""
    import mlflow.pyfunc
    from pyspark.sql.functions import col, expr

    udf = mlflow.pyfunc.spark_udf(spark, model_uri=mlflow_dir, result_type="array<float>", env_manager="local")
    argmax = expr("array_position(p, array_max(p)) - 1").cast("int").alias("prediction")
    return lambda df: write(df.select("id", udf(col("features")).alias("p")).select("id", argmax))


def extra_contenders(no_bf16: bool, no_mlflow: bool) -> tuple[tuple[str, ...], dict[str, str]]:
    """(scorer_bf16 and mlflow where they can run here, {left-out contender: why})."""
    import importlib.util

    from hdfs_models._runtime import read_cpu

    extra, notes = [], {}
    cpu = read_cpu()
    if no_bf16 or not cpu.bfloat16:
        notes["scorer_bf16"] = "--no-bf16" if no_bf16 else f"{cpu.model} has no AVX512-BF16 or AMX"
    else:
        extra.append("scorer_bf16")
    if no_mlflow or importlib.util.find_spec("mlflow") is None:
        notes["mlflow"] = "--no-mlflow" if no_mlflow else "mlflow is not installed: pip install '.[bench]'"
    else:
        extra.append("mlflow")
    return tuple(extra), notes
