"""Batches in and out of the training loop: loaders (sharded under DDP), epochs, validation PSNR.

Shared by :func:`labkit.train.fit` and :func:`labkit.train.fit_gan`. A batch is a BasicSR dict
``{'lq', 'gt'}`` (other keys ignored) or an ``(input, target)`` tuple of NCHW float tensors; a
model returns a tensor or a list/tuple of tensors (multi-stage nets such as HINet), the last of
which is the prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from labkit import distributed
from labkit.env import autocast, seed_worker
from labkit.metrics import psnr_tensor

__all__ = ["LastOutput", "as_loader", "fixed_steps_loader", "loss_over", "outputs", "set_epoch", "unpack", "validate"]


def as_loader(data: Any, *, batch_size: int, shuffle: bool, num_workers: int,
              device: torch.device, name: str, shard: bool = False, seed: int | None = None) -> DataLoader:
    """A DataLoader over ``data`` (a DataLoader is returned as given).

    ``shard=True`` in a distributed run: a :class:`DistributedSampler` (shuffled with ``seed``,
    padded so that every rank gets the same number of samples) and ``batch_size`` is the global
    batch, split evenly over the ranks.

    Raises:
        TypeError: ``data`` is neither a Dataset (``__len__``/``__getitem__``) nor a DataLoader.
        ValueError: ``data`` is empty, or the global batch does not divide over the ranks
            (the message names ``name``).
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



def fixed_steps_loader(data: Any, batch_size: int, iters: int | None, *, replacement: bool | None = None,
                       seed: int | None = None) -> DataLoader:
    """A loader of exactly ``iters`` batches of ``batch_size`` per epoch, whatever the size of ``data``.

    The fair budget of a comparison: models trained on datasets of different sizes (stored copies vs
    on-the-fly flips, 004's x12 data; HSV-selected vs random windows, 001) get the same number of
    optimizer steps per epoch. Samples are drawn at random each epoch: with ``replacement=None``
    without replacement when ``data`` holds an epoch's worth (so every sample appears at most once per
    epoch), with replacement otherwise; ``True`` / ``False`` force either. ``iters=None``: one pass
    over ``data`` (``len(data) // batch_size`` batches). The draws follow ``seed`` (a generator of the
    sampler's own) or, with None, torch's global RNG (which :func:`labkit.train.fit` seeds).

    Raises:
        ValueError: ``batch_size`` or ``iters`` below 1, or an empty ``data``.
    """
    if batch_size < 1 or (iters is not None and iters < 1):
        raise ValueError(f"batch_size and iters must be >= 1, got batch_size={batch_size}, iters={iters}")
    if len(data) == 0:
        raise ValueError("fixed_steps_loader: data is empty")
    per_epoch = (iters or len(data) // batch_size) * batch_size
    replace = per_epoch > len(data) if replacement is None else bool(replacement)
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    sampler = RandomSampler(data, replacement=replace, generator=generator,
                            num_samples=per_epoch if replace else min(per_epoch, len(data)))
    return DataLoader(data, batch_size=batch_size, drop_last=True, sampler=sampler)

def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Start epoch ``epoch`` (0-based): ``DistributedSampler.set_epoch`` (a new shuffle each epoch,
    the same on every rank), and ``set_epoch`` of the dataset's ``augment`` when it has one (001's
    :class:`labkit.data.augment.AdaptiveAugment`), so that an epoch-dependent augmentation follows
    the loop's epochs on every rank, in DataLoader workers (they copy the dataset when the epoch's
    iteration starts, after this call) and after a resume."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    dataset = getattr(loader, "dataset", None)
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    set_aug_epoch = getattr(getattr(dataset, "augment", None), "set_epoch", None)
    if callable(set_aug_epoch):
        set_aug_epoch(epoch)


def unpack(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) on ``device`` from a dict ``{'lq', 'gt'}`` or an (input, target) tuple.

    Raises ValueError (a dict without 'lq'/'gt') or TypeError (anything else).
    """
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


def outputs(out: Any) -> list[torch.Tensor]:
    """A model's output as a list of float32 tensors (TypeError for anything else)."""
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise TypeError("the model must return a tensor or a non-empty list/tuple of tensors")
    return [o.float() for o in outs]


def loss_over(loss_fn: Callable, outs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """``loss_fn`` summed over every output of a multi-stage model (HINet: both stages)."""
    total = loss_fn(outs[0], target)
    for o in outs[1:]:
        total = total + loss_fn(o, target)
    return total


class LastOutput(nn.Module):
    """Wraps a network so that callers see its last output only (a GAN generator in validation)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return outputs(self.net(x))[-1]


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, loss_fn: Callable, *, device: torch.device, amp: bool,
             crop_border: int, y_channel: bool) -> tuple[float, float]:
    """Mean loss and mean per-image PSNR (dB, outputs clamped to [0, 1]) of ``model`` over ``loader``.

    PSNR is :func:`labkit.metrics.psnr_tensor` with ``crop_border`` / ``y_channel``; the loss is
    summed over a multi-stage model's outputs, as in training. Raises ValueError on no batches.
    """
    model.eval()
    loss_sum = psnr_sum = 0.0
    count = 0
    for batch in loader:
        x, y = unpack(batch, device)
        with autocast(device, enabled=amp):
            out = model(x)
        outs = outputs(out)
        n = x.shape[0]
        loss_sum += float(loss_over(loss_fn, outs, y)) * n
        psnr_sum += float(psnr_tensor(outs[-1].clamp(0, 1), y, crop_border=crop_border,
                                      y_channel=y_channel)) * n
        count += n
    if count == 0:
        raise ValueError("the validation data produced no batches")
    return loss_sum / count, psnr_sum / count
