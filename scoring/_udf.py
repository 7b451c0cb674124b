"""The column-function face: ``df.withColumn("p", scorer.udf()(col("features")))``.

Built on ``pyspark.sql.functions.arrow_udf`` (PySpark >= 4.1: pyarrow arrays
in and out, no pandas), falling back to ``pandas_udf`` on older PySpark.
Rows carry no version column; error positions count from the Arrow batch.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

from scoring._plan import Plan
from scoring._runner import spark_type

if TYPE_CHECKING:
    from scoring._scorer import Scorer

__all__ = ["make_udf"]


def make_udf(scorer: "Scorer") -> Callable[..., Any]:
    """A function taking one Column (or name) per signature input, returning a Column."""
    specs = list(scorer.signature.inputs)
    return_type = _return_type(scorer)

    def call(*cols: Any) -> Any:
        if len(cols) != len(specs):
            raise TypeError(
                f"scorer.udf() takes {len(specs)} column(s), one per input "
                f"{[s.name for s in specs]}, got {len(cols)}"
            )
        labels = [c if isinstance(c, str) else _label(c) for c in cols]
        plan = Plan(tuple(zip(specs, labels)), scorer.outputs, (), None)
        runner = scorer._runner(plan)
        names = [o.name for o in scorer.outputs]
        struct = scorer.mode == "all"

        def predict(*arrays: Any) -> Any:
            import pyarrow as pa

            model, _ = runner.model()
            n = len(arrays[0])
            raw = runner.predict(model.function, runner.tensors(dict(zip(labels, arrays)), 0), n)
            outs = runner.output_arrays(raw, n)
            return pa.StructArray.from_arrays(outs, names=names) if struct else outs[0]

        return _wrap(predict, return_type)(*cols)

    return call


def _return_type(scorer: "Scorer") -> str:
    if scorer.mode == "all":
        return "struct<" + ", ".join(f"`{o.name}`: {spark_type(o)}" for o in scorer.outputs) + ">"
    return spark_type(scorer.outputs[0])


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
