"""What this process runs on: the CPU, the Spark and its settings, each decided in one place.

**The CPU**, read from ``/proc/cpuinfo``: the one place both the doctor and
scoring's precision decision ask whether bfloat16 is native here.
TensorFlow's oneDNN bfloat16 rewrite is fast only with AVX512_BF16 or AMX-BF16;
elsewhere every bfloat16 op is converted through float32 and runs slower than
float32 itself, so those two flags are the whole rule.

**The Spark.** Users' Kerberized YARN clusters decide the floor: Spark 3.5
(Cloudera 7.x, EMR 7, Dataproc 2.x) and 4.x. On YARN the cluster's own
``pyspark.zip`` comes first on every container's ``PYTHONPATH``, so the
version that matters is the one imported at run time, never the one a
requirement pinned. What differs between the supported lines is decided here.

**Settings.** Every knob that a caller may pass and an ``HDFS_MODELS_*``
variable may set is decided by :func:`setting`: explicit > environment >
default, with an unparsable variable named in the error. The node cache's
options and root and the test launcher's Hadoop version use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hdfs_models.errors import UnsupportedSparkError

__all__ = [
    "BFLOAT16_FLAGS",
    "CpuInfo",
    "MIN_SPARK",
    "parse_spark_version",
    "read_cpu",
    "require_spark",
    "setting",
    "spark_version",
]

BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class CpuInfo:
    """A CPU's model name and feature flags."""

    model: str
    flags: frozenset[str]

    @property
    def bfloat16(self) -> bool:
        """Whether the CPU computes bfloat16 natively (AVX512_BF16 or AMX-BF16)."""
        return any(flag in self.flags for flag in BFLOAT16_FLAGS)

    @property
    def bfloat16_flags(self) -> list[str]:
        """The flags behind :attr:`bfloat16`, sorted (empty without native bfloat16)."""
        return sorted(self.flags.intersection(BFLOAT16_FLAGS))


def read_cpu(cpuinfo: str | None = None, path: str = "/proc/cpuinfo") -> CpuInfo:
    """The CPU's model name and flags from ``cpuinfo`` text (default: read ``path``).

    x86 lists ``flags``, arm64 ``Features``. An unreadable file gives no flags
    (so no bfloat16) and says why in ``model``.
    """
    if cpuinfo is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError as exc:
            return CpuInfo(f"unknown ({path} unreadable: {exc.strerror or exc})", frozenset())
    model, flags = "unknown", frozenset[str]()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            continue
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model, flags)


# ---------------------------------------------------------------- Spark

#: The oldest Spark this library runs on.
MIN_SPARK = (3, 5, 0)


def parse_spark_version(text: str) -> tuple[int, int, int]:
    """``"3.5.1"``, ``"4.1.0.dev1"``, ``"3.5.2-amzn-0"`` → ``(major, minor, patch)``. Pure."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        raise ValueError(f"not a Spark version: {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def spark_version() -> tuple[int, int, int] | None:
    """The version of the pyspark this process imports, or ``None`` when there is none."""
    try:
        import pyspark
    except ImportError:
        return None
    return parse_spark_version(pyspark.__version__)


def require_spark(what: str) -> tuple[int, int, int] | None:
    """Raise :class:`UnsupportedSparkError` when the imported pyspark is below :data:`MIN_SPARK`.

    ``what`` names the caller (``"Scorer"``, ``"distribute"``, ``"scoring.job"``).
    Returns the version found, or ``None`` when pyspark is not importable (the
    caller decides whether it needs Spark at all).
    """
    found = spark_version()
    if found is not None and found < MIN_SPARK:
        import pyspark

        needed = ".".join(map(str, MIN_SPARK))
        raise UnsupportedSparkError(
            f"{what} needs Spark {needed} or newer, but this process imports pyspark "
            f"{pyspark.__version__} from {pyspark.__file__}; on YARN the cluster's pyspark.zip "
            "comes first on PYTHONPATH, so run on a Spark 3.5+ cluster",
            reason="spark too old",
            found=pyspark.__version__,
            needed=needed,
        )
    return found


def setting(
    explicit: Any,
    variable: str,
    default: Any,
    *,
    parse: Callable[[str], Any] = str,
    env: Mapping[str, str] | None = None,
) -> Any:
    """The one resolver of a knob: ``explicit`` > ``env[variable]`` > ``default``.

    ``explicit`` counts when it is not ``None`` and not ``""``; so does the
    variable. The variable's text goes through ``parse``; a ``ValueError``
    there becomes one naming the variable and its value
    (``HDFS_MODELS_DEADLINE='soon': could not convert ...``). ``env`` defaults
    to ``os.environ``, read at call time (never at import).
    """
    if explicit is not None and explicit != "":
        return explicit
    env = os.environ if env is None else env
    text = env.get(variable)
    if text is None or text == "":
        return default
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{variable}={text!r}: {exc}") from exc
