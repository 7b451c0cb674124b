"""The column-function face: ``df.withColumn("p", scorer.udf()(col("features")))``.

Built on ``pyspark.sql.functions.arrow_udf`` (PySpark >= 4.1: pyarrow arrays
in and out, no pandas), falling back to ``pandas_udf`` on older PySpark (3.5,
4.0), where a struct result (``returns="all"``) must come back as a pandas
DataFrame, one column per field, and anything else as a Series. Rows carry no
version column; error positions count from the Arrow batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from scoring._plan import Request
from scoring._runner import Runner, spark_data_type

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
                f"scorer.udf() takes {len(specs)} column(s), one per input {[s.name for s in specs]}, got {len(cols)}"
            )
        labels = [c if isinstance(c, str) else _label(c) for c in cols]
        bound = runner.positional(labels)

        def predict(*arrays: Any) -> Any:
            import pyarrow as pa

            model, _ = bound.model()
            outs = bound.score_columns(model, dict(zip(labels, arrays)), len(arrays[0]), 0)
            return pa.StructArray.from_arrays(outs, names=names) if struct else outs[0]

        return _wrap(predict, return_type, struct)(*cols)

    return call


def _return_type(request: Request) -> Any:
    if request.returns == "all":
        from pyspark.sql.types import StructField, StructType

        return StructType([StructField(o.name, spark_data_type(o), True) for o in request.outputs])
    return spark_data_type(request.outputs[0])


def _label(column: Any) -> str:
    """A readable name for a Column in error messages (``Column<'x'>`` → ``x``)."""
    text = str(column)
    if text.startswith("Column<'") and text.endswith("'>"):
        return text[len("Column<'") : -2]
    return text


def _wrap(predict: Callable[..., Any], return_type: Any, struct: bool) -> Any:
    try:
        # PySpark >= 4.1 (the ignore is for the 3.5 leg, whose stubs lack them)
        from pyspark.sql.functions import ArrowUDFType, arrow_udf  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # PySpark < 4.1
        return _pandas_wrap(predict, return_type, struct)
    with warnings.catch_warnings():  # it prefers type hints; the explicit type is exact
        warnings.simplefilter("ignore", UserWarning)
        return arrow_udf(predict, returnType=return_type, functionType=ArrowUDFType.SCALAR)


def _pandas_wrap(predict: Callable[..., Any], return_type: Any, struct: bool) -> Any:
    from pyspark.sql.functions import PandasUDFType, pandas_udf

    def on_series(*series: Any) -> Any:
        import pyarrow as pa

        result = predict(*(pa.array(s, from_pandas=True) for s in series))
        if struct:  # a StructArray's to_pandas() is a Series of dicts, which Spark refuses for a struct
            return pa.Table.from_struct_array(result).to_pandas()
        return result.to_pandas()

    with warnings.catch_warnings():  # it prefers type hints (SPARK-28264); the explicit type is exact
        warnings.simplefilter("ignore", UserWarning)
        return pandas_udf(on_series, returnType=return_type, functionType=PandasUDFType.SCALAR)
