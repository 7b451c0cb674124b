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
requirement pinned. What differs between the supported lines is decided here,
and so is whether a session is classic or Spark Connect (:func:`is_connect`):
a Connect client has no SparkContext, RDD, accumulator or JVM.

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
    "classic_only",
    "connect_client",
    "describe_jobs",
    "is_connect",
    "parse_spark_version",
    "read_cpu",
    "require_spark",
    "setting",
    "spark_context",
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


# ---------------------------------------------------------------- classic or Connect

_CONNECT_MODULE = "pyspark.sql.connect."


def is_connect(spark: Any) -> bool:
    """Whether ``spark`` (a SparkSession, DataFrame, Column or SparkContext) belongs to a Spark Connect client.

    Decided by the object's class: every Connect class lives under
    ``pyspark.sql.connect``. Never by ``getattr(spark, "sparkContext", ...)``:
    a Connect session's ``__getattr__`` raises an ``AttributeError`` subclass
    for ``sparkContext``, which a ``getattr`` default quietly swallows. Pure
    (imports nothing, so it works without Connect's gRPC dependencies).
    """
    return any(cls.__module__.startswith(_CONNECT_MODULE) for cls in type(spark).__mro__)


def connect_client(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process is a Spark Connect client's driver side (not a Python worker of a task).

    For APIs that get no session to look at (:meth:`scoring.Scorer.score_partition`).
    pyspark marks a Connect client with ``SPARK_CONNECT_MODE_ENABLED`` (set by
    ``builder.remote(...)`` and ``spark.api.mode=connect``); the pure-Python
    ``pyspark-client`` has no ``pyspark.core`` at all. A process inside a task is
    never a client, whatever its environment inherited.
    """
    env = os.environ if env is None else env
    try:
        from pyspark import TaskContext
    except ImportError:  # pragma: no cover - pyspark-client ships TaskContext too
        return False
    if TaskContext.get() is not None:
        return False
    if "SPARK_CONNECT_MODE_ENABLED" in env:
        return True
    import pyspark.util

    is_remote_only = getattr(pyspark.util, "is_remote_only", None)  # pyspark 4+; 3.5 has none
    return bool(is_remote_only()) if callable(is_remote_only) else False


def classic_only(what: str, instead: str) -> UnsupportedSparkError:
    """The error for ``what``, which needs a SparkContext, under Spark Connect; ``instead`` names the way that works."""
    return UnsupportedSparkError(
        f"{what} needs a classic Spark session (a SparkContext, RDDs or accumulators), and this is "
        f"a Spark Connect session, which has none; {instead}",
        reason="spark connect",
        found="connect",
        needed="classic",
    )


def spark_context(spark: Any, what: str, instead: str) -> Any:
    """The SparkContext behind ``spark`` (a SparkSession, DataFrame or SparkContext).

    Raises :func:`classic_only`'s :class:`UnsupportedSparkError` for a Spark
    Connect object (``what`` and ``instead`` make its message).
    """
    if is_connect(spark):
        raise classic_only(what, instead)
    session = getattr(spark, "sparkSession", spark)  # a DataFrame's session
    return session.sparkContext if hasattr(type(session), "sparkContext") else session


def describe_jobs(spark: Any, text: str | None) -> None:
    """Name the next jobs in the Spark UI (``None``: stop naming them); a no-op under Spark Connect.

    Connect has no ``setJobDescription`` (its client has no SparkContext); its
    jobs are named by the server, and tags (``spark.addTag``) only group them.
    """
    if not is_connect(spark):
        spark_context(spark, "describe_jobs", "").setJobDescription(text)


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
