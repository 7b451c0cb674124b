"""Doctor checks of this machine: node-cache root, free space, package versions, CPU bfloat16, Java."""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
import tempfile

from hdfs_models._doctor._world import Check, World
from hdfs_models._runtime import BFLOAT16_FLAGS, read_cpu

__all__ = ["bfloat16", "cache_root_check", "cache_space", "java", "package_versions"]

_LOW_SPACE = 1 << 30  # below this a cache root is worth a warning even without a model to compare
_SET_CACHE = "set HDFS_MODELS_CACHE to a directory this user can write"
# (label, distributions that provide it, extra that installs it)
_PACKAGES = (
    ("tensorflow", ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-macos"), "tf"),
    ("pyspark", ("pyspark",), "spark"),
    ("pyarrow", ("pyarrow",), "arrow"),
    ("hdfs-native", ("hdfs-native",), "hdfs"),
)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def cache_root_check(root: str, world: World) -> Check:
    """The node-cache root exists (or can be created), is writable, and no other user may replace entries.

    Writability is tried, not inferred from mode bits: a probe file is
    created and removed (``os.access`` says yes to root on a read-only dir).
    """
    if not os.path.lexists(root):
        parent = _nearest_existing(root)
        if not os.path.isdir(parent):
            return Check("cache-root", "fail", f"{root} cannot be created: {parent} is not a directory", _SET_CACHE)
        if not os.access(parent, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
            return Check("cache-root", "fail", f"{root} does not exist and {parent} is not writable", _SET_CACHE)
        return Check("cache-root", "ok", f"{root} does not exist yet; it is created under {parent} on first use")
    if not os.path.isdir(root):
        return Check("cache-root", "fail", f"{root} is not a directory", _SET_CACHE)
    try:
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return Check(
            "cache-root",
            "fail",
            f"{root} is not writable ({exc.strerror})",
            f"chown or chmod {root} for this user, or {_SET_CACHE}",
        )
    st = os.stat(root)
    mode = stat.S_IMODE(st.st_mode)
    owner = _owner(st.st_uid) + ("" if st.st_uid == world.uid() else " (not this user)")
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        return Check(
            "cache-root",
            "fail",
            f"{root} is writable by every user (mode {mode:04o}): another user could replace cached models",
            f"chmod o-w {root}",
        )
    return Check("cache-root", "ok", f"{root}: writable, owner {owner}, mode {mode:04o}")


def cache_space(root: str, needed: int | None, world: World) -> Check:
    """Free space where the cache lives; a ``fail`` when ``needed`` bytes (the model) do not fit."""
    where = _nearest_existing(root)
    try:
        free = world.disk_free(where)
    except OSError as exc:
        return Check("cache-space", "warn", f"{where}: free space unknown ({exc.strerror})")
    need_text = f"; the model needs {_human(needed)}" if needed is not None else ""
    if needed is not None and free < needed:
        return Check(
            "cache-space",
            "fail",
            f"{_human(free)} free at {where}{need_text}",
            "free space, bound the cache (HDFS_MODELS_MAX_VERSIONS, HDFS_MODELS_MAX_BYTES), "
            "or point HDFS_MODELS_CACHE at a larger disk",
        )
    if free < _LOW_SPACE:
        return Check(
            "cache-space",
            "warn",
            f"only {_human(free)} free at {where}{need_text}",
            "free space or point HDFS_MODELS_CACHE at a larger disk",
        )
    return Check("cache-space", "ok", f"{_human(free)} free at {where}{need_text}")


def package_versions(world: World) -> list[Check]:
    """Installed versions of TensorFlow, pyspark, pyarrow and hdfs-native (metadata only, nothing imported)."""
    out = []
    for label, dists, extra in _PACKAGES:
        found = next(((d, v) for d in dists if (v := world.version(d)) is not None), None)
        if found is None:
            out.append(
                Check(
                    label, "warn", f"{label} is not installed", f"pip install 'hdfs-models[{extra}]' where it is needed"
                )
            )
        else:
            dist, version = found
            out.append(Check(label, "ok", f"{dist} {version}"))
    return out


def bfloat16(world: World, cpuinfo: str = "/proc/cpuinfo") -> Check:
    """Whether this CPU does bfloat16 arithmetic natively, by the rule scoring's
    ``precision="bfloat16"`` uses (:func:`hdfs_models._runtime.read_cpu`: AVX512-BF16 or AMX)."""
    try:
        text = world.read_bytes(cpuinfo).decode("utf-8", "replace")
    except OSError as exc:
        return Check("bfloat16", "warn", f"cannot tell: {cpuinfo} is not readable ({exc.strerror})")
    cpu = read_cpu(text)
    if not cpu.flags:
        return Check("bfloat16", "warn", f"cannot tell: no CPU flags in {cpuinfo}")
    if cpu.bfloat16:
        return Check("bfloat16", "ok", f"native bfloat16 ({', '.join(cpu.bfloat16_flags)})")
    return Check(
        "bfloat16",
        "warn",
        f"no native bfloat16 ({', '.join(BFLOAT16_FLAGS)}): "
        "precision='bfloat16' is refused here and 'auto' runs float32",
        "score bfloat16 models on CPUs with AMX or AVX512-BF16",
    )


def _java_major(version: str) -> int:
    parts = version.split(".")
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.split(r"\D", parts[0])[0] or 0)


def java(world: World) -> Check:
    """A Java that the installed pyspark can start (17+ for pyspark 4, 8+ before)."""
    pyspark = world.version("pyspark")
    if pyspark is None:
        return Check("java", "skip", "pyspark is not installed: Spark needs no Java here")
    need = 17 if _java_major(pyspark) >= 4 else 8
    fix = f"install a JDK {need} or newer and set JAVA_HOME to it"
    home = world.env.get("JAVA_HOME")
    binary = world.which(os.path.join(home, "bin", "java")) if home else world.which("java")
    if binary is None:
        where = f"JAVA_HOME={home} has no bin/java" if home else "JAVA_HOME is not set and no java is on PATH"
        return Check("java", "fail", f"{where}: Spark cannot start", fix)
    try:
        status, output = world.run([binary, "-version"], world.env, max(world.timeout, 20.0))
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("java", "fail", f"{binary} -version did not run ({exc})", fix)
    match = re.search(r'version "([^"]+)"', output)
    if status != 0 or match is None:
        first = (output.strip().splitlines() or ["no output"])[0]
        return Check("java", "fail", f"{binary} -version failed: {first}", fix)
    version = match.group(1)
    if _java_major(version) < need:
        return Check("java", "fail", f"Java {version} at {binary}; pyspark {pyspark} needs Java {need}+", fix)
    return Check("java", "ok", f"Java {version} at {binary} (pyspark {pyspark} needs {need}+)")
