"""Datasets for restoration: SR pairs made on the fly, paired folders (DIV2K layout), in-memory pairs.

Every dataset returns BasicSR-style items ``{'lq': Tensor (C, h, w), 'gt': Tensor (C, H, W), 'name':
str}``, float32 RGB in [0, 1] (``lq`` = low-quality input, ``gt`` = ground truth).

Random crops follow BasicSR's ``paired_random_crop`` (``basicsr/data/transforms.py``): a patch of
``gt_size // scale`` pixels is drawn in the LR image and the GT patch is the same region, ``scale``
times bigger, so the two stay aligned. Their randomness comes from torch's RNG (one ``torch.randint``
per item seeds a numpy Generator), so ``torch.manual_seed`` makes them reproducible, with
``DataLoader(num_workers=0)`` and with workers (each worker's torch seed derives from the main one).

Public API: :class:`SRFolderDataset`, :class:`PairedFolderDataset`, :class:`ArrayPairDataset`,
:func:`paired_random_crop`, :func:`div2k_paths`, :func:`sr_pairs`.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from labkit.data.degrade import bicubic_downsample, crop_to_multiple, inpainting_input, mask_from_pair, random_mask
from labkit.io import image_size, img2tensor, list_images, read_image

__all__ = [
    "Augment", "SRFolderDataset", "PairedFolderDataset", "ArrayPairDataset", "paired_random_crop",
    "div2k_paths", "sr_pairs", "dacon_sr_paths", "make_dacon_sr_miniature", "flare_pairs", "kfold_split", "FlarePairDataset",
    "InpaintingPhotoDataset", "DaconInpaintingDataset", "split_indices", "SIDD_NPY_FILES", "load_sidd_npy",
    "sidd_npy_splits", "sidd_medium_pairs", "PairListDataset", "gopro_paths", "gopro_pairs", "gopro_splits",
    "half_split", "DegradedCropDataset", "sr_benchmark_paths", "README",
]

PathLike = Union[str, "os.PathLike[str]"]
#: A paired augmentation: ``(lq, gt) -> (lq, gt)`` on HWC numpy arrays; it must apply the same
#: geometric transform to both (e.g. ``labkit.data.augment``'s albumentations pipelines).
Augment = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]
RngLike = Union[np.random.Generator, int, None]


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def _check_scale(scale: object) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        raise ValueError(f"scale: expected an integer >= 1, got {scale!r}")
    return int(scale)


def _check_gt_size(gt_size: object, scale: int) -> Optional[int]:
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


def _check_repeat(repeat: object) -> int:
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or int(repeat) < 1:
        raise ValueError(f"repeat: expected an integer >= 1, got {repeat!r}")
    return int(repeat)


def _outside_stacklevel() -> int:
    """``stacklevel`` for warnings.warn that points at the first caller outside this module."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


def _torch_rng() -> np.random.Generator:
    """A numpy Generator seeded from torch's global RNG (so ``torch.manual_seed`` controls it)."""
    seed = int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item())
    return np.random.default_rng(seed)


def _as_float_image(img: np.ndarray, what: str) -> np.ndarray:
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


def _lr_crop_origin(lq_h: int, lq_w: int, lq_size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Random top-left corner (in LR pixels) of an ``lq_size`` square inside an ``lq_h x lq_w`` image."""
    top = int(rng.integers(0, lq_h - lq_size + 1))
    left = int(rng.integers(0, lq_w - lq_size + 1))
    return top, left


def _apply_augment(
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


def _to_item(lq: np.ndarray, gt: np.ndarray, name: str) -> dict:
    return {"lq": img2tensor(np.ascontiguousarray(lq)), "gt": img2tensor(np.ascontiguousarray(gt)), "name": name}


#: Where each layout is specified (error messages point there).
README = "data/README.md"


def _see(anchor: str) -> str:
    """``'see data/README.md#<anchor>'``, the pointer every layout error ends with."""
    return f"see {README}#{anchor}"


def _listing(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else f" ({len(items)} in all)"
    return shown + more


# --------------------------------------------------------------------------------------------------
# paired_random_crop
# --------------------------------------------------------------------------------------------------


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
    scale = _check_scale(scale)
    gt_size = _check_gt_size(gt_size, scale)
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
    gen = _torch_rng() if rng is None else np.random.default_rng(rng)
    top, left = _lr_crop_origin(lq_h, lq_w, lq_size, gen)
    lq_patch = lq[top : top + lq_size, left : left + lq_size]
    gt_patch = gt[top * scale : (top + lq_size) * scale, left * scale : (left + lq_size) * scale]
    return lq_patch, gt_patch


# --------------------------------------------------------------------------------------------------
# SRFolderDataset
# --------------------------------------------------------------------------------------------------


class SRFolderDataset(Dataset):
    """SR training/evaluation pairs from HR images; the LR input is made on the fly.

    ``lq = bicubic_downsample(gt, scale)`` (MATLAB ``imresize`` bicubic, the "BI" degradation of
    DIV2K and the SR benchmarks), clipped to [0, 1] (as 8-bit LR files are).

    With ``gt_size`` an aligned random patch is drawn (BasicSR ``paired_random_crop``: LR corner
    uniform in the LR grid, GT corner = LR corner x scale). Only the patch plus a margin of
    ``3*scale`` HR pixels (more than the bicubic kernel's reach of ``2*scale``) is downsampled, so the
    LR patch equals the matching crop of the downsampled *whole* image, at a fraction of the cost.

    Args:
        gt_root: folder of HR images (see :func:`labkit.io.list_images`); or None with ``images``.
        scale: integer SR factor >= 1.
        gt_size: HR patch side for random paired crops (a multiple of ``scale``, at most the smallest
            image side); None returns whole images.
        crop_to_scale: if an HR side is not a multiple of ``scale``: False -> ValueError naming the
            file and size; True -> crop bottom/right (BasicSR ``mod_crop``) and warn once.
        augment: optional ``(lq, gt) -> (lq, gt)`` on HWC float32 arrays, applied after cropping.
        repeat: the dataset's length is ``repeat x number of images`` (more random crops per epoch).
        cache: keep decoded HR images (and whole-image LR) in memory. 8-bit sources are kept as uint8
            (3 bytes/pixel; DIV2K train ~7 GB); use ``cache=False`` for big folders. Each DataLoader
            worker holds its own cache.
        images: ``[(name, HWC array), ...]`` instead of ``gt_root`` (see :meth:`from_arrays`).

    Items: ``{'lq': (C, H/s, W/s), 'gt': (C, H, W), 'name': file stem or given name}``, float32.

    Raises (at construction): ValueError for a bad scale/gt_size/repeat, an HR size not divisible by
    ``scale`` (unless ``crop_to_scale``), or ``gt_size`` larger than an image (naming it);
    FileNotFoundError / ValueError from :func:`labkit.io.list_images` for a missing / empty folder.
    Only image headers are read at construction; pixels are decoded when an item is requested.
    """

    def __init__(
        self,
        gt_root: Optional[PathLike] = None,
        scale: int = 4,
        gt_size: Optional[int] = None,
        crop_to_scale: bool = False,
        augment: Optional[Augment] = None,
        repeat: int = 1,
        cache: bool = True,
        *,
        images: Optional[Sequence[tuple[str, np.ndarray]]] = None,
    ) -> None:
        self.scale = _check_scale(scale)
        self.gt_size = _check_gt_size(gt_size, self.scale)
        self.repeat = _check_repeat(repeat)
        self.crop_to_scale = bool(crop_to_scale)
        self.augment = augment
        self.cache = bool(cache)
        if (gt_root is None) == (images is None):
            raise ValueError("SRFolderDataset: give exactly one of gt_root (a folder) and images (a list)")

        self.paths: Optional[list[Path]] = None
        self._arrays: Optional[list[np.ndarray]] = None
        if gt_root is not None:
            self.root: Optional[Path] = Path(gt_root)
            self.paths = list_images(self.root)
            self.names = [p.stem for p in self.paths]
            sizes = [image_size(p) for p in self.paths]
            labels = [str(p) for p in self.paths]
        else:
            self.root = None
            items = list(images)  # type: ignore[arg-type]
            if not items:
                raise ValueError("SRFolderDataset: images is empty")
            self.names, self._arrays = [], []
            for i, item in enumerate(items):
                if not (isinstance(item, (tuple, list)) and len(item) == 2):
                    raise TypeError(f"images[{i}]: expected a (name, array) pair, got {type(item).__name__}")
                name, arr = item
                self.names.append(str(name))
                self._arrays.append(_as_float_image(arr, f"images[{i}] ({name!r})"))
            sizes = [a.shape[:2] for a in self._arrays]
            labels = [f"image {n!r}" for n in self.names]

        self.sizes = self._validate_sizes(sizes, labels)
        self._gt_cache: dict[int, np.ndarray] = {}
        self._lq_cache: dict[int, np.ndarray] = {}

    @classmethod
    def from_arrays(cls, items: Sequence[tuple[str, np.ndarray]], scale: int, **kwargs) -> "SRFolderDataset":
        """Build from in-memory HR images ``[(name, HWC array uint8 or float [0,1]), ...]``.

        ``kwargs`` are the other constructor arguments (``gt_size``, ``crop_to_scale``, ``augment``,
        ``repeat``, ``cache``). E.g. ``SRFolderDataset.from_arrays(sample_images('train'), 4)``.
        """
        return cls(None, scale, images=items, **kwargs)

    # -- construction checks --------------------------------------------------------------------

    def _validate_sizes(self, sizes: list[tuple[int, int]], labels: list[str]) -> list[tuple[int, int]]:
        s = self.scale
        bad = [(lab, hw) for lab, hw in zip(labels, sizes) if hw[0] % s or hw[1] % s]
        if bad and not self.crop_to_scale:
            lab, (h, w) = bad[0]
            raise ValueError(
                f"{lab}: HR size {h}x{w} (HxW) is not divisible by scale {s} "
                f"({len(bad)} of {len(sizes)} images are not); pass crop_to_scale=True to crop "
                "bottom/right, or crop the images first"
            )
        if bad:
            warnings.warn(
                f"crop_to_scale: {len(bad)} of {len(sizes)} HR images are not divisible by scale {s} and "
                f"are cropped bottom/right: {_listing([b[0] for b in bad])}",
                UserWarning,
                stacklevel=_outside_stacklevel(),
            )
        cropped = [(h - h % s, w - w % s) for h, w in sizes]
        for lab, (h, w) in zip(labels, cropped):
            if h == 0 or w == 0:
                raise ValueError(f"{lab}: HR size {h}x{w} after cropping to scale {s} is empty")
            if self.gt_size is not None and (h < self.gt_size or w < self.gt_size):
                raise ValueError(
                    f"{lab}: HR size {h}x{w} (HxW, after cropping to scale {s}) is smaller than "
                    f"gt_size {self.gt_size}"
                )
        return cropped

    # -- data -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names) * self.repeat

    def _load_gt(self, i: int) -> np.ndarray:
        """The HR image ``i`` (cropped to the scale when ``crop_to_scale``), float32 HWC [0,1]."""
        if i in self._gt_cache:
            stored = self._gt_cache[i]
            return stored.astype(np.float32) / np.float32(255.0) if stored.dtype == np.uint8 else stored
        if self._arrays is not None:
            img = self._arrays[i]
        else:
            img = read_image(self.paths[i])  # type: ignore[index]
        if self.crop_to_scale:
            img = crop_to_multiple(img, self.scale)
        if img.shape[:2] != tuple(self.sizes[i]):  # e.g. the file changed since construction
            raise ValueError(
                f"{self.paths[i] if self.paths else self.names[i]}: decoded size {img.shape[0]}x{img.shape[1]} "
                f"differs from the size {self.sizes[i][0]}x{self.sizes[i][1]} seen at construction"
            )
        if self.cache and self._arrays is None:
            q = np.round(img * np.float32(255.0)).astype(np.uint8)
            exact = np.array_equal(q.astype(np.float32) / np.float32(255.0), img)
            self._gt_cache[i] = q if exact else np.ascontiguousarray(img)
        return img

    def _lq_whole(self, i: int, gt: np.ndarray) -> np.ndarray:
        if i in self._lq_cache:
            return self._lq_cache[i]
        lq = np.clip(bicubic_downsample(gt, self.scale), 0.0, 1.0)
        if self.cache:
            self._lq_cache[i] = lq
        return lq

    def _crop_pair(self, gt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Aligned random patch; the LR patch equals the crop of bicubic_downsample(whole gt)."""
        s, size = self.scale, self.gt_size
        assert size is not None
        h, w = gt.shape[:2]
        lq_size = size // s
        top, left = _lr_crop_origin(h // s, w // s, lq_size, rng)
        gy, gx = top * s, left * s
        margin = 3 * s  # the antialiased cubic kernel reaches 2*scale HR pixels; keep a multiple of s
        y0, x0 = max(0, gy - margin), max(0, gx - margin)
        y1, x1 = min(h, gy + size + margin), min(w, gx + size + margin)
        lq_win = bicubic_downsample(gt[y0:y1, x0:x1], s)
        ly, lx = (gy - y0) // s, (gx - x0) // s
        lq = np.clip(lq_win[ly : ly + lq_size, lx : lx + lq_size], 0.0, 1.0)
        return lq, gt[gy : gy + size, gx : gx + size]

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        i = index % len(self.names)
        gt = self._load_gt(i)
        if self.gt_size is None:
            lq = self._lq_whole(i, gt)
        else:
            lq, gt = self._crop_pair(gt, _torch_rng())
        lq, gt = _apply_augment(self.augment, lq, gt, self.scale, self.names[i])
        return _to_item(lq, gt, self.names[i])

    def __repr__(self) -> str:
        src = str(self.root) if self.root is not None else "arrays"
        return (
            f"{type(self).__name__}({src!r}, n={len(self.names)}, scale={self.scale}, "
            f"gt_size={self.gt_size}, repeat={self.repeat})"
        )


# --------------------------------------------------------------------------------------------------
# PairedFolderDataset
# --------------------------------------------------------------------------------------------------


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
    ) -> None:
        self.lq_root, self.gt_root = Path(lq_root), Path(gt_root)
        self.scale = _check_scale(scale)
        self.gt_size = _check_gt_size(gt_size, self.scale)
        self.augment = augment
        self.repeat = _check_repeat(repeat)
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
            problems.append(f"GT images in '{self.gt_root}' without an LR partner in '{self.lq_root}': {_listing(orphans_gt)}")
        if orphans_lq:
            problems.append(f"LR images in '{self.lq_root}' without a GT partner in '{self.gt_root}': {_listing(orphans_lq)}")
        if problems:
            hint = f" (LR names may end in x{self.scale}, e.g. 0001x{self.scale}.png for 0001.png)" if self.scale > 1 else ""
            raise ValueError("; ".join(problems) + hint + f"; pairs match by file stem, {_see('paired-folders')}")
        return [(matched[p.stem], p) for p in sorted(gt_by_stem.values(), key=lambda q: q.name)]

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        lq_path, gt_path = self.pairs[index % len(self.pairs)]
        lq, gt = read_image(lq_path), read_image(gt_path)
        (lh, lw), (gh, gw) = lq.shape[:2], gt.shape[:2]
        if (gh, gw) != (lh * self.scale, lw * self.scale):
            raise ValueError(
                f"size mismatch: GT '{gt_path}' is {gh}x{gw} but LR '{lq_path}' is {lh}x{lw} "
                f"(HxW); with scale {self.scale} the GT should be {lh * self.scale}x{lw * self.scale}"
            )
        if self.gt_size is not None:
            try:
                lq, gt = paired_random_crop(lq, gt, self.gt_size, self.scale)
            except ValueError as e:
                raise ValueError(f"pair '{lq_path}' / '{gt_path}': {e}") from None
        lq, gt = _apply_augment(self.augment, lq, gt, self.scale, gt_path.stem)
        return _to_item(lq, gt, gt_path.stem)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(lq={str(self.lq_root)!r}, gt={str(self.gt_root)!r}, n={len(self.pairs)}, "
            f"scale={self.scale}, gt_size={self.gt_size})"
        )


# --------------------------------------------------------------------------------------------------
# div2k_paths
# --------------------------------------------------------------------------------------------------


def div2k_paths(root: PathLike, scale: int, split: str = "train") -> tuple[Path, Path]:
    """Find the HR and bicubic-LR folders of a DIV2K-style dataset under ``root``.

    Layouts tried, in order (the first where both folders exist wins; ``X{scale}`` also as ``x{scale}``):

    1. the official download names (https://data.vision.ee.ethz.ch/cvl/DIV2K/): ``root/DIV2K_{split}_HR``
       and ``root/DIV2K_{split}_LR_bicubic/X{scale}`` (LR files named ``0001x4.png``);
    2. ``root/{split}/HR`` and ``root/{split}/LR_bicubic/X{scale}``;
    3. ``root/HR`` and ``root/LR_bicubic/X{scale}`` (``root`` is already one split's folder, so
       ``split`` is not used).

    Args:
        root: the dataset folder.
        scale: the LR factor (2, 3, 4 for DIV2K bicubic).
        split: ``'train'`` or ``'valid'`` (``'val'`` is accepted).

    Returns:
        ``(gt_root, lq_root)``, for :class:`PairedFolderDataset` (``lq_root`` first there).

    Raises:
        ValueError: bad split or scale.
        FileNotFoundError: no layout matched; the message lists every folder looked for and, when an
            HR folder was found, the LR scales that exist next to it.
    """
    scale = _check_scale(scale)
    split = {"val": "valid"}.get(split, split)
    if split not in ("train", "valid"):
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DIV2K root folder not found: '{root}' ({_see('div2k')})")
    layouts = [
        (root / f"DIV2K_{split}_HR", root / f"DIV2K_{split}_LR_bicubic"),
        (root / split / "HR", root / split / "LR_bicubic"),
        (root / "HR", root / "LR_bicubic"),
    ]
    looked: list[str] = []
    notes: list[str] = []
    for hr, lr_parent in layouts:
        lr_options = [lr_parent / f"X{scale}", lr_parent / f"x{scale}"]
        looked.append(f"{hr} + {lr_options[0]}")
        if not hr.is_dir():
            continue
        for lr in lr_options:
            if lr.is_dir():
                return hr, lr
        have = sorted(p.name for p in lr_parent.iterdir() if p.is_dir()) if lr_parent.is_dir() else []
        notes.append(f"found {hr} but not {lr_options[0]}" + (f" (LR scales present: {', '.join(have)})" if have else ""))
    msg = f"no DIV2K {split} x{scale} layout under '{root}'; looked for: " + "; ".join(looked)
    if notes:
        msg += ". " + "; ".join(notes)
    raise FileNotFoundError(msg + f" (LR files named 0001x{scale}.png for HR 0001.png; {_see('div2k')})")


def sr_benchmark_paths(root: PathLike, scale: int) -> tuple[Path, Optional[Path]]:
    """The HR folder of an SR benchmark set (Set5, Set14, B100, Urban100...) and its bicubic LR, if any.

    Layouts tried under ``root`` (one set's folder, e.g. ``benchmark/Set5``), first match wins:

    1. EDSR's benchmark pack: ``HR/baby.png`` and ``LR_bicubic/X{scale}/babyx{scale}.png``
       (the LR folder is optional);
    2. BasicSR's ``datasets/Set5``: ``GTmod12/baby.png`` and ``LRbicx{scale}/baby.png`` (optional);
    3. ``root`` itself a folder of HR images (the LR is then made on the fly).

    Returns: ``(hr_dir, lr_dir)``; ``lr_dir`` is None when no bicubic LR of this scale is there
    (:func:`labkit.evaluate.evaluate_sr` then makes it with MATLAB bicubic after a mod-crop).

    Raises:
        ValueError: bad scale. FileNotFoundError / ValueError: no HR images found (the message
        lists the layouts looked for and points to data/README.md#sr-benchmarks).
    """
    scale = _check_scale(scale)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"SR benchmark folder not found: '{root}' ({_see('sr-benchmarks')})")
    for hr, lrs in ((root / "HR", (root / "LR_bicubic" / f"X{scale}", root / "LR_bicubic" / f"x{scale}")),
                    (root / "GTmod12", (root / f"LRbicx{scale}",))):
        if hr.is_dir():
            list_images(hr)  # an empty HR folder is an error here, not later
            return hr, next((lr for lr in lrs if lr.is_dir()), None)
    try:
        list_images(root)
    except ValueError:
        raise ValueError(
            f"no SR benchmark layout under '{root}': expected HR/*.png (+ optional LR_bicubic/X{scale}/*x{scale}.png), "
            f"GTmod12/*.png (+ optional LRbicx{scale}/), or HR images directly in the folder ({_see('sr-benchmarks')})"
        ) from None
    return root, None


# --------------------------------------------------------------------------------------------------
# ArrayPairDataset
# --------------------------------------------------------------------------------------------------


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
        self.scale = None if scale is None else _check_scale(scale)
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
        lq = _as_float_image(np.asarray(self.lq[index]), f"lq[{index}]")
        gt = _as_float_image(np.asarray(self.gt[index]), f"gt[{index}]")
        lq, gt = _apply_augment(self.augment, lq, gt, self.scale, name)
        return _to_item(lq, gt, name)


# --------------------------------------------------------------------------------------------------
# sr_pairs
# --------------------------------------------------------------------------------------------------


def sr_pairs(images: Sequence[tuple[str, np.ndarray]], scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Make bicubic SR evaluation pairs: ``[(name, lq, gt), ...]`` (e.g. for the held-out photos).

    ``gt`` is the image cropped bottom/right to a multiple of ``scale`` (BasicSR ``mod_crop``);
    ``lq = bicubic_downsample(gt, scale)`` (MATLAB ``imresize``), clipped to [0, 1].

    Args:
        images: ``[(name, HWC array uint8 or float [0,1]), ...]``, e.g.
            ``labkit.data.sample.sample_images('heldout')``.
        scale: integer factor >= 1.

    Returns:
        list of ``(name, lq float32 (H/s, W/s, C), gt float32 (H, W, C))``.

    Raises:
        ValueError: bad scale, an image smaller than ``scale`` or not 2-D/3-D (named).
        TypeError: an unsupported dtype or a malformed item.
    """
    scale = _check_scale(scale)
    out = []
    for i, item in enumerate(images):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"images[{i}]: expected a (name, array) pair, got {type(item).__name__}")
        name, img = item
        gt = np.ascontiguousarray(crop_to_multiple(_as_float_image(img, f"image {name!r}"), scale))
        lq = np.clip(bicubic_downsample(gt, scale), 0.0, 1.0).astype(np.float32, copy=False)
        out.append((str(name), lq, gt))
    return out


# --------------------------------------------------------------------------------------------------
# the 000 competition's layout (DACON AI Yangjae Hub SR, 512 -> 2048)
# --------------------------------------------------------------------------------------------------


def dacon_sr_paths(root: PathLike) -> dict[str, Path]:
    """The folders of the DACON AI Yangjae Hub SR data (write-up 000) under ``root``.

    Layout (data/README.md): ``train/lr/*.png`` (512 x 512), ``train/hr/*.png`` (2048 x 2048, same
    names), ``test/lr/*.png``; ``test/hr/`` is optional (the organisers kept it; a local copy, such
    as the miniature the notebook builds from the bundled photos, enables scoring).

    Returns:
        ``{'train_lr', 'train_hr', 'test_lr'}`` and ``'test_hr'`` when present, as Paths.

    Raises:
        FileNotFoundError: ``root`` or a required folder is missing (the message names it and the
            expected layout).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"DACON SR data root not found: '{root}' ({_see('dacon-sr')})")
    out = {"train_lr": root / "train" / "lr", "train_hr": root / "train" / "hr", "test_lr": root / "test" / "lr"}
    missing = [str(p) for p in out.values() if not p.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"DACON SR layout incomplete under '{root}': missing {', '.join(missing)} "
            f"(expected train/lr/*.png, train/hr/*.png with the same names, test/lr/*.png; {_see('dacon-sr')})"
        )
    if (root / "test" / "hr").is_dir():
        out["test_hr"] = root / "test" / "hr"
    return out


def make_dacon_sr_miniature(
    root: PathLike,
    train: Sequence[tuple[str, np.ndarray]],
    test: Sequence[tuple[str, np.ndarray]],
    *,
    scale: int = 4,
    hr_size: int = 256,
    crops_per_side: int = 3,
) -> Path:
    """Write a miniature of the DACON SR layout (:func:`dacon_sr_paths`) from in-memory photos.

    Each training photo gives ``crops_per_side x crops_per_side`` evenly spaced HR crops of
    ``hr_size`` px (every photo weighs the same), written as ``train/hr/<name>_<i><j>.png`` with
    their MATLAB-bicubic LR in ``train/lr/``; each test photo is mod-cropped to ``scale`` and
    written to ``test/hr/`` with its LR in ``test/lr/`` (the organisers kept the test HR; the
    miniature keeps it so that the test set can be scored). Notebook 03 and ``labkit train 03``
    use it when no ``data_root`` is given.

    Args:
        root: folder to fill (created; existing files are replaced atomically).
        train, test: ``[(name, HWC RGB array, float [0, 1] or uint8), ...]``, e.g.
            ``labkit.data.sample.sample_images('train')``.
        scale: HR / LR factor. hr_size: HR crop side in px, a multiple of ``scale``.
        crops_per_side: crops along each axis of a training photo (>= 1).

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: ``hr_size`` not a positive multiple of ``scale``, ``crops_per_side < 1``, or a
            training photo smaller than ``hr_size`` (named).
    """
    from labkit.io import write_image  # local: keeps this module's import list short

    scale = _check_scale(scale)
    if int(hr_size) < scale or int(hr_size) % scale:
        raise ValueError(f"hr_size must be a positive multiple of scale={scale}, got {hr_size}")
    if int(crops_per_side) < 1:
        raise ValueError(f"crops_per_side must be >= 1, got {crops_per_side}")
    root, hr, k = Path(root), int(hr_size), int(crops_per_side)
    for name, img in train:
        img = _as_float_image(img, f"training photo {name!r}")
        if img.shape[0] < hr or img.shape[1] < hr:
            raise ValueError(f"training photo {name!r} is {img.shape[1]}x{img.shape[0]}, smaller than hr_size={hr}")
        ys = np.linspace(0, img.shape[0] - hr, k).round().astype(int)
        xs = np.linspace(0, img.shape[1] - hr, k).round().astype(int)
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                crop = img[y:y + hr, x:x + hr]
                write_image(root / "train" / "hr" / f"{name}_{i}{j}.png", crop)
                write_image(root / "train" / "lr" / f"{name}_{i}{j}.png", bicubic_downsample(crop, scale))
    for name, lq, gt in sr_pairs(test, scale):
        write_image(root / "test" / "lr" / f"{name}.png", lq)
        write_image(root / "test" / "hr" / f"{name}.png", gt)
    return root
# Inpainting + colorization (notebook 06, write-up 002)
# --------------------------------------------------------------------------------------------------

def _inpainting_item(gt: np.ndarray, mask: np.ndarray, name: str, *, fill: float, with_mask: bool) -> dict:
    lq = inpainting_input(gt, mask, fill=fill, with_mask=with_mask)
    return {"lq": img2tensor(lq), "gt": img2tensor(np.ascontiguousarray(gt)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None], "name": name}


class InpaintingPhotoDataset(Dataset):
    """Inpainting + colorization pairs made on the fly from colour photos (seeded masks, grayscale).

    Each item: ``gt`` = an RGB crop (or the whole photo), ``mask`` = :func:`labkit.data.degrade.random_mask`
    (free-form strokes and boxes covering ``mask_fraction``), ``lq`` =
    :func:`labkit.data.degrade.inpainting_input` (the grayscale crop with the masked pixels set to
    ``fill``, and the mask as a second channel when ``with_mask``).

    Args:
        images: ``[(name, HWC RGB array uint8 or float [0, 1]), ...]``, e.g.
            ``labkit.data.sample.sample_images('train')``.
        patch_size: side of the random square crops (training); None = the whole photo, cropped
            bottom/right to a multiple of ``multiple`` (evaluation).
        mask_fraction: the share of each item's pixels to mask, in [0, 0.9].
        length: items per epoch (default: one per photo).
        seed: None = crops and masks from torch's RNG (``torch.manual_seed`` reproduces an epoch;
            every epoch differs: training). An int = item ``i`` always gets the same crop and mask
            (derived from ``(seed, i)``: a fixed evaluation set).
        with_mask, fill: as :func:`labkit.data.degrade.inpainting_input`.
        kinds: mask shapes, as :func:`labkit.data.degrade.random_mask`.
        multiple: whole photos are cropped to a multiple of this (the generator's ``2**num_down``).

    Items: ``{'lq': (1|2, H, W), 'gt': (3, H, W), 'mask': (1, H, W) (1 = missing), 'name'}``, float32.

    Raises:
        ValueError: no images, a photo smaller than ``patch_size`` (named), bad arguments.
    """

    def __init__(self, images: Sequence[tuple[str, np.ndarray]], patch_size: Optional[int] = 64,
                 mask_fraction: float = 0.2, *, length: Optional[int] = None, seed: Optional[int] = None,
                 with_mask: bool = True, fill: float = 0.0, kinds: Sequence[str] = ("strokes", "boxes"),
                 multiple: int = 8) -> None:
        if not images:
            raise ValueError("InpaintingPhotoDataset: images is empty")
        if patch_size is not None and (isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 8):
            raise ValueError(f"InpaintingPhotoDataset: patch_size must be an int >= 8 or None, got {patch_size!r}")
        if not 0.0 <= mask_fraction <= 0.9:
            raise ValueError(f"InpaintingPhotoDataset: mask_fraction must be in [0, 0.9], got {mask_fraction!r}")
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"InpaintingPhotoDataset: length must be a positive int or None, got {length!r}")
        self.images = []
        for name, img in images:
            arr = _as_float_image(np.asarray(img), f"image {name!r}")
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"InpaintingPhotoDataset: image {name!r} must be HWC RGB, got shape {arr.shape}")
            h, w = arr.shape[:2]
            if patch_size is not None and min(h, w) < patch_size:
                raise ValueError(f"InpaintingPhotoDataset: image {name!r} ({h}x{w}) is smaller than patch_size {patch_size}")
            if patch_size is None:
                arr = arr[: h - h % multiple, : w - w % multiple]
            self.images.append((str(name), np.ascontiguousarray(arr)))
        self.patch_size, self.mask_fraction, self.length, self.seed = patch_size, float(mask_fraction), length, seed
        self.with_mask, self.fill, self.kinds = with_mask, float(fill), tuple(kinds)

    def __len__(self) -> int:
        return self.length if self.length is not None else len(self.images)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = _torch_rng() if self.seed is None else np.random.default_rng([self.seed, index])
        name, img = self.images[index % len(self.images)]
        if self.patch_size is not None:
            p = self.patch_size
            top = int(rng.integers(0, img.shape[0] - p + 1))
            left = int(rng.integers(0, img.shape[1] - p + 1))
            img = img[top:top + p, left:left + p]
            name = f"{name}@{top},{left}"
        mask = random_mask(img.shape[0], img.shape[1], self.mask_fraction, seed=rng, kinds=self.kinds)
        return _inpainting_item(img, mask, name, fill=self.fill, with_mask=self.with_mask)

    def __repr__(self) -> str:
        return (f"InpaintingPhotoDataset({len(self.images)} photos, patch_size={self.patch_size}, "
                f"mask_fraction={self.mask_fraction}, items={len(self)}, seed={self.seed})")


def split_indices(n: int, val_fraction: float = 0.2, *, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """A seeded shuffle of ``range(n)`` cut into (train, val) index arrays; 0.2 = the 8:2 split.

    Raises ValueError: ``n < 2`` or ``val_fraction`` outside (0, 1).
    """
    if n < 2:
        raise ValueError(f"split_indices: need at least 2 items, got {n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_indices: val_fraction must be in (0, 1), got {val_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(n * val_fraction))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class DaconInpaintingDataset(Dataset):
    """The 002 competition's data (DACON image colorization + missing-region restoration).

    Layout under ``root`` (see data/README.md)::

        train.csv                 ID,input_image_path,gt_image_path
        train_input/TRAIN_00000.png   grayscale photo with missing regions
        train_gt/TRAIN_00000.png      the colour original
        test.csv                  ID,input_image_path
        test_input/TEST_000.png

    Paths in the CSV are relative to ``root`` (``./train_input/...`` works). The competition has no
    mask files: with ``with_mask`` the mask is recovered by :func:`labkit.data.degrade.mask_from_pair`
    (where the input differs from the target's luma by more than ``mask_tol``), which needs the
    target, so the test split needs ``with_mask=False``.

    Args:
        root: the unpacked competition folder.
        split: ``'train'`` / ``'val'`` (the seeded 8:2 split of train.csv by :func:`split_indices`),
            ``'all'`` (all of train.csv) or ``'test'`` (test.csv; items without ``gt``).
        val_fraction, seed: the split (write-up: 0.2, i.e. 8:2).
        limit: keep at most this many items of the split (write-up: 10000 train / 3000 val).
        with_mask: add the recovered mask as the second input channel.
        mask_tol: see :func:`labkit.data.degrade.mask_from_pair`.

    Items: ``{'lq': (1|2, H, W), 'gt': (3, H, W), 'mask': (1, H, W), 'name'}`` (test: ``lq`` and
    ``name``), float32 in [0, 1]; ``lq`` channel 0 is the input's gray.

    Raises:
        FileNotFoundError: the root, the CSV or an image the CSV names is missing (named, with the CSV
        line). ValueError: a CSV without the needed columns (names the file and the columns), an
        unknown split, ``with_mask`` on the test split.
        ImageError (from :func:`labkit.io.read_image`): an unreadable image, named.
    """

    SPLITS = ("train", "val", "all", "test")

    def __init__(self, root: PathLike, split: str = "train", *, val_fraction: float = 0.2, seed: int = 42,
                 limit: Optional[int] = None, with_mask: bool = True, mask_tol: float = 0.1) -> None:
        import csv

        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"DaconInpaintingDataset: root folder not found: {self.root} ({_see('dacon-inpainting')})")
        if split not in self.SPLITS:
            raise ValueError(f"DaconInpaintingDataset: split must be one of {self.SPLITS}, got {split!r}")
        if split == "test" and with_mask:
            raise ValueError("DaconInpaintingDataset: the test split has no targets to recover masks from; "
                             "use with_mask=False (and a generator with num_in_ch=1)")
        csv_path = self.root / ("test.csv" if split == "test" else "train.csv")
        needed = ["ID", "input_image_path"] + ([] if split == "test" else ["gt_image_path"])
        if not csv_path.is_file():
            raise FileNotFoundError(
                f"DaconInpaintingDataset: {csv_path} not found (expected the competition's CSV: {csv_path.name} with "
                f"columns {', '.join(needed)}, next to {'test_input/' if split == 'test' else 'train_input/ and train_gt/'}; "
                f"{_see('dacon-inpainting')})")
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"DaconInpaintingDataset: {csv_path} lacks the column(s) {missing}; "
                                 f"it has {reader.fieldnames}, expected {','.join(needed)} ({_see('dacon-inpainting')})")
            rows = [dict(r) for r in reader]
        if not rows:
            raise ValueError(f"DaconInpaintingDataset: {csv_path} has no rows")
        for line, row in enumerate(rows, start=2):  # a stat per file: cheap even for the 30k of the competition
            for col in needed[1:]:
                path = self._path(row[col] or "")
                if not path.is_file():
                    raise FileNotFoundError(
                        f"DaconInpaintingDataset: {csv_path} line {line}: {col} file not found: {path} (paths are "
                        f"relative to the root, e.g. ./train_input/TRAIN_00000.png; {_see('dacon-inpainting')})")
        if split in ("train", "val"):
            train_idx, val_idx = split_indices(len(rows), val_fraction, seed=seed)
            rows = [rows[i] for i in (train_idx if split == "train" else val_idx)]
        if limit is not None:
            if not isinstance(limit, int) or limit < 1:
                raise ValueError(f"DaconInpaintingDataset: limit must be a positive int or None, got {limit!r}")
            rows = rows[:limit]
        self.rows, self.split, self.with_mask, self.mask_tol = rows, split, with_mask, mask_tol

    def _path(self, rel: str) -> Path:
        return self.root / rel.strip()

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        lq = read_image(self._path(row["input_image_path"]))
        gray = lq.mean(axis=2, keepdims=True).astype(np.float32)
        if self.split == "test":
            return {"lq": img2tensor(gray), "name": row["ID"]}
        gt_path = self._path(row["gt_image_path"])
        gt = read_image(gt_path)
        if gt.shape != lq.shape:
            raise ValueError(f"DaconInpaintingDataset: {gt_path} is {gt.shape[:2]} but its input is {lq.shape[:2]}")
        mask = mask_from_pair(gray, gt, tol=self.mask_tol)
        chans = np.concatenate([gray, mask[..., None].astype(np.float32)], axis=2) if self.with_mask else gray
        return {"lq": img2tensor(chans), "gt": img2tensor(gt),
                "mask": torch.from_numpy(mask.astype(np.float32))[None], "name": row["ID"]}

    def __repr__(self) -> str:
        return f"DaconInpaintingDataset({self.root}, split={self.split!r}, items={len(self)})"


# 001: the flare contest's layout (DACON / LG camera image quality) and Flare7K-style pairs
# --------------------------------------------------------------------------------------------------


def _flare7k_keys(folder: Path, prefix: str) -> dict[str, Path]:
    """Pairing key -> file: the stem without a leading ``prefix`` (Flare7K's ``input_`` / ``gt_``)."""
    out: dict[str, Path] = {}
    for p in list_images(folder):
        key = p.stem[len(prefix):] if p.stem.startswith(prefix) else p.stem
        if key in out:
            raise ValueError(f"'{folder}' holds two images with the key {key!r}: {out[key].name}, {p.name}")
        out[key] = p
    return out


def flare_pairs(root: PathLike, csv_name: str = "train.csv") -> list[tuple[str, Path, Path]]:
    """The (input, target) image pairs of a flare-removal dataset folder.

    Two layouts are recognised:

    - the contest of write-up 001 (DACON "camera image quality improvement", 2021; 3264 x 2448
      photos): ``root/train.csv`` with columns ``img_id, input_img, label_img`` naming files in
      ``root/train_input_img/`` and ``root/train_label_img/``;
    - Flare7K-style pairs (e.g. Flare7K's ``test_data/real``): ``root/input/`` and ``root/gt/``
      paired by file stem, a leading ``input_`` / ``gt_`` dropped (Flare7K names them
      ``input/input_000000.png`` and ``gt/gt_000000.png``; the pair's name is then ``000000``).

    Args:
        root: the dataset folder.
        csv_name: the contest's CSV file name inside ``root``.

    Returns:
        ``[(name, input_path, target_path), ...]`` in CSV order (or by name), ready for
        :func:`labkit.data.patches.make_patch_pairs`.

    Raises:
        FileNotFoundError: ``root`` missing, neither layout found (says what was looked for), or a
            file named in the CSV missing (named, with its row).
        ValueError: a CSV without the needed columns, inputs and targets that do not pair (the
            first orphan and the partner expected for it named), or an empty dataset.
    """
    import csv

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"flare dataset folder not found: {root} ({_see('lg-flare-contest')})")
    csv_path = root / csv_name
    if csv_path.is_file():
        in_dir, gt_dir = root / "train_input_img", root / "train_label_img"
        pairs = []
        with csv_path.open(newline="") as f:
            reader = csv.DictReader(f)
            need = {"input_img", "label_img"}
            if not need <= set(reader.fieldnames or ()):
                raise ValueError(f"{csv_path}: needs columns img_id,input_img,label_img (img_id optional), has "
                                 f"{reader.fieldnames} ({_see('lg-flare-contest')})")
            for row_no, row in enumerate(reader, start=2):
                lq, gt = in_dir / row["input_img"], gt_dir / row["label_img"]
                for p in (lq, gt):
                    if not p.is_file():
                        raise FileNotFoundError(
                            f"{csv_path} line {row_no}: file not found: {p} (input_img names a file in train_input_img/, "
                            f"label_img one in train_label_img/; {_see('lg-flare-contest')})")
                name = row.get("img_id") or Path(row["input_img"]).stem
                pairs.append((str(name), lq, gt))
    elif (root / "input").is_dir() and (root / "gt").is_dir():
        lq_files = _flare7k_keys(root / "input", "input_")
        gt_files = _flare7k_keys(root / "gt", "gt_")
        for have, other, prefix in ((lq_files, root / "gt", "gt_"), (gt_files, root / "input", "input_")):
            orphans = sorted(k for k in have if k not in (gt_files if have is lq_files else lq_files))
            if orphans:
                k = orphans[0]
                raise ValueError(
                    f"{root}: input/ and gt/ do not pair by name: {have[k]} has no partner, expected "
                    f"{other / (prefix + k)}.png or {other / k}.png ({len(orphans)} unpaired: "
                    f"{_listing(orphans)}; {_see('flare7k')})")
        pairs = [(key, lq_files[key], gt_files[key]) for key in sorted(gt_files)]
    else:
        raise FileNotFoundError(
            f"{root}: no flare dataset layout found; expected {csv_name} with train_input_img/ and "
            f"train_label_img/ (the 001 contest, {_see('lg-flare-contest')}) or input/ and gt/ (Flare7K style, "
            f"{_see('flare7k')})")
    if not pairs:
        raise ValueError(f"{root}: the dataset is empty")
    return pairs


def kfold_split(n: int, folds: int = 10, valid_fold: int = 0, *, seed: int = 42) -> tuple[list[int], list[int]]:
    """001's k-fold split of ``n`` images: ``(train_indices, valid_indices)`` for one fold.

    The indices are shuffled with ``seed`` (numpy ``default_rng``) and dealt into ``folds``
    nearly equal folds (sizes differ by at most one, like scikit-learn's ``KFold(shuffle=True)``);
    fold ``valid_fold`` is the validation set. Split *images* before cutting patches, so that no
    photo has patches on both sides. 001 used 10 folds, fold 0 for validation.

    Raises:
        ValueError: ``folds < 2``, ``folds > n``, or ``valid_fold`` outside ``[0, folds)``.
    """
    n, folds, valid_fold = int(n), int(folds), int(valid_fold)
    if folds < 2 or folds > n:
        raise ValueError(f"folds must be in [2, n={n}], got {folds}")
    if not 0 <= valid_fold < folds:
        raise ValueError(f"valid_fold must be in [0, {folds}), got {valid_fold}")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    valid = sorted(int(i) for i in parts[valid_fold])
    train = sorted(int(i) for k, part in enumerate(parts) if k != valid_fold for i in part)
    return train, valid


class FlarePairDataset(Dataset):
    """Whole-image flare pairs, from :func:`flare_pairs` (paths) or arrays, as ``{'lq', 'gt', 'name'}``.

    Args:
        pairs: ``[(name, input, target), ...]`` with paths or HWC arrays (float [0, 1] / uint8).
        augment: optional paired ``(lq, gt) -> (lq, gt)``.

    Raises:
        ValueError: empty ``pairs``; when an item is read, input and target of different shapes
            (both named).
    """

    def __init__(self, pairs: Sequence[tuple[str, object, object]], augment: Optional[Augment] = None) -> None:
        if len(pairs) == 0:
            raise ValueError("FlarePairDataset: no pairs given")
        self.pairs = list(pairs)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        name, lq, gt = self.pairs[index]
        lq_img = read_image(lq) if not isinstance(lq, np.ndarray) else _as_float_image(lq, f"{name} input")
        gt_img = read_image(gt) if not isinstance(gt, np.ndarray) else _as_float_image(gt, f"{name} target")
        if lq_img.shape != gt_img.shape:
            raise ValueError(f"pair {name!r}: input {lq} {lq_img.shape} and target {gt} {gt_img.shape} differ")
        lq_img, gt_img = _apply_augment(self.augment, lq_img, gt_img, 1, str(name))
        return _to_item(lq_img, gt_img, str(name))
# 004 (NAFNet): SIDD arrays, SIDD-Medium folders, GoPro folders
# --------------------------------------------------------------------------------------------------


#: Write-up 004's SIDD files: (noisy, gt) at 256 px.
SIDD_NPY_FILES: tuple[str, str] = ("noisy_images_256.npy", "gt_images_256.npy")


def _check_sidd_array(arr: np.ndarray, path: Path, size: int) -> None:
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected dtype uint8 (values 0-255), got {arr.dtype} ({_see('sidd-arrays')})")
    if arr.ndim != 4 or arr.shape[1:] != (size, size, 3):
        raise ValueError(f"{path}: expected shape (N, {size}, {size}, 3) (N images, HWC RGB), got {arr.shape} "
                         f"({_see('sidd-arrays')})")
    if arr.shape[0] == 0:
        raise ValueError(f"{path}: holds no images (shape {arr.shape})")


def load_sidd_npy(root: PathLike, *, size: int = 256, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load write-up 004's SIDD arrays ``noisy_images_{size}.npy`` and ``gt_images_{size}.npy``.

    Args:
        root: the folder holding both files.
        size: 256 (the write-up's) or another side the files were made at (e.g. 128).
        mmap: memory-map the files (``np.load(mmap_mode='r')``) instead of reading them into RAM.

    Returns: ``(noisy, gt)``, each uint8 (N, size, size, 3) RGB, pair i = ``(noisy[i], gt[i])``.

    Raises:
        FileNotFoundError: a missing file (named, with the folder's .npy files listed).
        ValueError: a file with another dtype or shape than uint8 (N, size, size, 3), or different N
            in the two files (both named).
    """
    root = Path(root)
    names = (f"noisy_images_{size}.npy", f"gt_images_{size}.npy")
    arrays = []
    for name in names:
        path = root / name
        if not path.is_file():
            have = sorted(p.name for p in root.glob("*.npy")) if root.is_dir() else []
            where = f"; .npy files there: {', '.join(have)}" if have else ("" if root.is_dir() else " (no such folder)")
            raise FileNotFoundError(f"SIDD array file not found: {path}{where} (expected {names[0]} and {names[1]}, "
                                    f"uint8 N x {size} x {size} x 3, in one folder; {_see('sidd-arrays')})")
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from exc
        _check_sidd_array(arr, path, size)
        arrays.append(arr)
    noisy, gt = arrays
    if noisy.shape[0] != gt.shape[0]:
        raise ValueError(f"{root / names[0]} holds {noisy.shape[0]} images but {root / names[1]} holds {gt.shape[0]} "
                         f"(pair i is row i of both; {_see('sidd-arrays')})")
    return noisy, gt


def sidd_npy_splits(
    root: PathLike, *, counts: Sequence[int] = (128, 16, 16), size: int = 256, seed: Optional[int] = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the SIDD arrays as write-up 004: 128 train / 16 validation / 16 test (of 160).

    Args:
        root: folder with the two files (see :func:`load_sidd_npy`).
        counts: (train, val, test) sizes; their sum must not exceed N.
        size: the files' side. seed: None keeps the file order (train = the first 128, then val,
            then test); an int shuffles the indices with that seed first.

    Returns: ``{'train': (noisy, gt), 'val': (...), 'test': (...)}``, uint8 arrays in RAM.

    Raises:
        ValueError: counts not three non-negative ints, or more images asked for than the files hold.
    """
    noisy, gt = load_sidd_npy(root, size=size)
    if len(counts) != 3 or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0 for c in counts):
        raise ValueError(f"counts must be three non-negative ints (train, val, test), got {counts!r}")
    n = noisy.shape[0]
    if sum(counts) > n:
        raise ValueError(f"counts {tuple(counts)} need {sum(counts)} images but {Path(root)} holds {n}")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    for split, c in zip(("train", "val", "test"), counts):
        idx = np.sort(order[start:start + c])
        out[split] = (np.asarray(noisy[idx]), np.asarray(gt[idx]))
        start += c
    return out


def sidd_medium_pairs(root: PathLike) -> list[tuple[Path, Path]]:
    """The (noisy, gt) image pairs of SIDD-Medium sRGB, or of two folders ``NOISY/`` + ``GT/``.

    Two layouts are recognised under ``root``:

    - the official ``SIDD_Medium_Srgb/Data/<scene>/0001_NOISY_SRGB_010.PNG`` + ``0001_GT_SRGB_010.PNG``
      (and ``_011``; ``root`` the folder holding ``Data/`` or ``Data/`` itself; names without the
      ``0001_`` scene prefix work too);
    - flat folders ``NOISY/`` and ``GT/`` whose files pair by name.

    Returns: sorted ``[(noisy_path, gt_path), ...]``.

    Raises:
        FileNotFoundError: neither layout found (the message says what was looked for).
        ValueError: a noisy image without its GT (named).
    """
    root = Path(root)
    if (root / "NOISY").is_dir() and (root / "GT").is_dir():
        gt_by = {p.name: p for p in list_images(root / "GT")}
        pairs = []
        for p in list_images(root / "NOISY"):
            if p.name not in gt_by:
                raise ValueError(f"noisy image {p} has no partner: expected {root / 'GT' / p.name} ({_see('sidd-medium')})")
            pairs.append((p, gt_by[p.name]))
        return pairs
    base = root / "Data" if (root / "Data").is_dir() else root
    pairs = []
    for noisy in sorted(base.glob("*/*NOISY_SRGB_*.*")):
        gt = noisy.with_name(noisy.name.replace("NOISY_SRGB_", "GT_SRGB_", 1))
        if not gt.is_file():
            raise ValueError(f"noisy image {noisy} has no partner: expected {gt} ({_see('sidd-medium')})")
        pairs.append((noisy, gt))
    if not pairs:
        raise FileNotFoundError(
            f"no SIDD-Medium pairs under '{root}': looked for Data/<scene>/0001_NOISY_SRGB_010.PNG "
            f"(+ 0001_GT_SRGB_010.PNG; also without Data/ and without the 0001_ prefix) and for NOISY/ + GT/ folders "
            f"({_see('sidd-medium')})")
    return pairs


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
        self.gt_size = _check_gt_size(gt_size, 1)
        self.augment = augment
        self.repeat = _check_repeat(repeat)

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
        lq, gt = _apply_augment(self.augment, lq, gt, 1, name)
        return _to_item(lq, gt, name)


def _gopro_root(root: PathLike, split: str) -> Path:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if not (root / split).is_dir() and (root / "Gopro").is_dir():
        root = root / "Gopro"
    return root


def _gopro_sequences(split_dir: Path) -> list[Path]:
    """The per-sequence folders (``GOPR0372_07_00/`` holding ``blur/`` and ``sharp/``) of the official layout."""
    if not split_dir.is_dir() or (split_dir / "blur").is_dir():
        return []
    return sorted(d for d in split_dir.iterdir() if (d / "blur").is_dir() or (d / "sharp").is_dir())


def gopro_paths(root: PathLike, split: str = "train") -> tuple[Path, Path]:
    """``(blur_dir, sharp_dir)`` of GoPro's ``split`` in write-up 004's flat layout.

    Layout under ``root`` (the Kaggle "DBlur" copy the write-up used): ``train/blur``, ``train/sharp``,
    ``test/blur``, ``test/sharp`` (2103 train pairs, 1111 test pairs); ``root`` may also be the
    ``DBlur`` folder holding ``Gopro/``. The official GoPro_Large per-sequence layout
    (``train/GOPR0372_07_00/blur``) has no single folder pair: use :func:`gopro_pairs`.

    Raises:
        ValueError: unknown split. FileNotFoundError: a missing folder (named), also for the
        per-sequence layout (which the message points to :func:`gopro_pairs` for).
    """
    root = _gopro_root(root, split)
    blur, sharp = root / split / "blur", root / split / "sharp"
    for d in (blur, sharp):
        if not d.is_dir():
            seqs = _gopro_sequences(root / split)
            hint = (f"; '{root / split}' holds the official per-sequence layout ({seqs[0].name}/blur ...): use "
                    f"gopro_pairs / gopro_splits" if seqs else "")
            raise FileNotFoundError(f"GoPro folder not found: {d} (expected {split}/blur and {split}/sharp under "
                                    f"'{root}'{hint}; {_see('gopro')})")
    return blur, sharp


def gopro_pairs(root: PathLike, split: str = "train") -> list[tuple[str, Path, Path]]:
    """GoPro's ``(name, blur_path, sharp_path)`` pairs of ``split``, in either layout.

    - flat (write-up 004's "DBlur" copy): ``{split}/blur/*.png`` + ``{split}/sharp/*.png`` with the
      same names; ``name`` = the file stem;
    - official GoPro_Large (Nah et al., CVPR 2017): ``{split}/<sequence>/blur/000047.png`` +
      ``{split}/<sequence>/sharp/000047.png``; ``name`` = ``'<sequence>_000047'`` (``blur_gamma/`` is
      not used, as in most deblurring papers).

    ``root`` may also be the folder holding ``Gopro/``. Sorted by sequence, then file name.

    Raises:
        ValueError: unknown split; a blur frame without its sharp partner (both paths named), or
            the reverse. FileNotFoundError: neither layout under ``root`` (what was looked for).
    """
    base = _gopro_root(root, split)
    split_dir = base / split
    seqs = _gopro_sequences(split_dir)
    if not seqs:
        blur, sharp = gopro_paths(root, split)
        groups = [("", blur, sharp)]
    else:
        groups = [(seq.name + "_", seq / "blur", seq / "sharp") for seq in seqs]
    out = []
    for prefix, blur, sharp in groups:
        b_files = {p.name: p for p in list_images(blur)} if blur.is_dir() else {}
        s_files = {p.name: p for p in list_images(sharp)} if sharp.is_dir() else {}
        for have, other in ((b_files, sharp), (s_files, blur)):
            orphans = sorted(set(have) - set(s_files if have is b_files else b_files))
            if orphans:
                raise ValueError(f"GoPro frame {have[orphans[0]]} has no partner: expected {other / orphans[0]} "
                                 f"({len(orphans)} unpaired in '{have[orphans[0]].parent}'; {_see('gopro')})")
        out += [(prefix + Path(n).stem, b_files[n], s_files[n]) for n in sorted(b_files)]
    return out


def half_split(n: int) -> tuple[list[int], list[int]]:
    """Write-up 004's split of GoPro's test set: the first half (rounded up) validation, the rest test.

    ``half_split(1111) -> (range 0..555 as a list of 556, 555 indices)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    k = (int(n) + 1) // 2
    return list(range(k)), list(range(k, int(n)))


def gopro_splits(root: PathLike, *, gt_size: Optional[int] = 256, augment: Optional[Augment] = None,
                 repeat: int = 1) -> dict[str, Dataset]:
    """GoPro as write-up 004: ``train`` (random ``gt_size`` crops, ``augment``), and the test set split
    half/half into ``val`` and ``test`` (whole frames, no augmentation), via :func:`half_split`.

    Either layout of :func:`gopro_pairs` (flat or the official per-sequence one).

    Returns: ``{'train': PairListDataset, 'val': Subset, 'test': Subset}``; each dataset's ``pairs``
    are ``(blur_path, sharp_path)``.
    """
    from torch.utils.data import Subset

    def dataset(split: str, **kw) -> PairListDataset:
        pairs = gopro_pairs(root, split)
        return PairListDataset([(b, s) for _, b, s in pairs], names=[n for n, _, _ in pairs], **kw)

    test = dataset("test")
    val_idx, test_idx = half_split(len(test))
    return {"train": dataset("train", gt_size=gt_size, augment=augment, repeat=repeat),
            "val": Subset(test, val_idx), "test": Subset(test, test_idx)}


class DegradedCropDataset(Dataset):
    """Random crops of clean images degraded on the fly (synthetic noise / blur pairs).

    Each item draws an image, a random crop of ``gt_size + 2 * margin`` pixels, applies
    ``degrade(crop, rng)`` to it (e.g. :func:`labkit.data.degrade.motion_blur` with a fresh
    :func:`~labkit.data.degrade.trajectory_kernel`), then cuts ``margin`` pixels from every edge of
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
        self.images = [_as_float_image(np.asarray(im), f"image {n!r}") for n, im in items]
        self.gt_size = _check_gt_size(gt_size, 1)
        if self.gt_size is None:
            raise ValueError("DegradedCropDataset: gt_size is required")
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f"margin must be a non-negative int, got {margin!r}")
        self.margin, self.degrade, self.augment = margin, degrade, augment
        self.length = _check_repeat(length)
        need = self.gt_size + 2 * margin
        for n, im in zip(self.names, self.images):
            if im.shape[0] < need or im.shape[1] < need:
                raise ValueError(f"image {n!r} is {im.shape[0]}x{im.shape[1]}, smaller than gt_size + 2*margin = {need}")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        rng = _torch_rng()
        i = int(rng.integers(len(self.images)))
        img, size, m = self.images[i], self.gt_size + 2 * self.margin, self.margin
        top, left = _lr_crop_origin(img.shape[0], img.shape[1], size, rng)
        gt = img[top:top + size, left:left + size]
        lq = np.asarray(self.degrade(gt.copy(), rng), dtype=np.float32)
        if lq.shape != gt.shape:
            raise ValueError(f"degrade changed the shape {gt.shape} -> {lq.shape} (image {self.names[i]!r})")
        if m:
            lq, gt = lq[m:-m, m:-m], gt[m:-m, m:-m]
        lq, gt = _apply_augment(self.augment, lq, np.ascontiguousarray(gt), 1, self.names[i])
        return _to_item(lq, gt, self.names[i])
