"""Lab 03's training: RRDB+ fine-tuning, write-up 000's recipe.

The recipe, as notebook 03 and ``labkit train 03`` run it:

- **Data**: the DACON SR layout (``train/lr``, ``train/hr``, ``test/lr``), or a miniature of it made
  from the bundled photos (``crops_per_side`` x ``crops_per_side`` evenly spaced ``hr_size`` px HR
  crops of each training photo, every photo weighing the same, with their MATLAB-bicubic LR; the
  held-out photos as the test set, with their HR so that it can be scored).
- **Split**: a seeded fraction (``val_fraction``) of the training pairs validates (full); smoke
  validates on the ``val_names`` photo, whole. Validation is on whole images: patch borders (zero
  padding) would dominate the loss of 16 px patches.
- **Patches**: each training pair cut into 4 x 4 non-overlapping grid patches, exported once
  (``patches='random'``: as many random crops of the same size, the notebook's control);
  Flip / Transpose / RandomRotate90 / ShiftScaleRotate (``augment_p``).
- **Model**: RRDBNet, fine-tuned from RRDB_PSNR_x4 (``pretrained``: a name in
  :data:`labkit.weights.NAMED_WEIGHTS`, a local file in any official RRDB layout, or ``scratch``). Offline,
  the smoke notebook fine-tunes the course checkpoint ``03_rrdb_pretrain`` instead: the small RRDB pretrained
  by ``net=pretrain`` (:func:`build_pretraining`).
- **Optimization**: loss 2*L1 + 1*L2, Adam lr 1e-4 betas (0.9, 0.99), StepLR(3, 0.5), early stopping
  on the validation loss (patience 2), batch 4, 7 epochs, seed 42.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit import env, models, weights
from labkit import io as lio
from labkit.data import augment, sample, dacon_sr, pairing, patch_export, sr
from labkit.labs.common import CourseSpec, Recipe, rank0_first, rank0_makes, reuse_or_make

__all__ = ["COURSE_CHECKPOINTS", "PRETRAIN_CHECKPOINT", "resolve_pretrained", "make_miniature", "list_pairs", "split_train_val", "export_train_patches",
           "make_augment", "make_pretrain_set", "build_pretraining", "make_train_set", "make_val_arrays", "make_val_subset", "make_model", "make_optimizer", "make_scheduler",
           "build_training"]

#: this lab's course checkpoints (:mod:`labkit.course`), by name
COURSE_CHECKPOINTS: dict[str, CourseSpec] = {
    "03_rrdb_pretrain": CourseSpec("03", {"net": "pretrain"}, (
        "lab 03's stand-in for RRDB_PSNR_x4: the smoke profile's small RRDB (model) pretrained from random weights "
        "on random aligned crops of the bundled training photos (the analogue of DF2K; pretrain: L1, Adam with cosine "
        "decay, batch 16, the last weights kept). Notebook 03 (smoke, no official weights) fine-tunes it.")),
}


#: the course checkpoint the smoke notebook starts from when the official weights are absent
PRETRAIN_CHECKPOINT = "03_rrdb_pretrain"


def resolve_pretrained(choice: Any) -> tuple[Any, str]:
    """(weights source or None, why) for the ``pretrained`` setting: ``scratch`` (or None) means none; ``auto``:
    ``$LABKIT_RRDB_PSNR_X4``, else the named download on Colab, else none."""
    if choice in (None, "scratch"):
        return None, f"pretrained={choice!r}"
    if choice != "auto":
        return choice, f"pretrained={choice!r}"
    if os.environ.get("LABKIT_RRDB_PSNR_X4"):
        return os.environ["LABKIT_RRDB_PSNR_X4"], "$LABKIT_RRDB_PSNR_X4"
    if env.is_colab():
        return "rrdb_psnr_x4", "Colab: the named download"
    return None, "no local weights ($LABKIT_RRDB_PSNR_X4 unset) and no download outside Colab"


def make_miniature(root: Path, cfg: dict, photos: list | None = None) -> None:
    """Write the DACON SR miniature under ``root`` from the bundled photos (those not in ``val_names`` train)."""
    photos = sample.sample_images("train") if photos is None else photos
    dacon_sr.make_dacon_sr_miniature(root, [(n, im) for n, im in photos if n not in cfg["val_names"]],
                                     sample.sample_images("heldout"), scale=cfg["scale"], hr_size=cfg["hr_size"],
                                     crops_per_side=cfg["crops_per_side"])


def list_pairs(paths: dict) -> list[tuple[str, Path, Path]]:
    """``[(stem, lr path, hr path)]`` of the layout's training pairs, in file order."""
    return [(p.stem, p, paths["train_hr"] / p.name) for p in lio.list_images(paths["train_lr"])]


def split_train_val(pairs: list, val_fraction: float, seed: int) -> tuple[list, list, set[int]]:
    """``(train_pairs, val_pairs, val_idx)``: ``round(val_fraction * n)`` pairs drawn by ``default_rng(seed)`` validate."""
    n_val = int(round(val_fraction * len(pairs)))
    val_idx = set(np.random.default_rng(seed).permutation(len(pairs))[:n_val].tolist())
    return ([p for i, p in enumerate(pairs) if i not in val_idx], [p for i, p in enumerate(pairs) if i in val_idx],
            val_idx)


def export_train_patches(pairs: list, folder: Path, cfg: dict, seed: int = 42) -> None:
    """Write the training patches of ``pairs`` to ``folder/lq`` and ``folder/gt``: ``patches='grid'`` (write-up 000):
    the ``grid`` x ``grid`` non-overlapping patches; ``'random'``: as many (``grid * grid`` per pair) patches of the
    same size at random positions (drawn once, ``default_rng([seed, pair index])``; they may overlap and miss parts)."""
    g = cfg["grid"]
    if cfg.get("patches", "grid") == "grid":
        patch_export.export_grid_patches(pairs, folder, rows=g, cols=g, scale=cfg["scale"])
    elif cfg["patches"] == "random":
        patch_export.export_random_patches(pairs, folder, count=g * g, rows=g, cols=g, scale=cfg["scale"], seed=seed)
    else:
        raise ValueError(f"lab 03: patches must be 'grid' or 'random', got {cfg['patches']!r}")


def make_augment(cfg: dict) -> augment.PairedAugment:
    """000's Flip / Transpose / RandomRotate90 / ShiftScaleRotate, each with ``augment_p`` (draws follow torch's RNG)."""
    return augment.PairedAugment(augment.sr_000_transforms(p=cfg["augment_p"]), scale=cfg["scale"])


def make_train_set(folder: Path, cfg: dict, sr_augment: Any) -> pairing.PairedFolderDataset:
    """The exported patches of ``folder``, augmented (decoded once, then kept in memory)."""
    return pairing.PairedFolderDataset(folder / "lq", folder / "gt", scale=cfg["scale"], augment=sr_augment, cache=True)


def make_val_arrays(val_pairs: list, scale: int) -> pairing.ArrayPairDataset:
    """Whole validation photos ``[(name, lq array, gt array)]`` (the bundled photos' ``val_names``)."""
    return pairing.ArrayPairDataset([lq for _, lq, _ in val_pairs], [gt for _, _, gt in val_pairs],
                                     names=[n for n, _, _ in val_pairs], scale=scale)


def make_val_subset(val_pairs: list, paths: dict, scale: int) -> torch.utils.data.Subset:
    """The held-out training pairs ``[(stem, lr path, hr path)]`` of the layout, whole, in their order."""
    all_train = pairing.PairedFolderDataset(paths["train_lr"], paths["train_hr"], scale=scale)
    stems = [gt.stem for _, gt in all_train.pairs]
    return torch.utils.data.Subset(all_train, [stems.index(n) for n, _, _ in val_pairs])


def make_model(cfg: dict) -> nn.Module:
    """The official RRDBNet x4 (64 feat, 23 blocks, growth 32) when ``model`` is None, else a small RRDBNet."""
    return models.build("rrdbnet_x4") if cfg["model"] is None else models.RRDBNet(scale=cfg["scale"], **cfg["model"])


def make_optimizer(model: nn.Module, cfg: dict, lr: float | None = None) -> torch.optim.Adam:
    """Adam, lr 1e-4 (``lr``), betas (0.9, 0.99): write-up 000."""
    return torch.optim.Adam(model.parameters(), lr=cfg["lr"] if lr is None else lr, betas=tuple(cfg["betas"]), foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: dict) -> torch.optim.lr_scheduler.StepLR:
    """StepLR(3, 0.5) per epoch: write-up 000."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])


def make_pretrain_set(cfg: dict, photos: list | None = None) -> sr.SRFolderDataset:
    """The pretraining crops: random aligned ``pretrain.gt_size`` px crops of the training photos (not ``val_names``),
    MATLAB-bicubic LR, flips / transposes / 90-degree rotations (p 0.5), repeated so that an epoch is
    ``pretrain.steps / pretrain.epochs`` batches."""
    pre = cfg["pretrain"]
    photos = [(n, im) for n, im in (sample.sample_images("train") if photos is None else photos)
              if n not in cfg["val_names"]]
    steps_per_epoch = max(1, pre["steps"] // pre["epochs"])
    return sr.SRFolderDataset.from_arrays(
        photos, scale=cfg["scale"], gt_size=pre["gt_size"], crop_to_scale=True,
        augment=augment.PairedAugment(augment.sr_000_transforms(p=0.5, shift_scale_rotate=False), scale=cfg["scale"]),
        repeat=max(1, steps_per_epoch * pre["batch_size"] // len(photos)))


def build_pretraining(cfg: dict, opts: dict) -> Recipe:
    """``net=pretrain``: the small RRDB (``model``) pretrained from random weights (course checkpoint
    ``03_rrdb_pretrain``): :func:`make_pretrain_set`, L1, Adam ``pretrain.lr`` (betas of the recipe) with cosine decay
    to ``pretrain.min_lr`` per step, batch ``pretrain.batch_size``, ``pretrain.steps`` steps. No validation set: the
    run keeps its last weights (the end of the decay), as BasicSR keeps its last iteration."""
    pre = cfg["pretrain"]
    if pre is None or cfg["model"] is None:
        raise ValueError("lab 03: net=pretrain trains the smoke profile's small RRDB; this profile has none")
    model = make_model(cfg)   # seeded by train_lab first: the same initial weights as the notebook's control
    optimizer = torch.optim.Adam(model.parameters(), lr=pre["lr"], betas=tuple(cfg["betas"]), foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=pre["steps"], eta_min=pre["min_lr"])
    return Recipe(model, make_pretrain_set(cfg), None, dict(
        loss=pre["loss"], optimizer=optimizer, scheduler=scheduler, scheduler_interval="step", steps=pre["steps"],
        batch_size=pre["batch_size"], restore_best=False), name=f"small rrdbnet {dict(cfg['model'])} pretraining")


def build_training(cfg: dict, opts: dict, work: Path) -> Recipe:
    """Lab 03's run for ``labkit train 03``: the files derived from the data are made once, by rank 0, and reused.

    ``net=pretrain`` is the smoke notebook's pretraining instead (:func:`build_pretraining`, the course checkpoint
    ``03_rrdb_pretrain``). Otherwise, without weights, ``model`` (small) starts from random weights, and the full
    profile (``model`` None) refuses to start.
    """
    s, seed = cfg["scale"], opts["seed"]
    if opts["net"] == "pretrain":
        return build_pretraining(cfg, opts)
    if opts["net"] not in (None, "rrdbnet"):
        raise ValueError(f"lab 03: net must be 'rrdbnet' or 'pretrain', got {opts['net']!r}")
    root = Path(opts["data_root"]) if opts["data_root"] else work / "mini_dacon"
    if opts["data_root"] is None:
        if cfg["hr_size"] is None:
            raise ValueError("lab 03: this profile trains on the DACON SR data: pass -p data_root=<folder with "
                             "train/lr, train/hr, test/lr> (data/README.md), or use the smoke profile")
        photos = sample.sample_images("train")
        rank0_makes(lambda: reuse_or_make(
            root, {k: cfg[k] for k in ("scale", "hr_size", "crops_per_side", "val_names")},
            lambda: make_miniature(root, cfg, photos)))
    paths = dacon_sr.dacon_sr_paths(root)
    pairs = list_pairs(paths)
    if opts["max_images"]:
        pairs = pairs[: int(opts["max_images"])]
    train_pairs, val_pairs, _ = split_train_val(pairs, cfg["val_fraction"], seed)
    g, kind = cfg["grid"], cfg.get("patches", "grid")
    folder = work / (f"patches_{root.name}_train_{g}x{g}" if kind == "grid" else f"patches_{root.name}_train_random{g * g}_seed{seed}")
    rank0_makes(lambda: reuse_or_make(folder, {"pairs": [n for n, _, _ in train_pairs], "grid": g, "scale": s,
                                               **({} if kind == "grid" else {"patches": kind, "seed": seed})},
                                      lambda: export_train_patches(train_pairs, folder, cfg, seed)))
    train_set = make_train_set(folder, cfg, make_augment(cfg))
    if opts["data_root"] is None:   # the notebook's validation photo(s), whole
        val_pairs = sr.sr_pairs([(n, im) for n, im in sample.sample_images("train") if n in cfg["val_names"]], s)
        val_set = make_val_arrays(val_pairs, s) if val_pairs else None
    else:                           # the held-out training pairs, whole
        val_set = make_val_subset(val_pairs, paths, s) if val_pairs else None
    model = make_model(cfg)
    source, why = resolve_pretrained(cfg["pretrained"])
    if source is not None:
        rank0_first(lambda: weights.load_weights(model, source))   # rank 0 downloads, the others read the cache
        start = f"from {source} ({why})"
    elif cfg["model"] is None and cfg["pretrained"] != "scratch":
        raise RuntimeError(f"lab 03 fine-tunes the official RRDB_PSNR_x4 and found no weights ({why}): "
                           "pass -p pretrained=rrdb_psnr_x4 (download) or a local file, or -p pretrained=scratch")
    else:
        start = f"from random weights ({why})"
    optimizer = make_optimizer(model, cfg)
    return Recipe(model, train_set, val_set, dict(
        loss=dict(cfg["loss"]), optimizer=optimizer, scheduler=make_scheduler(optimizer, cfg), epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], early_stopping=cfg["patience"] if val_set is not None else None,
        monitor="val_loss", val_crop_border=s, val_y_channel=True, channels_last=cfg["channels_last"]), name=f"rrdbnet {start}")
