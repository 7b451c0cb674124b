"""import_tensorflow: absl INFO lines TensorFlow writes while loading are dropped, the rest kept.

The real processes (driver and Spark worker) are checked in integration/test_worker_logging.py.
"""

from hdfs_models._signatures import _without_info

BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = "I0000 00:00:1795843950.158696   30696 port.cc:153] oneDNN custom operations are on.\n"
GUARD = (
    "I0000 00:00:1795843950.272732   30696 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
    "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n"
)
WARN = "W0000 00:00:1795843950.300000   30696 loader.cc:12] something worth seeing\n"


def test_info_lines_and_their_continuations_dropped_warnings_kept():
    text = BANNER + INFO + GUARD + WARN + "a plain line from someone else\n" + INFO
    assert _without_info(text) == WARN + "a plain line from someone else\n"
    assert (
        _without_info("Traceback (most recent call last):\n  boom\n") == "Traceback (most recent call last):\n  boom\n"
    )
