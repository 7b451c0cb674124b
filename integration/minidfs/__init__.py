"""The MiniDFS launcher's Maven project, shipped as package data (hdfs_models._minidfs)."""
