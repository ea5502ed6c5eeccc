"""Atomic file writes: the one home of "write to a temp file, then rename".

Every file labkit writes that a reader (or a resumed run) must never see half-written goes through
:func:`atomic_write`: checkpoints (:func:`labkit.weights.atomic_save`), images
(:func:`labkit.io.write_image`), JSON (:func:`labkit.report.write_json_atomic`), submission zips.
The temp file is named ``.<name>.<random>.tmp`` beside the target; a process killed during a write
(SIGKILL, power loss) can leave one behind, and :func:`remove_stale_temp` (called when a training run
or a notebook run starts in a folder) removes such leftovers.

Files are created with the user's normal permissions: 0o666 minus the umask, as ``open()`` would
(``tempfile.mkstemp`` alone gives 0o600), or the previous file's mode when one is replaced.

No labkit or torch import here: the light commands (``labkit run``, ``labkit report``) use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Union

__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temp", "target_mode", "TEMP_SUFFIX"]

PathLike = Union[str, os.PathLike]
TEMP_SUFFIX = ".tmp"


def target_mode(path: Path) -> int:
    """Permission bits for a written file: an existing file's, else 0o666 minus the process umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Persist a rename in ``folder`` (POSIX); harmless to skip where unsupported."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file atomically: ``write(f)`` fills a temp file in the same folder, then ``os.replace``.

    The parent folder is created. The data are fsynced before the rename and the rename itself is
    persisted (POSIX), so a crash, or an exception from ``write``, leaves either the previous file
    or the new one under ``path``, never a partial file. The temp file is removed on any exception
    (a SIGKILL cannot be caught: :func:`remove_stale_temp` clears that case on the next start).
    The file gets :func:`target_mode` permissions. Returns ``Path(path)``.

    Raises:
        OSError: the folder cannot be created or written (read-only, disk full, ...); nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write` of ``text``, UTF-8 encoded."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def remove_stale_temp(folder: PathLike, names: tuple[str, ...] | None = None) -> list[Path]:
    """Delete the ``.<name>.<random>.tmp`` leftovers of interrupted :func:`atomic_write` calls in ``folder``.

    ``names`` limits it to the temp files of those targets (e.g. ``("last.pth", "best.pth")``);
    None removes every such file. Only the folder itself is searched (not its subfolders). Call it
    when a run starts, before anything writes there (another live writer's temp file would go too).
    Returns the removed paths; a missing folder removes nothing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.glob(f".*{TEMP_SUFFIX}"):
        target = p.name[1:].rsplit(".", 2)[0] if p.name.count(".") >= 3 else None
        if names is not None and target not in names:
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed
