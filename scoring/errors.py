"""Exceptions raised by :mod:`scoring`.

Every error names the column, signature or path involved and the reason, and
pickles (errors raised on executors reach the driver)::

    ScoringError(Exception)
    ├── SignatureError(LookupError)           signature / input / output not found in the model
    ├── SignatureMismatchError(ValueError)    DataFrame columns do not fit the signature
    │   ├── ShapeMismatchError                 a row has the wrong number of values
    │   ├── NullValueError                     a row or element is null
    │   └── ColumnTypeError(TypeError)         a column is not numeric / not an array
    └── ModelLoadError(RuntimeError)          TensorFlow failed to load the model
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ColumnTypeError",
    "ModelLoadError",
    "NullValueError",
    "ScoringError",
    "ShapeMismatchError",
    "SignatureError",
    "SignatureMismatchError",
]


def _rebuild(cls: "type[ScoringError]", message: str, attrs: dict[str, Any]) -> "ScoringError":
    err = cls.__new__(cls)
    ScoringError.__init__(err, message, **attrs)
    return err


class ScoringError(Exception):
    """Base class of every error raised by :mod:`scoring`.

    Attributes: ``message``, ``column``, ``path`` (model path or URL),
    ``reason`` and ``details`` (e.g. ``row``, ``expected``).
    """

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        path: str | None = None,
        reason: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.path = path
        self.reason = reason
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {"column": self.column, "path": self.path, "reason": self.reason, **self.details}
        return (_rebuild, (type(self), self.message, attrs))

    def __getattr__(self, name: str) -> Any:
        details = self.__dict__.get("details", {})
        if name in details:
            return details[name]
        raise AttributeError(name)


class SignatureError(ScoringError, LookupError):
    """The requested signature, input or output does not exist in the model."""


class SignatureMismatchError(ScoringError, ValueError):
    """The data does not fit the model's signature."""


class ShapeMismatchError(SignatureMismatchError):
    """A row holds the wrong number of values for the signature's shape."""


class NullValueError(SignatureMismatchError):
    """A row, or an element of a row, is null."""


class ColumnTypeError(SignatureMismatchError, TypeError):
    """A column is not numeric, not an array of numbers, nor binary tensor bytes."""


class ModelLoadError(ScoringError, RuntimeError):
    """TensorFlow could not load the model."""
