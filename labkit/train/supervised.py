"""``fit()``: the supervised training loop every notebook uses.

One loop, the features the write-ups need and nothing clever: mixed precision, gradient clipping,
an LR scheduler stepped per epoch (or per step), early stopping with the best weights restored
(Keras ``EarlyStopping(patience=2, restore_best_weights=True)`` as in the 000 write-up), an EMA of
the weights (BasicSR ``ema_decay``), atomic checkpoints and exact resume.

:class:`SupervisedUpdate` is the one step (forward, loss, backward, optimizer, EMA); the loop,
resume, checkpoints and DDP are :class:`labkit.train.session.Session`'s, shared with
:func:`labkit.train.gan.fit_gan`. Data-parallel training: ``fit`` runs unchanged under
``torchrun --nproc_per_node=N`` (see :func:`fit`'s "Distributed" paragraph and
:mod:`labkit.distributed`); in a single process nothing of it is active.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from labkit.env import amp_dtype, autocast
from labkit.losses import loss_mix, make_loss
from labkit.train.batches import loss_over, outputs, unpack, validate
from labkit.train.history import History
from labkit.train.session import BestTracker, Session, Update

__all__ = ["CHECKPOINT_FORMAT", "MONITORS", "SupervisedUpdate", "fit"]

CHECKPOINT_FORMAT = "labkit.fit/1"
MONITORS = ("val_psnr", "val_loss", "train_loss")



def loss_sum_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype an epoch's loss sum is kept in on ``device`` until it is read: float64 (exact per-sample means),
    except on Apple GPUs (MPS), which have no float64 (float32 there)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64

class SupervisedUpdate(Update):
    """One supervised step: ``loss(model(lq), gt)`` summed over the outputs, backward, optimizer.

    With ``amp`` on CUDA: autocast (bf16 where supported, else fp16 with a GradScaler); with
    ``grad_clip``: ``clip_grad_norm_`` (after unscaling); with ``ema_decay``: an EMA copy of the
    weights updated after each step (buffers copied), used for validation and the result;
    ``scheduler_interval='step'`` steps the scheduler after every update, ``'epoch'`` after
    validation (``ReduceLROnPlateau`` gets the monitored value). The arguments are :func:`fit`'s.
    """

    checkpoint_format = CHECKPOINT_FORMAT
    writer = "labkit.train.fit"

    def __init__(self, model: nn.Module, loss: Callable, optimizer: torch.optim.Optimizer, scheduler: Any,
                 scheduler_interval: str, *, amp: bool, grad_clip: float | None, ema_decay: float | None,
                 restore_best: bool, val_crop_border: int, val_y_channel: bool, channels_last: bool = False) -> None:
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.step_per_batch = scheduler is not None and scheduler_interval == "step"
        self.step_per_epoch = scheduler is not None and scheduler_interval == "epoch"
        self.plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.amp, self.grad_clip, self.ema_decay, self.restore_best = amp, grad_clip, ema_decay, restore_best
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.crop_border, self.y_channel = val_crop_border, val_y_channel
        self.net: nn.Module = model  # what trains: the model, or its DDP wrapper
        self.ema: nn.Module | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.device: torch.device | None = None

    def to(self, device: torch.device) -> None:
        self.device = device
        self.model.to(device, memory_format=self.memory_format)   # the same Parameters: the optimizer keeps them
        if isinstance(self.loss, nn.Module):
            self.loss.to(device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=bool(self.amp) and amp_dtype(device) == torch.float16)
        if self.ema_decay is not None:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)

    def wrap_ddp(self, device: torch.device) -> None:
        self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)

    def learning_rates(self) -> dict[str, float]:
        return {"lr": float(self.optimizer.param_groups[0]["lr"])}

    def train_mode(self) -> None:
        self.net.train()

    def train_batch(self, batch: Any, device: torch.device, step: int) -> tuple[dict[str, Any], int]:
        x, y = unpack(batch, device)
        if x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        with autocast(device, enabled=self.amp):
            out = self.net(x)
        loss = loss_over(self.loss, outputs(out), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self._ema_update()
        if self.step_per_batch:
            self.scheduler.step()
        return {"train_loss": loss.detach().to(loss_sum_dtype(device))}, x.shape[0]

    @torch.no_grad()
    def _ema_update(self) -> None:
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach(), 1.0 - self.ema_decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def postfix(self, means: Mapping[str, float]) -> dict[str, str]:
        return {"loss": f"{means['train_loss']:.4g}"}

    def train_columns(self, means: Mapping[str, float]) -> dict[str, Any]:
        return {"train_loss": means["train_loss"]}

    def validate(self, loader: DataLoader | None, device: torch.device) -> dict[str, float | None]:
        if loader is None:
            return {"val_loss": None, "val_psnr": None}
        val_loss, val_psnr = validate(self.eval_model, loader, self.loss, device=device, amp=self.amp,
                                      crop_border=self.crop_border, y_channel=self.y_channel)
        return {"val_loss": val_loss, "val_psnr": val_psnr}

    @property
    def eval_model(self) -> nn.Module:
        return self.ema if self.ema is not None else self.model

    def end_epoch(self, monitored: float | None) -> None:
        if self.step_per_epoch:
            if self.plateau:
                self.scheduler.step(monitored)
            else:
                self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, ck: Mapping[str, Any], path: Path, log: Callable[[str], None]) -> None:
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None:
            if ck.get("scheduler") is None:
                log(f"note: {path} has no scheduler state; the scheduler starts fresh")
            else:
                self.scheduler.load_state_dict(ck["scheduler"])
        if ck.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ck["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"] if ck.get("ema") is not None else ck["model"])

    def finish(self, tracker: BestTracker | None) -> None:
        if self.restore_best and tracker is not None and tracker.best_state is not None:
            self.model.load_state_dict(tracker.best_state)
        elif self.ema is not None:
            self.model.load_state_dict(self.ema.state_dict())

    def format_row(self, row: Mapping[str, Any], epochs: int | None, steps: int | None) -> str:
        head = f"epoch {row['epoch']}" + (f"/{epochs}" if epochs else "")
        if steps:
            head += f" (step {row['step']}/{steps})"
        parts = [head, f"train_loss {row['train_loss']:.5g}"]
        if row["val_loss"] is not None:
            parts += [f"val_loss {row['val_loss']:.5g}", f"val_psnr {row['val_psnr']:.2f} dB"]
        parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.1f} s"]
        return "  ".join(parts)


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
    channels_last: bool = False,
    val_crop_border: int = 0,
    val_y_channel: bool = False,
    progress: bool = True,
    seed: int | None = None,
    log: Callable[[str], None] | None = print,
    checkpoint_interval: float | None = 300.0,
    log_interval: float | None = None,
    settings: Mapping[str, Any] | None = None,
    tensorboard: bool | None = None,
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
        checkpoint_dir: when given, ``last.pth`` is written atomically after every epoch and every
            ``checkpoint_interval`` seconds inside an epoch (model, optimizer, scheduler, scaler, EMA,
            epoch, step, history, best weights, early-stopping counters, RNG states, ``settings``;
            inside an epoch also the batches done and the epoch's running sums) and ``best.pth``
            (model weights only, loadable with :func:`labkit.weights.load_weights`) whenever
            ``monitor`` improves. Leftover temp files of interrupted writes there are removed at the start.
        resume: with ``checkpoint_dir``, continue from ``last.pth`` if it exists (the seed is not
            re-applied: the saved RNG states are restored), also from inside an epoch, bit for bit
            with ``num_workers=0`` (see :class:`labkit.train.session.Session`). A finished run (all
            epochs / steps done, or stopped early) loads its final weights and returns its history
            without training. ``resume=False`` starts over and overwrites the files. Safe to change
            on resume: ``steps`` / ``epochs`` (to extend a run), ``num_workers``, ``device``,
            ``checkpoint_interval``, ``progress``, ``log``.
        device: ``labkit.env.pick_device`` argument (None = CUDA > MPS > CPU).
        grad_clip: max global L2 norm of the gradients (``clip_grad_norm_``), or None.
        ema_decay: e.g. 0.999: an exponential moving average of the weights (buffers copied) is
            updated after each step, used for validation, and is what the model ends with.
        amp: mixed precision on CUDA (bf16 where supported; fp16 with a GradScaler otherwise);
            a no-op on CPU/MPS. Losses are computed in float32.
        channels_last: keep the model's 4-D weights and the training batches in NHWC memory
            (``torch.channels_last``): the same arithmetic in another order, so results differ from
            the default layout in the last bits. Convolutional nets train ~20 % faster per step on
            the smoke models on a 2-core CPU (``labkit bench --section cpu``); transformers gain
            nothing. The model is left in that layout.
        val_crop_border, val_y_channel: passed to :func:`labkit.metrics.psnr_tensor` (outputs are
            clamped to [0, 1]; PSNR is averaged per image).
        progress: a tqdm bar per epoch. seed: seeds Python/NumPy/torch at the start of a fresh run.
        log: called with one line per epoch (None: silent).
        checkpoint_interval: seconds between time-based ``last.pth`` writes inside an epoch (default
            300; the first after ``min(30, checkpoint_interval)`` s); None or 0: at the end of epochs
            only. Saving changes no number of the run.
        log_interval: seconds; with ``log`` and ``progress=False``, a progress line at most this often
            inside an epoch (``labkit train`` sets 30). None (default): none, and saving prints nothing.
        settings: the run's settings (plain JSON values: hyper-parameters, data root and its
            fingerprint, code version), stored in every checkpoint. Resuming a ``last.pth`` stored with
            other settings raises :class:`labkit.train.SettingsChangedError` listing each difference
            (a different ``code_version`` is only a logged note); a checkpoint without settings
            resumes with a note. None: nothing is stored or checked.
        tensorboard: with a ``checkpoint_dir``, the run folder holds ``train_log.csv`` (always) and TensorBoard
            event files (:mod:`labkit.train.runlog`: step losses and learning rates, the epoch rows, validation
            images at epochs 1, 2, 4, ..., the settings as hparams): None (default) = when the ``tensorboard``
            package is installed and ``$LABKIT_TENSORBOARD`` is not 0; True / False. Rank 0 only. Logging
            changes no number of the run.

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
        CheckpointError (a RuntimeError): ``last.pth`` is corrupt or does not fit (names the file);
            its subclass SettingsChangedError: ``last.pth`` was trained with other ``settings``.
    """
    if epochs is None and steps is None:
        raise ValueError("fit needs epochs or steps (or both)")
    _check_counts(epochs=epochs, steps=steps, early_stopping=early_stopping)
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and scheduler_interval == "step":
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
    update = SupervisedUpdate(model, _as_loss(loss), optimizer, scheduler, scheduler_interval, amp=amp,
                              grad_clip=grad_clip, ema_decay=ema_decay, restore_best=restore_best,
                              val_crop_border=val_crop_border, val_y_channel=val_y_channel,
                              channels_last=channels_last)
    session = Session(update, train_data, val_data, epochs=epochs, steps=steps, batch_size=batch_size,
                      num_workers=num_workers, device=device, checkpoint_dir=checkpoint_dir, resume=resume,
                      tracker=BestTracker(track, early_stopping), history=History(monitor=track or monitor),
                      progress=progress, seed=seed, log=log, checkpoint_interval=checkpoint_interval,
                      log_interval=log_interval, settings=settings, tensorboard=tensorboard)
    return session.run()


def _check_counts(**counts: int | None) -> None:
    """ValueError naming the first count that is not a positive int (None is allowed)."""
    for name, v in counts.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}")


def _as_loss(loss: Callable | str | Mapping) -> Callable:
    """A loss callable from a callable, a loss name or a ``{name: weight}`` mapping (TypeError otherwise)."""
    if isinstance(loss, str):
        loss = make_loss(loss)
    elif isinstance(loss, Mapping):
        loss = loss_mix(loss)
    if not callable(loss):
        raise TypeError(f"loss must be callable, a name or a {{name: weight}} mapping, got {loss!r}")
    return loss
