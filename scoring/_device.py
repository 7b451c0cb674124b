"""Where and in which precision a worker runs its model: the task's GPU, float32 or bfloat16.

Two decisions taken on the executor, for each task: the device (below, first
part) and the numeric precision (second part). The model cache keys models by both.

Which device a Spark task's TensorFlow runs on: the task's GPU when Spark assigned one.

With ``spark.executor.resource.gpu.amount`` and ``spark.task.resource.gpu.amount``
set, ``TaskContext.resources()["gpu"].addresses`` names the GPUs of the running
task. An address is a CUDA device ordinal, except where the executor already
runs under ``CUDA_VISIBLE_DEVICES`` (YARN/Kubernetes isolation, a wrapper
script): there addresses are positions in that list, as Spark's TorchDistributor
reads them. Without GPU resources nothing changes (:data:`CPU`).

Binding has to happen before TensorFlow initialises CUDA, because CUDA reads
``CUDA_VISIBLE_DEVICES`` once per process: the first GPU task of a Python
worker narrows the variable to its own GPU(s), so TensorFlow creates one CUDA
context, on that GPU, and memory growth is switched on there (TensorFlow would
otherwise reserve nearly all of the GPU's memory for one worker).

Spark reuses Python workers across tasks (``spark.python.worker.reuse``), and a
later task may be assigned another GPU than the one the process is bound to.
CUDA cannot be re-pointed, so that task runs on the worker's GPU and the
mismatch is logged once per pair; the selection (:class:`Placement`) records
both, and the model cache keys models by the device they run on.

The rule is pure (:func:`choose`) and the shell (:func:`bind_task`) takes the
task context, the environment and TensorFlow's GPU list as arguments, so tests
play any assignment without a GPU.

Which numeric precision a worker runs a model in, and how bfloat16 is applied.

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
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from hdfs_models._runtime import BFLOAT16_FLAGS, CpuInfo, read_cpu
from hdfs_models._signatures import import_tensorflow
from scoring.errors import GpuAssignmentError, PrecisionError

__all__ = [
    "CPU",
    "PRECISIONS",
    "Placement",
    "bind_task",
    "check_precision",
    "choose",
    "physical_gpus",
    "resolve_precision",
    "task_gpu_addresses",
    "this_cpu",
    "with_precision",
]

log = logging.getLogger(__name__)


_lock = threading.Lock()


# The process's binding: the CUDA_VISIBLE_DEVICES it started with (None: unset) and the
# physical GPUs it was narrowed to by its first GPU task.
_state: dict[str, Any] = {}


_said: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class Placement:
    """Where one task runs its model.

    ``device``: ``"cpu"`` or a TensorFlow device (``"/GPU:0"``); ``gpus``: the
    physical GPUs the process is bound to for this task (CUDA ordinals or
    UUIDs, after mapping through an inherited ``CUDA_VISIBLE_DEVICES``);
    ``asked``: the physical GPUs Spark assigned the task (differs from
    ``gpus`` only for a reused worker bound by an earlier task).
    """

    device: str
    gpus: tuple[str, ...] = ()
    asked: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The model cache's device key: ``cpu`` or ``gpu:<physical id>``."""
        return "cpu" if self.device == "cpu" else f"gpu:{self.gpus[0]}"


CPU = Placement("cpu")


def task_gpu_addresses(context_factory: Callable[[], Any] | None = None) -> tuple[str, ...]:
    """The running task's GPU addresses (``TaskContext.resources()["gpu"]``); () outside a task."""
    try:
        if context_factory is None:
            from pyspark import TaskContext

            context_factory = TaskContext.get
        context = context_factory()
        resources = context.resources() if context is not None else {}
    except ImportError:
        return ()
    gpu = resources.get("gpu")
    return tuple(str(a) for a in gpu.addresses) if gpu is not None else ()


def physical_gpus(addresses: Sequence[str], visible: str | None) -> tuple[str, ...]:
    """Physical GPU ids of ``addresses``: themselves, or positions in ``visible`` when it is set.

    Raises GpuAssignmentError when an address is not a position in ``visible``.
    """
    if visible is None or not visible.strip():
        return tuple(addresses)
    listed = [v.strip() for v in visible.split(",") if v.strip()]
    out = []
    for address in addresses:
        if not address.isdigit() or int(address) >= len(listed):
            raise GpuAssignmentError(
                f"task GPU address {address!r} is not a position in CUDA_VISIBLE_DEVICES={visible!r} "
                f"({len(listed)} devices): Spark's GPU discovery and the executor's environment disagree",
                reason="address outside CUDA_VISIBLE_DEVICES",
            )
        out.append(listed[int(address)])
    return tuple(out)


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` decided: the variable to set (if any) and the placement."""

    set_visible: str | None
    position: int
    gpus: tuple[str, ...]
    asked: tuple[str, ...]


def choose(asked: tuple[str, ...], bound: tuple[str, ...] | None) -> Choice:
    """Bind a fresh process to ``asked``, or place a task of a bound one.

    ``asked``: the task's physical GPUs (non-empty); ``bound``: the process's
    GPUs from its first GPU task, None if it has none yet.
    """
    if bound is None:
        return Choice(",".join(asked), 0, asked, asked)
    if asked[0] in bound:
        return Choice(None, bound.index(asked[0]), (asked[0],), asked)
    return Choice(None, 0, bound[:1], asked)


def bind_task(
    context_factory: Callable[[], Any] | None = None,
    env: MutableMapping[str, str] | None = None,
    tf_gpu_count: Callable[[], int] | None = None,
) -> Placement:
    """Bind this process to the running task's GPU (first time) and say where to run.

    Returns :data:`CPU` when the task has no GPU, or TensorFlow sees none
    (tensorflow-cpu, no driver: logged once). ``env`` defaults to
    ``os.environ``; ``tf_gpu_count`` to TensorFlow's GPU list (memory growth is
    switched on for each GPU on the first call).
    """
    addresses = task_gpu_addresses(context_factory)
    if not addresses:
        return CPU
    env = os.environ if env is None else env
    with _lock:
        if "original" not in _state:
            _state["original"] = env.get("CUDA_VISIBLE_DEVICES")
        choice = choose(physical_gpus(addresses, _state["original"]), _state.get("bound"))
        if choice.set_visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = choice.set_visible
            _state["bound"] = choice.gpus
            log.info("Python worker %d bound to GPU %s (task addresses %s)", os.getpid(), choice.set_visible,
                     ",".join(addresses))  # fmt: skip
        elif choice.gpus[0] != choice.asked[0]:
            _say(choice.asked, "task asked for GPU %s but this Python worker (pid %d) is bound to GPU %s by an "
                 "earlier task (CUDA cannot be re-pointed): running there", ",".join(choice.asked), os.getpid(),
                 ",".join(choice.gpus))  # fmt: skip
        count = (tf_gpu_count or _tf_gpu_count)()
    if count == 0:
        _say(("none",), "task has GPU %s but TensorFlow sees no GPU (tensorflow-cpu, or no CUDA driver): "
             "running on the CPU", ",".join(choice.asked))  # fmt: skip
        return CPU
    return Placement(f"/GPU:{min(choice.position, count - 1)}", choice.gpus, choice.asked)


def _say(key: tuple[str, ...], message: str, *args: Any) -> None:
    if key not in _said:
        _said.add(key)
        log.warning(message, *args)


def _tf_gpu_count() -> int:
    """TensorFlow's GPUs (memory growth switched on for each, while TensorFlow still allows it)."""
    tf = import_tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the runtime started already: the setting is fixed, keep it
            pass
    return len(gpus)


def reset() -> None:
    """Forget the process's binding (tests)."""
    with _lock:
        _state.clear()
        _said.clear()


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


def with_precision(function: Callable[..., Any], precision: str, device: str = "cpu") -> Callable[..., Any]:
    """``function`` (a concrete function taking keyword tensors) run in ``precision`` on ``device``.

    ``precision`` is a resolved one (``"float32"`` or ``"bfloat16"``). Both
    variants set the rewrite option explicitly, so a float32 model stays
    float32 even where someone switched the option on process-wide.
    ``device``: ``"cpu"`` or a TensorFlow GPU (``"/GPU:0"``), entered around
    each call (a worker bound to two GPUs serves tasks on either).
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"with_precision takes a resolved precision (float32, bfloat16), not {precision!r}")
    return _Rewritten(function, precision == "bfloat16", device)


class _Rewritten:
    """Calls a function on its device with grappler's oneDNN bfloat16 rewrite switched on or off."""

    def __init__(self, function: Callable[..., Any], bfloat16: bool, device: str = "cpu") -> None:
        self.function = function
        self.bfloat16 = bfloat16
        self.device = device

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tf = import_tensorflow()
        if self.device == "cpu":
            return self._rewritten(tf, *args, **kwargs)
        with tf.device(self.device):
            return self._rewritten(tf, *args, **kwargs)

    def _rewritten(self, tf: Any, *args: Any, **kwargs: Any) -> Any:
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
        where = "" if self.device == "cpu" else f" on {self.device}"
        return f"<{'bfloat16' if self.bfloat16 else 'float32'}{where} {self.function!r}>"
