"""The files of one notebook run, and how a finished run replaces the previous one (``labkit run``).

A run named ``<name>`` (a notebook's stem, or ``<stem>@KEY=V`` for a sweep) in the run folder ``<root>``:

- ``<root>/<name>.ipynb`` and ``<root>/<name>/``: the last good result (executed notebook, run folder);
- ``<root>/<name>.partial.ipynb`` and ``<root>/<name>.partial/``: the attempt being made, or the last one
  that failed or was interrupted (kept for debugging, and reused by a rerun with the same settings, so
  that the notebook's training resumes from its checkpoints there); :data:`ATTEMPT_FILE` inside it
  records the profile and parameters it was made with;
- while a finished attempt replaces the good result: the marker ``<root>/<name>.swap`` and the previous
  result set aside as ``<name>.old.ipynb`` / ``<name>.old/``.

:func:`promote` writes the marker, then :func:`finish_swap` renames the old result aside, the new one in,
and deletes the aside copy. Each step is one rename, and :func:`finish_swap` picks up wherever a killed
process stopped (the next ``labkit run`` or ``labkit report`` calls it while the marker exists), so a
kill at any moment ends with either the old good result or the new one in place, never a mix.

Also here (no labkit import but :mod:`labkit.files`, so ``labkit report`` stays light): the identity of
the running process recorded in ``run_summary.json`` (:func:`process_identity`) and whether a process so
recorded is still alive (:func:`process_alive`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any, Mapping

from labkit.files import atomic_write_text, remove_stale_temp

__all__ = ["PARTIAL", "ASIDE", "SWAP_MARKER", "ATTEMPT_FILE", "RunPaths", "run_paths", "is_work_folder",
           "CHECKPOINTS", "prepare_partial", "begin_swap", "finish_swap", "promote", "pending_swaps", "process_identity",
           "process_alive", "on_this_host"]

PARTIAL = ".partial"
ASIDE = ".old"
SWAP_MARKER = ".swap"
#: The profile and parameters an attempt's partial folder was made with (JSON, inside the folder).
ATTEMPT_FILE = "attempt.json"
#: The subfolder of a run folder where the notebooks' training runs keep their checkpoints.
CHECKPOINTS = "checkpoints"


class RunPaths:
    """The paths of one run ``name`` under ``root`` (see the module docstring); plain attributes."""

    def __init__(self, root: Path, name: str):
        self.root, self.name = Path(root), name
        self.notebook = self.root / f"{name}.ipynb"
        self.folder = self.root / name
        self.partial_notebook = self.root / f"{name}{PARTIAL}.ipynb"
        self.partial_folder = self.root / f"{name}{PARTIAL}"
        self.aside_notebook = self.root / f"{name}{ASIDE}.ipynb"
        self.aside_folder = self.root / f"{name}{ASIDE}"
        self.marker = self.root / f"{name}{SWAP_MARKER}"


def run_paths(root: str | os.PathLike, name: str) -> RunPaths:
    """:class:`RunPaths` of run ``name`` in the run folder ``root``."""
    return RunPaths(Path(root), name)


def is_work_folder(folder: str | os.PathLike) -> bool:
    """True for a partial attempt's folder or an aside copy (not a result: the report skips them)."""
    return Path(folder).name.endswith((PARTIAL, ASIDE))


def _settings(profile: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-normal form of an attempt's settings (what :data:`ATTEMPT_FILE` holds)."""
    return json.loads(json.dumps({"profile": profile, "parameters": dict(parameters)}, sort_keys=True, default=str))


def prepare_partial(paths: RunPaths, profile: str, parameters: Mapping[str, Any]) -> bool:
    """Make the partial folder for an attempt with these settings; True when an earlier attempt's is reused.

    An earlier partial folder made with the same profile and parameters is kept as it is (the notebook
    resumes from its checkpoints); one made with others (or with no readable :data:`ATTEMPT_FILE`) is
    emptied first. A new partial folder whose settings are the good result's starts with that result's
    :data:`CHECKPOINTS` (its finished trainings resume instead of running again). Leftover temp files of killed writes (:func:`labkit.files.remove_stale_temp`) go.

    Raises:
        OSError: the folder cannot be created or emptied (permissions, disk full).
    """
    wanted = _settings(profile, parameters)
    record = paths.partial_folder / ATTEMPT_FILE
    reused = False
    if paths.partial_folder.is_dir():
        try:
            reused = json.loads(record.read_text(encoding="utf-8")) == wanted
        except (OSError, ValueError):
            reused = False
        if not reused:
            shutil.rmtree(paths.partial_folder)
    paths.partial_folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(paths.partial_folder)
    if not reused and _recorded_settings(paths.folder) == wanted:
        _share_checkpoints(paths.folder / CHECKPOINTS, paths.partial_folder / CHECKPOINTS)
    atomic_write_text(record, json.dumps(wanted, indent=2) + "\n")
    return reused


def _recorded_settings(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / ATTEMPT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _share_checkpoints(good: Path, partial: Path) -> None:
    """Give a new attempt the good result's checkpoints, so that a rerun with the same settings resumes
    its finished trainings instead of training again (as a rerun in place did before runs were atomic).

    ``.pth`` files are hard links (checkpoints are only ever replaced by a rename, never written in place,
    so the good result's copies cannot change); other files are copied. Falls back to copies where links
    are not supported.
    """
    if not good.is_dir():
        return
    for src in good.rglob("*"):
        if not src.is_file() or src.name.endswith(".tmp"):
            continue
        dst = partial / src.relative_to(good)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            continue
        try:
            if src.suffix != ".pth":
                raise OSError("copied, not linked")
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def begin_swap(paths: RunPaths, record: Mapping[str, Any]) -> None:
    """Write the marker that commits the finished attempt: from now on :func:`finish_swap` moves it in.

    ``record`` (the attempt's ``run_summary.json`` entry) is kept in the marker, so that whoever
    finishes an interrupted swap can record the attempt as ok.

    Raises:
        OSError: the marker cannot be written (nothing has moved).
    """
    atomic_write_text(paths.marker, json.dumps(dict(record), default=str) + "\n")


def finish_swap(paths: RunPaths) -> dict[str, Any] | None:
    """Complete the replacement of the good result by the finished attempt, wherever it stopped.

    Does nothing without the marker (returns None). For the folder, then the notebook: the current
    result is renamed aside and the attempt renamed in (skipped when the attempt was already moved);
    then the aside copies and the marker are deleted. Every step can be repeated after a kill.

    Returns:
        The record :func:`begin_swap` stored (``{}`` if unreadable), or None when there was no swap to finish.

    Raises:
        OSError: a rename or delete failed (permissions); the marker stays, so the next call goes on.
    """
    if not paths.marker.exists():
        return None
    try:
        record = json.loads(paths.marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    for new, final, aside in ((paths.partial_folder, paths.folder, paths.aside_folder),
                              (paths.partial_notebook, paths.notebook, paths.aside_notebook)):
        if not new.exists():
            continue  # already moved in (or never made: nothing to replace with)
        if final.exists():
            _remove(aside)  # a stale aside copy: the current result is still in place
            os.replace(final, aside)
        os.replace(new, final)
    _remove(paths.aside_folder)
    _remove(paths.aside_notebook)
    paths.marker.unlink()
    return record if isinstance(record, dict) else {}


def promote(paths: RunPaths, record: Mapping[str, Any]) -> None:
    """Replace ``<name>.ipynb`` and ``<name>/`` by the finished attempt: :func:`begin_swap`, :func:`finish_swap`.

    Raises:
        OSError: see :func:`finish_swap`.
    """
    begin_swap(paths, record)
    finish_swap(paths)


def pending_swaps(root: str | os.PathLike) -> list[str]:
    """The names of the runs under ``root`` whose replacement was interrupted (a marker is left)."""
    return sorted(p.name[: -len(SWAP_MARKER)] for p in Path(root).glob(f"*{SWAP_MARKER}") if p.is_file())


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the command name in (...) may hold spaces


def process_identity() -> dict[str, Any]:
    """``{"pid", "host", "pid_start"}`` of this process, for a ``running`` entry of ``run_summary.json``."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _proc_start(os.getpid())}


def on_this_host(entry: Mapping[str, Any]) -> bool:
    """Whether the process recorded in ``entry`` ran on this machine (entries without a host count as local)."""
    return entry.get("host") in (None, socket.gethostname())


def process_alive(entry: Mapping[str, Any]) -> bool:
    """Whether the process recorded in ``entry`` (:func:`process_identity`) still runs.

    A process on another host cannot be checked: it counts as alive. A recorded start time that
    differs from the live process's means the pid was reused: not alive.
    """
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if not on_this_host(entry):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    started = entry.get("pid_start")
    return started is None or _proc_start(pid) in (None, started)
