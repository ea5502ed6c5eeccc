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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

__all__ = ["CharbonnierLoss", "PSNRLoss", "WeightedSum", "loss_mix", "LOSS_NAMES", "make_loss"]


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
