"""Judge a pytest JUnit XML report for CI: fail on unjustified skips and on no integration run.

Usage: ``python3 .ci/check_junit.py REPORT.xml [--require MODULE ...]``. Exit
status 0 when the report passes, 1 (with one line per problem on stderr) when it
does not. Each ``--require`` names a test module (``integration.test_yarn``) of
which at least one test must have run: the compatibility leg's subset is chosen
by a marker, and a marker dropped by mistake must not shrink it silently.

Every skipped test must match one of ``ALLOWED`` below, each with the reason
it may skip on a CI machine. A skip for a missing dependency (TensorFlow,
pyspark, pyarrow, hdfs-native, Java, Maven) is never allowed: under
``CI=true`` such tests fail already (``hdfs_models.testing.pytest_plugin.
require_module``), and this check catches any ``importorskip`` added later.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

# reason pattern -> why such a skip is acceptable on a CI machine
ALLOWED: dict[str, str] = {
    r"^running as root with a writable /sys: no read-only directory to test with$": "F7 needs a directory the test cannot write; as root it mounts a read-only tmpfs, and "
    "falls back to /sys where mounting is not allowed; root in a privileged container with "
    "neither writes everywhere. Not a missing dependency: the machine cannot express the case.",
    r"^the memory store has no atomic rename: publish there is check-then-move$": "a parametrisation that does not apply: concurrent publishers are tested on the "
    "stores that have an atomic rename (local, hdfs, webhdfs).",
    r"^permissions are only enforced on HDFS here \(tests run as root\)$": "F12 runs on the HDFS parametrisations; local/memory stores have no other user as root.",
    r"^this machine cannot mount FUSE filesystems \(needs root and /dev/fuse\)$": "P5's real no-op-flock filesystem is a FUSE mount; without the privilege to mount "
    "one, the same cases run in process (a no-op flock and NFS's POSIX-lock emulation). A "
    "privilege of the machine, not a dependency: libfuse2 and fusepy missing still fail.",
    r"^this CPU has no native bfloat16 \(avx512_bf16 / amx_bf16\)$": "the bfloat16 rewrite's numbers need a CPU with AVX512-BF16 or AMX; elsewhere the same "
    "tests check the PrecisionError and the float32 fallback. Hardware, not a dependency.",
}

# Reasons that always mean a dependency is missing, even if a pattern above matched.
MISSING = re.compile(
    r"could not import|No module named|pip install|MiniDFS needs|needs the '\w+' extra",
    re.IGNORECASE,
)


def problems(report_path: str, required: list[str] | None = None) -> tuple[list[str], int, int]:
    """Return (problems, integration tests run, integration tests collected) for a report."""
    root = ET.parse(report_path).getroot()
    found: list[str] = []
    ran = collected = 0
    ran_in: dict[str, int] = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        skipped = case.find("skipped")
        if skipped is None:
            module = case.get("classname", "")
            for wanted in required or ():
                if module == wanted or module.startswith(wanted + "."):
                    ran_in[wanted] = ran_in.get(wanted, 0) + 1
        if case.get("classname", "").startswith("integration."):
            collected += 1
            ran += skipped is None
        if skipped is None:
            continue
        reason = skipped.get("message", "") or (skipped.text or "")
        if MISSING.search(reason):
            found.append(f"{name}: skipped for a missing dependency: {reason}")
        elif not any(re.search(pattern, reason) for pattern in ALLOWED):
            found.append(
                f"{name}: skip not allowed in CI (add it to .ci/check_junit.py ALLOWED "
                f"with a justification, or make it run): {reason}"
            )
    for wanted in required or ():
        if not ran_in.get(wanted):
            found.append(f"no test of {wanted} ran")
    return found, ran, collected


def main(argv: list[str]) -> int:
    required = argv[argv.index("--require") + 1 :] if "--require" in argv else []
    found, ran, collected = problems(argv[1], required)
    print(f"ci: {ran} integration tests ran ({collected} collected)")
    if not ran:
        found.append("the integration suite did not run")
    for line in found:
        print(f"ci: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
