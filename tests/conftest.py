"""Shared fixtures for the hermetic unit tests."""

import os
import sys

import pytest

from hdfs_models.store._open import clear_store_cache

# Spark workers must run this interpreter (tests start pyspark in-process).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(autouse=True)
def _fresh_store_cache():
    """Every test starts without cached filesystems (hdfs_models.store._open keeps one per process)."""
    clear_store_cache()
    yield
    clear_store_cache()
