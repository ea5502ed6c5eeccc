"""A fingerprint of a dataset's file listing: which files, how big (not their contents).

``labkit train`` stores it in every checkpoint with the run's settings
(:func:`labkit.train.checkpoint.check_settings`), so a run resumed on other data (another
``-p data_root=``, files added, removed or replaced by ones of another size) is refused instead of
silently continued. Hashing only the listing keeps it fast on large folders (one ``stat`` per file).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

from labkit.data.sample import SAMPLE_PHOTOS, sample_path

__all__ = ["bundled_fingerprint", "data_fingerprint", "listing_fingerprint"]

PathLike = Union[str, "os.PathLike[str]"]


def listing_fingerprint(entries: list[tuple[str, int]]) -> str:
    """SHA-256 (hex, 64 characters) of ``(relative path, size in bytes)`` pairs, sorted by path."""
    h = hashlib.sha256()
    for rel, size in sorted(entries):
        h.update(f"{rel}\t{size}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def data_fingerprint(root: PathLike | None) -> str:
    """:func:`listing_fingerprint` of every file under ``root`` (POSIX relative paths, sizes; symlinked
    folders inside are not followed), of the one file when ``root`` is a file, or of the bundled photos
    (:func:`bundled_fingerprint`) when ``root`` is None.

    Raises:
        FileNotFoundError: ``root`` does not exist (the message names it and the ``-p data_root=`` option).
    """
    if root is None:
        return bundled_fingerprint()
    root = Path(root)
    if root.is_file():
        return listing_fingerprint([(root.name, root.stat().st_size)])
    if not root.is_dir():
        raise FileNotFoundError(f"data root not found: {root} (check -p data_root=)")
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            p = Path(folder) / name
            try:
                size = p.stat().st_size
            except OSError:  # a dangling link: listed with size -1
                size = -1
            entries.append((p.relative_to(root).as_posix(), size))
    return listing_fingerprint(entries)


def bundled_fingerprint() -> str:
    """:func:`listing_fingerprint` of the bundled sample photos (:data:`labkit.data.sample.SAMPLE_PHOTOS`):
    ``name/file`` and size of each (size -1 for one whose package is missing)."""
    entries = []
    for name, photo in SAMPLE_PHOTOS.items():
        try:
            size = sample_path(name).stat().st_size
        except (OSError, ModuleNotFoundError, KeyError):
            size = -1
        entries.append((f"{name}/{Path(photo.relative).name}", size))
    return listing_fingerprint(entries)
