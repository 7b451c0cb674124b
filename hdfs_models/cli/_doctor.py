"""CLI command ``doctor``: check this machine's Hadoop, Kerberos, cache and runtime setup.

Prints one line per check (``OK``/``WARN``/``FAIL``/``SKIP``, what was found
and, for a problem, its fix); ``--json`` prints ``{"ok": bool, "checks":
[{"name", "status", "detail", "fix"}, ...]}``. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
from typing import Any

from hdfs_models._doctor import Check, render, run_checks
from hdfs_models.cli._frame import add_command, add_store_options, storage_options

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Register ``doctor``."""
    p = add_command(
        subparsers,
        "doctor",
        _doctor,
        _render,
        status=_status,
        help="check Hadoop config, Kerberos, NameNodes, the node cache, versions and Java",
    )
    p.add_argument(
        "url", metavar="URL", nargs="?", help="a model base or version URL: also check its NameNodes and resolve it"
    )
    p.add_argument("--version", default="latest", help="version to resolve when URL is a base dir")
    p.add_argument("--cache", help="node-cache root to check (default: as localize resolves it)")
    add_store_options(p)


def _doctor(args: argparse.Namespace) -> dict[str, Any]:
    checks = run_checks(args.url, version=args.version, cache=args.cache, storage_options=storage_options(args))
    return {"ok": not any(c.status == "fail" for c in checks), "checks": [c.to_json() for c in checks]}


def _checks(result: dict[str, Any]) -> list[Check]:
    return [Check(**item) for item in result["checks"]]


def _render(result: dict[str, Any]) -> str:
    return render(_checks(result))


def _status(result: dict[str, Any]) -> int:
    return 0 if result["ok"] else 1
