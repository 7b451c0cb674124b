"""``python -m hdfs_models.cli``: the same as the ``hdfs-models`` console script."""

import sys

from hdfs_models.cli import main

sys.exit(main())
