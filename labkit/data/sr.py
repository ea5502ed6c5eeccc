"""Super-resolution data: HR folders with LR made on the fly, DIV2K, the SR benchmark sets.

- :class:`SRFolderDataset`: a folder of HR images (any names, e.g. ``DIV2K_train_HR/0001.png``) or
  in-memory photos; the LR input is MATLAB bicubic of the HR, made on the fly (aligned random crops);
- :func:`div2k_paths`: the HR and bicubic-LR folders of DIV2K (``DIV2K_train_HR/`` +
  ``DIV2K_train_LR_bicubic/X4/0001x4.png``, or ``train/HR`` + ``train/LR_bicubic/X4``; data/README.md,
  section "DIV2K", ``#div2k``), read with :class:`labkit.data.pairing.PairedFolderDataset`;
- :func:`sr_benchmark_paths`: Set5 / Set14 / B100 / Urban100 (``HR/`` + ``LR_bicubic/X4/``, or BasicSR's
  ``GTmod12/`` + ``LRbicx4/``; section "SR benchmarks", ``#sr-benchmarks``);
- :func:`sr_pairs`: in-memory bicubic evaluation pairs (e.g. the bundled held-out photos).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from labkit.data.degrade import bicubic_downsample, crop_to_multiple
from labkit.data.pairing import (Augment, PathLike, apply_augment, as_float_image, check_gt_size, check_repeat,
                                 check_scale, listing, lr_crop_origin, pack_image, see, to_item, torch_rng, unpack_image)
from labkit.io import image_size, list_images, read_image

__all__ = ["SRFolderDataset", "div2k_paths", "sr_benchmark_paths", "sr_pairs"]


def _outside_stacklevel() -> int:
    """``stacklevel`` for warnings.warn that points at the first caller outside this module."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


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
        self.scale = check_scale(scale)
        self.gt_size = check_gt_size(gt_size, self.scale)
        self.repeat = check_repeat(repeat)
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
                self._arrays.append(as_float_image(arr, f"images[{i}] ({name!r})"))
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
                f"are cropped bottom/right: {listing([b[0] for b in bad])}",
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
            return unpack_image(self._gt_cache[i])
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
            self._gt_cache[i] = pack_image(img)
        return img

    def _lq_whole(self, i: int, gt: np.ndarray) -> np.ndarray:
        if i in self._lq_cache:
            return self._lq_cache[i]
        lq = np.clip(bicubic_downsample(gt, self.scale), 0.0, 1.0)
        if self.cache:
            self._lq_cache[i] = lq
        return lq

    def _crop_pair(self, i: int, gt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Aligned random patch; the LR patch equals the crop of bicubic_downsample(whole gt).

        With ``cache`` the whole LR image is made once and cropped; without it, only a window around
        the patch is downsampled (the same numbers, bit for bit: the kernel never reaches the window's
        edge, so every LR pixel sums the same HR pixels with the same weights).
        """
        s, size = self.scale, self.gt_size
        assert size is not None
        h, w = gt.shape[:2]
        lq_size = size // s
        top, left = lr_crop_origin(h // s, w // s, lq_size, rng)
        gy, gx = top * s, left * s
        if self.cache:
            lq = self._lq_whole(i, gt)[top : top + lq_size, left : left + lq_size]
            return lq, gt[gy : gy + size, gx : gx + size]
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
            lq, gt = self._crop_pair(i, gt, torch_rng())
        lq, gt = apply_augment(self.augment, lq, gt, self.scale, self.names[i])
        return to_item(lq, gt, self.names[i])

    def __repr__(self) -> str:
        src = str(self.root) if self.root is not None else "arrays"
        return (
            f"{type(self).__name__}({src!r}, n={len(self.names)}, scale={self.scale}, "
            f"gt_size={self.gt_size}, repeat={self.repeat})"
        )


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
    scale = check_scale(scale)
    split = {"val": "valid"}.get(split, split)
    if split not in ("train", "valid"):
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DIV2K root folder not found: '{root}' ({see('div2k')})")
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
    raise FileNotFoundError(msg + f" (LR files named 0001x{scale}.png for HR 0001.png; {see('div2k')})")


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
    scale = check_scale(scale)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"SR benchmark folder not found: '{root}' ({see('sr-benchmarks')})")
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
            f"GTmod12/*.png (+ optional LRbicx{scale}/), or HR images directly in the folder ({see('sr-benchmarks')})"
        ) from None
    return root, None


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
    scale = check_scale(scale)
    out = []
    for i, item in enumerate(images):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"images[{i}]: expected a (name, array) pair, got {type(item).__name__}")
        name, img = item
        gt = np.ascontiguousarray(crop_to_multiple(as_float_image(img, f"image {name!r}"), scale))
        lq = np.clip(bicubic_downsample(gt, scale), 0.0, 1.0).astype(np.float32, copy=False)
        out.append((str(name), lq, gt))
    return out
