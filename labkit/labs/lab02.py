"""Lab 02's training: EDSR, MSRResNet or SwinIR under one budget (write-ups 000, 003).

The recipe, as notebook 02 and ``labkit train 02`` run it:

- **Data**: random aligned crops (HR ``gt_size`` px, LR ``gt_size / scale``) of the bundled training
  photos, LR made on the fly by MATLAB-style bicubic downsampling, augmented with 000's flips,
  transpose and 90-degree rotations applied identically to both (no shift-scale-rotate: it would
  resample the LR); the ``val_names`` photos validate, whole. With ``data_root``: DIV2K's
  ``HR`` / ``LR_bicubic/X4`` folders (train and valid splits).
- **Models**: EDSR (Lim et al. 2017), MSRResNet (SRGAN's generator), SwinIR (write-up 003's
  architecture in full; the lightweight one-step upsampler in smoke, 3x cheaper per step on CPU), and
  ``swinir_x2``: write-up 003's own set-up (x2, window 4, '3conv', dropout 0.1; its settings are the
  profile's ``swinir_x2``, width and patch scaled down in smoke), LR made on the fly at x2 from the same
  HR photos (DIV2K's ``HR`` folders with ``data_root``).
- **Loss and optimizer**: the papers' L1 with Adam, betas (0.9, 0.999); SwinIR its own learning
  rate (``swinir_lr``); StepLR(``lr_step``, ``lr_gamma``). Every model gets the same number of
  optimizer steps on the same crops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit import losses, models
from labkit.data import augment, sample, pairing, sr
from labkit.labs.common import CourseSpec, Recipe

__all__ = ["COURSE_CHECKPOINTS", "NETS", "make_augment", "split_photos", "make_train_set", "make_x2_sets", "make_model",
           "make_optimizer", "make_scheduler", "gan_losses", "build_training"]

#: this lab's course checkpoints (:mod:`labkit.course`), by name
COURSE_CHECKPOINTS: dict[str, CourseSpec] = {}

#: the lab's architectures (``-p net=``); ``swinir_x2`` is write-up 003's x2 set-up
NETS = ("edsr", "srresnet", "swinir", "swinir_x2")


def make_augment(scale: int) -> augment.PairedAugment:
    """000's flips / transpose / rot90 on aligned pairs (draws follow torch's RNG, which ``fit`` seeds)."""
    return augment.PairedAugment(augment.sr_000_transforms(p=0.5, shift_scale_rotate=False), scale=scale)


def split_photos(photos: list, val_names) -> tuple[list, list]:
    """``(train_photos, val_photos)``: the ``val_names`` photos validate, the others train."""
    return [(n, im) for n, im in photos if n not in val_names], [(n, im) for n, im in photos if n in val_names]


def make_train_set(train_photos: list | None, data_root: Any, scale: int, gt_size: int, iters_per_epoch: int,
                   batch_size: int, sr_augment: Any):
    """Random aligned crops of the training photos (repeated to ``iters_per_epoch`` batches), or of DIV2K's train split."""
    if data_root is None:
        return sr.SRFolderDataset.from_arrays(
            train_photos, scale=scale, gt_size=gt_size, crop_to_scale=True, augment=sr_augment,
            repeat=max(1, iters_per_epoch * batch_size // len(train_photos)))
    gt_root, lq_root = sr.div2k_paths(data_root, scale, split="train")
    return pairing.PairedFolderDataset(lq_root, gt_root, scale=scale, gt_size=gt_size, augment=sr_augment)


def make_x2_sets(train_photos: list | None, val_photos: list | None, data_root: Any, cfg: dict,
                 x2_augment: Any) -> tuple[sr.SRFolderDataset, sr.SRFolderDataset | None]:
    """``(train_set, val_set)`` of write-up 003's x2 set-up (the profile's ``swinir_x2``).

    Random aligned ``gt_size`` crops (LR ``gt_size / 2``) of the training photos, LR by MATLAB bicubic
    x2 on the fly, repeated to ``iters_per_epoch`` batches; the validation photos whole. With
    ``data_root``: DIV2K's train / valid ``HR`` folders, LR made the same way (DIV2K's ``X2`` files are
    this same bicubic degradation).
    """
    x2 = cfg["swinir_x2"]
    if data_root is None:
        train = sr.SRFolderDataset.from_arrays(
            train_photos, scale=2, gt_size=x2["gt_size"], crop_to_scale=True, augment=x2_augment,
            repeat=max(1, x2["iters_per_epoch"] * x2["batch_size"] // len(train_photos)))
        val = sr.SRFolderDataset.from_arrays(val_photos, scale=2, crop_to_scale=True) if val_photos else None
        return train, val
    train_hr = sr.div2k_paths(data_root, cfg["scale"], split="train")[0]
    valid_hr = sr.div2k_paths(data_root, cfg["scale"], split="valid")[0]
    return (sr.SRFolderDataset(train_hr, scale=2, gt_size=x2["gt_size"], crop_to_scale=True, augment=x2_augment),
            sr.SRFolderDataset(valid_hr, scale=2, crop_to_scale=True))


def make_model(net: str, cfg: dict) -> nn.Module:
    """``net`` (one of :data:`NETS`) with the profile's size; SwinIR's img_size is the LR patch.

    ``swinir_x2`` is write-up 003's set-up, ``SwinIR(upscale=2, **cfg["swinir_x2"]["model"])``.
    """
    s = cfg["scale"]
    if net == "edsr":
        return models.EDSR(upscale=s, **cfg["edsr"])
    if net == "srresnet":
        return models.MSRResNet(upscale=s, **cfg["srresnet"])
    if net == "swinir":
        return models.SwinIR(upscale=s, img_size=cfg["gt_size"] // s, **cfg["swinir"])
    if net == "swinir_x2":
        x2 = cfg["swinir_x2"]
        return models.SwinIR(upscale=2, img_size=x2["gt_size"] // 2, **x2["model"])
    raise ValueError(f"lab 02: net must be one of {', '.join(NETS)}, got {net!r}")


def make_optimizer(model: nn.Module, cfg: dict, net: str) -> torch.optim.Adam:
    """Adam, betas (0.9, 0.999); lr ``swinir_lr`` for SwinIR, ``swinir_x2.lr`` for 003's x2, else ``lr``."""
    lr = {"swinir": cfg["swinir_lr"], "swinir_x2": cfg["swinir_x2"]["lr"]}.get(net, cfg["lr"])
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: dict) -> torch.optim.lr_scheduler.StepLR:
    """StepLR(``lr_step``, ``lr_gamma``), stepped per epoch."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])


def gan_losses(gan_cfg: dict, perceptual: bool) -> tuple[dict[str, tuple[float, nn.Module]], float]:
    """The SRGAN stage's generator content terms ``{name: (weight, loss)}`` and its adversarial weight.

    With the perceptual term (VGG19 weights present): BasicSR's train_SRGAN_x4, ``1e-2 * L1 + 1.0 *
    VGG19 conv5_4 feature L1`` and ``5e-3`` GAN (the profile's ``pixel_weight``, ``perceptual_weight``,
    ``gan_weight``). Without it: the profile's ``without_vgg``, the SRGAN paper's SRGAN-MSE variant
    (Ledig et al., CVPR 2017, eq. 3 with the MSE content loss: ``1.0 * MSE`` and ``1e-3`` GAN).
    """
    if perceptual:
        return ({"pix": (gan_cfg["pixel_weight"], nn.L1Loss()),
                 "percep": (gan_cfg["perceptual_weight"], losses.PerceptualLoss({"conv5_4": 1.0}))},
                gan_cfg["gan_weight"])
    w = gan_cfg["without_vgg"]
    pixel = {"l1": nn.L1Loss, "mse": nn.MSELoss}[w["pixel_loss"]]()
    return {"pix": (w["pixel_weight"], pixel)}, w["gan_weight"]


def build_training(cfg: dict, opts: dict, work: Path) -> Recipe:
    """Lab 02's run for ``labkit train 02`` (``-p net=edsr|srresnet|swinir``): data, model, L1 + Adam + StepLR."""
    s = cfg["scale"]
    net = opts["net"] or "edsr"
    if net not in NETS:
        raise ValueError(f"lab 02: net must be one of {', '.join(NETS)}, got {net!r}")
    if net == "swinir_x2":
        return _build_x2(cfg, opts)
    sr_augment = make_augment(s)
    if opts["data_root"] is None:
        train_photos, val_photos = split_photos(sample.sample_images("train"), cfg["val_names"])
        train_set = make_train_set(train_photos, None, s, cfg["gt_size"], cfg["iters_per_epoch"], cfg["batch_size"],
                                   sr_augment)
        val_set = sr.SRFolderDataset.from_arrays(val_photos, scale=s, crop_to_scale=True) if val_photos else None
    else:
        train_set = make_train_set(None, opts["data_root"], s, cfg["gt_size"], cfg["iters_per_epoch"],
                                   cfg["batch_size"], sr_augment)
        gt_root, lq_root = sr.div2k_paths(opts["data_root"], s, split="valid")
        val_set = pairing.PairedFolderDataset(lq_root, gt_root, scale=s)
    model = make_model(net, cfg)
    optimizer = make_optimizer(model, cfg, net)
    return Recipe(model, train_set, val_set, dict(
        loss=nn.L1Loss(), optimizer=optimizer, scheduler=make_scheduler(optimizer, cfg), epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], early_stopping=cfg["early_stopping"], val_crop_border=s,
        val_y_channel=True, channels_last=cfg["channels_last"]), name=net)


def _build_x2(cfg: dict, opts: dict) -> Recipe:
    """``-p net=swinir_x2``: write-up 003's x2 SwinIR with its own patch, batch, lr and step budget."""
    x2 = cfg["swinir_x2"]
    train_photos = val_photos = None
    if opts["data_root"] is None:
        train_photos, val_photos = split_photos(sample.sample_images("train"), cfg["val_names"])
    train_set, val_set = make_x2_sets(train_photos, val_photos, opts["data_root"], cfg, make_augment(2))
    model = make_model("swinir_x2", cfg)
    optimizer = make_optimizer(model, cfg, "swinir_x2")
    return Recipe(model, train_set, val_set, dict(
        loss=nn.L1Loss(), optimizer=optimizer, scheduler=make_scheduler(optimizer, cfg), epochs=x2["epochs"],
        batch_size=x2["batch_size"], early_stopping=cfg["early_stopping"], val_crop_border=2,
        val_y_channel=True, channels_last=cfg["channels_last"]), name="swinir_x2")
