"""``fit()``: the supervised training loop every notebook uses, and its ``History``.

One loop, the features the write-ups need and nothing clever: mixed precision, gradient clipping,
an LR scheduler stepped per epoch (or per step), early stopping with the best weights restored
(Keras ``EarlyStopping(patience=2, restore_best_weights=True)`` as in the 000 write-up), an EMA of
the weights (BasicSR ``ema_decay``), atomic checkpoints and exact resume.

Resume is exact: ``last.pth`` holds the model, optimizer, scheduler, grad scaler, EMA, counters,
history, best weights and the RNG states (Python, NumPy, torch CPU and CUDA) at the end of an epoch,
so a run interrupted at any point and resumed ends with the same weights as an uninterrupted one
(same device and library versions; data loaders must draw their randomness from those RNGs, as a
``DataLoader(shuffle=True)`` without an explicit ``generator`` does).

Data-parallel training: ``fit`` runs unchanged under ``torchrun --nproc_per_node=N`` (see
:func:`fit`'s "Distributed" paragraph and :mod:`labkit.distributed`); in a single process nothing
of it is active and the loop is exactly the one described above.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
import tqdm as _tqdm
import tqdm.auto as _tqdm_auto

from labkit import distributed
from labkit.env import amp_dtype, autocast, pick_device, seed_everything, seed_worker
from labkit.losses import loss_mix, make_loss
from labkit.metrics import psnr_tensor
from labkit.weights import atomic_save, save_state_dict

__all__ = ["CheckpointError", "History", "fit"]

CHECKPOINT_FORMAT = "labkit.fit/1"
_MONITORS = ("val_psnr", "val_loss", "train_loss")


class CheckpointError(RuntimeError):
    """A training checkpoint cannot be read or does not fit the model / optimizer (names the file)."""


def _higher_is_better(metric: str) -> bool:
    return any(s in metric for s in ("psnr", "ssim", "score", "acc"))


@dataclass
class History:
    """What :func:`fit` records: one dict per epoch plus the early-stopping outcome.

    Attributes:
        epochs: one row per finished epoch: ``epoch`` (1-based), ``step`` (optimizer steps so far),
            ``train_loss`` (mean over the epoch's samples), ``val_loss`` and ``val_psnr`` (dB; None
            without validation data), ``lr`` (first param group, at the start of the epoch),
            ``seconds`` (wall time of the epoch, validation included).
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
        """Write :meth:`to_dict` as JSON (parent folders created). Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

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
        return max(values) if _higher_is_better(metric or self.monitor) else min(values)

    def plot(self, ax: Any = None) -> Any:
        """Loss curves (train, val) on ``ax`` and validation PSNR on a twin axis; returns ``ax``.

        The best epoch is marked with a dotted vertical line. Needs matplotlib.
        """
        import matplotlib.pyplot as plt

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


# ----------------------------------------------------------------------------- data helpers


def _as_loader(data: Any, *, batch_size: int, shuffle: bool, num_workers: int,
               device: torch.device, name: str, shard: bool = False, seed: int | None = None) -> DataLoader:
    """A DataLoader over ``data`` (a DataLoader is returned as given).

    ``shard=True`` in a distributed run: a :class:`DistributedSampler` (shuffled with ``seed``,
    padded so that every rank gets the same number of samples) and ``batch_size`` is the global
    batch, split evenly over the ranks (ValueError when it does not divide).
    """
    if isinstance(data, DataLoader):
        return data
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise TypeError(f"{name} must be a Dataset (with __len__/__getitem__) or a DataLoader, "
                        f"got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    if shard and distributed.is_distributed():
        world = distributed.world_size()
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} is the global batch and must be divisible by "
                             f"the number of processes ({world})")
        sampler = DistributedSampler(data, num_replicas=world, rank=distributed.rank(),
                                     shuffle=shuffle, seed=seed or 0)
        return DataLoader(data, batch_size=batch_size // world, sampler=sampler, num_workers=num_workers,
                          worker_init_fn=seed_worker, pin_memory=device.type == "cuda")
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      worker_init_fn=seed_worker, pin_memory=device.type == "cuda")


def _set_epoch(loader: DataLoader, epoch: int) -> None:
    """Start epoch ``epoch`` (0-based): ``DistributedSampler.set_epoch`` (a new shuffle each epoch,
    the same on every rank), and ``set_epoch`` of the dataset's ``augment`` when it has one (001's
    :class:`labkit.data.augment.AdaptiveAugment`), so that an epoch-dependent augmentation follows
    the loop's epochs on every rank, in DataLoader workers (they copy the dataset when the epoch's
    iteration starts, after this call) and after a resume."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    dataset = getattr(loader, "dataset", None)
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    set_aug_epoch = getattr(getattr(dataset, "augment", None), "set_epoch", None)
    if callable(set_aug_epoch):
        set_aug_epoch(epoch)


def _unpack(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) from a BasicSR dict {'lq', 'gt'} or an (input, target) tuple."""
    if isinstance(batch, Mapping):
        if "lq" not in batch or "gt" not in batch:
            raise ValueError(f"a dict batch needs 'lq' and 'gt' keys, got {list(batch)}")
        x, y = batch["lq"], batch["gt"]
    elif isinstance(batch, (list, tuple)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise TypeError(f"a batch must be a dict {{'lq', 'gt'}} or an (input, target) tuple, "
                        f"got {type(batch).__name__}")
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _outputs(out: Any) -> list[torch.Tensor]:
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise TypeError("the model must return a tensor or a non-empty list/tuple of tensors")
    return [o.float() for o in outs]


def _loss_over(loss_fn: Callable, outs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    total = loss_fn(outs[0], target)
    for o in outs[1:]:
        total = total + loss_fn(o, target)
    return total


# ----------------------------------------------------------------------------- RNG and EMA


def _rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: Mapping, log: Callable[[str], None]) -> None:
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


def _make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- run state


def _progress_bar():
    """tqdm's class for this session: notebook widgets (``tqdm.auto``) unless ``LABKIT_PROGRESS=text``.

    Headless notebook runs (nbval in CI) have no widget front end; there plain text bars are
    lighter and never wait on a front end, so the test setup sets ``LABKIT_PROGRESS=text``.
    """
    if os.environ.get("LABKIT_PROGRESS", "auto").lower() == "text":
        return _tqdm.tqdm
    return _tqdm_auto.tqdm


@dataclass
class _Run:
    history: History
    epoch: int = 0  # finished epochs
    step: int = 0  # optimizer steps
    best_value: float | None = None
    best_state: dict | None = None
    bad_epochs: int = 0


def _done(run: _Run, epochs: int | None, steps: int | None) -> bool:
    return (run.history.stopped_early
            or (epochs is not None and run.epoch >= epochs)
            or (steps is not None and run.step >= steps))


def _read_checkpoint(path: Path, fmt: str = CHECKPOINT_FORMAT,
                     writer: str = "labkit.train.fit") -> dict:
    """Load a training checkpoint written by ``writer`` whose ``format`` is ``fmt`` (CheckpointError)."""
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


def _restore(ck: dict, path: Path, run: _Run, model: nn.Module, optimizer: Any, scheduler: Any,
             scaler: Any, ema: nn.Module | None, log: Callable[[str], None]) -> None:
    try:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None:
            if ck.get("scheduler") is None:
                log(f"note: {path} has no scheduler state; the scheduler starts fresh")
            else:
                scheduler.load_state_dict(ck["scheduler"])
        if ck.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ck["scaler"])
        if ema is not None:
            ema.load_state_dict(ck["ema"] if ck.get("ema") is not None else ck["model"])
        run.history = History.from_dict(ck["history"])
        run.epoch, run.step = int(ck["epoch"]), int(ck["global_step"])
        run.best_value, run.best_state = ck.get("best_value"), ck.get("best_state")
        run.bad_epochs = int(ck.get("bad_epochs", 0))
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"the training checkpoint {path} does not fit this model/optimizer/scheduler "
            f"({type(e).__name__}: {e}); use another checkpoint_dir or resume=False"
        ) from e
    _set_rng_state(ck["rng"], log)


def _restore_rank_rng(ck: dict, log: Callable[[str], None]) -> None:
    """In a distributed run, restore this rank's own RNG states (``rng_ranks``) if the checkpoint has them."""
    if not distributed.is_distributed():
        return
    states = ck.get("rng_ranks")
    if states is not None and len(states) == distributed.world_size():
        _set_rng_state(states[distributed.rank()], log)
    else:
        log(f"note: the checkpoint has RNG states for {len(states) if states else 1} process(es), "
            f"this run has {distributed.world_size()}: every rank restores rank 0's")


def _checkpoint(run: _Run, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                ema: nn.Module | None) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": run.epoch,
        "global_step": run.step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "ema": ema.state_dict() if ema is not None else None,
        "history": run.history.to_dict(),
        "best_value": run.best_value,
        "best_state": run.best_state,
        "bad_epochs": run.bad_epochs,
        "rng": _rng_state(),
    }


def _finish(run: _Run, model: nn.Module, ema: nn.Module | None, restore_best: bool) -> None:
    if restore_best and run.best_state is not None:
        model.load_state_dict(run.best_state)
    elif ema is not None:
        model.load_state_dict(ema.state_dict())


# ----------------------------------------------------------------------------- epochs


def _train_epoch(model, loader, loss_fn, optimizer, scheduler, scaler, ema, *, run, device, amp,
                 grad_clip, ema_decay, step_scheduler, steps, progress, desc) -> float:
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    bar = _progress_bar()(loader, desc=desc, leave=False, disable=not progress, mininterval=1.0)
    for i, batch in enumerate(bar):
        x, y = _unpack(batch, device)
        with autocast(device, enabled=amp):
            out = model(x)
        loss = _loss_over(loss_fn, _outputs(out), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if ema is not None:
            _ema_update(ema, model, ema_decay)
        if step_scheduler:
            scheduler.step()
        run.step += 1
        total += loss.detach().double() * x.shape[0]
        count += x.shape[0]
        if progress and i % 10 == 0:
            bar.set_postfix(loss=f"{float(total) / count:.4g}")
        if steps is not None and run.step >= steps:
            break
    bar.close()
    if count == 0:
        raise ValueError("the training data produced no batches")
    if distributed.is_distributed():  # the mean over every rank's samples
        both = distributed.all_reduce_sum(torch.stack([total, total.new_tensor(float(count))]))
        return float(both[0]) / float(both[1])
    return float(total) / count


@torch.no_grad()
def _validate(model, loader, loss_fn, *, device, amp, crop_border, y_channel) -> tuple[float, float]:
    model.eval()
    loss_sum = psnr_sum = 0.0
    count = 0
    for batch in loader:
        x, y = _unpack(batch, device)
        with autocast(device, enabled=amp):
            out = model(x)
        outs = _outputs(out)
        n = x.shape[0]
        loss_sum += float(_loss_over(loss_fn, outs, y)) * n
        psnr_sum += float(psnr_tensor(outs[-1].clamp(0, 1), y, crop_border=crop_border,
                                      y_channel=y_channel)) * n
        count += n
    if count == 0:
        raise ValueError("the validation data produced no batches")
    return loss_sum / count, psnr_sum / count


def _fmt(row: dict, epochs: int | None, steps: int | None) -> str:
    head = f"epoch {row['epoch']}" + (f"/{epochs}" if epochs else "")
    if steps:
        head += f" (step {row['step']}/{steps})"
    parts = [head, f"train_loss {row['train_loss']:.5g}"]
    if row["val_loss"] is not None:
        parts += [f"val_loss {row['val_loss']:.5g}", f"val_psnr {row['val_psnr']:.2f} dB"]
    parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f} s"]
    return "  ".join(parts)


# ----------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    loss: Callable | str | Mapping,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    early_stopping: int | None = None,
    monitor: str = "val_psnr",
    restore_best: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    grad_clip: float | None = None,
    ema_decay: float | None = None,
    amp: bool = False,
    val_crop_border: int = 0,
    val_y_channel: bool = False,
    progress: bool = True,
    seed: int | None = None,
    log: Callable[[str], None] | None = print,
) -> History:
    """Train ``model`` (in place) with supervised pairs; return the :class:`History`.

    Args:
        model: the network; moved to ``device``. Its forward may return a tensor or a list/tuple of
            tensors (multi-stage nets such as HINet): the loss is summed over the outputs and the
            last one is the prediction.
        train_data: a Dataset (wrapped in ``DataLoader(batch_size, shuffle=True, num_workers)``)
            or a DataLoader used as given. Batches are dicts ``{'lq', 'gt'}`` (BasicSR naming,
            other keys ignored) or ``(input, target)`` tuples; NCHW float tensors.
        val_data: the same for validation (a Dataset is loaded with batch size 1), or None.
        loss: ``(pred, target) -> 0-d tensor`` (e.g. ``loss_mix({'l1': 2, 'l2': 1})``), a loss name
            or a ``{name: weight}`` mapping (passed to :func:`labkit.losses.loss_mix`).
        optimizer: a built optimizer over ``model``'s parameters (e.g. Adam).
        scheduler: a built LR scheduler or None. It steps once per epoch after validation
            (``scheduler_interval='epoch'``, so ``StepLR(step_size=3)`` counts epochs as in the
            write-ups) or after every optimizer step (``'step'``). ``ReduceLROnPlateau`` gets
            the monitored value (epoch interval only).
        epochs: number of epochs; steps: cap on optimizer steps (the loop stops mid-epoch when it
            is reached; that partial epoch is validated and recorded). At least one is required.
        early_stopping: patience in epochs, or None. Training stops once ``monitor`` has not
            improved (strictly) for ``patience`` consecutive epochs.
        monitor: ``'val_psnr'`` (higher is better), ``'val_loss'`` or ``'train_loss'`` (lower is
            better). Without ``val_data`` a ``val_*`` monitor disables best-epoch tracking (and is
            an error together with ``early_stopping``).
        restore_best: the best epoch's weights are kept in memory (CPU) and loaded into ``model``
            at the end (default True); with ``ema_decay`` they are the EMA weights. If False (or
            nothing is tracked) the model ends with the last weights (the EMA weights with EMA).
        checkpoint_dir: when given, ``last.pth`` is written atomically after every epoch (model,
            optimizer, scheduler, scaler, EMA, epoch, step, history, best weights, early-stopping
            counters, RNG states) and ``best.pth`` (model weights only, loadable with
            :func:`labkit.weights.load_weights`) whenever ``monitor`` improves.
        resume: with ``checkpoint_dir``, continue from ``last.pth`` if it exists (the seed is not
            re-applied: the saved RNG states are restored). A finished run (all epochs / steps
            done, or stopped early) loads its final weights and returns its history without
            training. ``resume=False`` starts over and overwrites the files.
        device: ``labkit.env.pick_device`` argument (None = CUDA > MPS > CPU).
        grad_clip: max global L2 norm of the gradients (``clip_grad_norm_``), or None.
        ema_decay: e.g. 0.999: an exponential moving average of the weights (buffers copied) is
            updated after each step, used for validation, and is what the model ends with.
        amp: mixed precision on CUDA (bf16 where supported; fp16 with a GradScaler otherwise);
            a no-op on CPU/MPS. Losses are computed in float32.
        val_crop_border, val_y_channel: passed to :func:`labkit.metrics.psnr_tensor` (outputs are
            clamped to [0, 1]; PSNR is averaged per image).
        progress: a tqdm bar per epoch. seed: seeds Python/NumPy/torch at the start of a fresh run.
        log: called with one line per epoch (None: silent).

    Distributed (``torchrun --nproc_per_node=N``; nothing of this is active in one process):
        - the process group is joined from torchrun's environment
          (:func:`labkit.distributed.init_from_env`: NCCL on CUDA with ``cuda:$LOCAL_RANK``, gloo
          on CPU) and the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
          for the training forward/backward (gradients averaged over the ranks);
        - ``batch_size`` is the **global** batch: each of the N processes loads ``batch_size / N``
          samples per step (ValueError if N does not divide it), so N processes with
          ``batch_size=B`` take the same optimizer steps as one process with ``B`` (for losses
          that are means over the batch). A Dataset gets a :class:`DistributedSampler` (shuffled
          with ``seed``, default 0, and ``set_epoch`` every epoch; padded so every rank has the
          same number of steps). A user-given DataLoader is used as given: its batch size is per
          process and sharding is up to it (a ``DistributedSampler`` in it gets ``set_epoch``);
        - ``train_loss`` is the mean over every rank's samples (all-reduced once per epoch);
        - rank 0 alone validates (the val data are not sharded), shows progress bars, logs and
          writes ``last.pth`` / ``best.pth`` (atomically); its validation numbers are broadcast,
          so the best epoch, early stopping (decided on rank 0's numbers and broadcast) and a
          ``ReduceLROnPlateau`` step agree on every rank. All ranks wait until a checkpoint is on
          disk before the next epoch starts;
        - resume: every rank reads the same ``last.pth``; it holds every rank's RNG states
          (``rng_ranks``) and each rank restores its own (with another number of processes the
          rank-0 states are used and a note is logged). A fresh run seeds rank r with
          ``seed + r``, so augmentations differ between ranks; model weights are made equal by
          DDP (rank 0's are broadcast when it wraps the model);
        - SyncBatchNorm is not needed: none of labkit's restoration networks (EDSR, MSRResNet,
          RRDBNet, SwinIR, HINet, NAFNet, the inpainting generator) has batch normalisation
          (SwinIR uses LayerNorm, HINet instance norm, NAFNet its LayerNorm2d);
        - DDP runs with ``find_unused_parameters=False``: every parameter must get a gradient.

    Returns: the History (also inside ``last.pth``).

    Raises:
        ValueError: neither epochs nor steps, bad arguments, empty data, non-finite training loss.
        CheckpointError (a RuntimeError): ``last.pth`` is corrupt or does not fit (names the file).
    """
    log = log or (lambda _msg: None)
    if epochs is None and steps is None:
        raise ValueError("fit needs epochs or steps (or both)")
    for name, v in (("epochs", epochs), ("steps", steps), ("early_stopping", early_stopping)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}")
    if monitor not in _MONITORS:
        raise ValueError(f"monitor must be one of {_MONITORS}, got {monitor!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_interval == "step":
        raise ValueError("ReduceLROnPlateau needs scheduler_interval='epoch'")
    if ema_decay is not None and not 0.0 < ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
    if grad_clip is not None and grad_clip <= 0:
        raise ValueError(f"grad_clip must be > 0, got {grad_clip}")
    track: str | None = monitor
    if val_data is None and monitor.startswith("val_"):
        if early_stopping is not None:
            raise ValueError(f"early_stopping on {monitor!r} needs val_data "
                             "(or monitor='train_loss')")
        track = None
    if isinstance(loss, str):
        loss = make_loss(loss)
    elif isinstance(loss, Mapping):
        loss = loss_mix(loss)
    if not callable(loss):
        raise TypeError(f"loss must be callable, a name or a {{name: weight}} mapping, got {loss!r}")

    ddp = distributed.init_from_env()
    main = distributed.is_main()
    if not main:
        log = lambda _msg: None  # noqa: E731 (rank 0 logs)
    dev = distributed.device_for_rank(pick_device(device))
    model.to(dev)
    if isinstance(loss, nn.Module):
        loss.to(dev)
    train_loader = _as_loader(train_data, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                              device=dev, name="train_data", shard=True, seed=seed)
    if ddp and isinstance(train_data, DataLoader) and not isinstance(train_data.sampler, DistributedSampler):
        log("note: train_data is a DataLoader without a DistributedSampler: every rank reads all of it")
    val_loader = None if val_data is None or not main else _as_loader(
        val_data, batch_size=1, shuffle=False, num_workers=num_workers, device=dev, name="val_data")
    use_fp16 = bool(amp) and amp_dtype(dev) == torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)
    ema = _make_ema(model) if ema_decay is not None else None
    run = _Run(history=History(monitor=track or monitor))

    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    last_path = ckdir / "last.pth" if ckdir else None
    if last_path is not None and resume and last_path.exists():
        ck = _read_checkpoint(last_path)
        _restore(ck, last_path, run, model, optimizer, scheduler, scaler, ema, log)
        _restore_rank_rng(ck, log)
        if _done(run, epochs, steps):
            _finish(run, model, ema, restore_best)
            log(f"{last_path}: the run already finished after epoch {run.epoch} "
                f"(step {run.step}); nothing to train")
            return run.history
        log(f"resuming from {last_path} after epoch {run.epoch} (step {run.step})")
    elif seed is not None:
        seed_everything(seed + distributed.rank())
    net = model
    if ddp:
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    higher = _higher_is_better(track) if track else True
    eval_model = ema if ema is not None else model
    while not _done(run, epochs, steps):
        epoch = run.epoch + 1
        t0 = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        desc = f"epoch {epoch}" + (f"/{epochs}" if epochs else "")
        _set_epoch(train_loader, run.epoch)
        train_loss = _train_epoch(
            net, train_loader, loss, optimizer, scheduler, scaler, ema, run=run, device=dev,
            amp=amp, grad_clip=grad_clip, ema_decay=ema_decay,
            step_scheduler=scheduler is not None and scheduler_interval == "step",
            steps=steps, progress=progress and main, desc=desc)
        if not math.isfinite(train_loss):
            raise ValueError(f"the training loss became {train_loss} in epoch {epoch} "
                             f"(step {run.step}); lower the learning rate or check the data")
        val_loss = val_psnr = None
        if val_loader is not None:
            val_loss, val_psnr = _validate(eval_model, val_loader, loss, device=dev, amp=amp,
                                           crop_border=val_crop_border, y_channel=val_y_channel)
        if ddp and val_data is not None:
            val_loss, val_psnr = distributed.broadcast_object((val_loss, val_psnr))
        row = {"epoch": epoch, "step": run.step, "train_loss": train_loss, "val_loss": val_loss,
               "val_psnr": val_psnr, "lr": lr, "seconds": 0.0}
        run.history.epochs.append(row)
        run.epoch = epoch

        if track is not None:
            value = row[track]
            improved = not math.isnan(value) and (
                run.best_value is None or (value > run.best_value if higher else value < run.best_value))
            if improved:
                run.best_value, run.history.best_epoch, run.bad_epochs = value, epoch, 0
                run.best_state = _cpu_state(eval_model)
                if ckdir is not None and main:
                    save_state_dict(run.best_state, ckdir / "best.pth")
            else:
                run.bad_epochs += 1
                if early_stopping is not None and run.bad_epochs >= early_stopping:
                    run.history.stopped_early = True
            if ddp:  # rank 0's decision for everyone
                run.history.stopped_early = distributed.broadcast_object(run.history.stopped_early)
        if scheduler is not None and scheduler_interval == "epoch":
            if plateau:
                scheduler.step(row[track or "train_loss"])
            else:
                scheduler.step()
        row["seconds"] = time.perf_counter() - t0
        if ckdir is not None:
            rng_ranks = distributed.gather_objects(_rng_state()) if ddp else None
            if main:
                ck = _checkpoint(run, model, optimizer, scheduler, scaler, ema)
                if rng_ranks is not None:
                    ck["rng_ranks"] = rng_ranks
                atomic_save(ck, last_path)
            distributed.barrier()  # the checkpoint is on disk before any rank goes on
        log(_fmt(row, epochs, steps))
        if run.history.stopped_early:
            log(f"early stopping: {track} did not improve for {early_stopping} epochs; "
                f"best epoch {run.history.best_epoch}")

    _finish(run, model, ema, restore_best)
    return run.history


if __name__ == "__main__":  # python -m labkit.train NN ... (the script torchrun launches)
    import sys

    from labkit.cli import main as _cli_main

    sys.exit(_cli_main(["train", *sys.argv[1:]]))
