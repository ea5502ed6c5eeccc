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
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from labkit import distributed
from labkit.env import pick_device, progress_bar, seed_everything
from labkit.files import remove_stale_temp
from labkit.train.batches import as_loader, set_epoch
from labkit.train.checkpoint import (WAYS_ON, CheckpointError, SettingsChangedError, check_settings,
                                     plain_settings, read_checkpoint, rng_state, set_rng_state)
from labkit.train.history import History, higher_is_better
from labkit.train.runlog import RunLog, image_epoch
from labkit.weights import atomic_save, save_state_dict

__all__ = ["BestTracker", "CHECKPOINT_FILES", "CheckpointError", "EpochMeter", "FIRST_CHECKPOINT_S", "Session",
           "SettingsChangedError", "Update", "read_checkpoint", "rng_state", "set_rng_state"]

Log = Callable[[str], None]

#: the files a session writes in its checkpoint folder (their interrupted writes' temp files are removed at start)
CHECKPOINT_FILES = ("last.pth", "best.pth", "net_g.pth", "history.json")
#: seconds before the first time-based checkpoint at most (a smoke run has one within its first minute)
FIRST_CHECKPOINT_S = 30.0


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

    def state_dict(self) -> dict[str, Any]:
        """The sums (as Python floats: a float64 tensor's value exactly) and the sample count."""
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (adding a tensor to a float sum is the same arithmetic)."""
        self.sums, self.count = dict(state["sums"]), int(state["count"])

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
        checkpoint_dir: where ``last.pth`` goes after every epoch and every ``checkpoint_interval``
            seconds inside an epoch (None: no files). At the start, rank 0 removes the temp files
            that interrupted writes of :data:`CHECKPOINT_FILES` left there (and logs them).
        resume: continue from ``last.pth`` when it exists (at an epoch's end or inside an epoch).
        tracker: best epoch / early stopping, or None (a GAN keeps its last weights).
        history: the empty History of this run (its ``monitor`` set).
        progress, seed, log: tqdm bars; the seed of a fresh run (rank r gets ``seed + r``); one
            line per epoch (rank 0 only).
        checkpoint_interval: seconds (> 0) between time-based checkpoints inside an epoch; the first
            is due after ``min(30, checkpoint_interval)`` s. None or 0: only the end-of-epoch ones.
        log_interval: seconds; with ``log`` set and no progress bar, a line at most this often inside an
            epoch (``epoch 1/5: 40/120 batches, step 40, train_loss 0.0312, 31 s (checkpoint saved)``).
            None (the default, e.g. in notebooks): no such lines, and checkpoints print nothing.
        tensorboard: the run folder's TensorBoard event files (:mod:`labkit.train.runlog`; its CSV log is always
            written when there is a ``checkpoint_dir``): None = when the package is installed, True / False.
        settings: the run's settings (a mapping of plain JSON values), stored in every checkpoint; resuming
            a ``last.pth`` with other settings raises :class:`SettingsChangedError` (see
            :func:`labkit.train.checkpoint.check_settings`). None: nothing is stored or checked.

    Exact resume inside an epoch: a mid-epoch ``last.pth`` holds, besides the update's state, the RNG
    states taken at the start of the epoch (before the loader's iterator is created), the number of
    batches done, the :class:`EpochMeter` sums, the epoch's starting learning rates and the current
    RNG states. Resuming restores the epoch-start states, creates the iterator (the same sampler
    order), draws and discards the batches already done (no training on them; this replays the
    sampler and the data's random augmentation), then restores the current states and goes on. With
    ``num_workers=0`` the result equals an uninterrupted run bit for bit (same device and library
    versions). With workers the same batches come in the same order and each worker gets the same
    seed (drawn from the restored epoch-start state), so the run is exact as long as the dataset
    draws its randomness in the workers (as ``labkit.env.seed_worker`` seeds them); discarding the
    done batches costs their loading time. Under DDP rank 0 decides when to save and broadcasts the
    decision (one small tensor per batch); every rank's two RNG states and epoch sums are gathered
    into the file and each rank restores its own (with another number of processes: rank 0's RNG
    states, and the sums of all ranks on rank 0, so the epoch mean still covers every sample).
    """

    def __init__(self, update: Update, train_data: Any, val_data: Any = None, *, epochs: int | None,
                 steps: int | None, batch_size: int, num_workers: int, device: Any,
                 checkpoint_dir: Any, resume: bool, tracker: BestTracker | None, history: History,
                 progress: bool, seed: int | None, log: Log | None, checkpoint_interval: float | None = 300.0,
                 log_interval: float | None = None, settings: Mapping[str, Any] | None = None,
                 tensorboard: bool | None = None) -> None:
        for name, value in (("checkpoint_interval", checkpoint_interval), ("log_interval", log_interval)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not value >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")
        self.update, self.tracker, self.history = update, tracker, history
        self.epochs, self.steps, self.resume, self.seed = epochs, steps, resume, seed
        self.batch_size, self.tensorboard, self.runlog = batch_size, tensorboard, None
        self.epoch = 0  # finished epochs
        self.step = 0   # updates
        self.ddp = distributed.init_from_env(device=device)
        self.main = distributed.is_main()
        self.log: Log = (log or _silent) if self.main else _silent
        self.progress = progress and self.main
        self.checkpoint_interval = float(checkpoint_interval) if checkpoint_interval else None
        self.log_interval = float(log_interval) if log_interval and log and not progress and self.main else None
        self.settings = plain_settings(settings) if settings is not None else None
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
        self.partial: dict[str, Any] | None = None     # the mid-epoch state being resumed
        self.next_save = self.next_line = math.inf       # perf_counter times
        if self.folder is not None and self.main:
            removed = remove_stale_temp(self.folder, CHECKPOINT_FILES)
            if removed:
                self.log(f"removed {len(removed)} leftover temp file(s) of interrupted writes in {self.folder}: "
                         + ", ".join(p.name for p in removed))

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
            where = (f"in epoch {self.epoch + 1} after batch {self.partial['batches']}" if self.partial
                     else f"after epoch {self.epoch}")
            self.log(f"resuming from {self.last_path} {where} (step {self.step})")
        elif self.seed is not None:
            seed_everything(self.seed + distributed.rank())
        if self.ddp:
            self.update.wrap_ddp(self.device)
        now = time.perf_counter()
        if self.folder is not None and self.checkpoint_interval is not None:
            self.next_save = now + min(FIRST_CHECKPOINT_S, self.checkpoint_interval)
        if self.log_interval is not None:
            self.next_line = now + self.log_interval
        self._open_log()
        try:
            while not self.done():
                row = self._epoch()
                self.log(self.update.format_row(row, self.epochs, self.steps))
                if self.history.stopped_early:
                    self.log(self.tracker.stop_message(self.history))
            self._close_log()
        finally:
            if self.runlog is not None:
                self.runlog.close()
        self.update.finish(self.tracker)
        return self.history

    def _open_log(self) -> None:
        """The run folder's CSV / TensorBoard logs (rank 0, with a ``checkpoint_dir``), from the current step."""
        if self.folder is not None and self.main:
            self.runlog = RunLog(self.folder, step=self.step, tensorboard=self.tensorboard)

    def _close_log(self) -> None:
        """The run's settings and last validation values as TensorBoard hparams."""
        if self.runlog is None or not self.history.epochs:
            return
        base = {"trainer": self.update.writer, "epochs": self.epochs, "steps": self.steps,
                "batch_size": self.batch_size, "seed": self.seed}
        last = self.history.epochs[-1]
        self.runlog.hparams({**base, **(self.settings or {})},
                            {f"epoch/{k}": v for k, v in last.items() if k.startswith("val_")})

    def _log_epoch(self, row: Mapping[str, Any]) -> None:
        """The epoch's row as ``epoch/...`` scalars; validation images at epochs 1, 2, 4, ... and the last. The
        image forward passes run between saved and restored RNG states: logging leaves the run unchanged."""
        epoch = int(row["epoch"])
        self.runlog.flush()
        self.runlog.scalars(self.step, epoch, {k: v for k, v in row.items() if k not in ("epoch", "step")}, "epoch")
        if self.val_loader is not None and image_epoch(epoch, self.done()):
            state = rng_state()
            try:
                self.runlog.images(self.step, self.update.eval_model, self.val_loader, self.device)
            finally:
                set_rng_state(state, self.log)

    def _epoch(self) -> dict[str, Any]:
        """Train one epoch (or the rest of a resumed one), validate, track, step the schedulers,
        checkpoint; returns its row."""
        epoch = self.epoch + 1
        part, self.partial = self.partial, None
        t0 = time.perf_counter() - (float(part.get("seconds", 0.0)) if part else 0.0)
        lrs = dict(part["lrs"]) if part else self.update.learning_rates()
        set_epoch(self.train_loader, self.epoch)
        means = self._train_epoch(epoch, lrs, t0, part)
        train_seconds = time.perf_counter() - t0   # the batches alone: before validation and the checkpoint
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
        row["train_seconds"] = train_seconds
        if self.runlog is not None:
            self._log_epoch(row)
        if self.folder is not None:
            self._checkpoint()
        return row

    def _batches(self, part: Mapping[str, Any] | None, desc: str) -> tuple[Any, dict, int]:
        """The epoch's progress bar over the loader's batches (iterate it to train), the epoch-start RNG
        states and the number of batches already done.

        The loader's iterator is made here, once, right after the epoch-start states are taken (making it
        draws from torch's RNG); the bar only wraps it. A bar handed the loader itself would make
        iterators of its own: ``tqdm.auto``'s (Jupyter's widget bar) makes one when it is created, an extra
        RNG draw that would give another run under widgets than under text bars.
        Fresh epoch: the RNG states now, then the iterator. Resumed epoch: the checkpoint's epoch-start
        states, the iterator, the done batches drawn and discarded, then the checkpoint's current states.
        """
        done = int(part["batches"]) if part is not None else 0
        if part is not None:
            set_rng_state(part["rng_start"], self.log)
        start = rng_state()
        it = iter(self.train_loader)
        for i in range(done):
            try:
                next(it)
            except StopIteration:
                raise CheckpointError(
                    f"{self.last_path} stopped after batch {done} of epoch {self.epoch + 1}, but the training data "
                    f"now has {i} batches per epoch; {WAYS_ON}") from None
        if part is not None:
            set_rng_state(part["rng_now"], self.log)
        bar = progress_bar()(it, total=_length(self.train_loader), initial=done, desc=desc, leave=False,
                             disable=not self.progress, mininterval=1.0)
        return bar, start, done

    def _train_epoch(self, epoch: int, lrs: Mapping[str, float], t0: float,
                     part: Mapping[str, Any] | None) -> dict[str, float]:
        self.update.train_mode()
        meter = EpochMeter()
        if part is not None:
            meter.load_state_dict(part["meter"])
        desc = f"epoch {epoch}" + (f"/{self.epochs}" if self.epochs else "")
        bar, start_rng, done = self._batches(part, desc)
        total = _length(self.train_loader)
        for i, batch in enumerate(bar, start=done):
            logs, n = self.update.train_batch(batch, self.device, self.step + 1)
            self.step += 1
            meter.add(logs, n)
            if self.runlog is not None:
                self.runlog.step_values(self.step, epoch, logs, self.update.learning_rates())
            if self.progress and i % 10 == 0:
                bar.set_postfix(self.update.postfix(meter.running()))
            if self.steps is not None and self.step >= self.steps:
                break
            if i + 1 != total:
                self._between_batches(f"{desc}: {i + 1}/{total if total else '?'} batches", i + 1, meter, lrs,
                                      start_rng, t0)
        bar.close()
        return meter.means(self.device)

    def _between_batches(self, where: str, batches: int, meter: EpochMeter, lrs: Mapping[str, float],
                         start_rng: dict, t0: float) -> None:
        """A time-based checkpoint when one is due (rank 0 decides, every rank follows) and a progress line."""
        now = time.perf_counter()
        save = now >= self.next_save
        if self.ddp and self.next_save != math.inf:
            save = _broadcast_flag(save, self.device)
        if save:
            part = {"batches": batches, "meter": meter.state_dict(), "lrs": dict(lrs),
                    "seconds": now - t0, "rng_start": start_rng}
            self._write(part)
            self.next_save = time.perf_counter() + self.checkpoint_interval
        if now >= self.next_line or (save and self.log_interval is not None):
            loss = self.update.train_columns(meter.running())["train_loss"]
            self.log(f"{where}, step {self.step}, train_loss {loss:.4g}, {now - t0:.0f} s"
                     + (" (checkpoint saved)" if save else ""))
            self.next_line = time.perf_counter() + self.log_interval

    def _checkpoint(self) -> None:
        """The end-of-epoch ``last.pth`` and the update's weight files; the time-based timer restarts."""
        self._write(None)
        if self.checkpoint_interval is not None:
            self.next_save = time.perf_counter() + self.checkpoint_interval

    def _write(self, part: dict[str, Any] | None) -> None:
        """``last.pth`` (atomic, rank 0, with every rank's RNG states); all ranks wait for it.

        ``part``: None at the end of an epoch, else the mid-epoch state (``batches``, ``meter``,
        ``lrs``, ``seconds``, ``rng_start``); under DDP every rank's epoch-start states and epoch sums
        go to ``rng_start_ranks`` and ``meter_ranks``.
        """
        self.update.before_checkpoint()
        mine = (rng_state(), part["rng_start"], part["meter"]) if part is not None else (rng_state(),)
        ranks = distributed.gather_objects(mine) if self.ddp else None
        if self.main:
            ck = {"format": self.update.checkpoint_format, "epoch": self.epoch, "global_step": self.step,
                  **self.update.state_dict(), "history": self.history.to_dict(),
                  **(self.tracker.state_dict() if self.tracker is not None else {}), "rng": mine[0],
                  "settings": self.settings, "partial": part}
            if ranks is not None:
                ck["rng_ranks"] = [r[0] for r in ranks]
                if part is not None:
                    part["rng_start_ranks"] = [r[1] for r in ranks]
                    part["meter_ranks"] = [r[2] for r in ranks]
            atomic_save(ck, self.last_path)
            if part is None:
                self.update.save_weights(self.folder)
        distributed.barrier()  # the checkpoint is on disk before any rank goes on

    def _restore(self) -> None:
        path = self.last_path
        ck = read_checkpoint(path, self.update.checkpoint_format, self.update.writer)
        check_settings(ck.get("settings"), self.settings, path, self.log)
        try:
            self.update.load_state_dict(ck, path, self.log)
            self.history = History.from_dict(ck["history"])
            self.epoch, self.step = int(ck["epoch"]), int(ck["global_step"])
            if self.tracker is not None:
                self.tracker.load_state_dict(ck)
            part = ck.get("partial")
            if part is not None:
                self.partial = {**part, "meter": self._own_meter(part),
                                "rng_start": self._own_rng(part["rng_start"], part.get("rng_start_ranks"), _silent)}
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"the training checkpoint {path} does not fit these networks/optimizers/schedulers "
                f"({type(e).__name__}: {e}); {WAYS_ON}"
            ) from e
        now = self._own_rng(ck["rng"], ck.get("rng_ranks"), self.log)
        set_rng_state(now, self.log)
        if self.partial is not None:
            self.partial["rng_now"] = now

    def _own_meter(self, part: Mapping[str, Any]) -> dict[str, Any]:
        """This rank's epoch sums from a mid-epoch checkpoint: its own under DDP with the same number of
        processes; with another number, rank 0 takes every rank's totals and the others start empty (the
        epoch mean is still over all samples)."""
        ranks = part.get("meter_ranks") or [part["meter"]]
        if len(ranks) == distributed.world_size():
            return ranks[distributed.rank()]
        if not self.main:
            return {"sums": {}, "count": 0}
        totals: dict[str, float] = {}
        for m in ranks:
            for k, v in m["sums"].items():
                totals[k] = totals.get(k, 0.0) + v
        return {"sums": totals, "count": sum(int(m["count"]) for m in ranks)}

    def _own_rng(self, rank0: dict, ranks: list | None, log: Log) -> dict:
        """This rank's RNG states from a checkpoint: its own under DDP when the file has every rank's
        (``*_ranks``, same number of processes), else rank 0's (with a note under DDP)."""
        if not self.ddp:
            return rank0
        if ranks is not None and len(ranks) == distributed.world_size():
            return ranks[distributed.rank()]
        log(f"note: the checkpoint has RNG states for {len(ranks) if ranks else 1} process(es), "
            f"this run has {distributed.world_size()}: every rank restores rank 0's")
        return rank0


def _length(loader: DataLoader) -> int | None:
    """Batches per epoch, or None when the loader cannot tell (an iterable dataset)."""
    try:
        return len(loader)
    except TypeError:
        return None


def _broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (one 1-element tensor; on the GPU under NCCL)."""
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device if device.type == "cuda" else "cpu")
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())


def _silent(_msg: str) -> None:
    """A log that says nothing (ranks other than 0, or ``log=None``)."""
