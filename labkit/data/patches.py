"""Patch extraction, selection and stitching as the write-ups use them.

All images are numpy arrays, HWC (any channel count) or HW, float32 in [0, 1] by the project
convention (uint8 [0, 255] works wherever no arithmetic is done on the values). Positions are
``(y, x)`` pixel offsets of a patch's top-left corner; patch sizes are in pixels.

What comes from which write-up:

- 000 (RRDB+, DACON AI SR): 16 non-overlapping train patches per image (:func:`grid_split`
  4 x 4) and 49 overlapping test patches per 512 px input (:func:`extract_patches` with 128 px
  windows, stride 64 -> 7 x 7) that are put back with overlap averaging (:func:`stitch`) to hide
  the patch borders.
- 001 (HINet flare removal, LG 4th place, official code github.com/wooseok-shin/
  Image-Enhancement-4th-place-solution, ``make_patch.py`` / ``test.py``): 256 px patches, stride
  128, taken on a zero-padded image (:func:`padded_patches`), kept when enough pixels are bright
  in HSV Value (:func:`hsv_value_select`); larger 512 px patches resized down to the training
  size (:func:`multi_scale_patches`); at inference the zero-padded edge patches are dropped
  except the first stride (:func:`skip_padded`).
- 004 (NAFNet, SIDD/GoPro): original + horizontal flip + vertical flip, each split 2 x 2
  (:func:`flips_x3`, :func:`split_2x2`, :func:`x12_patches`), and a random 512 crop before the
  2 x 2 split (:func:`random_crop`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "window_starts",
    "grid_split",
    "grid_merge",
    "extract_patches",
    "hann_window",
    "stitch",
    "padded_patches",
    "skip_padded",
    "V_MIN_001",
    "hsv_value_select",
    "resize_down",
    "multi_scale_patches",
    "patches_from_boxes",
    "split_2x2",
    "flips_x3",
    "x12_patches",
    "random_crop",
    "export_grid_patches",
    "make_patch_pairs",
]

IntPair = int | tuple[int, int]

#: 001's brightness level: the official ``make_patch.py`` counts pixels whose 8-bit HSV Value
#: (OpenCV, V = max(B, G, R)) is ``> 200``. On float images in [0, 1] that is ``V > 200.5 / 255``:
#: halfway between the 8-bit levels 200 and 201, so images decoded from 8-bit files give exactly
#: the official count without float ties at 200/255.
V_MIN_001: float = 200.5 / 255.0


# --------------------------------------------------------------------------------------------
# small validation helpers
# --------------------------------------------------------------------------------------------


def _pair(value: IntPair, name: str) -> tuple[int, int]:
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


def _check_image(img: np.ndarray, name: str = "img") -> np.ndarray:
    """Check that ``img`` is an HW or HWC numpy array and return it."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (HW or HWC), got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"{name} must be HW or HWC, got shape {img.shape}")
    return img


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# --------------------------------------------------------------------------------------------
# windows, grids, overlapping patches
# --------------------------------------------------------------------------------------------


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
    img = _check_image(img)
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
    img = _check_image(img)
    ph, pw = _pair(patch_size, "patch_size")
    sy, sx = _pair(stride, "stride")
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


# --------------------------------------------------------------------------------------------
# 001: zero-padded sliding window and the inference skip rule
# --------------------------------------------------------------------------------------------


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
    img = _check_image(img)
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


# --------------------------------------------------------------------------------------------
# 001: HSV Value selection
# --------------------------------------------------------------------------------------------


def hsv_value_select(
    patches: np.ndarray | Sequence[np.ndarray],
    *,
    threshold: int = 1000,
    v_min: float = V_MIN_001,
) -> tuple[np.ndarray, np.ndarray]:
    """001's patch selection: keep patches with at least ``threshold`` bright pixels.

    Score of a patch = number of its pixels whose HSV Value exceeds ``v_min``, with
    ``V = max(R, G, B)`` (the definition of ``skimage.color.rgb2hsv`` and OpenCV). The official
    ``make_patch.py`` (github.com/wooseok-shin/Image-Enhancement-4th-place-solution) counts
    8-bit pixels with ``V > 200`` on the *input* (flare) patch and skips the patch when the
    count is ``< v_threshold``, default and final model 1000 (on 256 px patches, about 1.5 % of
    the pixels); the defaults here reproduce that on float images (see :data:`V_MIN_001`). The
    official code filtered only the base-size patches, not the larger resized ones.

    Args:
        patches: ``(N, h, w, 3)`` array, or a sequence of ``(h, w, 3)`` arrays (sizes may
            differ); RGB float in [0, 1] or uint8 in [0, 255] (divided by 255).
        threshold: minimum count of bright pixels to keep a patch (an absolute pixel count,
            not a fraction).
        v_min: brightness level in [0, 1]; a pixel counts when ``V > v_min``.

    Returns:
        ``(keep_mask, scores)``: bool array ``(N,)`` equal to ``scores >= threshold`` and the
        int64 counts ``(N,)``.

    Raises:
        ValueError: patches that are not RGB (last axis 3) or not a batch.
    """
    if isinstance(patches, np.ndarray):
        if patches.ndim != 4:
            raise ValueError(f"patches must be an (N, h, w, 3) array or a list of HWC patches, got {patches.shape}")
        batch: Sequence[np.ndarray] = list(patches)
    else:
        batch = list(patches)
    scores = np.zeros(len(batch), dtype=np.int64)
    for i, patch in enumerate(batch):
        patch = np.asarray(patch)
        if patch.ndim != 3 or patch.shape[-1] != 3:
            raise ValueError(f"patch {i} must be HWC RGB, got shape {patch.shape}")
        value = patch.max(axis=-1).astype(np.float64)
        if patch.dtype == np.uint8:
            value /= 255.0
        scores[i] = int(np.count_nonzero(value > v_min))
    return scores >= threshold, scores


# --------------------------------------------------------------------------------------------
# 001: larger patches resized down
# --------------------------------------------------------------------------------------------


def resize_down(patch: np.ndarray, size: IntPair) -> np.ndarray:
    """Downscale a patch to ``size`` with anti-aliasing (001's larger patches).

    Uses ``skimage.transform.resize(order=3, anti_aliasing=True)`` (cubic spline after a Gaussian
    pre-filter). 001's official code used ``cv2.resize(INTER_CUBIC)`` without a pre-filter,
    which aliases at 2x and more; the anti-aliased version is the one taught here.

    Args:
        patch: HW or HWC array, float in [0, 1] or uint8.
        size: int (square) or ``(h, w)``, not larger than the patch on either axis.

    Returns:
        Array ``(h, w[, C])``: float32 clipped to [0, 1] for float input, uint8 (rounded) for
        uint8 input. A patch already of that size is returned as a copy.

    Raises:
        ValueError: a target size larger than the patch (this function only shrinks).
    """
    from skimage.transform import resize  # local import keeps `import labkit` light

    patch = _check_image(patch, "patch")
    oh, ow = _pair(size, "size")
    h, w = patch.shape[:2]
    if oh > h or ow > w:
        raise ValueError(f"resize_down: target {(oh, ow)} is larger than the patch {(h, w)}")
    if (oh, ow) == (h, w):
        return patch.copy()
    is_uint8 = patch.dtype == np.uint8
    src = patch.astype(np.float32) / 255.0 if is_uint8 else patch.astype(np.float32)
    out = resize(src, (oh, ow) + patch.shape[2:], order=3, anti_aliasing=True, mode="reflect")
    out = np.clip(out, 0.0, 1.0)
    if is_uint8:
        return np.round(out * 255.0).astype(np.uint8)
    return out.astype(np.float32)


def multi_scale_patches(
    img: np.ndarray,
    sizes: Sequence[int] = (256, 512),
    out_size: int = 256,
    stride_ratio: float = 0.5,
    rng: np.random.Generator | int | None = None,
    max_per_size: int | None = None,
    *,
    return_boxes: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Training patches of several sizes, all resized down to ``out_size`` (001's larger patches).

    For each size ``s`` the windows come from :func:`window_starts` with stride
    ``round(s * stride_ratio)`` (001: 256 stride 128, 512 stride 256, i.e. ratio 0.5), no
    padding; patches larger than ``out_size`` are shrunk by :func:`resize_down`, so the model
    sees content at several scales and patch borders that are not where the image ends. Sizes
    larger than the image are skipped. To crop the paired target identically ask for the boxes
    (``return_boxes=True``) and call :func:`patches_from_boxes` on the target with them.

    Args:
        img: HW or HWC array.
        sizes: patch sizes in pixels, each ``>= out_size``.
        out_size: side of every returned patch.
        stride_ratio: stride as a fraction of the patch size, in ``(0, 1]``.
        rng: Generator or int seed for subsampling (only used with ``max_per_size``).
        max_per_size: if given, at most this many patches per size, drawn without replacement.
        return_boxes: also return where each patch came from.

    Returns:
        Array ``(N, out_size, out_size[, C])`` (float32 for float input), sizes in the order of
        ``sizes``; with ``return_boxes=True`` the tuple ``(patches, boxes)`` where ``boxes`` lists
        the ``(y, x, size)`` square each patch was cut from.

    Raises:
        ValueError: a size below ``out_size``, a bad ``stride_ratio``, or no size fitting the image.
    """
    img = _check_image(img)
    if not 0.0 < stride_ratio <= 1.0:
        raise ValueError(f"stride_ratio must be in (0, 1], got {stride_ratio}")
    if any(int(s) < out_size for s in sizes):
        raise ValueError(f"every size in {tuple(sizes)} must be >= out_size {out_size}")
    generator = _as_rng(rng)
    h, w = img.shape[:2]
    boxes: list[tuple[int, int, int]] = []
    for size in sizes:
        size = int(size)
        if size > min(h, w):
            continue
        stride = max(1, int(round(size * stride_ratio)))
        here = [(y, x, size) for y in window_starts(h, size, stride) for x in window_starts(w, size, stride)]
        if max_per_size is not None and len(here) > max_per_size:
            pick = np.sort(generator.choice(len(here), size=max_per_size, replace=False))
            here = [here[i] for i in pick]
        boxes.extend(here)
    if not boxes:
        raise ValueError(f"multi_scale_patches: no size in {tuple(sizes)} fits an image of shape {img.shape}")
    out = patches_from_boxes(img, boxes, out_size)
    return (out, boxes) if return_boxes else out


def patches_from_boxes(img: np.ndarray, boxes: Sequence[tuple[int, int, int]], out_size: int) -> np.ndarray:
    """Crop square ``(y, x, size)`` boxes from ``img`` and resize each down to ``out_size``.

    The companion of :func:`multi_scale_patches` for the paired image (flare input vs. clean
    target must be cut at the same places).

    Args:
        img: HW or HWC array containing every box.
        boxes: ``(y, x, size)`` triples in pixels.
        out_size: output side (<= every box size).

    Returns:
        Array ``(N, out_size, out_size[, C])``.

    Raises:
        ValueError: a box outside the image or smaller than ``out_size``.
    """
    img = _check_image(img)
    h, w = img.shape[:2]
    out = []
    for y, x, size in boxes:
        if y < 0 or x < 0 or y + size > h or x + size > w:
            raise ValueError(f"box {(y, x, size)} lies outside the image of shape {img.shape}")
        out.append(resize_down(img[y:y + size, x:x + size], out_size))
    return np.stack(out)


# --------------------------------------------------------------------------------------------
# 004: 2x2 split, flips, random crop
# --------------------------------------------------------------------------------------------


def split_2x2(img: np.ndarray) -> list[np.ndarray]:
    """004's 2 x 2 split: ``[top-left, top-right, bottom-left, bottom-right]`` (even H and W).

    Raises:
        ValueError: odd height or width (see :func:`grid_split`).
    """
    return grid_split(img, 2, 2)


def flips_x3(img: np.ndarray) -> list[np.ndarray]:
    """004's physical x3 augmentation: ``[original, horizontal flip, vertical flip]`` (copies).

    Horizontal flip mirrors left-right (``img[:, ::-1]``), vertical flip top-bottom
    (``img[::-1]``), as albumentations' ``HorizontalFlip`` / ``VerticalFlip``.
    """
    img = _check_image(img)
    return [img.copy(), np.ascontiguousarray(img[:, ::-1]), np.ascontiguousarray(img[::-1])]


def x12_patches(img: np.ndarray) -> list[np.ndarray]:
    """004's x12 data: each of :func:`flips_x3` split by :func:`split_2x2` (3 x 4 = 12 tiles).

    Order: original's four tiles, then the horizontal flip's, then the vertical flip's.
    """
    return [tile for variant in flips_x3(img) for tile in split_2x2(variant)]


def random_crop(
    img: np.ndarray | Sequence[np.ndarray],
    size: IntPair,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Random crop (004: 512 x 512 from the full photo, then :func:`split_2x2`).

    Args:
        img: an HW/HWC array, or a list/tuple of arrays with the same height and width (e.g.
            ``(noisy, clean)``), all cropped at the same place.
        size: int or ``(h, w)`` in pixels, at most the image size.
        rng: Generator, int seed, or None (fresh entropy).

    Returns:
        The crop (a copy), or a tuple of crops when a sequence was given.

    Raises:
        ValueError: crop larger than the image, or images of different height/width.
    """
    images = list(img) if isinstance(img, (list, tuple)) else [img]
    for i, im in enumerate(images):
        _check_image(im, f"img[{i}]")
    hw = {im.shape[:2] for im in images}
    if len(hw) != 1:
        raise ValueError(f"random_crop: images must share height and width, got {sorted(hw)}")
    h, w = images[0].shape[:2]
    ch, cw = _pair(size, "size")
    if ch > h or cw > w:
        raise ValueError(f"random_crop: crop {(ch, cw)} is larger than the image {(h, w)}")
    generator = _as_rng(rng)
    y = int(generator.integers(0, h - ch + 1))
    x = int(generator.integers(0, w - cw + 1))
    crops = tuple(im[y:y + ch, x:x + cw].copy() for im in images)
    return crops if isinstance(img, (list, tuple)) else crops[0]


def export_grid_patches(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]] | Sequence[tuple[str, str, str]],
    out_root: str | os.PathLike,
    *,
    rows: int = 4,
    cols: int = 4,
    scale: int = 4,
) -> tuple[Path, Path]:
    """Cut every (lq, gt) pair into ``rows x cols`` aligned tiles and write them as PNG files.

    000's training set: 1640 pairs of 512 px LR / 2048 px HR -> 26,240 patch pairs of 128 / 512
    px, written once so that an epoch reads small files instead of decoding 2048 px images. The
    tiles of one pair are ``<name>_<r><c>.png`` (row, column) in ``out_root/lq`` and
    ``out_root/gt``; load them with ``labkit.data.datasets.PairedFolderDataset(lq, gt, scale)``.
    Existing files are overwritten (each is written atomically by :func:`labkit.io.write_image`).

    Args:
        pairs: ``(name, lq, gt)`` with HWC arrays (float [0, 1] or uint8), or with image paths
            (read one pair at a time, so memory stays at one pair).
        out_root: folder to create.
        rows, cols: the grid (4 x 4 in 000).
        scale: gt size / lq size; the LR image is cropped bottom/right to a multiple of the grid
            and the GT to the same region.

    Returns:
        ``(out_root/lq, out_root/gt)``.

    Raises:
        ValueError: a pair whose GT is not ``scale`` times its LR (named), or an LR smaller than
            the grid.
    """
    from labkit.io import read_image, write_image  # local: io imports nothing from here

    lq_dir, gt_dir = Path(out_root) / "lq", Path(out_root) / "gt"
    lq_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    for name, lq, gt in pairs:
        if isinstance(lq, (str, os.PathLike)):
            lq, gt = read_image(lq), read_image(gt)
        (lh, lw), (gh, gw) = lq.shape[:2], gt.shape[:2]
        if (gh, gw) != (lh * scale, lw * scale):
            raise ValueError(f"pair {name!r}: GT {gh}x{gw} is not {scale} x LR {lh}x{lw}")
        th, tw = lh // rows, lw // cols
        if th == 0 or tw == 0:
            raise ValueError(f"pair {name!r}: LR {lh}x{lw} is smaller than a {rows}x{cols} grid")
        lq = lq[:th * rows, :tw * cols]
        gt = gt[:th * rows * scale, :tw * cols * scale]
        for i, (a, b) in enumerate(zip(grid_split(lq, rows, cols), grid_split(gt, rows, cols))):
            r, c = divmod(i, cols)
            write_image(lq_dir / f"{name}_{r}{c}.png", a)
            write_image(gt_dir / f"{name}_{r}{c}.png", b)
    return lq_dir, gt_dir
# --------------------------------------------------------------------------------------------
# 001: the whole make_patch step (pairs -> selected patches), in parallel processes
# --------------------------------------------------------------------------------------------


def _load_pair_item(item: Sequence, index: int) -> tuple[str, np.ndarray, np.ndarray]:
    if not (isinstance(item, (tuple, list)) and len(item) == 3):
        raise TypeError(f"pairs[{index}]: expected (name, input, target), got {type(item).__name__}")
    name, lq, gt = item
    if not isinstance(lq, np.ndarray) or not isinstance(gt, np.ndarray):
        from labkit.io import read_image  # local import: workers read their own files

        lq = lq if isinstance(lq, np.ndarray) else read_image(lq)
        gt = gt if isinstance(gt, np.ndarray) else read_image(gt)
    if lq.shape != gt.shape:
        raise ValueError(f"pair {name!r}: input {lq.shape} and target {gt.shape} differ in shape")
    return str(name), lq, gt


def _patch_pair(index: int, item: Sequence, img_size: int, stride: int, v_threshold: int | None, v_min: float,
                larger: tuple[int, ...], max_larger: int | None, seed: int, save_dir: str | None) -> dict:
    """One pair of :func:`make_patch_pairs`; the patches come back stacked (one array per side)."""
    name, lq, gt = _load_pair_item(item, index)
    lq_p, positions, _ = padded_patches(lq, img_size, stride)
    gt_p, _, _ = padded_patches(gt, img_size, stride)
    if v_threshold is None:
        keep = np.ones(len(lq_p), dtype=bool)
        scores = np.zeros(len(lq_p), dtype=np.int64)
    else:
        keep, scores = hsv_value_select(lq_p, threshold=v_threshold, v_min=v_min)
    boxes = [(y, x, img_size) for (y, x), k in zip(positions, keep) if k]
    lq_out, gt_out = list(lq_p[keep]), list(gt_p[keep])
    big = [s for s in larger if s <= min(lq.shape[:2])]
    if big:
        lq_big, big_boxes = multi_scale_patches(lq, big, img_size, 0.5, rng=np.random.default_rng([seed, index]),
                                                max_per_size=max_larger, return_boxes=True)
        lq_out += list(lq_big)  # already resized (resizing the input's boxes again cost a third of the job)
        gt_out += list(patches_from_boxes(gt, big_boxes, img_size))
        boxes += big_boxes
    result = {"name": name, "boxes": boxes, "scores": scores, "n_base": len(positions)}
    if save_dir is None:  # one array per side: a single buffer to send back, not hundreds of small ones
        result["lq"] = np.stack(lq_out) if lq_out else lq_p[:0].copy()
        result["gt"] = np.stack(gt_out) if gt_out else gt_p[:0].copy()
    else:
        from pathlib import Path

        from labkit.io import write_image

        files = []
        for (y, x, s), a, b in zip(boxes, lq_out, gt_out):
            stem = f"{name}_{s}_{y}_{x}"
            write_image(Path(save_dir) / "input" / f"{stem}.png", a)
            write_image(Path(save_dir) / "label" / f"{stem}.png", b)
            files.append(stem)
        result["files"] = files
    return result


# what every worker process of make_patch_pairs holds: (pairs, settings), set once by the pool's
# initializer (inherited without copying under the 'fork' start method) instead of being pickled into
# every task; a task is then just an index
_WORKER_STATE: tuple = ((), ())


def _init_patch_worker(pairs: Sequence, settings: tuple) -> None:
    global _WORKER_STATE
    _WORKER_STATE = (pairs, settings)


def _patch_pair_in_worker(index: int, spool: str) -> dict:
    """A worker's pair: the patch arrays go to ``.npy`` files in ``spool`` (memory-backed where
    ``/dev/shm`` exists), which the parent maps, instead of through the result pipe (pickled, copied
    twice more)."""
    pairs, settings = _WORKER_STATE
    result = _patch_pair(index, pairs[index], *settings)
    for side in ("lq", "gt"):
        if side in result:
            path = os.path.join(spool, f"{index}_{side}.npy")
            np.save(path, result[side])
            result[side] = path
    return result


def make_patch_pairs(
    pairs: Sequence[tuple[str, object, object]],
    *,
    img_size: int = 256,
    stride: int = 128,
    v_threshold: int | None = 1000,
    v_min: float = V_MIN_001,
    larger_sizes: Sequence[int] = (),
    max_larger_per_image: int | None = None,
    process_num: int = 1,
    seed: int = 0,
    save_dir: str | None = None,
) -> dict:
    """001's ``make_patch.py``: training patches of (input, target) pairs, in ``process_num`` processes.

    For every pair: zero-padded ``img_size`` windows every ``stride`` pixels
    (:func:`padded_patches`, as the official code), kept when the *input* patch has at least
    ``v_threshold`` pixels with HSV Value above ``v_min`` (:func:`hsv_value_select`; None keeps
    all); then, for each size in ``larger_sizes`` (001: 512 / 768 / 1024), windows of that size
    with stride ``size / 2`` resized down to ``img_size`` (:func:`multi_scale_patches`, not
    filtered, as the official code), at most ``max_larger_per_image`` per size. Input and target
    are cut at the same places.

    Args:
        pairs: ``[(name, input, target), ...]``: HWC arrays (float [0, 1] or uint8) or image
            paths (read in the worker with :func:`labkit.io.read_image`, so only names travel
            between processes).
        img_size, stride: base patch size and stride in pixels (001: 256 / 128).
        v_threshold, v_min: the selection (see :func:`hsv_value_select`).
        larger_sizes: sizes (>= img_size) resized down to ``img_size``.
        max_larger_per_image: cap per size and image (drawn with ``seed``), or None.
        process_num: worker processes (``concurrent.futures.ProcessPoolExecutor``); 1 runs in
            this process. Results are in ``pairs`` order and identical whatever the number. The
            pairs reach the workers once, through the pool's initializer (no copy with the 'fork'
            start method); each image's patches come back as one ``.npy`` file per side in a
            temporary folder (under ``/dev/shm`` where it exists, removed afterwards), not through
            the result pipe: 2 workers then cost ~1.15x the serial CPU time instead of ~1.6x.
        seed: seeds the subsampling of larger patches (per image: ``[seed, index]``).
        save_dir: None returns the patches in memory; a folder writes them as PNG files to
            ``save_dir/input/`` and ``save_dir/label/`` (names ``{name}_{size}_{y}_{x}.png``,
            pairable by :class:`labkit.data.datasets.PairedFolderDataset`) and returns stems.

    Returns:
        dict with ``lq`` and ``gt`` (arrays ``(N, img_size, img_size, C)``; absent with
        ``save_dir``) or ``files`` (stems), ``boxes`` (``(name, y, x, size)`` of every patch,
        in order), ``scores`` (the HSV bright-pixel count of every base window, all images
        concatenated, for histograms), ``n_base`` (base windows before selection) and
        ``n_selected`` (base windows kept).

    Raises:
        ValueError: ``process_num < 1``, bad sizes, input/target of different shapes (named).
        TypeError: a malformed pair.
    """
    if int(process_num) < 1:
        raise ValueError(f"process_num must be >= 1, got {process_num}")
    if any(int(s) < img_size for s in larger_sizes):
        raise ValueError(f"larger_sizes {tuple(larger_sizes)} must all be >= img_size {img_size}")
    if stride < 1 or stride > img_size:
        raise ValueError(f"need 1 <= stride <= img_size, got stride={stride}, img_size={img_size}")
    settings = (int(img_size), int(stride), v_threshold, float(v_min), tuple(int(s) for s in larger_sizes),
                max_larger_per_image, int(seed), None if save_dir is None else str(save_dir))
    pairs = list(pairs)
    if not pairs:
        raise ValueError("make_patch_pairs: no pairs given")
    workers = min(int(process_num), len(pairs))
    if workers == 1:
        results = [_patch_pair(i, item, *settings) for i, item in enumerate(pairs)]
    else:
        import tempfile
        from concurrent.futures import ProcessPoolExecutor

        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        with tempfile.TemporaryDirectory(prefix="labkit_patches_", dir=shm) as spool, \
                ProcessPoolExecutor(max_workers=workers, initializer=_init_patch_worker,
                                    initargs=(pairs, settings)) as pool:
            results = list(pool.map(_patch_pair_in_worker, range(len(pairs)), [spool] * len(pairs)))
            for r in results:
                for side in ("lq", "gt"):
                    if side in r:
                        r[side] = np.load(r[side], mmap_mode="r")
            out = _merge_patch_results(results, img_size, save_dir)
        return out
    return _merge_patch_results(results, img_size, save_dir)


def _merge_patch_results(results: list[dict], img_size: int, save_dir: str | None) -> dict:
    out: dict = {
        "boxes": [(r["name"], y, x, s) for r in results for (y, x, s) in r["boxes"]],
        "scores": np.concatenate([r["scores"] for r in results]),
        "n_base": int(sum(r["n_base"] for r in results)),
        "n_selected": int(sum(sum(1 for b in r["boxes"] if b[2] == img_size) for r in results)),
    }
    if save_dir is None:
        if not any(len(r["lq"]) for r in results):
            raise ValueError("make_patch_pairs: no patch passed the selection; lower v_threshold")
        out["lq"] = np.concatenate([r["lq"] for r in results if len(r["lq"])])
        out["gt"] = np.concatenate([r["gt"] for r in results if len(r["gt"])])
    else:
        out["files"] = [f for r in results for f in r["files"]]
    return out
