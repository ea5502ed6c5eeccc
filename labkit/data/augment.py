"""Paired augmentation: the same random albumentations ops on input (``lq``) and target (``gt``).

Arrays are numpy HWC (or HW), float32 in [0, 1] (uint8 also works); ``gt`` may be ``scale`` times
larger than ``lq`` (super-resolution). Built on albumentations 2.x (tested with 2.0.8), where
``Flip`` no longer exists (use ``HorizontalFlip`` + ``VerticalFlip``) and ``ShiftScaleRotate`` is a
deprecated special case of ``Affine`` (it warns on construction); the pipelines below use
``Affine`` with ShiftScaleRotate's ranges.

How the pair stays consistent (:class:`PairedAugment`):

- ``scale == 1``: one ``A.Compose`` with ``additional_targets={'gt': 'image'}``; albumentations
  draws each op's parameters once and applies them to both images, so any transform works and
  the pair is exactly consistent (pixel ops such as ``ColorJitter`` too).
- ``scale > 1``: an ``A.Compose`` draws and applies the ops on ``gt``; the parameters each op drew
  are then replayed on ``lq`` by a copy of the pipeline in albumentations' replay mode (what
  ``ReplayCompose.replay`` does, bit for bit, without rebuilding the pipeline from a record at
  every call). Size-free ops replay exactly. ``Affine`` (and ``ShiftScaleRotate``) stores a 3x3
  pixel matrix computed for the ``gt`` size, so before the replay the matrix is conjugated into
  ``lq`` pixel coordinates with the pixel-centre map
  ``x_gt = s * x_lq + (s - 1) / 2`` (the map under which an s x s block average of ``gt`` is
  ``lq``). This keeps the geometry exact: translations are replayed as ``t / s`` (fractional lq
  pixels; drawing the percentage again at the lq size would truncate ``int(f * w)`` differently),
  and rotation/scaling happen about the same continuous centre. Limits: for non-right-angle
  rotations and scaling both images are *resampled* (bilinear by default) at their own
  resolution, so the pair agrees up to interpolation error, not bit-exactly; near the borders
  the fill depends on ``border_mode``: ``cv2.BORDER_REFLECT`` (mirror about the pixel edge)
  is consistent across scales, ``BORDER_REFLECT_101`` (mirror about the edge pixel's centre) and
  ``BORDER_CONSTANT`` differ by up to a pixel band. Transforms whose parameters depend on the
  image size in other ways (crops, ``Resize``, noise, elastic/grid distortions) are refused for
  ``scale > 1`` with a ValueError.

Seeding: albumentations 2.0.8's ``Compose(seed=s)`` gives *every* transform its own generator
seeded with the same ``s``, so sibling transforms draw identical numbers (with ``p=0.5``,
``HorizontalFlip`` and ``VerticalFlip`` then always fire together). :class:`PairedAugment`
instead shares one numpy Generator and one ``random.Random`` across all its transforms
(``Compose.set_random_state``). By default (``seed=None``) that pair is drawn afresh from torch's
global RNG at every call, like the datasets' random crops: ``labkit.env.seed_everything`` then fixes
the augmentations, ``labkit.train.fit``'s checkpoints (which save torch's RNG state) resume them
bit-exactly, and every DataLoader worker (its own torch seed) draws its own. An int ``seed`` gives
the object a private stream instead (handy outside training: two objects with the same seed repeat
each other), which a training checkpoint does not save.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch

__all__ = [
    "PairedAugment",
    "AdaptiveAugment",
    "EpochCountingAdaptiveAugment",
    "sr_000_transforms",
    "flare_001_transforms",
    "nafnet_004_transforms",
]

Pair = tuple[np.ndarray, np.ndarray]

#: transforms whose recorded parameters replay correctly on an image of another size
_SIZE_FREE = (
    A.HorizontalFlip,
    A.VerticalFlip,
    A.Transpose,
    A.RandomRotate90,
    A.D4,  # includes SquareSymmetry
    A.ColorJitter,
    A.RandomBrightnessContrast,
    A.HueSaturationValue,
    A.RandomGamma,
)
#: containers whose children are checked recursively
_CONTAINERS = (A.OneOf, A.SomeOf, A.Sequential)


def _check_scale_safe(transforms: Sequence[Any]) -> None:
    """Raise ValueError for transforms that cannot be replayed on an image of another size."""
    for t in transforms:
        if isinstance(t, _CONTAINERS):
            _check_scale_safe(t.transforms)
        elif isinstance(t, A.Affine):
            if getattr(t, "fit_output", False):
                raise ValueError("PairedAugment: Affine(fit_output=True) changes the output size; not supported for scale > 1")
        elif not isinstance(t, _SIZE_FREE):
            raise ValueError(
                f"PairedAugment: {type(t).__name__} cannot be replayed consistently on an lq image "
                f"1/scale the size of gt; for scale > 1 use flips, Transpose, RandomRotate90, D4, "
                f"Affine/ShiftScaleRotate and colour ops ({', '.join(c.__name__ for c in _SIZE_FREE)})"
            )


def _lq_matrix(matrix: np.ndarray, scale: int) -> np.ndarray:
    """Conjugate a 3x3 gt pixel-space affine matrix into lq pixel space (pixel-centre map)."""
    offset = (scale - 1) / 2.0
    to_gt = np.array([[scale, 0.0, offset], [0.0, scale, offset], [0.0, 0.0, 1.0]])
    return np.linalg.inv(to_gt) @ np.asarray(matrix, dtype=np.float64) @ to_gt


def _lq_params(params: dict[str, Any], scale: int) -> dict[str, Any]:
    """A gt transform's drawn parameters, rewritten for the lq image (a new dict)."""
    params = dict(params)
    if "matrix" in params:
        params["matrix"] = _lq_matrix(params["matrix"], scale)
    if "output_shape" in params:
        oh, ow = params["output_shape"][:2]
        params["output_shape"] = (oh // scale, ow // scale)
    if "shape" in params:
        shape = tuple(params["shape"])
        params["shape"] = (shape[0] // scale, shape[1] // scale) + shape[2:]
    return params


def _leaves(transforms: Sequence[Any]) -> list[Any]:
    """The transforms inside ``transforms`` and its containers, depth first (the order they run in)."""
    out: list[Any] = []
    for t in transforms:
        out += _leaves(t.transforms) if isinstance(t, _CONTAINERS) else [t]
    return out


class _LqReplay:
    """Replays on lq what a gt pipeline drew, as albumentations' ``ReplayCompose.replay`` does.

    ``lq_pipeline`` is a copy of the gt pipeline with every transform in replay mode (a transform then
    applies the parameters it is given, or nothing, instead of drawing). After each gt call,
    :meth:`__call__` hands each copy the parameters its gt transform drew (rescaled for lq; none for
    transforms that did not fire) and runs the copy on lq. The replay rebuilds the pipeline from a
    serialized record at every call; this keeps one copy, so it costs a fifth as much, bit for bit
    the same.
    """

    def __init__(self, gt_pipeline: A.Compose, scale: int) -> None:
        self.scale = scale
        self.gt_leaves = _leaves(gt_pipeline.transforms)
        self.lq_pipeline = copy.deepcopy(gt_pipeline)
        self.lq_leaves = _leaves(self.lq_pipeline.transforms)
        for t in [*self.lq_leaves, *_containers(self.lq_pipeline.transforms)]:
            t.replay_mode = True

    def forget(self) -> None:
        """Clear the gt transforms' parameters before a gt call (a transform a call skips keeps its old ones)."""
        for t in self.gt_leaves:
            t.params = {}

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        for g, t in zip(self.gt_leaves, self.lq_leaves):
            t.applied_in_replay = bool(g.params)   # a transform that fired holds its params, at least 'shape'
            t.params = _lq_params(g.params, self.scale)
        return self.lq_pipeline(force_apply=True, image=lq)["image"]


def _containers(transforms: Sequence[Any]) -> list[Any]:
    """The containers (OneOf, SomeOf, Sequential) inside ``transforms``, nested ones too."""
    out: list[Any] = []
    for t in transforms:
        if isinstance(t, _CONTAINERS):
            out += [t, *_containers(t.transforms)]
    return out


def _to_work(img: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (HW or HWC), got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"{name} must be HW or HWC, got shape {img.shape}")
    if img.dtype == np.uint8 or img.dtype == np.float32:
        return np.ascontiguousarray(img)
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float32)
    raise TypeError(f"{name} must be float (values in [0, 1]) or uint8, got dtype {img.dtype}")


def _from_work(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.ascontiguousarray(img, dtype=np.uint8)
    return np.ascontiguousarray(np.clip(img, 0.0, 1.0), dtype=dtype)


class PairedAugment:
    """Apply the same randomly drawn albumentations ops to ``(lq, gt)``.

    Args:
        transforms: a list of albumentations transforms (containers such as ``A.OneOf`` allowed).
            Pass fresh instances: the composition takes over their random state.
        scale: integer size ratio ``gt / lq`` (1 for restoration, 2/3/4 for SR).
        seed: None (default): each call draws its random state from torch's global RNG, so
            ``torch.manual_seed`` / ``labkit.env.seed_everything`` reproduce the draws, training
            checkpoints resume them exactly and DataLoader workers differ from each other. An int:
            a private stream (two instances with the same seed and transforms give the same
            outputs for the same inputs, whatever torch's RNG does).

    Call: ``aug(lq, gt) -> (lq', gt')``. Inputs are HW or HWC numpy arrays, float in [0, 1] or
    uint8, with ``gt.shape[:2] == (scale * lq_h, scale * lq_w)``; outputs keep each input's
    dtype, float ones clipped to [0, 1] (interpolation or colour ops may overshoot).

    Data loaders: with ``seed=None`` nothing is needed. With an int seed every worker process
    receives a copy of the same private stream; call :meth:`reseed` in a ``worker_init_fn`` or the
    workers repeat each other's augmentations.

    Raises:
        ValueError: ``scale < 1``, transforms that cannot be replayed at another size when
            ``scale > 1`` (see the module docstring), or at call time mismatched shapes.
        TypeError: non-array inputs or unsupported dtypes.

    Source: albumentations' additional-targets / replay-mode mechanisms; the consistency
    argument is in the module docstring.
    """

    def __init__(self, transforms: Sequence[Any], *, scale: int = 1, seed: int | None = None):
        if isinstance(transforms, A.BaseCompose) and not isinstance(transforms, _CONTAINERS):
            transforms = list(transforms.transforms)
        transforms = list(transforms)
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        self.scale = int(scale)
        self._lq_replay: _LqReplay | None = None
        if self.scale == 1:
            self._compose = A.Compose(transforms, additional_targets={"gt": "image"})
        else:
            _check_scale_safe(transforms)
            self._compose = A.Compose(transforms)
            self._lq_replay = _LqReplay(self._compose, self.scale)
        self.reseed(seed)

    @property
    def transforms(self) -> list[Any]:
        """The albumentations transforms, in order."""
        return list(self._compose.transforms)

    def reseed(self, seed: int | None) -> None:
        """Restart the private stream (an int), or follow torch's global RNG from now on (None)."""
        self.seed = seed
        if seed is not None:
            self._compose.set_random_state(np.random.default_rng(seed), random.Random(seed))

    def _draw_state(self) -> None:
        """With ``seed=None``: one Generator / Random for this call, seeded from torch's RNG."""
        if self.seed is None:
            s = int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item())
            self._compose.set_random_state(np.random.default_rng(s), random.Random(s))

    def __call__(self, lq: np.ndarray, gt: np.ndarray) -> Pair:
        lq_w, gt_w = _to_work(lq, "lq"), _to_work(gt, "gt")
        lq_dtype, gt_dtype = lq.dtype, gt.dtype
        expected = (lq_w.shape[0] * self.scale, lq_w.shape[1] * self.scale)
        if gt_w.shape[:2] != expected or lq_w.shape[2:] != gt_w.shape[2:]:
            raise ValueError(
                f"gt shape {gt.shape} does not match lq shape {lq.shape} at scale {self.scale} "
                f"(expected gt height/width {expected} and the same channels)"
            )
        self._draw_state()
        if self._lq_replay is None:
            out = self._compose(image=lq_w, gt=gt_w)
            lq_out, gt_out = out["image"], out["gt"]
        else:
            self._lq_replay.forget()
            gt_out = self._compose(image=gt_w)["image"]
            lq_out = self._lq_replay(lq_w)
        return _from_work(lq_out, lq_dtype), _from_work(gt_out, gt_dtype)

    def __repr__(self) -> str:
        names = ", ".join(type(t).__name__ for t in self._compose.transforms)
        return f"PairedAugment([{names}], scale={self.scale}, seed={self.seed})"


class AdaptiveAugment:
    """001's adaptive augmentation: identity before ``start_epoch``, ``augment`` from it on.

    The 001 write-up (HINet flare removal) trains the first epochs without augmentation for a
    stable start and switches the pipeline on at a given epoch. Epochs are counted as the
    training loop counts them (0-based in ``labkit.train``); ``set_epoch(e)`` with
    ``e >= start_epoch`` activates it. The object starts at epoch 0.

    Args:
        augment: any callable ``(lq, gt) -> (lq, gt)``, usually a :class:`PairedAugment`.
        start_epoch: first epoch (>= 0) at which ``augment`` is applied.

    Call: ``aug(lq, gt)`` returns the inputs themselves (same objects) while inactive.

    Data loaders: worker processes hold copies of the dataset; call ``set_epoch`` before the
    epoch's iteration starts and do not use ``persistent_workers=True`` (or the workers keep the
    old epoch).

    Raises:
        ValueError: negative ``start_epoch`` or epoch.
    """

    def __init__(self, augment: Callable[[np.ndarray, np.ndarray], Pair], start_epoch: int):
        if int(start_epoch) < 0:
            raise ValueError(f"start_epoch must be >= 0, got {start_epoch}")
        self.augment = augment
        self.start_epoch = int(start_epoch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the augmentation which epoch is about to run."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    @property
    def active(self) -> bool:
        """Whether the augmentation is applied at the current epoch."""
        return self.epoch >= self.start_epoch

    def __call__(self, lq: np.ndarray, gt: np.ndarray) -> Pair:
        if not self.active:
            return lq, gt
        return self.augment(lq, gt)

    def __repr__(self) -> str:
        return f"AdaptiveAugment({self.augment!r}, start_epoch={self.start_epoch}, epoch={self.epoch})"


# --------------------------------------------------------------------------------------------
# the write-ups' pipelines (fresh transform instances on every call)
# --------------------------------------------------------------------------------------------


def _shift_scale_rotate(
    shift_limit: float, scale_limit: float, rotate_limit: float, border_mode: int, p: float
) -> A.Affine:
    """``Affine`` equivalent of albumentations 1.x ``ShiftScaleRotate`` (isotropic scale)."""
    return A.Affine(
        translate_percent={"x": (-shift_limit, shift_limit), "y": (-shift_limit, shift_limit)},
        scale=(1.0 - scale_limit, 1.0 + scale_limit),
        rotate=(-rotate_limit, rotate_limit),
        shear=0.0,
        keep_ratio=True,
        interpolation=cv2.INTER_LINEAR,
        border_mode=border_mode,
        p=p,
    )


def sr_000_transforms(
    p: float = 0.5,
    *,
    shift_limit: float = 0.0625,
    scale_limit: float = 0.1,
    rotate_limit: float = 45.0,
    shift_scale_rotate: bool = True,
) -> list[Any]:
    """000's (RRDB+) augmentation: Flip, Transpose, RandomRotate90, ShiftScaleRotate.

    albumentations 1.x ``Flip`` is gone in 2.x; it is replaced by ``HorizontalFlip`` and
    ``VerticalFlip``, each with probability ``p``. ``ShiftScaleRotate`` (1.x defaults: shift
    0.0625, scale 0.1, rotate 45, bilinear) becomes ``Affine`` with the same ranges and one
    isotropic scale (``keep_ratio=True``, as 1.x; 2.x's ShiftScaleRotate draws x and y scales
    independently) and ``border_mode=cv2.BORDER_REFLECT``, the reflection that stays consistent
    between lq and gt at different sizes. Use with ``PairedAugment(..., scale=4)``.

    Args:
        p: probability of each transform.
        shift_limit, scale_limit, rotate_limit: ShiftScaleRotate's ranges (fraction of the size,
            relative scale change, degrees).
        shift_scale_rotate: False leaves it out, keeping only the exact right-angle ops (the
            pair then stays bit-exactly consistent, no interpolation).

    Returns:
        A new list of albumentations transforms.
    """
    transforms: list[Any] = [
        A.HorizontalFlip(p=p),
        A.VerticalFlip(p=p),
        A.Transpose(p=p),
        A.RandomRotate90(p=p),
    ]
    if shift_scale_rotate:
        transforms.append(_shift_scale_rotate(shift_limit, scale_limit, rotate_limit, cv2.BORDER_REFLECT, p))
    return transforms


def flare_001_transforms(
    p_geometric: float = 0.5,
    p_color: float = 0.3,
    *,
    resize: int | None = None,
) -> list[Any]:
    """001's (HINet flare) "hard" augmentation, as in the official ``dataloader.py``.

    ``OneOf([HorizontalFlip, VerticalFlip, RandomRotate90, ShiftScaleRotate], p=p_geometric)``
    (equal weights), then ``ColorJitter(0.2, 0.2, 0.2, 0.2, p=p_color)`` (1.x defaults), then an
    optional ``Resize(resize, resize)``. ShiftScaleRotate is the ``Affine`` equivalent with 1.x
    defaults (border ``BORDER_REFLECT_101``). Here ColorJitter is drawn once and applied to input
    *and* target, so the model learns flare removal, not colour correction. Note: the official
    code passed the target as albumentations' ``mask``, so there ColorJitter changed the input
    only and ShiftScaleRotate warped the target with nearest-neighbour interpolation. ``resize``
    only works with ``PairedAugment(scale=1)``. Wrap in :class:`AdaptiveAugment` to switch it on
    at a given epoch.

    Args:
        p_geometric: probability that one geometric op is applied.
        p_color: probability of the colour jitter.
        resize: output side in pixels, or None to keep the size.

    Returns:
        A new list of albumentations transforms.
    """
    transforms: list[Any] = [
        A.OneOf(
            [
                A.HorizontalFlip(p=1.0),
                A.VerticalFlip(p=1.0),
                A.RandomRotate90(p=1.0),
                _shift_scale_rotate(0.0625, 0.1, 45.0, cv2.BORDER_REFLECT_101, 1.0),
            ],
            p=p_geometric,
        ),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.2, p=p_color),
    ]
    if resize is not None:
        transforms.append(A.Resize(int(resize), int(resize), interpolation=cv2.INTER_CUBIC, p=1.0))
    return transforms


def nafnet_004_transforms(p: float = 0.5) -> list[Any]:
    """004's (NAFNet) on-the-fly variant: ``HorizontalFlip(p)`` and ``VerticalFlip(p)``.

    004 first tripled the data physically (see ``labkit.data.patch_select.flips_x3``); its
    "enhanced model 2" replaced that with these random flips.

    Returns:
        A new list of albumentations transforms.
    """
    return [A.HorizontalFlip(p=p), A.VerticalFlip(p=p)]


class EpochCountingAdaptiveAugment(AdaptiveAugment):
    """:class:`AdaptiveAugment` that advances its epoch itself, every ``epoch_length`` calls.

    ``labkit.train.fit`` (and most loops) never call ``set_epoch``; with ``epoch_length =
    len(dataset)`` this wrapper counts the pairs it has augmented and knows the epoch anyway
    (epoch = calls // epoch_length, 0-based), so 001's "augmentation from epoch N on" works with
    an unmodified loop. Counting happens in the process that calls it: use it with
    ``num_workers=0``, or call ``set_epoch`` (which also resets the count to that epoch's start)
    with workers.

    Args:
        augment: the paired augmentation (``(lq, gt) -> (lq, gt)``).
        start_epoch: first (0-based) epoch that is augmented.
        epoch_length: items per epoch (>= 1), normally ``len(train_dataset)``.

    Raises:
        ValueError: ``epoch_length < 1`` or negative ``start_epoch``.
    """

    def __init__(self, augment: Callable[[np.ndarray, np.ndarray], Pair], start_epoch: int, epoch_length: int):
        super().__init__(augment, start_epoch)
        if int(epoch_length) < 1:
            raise ValueError(f"epoch_length must be >= 1, got {epoch_length}")
        self.epoch_length = int(epoch_length)
        self.calls = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.calls = self.epoch * self.epoch_length

    def __call__(self, lq: np.ndarray, gt: np.ndarray) -> Pair:
        self.epoch = self.calls // self.epoch_length
        self.calls += 1
        return super().__call__(lq, gt)

    def __repr__(self) -> str:
        return (f"EpochCountingAdaptiveAugment({self.augment!r}, start_epoch={self.start_epoch}, "
                f"epoch_length={self.epoch_length}, epoch={self.epoch})")
