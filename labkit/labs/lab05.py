"""Lab 05's training: write-up 004's NAFNet study (denoising; the ``baseline`` variant for ``labkit train 05``).

The recipe, as notebook 05 and ``labkit train 05`` run it:

- **Data**: SIDD's 256 px arrays (``data_root``), or SIDD-like arrays made from the bundled photos:
  ``crops_per_photo`` random crops of ``sidd_size`` px per photo (4 photos train, 1 validates, the
  notebook's 6th tests), Poisson-Gaussian noise seeded ``seed + i`` per crop, stored as uint8.
- **Variants** (:data:`labkit.profiles` ``variant_specs``): v1 baseline, the architecture change,
  x12 data (H/V flips + 2x2 patches), dropout 0.5, random crop then 2x2 patches; each trains under
  the same step budget.
- **Model and optimization**: NAFNet, the official PSNR loss (minus the PSNR) and optimizer (AdamW,
  betas (0.9, 0.9), no weight decay; 004: lr 1e-4; smoke 2e-3), on-the-fly H/V flips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from labkit import models
from labkit.data import augment, sample, noise_blur, pairing, patch_select, sidd
from labkit.labs.common import CourseSpec, Recipe

__all__ = ["COURSE_CHECKPOINTS", "make_sidd_like", "make_flip_augment", "make_model", "make_optimizer", "build_training"]

#: this lab's course checkpoints (:mod:`labkit.course`), by name
COURSE_CHECKPOINTS: dict[str, CourseSpec] = {}


def make_sidd_like(photos: list, cfg: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gts, noisy)`` uint8 arrays: ``crops_per_photo`` crops of ``sidd_size`` px of each photo in order
    (``default_rng(seed)``), the noise of crop ``i`` seeded ``seed + i``."""
    size, k = cfg["sidd_size"], cfg["crops_per_photo"]
    rng = np.random.default_rng(seed)
    gts = [patch_select.random_crop(im, size, rng) for _, im in photos for _ in range(k)]
    gts = np.round(np.stack(gts) * 255).astype(np.uint8)              # the arrays' format: uint8
    noisy = np.stack([np.round(noise_blur.poisson_gaussian_noise(g, **cfg["noise"], seed=seed + i) * 255)
                      for i, g in enumerate(gts)]).astype(np.uint8)
    return gts, noisy


def make_flip_augment() -> augment.PairedAugment:
    """004's on-the-fly H/V flips (p 0.5 each; draws follow torch's RNG)."""
    return augment.PairedAugment(augment.nafnet_004_transforms(p=0.5))


def make_model(cfg: dict, arch: str, drop_out_rate: float = 0.0, width: int | None = None) -> nn.Module:
    """NAFNet of architecture ``arch`` (``archs`` key), ``width`` (default the profile's), ``drop_out_rate``."""
    return models.NAFNet(img_channel=3, width=width or cfg["width"], drop_out_rate=drop_out_rate, **cfg["archs"][arch])


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.AdamW:
    """NAFNet's official optimizer: AdamW, betas (0.9, 0.9), no weight decay."""
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.9), weight_decay=0.0)


def build_training(cfg: dict, opts: dict, work: Path) -> Recipe:
    """Lab 05's ``baseline`` variant for ``labkit train 05``, with a cosine decay over the steps (the notebook
    trains at a constant lr)."""
    if opts["net"] not in (None, "nafnet"):
        raise ValueError(f"lab 05: net must be 'nafnet', got {opts['net']!r}")
    seed = opts["seed"]
    if opts["data_root"] is None:   # the notebook's SIDD-like arrays: 4 photos train, 1 validates, k crops each
        k = cfg["crops_per_photo"]
        gts, noisy = make_sidd_like(sample.sample_images("train")[:5], cfg, seed)
        splits = {"train": (noisy[: 4 * k], gts[: 4 * k]), "val": (noisy[4 * k:], gts[4 * k:])}
    else:
        counts = tuple(min(c, opts["max_images"] or c) for c in cfg["sidd_counts"])
        splits = sidd.sidd_npy_splits(opts["data_root"], counts=counts, size=cfg["sidd_size"])
    train_set = pairing.ArrayPairDataset(*splits["train"], augment=make_flip_augment(), scale=1)
    val_set = pairing.ArrayPairDataset(*splits["val"])
    spec = cfg["variant_specs"]["baseline"]
    model = make_model(cfg, spec["arch"], spec["drop_out_rate"])
    optimizer = make_optimizer(model, cfg["lr"])
    steps = cfg["epochs"] * cfg["iters_per_epoch"]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=1e-7)
    return Recipe(model, train_set, val_set, dict(
        loss="psnr", optimizer=optimizer, scheduler=scheduler, scheduler_interval="step", steps=steps,
        epochs=None, batch_size=cfg["batch_size"]), name="nafnet baseline")
