"""Each lab's training run as a script: the model, data and ``fit`` arguments its notebook uses.

``labkit train NN --profile smoke|full -p key=value`` (and ``python -m labkit.train NN``) calls
:func:`run`, which builds lab ``NN``'s training from its profile (:mod:`labkit.profiles`) with
:func:`build` and trains it with :func:`labkit.train.fit`, writing ``last.pth`` / ``best.pth`` and
``history.json`` to ``runs/<profile>/train_NN/`` (or ``--out``). It is the script ``torchrun``
launches for multi-GPU training::

    torchrun --nproc_per_node=8 -m labkit.train 02 --profile full -p data_root=/data/DIV2K

``batch_size`` is the global batch (see :func:`labkit.train.fit`), so the same command on 1 or 8
GPUs takes the same optimizer steps.

Labs (each the write-up's recipe, as its notebook runs it):

- ``02``: EDSR, MSRResNet or SwinIR (``-p net=...``), L1, Adam, StepLR; random aligned crops of
  the bundled training photos (MATLAB-bicubic LR, 000's flips/transpose/rot90), or DIV2K with
  ``-p data_root=``.
- ``03``: RRDBNet fine-tuning, write-up 000: 2*L1 + L2, Adam 1e-4 betas (0.9, 0.99), StepLR(3,
  0.5), early stopping on the validation loss (patience 2), batch 4, 7 epochs, on the 4 x 4 grid
  patches of the DACON SR layout (``-p data_root=``; else a miniature from the bundled photos).
  It starts from ``-p pretrained=`` (a name in :data:`labkit.weights.NAMED_WEIGHTS`, a local file
  in any official RRDB layout, or ``scratch``); the full profile loads ``rrdb_psnr_x4``. The smoke
  notebook's own small pretraining is not part of this script.
- ``04``: HINet flare removal, write-up 001: HSV-selected 256 px patches (+ larger windows
  resized), Charbonnier, Adam, cosine over the epochs, gradient clipping, augmentation from
  epoch ``aug_start_epoch`` on; on the contest layout or Flare7K pairs (``-p data_root=``), else
  flares added to the bundled photos. An epoch is one pass over the patches.
- ``05``: NAFNet, the study's ``baseline`` variant (SIDD arrays with ``-p data_root=``, else
  SIDD-like arrays made from the bundled photos as the notebook makes them), PSNR loss, AdamW.
- ``06``: the inpainting + colorization GAN, write-up 002's recipe (LSGAN + gradient penalty,
  pixel + SSIM content losses, AdamW, StepLR), with :func:`labkit.gan.fit_gan`; on the DACON
  layout (``-p data_root=``) or masked crops of the bundled photos.

Besides the profile's settings, ``-p`` accepts the run options in :data:`RUN_OPTIONS`
(``net``, ``data_root``, ``seed``, ``max_steps``, ``max_images``, ``device``, ``num_workers``).
Files a recipe derives from the data (03's grid patches, 04's patches of real photos, 03's
miniature) are written once, by rank 0, under the run's folder and reused.
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
                               "max_images": None, "device": "auto", "num_workers": 0}


@dataclass
class Recipe:
    """What :func:`build` returns.

    The run is ``fit(model, train_set, val_set, **fit_kwargs)``, or, when ``discriminator`` is set,
    ``fit_gan(model, discriminator, train_set, val_set, **fit_kwargs)`` (:mod:`labkit.gan`).
    """

    model: nn.Module
    train_set: Any
    val_set: Any
    fit_kwargs: dict = field(default_factory=dict)
    name: str = ""
    discriminator: nn.Module | None = None


def _rank0_first(make: Callable[[], Any]) -> Any:
    """``make()`` on rank 0 first, then on the other ranks (files it writes or downloads are there)."""
    if distributed.is_main():
        result = make()
        distributed.barrier()
    else:
        distributed.barrier()
        result = make()
    return result


def _rank0_makes(make: Callable[[], Any]) -> None:
    """``make()`` on rank 0 only (it writes files the run reads), then every rank goes on."""
    if distributed.is_main():
        make()
    distributed.barrier()


def _reuse_or_make(folder: Path, settings: dict, make: Callable[[], Any]) -> None:
    """Keep ``folder`` if its ``.complete`` stamp records ``settings``; else empty it and run ``make()``
    (which fills it), then stamp it. An interrupted ``make()`` leaves no stamp and is redone."""
    import json
    import shutil

    stamp = folder / ".complete"
    want = json.dumps(settings, sort_keys=True, default=str)
    if stamp.is_file() and stamp.read_text() == want:
        return
    if folder.is_dir():
        shutil.rmtree(folder)   # stale files of other settings would join the dataset
    make()
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)


def _sr_02(cfg: dict, opts: dict, work: Path) -> Recipe:
    from labkit import models
    from labkit.data import augment, pairing, sr, sample

    s, seed = cfg["scale"], opts["seed"]
    net = opts["net"] or "edsr"
    if net not in ("edsr", "srresnet", "swinir"):
        raise ValueError(f"lab 02: net must be 'edsr', 'srresnet' or 'swinir', got {net!r}")
    # draws follow torch's RNG, which fit seeds with seed + rank (a different stream per rank) and
    # saves in its checkpoints (a resumed run draws what the straight run would have drawn)
    sr_augment = augment.PairedAugment(augment.sr_000_transforms(p=0.5, shift_scale_rotate=False), scale=s)
    if opts["data_root"] is None:
        photos = sample.sample_images("train")
        train_photos = [(n, im) for n, im in photos if n not in cfg["val_names"]]
        val_photos = [(n, im) for n, im in photos if n in cfg["val_names"]]
        repeat = max(1, cfg["iters_per_epoch"] * cfg["batch_size"] // len(train_photos))
        train_set = sr.SRFolderDataset.from_arrays(train_photos, scale=s, gt_size=cfg["gt_size"],
                                                         crop_to_scale=True, augment=sr_augment, repeat=repeat)
        val_set = sr.SRFolderDataset.from_arrays(val_photos, scale=s, crop_to_scale=True) if val_photos else None
    else:
        gt_root, lq_root = sr.div2k_paths(opts["data_root"], s, split="train")
        train_set = pairing.PairedFolderDataset(lq_root, gt_root, scale=s, gt_size=cfg["gt_size"], augment=sr_augment)
        gt_root, lq_root = sr.div2k_paths(opts["data_root"], s, split="valid")
        val_set = pairing.PairedFolderDataset(lq_root, gt_root, scale=s)
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


def _rrdb_weights_source(choice: Any) -> tuple[Any, str]:
    """(weights source or None, why) for lab 03's ``pretrained`` setting (as notebook 03 resolves it)."""
    if choice in (None, "scratch"):
        return None, f"pretrained={choice!r}"
    if choice != "auto":
        return choice, f"pretrained={choice!r}"
    if os.environ.get("LABKIT_RRDB_PSNR_X4"):
        return os.environ["LABKIT_RRDB_PSNR_X4"], "$LABKIT_RRDB_PSNR_X4"
    if env.is_colab():
        return "rrdb_psnr_x4", "Colab: the named download"
    return None, "no local weights ($LABKIT_RRDB_PSNR_X4 unset) and no download outside Colab"


def _rrdb_03(cfg: dict, opts: dict, work: Path) -> Recipe:
    import numpy as np

    from labkit import io as lio
    from labkit import models, weights
    from labkit.data import augment, dacon_sr, pairing, patch_export, sr, sample

    s, seed = cfg["scale"], opts["seed"]
    if opts["net"] not in (None, "rrdbnet"):
        raise ValueError(f"lab 03: net must be 'rrdbnet', got {opts['net']!r}")
    root = Path(opts["data_root"]) if opts["data_root"] else work / "mini_dacon"
    if opts["data_root"] is None:
        if cfg["hr_size"] is None:
            raise ValueError("lab 03: this profile trains on the DACON SR data: pass -p data_root=<folder with "
                             "train/lr, train/hr, test/lr> (data/README.md), or use the smoke profile")
        photos = sample.sample_images("train")
        _rank0_makes(lambda: _reuse_or_make(
            root, {k: cfg[k] for k in ("scale", "hr_size", "crops_per_side", "val_names")},
            lambda: dacon_sr.make_dacon_sr_miniature(
                root, [(n, im) for n, im in photos if n not in cfg["val_names"]], sample.sample_images("heldout"),
                scale=s, hr_size=cfg["hr_size"], crops_per_side=cfg["crops_per_side"])))
    paths = dacon_sr.dacon_sr_paths(root)
    pairs = [(p.stem, p, paths["train_hr"] / p.name) for p in lio.list_images(paths["train_lr"])]
    if opts["max_images"]:
        pairs = pairs[: int(opts["max_images"])]
    n_val = int(round(cfg["val_fraction"] * len(pairs)))
    val_idx = set(np.random.default_rng(seed).permutation(len(pairs))[:n_val].tolist())
    train_pairs = [p for i, p in enumerate(pairs) if i not in val_idx]
    g = cfg["grid"]
    folder = work / f"patches_{root.name}_train_{g}x{g}"
    _rank0_makes(lambda: _reuse_or_make(folder, {"pairs": [n for n, _, _ in train_pairs], "grid": g, "scale": s},
                                        lambda: patch_export.export_grid_patches(train_pairs, folder, rows=g, cols=g, scale=s)))
    sr_augment = augment.PairedAugment(augment.sr_000_transforms(p=cfg["augment_p"]), scale=s)
    train_set = pairing.PairedFolderDataset(folder / "lq", folder / "gt", scale=s, augment=sr_augment)
    if opts["data_root"] is None:   # the notebook's validation photo(s), whole
        val = sr.sr_pairs([(n, im) for n, im in sample.sample_images("train") if n in cfg["val_names"]], s)
        val_set = pairing.ArrayPairDataset([lq for _, lq, _ in val], [gt for _, _, gt in val],
                                            names=[n for n, _, _ in val], scale=s) if val else None
    else:                           # the held-out training pairs, whole
        all_train = pairing.PairedFolderDataset(paths["train_lr"], paths["train_hr"], scale=s)
        stems = [gt.stem for _, gt in all_train.pairs]
        val_set = torch.utils.data.Subset(all_train, [stems.index(pairs[i][0]) for i in sorted(val_idx)]) if val_idx else None
    model = models.build("rrdbnet_x4") if cfg["model"] is None else models.RRDBNet(scale=s, **cfg["model"])
    source, why = _rrdb_weights_source(cfg["pretrained"])
    if source is not None:
        _rank0_first(lambda: weights.load_weights(model, source))   # rank 0 downloads, the others read the cache
        start = f"from {source} ({why})"
    elif cfg["model"] is None and cfg["pretrained"] != "scratch":
        raise RuntimeError(f"lab 03 fine-tunes the official RRDB_PSNR_x4 and found no weights ({why}): "
                           "pass -p pretrained=rrdb_psnr_x4 (download) or a local file, or -p pretrained=scratch")
    else:
        start = f"from random weights ({why})"
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])
    return Recipe(model, train_set, val_set, dict(
        loss=dict(cfg["loss"]), optimizer=optimizer, scheduler=scheduler, epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], early_stopping=cfg["patience"] if val_set is not None else None,
        monitor="val_loss", val_crop_border=s, val_y_channel=True), name=f"rrdbnet {start}")


def _hinet_04(cfg: dict, opts: dict, work: Path) -> Recipe:
    import numpy as np

    from labkit import losses, models
    from labkit.data import augment, flare, flare_synth, pairing, patch_export, splitting, sample

    if opts["net"] not in (None, "hinet"):
        raise ValueError(f"lab 04: net must be 'hinet', got {opts['net']!r}")
    seed, P, S = opts["seed"], cfg["patch_size"], cfg["stride"]
    rng = np.random.default_rng(seed)
    if opts["data_root"] is None:   # flares drawn on the bundled photos, several per photo (as the notebook)
        photos = sample.sample_images("train")
        pairs = [(f"{n}#{k}", flare_synth.add_flare(im, rng)[0], im) for n, im in photos for k in range(cfg["flares_per_photo"])]
        groups = [n for n, _ in photos]
    else:
        pairs = flare.flare_pairs(opts["data_root"])[: opts["max_images"]]
        groups = [n for n, _, _ in pairs]
    train_idx, _ = splitting.kfold_split(len(groups), folds=cfg["folds"], valid_fold=cfg["valid_fold"], seed=seed)
    train_groups = {groups[i] for i in train_idx}
    train_pairs = [p for p in pairs if p[0].split("#")[0] in train_groups]
    valid_pairs = [p for p in pairs if p[0].split("#")[0] not in train_groups]
    kw = dict(img_size=P, stride=S, v_threshold=cfg["hsv_threshold"], larger_sizes=cfg["larger_sizes"],
              max_larger_per_image=cfg["max_larger_per_image"], seed=seed)
    pick = np.random.default_rng(seed)
    if opts["data_root"] is None:   # in memory, the same on every rank (seeded)
        made = patch_export.make_patch_pairs(train_pairs, process_num=cfg["process_num"], **kw)
        train_set = pairing.ArrayPairDataset(made["lq"], made["gt"], scale=1)
        vp = patch_export.make_patch_pairs(valid_pairs, img_size=P, stride=S, v_threshold=cfg["hsv_threshold"])
        idx = pick.permutation(len(vp["lq"]))[: cfg["val_patches"]]
        val_set = pairing.ArrayPairDataset(vp["lq"][idx], vp["gt"][idx], scale=1)
    else:                           # real photos: patches on disk, made once by rank 0
        stamp = {**kw, "pairs": [n for n, _, _ in train_pairs]}
        _rank0_makes(lambda: _reuse_or_make(work / "patches", stamp, lambda: patch_export.make_patch_pairs(
            train_pairs, process_num=cfg["process_num"], save_dir=str(work / "patches"), **kw)))
        vkw = dict(img_size=P, stride=S, v_threshold=cfg["hsv_threshold"])
        _rank0_makes(lambda: _reuse_or_make(work / "val_patches", {**vkw, "pairs": [n for n, _, _ in valid_pairs]},
                                            lambda: patch_export.make_patch_pairs(valid_pairs, process_num=cfg["process_num"],
                                                                             save_dir=str(work / "val_patches"), **vkw)))
        train_set = pairing.PairedFolderDataset(work / "patches" / "input", work / "patches" / "label")
        val_all = pairing.PairedFolderDataset(work / "val_patches" / "input", work / "val_patches" / "label")
        val_set = torch.utils.data.Subset(val_all, [int(i) for i in pick.permutation(len(val_all))[: cfg["val_patches"]]])
    # 001: no augmentation for the first epochs; fit calls set_epoch on it at every epoch
    train_set.augment = augment.AdaptiveAugment(augment.PairedAugment(augment.flare_001_transforms()),
                                                start_epoch=cfg["aug_start_epoch"])
    model = models.HINet(**cfg["hinet"])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"], eta_min=cfg["min_lr"])
    return Recipe(model, train_set, val_set, dict(
        loss=losses.make_loss(cfg["loss"]), optimizer=optimizer, scheduler=scheduler, epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], early_stopping=cfg["early_stopping"], grad_clip=cfg["grad_clip"], amp=True),
        name=f"hinet wf{cfg['hinet']['wf']}")


def _nafnet_05(cfg: dict, opts: dict, work: Path) -> Recipe:
    import numpy as np

    from labkit import models
    from labkit.data import augment, noise_blur, pairing, patch_select, sidd, sample

    if opts["net"] not in (None, "nafnet"):
        raise ValueError(f"lab 05: net must be 'nafnet', got {opts['net']!r}")
    seed, size = opts["seed"], cfg["sidd_size"]
    if opts["data_root"] is None:   # the notebook's SIDD-like arrays: 4 photos train, 1 validates, k crops each
        photos, k = sample.sample_images("train"), cfg["crops_per_photo"]
        rng = np.random.default_rng(seed)
        gts = [patch_select.random_crop(im, size, rng) for _, im in photos[:5] for _ in range(k)]
        gts = np.round(np.stack(gts) * 255).astype(np.uint8)
        noisy = np.stack([np.round(noise_blur.poisson_gaussian_noise(g, **cfg["noise"], seed=seed + i) * 255)
                          for i, g in enumerate(gts)]).astype(np.uint8)
        splits = {"train": (noisy[: 4 * k], gts[: 4 * k]), "val": (noisy[4 * k:], gts[4 * k:])}
    else:
        counts = tuple(min(c, opts["max_images"] or c) for c in cfg["sidd_counts"])
        splits = sidd.sidd_npy_splits(opts["data_root"], counts=counts, size=size)
    flip_aug = augment.PairedAugment(augment.nafnet_004_transforms(p=0.5))
    train_set = pairing.ArrayPairDataset(*splits["train"], augment=flip_aug, scale=1)
    val_set = pairing.ArrayPairDataset(*splits["val"])
    spec = cfg["variant_specs"]["baseline"]
    model = models.NAFNet(img_channel=3, width=cfg["width"], drop_out_rate=spec["drop_out_rate"], **cfg["archs"][spec["arch"]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.9), weight_decay=0.0)
    steps = cfg["epochs"] * cfg["iters_per_epoch"]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=1e-7)
    return Recipe(model, train_set, val_set, dict(
        loss="psnr", optimizer=optimizer, scheduler=scheduler, scheduler_interval="step", steps=steps,
        epochs=None, batch_size=cfg["batch_size"]), name="nafnet baseline")


def _gan_06(cfg: dict, opts: dict, work: Path) -> Recipe:
    from labkit import gan, losses, models
    from labkit.data import inpainting, sample

    if opts["net"] not in (None, "gan"):
        raise ValueError(f"lab 06: net must be 'gan', got {opts['net']!r}")
    seed = opts["seed"]
    if opts["data_root"] is None:
        if cfg["patch_size"] is None:
            raise ValueError("lab 06: this profile trains on whole competition images: pass -p data_root=<DACON "
                             "inpainting folder> (data/README.md), or use the smoke profile")
        train_set = inpainting.InpaintingPhotoDataset(sample.sample_images("train"), cfg["patch_size"], cfg["mask_fraction"],
                                                    length=cfg["iters_per_epoch"] * cfg["batch_size"])
        val_set = None
    else:
        def cap(limit: int | None) -> int | None:
            given = [int(x) for x in (limit, opts["max_images"]) if x]
            return min(given) if given else None

        train_set = inpainting.DaconInpaintingDataset(opts["data_root"], "train", val_fraction=cfg["val_fraction"],
                                                    seed=seed, limit=cap(cfg["train_limit"]))
        val_set = inpainting.DaconInpaintingDataset(opts["data_root"], "val", val_fraction=cfg["val_fraction"],
                                                  seed=seed, limit=cap(cfg["val_limit"]))
    g = models.InpaintingGenerator(num_in_ch=2, num_out_ch=3, **cfg["generator"])
    d = models.PatchDiscriminator(input_nc=2 + 3, **cfg["discriminator"])
    content = {"pix": (cfg["pixel_weight"], nn.L1Loss()), "ssim": (cfg["ssim_weight"], losses.SSIMLoss())}
    step = gan.GANStep(content, gan_loss="lsgan", adv_weight=cfg["adv_weight"], lambda_gp=cfg["lambda_gp"],
                       gp_reduction=cfg["gp_reduction"], d_input=_concat_condition,
                       collapse_loss=cfg["collapse_loss"], collapse_patience=cfg["collapse_patience"])

    def adamw(net: nn.Module, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(net.parameters(), lr=lr, betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"])

    opt_g, opt_d = adamw(g, cfg["lr_g"]), adamw(d, cfg["lr_d"])
    return Recipe(g, train_set, val_set, dict(
        step=step, opt_g=opt_g, opt_d=opt_d,
        sched_g=torch.optim.lr_scheduler.StepLR(opt_g, cfg["g_step"], cfg["lr_gamma"]),
        sched_d=torch.optim.lr_scheduler.StepLR(opt_d, cfg["d_step"], cfg["lr_gamma"]),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"]), name="inpainting GAN + GP (002)", discriminator=d)


def _concat_condition(lq: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """002's conditional discriminator input: the (gray, mask) input next to the RGB image."""
    return torch.cat([lq, img], 1)


#: lab number -> builder ``(cfg, options) -> Recipe``
LABS: dict[str, Callable[[dict, dict, Path], Recipe]] = {
    "02": _sr_02, "03": _rrdb_03, "04": _hinet_04, "05": _nafnet_05, "06": _gan_06}


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


def build(nb: str, cfg: dict, options: dict | None = None, work_dir: str | os.PathLike | None = None) -> Recipe:
    """Lab ``nb``'s model, training / validation sets and trainer keyword arguments (:class:`Recipe`).

    ``cfg`` is the resolved profile (:func:`labkit.profiles.get`); ``options`` the run options
    (:data:`RUN_OPTIONS`, defaults filled in); ``work_dir`` the folder for files derived from the
    data (default ``runs/smoke/train_NN``). Under torchrun, call it on every rank: rank 0 writes
    those files while the others wait.

    Raises:
        ValueError: an unknown lab or option value.
        FileNotFoundError: a ``data_root`` not in the lab's layout (the message names the path).
        RuntimeError: lab 03's full profile without loadable RRDB_PSNR_x4 weights.
    """
    key = _lab(nb)
    opts = {**RUN_OPTIONS, **(options or {})}
    work = Path(work_dir) if work_dir else env.runs_dir() / "smoke" / f"train_{key}"
    return LABS[key](cfg, opts, work)


def run(nb: str, profile: str = "smoke", overrides: dict[str, Any] | None = None, *,
        out: str | os.PathLike | None = None, resume: bool = True, progress: bool | None = None):
    """Train lab ``nb`` (under torchrun: on every process) and return the :class:`labkit.train.History`.

    Checkpoints (``last.pth``, ``best.pth``) and ``history.json`` go to ``out`` (default
    ``runs/<profile>/train_<NN>/``), with the files derived from the data; an existing
    ``last.pth`` is resumed unless ``resume=False``. ``max_steps`` caps the optimizer steps (the
    profile's epochs still bound the run; lab 06's GAN trains one epoch of ``max_steps`` batches).
    """
    from labkit.gan import fit_gan
    from labkit.train import fit

    key = _lab(nb)
    cfg, opts = split_overrides(key, profile, overrides or {})
    out_dir = Path(out) if out else env.runs_dir() / profile / f"train_{key}"
    started = distributed.init_from_env()
    try:
        env.seed_everything(opts["seed"])  # the same initial weights on every rank
        if distributed.is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        recipe = build(key, cfg, opts, work_dir=out_dir)
        kwargs = dict(recipe.fit_kwargs)
        train_set = recipe.train_set
        if opts["max_steps"] is not None:
            cap = int(opts["max_steps"])
            if recipe.discriminator is not None:   # fit_gan counts epochs: one epoch of at most cap batches
                train_set = torch.utils.data.Subset(train_set, range(min(len(train_set), cap * kwargs["batch_size"])))
                kwargs["epochs"] = 1
            else:
                kwargs["steps"] = min(cap, kwargs["steps"]) if kwargs.get("steps") else cap
        if distributed.is_main():
            print(f"labkit train {key} ({recipe.name}, profile {profile}) on {distributed.world_size()} "
                  f"process(es), global batch {kwargs.get('batch_size')} -> {out_dir}", flush=True)
        common = dict(checkpoint_dir=out_dir, resume=resume, device=opts["device"],
                      num_workers=int(opts["num_workers"]), seed=opts["seed"],
                      progress=progress if progress is not None else os.isatty(2))
        if recipe.discriminator is not None:
            history = fit_gan(recipe.model, recipe.discriminator, train_set, recipe.val_set, **common, **kwargs)
        else:
            history = fit(recipe.model, train_set, recipe.val_set, **common, **kwargs)
        if distributed.is_main():
            history.save_json(out_dir / "history.json")
        return history
    finally:
        if started and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
