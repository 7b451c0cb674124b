"""``unpack``: a strict, verifying extraction of one archive into a new directory.

Every unsafe member listed as S1-S12 in ``docs/reliability.md`` is refused
(never repaired): the headers are checked first (:mod:`._check`), the caps
are enforced again while streaming (:mod:`._read`; headers can lie),
everything is written into a fresh temporary directory beside ``dest``
that is renamed into place (never replacing anything) only after an lstat
audit and the manifest check. On any error the temporary directory is
removed and ``dest`` does not exist. No shell is involved anywhere; archive
names are used literally. The audit and the manifest check also serve the
trees Spark unpacked for :func:`hdfs_models.distribute`.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from dataclasses import replace

from hdfs_models._manifest import MANIFEST_NAME, Manifest
from hdfs_models._progress import Progress
from hdfs_models._tree import compare_tree, rename_noreplace, walk_tree
from hdfs_models.archive._check import FILE, Member, kind_of_mode, member_error, normalise_name, resolve_limits, unsafe
from hdfs_models.archive._read import Extracted, extract_into, sniff_format
from hdfs_models.errors import IntegrityError

__all__ = ["audit_tree", "scan_tree", "unpack", "verify_extracted"]

log = logging.getLogger(__name__)


def unpack(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    verify: bool = True,
    max_bytes: int | None = None,
    max_members: int | None = None,
    max_ratio: float | None = None,
    progress: Progress | None = None,
) -> str:
    """Extract ``archive`` (tar, tar.gz or zip, told apart by content) into ``dest``.

    ``dest`` must not exist (nor be a symlink): extraction goes into a fresh
    directory beside it that is renamed to ``dest`` when complete. Unsafe
    members raise :class:`UnsafeArchiveError` naming the archive and the
    member; caps (explicit > ``HDFS_MODELS_UNPACK_MAX_*`` > defaults) bound
    the member count, total bytes and compression ratio. With ``verify``
    every file is checked against the ``MANIFEST.json`` inside (sizes and
    sha256, no extra files) and empty directories are recreated;
    :class:`IntegrityError` on a mismatch or a missing manifest. Returns
    ``dest``; on error nothing is left at ``dest`` or beside it.
    ``progress(done_bytes, total_bytes)`` counts the bytes extracted against
    the uncompressed size the headers declare.
    """
    archive, dest = os.fspath(archive), os.fspath(dest)
    limits = resolve_limits(max_bytes=max_bytes, max_members=max_members, max_ratio=max_ratio)
    if os.path.lexists(dest):
        raise unsafe(archive, None, f"target {dest} already exists; unpack extracts only into a new directory")
    kind = sniff_format(archive)
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.unpack-", dir=parent)
    try:
        extracted = extract_into(archive, kind, tmp, limits, progress)
        audit_tree(tmp, archive)
        if verify:
            verify_extracted(tmp, extracted, archive)
        os.chmod(tmp, 0o755)
        try:
            rename_noreplace(tmp, dest)
        except FileExistsError:
            raise unsafe(archive, None, f"target {dest} appeared during extraction; not replacing it") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("unpacked %s into %s (%d files)", archive, dest, len(extracted.files))
    return dest


def audit_tree(root: str, archive: str, *, fresh: bool = True, refusing: str = "to extract it") -> None:
    """S12, P9: an lstat walk of ``root`` finds only regular files and directories.

    Each entry is judged as an archive member would be
    (:func:`~hdfs_models.archive._check.member_error`): no symlink (the
    error says where it points and whether that is outside the tree), FIFO,
    device or socket, no setuid/setgid/sticky bit. Nothing that is not a
    link can lead outside ``root``, so this is also the check that
    everything lies inside it. ``fresh``: ``root`` was just written by an
    extractor (ours, or Spark's unpack of ``--archives`` / ``addArchive``),
    so a file with a second name is a hard link an archive member made.
    Raises :class:`UnsafeArchiveError` naming ``archive`` and the entry;
    ``refusing``: what the message says is refused.
    """
    tree = walk_tree(root)
    for rel in (*tree.others, *tree.dirs, *tree.files):
        path = os.path.join(root, *rel.split("/"))
        st = os.lstat(path)
        kind = kind_of_mode(st.st_mode)
        if fresh and kind == FILE and st.st_nlink > 1:
            kind = "hardlink"
        reason = member_error(Member(rel, kind, st.st_size, stat.S_IMODE(st.st_mode)))
        if reason:
            raise unsafe(archive, rel, reason + _points_to(root, path, kind), refusing=refusing)


def _points_to(root: str, path: str, kind: str) -> str:
    """``; it points to '…' (outside the tree)`` for a symlink, else ``""``."""
    if kind != "symlink":
        return ""
    top, real = os.path.realpath(root), os.path.realpath(path)
    where = "inside" if os.path.commonpath([top, real]) == top else "outside"
    return f"; it points to {os.readlink(path)!r} ({where} the tree)"


def scan_tree(root: str) -> Extracted:
    """Hash every file under ``root`` (relative posix path → size, sha256) and list its dirs."""
    tree = walk_tree(root)
    return Extracted({rel: (size, tree.sha256(rel)) for rel, size in tree.files.items()}, set(tree.dirs))


def verify_extracted(root: str, extracted: Extracted, archive: str) -> Manifest:
    """Check the extracted files against the ``MANIFEST.json`` among them; return the manifest.

    Every listed file must be there with its size and sha256, and no other
    file; the manifest's empty directories are recreated.
    """
    if MANIFEST_NAME not in extracted.files:
        raise IntegrityError(
            f"archive {archive} has no {MANIFEST_NAME} at its root, so its files cannot be verified; "
            "pack the version with `hdfs-models pack` (or hdfs_models.pack), or publish it first",
            path=archive,
            reason=f"missing {MANIFEST_NAME}",
        )
    with open(os.path.join(root, MANIFEST_NAME), "rb") as fh:
        manifest = Manifest.from_json(fh.read(), archive)
    listed = {_manifest_path(archive, e.path): e for e in manifest.files if e.path != MANIFEST_NAME}
    sizes = {path: size for path, (size, _) in extracted.files.items()}
    mismatch = compare_tree(
        [replace(entry, path=path) for path, entry in listed.items()],
        sizes,
        lambda path: extracted.files[path][1],
        ignore=(MANIFEST_NAME,),
    )
    bad = sorted([*mismatch.missing, *(path for path, _ in mismatch.wrong)])
    if bad:
        path, entry, got = bad[0], listed[bad[0]], extracted.files.get(bad[0])
        what = "is missing" if got is None else f"has size {got[0]} sha256 {got[1]}"
        raise IntegrityError(
            f"archive {archive}: {path} {what}; the manifest lists size {entry.size} sha256 {entry.sha256}",
            path=archive,
            reason="manifest mismatch",
            member=path,
        )
    if mismatch.extra:
        raise IntegrityError(
            f"archive {archive} holds files its manifest does not list: {', '.join(mismatch.extra[:5])}",
            path=archive,
            reason="unlisted files",
            member=mismatch.extra[0],
        )
    for d in manifest.empty_dirs:
        os.makedirs(os.path.join(root, _manifest_path(archive, d)), mode=0o755, exist_ok=True)
    return manifest


def _manifest_path(archive: str, path: str) -> str:
    try:
        return normalise_name(path)
    except ValueError as exc:
        raise unsafe(archive, MANIFEST_NAME, f"it names {path!r}: {exc}") from None
