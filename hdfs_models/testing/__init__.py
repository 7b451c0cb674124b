"""Test helpers for hdfs-models and for Spark jobs that use it."""
