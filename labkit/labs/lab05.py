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
- **Deblurring** (``-p net=deblur``): the GoPro layout of NAFNet (``cfg["deblur"]``) on random crops of the
  4 training photos, each blurred on the fly by a new random camera trajectory (``blur_kernel`` px), the
  validation crops of the last 2 photos blurred with fixed seeds; with ``data_root``: GoPro
  (:func:`labkit.data.gopro.gopro_splits`). The course checkpoint ``05_deblur`` is this run, longer
  (:data:`COURSE_CHECKPOINTS`, ``-p deblur_epochs=``): notebook 05 starts its deblurring from it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from labkit import models, profiles
from labkit.data import augment, gopro, sample, noise_blur, pairing, patch_select, sidd
from labkit.labs.common import CourseSpec, Recipe

__all__ = ["COURSE_CHECKPOINTS", "COURSE_DEBLUR_STEPS", "make_sidd_like", "blur_with_trajectory", "make_bundled_sets",
           "make_flip_augment", "make_model", "make_optimizer", "make_scheduler", "build_training"]

#: the optimizer steps of the course checkpoint ``05_deblur`` (the notebook trains ``cfg["deblur"]``'s budget)
COURSE_DEBLUR_STEPS = 2000

#: this lab's course checkpoints (:mod:`labkit.course`), by name
COURSE_CHECKPOINTS: dict[str, CourseSpec] = {
    "05_deblur": CourseSpec("05", {
        "net": "deblur", "seed": 42,
        "deblur_epochs": COURSE_DEBLUR_STEPS // profiles.PROFILES["05"]["smoke"]["deblur"]["iters_per_epoch"],
    }, "lab 05's smoke deblurring NAFNet (GoPro layout, width 8) trained on trajectory motion blur of the bundled "
       "training photos with a cosine lr decay; notebook 05's deblurring section starts from it"),
}


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


def blur_with_trajectory(img: np.ndarray, rng: np.random.Generator, kernel_size: int) -> np.ndarray:
    """``img`` (float32 HWC in [0, 1]) blurred by a new random camera-trajectory kernel of ``kernel_size`` px drawn
    from ``rng`` (:func:`labkit.data.noise_blur.trajectory_kernel`, :func:`~labkit.data.noise_blur.motion_blur`)."""
    return noise_blur.motion_blur(img, noise_blur.trajectory_kernel(kernel_size, seed=rng))


def make_bundled_sets(cfg: dict, photos: list, seed: int, net: str = "nafnet",
                      augment_pairs: augment.PairedAugment | None = None) -> tuple:
    """``(train_set, val_set)`` of lab 05 on the bundled ``photos`` (``sample.sample_images("train")``).

    ``net="nafnet"`` (denoising): :func:`make_sidd_like` arrays of the first 5 photos, 4 train and 1 validates
    (``augment_pairs`` on the training pairs). ``net="deblur"``: random ``cfg["deblur"]["gt_size"]`` crops of the
    first 4 photos, each blurred on the fly (:func:`blur_with_trajectory`, ``blur_margin`` px of context cut
    after blurring; torch's RNG draws them), ``batch_size x iters_per_epoch`` items an epoch; validation: the
    centre ``2 gt_size`` crops of the last 2 photos blurred with kernels seeded ``seed + 200 + i``.

    Raises:
        ValueError: an unknown ``net``.
    """
    if net == "nafnet":
        k = cfg["crops_per_photo"]
        gts, noisy = make_sidd_like(photos[:5], cfg, seed)
        return (pairing.ArrayPairDataset(noisy[: 4 * k], gts[: 4 * k], augment=augment_pairs, scale=1),
                pairing.ArrayPairDataset(noisy[4 * k:], gts[4 * k:]))
    if net != "deblur":
        raise ValueError(f"lab 05: net must be 'nafnet' or 'deblur', got {net!r}")
    dcfg, gs = cfg["deblur"], cfg["deblur"]["gt_size"]
    train_set = pairing.DegradedCropDataset(photos[:4], partial(blur_with_trajectory, kernel_size=cfg["blur_kernel"]), gs,
                                            margin=cfg["blur_margin"], augment=augment_pairs,
                                            length=dcfg["batch_size"] * dcfg["iters_per_epoch"])
    val_lq, val_gt = [], []
    for i, (_, gt) in enumerate(photos[-2:]):
        lq = noise_blur.motion_blur(gt, noise_blur.trajectory_kernel(cfg["blur_kernel"], seed=seed + 200 + i))
        h, w = gt.shape[:2]
        t, l = (h - 2 * gs) // 2, (w - 2 * gs) // 2
        val_lq.append(lq[t:t + 2 * gs, l:l + 2 * gs])
        val_gt.append(gt[t:t + 2 * gs, l:l + 2 * gs])
    return train_set, pairing.ArrayPairDataset(val_lq, val_gt)


def make_flip_augment() -> augment.PairedAugment:
    """004's on-the-fly H/V flips (p 0.5 each; draws follow torch's RNG)."""
    return augment.PairedAugment(augment.nafnet_004_transforms(p=0.5))


def make_model(cfg: dict, arch: str, drop_out_rate: float = 0.0, width: int | None = None) -> nn.Module:
    """NAFNet of architecture ``arch`` (``archs`` key), ``width`` (default the profile's), ``drop_out_rate``."""
    return models.NAFNet(img_channel=3, width=width or cfg["width"], drop_out_rate=drop_out_rate, **cfg["archs"][arch])


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.AdamW:
    """NAFNet's official optimizer: AdamW, betas (0.9, 0.9), no weight decay."""
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.9), weight_decay=0.0, foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """A cosine decay of the lr over ``steps`` optimizer steps down to 1e-7 (stepped every step)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=1e-7)


def build_training(cfg: dict, opts: dict, work: Path) -> Recipe:
    """Lab 05's ``baseline`` variant for ``labkit train 05`` (``-p net=deblur``: the deblurring NAFNet), with a
    cosine decay over the steps (the notebook's denoising study trains at a constant lr)."""
    net = opts["net"] or "nafnet"
    if net not in ("nafnet", "deblur"):
        raise ValueError(f"lab 05: net must be 'nafnet' or 'deblur', got {opts['net']!r}")
    seed, deblurs = opts["seed"], net == "deblur"
    if opts["data_root"] is None:   # the bundled photos (the notebook's data)
        train_set, val_set = make_bundled_sets(cfg, sample.sample_images("train"), seed, net, make_flip_augment())
    elif deblurs:
        sets = gopro.gopro_splits(opts["data_root"], gt_size=cfg["deblur"]["gt_size"], augment=make_flip_augment())
        train_set, val_set = sets["train"], torch.utils.data.Subset(sets["val"], range(min(10, len(sets["val"]))))
    else:
        counts = tuple(min(c, opts["max_images"] or c) for c in cfg["sidd_counts"])
        splits = sidd.sidd_npy_splits(opts["data_root"], counts=counts, size=cfg["sidd_size"])
        train_set = pairing.ArrayPairDataset(*splits["train"], augment=make_flip_augment(), scale=1)
        val_set = pairing.ArrayPairDataset(*splits["val"])
    if deblurs:
        dcfg = cfg["deblur"]
        model = make_model(cfg, dcfg["arch"], width=dcfg["width"])
        epochs = cfg.get("deblur_epochs") or dcfg["epochs"]
        lr, steps, batch_size = dcfg["lr"], epochs * dcfg["iters_per_epoch"], dcfg["batch_size"]
    else:
        spec = cfg["variant_specs"]["baseline"]
        model = make_model(cfg, spec["arch"], spec["drop_out_rate"])
        lr, steps, batch_size = cfg["lr"], cfg["epochs"] * cfg["iters_per_epoch"], cfg["batch_size"]
    optimizer = make_optimizer(model, lr)
    return Recipe(model, train_set, val_set, dict(
        loss="psnr", optimizer=optimizer, scheduler=make_scheduler(optimizer, steps), scheduler_interval="step",
        steps=steps, epochs=None, batch_size=batch_size), name="nafnet deblur" if deblurs else "nafnet baseline")
