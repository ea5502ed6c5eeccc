"""Patch selection for training: which patches to cut from a photo, and at which scale.

Images follow :mod:`labkit.data.tiling`'s conventions (numpy HW / HWC, float32 in [0, 1] or uint8;
positions ``(y, x)``, sizes in pixels). No dataset layout on disk is involved.

What comes from which write-up:

- 001 (HINet flare removal, official ``make_patch.py``): patches kept when enough pixels are bright
  in HSV Value (:func:`hsv_value_select`, :data:`V_MIN_001`); larger 512 px patches resized down to
  the training size (:func:`resize_down`, :func:`multi_scale_patches`, :func:`patches_from_boxes`
  for the target image).
- 004 (NAFNet, SIDD/GoPro): original + horizontal flip + vertical flip, each split 2 x 2
  (:func:`flips_x3`, :func:`split_2x2`, :func:`x12_patches`), and a random 512 crop before the
  2 x 2 split (:func:`random_crop`).

The whole 001 ``make_patch`` step (pairs -> patch files) is :func:`labkit.data.patch_export.make_patch_pairs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labkit.data.tiling import IntPair, check_image, grid_split, int_pair, window_starts

__all__ = [
    "V_MIN_001",
    "hsv_value_select",
    "resize_down",
    "multi_scale_patches",
    "patches_from_boxes",
    "split_2x2",
    "flips_x3",
    "x12_patches",
    "random_crop",
]


#: 001's brightness level: the official ``make_patch.py`` counts pixels whose 8-bit HSV Value
#: (OpenCV, V = max(B, G, R)) is ``> 200``. On float images in [0, 1] that is ``V > 200.5 / 255``:
#: halfway between the 8-bit levels 200 and 201, so images decoded from 8-bit files give exactly
#: the official count without float ties at 200/255.
V_MIN_001: float = 200.5 / 255.0


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


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
    from skimage.transform import resize  # local: skimage.transform is slow to import; keeps `import labkit` light

    patch = check_image(patch, "patch")
    oh, ow = int_pair(size, "size")
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
    img = check_image(img)
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
    img = check_image(img)
    h, w = img.shape[:2]
    out = []
    for y, x, size in boxes:
        if y < 0 or x < 0 or y + size > h or x + size > w:
            raise ValueError(f"box {(y, x, size)} lies outside the image of shape {img.shape}")
        out.append(resize_down(img[y:y + size, x:x + size], out_size))
    return np.stack(out)


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
    img = check_image(img)
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
        check_image(im, f"img[{i}]")
    hw = {im.shape[:2] for im in images}
    if len(hw) != 1:
        raise ValueError(f"random_crop: images must share height and width, got {sorted(hw)}")
    h, w = images[0].shape[:2]
    ch, cw = int_pair(size, "size")
    if ch > h or cw > w:
        raise ValueError(f"random_crop: crop {(ch, cw)} is larger than the image {(h, w)}")
    generator = _as_rng(rng)
    y = int(generator.integers(0, h - ch + 1))
    x = int(generator.integers(0, w - cw + 1))
    crops = tuple(im[y:y + ch, x:x + cw].copy() for im in images)
    return crops if isinstance(img, (list, tuple)) else crops[0]
