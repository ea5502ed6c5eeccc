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

:func:`fit_gan` is :func:`labkit.train.fit`'s loop with another update: :class:`GANUpdate` plugs
one :class:`GANStep` into :class:`labkit.train.session.Session`, which owns the epoch loop, the
history, validation PSNR, resume with the RNG states, atomic checkpoints and DDP for both. Training
is float32 (no AMP: the gradient penalty's double backward and two GradScalers are not worth it here).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from labkit import distributed
from labkit.losses import GANLoss, gradient_penalty
from labkit.train.batches import LastOutput, outputs, unpack, validate
from labkit.train.history import History
from labkit.train.session import Session, Update
from labkit.weights import save_state_dict

__all__ = ["GANStep", "GANTrainingError", "fit_gan", "gradient_penalty", "GAN_CHECKPOINT_FORMAT"]

GAN_CHECKPOINT_FORMAT = "labkit.fit_gan/1"


class GANTrainingError(RuntimeError):
    """A GAN update produced a non-finite loss (the message names the update, step and loss)."""


def _last(out: Any) -> torch.Tensor:
    """The prediction of a generator that returns a tensor or a list/tuple of tensors (the last)."""
    return outputs(out)[-1]


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


class GANUpdate(Update):
    """The GAN trainer's update for :class:`labkit.train.session.Session`: one :class:`GANStep`.

    It owns both networks, both optimizers and schedulers (stepped once per epoch), checkpoints
    them as ``net_g``/``net_d``/``opt_g``/``opt_d``/``sched_g``/``sched_d`` and writes the
    generator's weights to ``net_g.pth`` after every epoch. Validation is the generator's last
    output against ``gt``: ``val_l1`` and ``val_psnr``. The arguments are :func:`fit_gan`'s.
    """

    checkpoint_format = GAN_CHECKPOINT_FORMAT
    writer = "labkit.train.fit_gan"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, step: GANStep,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, sched_g: Any, sched_d: Any,
                 *, val_crop_border: int, val_y_channel: bool) -> None:
        self.generator, self.discriminator, self.gan_step = generator, discriminator, step
        self.g_net: nn.Module = generator  # what trains: the generator, or its DDP wrapper
        self.opt_g, self.opt_d, self.sched_g, self.sched_d = opt_g, opt_d, sched_g, sched_d
        self.crop_border, self.y_channel = val_crop_border, val_y_channel
        self.val_model, self.val_loss = LastOutput(generator), nn.L1Loss()
        if hasattr(step, "reset"):
            step.reset()  # the collapse guard counts this run's updates only

    def to(self, device: torch.device) -> None:
        self.generator.to(device)
        self.discriminator.to(device)
        if hasattr(self.gan_step, "to"):
            self.gan_step.to(device)

    def wrap_ddp(self, device: torch.device) -> None:
        self.g_net = DistributedDataParallel(self.generator, device_ids=[device.index] if device.type == "cuda" else None)
        for p in self.discriminator.parameters():  # the same starting discriminator on every rank
            torch.distributed.broadcast(p.data, src=0)
        distributed.broadcast_buffers(self.discriminator)

    def learning_rates(self) -> dict[str, float]:
        return {"lr_g": float(self.opt_g.param_groups[0]["lr"]), "lr_d": float(self.opt_d.param_groups[0]["lr"])}

    def train_mode(self) -> None:
        self.g_net.train()
        self.discriminator.train()

    def train_batch(self, batch: Any, device: torch.device, step: int) -> tuple[dict[str, Any], int]:
        lq, gt = unpack(batch, device)
        logs = self.gan_step(self.g_net, self.discriminator, lq, gt, self.opt_g, self.opt_d, step=step)
        return {k: float(v) for k, v in logs.items()}, lq.shape[0]

    def postfix(self, means: Mapping[str, float]) -> dict[str, str]:
        return {"g": f"{means.get('l_g_total', 0.0):.4g}", "d": f"{means.get('l_d_total', 0.0):.4g}"}

    def train_columns(self, means: Mapping[str, float]) -> dict[str, Any]:
        return {**means, "train_loss": means.get("l_g_total")}

    def validate(self, loader: DataLoader | None, device: torch.device) -> dict[str, float | None]:
        if loader is None:
            return {"val_l1": None, "val_psnr": None}
        val_l1, val_psnr = validate(self.val_model, loader, self.val_loss, device=device, amp=False,
                                    crop_border=self.crop_border, y_channel=self.y_channel)
        return {"val_l1": val_l1, "val_psnr": val_psnr}

    @property
    def eval_model(self) -> nn.Module:
        return self.generator

    def end_epoch(self, monitored: float | None) -> None:
        for sched in (self.sched_g, self.sched_d):
            if sched is not None:
                sched.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "net_g": self.generator.state_dict(),
            "net_d": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict() if self.sched_g is not None else None,
            "sched_d": self.sched_d.state_dict() if self.sched_d is not None else None,
        }

    def load_state_dict(self, ck: Mapping[str, Any], path: Path, log: Callable[[str], None]) -> None:
        self.generator.load_state_dict(ck["net_g"])
        self.discriminator.load_state_dict(ck["net_d"])
        self.opt_g.load_state_dict(ck["opt_g"])
        self.opt_d.load_state_dict(ck["opt_d"])
        for name, sched in (("sched_g", self.sched_g), ("sched_d", self.sched_d)):
            if sched is None:
                continue
            if ck.get(name) is None:
                log(f"note: {path} has no {name} state; that scheduler starts fresh")
            else:
                sched.load_state_dict(ck[name])

    def before_checkpoint(self) -> None:
        distributed.broadcast_buffers(self.discriminator)

    def save_weights(self, folder: Path) -> None:
        save_state_dict(self.generator, folder / "net_g.pth")

    def format_row(self, row: Mapping[str, Any], epochs: int | None, steps: int | None) -> str:
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
    checkpoint_interval: float | None = 300.0,
    log_interval: float | None = None,
    settings: Mapping[str, Any] | None = None,
    tensorboard: bool | None = None,
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
            :func:`labkit.weights.load_weights`); ``last.pth`` also every ``checkpoint_interval`` s.
        resume: with ``checkpoint_dir``, continue from ``last.pth`` after its last finished epoch
            (the seed is not re-applied; the saved RNG states are); a run that already has
            ``epochs`` epochs loads its weights and returns its history. False starts over.
        device: ``labkit.env.pick_device`` argument (None = CUDA > MPS > CPU).
        val_crop_border, val_y_channel: for the validation PSNR
            (:func:`labkit.metrics.psnr_tensor`, outputs clamped to [0, 1], mean per image).
        progress: a tqdm bar per epoch. seed: seeds Python/NumPy/torch at the start of a fresh
            run. log: called with one line per epoch (None: silent).
        checkpoint_interval, log_interval, settings, tensorboard: as in :func:`labkit.train.fit` (time-based
            ``last.pth`` inside an epoch, default every 300 s, resumed bit for bit with
            ``num_workers=0``; progress lines without a bar; the run's settings checked on resume; the CSV and
            TensorBoard logs, with ``train/d_margin`` = ``d_real_mean - d_fake_mean`` at every update).

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
        CheckpointError (a RuntimeError): ``last.pth`` is corrupt or does not fit (names the file);
            SettingsChangedError (a CheckpointError): it was trained with other ``settings``.

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
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not callable(step):
        raise TypeError(f"step must be a GANStep (callable), got {type(step).__name__}")
    for name, sched in (("sched_g", sched_g), ("sched_d", sched_d)):
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ValueError(f"{name}: ReduceLROnPlateau is not supported by fit_gan; use a "
                             "scheduler stepped per epoch (e.g. StepLR)")
    update = GANUpdate(generator, discriminator, step, opt_g, opt_d, sched_g, sched_d,
                       val_crop_border=val_crop_border, val_y_channel=val_y_channel)
    session = Session(update, train_data, val_data, epochs=epochs, steps=None, batch_size=batch_size,
                      num_workers=num_workers, device=device, checkpoint_dir=checkpoint_dir, resume=resume,
                      tracker=None, history=History(monitor="val_psnr"), progress=progress, seed=seed, log=log, checkpoint_interval=checkpoint_interval,
                      log_interval=log_interval, settings=settings, tensorboard=tensorboard)
    return session.run()
