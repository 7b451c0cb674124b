"""Which numeric precision a worker runs a model in, and how bfloat16 is applied.

``precision`` is one of:

- ``"float32"`` (default): the model as saved.
- ``"bfloat16"``: TensorFlow's oneDNN auto mixed precision rewrite
  (grappler's ``auto_mixed_precision_onednn_bfloat16``) turns the graph's
  convolutions, matmuls and friends into bfloat16 ops with float32
  accumulation, casting at the edges, so inputs and outputs keep their dtypes
  (float32 stays float32). It needs a CPU with native bfloat16 (x86
  ``avx512_bf16`` or ``amx_bf16``); elsewhere it is a :class:`PrecisionError`
  naming the CPU and the flags it lacks (emulated bfloat16 is slower than
  float32, so it is never the right choice silently).
- ``"auto"``: bfloat16 where the CPU has it, float32 otherwise (said once per
  process in the log).

The decision is taken on the executor, from that machine's ``/proc/cpuinfo``
(the driver's CPU says nothing about the executors'), read once per process
(:func:`this_cpu`). The CPU description is injectable (``cpu=``, and
:func:`read_cpu` parses any ``/proc/cpuinfo`` text) so tests play any machine.

Why a wrapper that switches the option around each call: grappler's rewrite
options live in TensorFlow's process-wide context, and a function is
optimised (and the result cached) per options in force at call time. So one
loaded model serves float32 and bfloat16 callers alike; each call runs under
the option its wrapper sets, under a lock (measured: no cost after the first
call of each variant, which pays the rewrite once).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from hdfs_models import BFLOAT16_FLAGS, CpuInfo, import_tensorflow, read_cpu
from scoring.errors import PrecisionError

__all__ = [
    "BFLOAT16_FLAGS",
    "PRECISIONS",
    "CpuInfo",
    "check_precision",
    "read_cpu",
    "resolve_precision",
    "this_cpu",
    "with_precision",
]

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16", "auto")
_OPTION = "auto_mixed_precision_onednn_bfloat16"

_call_lock = threading.Lock()
_said_auto: list[str] = []
_this: list[CpuInfo] = []


def this_cpu() -> CpuInfo:
    """This machine's :func:`read_cpu`, read once per process (every task resolves its precision)."""
    if not _this:
        _this.append(read_cpu())
    return _this[0]


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; ValueError otherwise (driver side)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def resolve_precision(
    requested: str,
    *,
    cpu: CpuInfo | None = None,
    device: str = "cpu",
    env: Mapping[str, str] | None = None,
) -> str:
    """``"float32"`` or ``"bfloat16"``: what this worker runs for ``requested``.

    ``device`` is where the model runs (``"cpu"`` or a GPU such as
    ``"/GPU:0"``): the oneDNN rewrite only changes CPU kernels. Raises
    PrecisionError for ``"bfloat16"`` that cannot run natively here; ``"auto"``
    falls back to float32 and logs the reason once per process.
    """
    check_precision(requested)
    if requested == "float32":
        return "float32"
    why_not = _no_bfloat16_reason(cpu if cpu is not None else this_cpu(), device, os.environ if env is None else env)
    if why_not is None:
        return "bfloat16"
    if requested == "bfloat16":
        raise PrecisionError(f"precision='bfloat16' cannot run here: {why_not}; use 'float32' or 'auto'",
                             reason=why_not)  # fmt: skip
    if why_not not in _said_auto:
        _said_auto.append(why_not)
        log.warning("precision='auto' runs float32 (pid %d): %s", os.getpid(), why_not)
    return "float32"


def _no_bfloat16_reason(cpu: CpuInfo, device: str, env: Mapping[str, str]) -> str | None:
    if device != "cpu":
        return f"the model runs on {device}, and the oneDNN bfloat16 rewrite only changes CPU kernels"
    if env.get("TF_ENABLE_ONEDNN_OPTS", "").strip() == "0":
        return "TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off, and the bfloat16 rewrite is oneDNN's"
    if not cpu.bfloat16:
        return f"the CPU ({cpu.model}) has neither {' nor '.join(BFLOAT16_FLAGS)} (bfloat16 would be emulated)"
    return None


def with_precision(function: Callable[..., Any], precision: str) -> Callable[..., Any]:
    """``function`` (a concrete function taking keyword tensors) run in ``precision``.

    ``precision`` is a resolved one (``"float32"`` or ``"bfloat16"``). Both
    variants set the rewrite option explicitly, so a float32 model stays
    float32 even where someone switched the option on process-wide.
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"with_precision takes a resolved precision (float32, bfloat16), not {precision!r}")
    return _Rewritten(function, precision == "bfloat16")


class _Rewritten:
    """Calls a function with grappler's oneDNN bfloat16 rewrite switched on or off."""

    def __init__(self, function: Callable[..., Any], bfloat16: bool) -> None:
        self.function = function
        self.bfloat16 = bfloat16

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tf = import_tensorflow()

        with _call_lock:
            before = bool(tf.config.optimizer.get_experimental_options().get(_OPTION, False))
            if before == self.bfloat16:
                return self.function(*args, **kwargs)
            tf.config.optimizer.set_experimental_options({_OPTION: self.bfloat16})
            try:
                return self.function(*args, **kwargs)
            finally:
                tf.config.optimizer.set_experimental_options({_OPTION: before})

    def __repr__(self) -> str:
        return f"<{'bfloat16' if self.bfloat16 else 'float32'} {self.function!r}>"
