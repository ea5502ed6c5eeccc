"""Tiling and stitching for inference: windows, grids, overlapping patches and their reassembly.

All images are numpy arrays, HWC (any channel count) or HW, float32 in [0, 1] by the project
convention (uint8 [0, 255] works wherever no arithmetic is done on the values). Positions are
``(y, x)`` pixel offsets of a patch's top-left corner; patch sizes are in pixels. No dataset layout
on disk is involved (see :mod:`labkit.data.patch_export` for patch files).

What comes from which write-up:

- 000 (RRDB+, DACON AI SR): 16 non-overlapping train patches per image (:func:`grid_split`
  4 x 4, put back by :func:`grid_merge`) and 49 overlapping test patches per 512 px input
  (:func:`extract_patches` with 128 px windows, stride 64 -> 7 x 7) that are put back with overlap
  averaging (:func:`stitch`, optionally weighted by :func:`hann_window`) to hide the patch borders.
- 001 (HINet flare removal, LG 4th place, official code github.com/wooseok-shin/
  Image-Enhancement-4th-place-solution, ``make_patch.py`` / ``test.py``): 256 px patches, stride
  128, taken on a zero-padded image (:func:`padded_patches`); at inference the zero-padded edge
  patches are dropped except the first stride (:func:`skip_padded`).

Training-time patch selection is :mod:`labkit.data.patch_select`; the validation helpers
:func:`int_pair` and :func:`check_image` are shared with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = [
    "IntPair",
    "int_pair",
    "check_image",
    "window_starts",
    "grid_split",
    "grid_merge",
    "extract_patches",
    "hann_window",
    "stitch",
    "padded_patches",
    "skip_padded",
]


IntPair = int | tuple[int, int]


def int_pair(value: IntPair, name: str) -> tuple[int, int]:
    """Return ``(a, b)`` from an int or a pair of ints; ValueError names ``name`` when invalid."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence) and len(value) == 2:
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if pair[0] <= 0 or pair[1] <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return pair


def check_image(img: np.ndarray, name: str = "img") -> np.ndarray:
    """Check that ``img`` is an HW or HWC numpy array and return it."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (HW or HWC), got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"{name} must be HW or HWC, got shape {img.shape}")
    return img


def window_starts(length: int, patch_size: int, stride: int) -> list[int]:
    """Start offsets of windows of ``patch_size`` that cover ``[0, length)`` without padding.

    Windows start at ``0, stride, 2*stride, ...`` while they fit; if the last one stops short of
    the end, one more window is added flush with the end (start ``length - patch_size``). This is
    the scheme of BasicSR's ``extract_subimages.py`` and of 001's ``make_patch.py`` for its larger
    patches. Example: ``window_starts(512, 128, 64)`` gives 7 starts ``0, 64, ..., 384`` (000's
    7 x 7 = 49 test patches).

    Args:
        length: size of the axis in pixels (> 0).
        patch_size: window size in pixels, ``1 <= patch_size <= length``.
        stride: step in pixels, ``1 <= stride <= patch_size`` (a larger stride would leave gaps).

    Returns:
        Sorted list of distinct start offsets; ``start + patch_size <= length`` for each and the
        last one equals ``length - patch_size``.

    Raises:
        ValueError: non-positive values, ``patch_size > length`` or ``stride > patch_size``.
    """
    length, patch_size, stride = int(length), int(patch_size), int(stride)
    if length <= 0 or patch_size <= 0:
        raise ValueError(f"length and patch_size must be positive, got {length}, {patch_size}")
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    if patch_size > length:
        raise ValueError(f"patch_size {patch_size} is larger than the axis length {length}")
    if stride > patch_size:
        raise ValueError(f"stride {stride} > patch_size {patch_size} would leave uncovered gaps")
    starts = list(range(0, length - patch_size + 1, stride))
    if starts[-1] + patch_size < length:
        starts.append(length - patch_size)
    return starts


def grid_split(img: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """Split an image into ``rows x cols`` equal, non-overlapping tiles (row-major order).

    000 used 4 x 4 (16 train patches per image, on the LR input and the x4 GT alike); 004 used
    2 x 2 (see :func:`split_2x2`).

    Args:
        img: HW or HWC array whose height is divisible by ``rows`` and width by ``cols``.
        rows, cols: number of tiles down and across (>= 1).

    Returns:
        ``rows * cols`` arrays (copies) of shape ``(H/rows, W/cols[, C])``, ordered left to right,
        then top to bottom.

    Raises:
        ValueError: non-positive ``rows``/``cols`` or a shape that is not divisible (the message
            names the shape).
    """
    img = check_image(img)
    rows, cols = int(rows), int(cols)
    if rows <= 0 or cols <= 0:
        raise ValueError(f"rows and cols must be positive, got {rows}, {cols}")
    h, w = img.shape[:2]
    if h % rows or w % cols:
        raise ValueError(
            f"grid_split: image of shape {img.shape} cannot be split into {rows} x {cols} equal "
            f"tiles (height {h} % {rows} = {h % rows}, width {w} % {cols} = {w % cols})"
        )
    th, tw = h // rows, w // cols
    return [img[r * th:(r + 1) * th, c * tw:(c + 1) * tw].copy() for r in range(rows) for c in range(cols)]


def grid_merge(tiles: Sequence[np.ndarray], rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`grid_split`: put ``rows * cols`` equal tiles back together.

    Args:
        tiles: row-major sequence of equally shaped HW or HWC arrays.
        rows, cols: grid layout.

    Returns:
        Array of shape ``(rows*th, cols*tw[, C])`` with the tiles' dtype.

    Raises:
        ValueError: wrong number of tiles or tiles of different shapes.
    """
    if len(tiles) != rows * cols:
        raise ValueError(f"grid_merge: expected {rows * cols} tiles for {rows} x {cols}, got {len(tiles)}")
    shapes = {t.shape for t in tiles}
    if len(shapes) != 1:
        raise ValueError(f"grid_merge: tiles must share one shape, got {sorted(shapes)}")
    return np.concatenate(
        [np.concatenate(list(tiles[r * cols:(r + 1) * cols]), axis=1) for r in range(rows)], axis=0
    )


def extract_patches(
    img: np.ndarray, patch_size: IntPair, stride: IntPair
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Overlapping sliding-window patches that cover the image, last window flush to the edge.

    Uses :func:`window_starts` on both axes, so no padding is needed. 000's test-time scheme:
    ``extract_patches(lq_512, 128, 64)`` -> 49 patches.

    Args:
        img: HW or HWC array, at least ``patch_size`` on each axis.
        patch_size: int or ``(ph, pw)`` in pixels.
        stride: int or ``(sy, sx)`` in pixels, each ``<= `` the patch size on that axis.

    Returns:
        ``(patches, positions)``: an array ``(N, ph, pw[, C])`` (a copy, img's dtype) and the
        list of ``(y, x)`` top-left offsets, row-major.

    Raises:
        ValueError: see :func:`window_starts` (patch larger than the image, bad stride).
    """
    img = check_image(img)
    ph, pw = int_pair(patch_size, "patch_size")
    sy, sx = int_pair(stride, "stride")
    ys = window_starts(img.shape[0], ph, sy)
    xs = window_starts(img.shape[1], pw, sx)
    positions = [(y, x) for y in ys for x in xs]
    patches = np.stack([img[y:y + ph, x:x + pw] for y, x in positions])
    return patches, positions


def hann_window(height: int, width: int, floor: float = 1e-2) -> np.ndarray:
    """2-D separable Hann-like blending weights, positive everywhere.

    ``w(i) = floor + (1 - floor) * sin(pi * (i + 0.5) / n) ** 2`` along each axis, outer product
    of the two. The half-pixel offset and the floor keep every pixel's weight > 0, so pixels at
    the image border, which only one patch's edge covers, are still reconstructed exactly.

    Args:
        height, width: window size in pixels (>= 1).
        floor: smallest 1-D weight in ``[0, 1]`` (the 2-D minimum is about ``floor**2``).

    Returns:
        float64 array ``(height, width)`` with values in ``(0, 1]``.

    Raises:
        ValueError: non-positive size or ``floor`` outside ``[0, 1]``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"hann_window size must be positive, got {height} x {width}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor}")

    def one_d(n: int) -> np.ndarray:
        return floor + (1.0 - floor) * np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2

    return np.outer(one_d(height), one_d(width))


def stitch(
    patches: np.ndarray | Sequence[np.ndarray],
    positions: Sequence[tuple[int, int]],
    out_shape: Sequence[int],
    *,
    blend: Literal["mean", "none", "hann"] = "mean",
    scale: int = 1,
    hann_floor: float = 1e-2,
) -> np.ndarray:
    """Put (processed) patches back into one image.

    Args:
        patches: ``(N, ph, pw[, C])`` array or sequence of equally shaped arrays; may be model
            outputs ``scale`` times larger than the input patches (SR).
        positions: ``N`` top-left ``(y, x)`` offsets in *input* pixels; they are multiplied by
            ``scale`` to place the patches.
        out_shape: shape of the output image ``(H, W[, C])`` in output pixels; its trailing
            dims must match the patches'.
        blend: ``'none'``: later patches overwrite earlier ones (naive tiling; seams show where a
            model's output depends on the patch border); ``'mean'``: plain average of all
            overlapping patches (what 000 and 001's ``test.py`` do); ``'hann'``: average weighted by
            :func:`hann_window`, so patch centres dominate and seams fade.
        scale: integer factor between output and input pixels (1 for restoration).
        hann_floor: ``floor`` of :func:`hann_window` for ``blend='hann'``.

    Returns:
        The stitched image, ``out_shape``; dtype of the patches for ``'none'``, at least float32
        otherwise.

    Raises:
        ValueError: unknown ``blend``, mismatched lengths or shapes, a patch outside the output,
            or output pixels that no patch covers (the message counts them).
    """
    if blend not in ("mean", "none", "hann"):
        raise ValueError(f"blend must be 'mean', 'none' or 'hann', got {blend!r}")
    scale = int(scale)
    if scale <= 0:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    patches = np.asarray(patches) if not isinstance(patches, np.ndarray) else patches
    if patches.ndim not in (3, 4):
        raise ValueError(f"patches must be (N, ph, pw) or (N, ph, pw, C), got shape {patches.shape}")
    if len(positions) != len(patches):
        raise ValueError(f"{len(patches)} patches but {len(positions)} positions")
    out_shape = tuple(int(s) for s in out_shape)
    if len(out_shape) != patches.ndim - 1 or out_shape[2:] != patches.shape[3:]:
        raise ValueError(f"out_shape {out_shape} does not match patches of shape {patches.shape[1:]}")
    height, width = out_shape[:2]
    ph, pw = patches.shape[1:3]

    for y, x in positions:
        oy, ox = y * scale, x * scale
        if oy < 0 or ox < 0 or oy + ph > height or ox + pw > width:
            raise ValueError(
                f"patch at input position ({y}, {x}) x scale {scale} spans rows {oy}:{oy + ph}, "
                f"cols {ox}:{ox + pw}, outside the output of shape {out_shape}"
            )

    if blend == "none":
        out = np.zeros(out_shape, dtype=patches.dtype)
        covered = np.zeros((height, width), dtype=bool)
        for patch, (y, x) in zip(patches, positions):
            out[y * scale:y * scale + ph, x * scale:x * scale + pw] = patch
            covered[y * scale:y * scale + ph, x * scale:x * scale + pw] = True
        _check_covered(covered, out_shape)
        return out

    weight = np.ones((ph, pw)) if blend == "mean" else hann_window(ph, pw, hann_floor)
    if patches.ndim == 4:
        weight_c = weight[:, :, None]
    else:
        weight_c = weight
    acc = np.zeros(out_shape, dtype=np.float64)
    wsum = np.zeros((height, width), dtype=np.float64)
    for patch, (y, x) in zip(patches, positions):
        sl = (slice(y * scale, y * scale + ph), slice(x * scale, x * scale + pw))
        acc[sl] += patch * weight_c
        wsum[sl] += weight
    _check_covered(wsum > 0, out_shape)
    if acc.ndim == 3:
        acc /= wsum[:, :, None]
    else:
        acc /= wsum
    return acc.astype(np.promote_types(patches.dtype, np.float32))


def _check_covered(covered: np.ndarray, out_shape: tuple[int, ...]) -> None:
    missing = int((~covered).sum())
    if missing:
        ys, xs = np.nonzero(~covered)
        raise ValueError(
            f"stitch: {missing} of {covered.size} output pixels of shape {out_shape} are covered by "
            f"no patch (first at y={ys[0]}, x={xs[0]}); check positions, patch size and scale"
        )


def padded_patches(
    img: np.ndarray, patch_size: int, stride: int
) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """001-style sliding window on a zero-padded image.

    As in 001's ``make_patch.py``: windows start at every multiple of ``stride`` below the image
    size on each axis (``range(0, H, stride)`` x ``range(0, W, stride)``) and the part of a
    window that falls outside the image is zero (bottom/right padding). Near the bottom/right
    edges this yields patches that are mostly, or for ``stride < patch_size / 2`` up to almost
    entirely, padding; :func:`skip_padded` removes the useless ones.

    Args:
        img: HW or HWC array.
        patch_size: square window size in pixels (> 0).
        stride: step in pixels, ``1 <= stride <= patch_size``.

    Returns:
        ``(patches, positions, pad_fraction)``: array ``(N, p, p[, C])`` in img's dtype,
        ``(y, x)`` offsets (row-major), and for each patch the fraction in ``[0, 1)`` of its pixels
        that are padding (float64 array ``(N,)``).

    Raises:
        ValueError: non-positive sizes or ``stride > patch_size``.
    """
    img = check_image(img)
    patch_size, stride = int(patch_size), int(stride)
    if patch_size <= 0 or stride <= 0:
        raise ValueError(f"patch_size and stride must be positive, got {patch_size}, {stride}")
    if stride > patch_size:
        raise ValueError(f"stride {stride} > patch_size {patch_size} would leave uncovered gaps")
    h, w = img.shape[:2]
    ys, xs = list(range(0, h, stride)), list(range(0, w, stride))
    padded_shape = (ys[-1] + patch_size, xs[-1] + patch_size) + img.shape[2:]
    padded = np.zeros(padded_shape, dtype=img.dtype)
    padded[:h, :w] = img
    positions = [(y, x) for y in ys for x in xs]
    patches = np.stack([padded[y:y + patch_size, x:x + patch_size] for y, x in positions])
    pad_fraction = np.array(
        [1.0 - min(patch_size, h - y) * min(patch_size, w - x) / patch_size**2 for y, x in positions]
    )
    return patches, positions, pad_fraction


def skip_padded(
    positions: Sequence[tuple[int, int]],
    pad_fraction: np.ndarray | Sequence[float],
    image_shape: Sequence[int],
    patch_size: int,
    stride: int,
) -> np.ndarray:
    """Indices of the patches 001 keeps at inference: zero-padded ones only up to the first stride.

    The rule implemented, per axis: a window starting at ``t`` is kept when ``t == 0`` or its
    zero padding on that axis, ``max(0, t + patch_size - L)``, is *less than one stride*. A patch
    is kept when both axes keep it. Equivalently, along each axis the starts run from 0 up to
    the first window that reaches the edge, ``ceil((L - patch_size) / stride) * stride``, which
    is exactly the set 001's ``test.py`` iterates over (for ``L >= patch_size``); the windows
    after it would only repeat the edge with more padding. Every patch with no padding is kept.

    Coverage: the kept starts on an axis are ``0, s, 2s, ...`` up to the first window that
    reaches ``L``, and ``stride <= patch_size`` makes consecutive windows touch or overlap, so
    the kept patches cover every image pixel (also when ``L < patch_size``: start 0 is kept).

    Args:
        positions: ``(y, x)`` offsets from :func:`padded_patches`.
        pad_fraction: the padding fractions returned with them; used to check that
            ``patch_size`` and ``image_shape`` match the patches.
        image_shape: shape of the unpadded image ``(H, W[, C])``.
        patch_size: the window size used to make them.
        stride: the stride used to make them (``1 <= stride <= patch_size``).

    Returns:
        int64 array of kept indices into ``positions``, increasing.

    Raises:
        ValueError: mismatched lengths, bad stride, or padding fractions that do not match
            ``patch_size`` / ``image_shape``.
    """
    stride, patch_size = int(stride), int(patch_size)
    if patch_size <= 0 or stride <= 0 or stride > patch_size:
        raise ValueError(f"need 1 <= stride <= patch_size, got stride={stride}, patch_size={patch_size}")
    pad_fraction = np.asarray(pad_fraction, dtype=np.float64)
    if len(positions) != len(pad_fraction):
        raise ValueError(f"{len(positions)} positions but {len(pad_fraction)} pad fractions")
    h, w = int(image_shape[0]), int(image_shape[1])
    keep = []
    for i, (y, x) in enumerate(positions):
        pad_y = max(0, y + patch_size - h)
        pad_x = max(0, x + patch_size - w)
        expected = 1.0 - (patch_size - pad_y) * (patch_size - pad_x) / patch_size**2
        if abs(expected - pad_fraction[i]) > 1e-9:
            raise ValueError(
                f"patch {i} at {(y, x)}: pad fraction {pad_fraction[i]:.4f} does not match "
                f"patch_size={patch_size}, image_shape={tuple(image_shape)} (expected {expected:.4f})"
            )
        if (y == 0 or pad_y < stride) and (x == 0 or pad_x < stride):
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)
