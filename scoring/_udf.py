"""The column-function face: ``df.withColumn("p", scorer.udf()(col("features")))``.

Built on ``pyspark.sql.functions.arrow_udf`` (PySpark >= 4.1: pyarrow arrays
in and out, no pandas), falling back to ``pandas_udf`` on older PySpark.
Rows carry no version column; error positions count from the Arrow batch.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from scoring._plan import Request
from scoring._runner import Runner, spark_type

__all__ = ["make_udf"]


def make_udf(runner: Runner) -> Callable[..., Any]:
    """A function taking one Column (or name) per signature input, returning a Column."""
    request = runner.request
    specs = request.signature.inputs
    return_type = _return_type(request)
    names = [o.name for o in request.outputs]
    struct = request.returns == "all"

    def call(*cols: Any) -> Any:
        if len(cols) != len(specs):
            raise TypeError(
                f"scorer.udf() takes {len(specs)} column(s), one per input "
                f"{[s.name for s in specs]}, got {len(cols)}"
            )
        labels = [c if isinstance(c, str) else _label(c) for c in cols]
        bound = runner.positional(labels)

        def predict(*arrays: Any) -> Any:
            import pyarrow as pa

            model, _ = bound.model()
            outs = bound.score_columns(model, dict(zip(labels, arrays)), len(arrays[0]), 0)
            return pa.StructArray.from_arrays(outs, names=names) if struct else outs[0]

        return _wrap(predict, return_type)(*cols)

    return call


def _return_type(request: Request) -> str:
    if request.returns == "all":
        return "struct<" + ", ".join(f"`{o.name}`: {spark_type(o)}" for o in request.outputs) + ">"
    return spark_type(request.outputs[0])


def _label(column: Any) -> str:
    """A readable name for a Column in error messages (``Column<'x'>`` → ``x``)."""
    text = str(column)
    if text.startswith("Column<'") and text.endswith("'>"):
        return text[len("Column<'") : -2]
    return text


def _wrap(predict: Callable[..., Any], return_type: str) -> Any:
    try:
        from pyspark.sql.functions import ArrowUDFType, arrow_udf
    except ImportError:  # PySpark < 4.1
        return _pandas_wrap(predict, return_type)
    with warnings.catch_warnings():  # it prefers type hints; the explicit type is exact
        warnings.simplefilter("ignore", UserWarning)
        return arrow_udf(predict, returnType=return_type, functionType=ArrowUDFType.SCALAR)


def _pandas_wrap(predict: Callable[..., Any], return_type: str) -> Any:
    from pyspark.sql.functions import PandasUDFType, pandas_udf

    def on_series(*series: Any) -> Any:
        import pyarrow as pa

        result = predict(*(pa.array(s, from_pandas=True) for s in series))
        return result.to_pandas()

    return pandas_udf(on_series, returnType=return_type, functionType=PandasUDFType.SCALAR)
