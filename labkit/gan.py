"""Adversarial training: one two-player update (:class:`GANStep`) and its loop (:func:`fit_gan`).

The same pieces serve SRGAN (notebook 02) and the inpainting / colorization GAN (notebook 06):

- **SRGAN** (Ledig et al., CVPR 2017; BasicSR ``train_SRGAN_x4.yml``): first pre-train
  :class:`labkit.models.srresnet.MSRResNet` with a pixel loss using :func:`labkit.train.fit`
  (the "SRResNet" stage), then continue from those weights with::

      step = GANStep({'pix': (1e-2, nn.L1Loss()),
                      'percep': (1.0, PerceptualLoss({'conv5_4': 1.0}))},
                     gan_loss='vanilla', adv_weight=5e-3)
      fit_gan(net_g, VGGStyleDiscriminator(input_size=128), train, val, step=step,
              opt_g=Adam(net_g.parameters(), 1e-4, betas=(0.9, 0.99)),
              opt_d=Adam(net_d.parameters(), 1e-4, betas=(0.9, 0.99)), epochs=...)

- **Inpainting GAN** (the 002 write-up): ``GANStep({'pix': (50, nn.L1Loss()), 'ssim': (50,
  ssim_loss)}, gan_loss='lsgan', adv_weight=1.0, lambda_gp=10.0)`` with AdamW and
  ``sched_g=StepLR(opt_g, 10, 0.5)``, ``sched_d=StepLR(opt_d, 15, 0.5)`` (stepped per epoch). A
  conditional discriminator that also sees the input is supported with ``d_input``.

Order of one update (as in pix2pix / WGAN-GP training loops): the generator runs once; the
discriminator is updated on real vs ``fake.detach()`` (+ the gradient penalty); then the
generator is updated against the **updated** discriminator, whose parameters are frozen for that
backward pass. BasicSR's ``SRGANModel`` does the generator first; the difference is one
discriminator step of lag and does not matter in practice.

:func:`fit_gan` reuses :mod:`labkit.train`'s History, data handling, validation PSNR, RNG capture
and atomic checkpoints; resume continues after the last finished epoch. Training is float32
(no AMP: the gradient penalty's double backward and two GradScalers are not worth it here).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from labkit import distributed
from labkit.env import pick_device, seed_everything
from labkit.losses import GANLoss, gradient_penalty
from labkit.train import (
    CheckpointError,
    History,
    _as_loader,
    _outputs,
    _progress_bar,
    _read_checkpoint,
    _restore_rank_rng,
    _rng_state,
    _set_epoch,
    _set_rng_state,
    _unpack,
    _validate,
)
from labkit.weights import atomic_save, save_state_dict

__all__ = ["GANStep", "GANTrainingError", "fit_gan", "gradient_penalty", "GAN_CHECKPOINT_FORMAT"]

GAN_CHECKPOINT_FORMAT = "labkit.fit_gan/1"


class GANTrainingError(RuntimeError):
    """A GAN update produced a non-finite loss (the message names the update, step and loss)."""


def _last(out: Any) -> torch.Tensor:
    """The prediction of a generator that returns a tensor or a list/tuple of tensors (the last)."""
    return _outputs(out)[-1]


class GANStep:
    """One adversarial update of a generator and a discriminator; returns the losses as floats.

    Args:
        g_losses: the generator's content losses, ``{name: (weight, loss(pred, target) -> 0-d
            tensor)}``, e.g. ``{'pix': (1e-2, nn.L1Loss()), 'percep': (1.0, PerceptualLoss())}``.
            Each is logged as ``l_g_<name>`` (weighted). May be empty (adversarial loss only).
        gan_loss: a :class:`labkit.losses.GANLoss` or its ``gan_type`` (``'vanilla'``,
            ``'lsgan'``, ``'wgan'``, ...).
        adv_weight: the weight of the generator's adversarial term (SRGAN / BasicSR: 5e-3; the
            inpainting write-up: 1). With a string ``gan_loss`` it becomes the GANLoss's
            ``loss_weight`` (default 1.0); with a GANLoss instance leave it None (the instance's
            ``loss_weight`` is the weight).
        lambda_gp: weight of the gradient penalty in the discriminator loss (0 = none; WGAN-GP
            uses 10). gp_reduction: ``'sample'`` (WGAN-GP paper) or ``'pixel'`` (BasicSR), see
            :func:`labkit.losses.gradient_penalty`.
        d_input: ``(lq, image) -> discriminator input`` for a conditional discriminator (e.g.
            ``lambda lq, img: torch.cat([lq, img], 1)``); None feeds the image alone.
        grad_clip_g / grad_clip_d: max global L2 gradient norm for each network, or None.
        collapse_loss, collapse_patience: the collapsed-discriminator guard (None = off). When the
            discriminator's adversarial loss ``l_d_real + l_d_fake`` (the gradient penalty not
            counted) stays below ``collapse_loss`` for ``collapse_patience`` consecutive updates,
            the discriminator separates real from fake perfectly, the generator's adversarial
            gradient vanishes and training goes on "on garbage" (write-up 002's failure: the D
            and G losses drift apart); the step raises :class:`GANTrainingError` saying so.
            For LSGAN (targets 1 / 0, each term a mean square) 1e-3 over 50 updates means D's
            scores are within ~0.03 of their targets for 50 updates in a row.

    ``step(generator, discriminator, lq, gt, opt_g, opt_d, *, step=None)`` with ``lq`` the
    generator input and ``gt`` the target (NCHW, images in [0, 1], on the nets' device; a list
    output of the generator counts by its last element) performs:

    1. ``fake = G(lq)``;
    2. discriminator: ``l_d_real = gan(D(gt), real)``, ``l_d_fake = gan(D(fake.detach()), fake)``,
       ``l_d_gp = lambda_gp * GP``; ``opt_d`` steps on their sum;
    3. generator (D frozen): ``l_g_<name> = w * loss(fake, gt)``, ``l_g_gan = adv_weight *
       gan(D(fake), real)``; ``opt_g`` steps on ``l_g_total``, their sum.

    Returns ``{'l_g_total', 'l_g_<name>'..., 'l_g_gan', 'l_d_real', 'l_d_fake', ['l_d_gp'],
    'l_d_total', 'd_real_mean', 'd_fake_mean'}`` as floats (``l_d_gp`` only with ``lambda_gp >
    0``; ``d_*_mean``: mean raw logits of D on real / fake in the discriminator update).

    Raises:
        GANTrainingError (a RuntimeError): a non-finite loss; it names the update (discriminator
            or generator), the step and the loss, before any parameter is changed by that update.
        GANTrainingError: the discriminator collapsed (see ``collapse_loss``); the message gives
            the step, the losses and what to change.
        ValueError / TypeError: bad arguments (at construction), or ``G(lq)`` and ``gt`` of
            different shapes.

    Sources: Goodfellow et al. 2014 (alternating updates); Ledig et al. CVPR 2017 (SRGAN losses);
    Gulrajani et al. NeurIPS 2017 (gradient penalty); BasicSR ``srgan_model.py`` (loss names).
    """

    def __init__(
        self,
        g_losses: Mapping[str, tuple[float, Callable]] | None = None,
        *,
        gan_loss: GANLoss | str = "vanilla",
        adv_weight: float | None = None,
        lambda_gp: float = 0.0,
        gp_reduction: str = "sample",
        d_input: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        collapse_loss: float | None = None,
        collapse_patience: int = 50,
    ) -> None:
        if collapse_loss is not None and not collapse_loss > 0:
            raise ValueError(f"GANStep: collapse_loss must be > 0 or None, got {collapse_loss!r}")
        if isinstance(collapse_patience, bool) or not isinstance(collapse_patience, int) or collapse_patience < 1:
            raise ValueError(f"GANStep: collapse_patience must be a positive int, got {collapse_patience!r}")
        self.collapse_loss, self.collapse_patience = collapse_loss, collapse_patience
        self._collapsed_for = 0  # consecutive updates with l_d_real + l_d_fake < collapse_loss
        self.g_losses: dict[str, tuple[float, Callable]] = {}
        for name, spec in (g_losses or {}).items():
            if not isinstance(name, str) or not name or name in ("total", "gan"):
                raise ValueError(f"GANStep: g_losses name {name!r} must be a non-empty string other "
                                 "than 'total' and 'gan' (they are logged as l_g_<name>)")
            if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
                raise TypeError(f"GANStep: g_losses[{name!r}] must be (weight, loss), got {spec!r}")
            weight, fn = spec
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise TypeError(f"GANStep: the weight of g_losses[{name!r}] must be a number, got {weight!r}")
            if not callable(fn):
                raise TypeError(f"GANStep: g_losses[{name!r}] loss is not callable: {fn!r}")
            self.g_losses[name] = (float(weight), fn)
        if isinstance(gan_loss, str):
            gan_loss = GANLoss(gan_loss, loss_weight=1.0 if adv_weight is None else adv_weight)
        elif isinstance(gan_loss, GANLoss):
            if adv_weight is not None:
                raise ValueError("GANStep: give the adversarial weight either as "
                                 "GANLoss(loss_weight=...) or as adv_weight, not both")
        else:
            raise TypeError(f"GANStep: gan_loss must be a GANLoss or a gan_type string, got {gan_loss!r}")
        self.gan_loss = gan_loss
        if lambda_gp < 0:
            raise ValueError(f"GANStep: lambda_gp must be >= 0, got {lambda_gp}")
        if gp_reduction not in ("sample", "pixel"):
            raise ValueError(f"GANStep: gp_reduction must be 'sample' or 'pixel', got {gp_reduction!r}")
        for name, v in (("grad_clip_g", grad_clip_g), ("grad_clip_d", grad_clip_d)):
            if v is not None and v <= 0:
                raise ValueError(f"GANStep: {name} must be > 0 or None, got {v}")
        self.lambda_gp = float(lambda_gp)
        self.gp_reduction = gp_reduction
        self.d_input = d_input
        self.grad_clip_g = grad_clip_g
        self.grad_clip_d = grad_clip_d

    def reset(self) -> None:
        """Forget the collapse guard's count (call before reusing the step for a new run)."""
        self._collapsed_for = 0

    def _guard_collapse(self, step: int | None, d_log: Mapping[str, float]) -> None:
        if self.collapse_loss is None:
            return
        d_adv = d_log["l_d_real"] + d_log["l_d_fake"]
        self._collapsed_for = self._collapsed_for + 1 if d_adv < self.collapse_loss else 0
        if self._collapsed_for >= self.collapse_patience:
            at = f" at step {step}" if step is not None else ""
            self._collapsed_for = 0
            raise GANTrainingError(
                f"the discriminator collapsed{at}: its adversarial loss l_d_real + l_d_fake = {d_adv:.3g} "
                f"has stayed below collapse_loss={self.collapse_loss:g} for {self.collapse_patience} "
                f"updates (d_real_mean {d_log['d_real_mean']:.3g}, d_fake_mean {d_log['d_fake_mean']:.3g}): "
                "it tells real from fake perfectly and the generator gets no useful adversarial gradient. "
                "Add or raise the gradient penalty (lambda_gp), lower D's learning rate, or step D's "
                "scheduler faster; training was stopped instead of going on with a useless D."
            )

    @property
    def adv_weight(self) -> float:
        """The weight of the generator's adversarial term (the GANLoss's ``loss_weight``)."""
        return self.gan_loss.loss_weight

    def to(self, device: torch.device | str) -> GANStep:
        """Move the loss modules (e.g. the perceptual loss's VGG) to ``device``; returns self."""
        for _, fn in self.g_losses.values():
            if isinstance(fn, nn.Module):
                fn.to(device)
        self.gan_loss.to(device)
        return self

    def _d(self, discriminator: nn.Module, lq: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return discriminator(img if self.d_input is None else self.d_input(lq, img))

    @staticmethod
    def _check(which: str, step: int | None, losses: Mapping[str, torch.Tensor]) -> dict[str, float]:
        values = {k: float(v.detach()) for k, v in losses.items()}
        for name, value in values.items():
            if not math.isfinite(value):
                at = f" at step {step}" if step is not None else ""
                raise GANTrainingError(
                    f"the {which} update{at} produced a non-finite loss: {name} = {value} "
                    f"(all: {values}). Lower the learning rates, add grad_clip_g / grad_clip_d, "
                    "or check that the inputs are finite images in [0, 1]."
                )
        return values

    @staticmethod
    def _apply(loss: torch.Tensor, net: nn.Module, opt: torch.optim.Optimizer, clip: float | None) -> None:
        loss.backward()
        if not isinstance(net, DistributedDataParallel):  # DDP averaged during backward already
            distributed.average_gradients(net)  # no-op in a single process
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()

    def __call__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        lq: torch.Tensor,
        gt: torch.Tensor,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        *,
        step: int | None = None,
    ) -> dict[str, float]:
        fake = _last(generator(lq))
        if fake.shape != gt.shape:
            raise ValueError(f"GANStep: the generator output {tuple(fake.shape)} and gt "
                             f"{tuple(gt.shape)} differ in shape")

        # 1. discriminator: real vs fake.detach() (+ gradient penalty)
        opt_d.zero_grad(set_to_none=True)
        pred_real = self._d(discriminator, lq, gt)
        pred_fake = self._d(discriminator, lq, fake.detach())
        d_terms = {"l_d_real": self.gan_loss(pred_real, True, is_disc=True),
                   "l_d_fake": self.gan_loss(pred_fake, False, is_disc=True)}
        if self.lambda_gp > 0:
            gp = gradient_penalty(lambda img: self._d(discriminator, lq, img), gt, fake,
                                  reduction=self.gp_reduction)
            d_terms["l_d_gp"] = self.lambda_gp * gp
        l_d_total = sum(d_terms.values())
        d_log = self._check("discriminator", step, {**d_terms, "l_d_total": l_d_total})
        self._apply(l_d_total, discriminator, opt_d, self.grad_clip_d)
        d_log["d_real_mean"] = float(pred_real.detach().float().mean())
        d_log["d_fake_mean"] = float(pred_fake.detach().float().mean())
        self._guard_collapse(step, d_log)

        # 2. generator against the updated, frozen discriminator
        flags = [p.requires_grad for p in discriminator.parameters()]
        discriminator.requires_grad_(False)
        try:
            opt_g.zero_grad(set_to_none=True)
            g_terms = {f"l_g_{name}": w * fn(fake, gt) for name, (w, fn) in self.g_losses.items()}
            g_terms["l_g_gan"] = self.gan_loss(self._d(discriminator, lq, fake), True, is_disc=False)
            l_g_total = sum(g_terms.values())
            g_log = self._check("generator", step, {"l_g_total": l_g_total, **g_terms})
            self._apply(l_g_total, generator, opt_g, self.grad_clip_g)
        finally:
            for p, flag in zip(discriminator.parameters(), flags):
                p.requires_grad_(flag)
        return {**g_log, **d_log}

    def __repr__(self) -> str:
        terms = ", ".join(f"{n}: {w:g}*{type(fn).__name__}" for n, (w, fn) in self.g_losses.items())
        return (f"GANStep({{{terms}}}, gan_loss={self.gan_loss.gan_type!r}, "
                f"adv_weight={self.adv_weight:g}, lambda_gp={self.lambda_gp:g}"
                + (f", collapse_loss={self.collapse_loss:g}" if self.collapse_loss is not None else "") + ")")


# ----------------------------------------------------------------------------- fit_gan


class _LastOutput(nn.Module):
    """Wraps a generator so that validation sees its last output only."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _last(self.net(x))


@dataclass
class _GanRun:
    history: History
    epoch: int = 0  # finished epochs
    step: int = 0  # GAN updates


def _checkpoint(run: _GanRun, nets: tuple, opts: tuple, scheds: tuple) -> dict:
    (g, d), (og, od), (sg, sd) = nets, opts, scheds
    return {
        "format": GAN_CHECKPOINT_FORMAT,
        "epoch": run.epoch,
        "global_step": run.step,
        "net_g": g.state_dict(),
        "net_d": d.state_dict(),
        "opt_g": og.state_dict(),
        "opt_d": od.state_dict(),
        "sched_g": sg.state_dict() if sg is not None else None,
        "sched_d": sd.state_dict() if sd is not None else None,
        "history": run.history.to_dict(),
        "rng": _rng_state(),
    }


def _restore(ck: dict, path: Path, run: _GanRun, nets: tuple, opts: tuple, scheds: tuple,
             log: Callable[[str], None]) -> None:
    (g, d), (og, od), (sg, sd) = nets, opts, scheds
    try:
        g.load_state_dict(ck["net_g"])
        d.load_state_dict(ck["net_d"])
        og.load_state_dict(ck["opt_g"])
        od.load_state_dict(ck["opt_d"])
        for name, sched in (("sched_g", sg), ("sched_d", sd)):
            if sched is None:
                continue
            if ck.get(name) is None:
                log(f"note: {path} has no {name} state; that scheduler starts fresh")
            else:
                sched.load_state_dict(ck[name])
        run.history = History.from_dict(ck["history"])
        run.epoch, run.step = int(ck["epoch"]), int(ck["global_step"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(
            f"the GAN checkpoint {path} does not fit these networks/optimizers/schedulers "
            f"({type(e).__name__}: {e}); use another checkpoint_dir or resume=False"
        ) from e
    _set_rng_state(ck["rng"], log)


def _gan_epoch(generator, discriminator, loader, gan_step, opt_g, opt_d, *, run, device,
               progress, desc) -> dict[str, float]:
    generator.train()
    discriminator.train()
    sums: dict[str, float] = {}
    count = 0
    bar = _progress_bar()(loader, desc=desc, leave=False, disable=not progress, mininterval=1.0)
    for i, batch in enumerate(bar):
        lq, gt = _unpack(batch, device)
        logs = gan_step(generator, discriminator, lq, gt, opt_g, opt_d, step=run.step + 1)
        run.step += 1
        n = lq.shape[0]
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        count += n
        if progress and i % 10 == 0:
            bar.set_postfix(g=f"{sums.get('l_g_total', 0.0) / count:.4g}",
                            d=f"{sums.get('l_d_total', 0.0) / count:.4g}")
    bar.close()
    if count == 0:
        raise ValueError("the training data produced no batches")
    if distributed.is_distributed():  # means over every rank's samples
        keys = sorted(sums)
        both = distributed.all_reduce_sum(torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64,
                                                       device=device if device.type == "cuda" else "cpu"))
        return {k: float(both[i]) / float(both[-1]) for i, k in enumerate(keys)}
    return {k: v / count for k, v in sums.items()}


def _fmt(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    parts += [f"{k} {row[k]:.4g}" for k in ("l_g_total", "l_g_gan", "l_d_total", "d_real_mean",
                                            "d_fake_mean") if row.get(k) is not None]
    if row.get("val_psnr") is not None:
        parts.append(f"val_psnr {row['val_psnr']:.2f} dB")
    parts += [f"lr_g {row['lr_g']:.3g}", f"lr_d {row['lr_d']:.3g}", f"{row['seconds']:.1f} s"]
    return "  ".join(parts)


def fit_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    step: GANStep,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    sched_g: Any = None,
    sched_d: Any = None,
    epochs: int,
    batch_size: int = 16,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    val_crop_border: int = 0,
    val_y_channel: bool = False,
    progress: bool = True,
    seed: int | None = None,
    log: Callable[[str], None] | None = print,
) -> History:
    """Adversarial training of ``generator`` against ``discriminator`` (both in place).

    Args:
        generator, discriminator: the networks (moved to ``device``). The generator may return a
            list of outputs (the last one is the prediction).
        train_data: a Dataset (wrapped in ``DataLoader(batch_size, shuffle=True)``) or a
            DataLoader; batches ``{'lq', 'gt'}`` or ``(input, target)``, NCHW in [0, 1]. With
            :class:`labkit.models.discriminator.VGGStyleDiscriminator` the ``gt`` patches must be
            exactly its ``input_size`` (128 / 256 px).
        val_data: the same for validation (a Dataset is loaded with batch size 1), or None.
        step: the :class:`GANStep` (its loss modules are moved to ``device``).
        opt_g, opt_d: built optimizers over each network's parameters.
        sched_g, sched_d: LR schedulers (or None), each stepped once per epoch after validation
            (the write-up: ``StepLR(opt_g, 10, 0.5)``, ``StepLR(opt_d, 15, 0.5)``).
            ``ReduceLROnPlateau`` is not supported.
        epochs: total number of epochs (a resumed run counts the finished ones).
        checkpoint_dir: when given, ``last.pth`` (both nets, both optimizers and schedulers,
            counters, history, RNG states) is written atomically after every epoch, and
            ``net_g.pth`` (the generator's weights, loadable with
            :func:`labkit.weights.load_weights`).
        resume: with ``checkpoint_dir``, continue from ``last.pth`` after its last finished epoch
            (the seed is not re-applied; the saved RNG states are); a run that already has
            ``epochs`` epochs loads its weights and returns its history. False starts over.
        device: ``labkit.env.pick_device`` argument (None = CUDA > MPS > CPU).
        val_crop_border, val_y_channel: for the validation PSNR
            (:func:`labkit.metrics.psnr_tensor`, outputs clamped to [0, 1], mean per image).
        progress: a tqdm bar per epoch. seed: seeds Python/NumPy/torch at the start of a fresh
            run. log: called with one line per epoch (None: silent).

    Returns: a :class:`labkit.train.History` whose rows hold ``epoch``, ``step`` (GAN updates so
    far), the per-sample mean of every entry of the step's dict (``l_g_total``, ``l_g_<name>``,
    ``l_g_gan``, ``l_d_real``, ``l_d_fake``, ``l_d_gp``, ``l_d_total``, ``d_real_mean``,
    ``d_fake_mean``), ``train_loss`` (= ``l_g_total``, so that ``History.plot`` works),
    ``val_l1`` and ``val_psnr`` (dB; None without validation data), ``lr_g``, ``lr_d`` (at the
    start of the epoch) and ``seconds``. ``best_epoch`` stays None: a GAN ends with its last
    weights (the best-PSNR epoch is not the perceptually best one; ``History.best('val_psnr')``
    still reports it).

    Raises:
        GANTrainingError: a non-finite loss (see :class:`GANStep`).
        ValueError: bad ``epochs``, empty data, a ReduceLROnPlateau scheduler.
        TypeError: ``step`` not callable, data that is neither a Dataset nor a DataLoader.
        CheckpointError (a RuntimeError): ``last.pth`` is corrupt or does not fit (names the file).

    Distributed (``torchrun``), as :func:`labkit.train.fit`: ``batch_size`` is the global batch
    (split over the ranks by a DistributedSampler with ``set_epoch``), rank 0 validates, logs and
    writes the checkpoints (with every rank's RNG states, restored per rank on resume), the epoch
    means are over all ranks' samples. The generator is wrapped in DistributedDataParallel; the
    discriminator is not (it runs several times per update, is frozen for the generator's update
    and is differentiated twice for the gradient penalty, which DDP does not support): its
    gradients are averaged over the ranks explicitly (:func:`labkit.distributed.average_gradients`,
    the same mean DDP takes) before ``opt_d`` steps. A discriminator with BatchNorm
    (``VGGStyleDiscriminator``, a PatchGAN with ``norm='batch'``) normalises with per-process
    batch statistics, as BasicSR's distributed GAN training does (no SyncBatchNorm); its running
    statistics are only used in eval mode, which fit_gan never puts it in, and rank 0's are
    broadcast before each checkpoint. The generators have no batch norm. A GANTrainingError on
    one rank ends that process; torchrun then stops the others.
    """
    log = log or (lambda _msg: None)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not callable(step):
        raise TypeError(f"step must be a GANStep (callable), got {type(step).__name__}")
    for name, sched in (("sched_g", sched_g), ("sched_d", sched_d)):
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ValueError(f"{name}: ReduceLROnPlateau is not supported by fit_gan; use a "
                             "scheduler stepped per epoch (e.g. StepLR)")

    ddp = distributed.init_from_env()
    main = distributed.is_main()
    if not main:
        log = lambda _msg: None  # noqa: E731 (rank 0 logs)
    dev = distributed.device_for_rank(pick_device(device))
    generator.to(dev)
    discriminator.to(dev)
    if hasattr(step, "to"):
        step.to(dev)
    train_loader = _as_loader(train_data, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                              device=dev, name="train_data", shard=True, seed=seed)
    val_loader = None if val_data is None or not main else _as_loader(
        val_data, batch_size=1, shuffle=False, num_workers=num_workers, device=dev, name="val_data")
    nets, opts, scheds = (generator, discriminator), (opt_g, opt_d), (sched_g, sched_d)
    run = _GanRun(history=History(monitor="val_psnr"))

    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    last_path = ckdir / "last.pth" if ckdir else None
    if last_path is not None and resume and last_path.exists():
        ck = _read_checkpoint(last_path, GAN_CHECKPOINT_FORMAT, "labkit.gan.fit_gan")
        _restore(ck, last_path, run, nets, opts, scheds, log)
        _restore_rank_rng(ck, log)
        if run.epoch >= epochs:
            log(f"{last_path}: the run already finished after epoch {run.epoch} "
                f"(step {run.step}); nothing to train")
            return run.history
        log(f"resuming from {last_path} after epoch {run.epoch} (step {run.step})")
    elif seed is not None:
        seed_everything(seed + distributed.rank())
    g_net = generator
    if ddp:
        g_net = DistributedDataParallel(generator, device_ids=[dev.index] if dev.type == "cuda" else None)
        for p in discriminator.parameters():  # the same starting discriminator on every rank
            torch.distributed.broadcast(p.data, src=0)
        distributed.broadcast_buffers(discriminator)
    if hasattr(step, "reset"):
        step.reset()  # the collapse guard counts this run's updates only

    val_model = _LastOutput(generator)
    val_loss = nn.L1Loss()
    while run.epoch < epochs:
        epoch = run.epoch + 1
        t0 = time.perf_counter()
        lr_g, lr_d = float(opt_g.param_groups[0]["lr"]), float(opt_d.param_groups[0]["lr"])
        _set_epoch(train_loader, run.epoch)
        means = _gan_epoch(g_net, discriminator, train_loader, step, opt_g, opt_d, run=run,
                           device=dev, progress=progress and main, desc=f"epoch {epoch}/{epochs}")
        val_l1 = val_psnr = None
        if val_loader is not None:
            val_l1, val_psnr = _validate(val_model, val_loader, val_loss, device=dev, amp=False,
                                         crop_border=val_crop_border, y_channel=val_y_channel)
        if ddp and val_data is not None:
            val_l1, val_psnr = distributed.broadcast_object((val_l1, val_psnr))
        row = {"epoch": epoch, "step": run.step, **means, "train_loss": means.get("l_g_total"),
               "val_l1": val_l1, "val_psnr": val_psnr, "lr_g": lr_g, "lr_d": lr_d, "seconds": 0.0}
        run.history.epochs.append(row)
        run.epoch = epoch
        for sched in scheds:
            if sched is not None:
                sched.step()
        row["seconds"] = time.perf_counter() - t0
        if ckdir is not None:
            distributed.broadcast_buffers(discriminator)
            rng_ranks = distributed.gather_objects(_rng_state()) if ddp else None
            if main:
                ck = _checkpoint(run, nets, opts, scheds)
                if rng_ranks is not None:
                    ck["rng_ranks"] = rng_ranks
                atomic_save(ck, last_path)
                save_state_dict(generator, ckdir / "net_g.pth")
            distributed.barrier()
        log(_fmt(row, epochs))
    return run.history
