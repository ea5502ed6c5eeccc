"""``History``: what a training run records, one row per epoch, plus the best epoch and early stop.

:func:`labkit.train.fit` and :func:`labkit.train.fit_gan` both return it and keep it inside their
``last.pth``; ``save_json`` / ``load_json`` / ``plot`` are for notebooks and the CLI.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.files import atomic_write_text

__all__ = ["History", "higher_is_better"]


def higher_is_better(metric: str) -> bool:
    """True for PSNR/SSIM/score/accuracy-like metric names, False for losses (lower is better)."""
    return any(s in metric for s in ("psnr", "ssim", "score", "acc"))


@dataclass
class History:
    """What :func:`fit` records: one dict per epoch plus the early-stopping outcome.

    Attributes:
        epochs: one row per finished epoch: ``epoch`` (1-based), ``step`` (optimizer steps so far),
            ``train_loss`` (mean over the epoch's samples), ``val_loss`` and ``val_psnr`` (dB; None
            without validation data), ``lr`` (first param group, at the start of the epoch),
            ``seconds`` (wall time of the epoch, validation included), ``train_seconds`` (its training
            batches alone).
        best_epoch: the epoch whose ``monitor`` value was best (the weights restored), or None.
        stopped_early: True when early stopping ended the run.
        monitor: the metric the best epoch refers to.
    """

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    monitor: str = "val_psnr"

    def to_dict(self) -> dict:
        """Plain dict of lists / floats (JSON- and ``torch.load(weights_only=True)``-safe)."""
        return {
            "epochs": [dict(r) for r in self.epochs],
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "monitor": self.monitor,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> History:
        """Inverse of :meth:`to_dict`. Raises ValueError when ``epochs`` is missing."""
        if "epochs" not in d:
            raise ValueError(f"not a History dict (no 'epochs' key): keys {list(d)}")
        return cls(
            epochs=[dict(r) for r in d["epochs"]],
            best_epoch=d.get("best_epoch"),
            stopped_early=bool(d.get("stopped_early", False)),
            monitor=d.get("monitor", "val_psnr"),
        )

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (:func:`labkit.files.atomic_write_text`: parent
        folders created, the umask's permissions, never a half-written file). Returns the path."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> History:
        """Read a file written by :meth:`save_json`. FileNotFoundError names a missing file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"history file not found: {path}")
        return cls.from_dict(json.loads(path.read_text()))

    def column(self, metric: str) -> list:
        """The values of ``metric`` over the epochs (KeyError naming an unknown metric)."""
        if self.epochs and metric not in self.epochs[0]:
            raise KeyError(f"unknown metric {metric!r}; recorded: {list(self.epochs[0])}")
        return [r.get(metric) for r in self.epochs]

    def best(self, metric: str | None = None) -> float | None:
        """Best value of ``metric`` (default: ``monitor``) over the epochs.

        PSNR/SSIM-like metrics are higher-is-better, the rest (losses) lower-is-better. None when
        nothing was recorded. Raises KeyError for an unknown metric.
        """
        values = [v for v in self.column(metric or self.monitor) if v is not None and not math.isnan(v)]
        if not values:
            return None
        return max(values) if higher_is_better(metric or self.monitor) else min(values)

    def plot(self, ax: Any = None) -> Any:
        """Loss curves (train, val) on ``ax`` and validation PSNR on a twin axis; returns ``ax``.

        The best epoch is marked with a dotted vertical line. Needs matplotlib.
        """
        import matplotlib.pyplot as plt  # only to draw: training processes never pay its start-up

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ep = [r["epoch"] for r in self.epochs]
        lines = ax.plot(ep, [r["train_loss"] for r in self.epochs], "o-", label="train loss")
        if any(r.get("val_loss") is not None for r in self.epochs):
            lines += ax.plot(ep, [r.get("val_loss") for r in self.epochs], "s-", label="val loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch, ls=":", color="gray")
        if any(r.get("val_psnr") is not None for r in self.epochs):
            ax2 = ax.twinx()
            lines += ax2.plot(ep, [r.get("val_psnr") for r in self.epochs], "^-", color="C2",
                              label="val PSNR")
            ax2.set_ylabel("PSNR (dB)")
        ax.legend(lines, [ln.get_label() for ln in lines], loc="best")
        return ax
