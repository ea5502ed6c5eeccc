"""Inpainting + colorization data (write-up 002, notebook 06): bundled photos and the DACON competition.

- :class:`InpaintingPhotoDataset`: colour photos (e.g. ``labkit.data.sample.sample_images('train')``)
  with seeded free-form masks and a grayscale input made on the fly (:mod:`labkit.data.masks`);
- :class:`DaconInpaintingDataset`: the DACON "image colorization + missing-region restoration" data,
  ``train.csv`` (``ID,input_image_path,gt_image_path``) + ``train_input/`` + ``train_gt/``, ``test.csv``
  + ``test_input/`` (data/README.md, section "DACON inpainting", ``#dacon-inpainting``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from labkit.data.masks import inpainting_input, mask_from_pair, random_mask
from labkit.data.pairing import PathLike, as_float_image, see, torch_rng
from labkit.data.splitting import split_indices
from labkit.io import img2tensor, read_image

__all__ = ["InpaintingPhotoDataset", "DaconInpaintingDataset"]


def _inpainting_item(gt: np.ndarray, mask: np.ndarray, name: str, *, fill: float, with_mask: bool,
                     chroma_kept: float = 0.0) -> dict:
    lq = inpainting_input(gt, mask, fill=fill, with_mask=with_mask, chroma_kept=chroma_kept)
    return {"lq": img2tensor(lq), "gt": img2tensor(np.ascontiguousarray(gt)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None], "name": name}


class InpaintingPhotoDataset(Dataset):
    """Inpainting + colorization pairs made on the fly from colour photos (seeded masks, grayscale).

    Each item: ``gt`` = an RGB crop (or the whole photo), ``mask`` = :func:`labkit.data.masks.random_mask`
    (free-form strokes and boxes covering ``mask_fraction``), ``lq`` =
    :func:`labkit.data.masks.inpainting_input` (the grayscale crop, or with ``chroma_kept`` the faded
    colour crop, with the masked pixels set to ``fill``, and the mask as the last channel when ``with_mask``).

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
        with_mask, fill, chroma_kept: as :func:`labkit.data.masks.inpainting_input` (``chroma_kept`` 0: gray
            input, the write-up's task; above 0: the faded colour input of the smoke profile).
        kinds: mask shapes, as :func:`labkit.data.masks.random_mask`.
        multiple: whole photos are cropped to a multiple of this (the generator's ``2**num_down``).

    Items: ``{'lq': (C, H, W), 'gt': (3, H, W), 'mask': (1, H, W) (1 = missing), 'name'}``, float32 in [0, 1];
    C = 1 / 2 (gray, + mask) or, with ``chroma_kept``, 3 / 4 (faded RGB, + mask).

    Raises:
        ValueError: no images, a photo smaller than ``patch_size`` (named), bad arguments.
    """

    def __init__(self, images: Sequence[tuple[str, np.ndarray]], patch_size: Optional[int] = 64,
                 mask_fraction: float = 0.2, *, length: Optional[int] = None, seed: Optional[int] = None,
                 with_mask: bool = True, fill: float = 0.0, kinds: Sequence[str] = ("strokes", "boxes"),
                 multiple: int = 8, chroma_kept: float = 0.0) -> None:
        if not images:
            raise ValueError("InpaintingPhotoDataset: images is empty")
        if patch_size is not None and (isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 8):
            raise ValueError(f"InpaintingPhotoDataset: patch_size must be an int >= 8 or None, got {patch_size!r}")
        if not 0.0 <= mask_fraction <= 0.9:
            raise ValueError(f"InpaintingPhotoDataset: mask_fraction must be in [0, 0.9], got {mask_fraction!r}")
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"InpaintingPhotoDataset: length must be a positive int or None, got {length!r}")
        if not 0.0 <= chroma_kept < 1.0:
            raise ValueError(f"InpaintingPhotoDataset: chroma_kept must be in [0, 1), got {chroma_kept!r}")
        self.images = []
        for name, img in images:
            arr = as_float_image(np.asarray(img), f"image {name!r}")
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"InpaintingPhotoDataset: image {name!r} must be HWC RGB, got shape {arr.shape}")
            h, w = arr.shape[:2]
            if patch_size is not None and min(h, w) < patch_size:
                raise ValueError(f"InpaintingPhotoDataset: image {name!r} ({h}x{w}) is smaller than patch_size {patch_size}")
            if patch_size is None:
                arr = arr[: h - h % multiple, : w - w % multiple]
            self.images.append((str(name), np.ascontiguousarray(arr)))
        self.patch_size, self.mask_fraction, self.length, self.seed = patch_size, float(mask_fraction), length, seed
        self.with_mask, self.fill, self.kinds, self.chroma_kept = with_mask, float(fill), tuple(kinds), float(chroma_kept)

    def __len__(self) -> int:
        return self.length if self.length is not None else len(self.images)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = torch_rng() if self.seed is None else np.random.default_rng([self.seed, index])
        name, img = self.images[index % len(self.images)]
        if self.patch_size is not None:
            p = self.patch_size
            top = int(rng.integers(0, img.shape[0] - p + 1))
            left = int(rng.integers(0, img.shape[1] - p + 1))
            img = img[top:top + p, left:left + p]
            name = f"{name}@{top},{left}"
        mask = random_mask(img.shape[0], img.shape[1], self.mask_fraction, seed=rng, kinds=self.kinds)
        return _inpainting_item(img, mask, name, fill=self.fill, with_mask=self.with_mask, chroma_kept=self.chroma_kept)

    def __repr__(self) -> str:
        return (f"InpaintingPhotoDataset({len(self.images)} photos, patch_size={self.patch_size}, "
                f"mask_fraction={self.mask_fraction}, items={len(self)}, seed={self.seed}"
                + (f", chroma_kept={self.chroma_kept}" if self.chroma_kept else "") + ")")


class DaconInpaintingDataset(Dataset):
    """The 002 competition's data (DACON image colorization + missing-region restoration).

    Layout under ``root`` (see data/README.md)::

        train.csv                 ID,input_image_path,gt_image_path
        train_input/TRAIN_00000.png   grayscale photo with missing regions
        train_gt/TRAIN_00000.png      the colour original
        test.csv                  ID,input_image_path
        test_input/TEST_000.png

    Paths in the CSV are relative to ``root`` (``./train_input/...`` works). The competition has no
    mask files: with ``with_mask`` the mask is recovered by :func:`labkit.data.masks.mask_from_pair`
    (where the input differs from the target's luma by more than ``mask_tol``), which needs the
    target, so the test split needs ``with_mask=False``.

    Args:
        root: the unpacked competition folder.
        split: ``'train'`` / ``'val'`` (the seeded 8:2 split of train.csv by :func:`split_indices`),
            ``'all'`` (all of train.csv) or ``'test'`` (test.csv; items without ``gt``).
        val_fraction, seed: the split (write-up: 0.2, i.e. 8:2).
        limit: keep at most this many items of the split (write-up: 10000 train / 3000 val).
        with_mask: add the recovered mask as the second input channel.
        mask_tol: see :func:`labkit.data.masks.mask_from_pair`.

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
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"DaconInpaintingDataset: root folder not found: {self.root} ({see('dacon-inpainting')})")
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
                f"{see('dacon-inpainting')})")
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"DaconInpaintingDataset: {csv_path} lacks the column(s) {missing}; "
                                 f"it has {reader.fieldnames}, expected {','.join(needed)} ({see('dacon-inpainting')})")
            rows = [dict(r) for r in reader]
        if not rows:
            raise ValueError(f"DaconInpaintingDataset: {csv_path} has no rows")
        for line, row in enumerate(rows, start=2):  # a stat per file: cheap even for the 30k of the competition
            for col in needed[1:]:
                path = self._path(row[col] or "")
                if not path.is_file():
                    raise FileNotFoundError(
                        f"DaconInpaintingDataset: {csv_path} line {line}: {col} file not found: {path} (paths are "
                        f"relative to the root, e.g. ./train_input/TRAIN_00000.png; {see('dacon-inpainting')})")
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
