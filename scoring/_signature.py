"""Serving signatures parsed into typed specs; no I/O here.

The input is the ``MANIFEST.json`` signatures format (``docs/api.md``),
as :func:`scoring.inspect_signatures` returns it (reading is in
:mod:`scoring._source`). :class:`Signature` / :class:`TensorSpec` are the
typed form the scorer plans with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scoring.errors import SignatureError

__all__ = ["NUMERIC_DTYPES", "Signature", "TensorSpec", "parse_signature"]

# TensorFlow dtype names the scorer can feed from numeric Arrow data.
NUMERIC_DTYPES = frozenset(
    {
        "float16", "bfloat16", "float32", "float64",
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "bool",
    }
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    """One signature input or output: ``shape`` is ``None`` for unknown rank, -1 = unknown dim."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None

    @property
    def row_shape(self) -> tuple[int, ...] | None:
        """The shape of one example (the batch dimension dropped); None if unknown rank."""
        if self.shape is None:
            return None
        return self.shape[1:]

    @property
    def row_size(self) -> int | None:
        """Values per example, or None when a dimension (or the rank) is unknown."""
        row = self.row_shape
        if row is None or any(d < 0 for d in row):
            return None
        return math.prod(row)

    def describe(self) -> str:
        """``float32[-1, 784]``-style text for messages."""
        dims = "?" if self.shape is None else ", ".join(str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


@dataclass(frozen=True, kw_only=True)
class Signature:
    """A parsed serving signature; inputs and outputs sorted by name."""

    name: str
    method_name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        """The input called ``name``; SignatureError listing the inputs otherwise."""
        return self._find(self.inputs, "input", name)

    def output(self, name: str) -> TensorSpec:
        """The output called ``name``; SignatureError listing the outputs otherwise."""
        return self._find(self.outputs, "output", name)

    def _find(self, specs: tuple[TensorSpec, ...], kind: str, name: str) -> TensorSpec:
        for spec in specs:
            if spec.name == name:
                return spec
        raise SignatureError(
            f"signature {self.name!r} has no {kind} {name!r}; {kind}s: {[s.name for s in specs]}",
            reason=f"no such {kind}",
            signature=self.name,
        )

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]


def parse_signature(signatures: Mapping[str, Any], name: str, where: str) -> Signature:
    """Pick signature ``name`` from the signatures dict; SignatureError naming ``where``."""
    if name not in signatures:
        raise SignatureError(
            f"{where} has no signature {name!r}; signatures: {sorted(signatures)}",
            path=where,
            reason="no such signature",
            signature=name,
        )
    raw = signatures[name]
    try:
        return Signature(
            name=name,
            method_name=str(raw.get("method_name", "")),
            inputs=_specs(raw["inputs"]),
            outputs=_specs(raw["outputs"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SignatureError(
            f"{where}: signature {name!r} is malformed: {exc!r}",
            path=where,
            reason="malformed signature",
            signature=name,
        ) from exc


def _specs(raw: Mapping[str, Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for key in sorted(raw):
        shape = raw[key].get("shape")
        specs.append(
            TensorSpec(
                name=key,
                dtype=str(raw[key]["dtype"]),
                shape=None if shape is None else tuple(int(d) for d in shape),
            )
        )
    return tuple(specs)
