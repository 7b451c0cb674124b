"""What this CPU can do, read from ``/proc/cpuinfo``: the one place both the doctor
and scoring's precision decision ask whether bfloat16 is native here.

TensorFlow's oneDNN bfloat16 rewrite is fast only with AVX512_BF16 or AMX-BF16;
elsewhere every bfloat16 op is converted through float32 and runs slower than
float32 itself, so those two flags are the whole rule.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BFLOAT16_FLAGS", "CpuInfo", "read_cpu"]

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
