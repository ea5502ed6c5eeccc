"""Each lab's training run as a script: the model, data and ``fit`` arguments its notebook uses.

``labkit train NN --profile smoke|full -p key=value`` (and ``python -m labkit.train NN``) calls
:func:`run`, which builds lab ``NN``'s training from its profile (:mod:`labkit.profiles`) with
:func:`build` and trains it with :func:`labkit.train.fit`, writing ``last.pth`` / ``best.pth`` and
``history.json`` to ``runs/<profile>/train_NN/`` (or ``--out``). It is the script ``torchrun``
launches for multi-GPU training::

    torchrun --nproc_per_node=8 -m labkit.train 02 --profile full -p data_root=/data/DIV2K

``batch_size`` is the global batch (see :func:`labkit.train.fit`), so the same command on 1 or 8
GPUs takes the same optimizer steps.

Labs: ``02`` (EDSR, MSRResNet or SwinIR with ``-p net=...``, L1, Adam, StepLR; the notebook's
SR data: random aligned crops of the bundled training photos, LR by MATLAB bicubic, 000's
flips/transpose/rot90; or DIV2K with ``-p data_root=``), ``05`` (NAFNet, the study's
``baseline`` variant on SIDD-like arrays made from the bundled photos).

Besides the profile's settings, ``-p`` accepts the run options in :data:`RUN_OPTIONS`
(``net``, ``data_root``, ``seed``, ``max_steps``, ``device``, ``num_workers``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from labkit import distributed, env, profiles

__all__ = ["RUN_OPTIONS", "LABS", "Recipe", "build", "run", "split_overrides"]

#: run options accepted by ``-p`` next to the profile's settings, with their defaults
RUN_OPTIONS: dict[str, Any] = {"net": None, "data_root": None, "seed": 42, "max_steps": None,
                               "device": "auto", "num_workers": 0}


@dataclass
class Recipe:
    """What :func:`build` returns: ``fit(model, train_set, val_set, **fit_kwargs)`` is the run."""

    model: nn.Module
    train_set: Any
    val_set: Any
    fit_kwargs: dict = field(default_factory=dict)
    name: str = ""


def _sr_02(cfg: dict, opts: dict) -> Recipe:
    from labkit import models
    from labkit.data import augment, datasets, sample

    s, seed = cfg["scale"], opts["seed"]
    net = opts["net"] or "edsr"
    if net not in ("edsr", "srresnet", "swinir"):
        raise ValueError(f"lab 02: net must be 'edsr', 'srresnet' or 'swinir', got {net!r}")
    # augmentation draws differ between ranks (rank r: seed + r), as fit seeds rank r with seed + r
    sr_augment = augment.PairedAugment(augment.sr_000_transforms(p=0.5, shift_scale_rotate=False), scale=s,
                                       seed=seed + distributed.rank())
    if opts["data_root"] is None:
        photos = sample.sample_images("train")
        train_photos = [(n, im) for n, im in photos if n not in cfg["val_names"]]
        val_photos = [(n, im) for n, im in photos if n in cfg["val_names"]]
        repeat = max(1, cfg["iters_per_epoch"] * cfg["batch_size"] // len(train_photos))
        train_set = datasets.SRFolderDataset.from_arrays(train_photos, scale=s, gt_size=cfg["gt_size"],
                                                         crop_to_scale=True, augment=sr_augment, repeat=repeat)
        val_set = datasets.SRFolderDataset.from_arrays(val_photos, scale=s, crop_to_scale=True) if val_photos else None
    else:
        gt_root, lq_root = datasets.div2k_paths(opts["data_root"], s, split="train")
        train_set = datasets.PairedFolderDataset(lq_root, gt_root, scale=s, gt_size=cfg["gt_size"], augment=sr_augment)
        gt_root, lq_root = datasets.div2k_paths(opts["data_root"], s, split="valid")
        val_set = datasets.PairedFolderDataset(lq_root, gt_root, scale=s)
    if net == "edsr":
        model = models.EDSR(upscale=s, **cfg["edsr"])
    elif net == "srresnet":
        model = models.MSRResNet(upscale=s, **cfg["srresnet"])
    else:
        model = models.SwinIR(upscale=s, img_size=cfg["gt_size"] // s, **cfg["swinir"])
    lr = cfg["swinir_lr"] if net == "swinir" else cfg["lr"]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])
    return Recipe(model, train_set, val_set, dict(
        loss=nn.L1Loss(), optimizer=optimizer, scheduler=scheduler, epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], early_stopping=cfg["early_stopping"], val_crop_border=s,
        val_y_channel=True), name=net)


def _nafnet_05(cfg: dict, opts: dict) -> Recipe:
    from labkit import models
    from labkit.data import datasets, degrade, sample

    if opts["data_root"] is not None:
        raise ValueError("lab 05 via labkit train: data_root (SIDD arrays) is not wired yet; use the notebook")
    if opts["net"] not in (None, "nafnet"):
        raise ValueError(f"lab 05: net must be 'nafnet', got {opts['net']!r}")
    import numpy as np

    rng = np.random.default_rng(opts["seed"])
    size = cfg["sidd_size"]
    crops = []
    for _, im in sample.sample_images("train"):
        for _ in range(cfg["crops_per_photo"]):
            y = int(rng.integers(0, im.shape[0] - size + 1))
            x = int(rng.integers(0, im.shape[1] - size + 1))
            crops.append(im[y:y + size, x:x + size])
    gt = np.stack(crops).astype(np.float32)
    lq = np.stack([degrade.poisson_gaussian_noise(g, **cfg["noise"], seed=rng) for g in gt]).astype(np.float32)
    n_val = max(1, len(gt) // 8)
    train_set = datasets.ArrayPairDataset(lq[n_val:], gt[n_val:])
    val_set = datasets.ArrayPairDataset(lq[:n_val], gt[:n_val])
    spec = cfg["variant_specs"]["baseline"]
    model = models.NAFNet(img_channel=3, width=cfg["width"], **cfg["archs"][spec["arch"]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.9), weight_decay=0.0)
    steps = cfg["epochs"] * cfg["iters_per_epoch"]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=1e-7)
    return Recipe(model, train_set, val_set, dict(
        loss="psnr", optimizer=optimizer, scheduler=scheduler, scheduler_interval="step", steps=steps,
        epochs=None, batch_size=cfg["batch_size"]), name="nafnet")


#: lab number -> builder ``(cfg, options) -> Recipe``
LABS: dict[str, Callable[[dict, dict], Recipe]] = {"02": _sr_02, "05": _nafnet_05}


def _lab(nb: str) -> str:
    key = str(nb).strip()
    key = f"{int(key):02d}" if key.isdigit() else key[:2]
    if key not in LABS:
        raise ValueError(f"labkit train: no training recipe for lab {nb!r}; available: {sorted(LABS)}")
    return key


def split_overrides(nb: str, profile: str, overrides: dict[str, Any]) -> tuple[dict, dict]:
    """``(cfg, options)``: the profile with its overridden settings, and the run options.

    Raises:
        ValueError: an unknown lab or profile, or a key that is neither a setting nor an option.
    """
    key = _lab(nb)
    base = profiles.get(key, profile)
    unknown = [k for k in overrides if k not in base and k not in RUN_OPTIONS]
    if unknown:
        raise ValueError(f"lab {key}: unknown -p key(s) {unknown}; profile settings: {sorted(base)}; "
                         f"run options: {sorted(RUN_OPTIONS)}")
    cfg = profiles.get(key, profile, **{k: v for k, v in overrides.items() if k in base})
    opts = {**RUN_OPTIONS, **{k: v for k, v in overrides.items() if k in RUN_OPTIONS}}
    return cfg, opts


def build(nb: str, cfg: dict, options: dict | None = None) -> Recipe:
    """Lab ``nb``'s model, training / validation sets and :func:`labkit.train.fit` keyword arguments.

    ``cfg`` is the resolved profile (:func:`labkit.profiles.get`); ``options`` the run options
    (:data:`RUN_OPTIONS`, defaults filled in). Raises ValueError for an unknown lab or option value.
    """
    opts = {**RUN_OPTIONS, **(options or {})}
    return LABS[_lab(nb)](cfg, opts)


def run(nb: str, profile: str = "smoke", overrides: dict[str, Any] | None = None, *,
        out: str | os.PathLike | None = None, resume: bool = True, progress: bool | None = None):
    """Train lab ``nb`` (under torchrun: on every process) and return the :class:`labkit.train.History`.

    Checkpoints (``last.pth``, ``best.pth``) and ``history.json`` go to ``out`` (default
    ``runs/<profile>/train_<NN>/``); an existing ``last.pth`` is resumed unless ``resume=False``.
    ``max_steps`` caps the optimizer steps (the profile's epochs still bound the run).
    """
    from labkit.train import fit

    key = _lab(nb)
    cfg, opts = split_overrides(key, profile, overrides or {})
    started = distributed.init_from_env()
    try:
        env.seed_everything(opts["seed"])  # the same initial weights on every rank
        recipe = build(key, cfg, opts)
        kwargs = dict(recipe.fit_kwargs)
        if opts["max_steps"] is not None:
            cap = int(opts["max_steps"])
            kwargs["steps"] = min(cap, kwargs["steps"]) if kwargs.get("steps") else cap
        out_dir = Path(out) if out else env.runs_dir() / profile / f"train_{key}"
        if distributed.is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
            print(f"labkit train {key} ({recipe.name}, profile {profile}) on {distributed.world_size()} "
                  f"process(es), global batch {kwargs.get('batch_size')} -> {out_dir}", flush=True)
        distributed.barrier()
        history = fit(recipe.model, recipe.train_set, recipe.val_set, checkpoint_dir=out_dir, resume=resume,
                      device=opts["device"], num_workers=int(opts["num_workers"]), seed=opts["seed"],
                      progress=progress if progress is not None else os.isatty(2), **kwargs)
        if distributed.is_main():
            history.save_json(out_dir / "history.json")
        return history
    finally:
        if started and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
