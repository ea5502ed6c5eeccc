"""Paired (lq, gt) datasets and the crop / augment / check helpers every dataset family shares.

Every dataset of ``labkit.data`` returns BasicSR-style items ``{'lq': Tensor (C, h, w), 'gt': Tensor
(C, H, W), 'name': str}``, float32 RGB in [0, 1] (``lq`` = low-quality input, ``gt`` = ground truth);
:func:`to_item` makes them.

Random crops follow BasicSR's ``paired_random_crop`` (``basicsr/data/transforms.py``): a patch of
``gt_size // scale`` pixels is drawn in the LR image and the GT patch is the same region, ``scale``
times bigger, so the two stay aligned. Their randomness comes from torch's RNG (one ``torch.randint``
per item seeds a numpy Generator, :func:`torch_rng`), so ``torch.manual_seed`` makes them reproducible,
with ``DataLoader(num_workers=0)`` and with workers (each worker's torch seed derives from the main one).

Datasets here (no particular dataset family):

- :class:`PairedFolderDataset`: two folders of images paired by file stem (``lq_root/0001x4.png`` +
  ``gt_root/0001.png``; data/README.md, section "Paired folders", ``#paired-folders``);
- :class:`ArrayPairDataset`: in-memory arrays (patch lists, ``.npy`` files);
- :class:`PairListDataset`: a list of ``(lq_path, gt_path)`` (SIDD-Medium, GoPro);
- :class:`DegradedCropDataset`: clean images degraded on the fly (synthetic noise / blur).

Helpers shared by the family modules (:mod:`labkit.data.sr`, :mod:`~labkit.data.dacon_sr`,
:mod:`~labkit.data.flare`, :mod:`~labkit.data.sidd`, :mod:`~labkit.data.gopro`,
:mod:`~labkit.data.inpainting`, :mod:`~labkit.data.streaming`): argument checks
(:func:`check_scale`, :func:`check_gt_size`, :func:`check_repeat`), :func:`as_float_image`,
:func:`lr_crop_origin`, :func:`apply_augment`, :func:`to_item`, and the pointers of layout errors
into data/README.md (:data:`README`, :func:`see`, :func:`listing`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from labkit.io import img2tensor, list_images, read_image

__all__ = [
    "Augment", "PathLike", "RngLike", "README", "see", "listing", "check_scale", "check_gt_size", "check_repeat",
    "torch_rng", "as_float_image", "lr_crop_origin", "apply_augment", "pack_image", "unpack_image", "to_item",
    "paired_random_crop",
    "PairedFolderDataset", "ArrayPairDataset", "PairListDataset", "DegradedCropDataset",
]


PathLike = Union[str, "os.PathLike[str]"]


#: A paired augmentation: ``(lq, gt) -> (lq, gt)`` on HWC numpy arrays; it must apply the same
#: geometric transform to both (e.g. ``labkit.data.augment``'s albumentations pipelines).
Augment = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]


RngLike = Union[np.random.Generator, int, None]


def check_scale(scale: object) -> int:
    """``scale`` as an int >= 1 (an SR factor); ValueError otherwise (bools rejected)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        raise ValueError(f"scale: expected an integer >= 1, got {scale!r}")
    return int(scale)


def check_gt_size(gt_size: object, scale: int) -> Optional[int]:
    """``gt_size`` as a positive int that is a multiple of ``scale``, or None; ValueError otherwise."""
    if gt_size is None:
        return None
    if isinstance(gt_size, bool) or not isinstance(gt_size, (int, np.integer)) or int(gt_size) < 1:
        raise ValueError(f"gt_size: expected a positive integer or None, got {gt_size!r}")
    if int(gt_size) % scale:
        raise ValueError(
            f"gt_size ({gt_size}) must be a multiple of scale ({scale}) so that the LR patch "
            f"({gt_size}/{scale}) is whole pixels"
        )
    return int(gt_size)


def check_repeat(repeat: object) -> int:
    """``repeat`` as an int >= 1 (how many times a dataset goes round per epoch); ValueError otherwise."""
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or int(repeat) < 1:
        raise ValueError(f"repeat: expected an integer >= 1, got {repeat!r}")
    return int(repeat)


def torch_rng() -> np.random.Generator:
    """A numpy Generator seeded from torch's global RNG (so ``torch.manual_seed`` controls it)."""
    seed = int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item())
    return np.random.default_rng(seed)


def as_float_image(img: np.ndarray, what: str) -> np.ndarray:
    """uint8 [0,255] / uint16 / float array, (H, W, C) or (H, W) -> float32 (H, W, C) in [0,1]."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array, got {type(img).__name__}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"{what}: expected an (H, W, C) image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float32, copy=False)
    raise TypeError(f"{what}: expected uint8 or float data, got dtype {img.dtype}")


def lr_crop_origin(lq_h: int, lq_w: int, lq_size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Random top-left corner (in LR pixels) of an ``lq_size`` square inside an ``lq_h x lq_w`` image."""
    top = int(rng.integers(0, lq_h - lq_size + 1))
    left = int(rng.integers(0, lq_w - lq_size + 1))
    return top, left


def apply_augment(
    augment: Optional[Augment], lq: np.ndarray, gt: np.ndarray, scale: Optional[int], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Run the paired augmentation on copies and check that it kept the pair aligned in size.

    Copies protect cached images from augmentations that work in place. ``scale=None`` skips the
    size check (pairs whose ratio is unknown).
    """
    if augment is None:
        return lq, gt
    out = augment(lq.copy(), gt.copy())
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"augment must return a (lq, gt) tuple, got {type(out).__name__} (item {name!r})")
    lq2, gt2 = out
    if scale is not None and (gt2.shape[0] != lq2.shape[0] * scale or gt2.shape[1] != lq2.shape[1] * scale):
        raise ValueError(
            f"augment broke the pair {name!r}: lq {lq2.shape[:2]} x scale {scale} != gt {gt2.shape[:2]}; "
            "a paired augmentation must apply the same geometric transform to both images"
        )
    return lq2, gt2


def pack_image(img: np.ndarray) -> np.ndarray:
    """A float32 [0,1] image to keep in memory: uint8 (a quarter of the bytes) when that is exact, as for
    every image decoded from an 8-bit file; else the float32 array itself. :func:`unpack_image` inverts it."""
    q = np.round(img * np.float32(255.0)).astype(np.uint8)
    return q if np.array_equal(q.astype(np.float32) / np.float32(255.0), img) else np.ascontiguousarray(img)


def unpack_image(stored: np.ndarray) -> np.ndarray:
    """The float32 [0,1] image that :func:`pack_image` stored (bit for bit)."""
    return stored.astype(np.float32) / np.float32(255.0) if stored.dtype == np.uint8 else stored


def to_item(lq: np.ndarray, gt: np.ndarray, name: str) -> dict:
    """The item every dataset returns: ``{'lq': CHW tensor, 'gt': CHW tensor, 'name': name}`` from HWC arrays."""
    return {"lq": img2tensor(np.ascontiguousarray(lq)), "gt": img2tensor(np.ascontiguousarray(gt)), "name": name}


#: Where each layout is specified (error messages point there).
README = "data/README.md"


def see(anchor: str) -> str:
    """``'see data/README.md#<anchor>'``, the pointer every layout error ends with."""
    return f"see {README}#{anchor}"


def listing(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items joined by commas, and how many there are in all (for error messages)."""
    shown = ", ".join(items[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else f" ({len(items)} in all)"
    return shown + more


def paired_random_crop(
    lq: np.ndarray, gt: np.ndarray, gt_size: int, scale: int, rng: RngLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Crop aligned random patches: a ``gt_size`` GT patch and the matching ``gt_size/scale`` LR patch.

    BasicSR semantics (``basicsr/data/transforms.py::paired_random_crop``): the LR top-left corner
    ``(y, x)`` is drawn uniformly in the LR image and the GT patch starts at ``(y*scale, x*scale)``,
    so the GT patch covers exactly the area the LR patch was made from.

    Args:
        lq: (h, w, C) array, any dtype.
        gt: (h*scale, w*scale, C) array.
        gt_size: GT patch side in pixels; a multiple of ``scale``.
        scale: integer SR factor >= 1 (1 for restoration pairs of equal size).
        rng: a ``numpy.random.Generator``, an int seed, or None (derived from torch's RNG, so
            ``torch.manual_seed`` makes it reproducible).

    Returns:
        ``(lq_patch, gt_patch)``: views of shapes (gt_size/scale, gt_size/scale, C) and
        (gt_size, gt_size, C).

    Raises:
        ValueError: gt is not ``scale`` times lq, ``gt_size`` not a multiple of ``scale``, or the
            patch does not fit in the image (the message gives the sizes).
    """
    scale = check_scale(scale)
    gt_size = check_gt_size(gt_size, scale)
    if gt_size is None:
        raise ValueError("gt_size: expected a positive integer, got None")
    lq_h, lq_w = lq.shape[:2]
    gt_h, gt_w = gt.shape[:2]
    if (gt_h, gt_w) != (lq_h * scale, lq_w * scale):
        raise ValueError(
            f"scale mismatch: gt {gt_h}x{gt_w} is not {scale}x lq {lq_h}x{lq_w} "
            f"(expected gt {lq_h * scale}x{lq_w * scale})"
        )
    lq_size = gt_size // scale
    if lq_h < lq_size or lq_w < lq_size:
        raise ValueError(
            f"patch does not fit: lq {lq_h}x{lq_w} is smaller than the lq patch {lq_size}x{lq_size} "
            f"(gt_size {gt_size} / scale {scale}); gt is {gt_h}x{gt_w}"
        )
    gen = torch_rng() if rng is None else np.random.default_rng(rng)
    top, left = lr_crop_origin(lq_h, lq_w, lq_size, gen)
    lq_patch = lq[top : top + lq_size, left : left + lq_size]
    gt_patch = gt[top * scale : (top + lq_size) * scale, left * scale : (left + lq_size) * scale]
    return lq_patch, gt_patch


def _stems(files: list[Path], folder: Path) -> dict[str, Path]:
    """stem -> path; ValueError if two files share a stem (e.g. 0001.png and 0001.jpg)."""
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise ValueError(f"'{folder}' holds two images with the stem {p.stem!r}: {out[p.stem].name}, {p.name}")
        out[p.stem] = p
    return out


class PairedFolderDataset(Dataset):
    """Pairs of images stored in two folders, ``lq_root`` (inputs) and ``gt_root`` (targets).

    Files pair by stem. DIV2K LR names carry the scale: ``0001x4.png`` in ``lq_root`` pairs with
    ``0001.png`` in ``gt_root`` (a trailing ``x{scale}``, either case, is stripped from an LR stem
    that has no exact partner). Names are checked at construction; sizes (gt = lq x scale) are
    checked when an item is read, so construction stays fast on big folders.

    Args:
        lq_root, gt_root: the folders (see :func:`labkit.io.list_images`).
        scale: gt size / lq size (1 for denoising/deblurring pairs).
        gt_size: GT patch side for aligned random crops (:func:`paired_random_crop`), or None.
        augment: optional ``(lq, gt) -> (lq, gt)`` on HWC float32 arrays, applied after cropping.
        repeat: the length is ``repeat x number of pairs``.
        cache: keep each decoded pair in memory after its first read (8-bit images as uint8): for
            folders that fit in memory, such as exported training patches, read again every epoch.
            Each DataLoader worker keeps its own.

    Items: ``{'lq', 'gt', 'name'}`` (name = the GT stem), tensors CHW float32 [0,1].

    Raises:
        ValueError (construction): an empty folder (named), images without a partner (up to 5 named
            and the count, for each side), duplicate stems, bad scale/gt_size.
        ValueError (reading an item): size mismatch, naming both files and their sizes; a patch that
            does not fit.
        FileNotFoundError: a missing folder.
    """

    def __init__(
        self,
        lq_root: PathLike,
        gt_root: PathLike,
        scale: int = 1,
        gt_size: Optional[int] = None,
        augment: Optional[Augment] = None,
        *,
        repeat: int = 1,
        cache: bool = False,
    ) -> None:
        self.lq_root, self.gt_root = Path(lq_root), Path(gt_root)
        self.cache = bool(cache)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.scale = check_scale(scale)
        self.gt_size = check_gt_size(gt_size, self.scale)
        self.augment = augment
        self.repeat = check_repeat(repeat)
        self.pairs = self._pair(list_images(self.lq_root), list_images(self.gt_root))

    def _pair(self, lq_files: list[Path], gt_files: list[Path]) -> list[tuple[Path, Path]]:
        gt_by_stem = _stems(gt_files, self.gt_root)
        suffix = re.compile(rf"^(.*)[xX]{self.scale}$")
        matched: dict[str, Path] = {}
        orphans_lq: list[str] = []
        for p in lq_files:
            key = p.stem
            if key not in gt_by_stem:
                m = suffix.match(key)
                key = m.group(1) if m and m.group(1) in gt_by_stem else key
            if key not in gt_by_stem:
                orphans_lq.append(p.name)
            elif key in matched:
                raise ValueError(
                    f"two LR images in '{self.lq_root}' pair with {gt_by_stem[key].name}: "
                    f"{matched[key].name} and {p.name}"
                )
            else:
                matched[key] = p
        orphans_gt = [p.name for stem, p in gt_by_stem.items() if stem not in matched]
        problems = []
        if orphans_gt:
            first = gt_by_stem[Path(orphans_gt[0]).stem]
            ext = first.suffix if self.scale == 1 else ".png"
            want = f"{first.stem}{ext}" if self.scale == 1 else f"{first.stem}x{self.scale}{ext} (or {first.stem}{ext})"
            problems.append(f"expected {self.lq_root / want} for {first}")
            problems.append(f"GT images in '{self.gt_root}' without an LR partner in '{self.lq_root}': {listing(orphans_gt)}")
        if orphans_lq:
            problems.append(f"LR images in '{self.lq_root}' without a GT partner in '{self.gt_root}': {listing(orphans_lq)}")
        if problems:
            hint = f" (LR names may end in x{self.scale}, e.g. 0001x{self.scale}.png for 0001.png)" if self.scale > 1 else ""
            raise ValueError("; ".join(problems) + hint + f"; pairs match by file stem, {see('paired-folders')}")
        return [(matched[p.stem], p) for p in sorted(gt_by_stem.values(), key=lambda q: q.name)]

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        lq_path, gt_path = self.pairs[index % len(self.pairs)]
        lq, gt = self._read_pair(index % len(self.pairs))
        if self.gt_size is not None:
            try:
                lq, gt = paired_random_crop(lq, gt, self.gt_size, self.scale)
            except ValueError as e:
                raise ValueError(f"pair '{lq_path}' / '{gt_path}': {e}") from None
        lq, gt = apply_augment(self.augment, lq, gt, self.scale, gt_path.stem)
        return to_item(lq, gt, gt_path.stem)

    def _read_pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``k`` decoded (float32 HWC [0,1]), from the cache when it holds it; sizes checked."""
        if k in self._cache:
            return tuple(unpack_image(a) for a in self._cache[k])  # type: ignore[return-value]
        lq_path, gt_path = self.pairs[k]
        lq, gt = read_image(lq_path), read_image(gt_path)
        (lh, lw), (gh, gw) = lq.shape[:2], gt.shape[:2]
        if (gh, gw) != (lh * self.scale, lw * self.scale):
            raise ValueError(
                f"size mismatch: GT '{gt_path}' is {gh}x{gw} but LR '{lq_path}' is {lh}x{lw} "
                f"(HxW); with scale {self.scale} the GT should be {lh * self.scale}x{lw * self.scale}"
            )
        if self.cache:
            self._cache[k] = (pack_image(lq), pack_image(gt))
        return lq, gt

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(lq={str(self.lq_root)!r}, gt={str(self.gt_root)!r}, n={len(self.pairs)}, "
            f"scale={self.scale}, gt_size={self.gt_size})"
        )


class ArrayPairDataset(Dataset):
    """In-memory (lq, gt) pairs, e.g. patch lists or ``.npy`` arrays; returns the usual item dict.

    Args:
        lq, gt: sequences of HWC (or HW) arrays, or (N, H, W, C) arrays; uint8 [0,255] or float
            [0,1] (converted to float32 per item, not copied up front).
        augment: optional ``(lq, gt) -> (lq, gt)`` on HWC float32 arrays.
        names: optional names (default ``'000000'``, ``'000001'``, ...).
        scale: if given, every pair is checked at construction: gt = lq x scale (shapes only).

    Raises:
        ValueError: different numbers of lq and gt, an empty set, wrong names length, a pair whose
            sizes do not match ``scale`` (naming its index), or an array that is not 2-D/3-D per item.
        TypeError: unsupported dtype (when the item is read).
    """

    def __init__(
        self,
        lq: Union[Sequence[np.ndarray], np.ndarray],
        gt: Union[Sequence[np.ndarray], np.ndarray],
        augment: Optional[Augment] = None,
        *,
        names: Optional[Sequence[str]] = None,
        scale: Optional[int] = None,
    ) -> None:
        if len(lq) != len(gt):
            raise ValueError(f"ArrayPairDataset: {len(lq)} lq arrays but {len(gt)} gt arrays")
        if len(gt) == 0:
            raise ValueError("ArrayPairDataset: no pairs given")
        if names is not None and len(names) != len(gt):
            raise ValueError(f"ArrayPairDataset: {len(names)} names for {len(gt)} pairs")
        self.lq, self.gt, self.augment = lq, gt, augment
        self.names = [str(n) for n in names] if names is not None else [f"{i:06d}" for i in range(len(gt))]
        self.scale = None if scale is None else check_scale(scale)
        for i in range(len(gt)):
            a, b = np.shape(lq[i]), np.shape(gt[i])
            if len(a) not in (2, 3) or len(b) not in (2, 3):
                raise ValueError(f"pair {i}: expected HWC or HW arrays, got lq {a} and gt {b}")
            if self.scale is not None and (b[0], b[1]) != (a[0] * self.scale, a[1] * self.scale):
                raise ValueError(
                    f"pair {i} ({self.names[i]!r}): gt {b[0]}x{b[1]} is not {self.scale}x lq {a[0]}x{a[1]}"
                )

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        name = self.names[index]
        lq = as_float_image(np.asarray(self.lq[index]), f"lq[{index}]")
        gt = as_float_image(np.asarray(self.gt[index]), f"gt[{index}]")
        lq, gt = apply_augment(self.augment, lq, gt, self.scale, name)
        return to_item(lq, gt, name)


class PairListDataset(Dataset):
    """(lq, gt) image files given as a list of path pairs (scale 1: denoising, deblurring).

    Args:
        pairs: ``[(lq_path, gt_path), ...]`` (e.g. :func:`sidd_medium_pairs`).
        gt_size: aligned random crop side, or None (whole images).
        augment: optional ``(lq, gt) -> (lq, gt)`` on HWC float32 arrays, after cropping.
        repeat: the length is ``repeat x len(pairs)``.
        names: one name per pair (default: the GT path's parent folder and stem).

    Items: ``{'lq', 'gt', 'name'}``.

    Raises:
        ValueError: an empty list; (reading) sizes differ, naming both files.
    """

    def __init__(self, pairs: Sequence[tuple[PathLike, PathLike]], gt_size: Optional[int] = None,
                 augment: Optional[Augment] = None, *, repeat: int = 1,
                 names: Optional[Sequence[str]] = None) -> None:
        if len(pairs) == 0:
            raise ValueError("PairListDataset: no pairs given")
        self.pairs = [(Path(a), Path(b)) for a, b in pairs]
        if names is not None and len(names) != len(self.pairs):
            raise ValueError(f"PairListDataset: {len(names)} names for {len(self.pairs)} pairs")
        self.names = [f"{b.parent.name}_{b.stem}" for _, b in self.pairs] if names is None else [str(n) for n in names]
        self.gt_size = check_gt_size(gt_size, 1)
        self.augment = augment
        self.repeat = check_repeat(repeat)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        i = index % len(self.pairs)
        lq_path, gt_path = self.pairs[i]
        lq, gt = read_image(lq_path), read_image(gt_path)
        if lq.shape != gt.shape:
            raise ValueError(f"size mismatch: '{lq_path}' is {lq.shape} but '{gt_path}' is {gt.shape}")
        if self.gt_size is not None:
            try:
                lq, gt = paired_random_crop(lq, gt, self.gt_size, 1)
            except ValueError as e:
                raise ValueError(f"pair '{lq_path}' / '{gt_path}': {e}") from None
        name = self.names[i]
        lq, gt = apply_augment(self.augment, lq, gt, 1, name)
        return to_item(lq, gt, name)


class DegradedCropDataset(Dataset):
    """Random crops of clean images degraded on the fly (synthetic noise / blur pairs).

    Each item draws an image, a random crop of ``gt_size + 2 * margin`` pixels, applies
    ``degrade(crop, rng)`` to it (e.g. :func:`labkit.data.noise_blur.motion_blur` with a fresh
    :func:`~labkit.data.noise_blur.trajectory_kernel`), then cuts ``margin`` pixels from every edge of
    both, so that a blur sees real image context instead of a padded border. The randomness comes
    from torch's RNG (``torch.manual_seed`` makes it reproducible).

    Args:
        images: ``[(name, HWC array uint8 or float [0,1]), ...]`` or plain arrays.
        degrade: ``(clean float32 HWC, numpy Generator) -> degraded float32 HWC`` of the same shape.
        gt_size: output patch side. margin: context pixels cut after degrading (>= kernel radius).
        augment: optional paired ``(lq, gt) -> (lq, gt)`` after the crop.
        length: items per epoch.

    Raises:
        ValueError: no images, bad sizes, or an image smaller than ``gt_size + 2 * margin`` (named).
    """

    def __init__(self, images: Sequence, degrade: Callable[[np.ndarray, np.random.Generator], np.ndarray],
                 gt_size: int, *, margin: int = 0, augment: Optional[Augment] = None, length: int = 100) -> None:
        if len(images) == 0:
            raise ValueError("DegradedCropDataset: no images given")
        items = [it if isinstance(it, (tuple, list)) else (f"{i:06d}", it) for i, it in enumerate(images)]
        self.names = [str(n) for n, _ in items]
        self.images = [as_float_image(np.asarray(im), f"image {n!r}") for n, im in items]
        self.gt_size = check_gt_size(gt_size, 1)
        if self.gt_size is None:
            raise ValueError("DegradedCropDataset: gt_size is required")
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f"margin must be a non-negative int, got {margin!r}")
        self.margin, self.degrade, self.augment = margin, degrade, augment
        self.length = check_repeat(length)
        need = self.gt_size + 2 * margin
        for n, im in zip(self.names, self.images):
            if im.shape[0] < need or im.shape[1] < need:
                raise ValueError(f"image {n!r} is {im.shape[0]}x{im.shape[1]}, smaller than gt_size + 2*margin = {need}")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        rng = torch_rng()
        i = int(rng.integers(len(self.images)))
        img, size, m = self.images[i], self.gt_size + 2 * self.margin, self.margin
        top, left = lr_crop_origin(img.shape[0], img.shape[1], size, rng)
        gt = img[top:top + size, left:left + size]
        lq = np.asarray(self.degrade(gt.copy(), rng), dtype=np.float32)
        if lq.shape != gt.shape:
            raise ValueError(f"degrade changed the shape {gt.shape} -> {lq.shape} (image {self.names[i]!r})")
        if m:
            lq, gt = lq[m:-m, m:-m], gt[m:-m, m:-m]
        lq, gt = apply_augment(self.augment, lq, np.ascontiguousarray(gt), 1, self.names[i])
        return to_item(lq, gt, self.names[i])
