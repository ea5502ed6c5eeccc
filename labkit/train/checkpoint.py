"""What a training checkpoint (``last.pth``) holds besides the networks: RNG states and the run's settings.

- :func:`rng_state` / :func:`set_rng_state`: the Python, NumPy, torch CPU and CUDA RNG states in a
  ``torch.load(weights_only=True)``-loadable form;
- :func:`read_checkpoint`: load ``last.pth`` (:class:`CheckpointError` naming the file, and the ways on);
- :func:`plain_settings`, :func:`settings_diff`, :func:`check_settings`: the settings a run was
  started with (plain JSON values) are stored in every checkpoint; resuming with other settings raises
  :class:`SettingsChangedError`, which lists each difference ``old -> new`` (nested keys dotted).

Used by :class:`labkit.train.session.Session`; no labkit import besides the standard library, NumPy and torch.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit.errors import LabkitError
from labkit.torchfile import WeightsError, read_torch_file

__all__ = ["CheckpointError", "NOTED_SETTINGS", "SettingsChangedError", "WAYS_ON", "check_settings",
           "flatten_settings", "plain_settings", "read_checkpoint", "rng_state", "set_rng_state", "settings_diff"]

Log = Callable[[str], None]

#: what to do about a checkpoint that cannot be resumed, in CLI terms and in Python terms
WAYS_ON = ("start over in this folder with --no-resume (resume=False in Python), "
           "or train into another folder with --out DIR (another checkpoint_dir in Python)")

#: settings keys whose change is only noted on resume, never refused (the code version)
NOTED_SETTINGS = ("code_version",)


class CheckpointError(LabkitError, RuntimeError):
    """A training checkpoint cannot be read or does not fit the model / optimizer (names the file)."""


class SettingsChangedError(CheckpointError):
    """Resuming a ``last.pth`` that was trained with other settings; the message lists each
    difference ``key: old -> new`` and the ways on (``--no-resume`` or another ``--out``).

    Attributes: ``path`` (the checkpoint), ``differences`` (``{dotted key: (old, new)}``).
    """

    def __init__(self, path: Path, differences: Mapping[str, tuple[Any, Any]]) -> None:
        self.path, self.differences = path, dict(differences)
        lines = [f"  {k}: {_show(old)} -> {_show(new)}" for k, (old, new) in self.differences.items()]
        super().__init__(f"cannot resume {path}: it was trained with other settings ("
                         f"{len(lines)} difference(s), checkpoint -> now):\n" + "\n".join(lines)
                         + f"\nTo train with the new settings, {WAYS_ON}.")


def _show(value: Any) -> str:
    return "(not set)" if value is _MISSING else repr(value)


_MISSING = object()

# ----------------------------------------------------------------------------- RNG states


def rng_state() -> dict:
    """The Python, NumPy, torch CPU and CUDA RNG states, in a ``weights_only``-loadable form."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: Mapping, log: Log) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only for the same device count)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        else:
            log(f"note: the checkpoint has {len(cuda)} CUDA RNG states for "
                f"{torch.cuda.device_count()} devices; CUDA RNGs not restored")


# ----------------------------------------------------------------------------- reading


def read_checkpoint(path: Path, fmt: str, writer: str) -> dict:
    """Load a training checkpoint written by ``writer`` whose ``format`` is ``fmt``.

    Raises:
        CheckpointError: it cannot be read (truncated, not a checkpoint) or has another format;
            the message names the file and says how to go on (``--no-resume`` / ``--out``).
    """
    try:   # what the file is not (empty, truncated, not a checkpoint, refused for safety), never weights_only=False
        ck = read_torch_file(path, what="training checkpoint", again=WAYS_ON)
    except WeightsError as e:
        raise CheckpointError(str(e) if e.kind != "not_checkpoint" else f"{e} (not written by {writer}?)") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise CheckpointError(f"{path} is not a {writer} checkpoint (no format {fmt!r}); {WAYS_ON}")
    return ck


# ----------------------------------------------------------------------------- settings


def plain_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as plain JSON values (tuples become lists; other objects their ``str``).

    Raises TypeError when ``settings`` is not a mapping.
    """
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping of plain values, got {type(settings).__name__}")
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=str))


def flatten_settings(d: Mapping[str, Any], sep: str = ".", prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level, keys joined with ``sep`` (``{"model": {"wf": 16}}`` -> ``{"model.wf": 16}``);
    an empty mapping stays a value."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_settings(v, sep, key + sep))
        else:
            out[key] = v
    return out


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` for each leaf that differs (a missing key's value is a sentinel
    shown as ``(not set)``), in sorted key order; both are compared as :func:`plain_settings`."""
    a, b = flatten_settings(plain_settings(old)), flatten_settings(plain_settings(new))
    return {k: (a.get(k, _MISSING), b.get(k, _MISSING))
            for k in sorted(set(a) | set(b)) if a.get(k, _MISSING) != b.get(k, _MISSING)}


def check_settings(stored: Mapping[str, Any] | None, current: Mapping[str, Any] | None, path: Path,
                   log: Log) -> None:
    """Refuse to resume ``path`` (trained with ``stored``) with the ``current`` settings when they differ.

    No ``current`` settings: nothing is checked. No ``stored`` settings (a checkpoint older than this
    check): a one-line note. Keys in :data:`NOTED_SETTINGS` (the code version) only log a note.

    Raises:
        SettingsChangedError: any other key differs (the message lists them and the ways on).
    """
    if current is None:
        return
    if stored is None:
        log(f"note: {path} records no settings (written before they were stored); resuming without checking them")
        return
    diff = settings_diff(stored, current)
    for key in NOTED_SETTINGS:
        if key in diff:
            old, new = diff.pop(key)
            log(f"note: {path} was written by {key} {_show(old)}, this is {_show(new)}; resuming")
    if diff:
        raise SettingsChangedError(path, diff)
