"""pytest plugin (entry point ``pytest11``): fixtures for a real HDFS."""
