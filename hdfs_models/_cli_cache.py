"""CLI commands (placeholder: filled in by the module that owns them)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Register this module's commands on the hdfs-models parser."""
