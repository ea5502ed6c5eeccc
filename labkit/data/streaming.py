"""Stream SR training tiles from a big folder, a chunk of images at a time (write-up 003's RAM lesson).

Write-up 003 trained SwinIR x2 on danbooru images stored as folders of 2000-3000 files: loading the
whole set at once ran out of RAM, so it loaded one folder per epoch and cut each 512x512 image into
64x64 tiles. :class:`ChunkedSRDataset` does that as an ``IterableDataset``: it reads ``chunk_size``
images, cuts them into non-overlapping ``gt_size`` tiles, yields those tiles in a shuffled order,
drops the chunk and only then reads the next one. Peak memory is one chunk (per DataLoader
worker), whatever the size of the folder.

Public API: :class:`ChunkedSRDataset`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from labkit.data.pairing import Augment, apply_augment, to_item
from labkit.data.degrade import bicubic_downsample, crop_to_multiple
from labkit.io import image_size, list_images, read_image

__all__ = ["ChunkedSRDataset"]

PathLike = Union[str, "os.PathLike[str]"]


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def _compact(img: np.ndarray) -> np.ndarray:
    """float32 [0,1] -> uint8 when that is lossless (8-bit sources), else the float array."""
    q = np.round(img * np.float32(255.0)).astype(np.uint8)
    return q if np.array_equal(q.astype(np.float32) / np.float32(255.0), img) else img


def _as_float(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) / np.float32(255.0) if arr.dtype == np.uint8 else np.array(arr, dtype=np.float32)


def _permutation(n: int, generator: torch.Generator) -> list[int]:
    """A random permutation of ``range(n)`` drawn from ``generator``."""
    return torch.randperm(n, generator=generator).tolist() if n > 1 else list(range(n))


class ChunkedSRDataset(IterableDataset):
    """SR training pairs from a folder of HR images, read ``chunk_size`` images at a time.

    One epoch (one ``iter()``):

    1. the image files (:func:`labkit.io.list_images`, sorted by name) are split among DataLoader
       workers (worker ``k`` of ``n`` takes files ``k, k+n, ...``; in the main process, all of them);
    2. each worker groups its files into chunks of ``chunk_size`` consecutive files (as 003's
       folders); with ``shuffle`` the chunk order is random (and with ``shuffle_files`` the files are
       shuffled before grouping, so chunks mix differently every epoch);
    3. for each chunk: every image is read (:func:`labkit.io.read_image`), cropped bottom/right to a
       multiple of ``scale`` (:func:`labkit.data.degrade.crop_to_multiple`) and downsampled *whole*
       (``lq_img = clip(bicubic_downsample(gt_img, scale), 0, 1)``, MATLAB bicubic); it is cut into
       the non-overlapping ``gt_size`` tiles of the grid starting at the top-left corner (a strip
       of less than ``gt_size`` at the bottom/right is not used); tile ``(y, x)`` pairs
       ``gt_img[y:y+gt_size, x:x+gt_size]`` with ``lq_img[y/s:(y+gt_size)/s, x/s:(x+gt_size)/s]``;
    4. the chunk's tiles are yielded (shuffled across the chunk with ``shuffle``), then the chunk is
       released before the next one is read.

    Because the LR tile is a crop of the LR *image*, it equals what DIV2K-style pipelines give (no
    mirrored borders at tile edges); ``bicubic_downsample`` of the GT tile alone differs only within
    ~2 LR pixels of the tile edges.

    The order's randomness comes from one draw of torch's global RNG per epoch (per worker), which
    seeds a ``torch.Generator`` for that epoch's permutations: ``torch.manual_seed`` makes the
    order reproducible, with ``num_workers=0`` and with workers (each worker's torch seed derives
    from the main process's RNG); each epoch draws a new order; RNG use between items (dropout,
    augmentation) does not change it.

    Memory: a chunk holds its decoded images (uint8 when lossless, else float32) and their LR
    images (float32), about ``chunk_size * H * W * 3 * (1 + 4 / scale^2)`` bytes for 8-bit files,
    plus the float64 work space of one resize; with ``num_workers = n`` up to ``n`` chunks are alive
    (plus the DataLoader's prefetched batches).

    Args:
        root: folder of HR images (not recursive).
        scale: SR factor (integer >= 1).
        gt_size: HR tile side in pixels (a multiple of ``scale``); LR tiles are ``gt_size / scale``.
        chunk_size: images decoded at a time (>= 1).
        shuffle: random chunk order and tile order within a chunk; False: files in name order,
            tiles row-major (for evaluation or debugging).
        shuffle_files: also shuffle which files share a chunk, every epoch.
        augment: optional ``(lq, gt) -> (lq, gt)`` on HWC float32 tiles (e.g. a
            ``labkit.data.augment`` pipeline); it must keep the pair aligned.

    Items: ``{'lq': (C, gt_size/s, gt_size/s), 'gt': (C, gt_size, gt_size), 'name':
    '<stem>_y<top>_x<left>'}``, float32 RGB in [0, 1] (``top``/``left`` in HR pixels).

    ``len(ds)`` is the number of tiles per epoch, computed once from the image headers
    (:func:`labkit.io.image_size`); images smaller than ``gt_size`` give no tile.

    Raises:
        FileNotFoundError / NotADirectoryError / ValueError (from :func:`labkit.io.list_images`): a
            missing folder, a file instead of a folder, a folder with no image.
        ValueError: ``scale``, ``gt_size`` or ``chunk_size`` not an integer >= 1, ``gt_size`` not a
            multiple of ``scale``; an image read during iteration that cannot be decoded
            (:class:`labkit.io.ImageError`, naming the file).
    """

    def __init__(
        self,
        root: PathLike,
        scale: int,
        gt_size: int,
        chunk_size: int,
        *,
        shuffle: bool = True,
        shuffle_files: bool = False,
        augment: Optional[Augment] = None,
    ) -> None:
        super().__init__()
        self.scale = _positive_int(scale, "scale")
        self.gt_size = _positive_int(gt_size, "gt_size")
        self.chunk_size = _positive_int(chunk_size, "chunk_size")
        if self.gt_size % self.scale:
            raise ValueError(
                f"gt_size ({self.gt_size}) must be a multiple of scale ({self.scale}) so that the LR "
                f"tile ({self.gt_size}/{self.scale}) is whole pixels"
            )
        self.root = Path(root)
        self.paths: list[Path] = list_images(self.root)
        self.shuffle, self.shuffle_files = bool(shuffle), bool(shuffle_files)
        self.augment = augment
        self._num_tiles: Optional[int] = None

    # -- sizes ----------------------------------------------------------------------------------

    def _tile_grid(self, h: int, w: int) -> tuple[int, int]:
        h, w = h - h % self.scale, w - w % self.scale
        return h // self.gt_size, w // self.gt_size

    def __len__(self) -> int:
        if self._num_tiles is None:
            self._num_tiles = sum(r * c for r, c in (self._tile_grid(*image_size(p)) for p in self.paths))
        return self._num_tiles

    # -- iteration ------------------------------------------------------------------------------

    def _worker_files(self) -> list[Path]:
        info = get_worker_info()
        if info is None:
            return list(self.paths)
        return self.paths[info.id :: info.num_workers]

    def _chunks(self, files: list[Path], g: torch.Generator) -> list[list[Path]]:
        if self.shuffle and self.shuffle_files:
            files = [files[i] for i in _permutation(len(files), g)]
        chunks = [files[i : i + self.chunk_size] for i in range(0, len(files), self.chunk_size)]
        if self.shuffle:
            chunks = [chunks[i] for i in _permutation(len(chunks), g)]
        return chunks

    def _load_chunk(self, files: list[Path]) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[tuple[int, int, int]]]:
        """Decode a chunk: ``[(stem, gt stored, lq float32), ...]`` and its tiles ``(image, y, x)``."""
        images, tiles = [], []
        s, size = self.scale, self.gt_size
        for path in files:
            gt = np.ascontiguousarray(crop_to_multiple(read_image(path), s))
            rows, cols = self._tile_grid(*gt.shape[:2])
            if rows == 0 or cols == 0:
                continue  # smaller than one tile
            lq = np.clip(bicubic_downsample(gt, s), 0.0, 1.0).astype(np.float32, copy=False)
            k = len(images)
            images.append((path.stem, _compact(gt), lq))
            del gt
            tiles += [(k, r * size, c * size) for r in range(rows) for c in range(cols)]
        return images, tiles

    def _iter_chunk(self, files: list[Path], g: torch.Generator) -> Iterator[dict]:
        """Yield the tiles of one chunk; the chunk dies with this generator's frame."""
        s, size = self.scale, self.gt_size
        ls = size // s
        images, tiles = self._load_chunk(files)
        order = _permutation(len(tiles), g) if self.shuffle else range(len(tiles))
        for t in order:
            k, y, x = tiles[t]
            stem, gt_img, lq_img = images[k]
            gt = _as_float(gt_img[y : y + size, x : x + size])  # copies: items never keep the chunk alive
            lq = np.array(lq_img[y // s : y // s + ls, x // s : x // s + ls], dtype=np.float32)
            name = f"{stem}_y{y}_x{x}"
            lq, gt = apply_augment(self.augment, lq, gt, s, name)
            yield to_item(lq, gt, name)

    def __iter__(self) -> Iterator[dict]:
        # One draw from torch's global RNG seeds the whole epoch's order, so RNG use elsewhere
        # between items (dropout, augmentation) does not change it.
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item()))
        for files in self._chunks(self._worker_files(), g):
            # A sub-generator per chunk: when it is exhausted its frame (and the chunk) is freed
            # before the next chunk is decoded.
            yield from self._iter_chunk(files, g)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, files={len(self.paths)}, scale={self.scale}, "
            f"gt_size={self.gt_size}, chunk_size={self.chunk_size}, shuffle={self.shuffle})"
        )

