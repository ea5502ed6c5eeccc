"""Lab 06's training: the inpainting + colorization GAN, write-up 002's recipe.

The recipe, as notebook 06 and ``labkit train 06`` run it:

- **Data**: the DACON inpainting layout (``data_root``; an 8:2 split, 10k / 3k limits in full), or
  masked random crops of the bundled photos (strokes and boxes covering ``mask_fraction``). The
  generator sees the gray image and the mask and predicts the colour image. The smoke profile's
  bundled photos keep ``chroma_kept`` (a quarter) of their colour instead of none: a faded photo, the
  stated easier degradation under which a small model restores colour in minutes (:func:`input_channels`).
- **Generator**: ``l_g_gan + 50 * L1 + 50 * (1 - SSIM)``; the adversarial term is LSGAN's.
- **Discriminator**: conditional (it sees the input next to the image), ``l_d_real + l_d_fake +
  lambda_gp * GP`` (per-sample WGAN-GP: without it the write-up's D won and G collapsed).
- **Optimization**: AdamW (betas ``betas``, weight decay ``weight_decay``) for both; StepLR for G
  every ``g_step`` epochs and for D every ``d_step`` epochs, x ``lr_gamma`` (002: 10 and 15, x0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from labkit import losses, models
from labkit.data import sample, inpainting
from labkit.train.gan import GANStep
from labkit.labs.common import CourseSpec, Recipe

__all__ = ["COURSE_CHECKPOINTS", "for_data", "input_channels", "input_image", "concat_condition", "make_photo_train_set", "make_photo_test_set", "make_dacon_sets", "make_generator", "make_discriminator",
           "make_content_losses", "make_content_loss", "make_gan_step", "adamw", "make_optimizers", "make_schedulers", "build_training"]

#: this lab's course checkpoints (:mod:`labkit.course`), by name. ``06_generator``: the smoke generator
#: (plain blocks, 12 features, 3 levels) trained with the content loss only (50 L1 + 50 (1 - SSIM), no
#: discriminator) on masked 128-px crops of the bundled training photos (faded: the profile's ``chroma_kept``),
#: long enough that the holes of the held-out photos are filled and their colour comes back. The crops are larger
#: than the notebook's 48 px because the masks scale with the image: on 64-px crops the checkpoint never saw holes
#: as wide as a 256-px held-out photo's, and left their centres dark (measured: 11.5 against 13.2 dB inside the holes); notebook 06's smoke runs (baseline, GAN + GP, GAN without GP) start from it.
COURSE_CHECKPOINTS: dict[str, CourseSpec] = {
    "06_generator": CourseSpec("06", {"net": "generator", "patch_size": 128, "batch_size": 4, "epochs": 32, "iters_per_epoch": 50,
                                      "lr_g": 1e-3, "g_step": 12, "seed": 42},
                               "lab 06's smoke generator, content loss only (50 L1 + 50 (1 - SSIM)), 1600 updates "
                               "on 128-px masked crops (batch 4) of the bundled photos (faded input: a quarter of "
                               "the colour kept); notebook 06 starts its runs from it"),
}


def for_data(cfg: dict, data_root) -> dict:
    """``cfg`` for the data it will read: with ``data_root`` (the competition's gray inputs) ``chroma_kept`` is 0,
    the write-up's task, and one printed line says so when the profile had a faded input; unchanged otherwise."""
    if data_root is None or not cfg["chroma_kept"]:
        return cfg
    print(f"lab 06: data_root holds the competition's gray inputs: chroma_kept {cfg['chroma_kept']} -> 0 "
          "(the write-up's task: colour from gray)", flush=True)
    return {**cfg, "chroma_kept": 0.0}


def input_channels(cfg: dict) -> int:
    """The generator's input channels: 2 (``[gray, mask]``, the write-up's task) when ``chroma_kept`` is 0, else
    4 (``[R, G, B, mask]``, the faded photo of :func:`labkit.data.masks.inpainting_input`)."""
    return 4 if cfg["chroma_kept"] > 0 else 2


def input_image(lq: torch.Tensor) -> np.ndarray:
    """The image part of an input item ``lq`` ((C, H, W), C = 1..4, in [0, 1]) as an (H, W, 3) RGB array in [0, 1]
    (the gray on three channels, or the faded RGB): for figures, and to score the input as if it were an output."""
    img = lq[:3] if lq.shape[0] >= 3 else lq[:1].repeat(3, 1, 1)
    return img.permute(1, 2, 0).numpy()


def concat_condition(lq: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """002's conditional discriminator input: the (gray, mask) input next to the RGB image."""
    return torch.cat([lq, img], 1)


def make_photo_train_set(cfg: dict) -> inpainting.InpaintingPhotoDataset:
    """Masked random crops of the bundled training photos, ``iters_per_epoch * batch_size`` per epoch, faded to
    ``chroma_kept`` of their colour (0: gray)."""
    return inpainting.InpaintingPhotoDataset(sample.sample_images("train"), cfg["patch_size"], cfg["mask_fraction"],
                                           length=cfg["iters_per_epoch"] * cfg["batch_size"],
                                           chroma_kept=cfg["chroma_kept"])


def make_photo_test_set(images: list, cfg: dict, seed: int) -> inpainting.InpaintingPhotoDataset:
    """The held-out photos (``[(name, HWC RGB)]``, whole) with one fixed seeded mask each, degraded as the
    training crops (``mask_fraction``, ``chroma_kept``)."""
    return inpainting.InpaintingPhotoDataset(images, None, cfg["mask_fraction"], seed=seed, chroma_kept=cfg["chroma_kept"])


def make_dacon_sets(data_root, cfg: dict, seed: int, train_limit: int | None, val_limit: int | None):
    """``(train_set, val_set)``: the DACON layout's seeded ``val_fraction`` split, each capped (gray inputs:
    use :func:`for_data` on ``cfg`` first)."""
    return (inpainting.DaconInpaintingDataset(data_root, "train", val_fraction=cfg["val_fraction"], seed=seed,
                                            limit=train_limit),
            inpainting.DaconInpaintingDataset(data_root, "val", val_fraction=cfg["val_fraction"], seed=seed,
                                            limit=val_limit))


def make_generator(cfg: dict) -> nn.Module:
    """The U-Net generator: (gray, mask) or (faded RGB, mask) in (:func:`input_channels`), RGB out."""
    return models.InpaintingGenerator(num_in_ch=input_channels(cfg), num_out_ch=3, **cfg["generator"])


def make_discriminator(cfg: dict) -> nn.Module:
    """The conditional PatchGAN discriminator: the generator's input + RGB in."""
    return models.PatchDiscriminator(input_nc=input_channels(cfg) + 3, **cfg["discriminator"])


def make_content_losses(cfg: dict) -> dict:
    """The generator's content terms: ``pixel_weight`` * L1 and ``ssim_weight`` * (1 - SSIM)."""
    return {"pix": (cfg["pixel_weight"], nn.L1Loss()), "ssim": (cfg["ssim_weight"], losses.SSIMLoss())}


def make_gan_step(cfg: dict, content: dict | None = None, lambda_gp: float | None = None) -> GANStep:
    """002's step: LSGAN, conditional D, gradient penalty ``lambda_gp`` (default the profile's; 0: none),
    the collapse guard. ``content`` defaults to :func:`make_content_losses`."""
    return GANStep(make_content_losses(cfg) if content is None else content, gan_loss="lsgan",
                   adv_weight=cfg["adv_weight"], lambda_gp=cfg["lambda_gp"] if lambda_gp is None else lambda_gp,
                   gp_reduction=cfg["gp_reduction"], d_input=concat_condition,
                   collapse_loss=cfg["collapse_loss"], collapse_patience=cfg["collapse_patience"])


def adamw(net: nn.Module, lr: float, cfg: dict) -> torch.optim.AdamW:
    """AdamW with 002's betas and weight decay."""
    return torch.optim.AdamW(net.parameters(), lr=lr, betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"],
                             foreach=True)


def make_optimizers(g: nn.Module, d: nn.Module, cfg: dict) -> tuple[torch.optim.AdamW, torch.optim.AdamW]:
    """``(opt_g, opt_d)``: AdamW at ``lr_g`` and ``lr_d``."""
    return adamw(g, cfg["lr_g"], cfg), adamw(d, cfg["lr_d"], cfg)


def make_schedulers(opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, cfg: dict) -> tuple:
    """``(sched_g, sched_d)``: StepLR every ``g_step`` / ``d_step`` epochs, x ``lr_gamma``."""
    return (torch.optim.lr_scheduler.StepLR(opt_g, cfg["g_step"], cfg["lr_gamma"]),
            torch.optim.lr_scheduler.StepLR(opt_d, cfg["d_step"], cfg["lr_gamma"]))


def make_content_loss(cfg: dict, ssim: bool = True) -> losses.WeightedSum:
    """The content loss as one module (the no-GAN baseline's): ``pixel_weight`` * L1 + ``ssim_weight`` *
    (1 - SSIM); ``ssim=False``: the L1 term only (the write-up's SSIM ablation)."""
    content = make_content_losses(cfg)
    terms = [("pix", *content["pix"])] + ([("ssim", *content["ssim"])] if ssim else [])
    return losses.WeightedSum(terms)


def build_training(cfg: dict, opts: dict, work: Path) -> Recipe:
    """Lab 06's run for ``labkit train 06``: ``net='gan'`` (default) the GAN + GP recipe
    (:func:`labkit.train.fit_gan`); ``net='generator'`` the generator alone with the content loss
    (:func:`make_content_loss`, :func:`labkit.train.fit`, StepLR every ``g_step`` epochs): the course
    checkpoint ``06_generator``."""
    if opts["net"] not in (None, "gan", "generator"):
        raise ValueError(f"lab 06: net must be 'gan' or 'generator', got {opts['net']!r}")
    seed = opts["seed"]
    cfg = for_data(cfg, opts["data_root"])
    if opts["data_root"] is None:
        if cfg["patch_size"] is None:
            raise ValueError("lab 06: this profile trains on whole competition images: pass -p data_root=<DACON "
                             "inpainting folder> (data/README.md), or use the smoke profile")
        train_set, val_set = make_photo_train_set(cfg), None
    else:
        def cap(limit: int | None) -> int | None:
            given = [int(x) for x in (limit, opts["max_images"]) if x]
            return min(given) if given else None

        train_set, val_set = make_dacon_sets(opts["data_root"], cfg, seed, cap(cfg["train_limit"]), cap(cfg["val_limit"]))
    if opts["net"] == "generator":
        g = make_generator(cfg)
        opt = adamw(g, cfg["lr_g"], cfg)
        return Recipe(g, train_set, val_set, dict(
            loss=make_content_loss(cfg), optimizer=opt,
            scheduler=torch.optim.lr_scheduler.StepLR(opt, cfg["g_step"], cfg["lr_gamma"]),
            epochs=cfg["epochs"], batch_size=cfg["batch_size"]), name="inpainting generator, content loss only (002)")
    g, d = make_generator(cfg), make_discriminator(cfg)
    step = make_gan_step(cfg)
    opt_g, opt_d = make_optimizers(g, d, cfg)
    sched_g, sched_d = make_schedulers(opt_g, opt_d, cfg)
    return Recipe(g, train_set, val_set, dict(
        step=step, opt_g=opt_g, opt_d=opt_d, sched_g=sched_g, sched_d=sched_d,
        epochs=cfg["epochs"], batch_size=cfg["batch_size"]), name="inpainting GAN + GP (002)", discriminator=d)
