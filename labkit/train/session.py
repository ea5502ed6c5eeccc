"""The run session that :func:`labkit.train.fit` and :func:`labkit.train.fit_gan` share.

A training run is the same loop whatever is trained; only the update differs (one supervised
step, or one two-player GAN step). This module writes the loop once:

- :class:`Update`: what a trainer plugs in (the networks and optimizers it owns, one training
  batch, validation, its schedulers, its part of the checkpoint);
- :class:`Session`: the process group and DDP, the loaders and their samplers, seeding, resume
  from ``last.pth``, atomic checkpoints with every RNG state, the history, progress bars and the
  epoch loop :meth:`Session.run`;
- :class:`BestTracker`: the best epoch, ``best.pth``, the best weights kept in memory and early
  stopping (Keras ``EarlyStopping(patience, restore_best_weights=True)``, as in the 000 write-up).

Resume is exact: ``last.pth`` holds the update's state (networks, optimizers, schedulers, scaler,
EMA), counters, history, the tracker's state and the RNG states (Python, NumPy, torch CPU and
CUDA) at the end of an epoch, so a run interrupted at any point and resumed ends with the same
weights as an uninterrupted one (same device and library versions; data loaders must draw their
randomness from those RNGs, as a ``DataLoader(shuffle=True)`` without a ``generator`` does).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from labkit import distributed
from labkit.env import pick_device, progress_bar, seed_everything
from labkit.train.batches import as_loader, set_epoch
from labkit.train.history import History, higher_is_better
from labkit.weights import atomic_save, save_state_dict

__all__ = ["BestTracker", "CheckpointError", "EpochMeter", "Session", "Update", "read_checkpoint",
           "rng_state", "set_rng_state"]

Log = Callable[[str], None]


class CheckpointError(RuntimeError):
    """A training checkpoint cannot be read or does not fit the model / optimizer (names the file)."""


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


def read_checkpoint(path: Path, fmt: str, writer: str) -> dict:
    """Load a training checkpoint written by ``writer`` whose ``format`` is ``fmt``.

    Raises CheckpointError (naming the file) when it cannot be read or has another format.
    """
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(
            f"cannot read the training checkpoint {path} ({type(e).__name__}: {first}). It is "
            f"corrupt or was not written by {writer}; delete it or pass resume=False "
            "to start over."
        ) from e
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise CheckpointError(f"{path} is not a {writer} checkpoint (no format "
                              f"{fmt!r}); delete it or pass resume=False")
    return ck


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``module``'s state dict on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- what a trainer plugs in


class Update:
    """One training update and everything it owns; :class:`Session` drives it.

    Subclasses (``labkit.train.supervised.SupervisedUpdate``, ``labkit.train.gan.GANUpdate``) set
    ``checkpoint_format`` and ``writer`` and implement the methods that raise here. The defaults
    are right for a trainer without DDP extras, extra weight files or final weights to load.
    """

    checkpoint_format = ""
    writer = ""

    def to(self, device: torch.device) -> None:
        """Move the networks (and loss modules) to ``device``."""
        raise NotImplementedError

    def wrap_ddp(self, device: torch.device) -> None:
        """Wrap what trains in DistributedDataParallel (called in a distributed run only)."""
        raise NotImplementedError

    def learning_rates(self) -> dict[str, float]:
        """The history columns of the learning rates at the start of an epoch."""
        raise NotImplementedError

    def train_mode(self) -> None:
        """Put the networks in training mode (start of every epoch)."""
        raise NotImplementedError

    def train_batch(self, batch: Any, device: torch.device, step: int) -> tuple[dict[str, Any], int]:
        """One update on ``batch`` (``step``: 1-based count of this update); returns
        ``({column: per-sample mean of the batch (float or 0-d tensor)}, batch size)``."""
        raise NotImplementedError

    def postfix(self, means: Mapping[str, float]) -> dict[str, str]:
        """What the progress bar shows, from the running means of the epoch."""
        return {}

    def train_columns(self, means: Mapping[str, float]) -> dict[str, Any]:
        """The history row's training columns from the epoch's means (must hold ``train_loss``)."""
        raise NotImplementedError

    def validate(self, loader: DataLoader | None, device: torch.device) -> dict[str, float | None]:
        """The history row's validation columns (values None when ``loader`` is None)."""
        raise NotImplementedError

    @property
    def eval_model(self) -> nn.Module:
        """The network whose weights count as the result (the EMA copy where there is one)."""
        raise NotImplementedError

    def end_epoch(self, monitored: float | None) -> None:
        """Step the epoch-interval schedulers (``monitored``: the value a ReduceLROnPlateau gets)."""

    def state_dict(self) -> dict[str, Any]:
        """The update's part of ``last.pth`` (networks, optimizers, schedulers, ...)."""
        raise NotImplementedError

    def load_state_dict(self, ck: Mapping[str, Any], path: Path, log: Log) -> None:
        """Inverse of :meth:`state_dict`; raises KeyError / RuntimeError / ValueError on mismatch."""
        raise NotImplementedError

    def before_checkpoint(self) -> None:
        """Called on every rank before ``last.pth`` is written (e.g. to sync buffers)."""

    def save_weights(self, folder: Path) -> None:
        """Write extra weight files next to ``last.pth`` (rank 0 only)."""

    def finish(self, tracker: BestTracker | None) -> None:
        """Load the weights the run ends with (after the loop, or on resuming a finished run)."""

    def format_row(self, row: Mapping[str, Any], epochs: int | None, steps: int | None) -> str:
        """The log line of one epoch."""
        raise NotImplementedError


class BestTracker:
    """The best epoch of one history column, its weights, ``best.pth`` and early stopping.

    ``monitor`` None tracks nothing (no best epoch, no early stopping). Improvement is strict;
    PSNR/SSIM-like columns are higher-is-better, losses lower-is-better. The best weights are kept
    in memory on the CPU and, with a checkpoint folder, written to ``best.pth`` (rank 0).
    """

    def __init__(self, monitor: str | None, patience: int | None) -> None:
        self.monitor, self.patience = monitor, patience
        self.higher = higher_is_better(monitor) if monitor else True
        self.best_value: float | None = None
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def observe(self, row: Mapping[str, Any], history: History, model: nn.Module, folder: Path | None) -> None:
        """Record epoch ``row``; on improvement keep ``model``'s weights; else count toward a stop."""
        if self.monitor is None:
            return
        value = row[self.monitor]
        improved = not math.isnan(value) and (
            self.best_value is None or (value > self.best_value if self.higher else value < self.best_value))
        if improved:
            self.best_value, history.best_epoch, self.bad_epochs = value, row["epoch"], 0
            self.best_state = cpu_state(model)
            if folder is not None and distributed.is_main():
                save_state_dict(self.best_state, folder / "best.pth")
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                history.stopped_early = True
        if distributed.is_distributed():  # rank 0's decision for everyone
            history.stopped_early = distributed.broadcast_object(history.stopped_early)

    def stop_message(self, history: History) -> str:
        return (f"early stopping: {self.monitor} did not improve for {self.patience} epochs; "
                f"best epoch {history.best_epoch}")

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_state": self.best_state, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, ck: Mapping[str, Any]) -> None:
        self.best_value, self.best_state = ck.get("best_value"), ck.get("best_state")
        self.bad_epochs = int(ck.get("bad_epochs", 0))


class EpochMeter:
    """Per-sample means of an epoch's logged values (0-d tensors stay on their device until read).

    Under DDP :meth:`means` is over every rank's samples (one all-reduce).
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.count = 0

    def add(self, logs: Mapping[str, Any], n: int) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += n

    def running(self) -> dict[str, float]:
        return {k: float(v) / self.count for k, v in self.sums.items()}

    def means(self, device: torch.device) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("the training data produced no batches")
        if not distributed.is_distributed():
            return self.running()
        keys = list(self.sums)
        where = device if device.type == "cuda" else "cpu"
        both = distributed.all_reduce_sum(torch.tensor([float(self.sums[k]) for k in keys] + [float(self.count)],
                                                       dtype=torch.float64, device=where))
        return {k: float(both[i]) / float(both[-1]) for i, k in enumerate(keys)}


# ----------------------------------------------------------------------------- the session


class Session:
    """One training run of an :class:`Update`: set-up, resume, the epoch loop, checkpoints.

    Args:
        update: the trainer's update (networks, optimizers, ...).
        train_data, val_data: Datasets or DataLoaders (see :func:`labkit.train.batches.as_loader`);
            the training data is sharded over the ranks under DDP, validation runs on rank 0.
        epochs, steps: stop after this many epochs / optimizer steps (either may be None).
        batch_size: the global batch; num_workers: DataLoader workers.
        device: ``labkit.env.pick_device`` argument; each rank takes its own GPU under DDP.
        checkpoint_dir: where ``last.pth`` goes after every epoch (None: no files).
        resume: continue from ``last.pth`` when it exists.
        tracker: best epoch / early stopping, or None (a GAN keeps its last weights).
        history: the empty History of this run (its ``monitor`` set).
        progress, seed, log: tqdm bars; the seed of a fresh run (rank r gets ``seed + r``); one
            line per epoch (rank 0 only).
    """

    def __init__(self, update: Update, train_data: Any, val_data: Any = None, *, epochs: int | None,
                 steps: int | None, batch_size: int, num_workers: int, device: Any,
                 checkpoint_dir: Any, resume: bool, tracker: BestTracker | None, history: History,
                 progress: bool, seed: int | None, log: Log | None) -> None:
        self.update, self.tracker, self.history = update, tracker, history
        self.epochs, self.steps, self.resume, self.seed = epochs, steps, resume, seed
        self.epoch = 0  # finished epochs
        self.step = 0   # updates
        self.ddp = distributed.init_from_env()
        self.main = distributed.is_main()
        self.log: Log = (log or _silent) if self.main else _silent
        self.progress = progress and self.main
        self.device = distributed.device_for_rank(pick_device(device))
        update.to(self.device)
        self.train_loader = as_loader(train_data, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                      device=self.device, name="train_data", shard=True, seed=seed)
        if (self.ddp and isinstance(train_data, DataLoader)
                and not isinstance(train_data.sampler, DistributedSampler)):
            self.log("note: train_data is a DataLoader without a DistributedSampler: every rank reads all of it")
        self.has_val = val_data is not None
        self.val_loader = None if val_data is None or not self.main else as_loader(
            val_data, batch_size=1, shuffle=False, num_workers=num_workers, device=self.device, name="val_data")
        self.folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.last_path = self.folder / "last.pth" if self.folder is not None else None

    def done(self) -> bool:
        return (self.history.stopped_early
                or (self.epochs is not None and self.epoch >= self.epochs)
                or (self.steps is not None and self.step >= self.steps))

    def run(self) -> History:
        """Resume or seed, then train epoch after epoch until done; returns the History."""
        if self.resume and self.last_path is not None and self.last_path.exists():
            self._restore()
            if self.done():
                self.update.finish(self.tracker)
                self.log(f"{self.last_path}: the run already finished after epoch {self.epoch} "
                         f"(step {self.step}); nothing to train")
                return self.history
            self.log(f"resuming from {self.last_path} after epoch {self.epoch} (step {self.step})")
        elif self.seed is not None:
            seed_everything(self.seed + distributed.rank())
        if self.ddp:
            self.update.wrap_ddp(self.device)
        while not self.done():
            row = self._epoch()
            self.log(self.update.format_row(row, self.epochs, self.steps))
            if self.history.stopped_early:
                self.log(self.tracker.stop_message(self.history))
        self.update.finish(self.tracker)
        return self.history

    def _epoch(self) -> dict[str, Any]:
        """Train one epoch, validate, track, step the schedulers, checkpoint; returns its row."""
        epoch = self.epoch + 1
        t0 = time.perf_counter()
        lrs = self.update.learning_rates()
        set_epoch(self.train_loader, self.epoch)
        means = self._train_epoch(desc=f"epoch {epoch}" + (f"/{self.epochs}" if self.epochs else ""))
        train = self.update.train_columns(means)
        if not math.isfinite(train["train_loss"]):
            raise ValueError(f"the training loss became {train['train_loss']} in epoch {epoch} "
                             f"(step {self.step}); lower the learning rate or check the data")
        val = self.update.validate(self.val_loader, self.device)
        if self.ddp and self.has_val:
            val = dict(zip(val, distributed.broadcast_object(tuple(val.values()))))
        row = {"epoch": epoch, "step": self.step, **train, **val, **lrs, "seconds": 0.0}
        self.history.epochs.append(row)
        self.epoch = epoch
        if self.tracker is not None:
            self.tracker.observe(row, self.history, self.update.eval_model, self.folder)
        monitor = self.tracker.monitor if self.tracker is not None else None
        self.update.end_epoch(row[monitor or "train_loss"])
        row["seconds"] = time.perf_counter() - t0
        if self.folder is not None:
            self._checkpoint()
        return row

    def _train_epoch(self, desc: str) -> dict[str, float]:
        self.update.train_mode()
        meter = EpochMeter()
        bar = progress_bar()(self.train_loader, desc=desc, leave=False, disable=not self.progress,
                             mininterval=1.0)
        for i, batch in enumerate(bar):
            logs, n = self.update.train_batch(batch, self.device, self.step + 1)
            self.step += 1
            meter.add(logs, n)
            if self.progress and i % 10 == 0:
                bar.set_postfix(self.update.postfix(meter.running()))
            if self.steps is not None and self.step >= self.steps:
                break
        bar.close()
        return meter.means(self.device)

    def _checkpoint(self) -> None:
        """``last.pth`` (atomic, rank 0, with every rank's RNG states); all ranks wait for it."""
        self.update.before_checkpoint()
        rng_ranks = distributed.gather_objects(rng_state()) if self.ddp else None
        if self.main:
            ck = {"format": self.update.checkpoint_format, "epoch": self.epoch, "global_step": self.step,
                  **self.update.state_dict(), "history": self.history.to_dict(),
                  **(self.tracker.state_dict() if self.tracker is not None else {}), "rng": rng_state()}
            if rng_ranks is not None:
                ck["rng_ranks"] = rng_ranks
            atomic_save(ck, self.last_path)
            self.update.save_weights(self.folder)
        distributed.barrier()  # the checkpoint is on disk before any rank goes on

    def _restore(self) -> None:
        path = self.last_path
        ck = read_checkpoint(path, self.update.checkpoint_format, self.update.writer)
        try:
            self.update.load_state_dict(ck, path, self.log)
            self.history = History.from_dict(ck["history"])
            self.epoch, self.step = int(ck["epoch"]), int(ck["global_step"])
            if self.tracker is not None:
                self.tracker.load_state_dict(ck)
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"the training checkpoint {path} does not fit these networks/optimizers/schedulers "
                f"({type(e).__name__}: {e}); use another checkpoint_dir or resume=False"
            ) from e
        set_rng_state(ck["rng"], self.log)
        self._restore_rank_rng(ck)

    def _restore_rank_rng(self, ck: Mapping[str, Any]) -> None:
        """Under DDP, each rank restores its own RNG states (``rng_ranks``) when the checkpoint has them."""
        if not self.ddp:
            return
        states = ck.get("rng_ranks")
        if states is not None and len(states) == distributed.world_size():
            set_rng_state(states[distributed.rank()], self.log)
        else:
            self.log(f"note: the checkpoint has RNG states for {len(states) if states else 1} process(es), "
                     f"this run has {distributed.world_size()}: every rank restores rank 0's")


def _silent(_msg: str) -> None:
    """A log that says nothing (ranks other than 0, or ``log=None``)."""
