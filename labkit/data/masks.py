"""Inpainting masks and inputs (write-up 002, notebook 06): seeded free-form masks, the masked gray input.

- :func:`random_mask`: free-form strokes and boxes (:data:`MASK_KINDS`) covering a given fraction;
- :func:`inpainting_input`: the grayscale (or faded) image with the masked pixels filled (+ the mask channel);
- :func:`mask_from_pair`: the mask recovered from an (input, target) pair of the DACON inpainting
  competition, which ships no mask files (data/README.md, section "DACON inpainting", ``#dacon-inpainting``).

The datasets that use them are in :mod:`labkit.data.inpainting`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from labkit.data.degrade import to_grayscale

__all__ = ["MASK_KINDS", "random_mask", "inpainting_input", "mask_from_pair"]


MASK_KINDS = ("strokes", "boxes")


def _stroke(mask: np.ndarray, rng: np.random.Generator, target: int) -> None:
    """Draw one free-form stroke (a thick random polyline) until ``target`` pixels are covered.

    The brush is a disk stamped at evenly spaced points of each segment, the pixels whose centre is
    closer than ``radius`` (scikit-image's ``draw.disk``, the same test to the bit); a segment's
    disks are drawn at once and drawing stops at the first disk that reaches ``target``.
    """
    h, w = mask.shape
    side = min(h, w)
    radius = float(rng.uniform(max(1.5, side / 48), max(2.5, side / 16)))
    r, c = float(rng.uniform(0, h)), float(rng.uniform(0, w))
    angle = float(rng.uniform(0, 2 * np.pi))
    for _ in range(int(rng.integers(3, 9))):
        angle += float(rng.uniform(-np.pi / 2, np.pi / 2))
        length = float(rng.uniform(side / 12, side / 4))
        steps = max(1, int(length / max(1.0, radius / 2)))
        dr, dc = float(np.sin(angle) * length / steps), float(np.cos(angle) * length / steps)
        centres = []
        for _ in range(steps):   # each step clipped to the image, the next one starting from there
            r, c = min(max(r + dr, 0.0), h - 1.0), min(max(c + dc, 0.0), w - 1.0)
            centres.append((r, c))
        if _stamp(mask, centres, radius, target):
            return


def _stamp(mask: np.ndarray, centres: list[tuple[float, float]], radius: float, target: int) -> bool:
    """Add the disks at ``centres`` to ``mask`` in order, up to the first that brings it to ``target``
    covered pixels; whether it got there."""
    h, w = mask.shape
    rows = np.arange(h, dtype=np.float64)[None, :, None] - np.array([r for r, _ in centres])[:, None, None]
    cols = np.arange(w, dtype=np.float64)[None, None, :] - np.array([c for _, c in centres])[:, None, None]
    disks = (rows / radius) ** 2 + (cols / radius) ** 2 < 1
    if int(np.count_nonzero(mask | disks.any(axis=0))) < target:   # the usual case: all of them, not there yet
        mask |= disks.any(axis=0)
        return False
    covered = np.logical_or.accumulate(disks, axis=0) | mask
    first = int(np.flatnonzero(np.count_nonzero(covered, axis=(1, 2)) >= target)[0])
    mask |= covered[first]
    return True


def _box(mask: np.ndarray, rng: np.random.Generator, target: int) -> None:
    """Draw one rectangle, shrunk so that it does not overshoot ``target`` covered pixels by much."""
    h, w = mask.shape
    bh = int(rng.integers(max(2, h // 10), max(3, h // 3) + 1))
    bw = int(rng.integers(max(2, w // 10), max(3, w // 3) + 1))
    remaining = target - int(mask.sum())
    if bh * bw > remaining:  # shrink both sides, keeping the aspect ratio (at least 2x2)
        f = np.sqrt(max(remaining, 4) / (bh * bw))
        bh, bw = max(2, int(round(bh * f))), max(2, int(round(bw * f)))
    top = int(rng.integers(0, h - bh + 1))
    left = int(rng.integers(0, w - bw + 1))
    mask[top:top + bh, left:left + bw] = True


def random_mask(height: int, width: int, fraction: float, *, seed: int | np.random.Generator | None = None,
                kinds: Sequence[str] = MASK_KINDS) -> np.ndarray:
    """A seeded random inpainting mask of free-form strokes and boxes covering ``fraction`` of the image.

    Shapes are drawn one after the other (each kind chosen at random from ``kinds``): a stroke
    is a thick random polyline (the "free-form" masks of Yu et al., ICCV 2019: random angles,
    lengths and widths), a box a random rectangle (the "missing region" of the 002 competition);
    drawing stops as soon as the covered share reaches ``fraction``, and the last box is shrunk
    so that the result overshoots by at most about one brush disk (a few pixels).

    Args:
        height, width: mask size in pixels (>= 8).
        fraction: the share of pixels to cover, in [0, 0.9].
        seed: an int or a numpy Generator (the same seed gives the same mask); None: fresh entropy.
        kinds: any non-empty subset of ``('strokes', 'boxes')``.

    Returns: a bool array (height, width), True = missing.

    Raises:
        ValueError: a size below 8, ``fraction`` outside [0, 0.9], unknown or empty ``kinds``.
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 8:
            raise ValueError(f"random_mask: {name} must be an int >= 8, got {v!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 0.9:
        raise ValueError(f"random_mask: fraction must be a number in [0, 0.9], got {fraction!r}")
    kinds = tuple(kinds)
    if not kinds or any(k not in MASK_KINDS for k in kinds):
        raise ValueError(f"random_mask: kinds must be a non-empty subset of {MASK_KINDS}, got {kinds!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    mask = np.zeros((int(height), int(width)), dtype=bool)
    target = math.ceil(fraction * mask.size - 1e-9)  # at least the requested share, never just below it
    while int(mask.sum()) < target:
        kind = kinds[int(rng.integers(len(kinds)))]
        (_stroke if kind == "strokes" else _box)(mask, rng, target)
    return mask


def inpainting_input(img: np.ndarray, mask: np.ndarray, *, fill: float = 0.0, with_mask: bool = True,
                     chroma_kept: float = 0.0) -> np.ndarray:
    """The 002 task's input: the grayscale (or faded) photo with the masked pixels replaced by ``fill``.

    Args:
        img: HWC RGB numpy image (uint8, or float in [0, 1]).
        mask: bool / {0, 1} array (H, W), True = missing.
        fill: the value of the missing pixels (every image channel), in [0, 1].
        with_mask: append the mask as the last channel (the generator's ``num_in_ch=2`` / ``4`` input).
        chroma_kept: the share of the colour the input keeps, in [0, 1). 0 (the write-up's task): the gray
            photo, one channel. Above 0: a **faded** RGB photo, ``gray + chroma_kept * (rgb - gray)`` per
            channel (the colour pulled towards its luma; lightness unchanged), three channels: the easier,
            stated degradation of the course's smoke profile (notebook 06), where colouring a gray photo from
            scratch is out of reach.

    Returns: float32 (H, W, C) in [0, 1]: ``[gray, mask]`` (C=2) or ``[gray]`` (1); with ``chroma_kept > 0``
    ``[R, G, B, mask]`` (4) or ``[R, G, B]`` (3). Gray is BT.601 full-range luma (:func:`to_grayscale`).

    Raises: ValueError: a mask of another size, ``fill`` outside [0, 1], ``chroma_kept`` outside [0, 1); as
    :func:`to_grayscale`.
    """
    if not 0.0 <= fill <= 1.0:
        raise ValueError(f"inpainting_input: fill must be in [0, 1], got {fill!r}")
    if not 0.0 <= chroma_kept < 1.0:
        raise ValueError(f"inpainting_input: chroma_kept must be in [0, 1), got {chroma_kept!r}")
    arr = np.asarray(img)
    gray = to_grayscale(arr, keep_channels=False)
    gray = gray.astype(np.float32) / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    m = np.asarray(mask)
    if m.shape != gray.shape:
        raise ValueError(f"inpainting_input: mask of shape {m.shape} does not fit the image of size {gray.shape}")
    m = m.astype(bool)
    if chroma_kept > 0.0:
        rgb = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
        faded = gray[..., None] + np.float32(chroma_kept) * (rgb - gray[..., None])
        image = [np.where(m, np.float32(fill), np.clip(faded[..., c], 0.0, 1.0)) for c in range(3)]
    else:
        image = [np.where(m, np.float32(fill), gray)]
    chans = image + ([m.astype(np.float32)] if with_mask else [])
    return np.stack(chans, axis=-1).astype(np.float32)


def mask_from_pair(lq_gray: np.ndarray, gt: np.ndarray, *, tol: float = 0.1, min_size: int = 16) -> np.ndarray:
    """Recover the missing region of a competition pair: where the input differs from gray(target).

    The 002 competition gives masked grayscale inputs and colour targets, but no mask files. The
    untouched pixels of the input equal the target's luma (up to rounding and the exact gray
    formula), the filled ones do not: ``|lq - gray(gt)| > tol``, then small specks (fewer than
    ``min_size`` pixels) are removed and holes as small filled (scipy connected components). Filled pixels
    that happen to match the luma within ``tol`` are missed, so this is a heuristic.

    Args:
        lq_gray: (H, W), (H, W, 1) or (H, W, 3) input (uint8 or float [0, 1]).
        gt: (H, W, 3) RGB target (uint8 or float [0, 1]).
        tol: difference threshold in [0, 1] units. min_size: speck size in pixels.

    Returns: bool (H, W), True = missing. Raises ValueError for sizes that do not match.
    """
    from scipy import ndimage  # local: scipy.ndimage is slow to import; keeps `import labkit` light

    def drop_small(b: np.ndarray) -> np.ndarray:  # connected components (8-neighbour) below min_size
        labels, n = ndimage.label(b, structure=np.ones((3, 3), bool))
        if n == 0:
            return b
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_size
        keep[0] = False
        return keep[labels]

    lq = np.asarray(lq_gray)
    lq = lq.astype(np.float32) / 255.0 if lq.dtype == np.uint8 else lq.astype(np.float32)
    if lq.ndim == 3:
        lq = lq.mean(axis=2)
    g = to_grayscale(np.asarray(gt), keep_channels=False)
    g = g.astype(np.float32) / 255.0 if g.dtype == np.uint8 else g.astype(np.float32)
    if lq.shape != g.shape:
        raise ValueError(f"mask_from_pair: input of size {lq.shape} and target of size {g.shape} differ")
    m = np.abs(lq - g) > tol
    m = drop_small(m)
    return ~drop_small(~m)  # holes smaller than min_size are filled
