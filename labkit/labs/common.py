"""What every lab's builder shares: the run options, :class:`Recipe`, and the rank-0 file helpers."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from labkit import distributed

__all__ = ["RUN_OPTIONS", "SAFE_ON_RESUME", "Recipe", "CourseSpec", "rank0_first", "rank0_makes", "reuse_or_make"]

#: run options accepted by ``-p`` next to the profile's settings, with their defaults
#: (``checkpoint_interval``: seconds between time-based ``last.pth`` writes inside an epoch; 0: epoch ends only)
RUN_OPTIONS: dict[str, Any] = {"net": None, "data_root": None, "seed": 42, "max_steps": None,
                               "max_images": None, "device": "auto", "num_workers": 0,
                               "checkpoint_interval": 300.0}

#: the run options that may change when a run is resumed (not part of its stored settings nor of its folder
#: name): ``max_steps`` (to extend a run), ``num_workers``, ``device``, ``checkpoint_interval``
SAFE_ON_RESUME: tuple[str, ...] = ("max_steps", "num_workers", "device", "checkpoint_interval")


@dataclass
class Recipe:
    """What a lab's ``build_training`` returns.

    The run is ``fit(model, train_set, val_set, **fit_kwargs)``, or, when ``discriminator`` is set,
    ``fit_gan(model, discriminator, train_set, val_set, **fit_kwargs)`` (:mod:`labkit.train.gan`).
    """

    model: nn.Module
    train_set: Any
    val_set: Any
    fit_kwargs: dict = field(default_factory=dict)
    name: str = ""
    discriminator: nn.Module | None = None


@dataclass(frozen=True)
class CourseSpec:
    """One course checkpoint (:mod:`labkit.course`): lab ``lab``'s smoke run with ``overrides``.

    A lab module lists its own in ``COURSE_CHECKPOINTS`` (name -> spec); ``labkit course build NAME``
    trains it with :func:`labkit.labs.train_lab` and exports the run's best weights.

    Attributes:
        lab: the lab number (``"06"``).
        overrides: ``labkit train`` settings and run options (``-p key=value``) on the smoke profile;
            ``seed`` defaults to 42.
        description: what it is and which notebook starts from it.
    """

    lab: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def seed(self) -> int:
        return int(self.overrides.get("seed", 42))


def rank0_first(make: Callable[[], Any]) -> Any:
    """``make()`` on rank 0 first, then on the other ranks (files it writes or downloads are there)."""
    if distributed.is_main():
        result = make()
        distributed.barrier()
    else:
        distributed.barrier()
        result = make()
    return result


def rank0_makes(make: Callable[[], Any]) -> None:
    """``make()`` on rank 0 only (it writes files the run reads), then every rank goes on."""
    if distributed.is_main():
        make()
    distributed.barrier()


def reuse_or_make(folder: Path, settings: dict, make: Callable[[], Any]) -> None:
    """Keep ``folder`` if its ``.complete`` stamp records ``settings``; else empty it and run ``make()``
    (which fills it), then stamp it. An interrupted ``make()`` leaves no stamp and is redone."""
    stamp = folder / ".complete"
    want = json.dumps(settings, sort_keys=True, default=str)
    if stamp.is_file() and stamp.read_text() == want:
        return
    if folder.is_dir():
        shutil.rmtree(folder)   # stale files of other settings would join the dataset
    make()
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)
