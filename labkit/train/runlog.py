"""Training logs that tools read: TensorBoard event files and a CSV, beside ``history.json``.

Every run of :func:`labkit.train.fit` and :func:`labkit.train.fit_gan` with a ``checkpoint_dir`` writes, in
that folder (one folder per run: the notebooks and ``labkit train`` name it after the run's settings and
seed, so ``--sweep`` runs and seeds sit side by side under ``runs/``):

- ``train_log.csv``, always: one row per value, ``step,epoch,tag,value,wall_time`` (long format:
  ``pandas.read_csv(...).pivot_table(index="step", columns="tag", values="value")`` gives one column per tag);
- TensorBoard event files (``torch.utils.tensorboard``), when the ``tensorboard`` package is installed
  (``pip install labkit[tb]``; Colab has it) and ``LABKIT_TENSORBOARD`` is not ``0``. Open them with
  ``tensorboard --logdir runs`` (on Colab: ``%load_ext tensorboard`` then ``%tensorboard --logdir runs``).

What is logged (the tags):

- ``train/<column>`` at every step: the step's losses (``train/train_loss``; the GAN's ``l_g_*`` / ``l_d_*`` terms,
  ``d_real_mean``, ``d_fake_mean`` and ``train/d_margin`` = their difference); the values stay on their device
  and are read :data:`FLUSH_EVERY` steps at a time (one GPU synchronisation per flush, not per step);
- ``lr/<group>`` at every step, and ``epoch/lr...`` at every epoch end;
- ``epoch/<column>`` at every epoch end: the epoch's means (``train_loss``, ...), ``val_psnr`` / ``val_loss`` /
  ``val_l1`` when there is validation data, ``seconds`` and ``train_seconds``;
- ``val_images/<i>/lq``, ``.../output``, ``.../gt``: the first :data:`IMAGES` validation items at epochs
  1, 2, 4, 8, ... and the last one (images in [0, 1]; an input of 2 or 4 channels shows its first 1 or 3);
- the run's settings as TensorBoard hparams (the HPARAMS tab), with the last epoch's ``epoch/val_*`` as metrics.

Logging never changes a run: the image forward passes run under saved and restored RNG states (iterating a
DataLoader draws from torch's RNG), and a resumed run drops the rows and events after its checkpoint's
step (``purge_step``), so an interrupted run's curves have no doubled points. Only rank 0 logs under DDP.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.files import atomic_write_text
from labkit.train.batches import outputs, unpack
from labkit.train.checkpoint import flatten_settings

__all__ = ["CSV_NAME", "FLUSH_EVERY", "IMAGES", "RunLog", "image_epoch", "read_csv_log", "tensorboard_enabled"]

#: the CSV log's file name in the run folder
CSV_NAME = "train_log.csv"
#: the step-level values are read and written this many steps at a time (and at every epoch end)
FLUSH_EVERY = 10
#: how many validation items the image panels show
IMAGES = 3
_FIELDS = ("step", "epoch", "tag", "value", "wall_time")


def tensorboard_enabled(tensorboard: bool | None = None) -> bool:
    """Whether TensorBoard event files are written: ``tensorboard`` if given (True without the package raises
    ImportError), else on when the ``tensorboard`` package is installed and ``$LABKIT_TENSORBOARD`` is not
    ``0`` / ``false`` / ``no``."""
    installed = importlib.util.find_spec("tensorboard") is not None
    if tensorboard is True and not installed:
        raise ImportError("tensorboard=True needs the tensorboard package: pip install tensorboard "
                          "(or pip install labkit[tb])")
    if tensorboard is not None:
        return bool(tensorboard)
    return installed and os.environ.get("LABKIT_TENSORBOARD", "1").strip().lower() not in ("0", "false", "no")


def image_epoch(epoch: int, last: bool) -> bool:
    """Whether epoch ``epoch`` (1-based) logs validation images: 1, 2, 4, 8, ... and the last one."""
    return last or (epoch & (epoch - 1)) == 0


def read_csv_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``train_log.csv`` (``step`` and ``epoch`` as int, ``value`` as float); [] when missing."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [{"step": int(r["step"]), "epoch": int(r["epoch"]), "tag": r["tag"], "value": float(r["value"]),
                 "wall_time": float(r["wall_time"])} for r in csv.DictReader(f)]


def _keep_until(path: Path, step: int) -> None:
    """Rewrite the CSV log with the rows up to ``step`` only (a resumed or restarted run goes on from there)."""
    rows = [r for r in read_csv_log(path) if r["step"] <= step]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _hparam_value(v: Any) -> int | float | str | bool:
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def _as_panel(t: torch.Tensor) -> torch.Tensor:
    """One image ``(C, H, W)`` as a displayable ``(1 | 3, H, W)`` float in [0, 1]."""
    t = t.detach().float().cpu()
    t = t[:3] if t.shape[0] >= 3 else t[:1]
    return t.clamp(0, 1)


class RunLog:
    """The CSV log and (optionally) the TensorBoard writer of one run folder.

    Args:
        folder: the run's folder (the trainer's ``checkpoint_dir``); created if missing.
        step: the step the run starts from (0 for a fresh run, the checkpoint's for a resumed one): rows and
            events after it are dropped.
        tensorboard: as :func:`tensorboard_enabled`.

    Raises: ImportError: ``tensorboard=True`` without the package; OSError: the folder cannot be written.
    """

    def __init__(self, folder: str | os.PathLike, *, step: int = 0, tensorboard: bool | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.folder / CSV_NAME
        _keep_until(self.csv_path, step)
        self._csv = self.csv_path.open("a", newline="")
        self._rows = csv.DictWriter(self._csv, fieldnames=_FIELDS, lineterminator="\n")
        self.writer = None
        self._pending: list[tuple[int, int, dict[str, Any], dict[str, float]]] = []
        if tensorboard_enabled(tensorboard):
            from torch.utils.tensorboard import SummaryWriter   # optional dependency: imported only when used
            # TensorBoard drops the events of steps >= purge_step: what an interrupted run wrote after ``step``
            self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=step + 1)

    def scalars(self, step: int, epoch: int, values: Mapping[str, Any], prefix: str) -> None:
        """Write ``prefix/<name>`` = ``value`` for every finite number in ``values`` (tensors are read)."""
        now = time.time()
        for name, v in values.items():
            if v is None or isinstance(v, bool):
                continue
            value = float(v)
            if not math.isfinite(value):
                continue
            tag = f"{prefix}/{name}"
            self._rows.writerow({"step": step, "epoch": epoch, "tag": tag, "value": repr(value), "wall_time": now})
            if self.writer is not None:
                self.writer.add_scalar(tag, value, step, walltime=now)
        self._csv.flush()

    def step_values(self, step: int, epoch: int, logs: Mapping[str, Any], lrs: Mapping[str, float]) -> None:
        """A step's losses (``train/...``; with a GAN's D scores also ``train/d_margin``) and learning rates, kept
        (tensors unread) until :data:`FLUSH_EVERY` steps are pending, then written (:meth:`flush`)."""
        self._pending.append((step, epoch, dict(logs), dict(lrs)))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the pending step values."""
        pending, self._pending = self._pending, []
        for step, epoch, logs, lrs in pending:
            values = {k: float(v) for k, v in logs.items()}
            if "d_real_mean" in values and "d_fake_mean" in values:
                values["d_margin"] = values["d_real_mean"] - values["d_fake_mean"]
            self.scalars(step, epoch, values, "train")
            self.scalars(step, epoch, lrs, "lr")

    def images(self, step: int, model: nn.Module, loader: Any, device: torch.device) -> None:
        """The first :data:`IMAGES` items of ``loader`` (batches of ``(lq, gt)`` or dicts): LR, output and GT
        panels, in eval mode without gradients. TensorBoard only (the CSV has no images)."""
        if self.writer is None or loader is None:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if i >= IMAGES:
                    break
                x, y = unpack(batch, device)
                out = outputs(model(x))[-1]
                for name, t in (("lq", x[0]), ("output", out[0]), ("gt", y[0])):
                    self.writer.add_image(f"val_images/{i}/{name}", _as_panel(t), step, dataformats="CHW")
        model.train(was_training)

    def hparams(self, settings: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """The run's settings as TensorBoard hparams; ``metrics``: ``{tag: value}`` of scalars already logged."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams
        finite = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        flat = {k: _hparam_value(v) for k, v in flatten_settings(settings, "/").items()}
        for summary in hparams(flat, finite):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        """Flush and close both logs."""
        self.flush()
        self._csv.close()
        if self.writer is not None:
            self.writer.close()
