"""Pixel losses for restoration training, and a weighted sum of them.

Everything here takes ``pred`` and ``target`` as NCHW float tensors (RGB, [0, 1]) and returns a
0-d tensor. Sources:

- L1 / L2: ``torch.nn.L1Loss`` / ``torch.nn.MSELoss`` (mean over every element).
- Charbonnier: Charbonnier et al. 1994; as used by LapSRN / MPRNet / BasicSR ``CharbonnierLoss``:
  ``mean(sqrt((pred - target)^2 + eps^2))``.
- PSNR loss: HINet (Chen et al. 2021) and NAFNet (Chen et al. 2022) official ``PSNRLoss``:
  ``loss_weight * 10/ln(10) * mean_over_batch(log(mse_per_image + 1e-8))``, i.e. minus the
  per-image PSNR (in dB, for a peak of 1) averaged over the batch.
- ``loss_mix({'l1': 2.0, 'l2': 1.0})``: the 000 write-up's (RRDB+) ``2*L1 + 1*L2``.
- GAN losses (``GANLoss``), the WGAN-GP ``gradient_penalty`` and the VGG19 ``PerceptualLoss``
  of SRGAN / ESRGAN: BasicSR ``gan_loss.py`` / ``basic_loss.py``; see each docstring.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from labkit.torchfile import read_torch_file

__all__ = [
    "CharbonnierLoss", "PSNRLoss", "WeightedSum", "loss_mix", "LOSS_NAMES", "make_loss", "GAN_TYPES",
    "GANLoss", "gradient_penalty", "PerceptualLoss", "VGG19_LAYER_NAMES", "WeightsUnavailableError",
    "vgg19_available", "SSIMLoss", "ssim_map",
]


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )


class CharbonnierLoss(nn.Module):
    """Charbonnier (smooth L1) loss ``mean(sqrt((pred - target)^2 + eps^2))``.

    Args:
        eps: the smoothing constant, in image units ([0, 1] range). 1e-3 follows MPRNet / HINet
            configurations; BasicSR's default is 1e-12.
        loss_weight: a multiplier applied to the result.

    ``forward(pred, target)``: tensors of equal shape (usually NCHW in [0, 1]) -> 0-d tensor.
    Raises ValueError when the shapes differ.
    Source: Charbonnier et al., ICIP 1994; BasicSR ``basicsr/losses/basic_loss.py``.
    """

    def __init__(self, eps: float = 1e-3, loss_weight: float = 1.0) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"CharbonnierLoss: eps must be > 0, got {eps}")
        self.eps = float(eps)
        self.loss_weight = float(loss_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target, "CharbonnierLoss")
        diff = pred - target
        return self.loss_weight * torch.sqrt(diff * diff + self.eps**2).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps}, loss_weight={self.loss_weight}"


class PSNRLoss(nn.Module):
    """Negative PSNR loss of HINet / NAFNet.

    ``loss = loss_weight * 10/ln(10) * mean_b log(mse_b + 1e-8)`` where ``mse_b`` is the mean
    squared error of image ``b`` over C, H, W. For images in [0, 1] this is ``-PSNR_b`` (dB) averaged
    over the batch (up to the 1e-8 guard), so minimising it maximises PSNR.

    Args:
        loss_weight: multiplier (the official configurations use 1.0).
        toY: compute on the BT.601 studio-swing luma (``16 + 65.481 R + 128.553 G + 24.966 B``,
            then / 255) instead of RGB, as the official code's ``toY=True`` does. Default False.

    ``forward(pred, target)``: NCHW tensors of equal shape (C == 3 when toY) -> 0-d tensor.
    Raises ValueError for a shape mismatch or a non-4-D input.
    Source: HINet ``basicsr/models/losses/losses.py`` and NAFNet (same file), ``PSNRLoss``.
    """

    def __init__(self, loss_weight: float = 1.0, toY: bool = False) -> None:  # noqa: N803 (official name)
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.scale = 10.0 / math.log(10.0)
        self.toY = bool(toY)
        self.register_buffer(
            "coef", torch.tensor([65.481, 128.553, 24.966]).reshape(1, 3, 1, 1), persistent=False
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target, "PSNRLoss")
        if pred.ndim != 4:
            raise ValueError(f"PSNRLoss expects NCHW tensors, got shape {tuple(pred.shape)}")
        if self.toY:
            if pred.shape[1] != 3:
                raise ValueError(f"PSNRLoss(toY=True) needs 3 RGB channels, got {pred.shape[1]}")
            coef = self.coef.to(pred.dtype)
            pred = ((pred * coef).sum(dim=1, keepdim=True) + 16.0) / 255.0
            target = ((target * coef).sum(dim=1, keepdim=True) + 16.0) / 255.0
        mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
        return self.loss_weight * self.scale * torch.log(mse + 1e-8).mean()

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, toY={self.toY}"


#: The loss names ``loss_mix`` understands, each mapped to a factory.
LOSS_NAMES: dict[str, Callable[[], nn.Module]] = {
    "l1": nn.L1Loss,
    "l2": nn.MSELoss,
    "mse": nn.MSELoss,
    "charbonnier": CharbonnierLoss,
    "psnr": PSNRLoss,
}


def make_loss(name: str) -> nn.Module:
    """Build a loss module from its name: 'l1', 'l2' / 'mse', 'charbonnier' or 'psnr'.

    Raises ValueError naming the unknown name and the known ones.
    """
    key = name.lower()
    if key not in LOSS_NAMES:
        raise ValueError(f"unknown loss name {name!r}; known: {sorted(LOSS_NAMES)}")
    return LOSS_NAMES[key]()


class WeightedSum(nn.Module):
    """``sum_i w_i * loss_i(pred, target)`` with the last components kept for logging.

    Args:
        terms: ``(name, weight, module)`` triples; the names must be unique.

    ``forward(pred, target)`` -> 0-d tensor. After each call, ``last_components`` holds
    ``{name: weighted value as float}`` (detached) and ``last_total`` the total, for logging.
    Build one with :func:`loss_mix`.
    """

    def __init__(self, terms: Iterable[tuple[str, float, nn.Module | Callable]]) -> None:
        super().__init__()
        self.names: list[str] = []
        self.weights: dict[str, float] = {}
        self.losses = nn.ModuleDict()
        self._callables: dict[str, Callable] = {}
        for name, weight, fn in terms:
            if name in self.weights:
                raise ValueError(f"WeightedSum: duplicate term name {name!r}")
            if not callable(fn):
                raise TypeError(f"WeightedSum: term {name!r} is not callable: {fn!r}")
            self.names.append(name)
            self.weights[name] = float(weight)
            if isinstance(fn, nn.Module):
                self.losses[name] = fn
            else:
                self._callables[name] = fn
        if not self.names:
            raise ValueError("WeightedSum needs at least one term")
        self.last_components: dict[str, float] = {}
        self.last_total: float | None = None

    def _fn(self, name: str) -> Callable:
        return self.losses[name] if name in self.losses else self._callables[name]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        parts: dict[str, float] = {}
        for name in self.names:
            term = self.weights[name] * self._fn(name)(pred, target)
            parts[name] = float(term.detach())
            total = term if total is None else total + term
        self.last_components = parts
        self.last_total = float(total.detach())
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{self.weights[n]:g}*{n}" for n in self.names)


def _term_name(item: str | nn.Module | Callable, used: set[str]) -> str:
    if isinstance(item, str):
        base = item.lower()
    else:
        base = getattr(item, "__name__", type(item).__name__).lower()
    name, k = base, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def loss_mix(
    spec: Mapping[str | nn.Module | Callable, float]
    | Iterable[tuple[str | nn.Module | Callable, float]],
) -> WeightedSum:
    """Build a weighted sum of losses, e.g. ``loss_mix({'l1': 2.0, 'l2': 1.0})`` = 2*L1 + 1*L2.

    Args:
        spec: a mapping (or a list of pairs) from a loss to its weight. A loss is a name from
            :data:`LOSS_NAMES` ('l1', 'l2' / 'mse', 'charbonnier', 'psnr') or an ``nn.Module`` /
            callable ``(pred, target) -> 0-d tensor``.

    Returns:
        a :class:`WeightedSum` module; its ``last_components`` holds each weighted term of the
        last call (names: the given names, or the module's class name lowercased).

    Raises ValueError for an unknown name or an empty spec, TypeError for a non-number weight or a
    non-callable loss. Source: the 000 write-up (RRDB+) trains with ``2*L1 + 1*L2``.
    """
    items = list(spec.items()) if isinstance(spec, Mapping) else list(spec)
    if not items:
        raise ValueError("loss_mix: the spec is empty")
    used: set[str] = set()
    terms = []
    for item, weight in items:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(f"loss_mix: the weight of {item!r} must be a number, got {weight!r}")
        fn = make_loss(item) if isinstance(item, str) else item
        if not callable(fn):
            raise TypeError(f"loss_mix: {item!r} is neither a loss name nor a callable")
        terms.append((_term_name(item, used), float(weight), fn))
    return WeightedSum(terms)


# ----------------------------------------------------------------------------- adversarial losses

#: GAN objectives :class:`GANLoss` understands (BasicSR ``gan_loss.py`` names).
GAN_TYPES = ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge")


class GANLoss(nn.Module):
    """Adversarial loss on discriminator logits, BasicSR semantics.

    Args:
        gan_type: ``'vanilla'`` (``BCEWithLogits(pred, label)``; Goodfellow et al. 2014, SRGAN),
            ``'lsgan'`` (``MSE(pred, label)``; Mao et al. 2017), ``'wgan'`` (``-mean(pred)`` for
            real, ``mean(pred)`` for fake; Arjovsky et al. 2017, with a gradient penalty: Gulrajani
            et al. 2017), ``'wgan_softplus'`` (``softplus(-pred)`` / ``softplus(pred)``, mean) or
            ``'hinge'`` (D: ``mean(relu(1 - pred))`` real, ``mean(relu(1 + pred))`` fake; G:
            ``-mean(pred)``).
        real_label_val / fake_label_val: the targets of vanilla / lsgan (1 and 0; label smoothing
            would lower the real one).
        loss_weight: multiplies the **generator's** loss only (``is_disc=False``); the
            discriminator's loss is never weighted (as BasicSR).

    ``forward(pred, target_is_real, is_disc=False)``: ``pred`` the discriminator's raw logits (any
    shape: (N, 1) or a patch map); ``target_is_real`` whether ``pred`` should be judged real;
    ``is_disc`` True when computing the discriminator's loss. Returns a 0-d tensor (mean over all
    elements). For the generator, call it with ``target_is_real=True`` on D(fake).

    Raises ValueError for an unknown ``gan_type``.
    Source: BasicSR ``basicsr/losses/gan_loss.py`` (``GANLoss``).
    """

    def __init__(self, gan_type: str = "vanilla", real_label_val: float = 1.0,
                 fake_label_val: float = 0.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f"GANLoss: unknown gan_type {gan_type!r}; known: {GAN_TYPES}")
        self.gan_type = gan_type
        self.real_label_val = float(real_label_val)
        self.fake_label_val = float(fake_label_val)
        self.loss_weight = float(loss_weight)

    def forward(self, pred: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        pred = pred.float()
        if self.gan_type in ("vanilla", "lsgan"):
            label = torch.full_like(pred, self.real_label_val if target_is_real else self.fake_label_val)
            if self.gan_type == "vanilla":
                loss = nn.functional.binary_cross_entropy_with_logits(pred, label)
            else:
                loss = nn.functional.mse_loss(pred, label)
        elif self.gan_type == "wgan":
            loss = -pred.mean() if target_is_real else pred.mean()
        elif self.gan_type == "wgan_softplus":
            loss = nn.functional.softplus(-pred if target_is_real else pred).mean()
        elif is_disc:  # hinge, discriminator
            loss = nn.functional.relu(1.0 - pred if target_is_real else 1.0 + pred).mean()
        else:  # hinge, generator
            loss = -pred.mean()
        return loss if is_disc else loss * self.loss_weight

    def extra_repr(self) -> str:
        return (f"gan_type={self.gan_type!r}, real_label_val={self.real_label_val}, "
                f"fake_label_val={self.fake_label_val}, loss_weight={self.loss_weight}")


def gradient_penalty(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    reduction: str = "sample",
) -> torch.Tensor:
    """WGAN-GP gradient penalty ``mean((||grad_x D(x_hat)|| - 1)^2)`` on random interpolates.

    ``x_hat = a * real + (1 - a) * fake`` with one ``a ~ U[0, 1)`` per sample (drawn from torch's
    global RNG); the gradient is taken with ``create_graph=True`` so that the penalty can be
    back-propagated into the discriminator. ``fake`` is detached.

    Args:
        discriminator: ``(N, C, H, W) -> logits`` (any output shape; a patch map is summed, i.e.
            ``grad_outputs`` are ones, as BasicSR).
        real, fake: NCHW tensors of equal shape (images in [0, 1]).
        reduction: ``'sample'`` (default): the L2 norm over each whole sample (C, H, W), as in the
            WGAN-GP paper (Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS
            2017, Algorithm 1). ``'pixel'``: the L2 norm over the channels at every pixel, then
            the mean over N, H, W -- what BasicSR's ``gradient_penalty_loss`` computes
            (``gradients.norm(2, dim=1)``), a different, per-pixel 1-Lipschitz constraint.

    Returns: a 0-d tensor (>= 0), differentiable w.r.t. the discriminator's parameters.

    Raises ValueError for different shapes, non-4-D tensors or an unknown ``reduction``.
    Sources: Gulrajani et al. 2017; BasicSR ``basicsr/losses/gan_loss.py``
    (``gradient_penalty_loss``).
    """
    if reduction not in ("sample", "pixel"):
        raise ValueError(f"gradient_penalty: reduction must be 'sample' or 'pixel', got {reduction!r}")
    if real.shape != fake.shape or real.ndim != 4:
        raise ValueError(f"gradient_penalty: real and fake must be NCHW of equal shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    out = discriminator(x_hat)
    (grad,) = torch.autograd.grad(outputs=out, inputs=x_hat, grad_outputs=torch.ones_like(out),
                                  create_graph=True, retain_graph=True)
    if reduction == "sample":
        norm = grad.flatten(1).norm(2, dim=1)
    else:
        norm = grad.norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


# ----------------------------------------------------------------------------- perceptual loss

#: BasicSR's names of the 37 modules of torchvision's ``vgg19().features`` (index = position).
VGG19_LAYER_NAMES: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
)

#: ImageNet normalisation of torchvision's VGG weights (RGB, [0, 1] inputs).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The environment variable naming a local VGG19 weights file (``weights=None``).
VGG19_ENV = "LABKIT_VGG19"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights (here: VGG19 for :class:`PerceptualLoss`) cannot be had.

    The message lists every source tried and why it failed, and how to provide a local file.
    """


def _vgg19_url() -> str:
    # torchvision.models takes seconds to import: loaded only when a perceptual loss is built
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def _how_to_provide() -> str:
    url = _vgg19_url()
    return (
        f"To provide the weights: on a machine with internet, download {url} (or run "
        "torchvision.models.vgg19(weights='IMAGENET1K_V1') once, which caches it under "
        f"{os.path.join(torch.hub.get_dir(), 'checkpoints')}), copy the file here and pass "
        f"PerceptualLoss(weights='/path/to/{os.path.basename(url)}') or set "
        f"{VGG19_ENV}=/path/to/{os.path.basename(url)}. Or train without the perceptual term."
    )


def _features_state(obj: object, source: str) -> dict[str, torch.Tensor]:
    """``{index.param: tensor}`` of ``vgg19().features`` from a torchvision state dict or a subset."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source} does not hold a state dict (got {type(obj).__name__})")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()
             if isinstance(k, str)}
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not feats:  # a bare ``vgg19().features`` state dict: keys '0.weight', '2.bias', ...
        feats = {k: v for k, v in state.items() if k.split(".", 1)[0].isdigit()}
    if not feats:
        raise ValueError(f"{source} holds no VGG19 feature weights (expected torchvision keys "
                         f"'features.0.weight', ...; got {list(state)[:5]})")
    return feats


def _load_vgg19_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = os.path.expanduser(os.fspath(path))
    obj = read_torch_file(path, what="VGG19 weights file")   # WeightsError (a ValueError) names the file and the fault
    return _features_state(obj, path)


def _load_vgg19_torchvision(progress: bool = True) -> dict[str, torch.Tensor]:
    url = _vgg19_url()
    obj = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=progress,
                                             check_hash=True, weights_only=True)
    return _features_state(obj, f"torchvision VGG19_Weights.IMAGENET1K_V1 ({url})")


def _resolve_vgg19(weights: str | os.PathLike | None) -> tuple[dict[str, torch.Tensor], str]:
    """(features state dict, description of the source). Raises WeightsUnavailableError."""
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be a file path, 'torchvision' or None, got {type(weights).__name__}")
    tv = ("torchvision", None, "torchvision VGG19_Weights.IMAGENET1K_V1")
    notes: list[str] = []
    if weights is None:
        env = os.environ.get(VGG19_ENV)
        sources = [("file", env, f"{VGG19_ENV}={env}"), tv] if env else [tv]
        if not env:
            notes.append(f"{VGG19_ENV} is not set")
    elif os.fspath(weights) == "torchvision":
        sources = [tv]
    else:
        sources = [("file", weights, f"file {os.fspath(weights)}")]
    failures: list[str] = []
    for kind, arg, what in sources:
        try:
            state = _load_vgg19_file(arg) if kind == "file" else _load_vgg19_torchvision()
        except Exception as e:  # missing or unreadable file, no network, bad hash, ...
            first = str(e).splitlines()[0] if str(e) else ""
            failures.append(f"{what}: {type(e).__name__}: {first}")
            continue
        if failures:  # a configured source failed: say so, never switch sources silently
            warnings.warn(f"VGG19 weights: {'; '.join(failures)}; using {what} instead",
                          stacklevel=3)
        return state, what
    raise WeightsUnavailableError(
        "no VGG19 weights for the perceptual loss. Tried: " + "; ".join(notes + failures) + ". "
        + _how_to_provide()
    )


def vgg19_available(weights: str | os.PathLike | None = None) -> tuple[bool, str]:
    """Whether :class:`PerceptualLoss` can get its VGG19 weights, without raising.

    Tries the same sources as ``PerceptualLoss(weights=weights)`` (a ``'torchvision'`` or
    ``None`` source downloads the file into the torch hub cache once, as the loss itself would,
    and reads it from the cache afterwards) and checks that they hold all 16 VGG19 convolutions
    with the right shapes.

    Returns: ``(True, 'VGG19 weights from <source>')`` or ``(False, <what was tried and how to
    provide the file>)``, e.g. for a notebook to print "no VGG19 weights: training without the
    perceptual term".
    """
    try:
        state, what = _resolve_vgg19(weights)
        _fitting_state(state, _build_vgg19_features(len(VGG19_LAYER_NAMES) - 1), what)
    except (WeightsUnavailableError, TypeError, ValueError) as e:
        return False, str(e)
    return True, f"VGG19 weights from {what}"


def _fitting_state(state: Mapping[str, torch.Tensor], vgg: nn.Module, source: str) -> dict:
    """The tensors of ``state`` that ``vgg`` needs; ValueError naming ``source`` when they do not fit."""
    wanted = vgg.state_dict()
    missing = [k for k in wanted if k not in state]
    bad = [f"{k}: file {tuple(state[k].shape)} vs VGG19 {tuple(v.shape)}"
           for k, v in wanted.items() if k in state and state[k].shape != v.shape]
    if missing or bad:
        raise ValueError(
            f"VGG19 weights from {source} do not fit torchvision's vgg19 features "
            f"(missing {['features.' + k for k in missing][:5]}, shape mismatches {bad[:3]})"
        )
    return {k: state[k] for k in wanted}


def _build_vgg19_features(last: int) -> nn.Sequential:
    """torchvision's ``vgg19`` feature layers 0..last (random init; non-inplace ReLUs)."""
    from torchvision.models import vgg  # slow to import: only for a perceptual loss (see _vgg19_url)

    layers = vgg.make_layers(vgg.cfgs["E"], batch_norm=False)  # == vgg19(weights=None).features
    kept = [nn.ReLU(inplace=False) if isinstance(m, nn.ReLU) else m for m in list(layers)[: last + 1]]
    return nn.Sequential(*kept)


class PerceptualLoss(nn.Module):
    """Perceptual (VGG19 feature) loss ``sum_l w_l * criterion(phi_l(pred), phi_l(target))``.

    Args:
        layer_weights: ``{layer name: weight}`` with BasicSR's names (``conv1_1``, ``relu1_1``,
            ``pool1``, ... ``conv5_4``, ``relu5_4``, ``pool5``; :data:`VGG19_LAYER_NAMES`). A
            ``conv*`` layer gives the features **before** its ReLU, as BasicSR (SRGAN/ESRGAN use
            ``{'conv5_4': 1.0}``). Only the layers up to the deepest one requested are built.
        vgg_type: ``'vgg19'`` (the only one supported).
        use_input_norm: normalise inputs with the ImageNet mean / std (inputs in [0, 1]).
        range_norm: map inputs from [-1, 1] to [0, 1] first.
        criterion: ``'l1'`` (mean absolute error), ``'l2'`` (MSE) or ``'fro'`` (Frobenius norm of
            the whole feature difference, BasicSR's option).
        weights: where the ImageNet VGG19 weights come from -- a local file path (torchvision's
            ``vgg19`` state dict, or its ``features.*`` subset; read with
            ``torch.load(weights_only=True)``), ``'torchvision'`` (download
            ``VGG19_Weights.IMAGENET1K_V1`` through the torch hub cache: works on Colab, fails
            offline), or None: the file named by ``$LABKIT_VGG19`` if set, then torchvision.
            There is no fallback to random weights.

    The VGG is frozen (``requires_grad=False``) and stays in eval mode (``train()`` does not
    change it). ``forward(pred, target)``: NCHW RGB tensors of equal shape, [0, 1] (or [-1, 1]
    with ``range_norm``) -> 0-d tensor; gradients flow to ``pred``; ``target`` is detached. BasicSR
    returns ``(perceptual, style)``; this returns the perceptual term only (no style term).

    Raises:
        WeightsUnavailableError (a RuntimeError): no source gave weights (lists what was tried and
            how to provide the file).
        ValueError: unknown layer name, vgg_type or criterion; a weights file whose tensors do not
            fit VGG19 (names the file); in forward, mismatched or non-3-channel inputs.

    Sources: Johnson et al., ECCV 2016 and Ledig et al., CVPR 2017 (VGG feature loss); BasicSR
    ``basicsr/losses/basic_loss.py`` (``PerceptualLoss``) and ``basicsr/archs/vgg_arch.py``
    (layer names, features before activation, ImageNet normalisation); torchvision ``vgg19``.
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        criterion: str = "l1",
        weights: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        layer_weights = {"conv5_4": 1.0} if layer_weights is None else dict(layer_weights)
        if vgg_type != "vgg19":
            raise ValueError(f"PerceptualLoss: vgg_type must be 'vgg19', got {vgg_type!r}")
        if criterion not in ("l1", "l2", "fro"):
            raise ValueError(f"PerceptualLoss: criterion must be 'l1', 'l2' or 'fro', got {criterion!r}")
        if not layer_weights:
            raise ValueError("PerceptualLoss: layer_weights is empty")
        unknown = [k for k in layer_weights if k not in VGG19_LAYER_NAMES]
        if unknown:
            raise ValueError(f"PerceptualLoss: unknown VGG19 layer(s) {unknown}; known: "
                             f"{', '.join(VGG19_LAYER_NAMES)}")
        self.layer_weights = {k: float(v) for k, v in layer_weights.items()}
        self.use_input_norm = bool(use_input_norm)
        self.range_norm = bool(range_norm)
        self.criterion = criterion
        self._index = {name: VGG19_LAYER_NAMES.index(name) for name in self.layer_weights}
        last = max(self._index.values())

        state, self.weights_source = _resolve_vgg19(weights)
        self.vgg = _build_vgg19_features(last)
        self.vgg.load_state_dict(_fitting_state(state, self.vgg, self.weights_source))
        self.vgg.requires_grad_(False)
        self.vgg.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()  # the feature extractor never leaves eval mode
        return self

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{layer name: feature map}`` for the requested layers; x NCHW RGB in [0, 1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"PerceptualLoss needs NCHW RGB inputs, got shape {tuple(x.shape)}")
        if self.range_norm:
            x = (x + 1.0) / 2.0
        if self.use_input_norm:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = {i: name for name, i in self._index.items()}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.vgg):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target, "PerceptualLoss")
        fp = self.features(pred.float())
        ft = self.features(target.detach().float())
        total = pred.new_zeros((), dtype=torch.float32)
        for name, w in self.layer_weights.items():
            if self.criterion == "fro":
                term = torch.linalg.vector_norm(fp[name] - ft[name])
            elif self.criterion == "l1":
                term = nn.functional.l1_loss(fp[name], ft[name])
            else:
                term = nn.functional.mse_loss(fp[name], ft[name])
            total = total + w * term
        return total

    def extra_repr(self) -> str:
        return (f"layer_weights={self.layer_weights}, criterion={self.criterion!r}, "
                f"use_input_norm={self.use_input_norm}, range_norm={self.range_norm}, "
                f"weights={self.weights_source!r}")


# ----------------------------------------------------------------------------- SSIM loss (notebook 06)


def _gaussian_kernel(window_size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2.0
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    g = (g / g.sum()).to(device=like.device, dtype=like.dtype)
    return torch.outer(g, g).expand(channels, 1, window_size, window_size).contiguous()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, *, window_size: int = 11, sigma: float = 1.5,
             data_range: float = 1.0) -> torch.Tensor:
    """The differentiable SSIM map of two NCHW tensors, per channel, 'valid' filtering.

    Wang et al., TIP 2004, with the BasicSR / MATLAB constants: Gaussian window ``window_size``
    (11) with ``sigma`` (1.5), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = data_range`` (1 for
    images in [0, 1]). Unlike :func:`labkit.metrics.ssim` the inputs are not rounded to 8 bits
    (so it has gradients). Returns ``(N, C, H - window_size + 1, W - window_size + 1)``.

    Raises ValueError: different shapes, not 4-D, or smaller than the window.
    """
    _check_pair(pred, target, "ssim_map")
    if pred.ndim != 4:
        raise ValueError(f"ssim_map: expected NCHW tensors, got shape {tuple(pred.shape)}")
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"ssim_map: images of {tuple(pred.shape[-2:])} are smaller than the "
                         f"{window_size}x{window_size} window")
    c = pred.shape[1]
    x, y = pred.float(), target.float()
    w = _gaussian_kernel(window_size, sigma, c, x)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, w, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu1, mu2 = filt(x), filt(y)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = filt(x * x) - mu1_sq
    s2 = filt(y * y) - mu2_sq
    s12 = filt(x * y) - mu12
    return ((2 * mu12 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))


class SSIMLoss(nn.Module):
    """``loss_weight * (1 - SSIM(pred, target))``, SSIM averaged over pixels, channels and batch.

    The write-up 002's ``g_loss_ssim`` (weighted 50 in its generator loss). See :func:`ssim_map`
    for the window and constants; ``pred`` / ``target`` are NCHW in [0, ``data_range``]. The loss
    is 0 for identical images and at most 2 (SSIM lies in [-1, 1]).
    """

    def __init__(self, loss_weight: float = 1.0, window_size: int = 11, sigma: float = 1.5,
                 data_range: float = 1.0) -> None:
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError(f"SSIMLoss: window_size must be a positive odd int, got {window_size!r}")
        if sigma <= 0 or data_range <= 0:
            raise ValueError(f"SSIMLoss: sigma and data_range must be > 0, got {sigma!r}, {data_range!r}")
        self.loss_weight, self.window_size, self.sigma, self.data_range = loss_weight, window_size, sigma, data_range

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        s = ssim_map(pred, target, window_size=self.window_size, sigma=self.sigma, data_range=self.data_range)
        return self.loss_weight * (1.0 - s.mean())

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}, window_size={self.window_size}, sigma={self.sigma}"


LOSS_NAMES["ssim"] = SSIMLoss
