"""Shared fixtures for the hermetic unit tests."""

import os
import sys

# Spark workers must run this interpreter (tests start pyspark in-process).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
