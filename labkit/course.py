"""Course checkpoints: small pretrainings the project makes itself, shipped in git, verified when loaded.

Some lessons need more training than a laptop's smoke budget allows before the task is visibly learned
(lab 06's holes filled, lab 04's flare reduced, lab 05's blur removed, lab 03's small RRDB as a starting
point). Those pretrainings ship as *course checkpoints*: trained by the project's own code with one
committed command, each under :data:`MAX_BYTES`, listed in ``labkit/course_checkpoints/manifest.json``
with its SHA-256, the command, the seed, the settings, the machine and the training log. A notebook says
that it starts from one and shows the from-scratch control beside it.

Each lab module names its course checkpoints in ``COURSE_CHECKPOINTS`` (name -> :class:`CourseSpec`):
the lab's smoke profile with overrides (a longer budget, ``net=`` for a run other than the lab's
default, ``seed``), trained by :func:`labkit.labs.train_lab`; the exported file is the run's best weights
(``best.pth``; a run without validation: the generator's ``net_g.pth`` or ``last.pth``'s model).

- ``labkit course list``: every course checkpoint, whether its file is present and matches its hash.
- ``labkit course build NAME`` (or ``--all``): train it and (re)write its file, log and manifest entry.
- :func:`load` (``course.load("06_generator", net)``): check the file's SHA-256 against the manifest,
  then :func:`labkit.weights.load_weights` (``weights_only=True``, strict).

Anyone can remake a file with its command; on another CPU the bytes (and so the hash) differ, and the
manifest then records the new ones with that machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from labkit import __version__, weights
from labkit.files import atomic_write_text
from labkit.labs.common import CourseSpec
from labkit.torchfile import read_torch_file

__all__ = ["CourseSpec", "CourseCheckpointError", "MAX_BYTES", "CHECKPOINT_DIR", "specs", "manifest", "path",
           "verify", "load", "build", "command", "listing", "fingerprint"]

#: the size limit of one course checkpoint in git (bytes)
MAX_BYTES = 2 * 1024 * 1024
#: where the files and ``manifest.json`` live (inside the package, so installed copies have them)
CHECKPOINT_DIR = Path(__file__).resolve().parent / "course_checkpoints"
MANIFEST_NAME = "manifest.json"


class CourseCheckpointError(FileNotFoundError):
    """A course checkpoint that is unknown, missing, over the size limit or whose hash does not match its manifest.
    The message names the file and the command that remakes it."""


def specs() -> dict[str, CourseSpec]:
    """Every lab's ``COURSE_CHECKPOINTS``, by name."""
    from labkit.labs import LABS   # the labs import nothing of this module

    found: dict[str, CourseSpec] = {}
    for module in LABS.values():
        found.update(getattr(module, "COURSE_CHECKPOINTS", {}))
    return found


def command(name: str) -> str:
    """The one command that (re)makes course checkpoint ``name``."""
    return f"labkit course build {shlex.quote(name)}"


def manifest(folder: str | os.PathLike | None = None) -> dict[str, dict]:
    """The manifest (name -> entry) in ``folder`` (default :data:`CHECKPOINT_DIR`); ``{}`` when there is none."""
    file = Path(folder or CHECKPOINT_DIR) / MANIFEST_NAME
    return json.loads(file.read_text()) if file.is_file() else {}


def path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The file of course checkpoint ``name``: ``<folder>/<name>.pth``."""
    return Path(folder or CHECKPOINT_DIR) / f"{name}.pth"


def _spec(name: str) -> CourseSpec:
    known = specs()
    if name not in known:
        raise CourseCheckpointError(f"no course checkpoint named {name!r}; known: {sorted(known)}")
    return known[name]


def fingerprint(name: str, folder: str | os.PathLike | None = None) -> str:
    """The first 8 hex digits of checkpoint ``name``'s SHA-256 (from the manifest in ``folder``): put it in the name
    of a run folder that starts from the checkpoint, so that a rebuilt checkpoint starts new runs instead of
    resuming the ones fine-tuned from the old file. Raises CourseCheckpointError: no manifest entry."""
    entry = manifest(folder).get(name)
    if entry is None:
        raise CourseCheckpointError(f"course checkpoint {name!r} has no manifest entry; remake it with `{command(name)}`")
    return entry["sha256"][:8]


def verify(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The checked file of ``name``: present, under :data:`MAX_BYTES`, SHA-256 as in the manifest.

    Raises:
        CourseCheckpointError: unknown name, no manifest entry, missing file, too large, hash mismatch.
    """
    _spec(name)
    file = path(name, folder)
    entry = manifest(folder).get(name)
    remake = f"remake it with `{command(name)}`"
    if entry is None:
        raise CourseCheckpointError(f"course checkpoint {name!r} has no entry in {Path(folder or CHECKPOINT_DIR) / MANIFEST_NAME}; {remake}")
    if not file.is_file():
        raise CourseCheckpointError(f"course checkpoint file {file} is missing; {remake}")
    size = file.stat().st_size
    if size > MAX_BYTES:
        raise CourseCheckpointError(f"course checkpoint {file} is {size} bytes, over the {MAX_BYTES}-byte limit")
    digest = weights.sha256_file(file)
    if digest != entry["sha256"]:
        raise CourseCheckpointError(f"course checkpoint {file} has sha256 {digest[:16]}..., its manifest says "
                                    f"{entry['sha256'][:16]}...: the file was changed or cut; {remake}")
    return file


def load(name: str, model: nn.Module, folder: str | os.PathLike | None = None) -> nn.Module:
    """Load course checkpoint ``name`` into ``model`` (strict, ``weights_only=True``) after :func:`verify`; return it.

    Raises:
        CourseCheckpointError: see :func:`verify`.
        labkit.weights.WeightsMismatchError: the model was built with other settings than the checkpoint's.
    """
    file = verify(name, folder)
    return weights.load_weights(model, file, sha256=manifest(folder)[name]["sha256"])


def _exported_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a finished run leaves: ``best.pth``, else the GAN's ``net_g.pth``, else ``last.pth``'s model."""
    for name in ("best.pth", "net_g.pth"):
        if (run_dir / name).is_file():
            return weights.unwrap_state_dict(read_torch_file(run_dir / name), source=str(run_dir / name))
    return dict(read_torch_file(run_dir / "last.pth")["model"])


class _Tee(io.TextIOBase):
    """Write to a stream and keep a copy (the training log)."""

    def __init__(self, stream) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def build(name: str, folder: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None,
          extra: Mapping[str, Any] | None = None) -> dict:
    """Train course checkpoint ``name`` and write ``<name>.pth``, ``<name>.log``, ``<name>.history.json`` and its
    manifest entry into ``folder`` (default :data:`CHECKPOINT_DIR`); return the entry.

    The training runs in ``work_dir`` (default a temporary folder; an existing run there is resumed).
    ``extra`` adds overrides (tests use ``max_steps``); they are recorded in the entry's command.

    Raises:
        CourseCheckpointError: unknown name, or the exported file is over :data:`MAX_BYTES` (nothing written).
    """
    from labkit.labs import train_lab

    spec = _spec(name)
    overrides = {"seed": spec.seed, **spec.overrides, **(extra or {})}
    out = Path(folder or CHECKPOINT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        work = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        tee = _Tee(sys.stdout)
        start = time.time()
        with contextlib.redirect_stdout(tee):
            history = train_lab(spec.lab, "smoke", dict(overrides), out=work, progress=False)
        seconds = time.time() - start
        state = {k: v.detach().cpu().float() if v.is_floating_point() else v.cpu() for k, v in _exported_state(work).items()}
        tmp = out / f".{name}.pth.new"
        weights.save_state_dict(state, tmp)
        size = tmp.stat().st_size
        if size > MAX_BYTES:
            tmp.unlink()
            raise CourseCheckpointError(f"course checkpoint {name!r} would be {size} bytes, over the {MAX_BYTES}-byte "
                                        f"limit: make its model smaller in its spec")
        os.replace(tmp, path(name, out))
        atomic_write_text(out / f"{name}.log", tee.copy.getvalue())
        history.save_json(out / f"{name}.history.json")
    extra_args = "".join(f" -p {k}={v!r}" for k, v in (extra or {}).items())
    entry = {"file": f"{name}.pth", "sha256": weights.sha256_file(path(name, out)), "bytes": size,
             "command": command(name) + extra_args, "lab": spec.lab, "profile": "smoke",
             "overrides": {k: v for k, v in overrides.items()}, "seed": overrides["seed"],
             "parameters": int(sum(v.numel() for v in state.values() if v.is_floating_point())),
             "log": f"{name}.log", "history": f"{name}.history.json",
             "seconds": round(seconds, 1), "labkit": __version__, "torch": torch.__version__,
             "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus".strip(),
             "description": spec.description}
    entries = manifest(out)
    entries[name] = entry
    atomic_write_text(out / MANIFEST_NAME, json.dumps(entries, indent=1, sort_keys=True, default=str) + "\n")
    return entry


def listing(folder: str | os.PathLike | None = None) -> list[dict]:
    """One row per course checkpoint: name, lab, size, status (``ok`` / the error), command."""
    rows = []
    for name, spec in sorted(specs().items()):
        entry = manifest(folder).get(name, {})
        try:
            verify(name, folder)
            status = "ok"
        except CourseCheckpointError as e:
            status = str(e)
        rows.append({"name": name, "lab": spec.lab, "bytes": entry.get("bytes"), "seed": spec.seed,
                     "status": status, "command": command(name), "description": spec.description})
    return rows
