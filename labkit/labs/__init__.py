"""Each lab's training, written down once: the builders notebooks 02-06 and ``labkit train NN`` both call.

A lab's module (:mod:`~labkit.labs.lab02` ... :mod:`~labkit.labs.lab06`) holds its set-up as public
functions named after what they build (data split, patch export, model, optimizer, schedule, loss,
GAN step), and ``build_training(cfg, options, work_dir)``, the lab's run as a script: the model, data
and ``fit`` arguments its notebook uses. Its docstring carries the write-up's reasons.

``labkit train NN --profile smoke|full -p key=value`` (and ``python -m labkit.labs NN``) calls
:func:`train_lab`, which builds lab ``NN``'s training from its profile (:mod:`labkit.profiles`) with
`build_recipe` and trains it with :func:`labkit.train.fit` (lab 06: :func:`labkit.train.fit_gan`),
writing ``last.pth`` / ``best.pth`` and ``history.json`` to ``runs/<profile>/train_NN/`` (or
``--out``). ``python -m labkit.labs`` is the script ``torchrun`` launches for multi-GPU training::

    torchrun --nproc_per_node=8 -m labkit.labs 02 --profile full -p data_root=/data/DIV2K

``batch_size`` is the global batch (see :func:`labkit.train.fit`), so the same command on 1 or 8
GPUs takes the same optimizer steps.

Labs: ``02`` EDSR / MSRResNet / SwinIR (``-p net=``); ``03`` RRDBNet fine-tuning (write-up 000; it
starts from ``-p pretrained=``, the full profile loads ``rrdb_psnr_x4``; the smoke notebook's own
small pretraining is not part of this script); ``04`` HINet flare removal (001); ``05`` NAFNet, the
study's ``baseline`` variant (004); ``06`` the inpainting + colorization GAN (002). Each uses the
lab's real layout with ``-p data_root=``, else the bundled photos.

Besides the profile's settings, ``-p`` accepts the run options in :data:`RUN_OPTIONS` (``net``,
``data_root``, ``seed``, ``max_steps``, ``max_images``, ``device``, ``num_workers``). Files a lab
derives from the data (03's grid patches and miniature, 04's patches of real photos) are written
once, by rank 0, under the run's folder and reused.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from labkit import distributed, env, parameters, profiles
from labkit.labs import lab02, lab03, lab04, lab05, lab06
from labkit.labs.common import RUN_OPTIONS, Recipe, rank0_first, rank0_makes, reuse_or_make
from labkit.profiles import parse_parameter
from labkit.train import History, fit, fit_gan

__all__ = ["RUN_OPTIONS", "LABS", "Recipe", "build_recipe", "train_lab", "split_overrides", "lab_key",
           "add_train_arguments", "train_from_args", "rank0_first", "rank0_makes", "reuse_or_make",
           "lab02", "lab03", "lab04", "lab05", "lab06"]

#: lab number -> its module (each has ``build_training(cfg, options, work_dir) -> Recipe``)
LABS = {"02": lab02, "03": lab03, "04": lab04, "05": lab05, "06": lab06}


def lab_key(nb: str) -> str:
    """``"02"`` for ``2``, ``"02"`` or ``"02_sr_trials..."``.

    Raises:
        ValueError: no such lab.
    """
    key = str(nb).strip()
    key = f"{int(key):02d}" if key.isdigit() else key[:2]
    if key not in LABS:
        raise ValueError(f"labkit train: no training recipe for lab {nb!r}; available: {sorted(LABS)}")
    return key


def split_overrides(nb: str, profile: str, overrides: dict[str, Any]) -> tuple[dict, dict]:
    """``(cfg, options)``: the profile with its overridden settings, and the run options.

    Every key and value is checked before anything is built (:mod:`labkit.parameters`): run options
    by their rules, profile settings by their rule or the type of the profile's value.

    Raises:
        ValueError: an unknown lab or profile.
        labkit.parameters.ParameterError (a ValueError): a key that is neither a setting nor an option (the
            message lists both and the closest match), or a value of the wrong type or range.
    """
    key = lab_key(nb)
    base = profiles.get(key, profile)
    for k in overrides:
        if k not in base and k not in RUN_OPTIONS:
            raise parameters.ParameterError(parameters.unknown_key_message(
                k, [*base, *RUN_OPTIONS], f"labkit train {key} --profile {profile}"))
    settings = {k: parameters.check_setting(k, v, base[k]) for k, v in overrides.items() if k in base}
    options = {k: parameters.check_value(k, v) for k, v in overrides.items() if k in RUN_OPTIONS}
    return profiles.get(key, profile, **settings), {**RUN_OPTIONS, **options}


def build_recipe(nb: str, cfg: dict, options: dict | None = None, work_dir: str | os.PathLike | None = None) -> Recipe:
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
    key = lab_key(nb)
    opts = {**RUN_OPTIONS, **(options or {})}
    work = Path(work_dir) if work_dir else env.runs_dir() / "smoke" / f"train_{key}"
    return LABS[key].build_training(cfg, opts, work)


def train_lab(nb: str, profile: str = "smoke", overrides: dict[str, Any] | None = None, *,
              out: str | os.PathLike | None = None, resume: bool = True, progress: bool | None = None) -> History:
    """Train lab ``nb`` (under torchrun: on every process) and return the :class:`labkit.train.History`.

    Checkpoints (``last.pth``, ``best.pth``) and ``history.json`` go to ``out`` (default
    ``runs/<profile>/train_<NN>/``), with the files derived from the data; an existing
    ``last.pth`` is resumed unless ``resume=False``. ``max_steps`` caps the optimizer steps (the
    profile's epochs still bound the run; lab 06's GAN trains one epoch of ``max_steps`` batches).
    """
    key = lab_key(nb)
    cfg, opts = split_overrides(key, profile, overrides or {})
    out_dir = Path(out) if out else env.runs_dir() / profile / f"train_{key}"
    started = distributed.init_from_env()
    try:
        env.seed_everything(opts["seed"])  # the same initial weights on every rank
        if distributed.is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        recipe = build_recipe(key, cfg, opts, work_dir=out_dir)
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


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``labkit train`` and ``python -m labkit.labs``: ``NN --profile -p key=value --out --no-resume``."""
    parser.add_argument("notebook", help="lab number: 02, 03, 04, 05 or 06")
    parser.add_argument("--profile", choices=env.PROFILES, default="smoke")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile setting or a run option (net, data_root, seed, max_steps, max_images, "
                             "device, num_workers); repeatable")
    parser.add_argument("--out", help="checkpoint folder (default runs/<profile>/train_NN/)")
    parser.add_argument("--no-resume", action="store_true", help="start over instead of resuming last.pth")
    return parser


def train_from_args(args: argparse.Namespace) -> int:
    """Run :func:`train_lab` from :func:`add_train_arguments`' arguments; rank 0 prints the last epoch. Returns 0."""
    params = dict(parse_parameter(p) for p in args.param)
    history = train_lab(args.notebook, args.profile, params, out=args.out, resume=not args.no_resume)
    last = history.epochs[-1] if history.epochs else {}
    if last and (not os.environ.get("RANK") or os.environ.get("RANK") == "0"):
        print(f"done: {len(history.epochs)} epoch(s), step {last.get('step')}, train_loss {last.get('train_loss'):.5g}"
              + (f", val_psnr {last['val_psnr']:.2f} dB" if last.get("val_psnr") is not None else ""))
    return 0
