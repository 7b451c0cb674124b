"""Archives of one model version: a deterministic ``pack`` and a strict, verifying ``unpack``.

=============  ==============================================================
``_pack``      :func:`pack` (fixed order and metadata, checked while packed)
``_unpack``    :func:`unpack`, and the audit + manifest check of a tree
``_read``      reading tar and zip members (the I/O shell of unpack)
``_check``     pure checks on members and the caps (S1-S10)
=============  ==============================================================
"""

from __future__ import annotations

from hdfs_models.archive._pack import FORMATS, pack
from hdfs_models.archive._unpack import unpack

__all__ = ["FORMATS", "pack", "unpack"]
