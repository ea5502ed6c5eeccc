"""Each lab's training, written down once: the builders notebooks 02-06 and ``labkit train NN`` both call.

A lab's module (:mod:`~labkit.labs.lab02` ... :mod:`~labkit.labs.lab06`) holds its set-up as public
functions named after what they build (data split, patch export, model, optimizer, schedule, loss,
GAN step), and ``build_training(cfg, options, work_dir)``, the lab's run as a script: the model, data
and ``fit`` arguments its notebook uses. Its docstring carries the write-up's reasons.

``labkit train NN --profile smoke|full -p key=value`` (and ``python -m labkit.labs NN``) calls
:func:`train_lab`, which builds lab ``NN``'s training from its profile (:mod:`labkit.profiles`) with
`build_recipe` and trains it with :func:`labkit.train.fit` (lab 06: :func:`labkit.train.fit_gan`),
writing ``last.pth`` (every ``checkpoint_interval`` s and after every epoch) / ``best.pth`` and
``history.json`` to ``runs/<profile>/train_NN[_<net>][@<overrides>]/`` (:func:`default_out_dir`, or
``--out``). A run resumes its ``last.pth`` only with the same settings (:func:`run_settings`). ``python -m labkit.labs`` is the script ``torchrun`` launches for multi-GPU training::

    torchrun --nproc_per_node=8 -m labkit.labs 02 --profile full -p data_root=/data/DIV2K

``batch_size`` is the global batch (see :func:`labkit.train.fit`), so the same command on 1 or 8
GPUs takes the same optimizer steps.

Labs: ``02`` EDSR / MSRResNet / SwinIR (``-p net=``); ``03`` RRDBNet fine-tuning (write-up 000; it
starts from ``-p pretrained=``, the full profile loads ``rrdb_psnr_x4``; the smoke notebook's own
small pretraining is not part of this script); ``04`` HINet flare removal (001); ``05`` NAFNet, the
study's ``baseline`` variant (004); ``06`` the inpainting + colorization GAN (002). Each uses the
lab's real layout with ``-p data_root=``, else the bundled photos.

Besides the profile's settings, ``-p`` accepts the run options in :data:`RUN_OPTIONS` (``net``,
``data_root``, ``seed``, ``max_steps``, ``max_images``, ``device``, ``num_workers``,
``checkpoint_interval``); those in :data:`SAFE_ON_RESUME` may change when a run is resumed. Files a lab
derives from the data (03's grid patches and miniature, 04's patches of real photos) are written
once, by rank 0, under the run's folder and reused.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from labkit import __version__, distributed, env, parameters, profiles
from labkit.data.fingerprint import data_fingerprint
from labkit.labs import lab02, lab03, lab04, lab05, lab06
from labkit.labs.common import RUN_OPTIONS, SAFE_ON_RESUME, Recipe, rank0_first, rank0_makes, reuse_or_make
from labkit.profiles import parse_parameter
from labkit.train import History, fit, fit_gan

__all__ = ["RUN_OPTIONS", "SAFE_ON_RESUME", "LOG_INTERVAL_S", "LABS", "Recipe", "build_recipe", "train_lab",
           "split_overrides", "lab_key", "default_out_dir", "run_settings",
           "add_train_arguments", "train_from_args", "rank0_first", "rank0_makes", "reuse_or_make",
           "lab02", "lab03", "lab04", "lab05", "lab06"]

#: lab number -> its module (each has ``build_training(cfg, options, work_dir) -> Recipe``)
LABS = {"02": lab02, "03": lab03, "04": lab04, "05": lab05, "06": lab06}

#: seconds between progress lines inside an epoch when there is no progress bar
LOG_INTERVAL_S = 30.0


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
                k, [*base, *RUN_OPTIONS], f"lab {key} (profile {profile})"))
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


def default_out_dir(nb: str, profile: str, overrides: dict[str, Any] | None = None) -> Path:
    """The default folder of ``labkit train NN``: ``runs/<profile>/train_NN``, plus ``_<net>`` when
    ``net`` is given and ``@<label>`` of the other given overrides that are not safe to change on resume
    (:data:`SAFE_ON_RESUME`) and differ from their default: e.g. ``train_02_swinir``,
    ``train_02@lr=0.002``, ``train_02@data_root=data_DIV2K,seed=1`` (for ``/data/DIV2K``). Each value
    is made file-name safe; a label
    over 60 characters becomes ``h`` + 12 hex digits of its SHA-256. So two runs with different
    settings never share a default folder (``--out`` picks any folder; the settings check protects it).

    Raises:
        ValueError: as :func:`split_overrides`.
    """
    key = lab_key(nb)
    overrides = dict(overrides or {})
    cfg, opts = split_overrides(key, profile, overrides)
    base = profiles.get(key, profile)
    name = f"train_{key}"
    if overrides.get("net") is not None:
        name += f"_{_file_safe(str(overrides['net']))}"
    changed = {k: v for k, v in sorted(overrides.items()) if k != "net" and k not in SAFE_ON_RESUME
               and (cfg[k] != base[k] if k in base else opts[k] != RUN_OPTIONS[k])}
    if changed:
        label = ",".join(f"{k}={v}" for k, v in changed.items())
        safe = ",".join(f"{k}={_file_safe(str(v))}" for k, v in changed.items())
        name += "@" + (safe if len(safe) <= 60 else "h" + hashlib.sha256(label.encode()).hexdigest()[:12])
    return env.runs_dir() / profile / name


def _file_safe(text: str) -> str:
    """``text`` with every run of characters other than letters, digits and ``._=,+-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).strip("_") or "_"


def run_settings(nb: str, profile: str, cfg: dict, options: dict) -> dict[str, Any]:
    """What a ``labkit train`` run stores in its checkpoints and checks on resume
    (:func:`labkit.train.checkpoint.check_settings`): ``lab``, ``profile``, the resolved profile
    settings ``cfg``, the run ``options`` except :data:`SAFE_ON_RESUME` and ``data_root``, ``data``
    (``root``: the absolute path or ``"bundled"``; ``fingerprint``: the first 16 hex digits of
    :func:`labkit.data.fingerprint.data_fingerprint`)
    and ``code_version`` (``labkit.__version__``; a different one is only noted).

    Raises:
        FileNotFoundError: ``options['data_root']`` does not exist.
    """
    root = options.get("data_root")
    return {"lab": lab_key(nb), "profile": profile, "cfg": cfg,
            "options": {k: v for k, v in options.items() if k not in SAFE_ON_RESUME and k != "data_root"},
            "data": {"root": str(Path(root).expanduser().resolve()) if root else "bundled",
                     "fingerprint": data_fingerprint(root)[:16]},
            "code_version": __version__}


def train_lab(nb: str, profile: str = "smoke", overrides: dict[str, Any] | None = None, *,
              out: str | os.PathLike | None = None, resume: bool = True, progress: bool | None = None) -> History:
    """Train lab ``nb`` (under torchrun: on every process) and return the :class:`labkit.train.History`.

    Checkpoints (``last.pth``, every ``checkpoint_interval`` seconds and after every epoch; ``best.pth``)
    and ``history.json`` go to ``out`` (default :func:`default_out_dir`: ``runs/<profile>/train_<NN>...``),
    with the files derived from the data; an existing ``last.pth`` is resumed unless ``resume=False``.
    The run's settings (:func:`run_settings`) are stored in the checkpoints; resuming with other ones
    raises :class:`labkit.train.SettingsChangedError`. Safe to change on resume: ``max_steps`` (to extend
    a run), ``num_workers``, ``device``, ``checkpoint_interval``. ``max_steps`` caps the optimizer steps
    (the profile's epochs still bound the run; lab 06's GAN trains one epoch of ``max_steps`` batches).
    Without a progress bar (stderr not a terminal) a progress line is printed at most every 30 s.

    Raises:
        ValueError: an unknown lab, profile or ``-p`` key; SettingsChangedError / CheckpointError: see above.
    """
    key = lab_key(nb)
    cfg, opts = split_overrides(key, profile, overrides or {})
    out_dir = Path(out) if out else default_out_dir(key, profile, overrides)
    started = distributed.init_from_env(device=opts["device"])
    try:
        env.seed_everything(opts["seed"])  # the same initial weights on every rank
        if distributed.is_main():
            out_dir.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        recipe = build_recipe(key, cfg, opts, work_dir=out_dir)
        kwargs, train_set = _apply_max_steps(recipe, opts["max_steps"])
        if distributed.is_main():
            print(f"labkit train {key} ({recipe.name}, profile {profile}) on {distributed.world_size()} "
                  f"process(es), global batch {kwargs.get('batch_size')} -> {out_dir}", flush=True)
        interval = opts["checkpoint_interval"]
        common = dict(checkpoint_dir=out_dir, resume=resume, device=opts["device"],
                      num_workers=int(opts["num_workers"]), seed=opts["seed"],
                      progress=progress if progress is not None else os.isatty(2),
                      checkpoint_interval=float(interval) if interval else None, log_interval=LOG_INTERVAL_S,
                      settings=run_settings(key, profile, cfg, opts))
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


def _apply_max_steps(recipe: Recipe, max_steps: Any) -> tuple[dict, Any]:
    """The trainer's keyword arguments and training set with the ``max_steps`` cap applied."""
    kwargs = dict(recipe.fit_kwargs)
    train_set = recipe.train_set
    if max_steps is not None:
        cap = int(max_steps)
        if recipe.discriminator is not None:   # fit_gan counts epochs: one epoch of at most cap batches
            train_set = torch.utils.data.Subset(train_set, range(min(len(train_set), cap * kwargs["batch_size"])))
            kwargs["epochs"] = 1
        else:
            kwargs["steps"] = min(cap, kwargs["steps"]) if kwargs.get("steps") else cap
    return kwargs, train_set


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``labkit train`` and ``python -m labkit.labs``: ``NN --profile -p key=value --out --no-resume``."""
    parser.add_argument("notebook", help="lab number: 02, 03, 04, 05 or 06")
    parser.add_argument("--profile", choices=env.PROFILES, default="smoke")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile setting or a run option (net, data_root, seed, max_steps, max_images, "
                             "device, num_workers, checkpoint_interval: seconds between checkpoints inside an "
                             "epoch, default 300, 0 = end of epochs only); repeatable. A resumed run must keep "
                             "its settings (else it stops and lists the differences), except max_steps (to "
                             "extend a run), num_workers, device and checkpoint_interval")
    parser.add_argument("--out", help="checkpoint folder (default runs/<profile>/train_NN[_<net>][@<other "
                                      "overrides>], e.g. train_02_swinir, train_02@lr=0.002)")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over instead of resuming last.pth (e.g. after changing a setting)")
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
