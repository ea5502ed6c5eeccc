"""SIDD denoising data (write-up 004, notebook 05): write-up 004's ``.npy`` arrays and SIDD-Medium folders.

- :func:`load_sidd_npy` / :func:`sidd_npy_splits`: ``noisy_images_256.npy`` + ``gt_images_256.npy``,
  uint8 (N, 256, 256, 3), pair i = row i of both (data/README.md, section "SIDD arrays", ``#sidd-arrays``);
- :func:`sidd_medium_pairs`: SIDD-Medium sRGB, ``Data/<scene>/0001_NOISY_SRGB_010.PNG`` +
  ``0001_GT_SRGB_010.PNG``, or flat ``NOISY/`` + ``GT/`` folders (section "SIDD-Medium", ``#sidd-medium``),
  read with :class:`labkit.data.pairing.PairListDataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from labkit.data.pairing import PathLike, see
from labkit.io import list_images

__all__ = ["SIDD_NPY_FILES", "load_sidd_npy", "sidd_npy_splits", "sidd_medium_pairs"]


#: Write-up 004's SIDD files: (noisy, gt) at 256 px.
SIDD_NPY_FILES: tuple[str, str] = ("noisy_images_256.npy", "gt_images_256.npy")


def _check_sidd_array(arr: np.ndarray, path: Path, size: int) -> None:
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected dtype uint8 (values 0-255), got {arr.dtype} ({see('sidd-arrays')})")
    if arr.ndim != 4 or arr.shape[1:] != (size, size, 3):
        raise ValueError(f"{path}: expected shape (N, {size}, {size}, 3) (N images, HWC RGB), got {arr.shape} "
                         f"({see('sidd-arrays')})")
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
                                    f"uint8 N x {size} x {size} x 3, in one folder; {see('sidd-arrays')})")
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from exc
        _check_sidd_array(arr, path, size)
        arrays.append(arr)
    noisy, gt = arrays
    if noisy.shape[0] != gt.shape[0]:
        raise ValueError(f"{root / names[0]} holds {noisy.shape[0]} images but {root / names[1]} holds {gt.shape[0]} "
                         f"(pair i is row i of both; {see('sidd-arrays')})")
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
                raise ValueError(f"noisy image {p} has no partner: expected {root / 'GT' / p.name} ({see('sidd-medium')})")
            pairs.append((p, gt_by[p.name]))
        return pairs
    base = root / "Data" if (root / "Data").is_dir() else root
    pairs = []
    for noisy in sorted(base.glob("*/*NOISY_SRGB_*.*")):
        gt = noisy.with_name(noisy.name.replace("NOISY_SRGB_", "GT_SRGB_", 1))
        if not gt.is_file():
            raise ValueError(f"noisy image {noisy} has no partner: expected {gt} ({see('sidd-medium')})")
        pairs.append((noisy, gt))
    if not pairs:
        raise FileNotFoundError(
            f"no SIDD-Medium pairs under '{root}': looked for Data/<scene>/0001_NOISY_SRGB_010.PNG "
            f"(+ 0001_GT_SRGB_010.PNG; also without Data/ and without the 0001_ prefix) and for NOISY/ + GT/ folders "
            f"({see('sidd-medium')})")
    return pairs
