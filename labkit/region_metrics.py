"""Measures of a restoration where its effect happens, beside the whole-image PSNR/SSIM of :mod:`labkit.metrics`.

A whole-image number is dominated by the pixels a model never had to change (an inpainting's known pixels, a
photo's flare-free part, a blurred photo's flat regions), so each lab also measures the region or the property
its task is about:

- lab 03: :func:`seam_error`, the error at tile borders against the error inside tiles (stitched inference);
- lab 04: :func:`flare_mask` (the synthetic flare's region) with :func:`masked_psnr` inside it, and
  :func:`grid_seam_error` on a patch grid (001's grid artefact);
- lab 05: :func:`edge_sharpness_ratio`, the edges' steepness against the sharp photo's (deblurring);
- lab 06: :func:`masked_psnr` inside the holes, :func:`chroma_error` (CIELAB a*b* distance: the colour), and
  :func:`dacon_inpainting_score`, the competition's own score (write-up 002).

Every function takes the images as :func:`labkit.metrics.psnr` does (numpy HWC / torch CHW, uint8 or float in
[0, 1]) and measures in 8-bit levels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from skimage.filters import sobel

from labkit.metrics import mask_hw, prepare_pair

__all__ = ["seam_error", "grid_seam_error", "FLARE_MASK_THRESHOLD", "flare_mask", "edge_sharpness_ratio",
           "DACON_WEIGHTS", "masked_psnr", "chroma_error", "hue_levels", "dacon_inpainting_score"]

# --- lab 03 (issue 20) ---

def seam_error(pred: Any, ref: Any, rows: list[int] | tuple[int, ...], cols: list[int] | tuple[int, ...], *,
               band: int = 4, margin: int | None = None) -> dict[str, float]:
    """The error at tile borders beside the error inside the tiles: what stitching tiles costs.

    ``border`` is the mean absolute error (all channels, 8-bit levels) over the pixels within ``band`` pixels of
    an interior tile border (a row in ``rows`` or a column in ``cols``: the first row / column of a tile, in the
    images' pixels); ``interior`` the same over every other pixel; ``seam = border - interior`` (0: the borders
    are no worse than the rest; a tiling whose tiles disagree where they meet gives a positive seam). The outer
    ``margin`` pixels of the image (default ``band``) are left out of both (every method errs more at the image's
    own edge).

    Args:
        pred, ref: HWC (or HW) images of the same shape, float in [0, 1] or uint8 (see :func:`psnr`).
        rows, cols: positions of the interior borders, ``0 < p < H`` (rows) and ``0 < p < W`` (cols).
        band: half-width of the border strip in pixels (>= 1); a border at ``p`` covers ``p - band .. p + band - 1``.
        margin: pixels left out at the image's edges (default ``band``; 0 keeps every pixel).

    Returns:
        ``{"border": ..., "interior": ..., "seam": ...}`` in 8-bit levels.

    Raises:
        ValueError: shapes differ, ``band < 1``, a border outside the image, or no border / interior pixels left.

    Source: this course (lab 03, write-up 000's overlapping test patches "to remove border artifacts").
    """
    a, b = prepare_pair(pred, ref, 0, False)
    if band < 1:
        raise ValueError(f"band must be >= 1, got {band}")
    h, w = a.shape[1:3]
    for name, ps, n in (("rows", rows, h), ("cols", cols, w)):
        bad = [p for p in ps if not 0 < int(p) < n]
        if bad:
            raise ValueError(f"{name} {bad} are not interior borders of an image of {h}x{w}")
    near = np.zeros((h, w), dtype=bool)
    for p in rows:
        near[max(0, int(p) - band):int(p) + band, :] = True
    for p in cols:
        near[:, max(0, int(p) - band):int(p) + band] = True
    edge = band if margin is None else int(margin)
    inside = np.zeros((h, w), dtype=bool)
    inside[edge:h - edge, edge:w - edge] = True
    err = np.abs(a - b).mean(axis=(0, -1))   # (N, H, W, C) levels -> (H, W)
    border, interior = near & inside, ~near & inside
    if not border.any() or not interior.any():
        raise ValueError(f"no {'border' if not border.any() else 'interior'} pixels left with band={band} on {h}x{w}")
    e_border, e_interior = float(err[border].mean()), float(err[interior].mean())
    return {"border": e_border, "interior": e_interior, "seam": e_border - e_interior}


# --- lab 04 (issue 20) ---
#: Default threshold of :func:`flare_mask`: linear-light flare added to a pixel (0.1 of full scale; on a
#: mid-gray pixel, sRGB 0.5, it adds about 24 of 255 levels after the camera's encoding).
FLARE_MASK_THRESHOLD = 0.1


def flare_mask(layer: Any, threshold: float = FLARE_MASK_THRESHOLD) -> np.ndarray:
    """The flare region of a synthetic flare: the pixels where the flare layer adds more than ``threshold``.

    ``layer`` is the second value of :func:`labkit.data.flare_synth.add_flare` (the light added in linear
    units, before the clip); a pixel is inside when its largest channel exceeds ``threshold`` (linear light,
    full scale 1). The default :data:`FLARE_MASK_THRESHOLD` (0.1) keeps the source, the glow's inner part and
    the strong streaks (on lab 04's held-out photos 11 to 38 % of the frame), and leaves out the glow's faint
    far tail and the uniform veil (at most 0.004).

    Args:
        layer: numpy (H, W, C) or (H, W) float >= 0.
        threshold: linear-light level (> 0).

    Returns: bool array (H, W).

    Raises:
        TypeError: not a numpy array. ValueError: a bad shape or a threshold <= 0 (or not finite).
    """
    if not isinstance(layer, np.ndarray):
        raise TypeError(f"layer: expected a numpy array, got {type(layer).__name__}")
    if layer.ndim not in (2, 3):
        raise ValueError(f"layer: expected HW or HWC, got shape {layer.shape}")
    if not (isinstance(threshold, (int, float, np.floating)) and math.isfinite(float(threshold)) and threshold > 0):
        raise ValueError(f"threshold: expected a finite number > 0, got {threshold!r}")
    peak = layer.max(axis=-1) if layer.ndim == 3 else layer
    return np.asarray(peak > float(threshold))


def grid_seam_error(img: Any, ref: Any, period: int, *, width: int = 1) -> dict[str, float]:
    """The error on the lines of a patch grid against the error elsewhere: the grid artefact of patch inference.

    Patch inference with windows every ``period`` px (lab 04: the stride) puts window borders on the rows
    and columns ``k * period`` (k >= 1, inside the image). The error image ``|img - ref|`` (8-bit levels,
    averaged over the channels) is averaged over the bands of ``width`` px on each side of those lines
    (``border``) and over the other pixels (``interior``); a grid of visible seams makes ``border`` larger
    than ``interior`` (write-up 001 trained on larger windows resized down against it).

    Args:
        img, ref: single images as :func:`psnr` (same shape).
        period: the grid's spacing in px (>= 2 * width + 1).
        width: the band's half width in px (>= 1).

    Returns: :func:`seam_error`'s ``{"border", "interior", "seam"}`` over the grid's lines (every pixel counted),
    in 8-bit levels.

    Raises:
        ValueError: shapes differ, a batch, a bad ``period`` / ``width``, or an image without a grid line
            (smaller than ``period + width``).
    """
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width: expected an int >= 1, got {width!r}")
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 2 * width + 1:
        raise ValueError(f"period: expected an int >= 2 * width + 1 = {2 * width + 1}, got {period!r}")
    a, _ = prepare_pair(img, ref, 0, False)
    if a.shape[0] != 1:
        raise ValueError(f"grid_seam_error: expected single images, got a batch of {a.shape[0]}")
    h, w = a.shape[1:3]
    rows, cols = list(range(period, h, period)), list(range(period, w, period))
    if not rows and not cols:
        raise ValueError(f"grid_seam_error: an image of {h}x{w} has no grid line every {period} px")
    return seam_error(img, ref, rows, cols, band=width, margin=0)


# --- lab 05 (issue 20) ---


def edge_sharpness_ratio(img: Any, ref: Any, *, edge_fraction: float = 0.1, crop_border: int = 0) -> float:
    """Edge sharpness of ``img`` relative to ``ref``, measured at ``ref``'s edges: a ratio, 1.0 = as sharp as ``ref``.

    The mean Sobel gradient magnitude of ``img``'s luma on the pixels where ``ref``'s own gradient is in its
    top ``edge_fraction`` (the reference's edges; a pixel without gradient never counts), divided by ``ref``'s mean gradient on the same pixels.
    Blur spreads an edge over more pixels and lowers its slope there, so a blurred image scores below 1, a
    deblurred one moves back towards 1, and over-sharpening (or ringing) lifts it above 1. Unlike a
    whole-image measure it is not diluted by flat regions, where blur changes nothing. The gradient is the
    Tenengrad focus measure's (Sobel magnitude; Tenenbaum 1970, Krotkov, IJCV 1987; a gradient-based
    sharpness measure compared in Pertuz et al., Pattern Recognition 2013), taken as a full-reference ratio.
    Noise adds gradient too: compare outputs whose noise is alike (e.g. deblurring outputs), beside PSNR.

    Args:
        img, ref: same conventions as :func:`psnr`: single images, uint8 [0, 255] or float [0, 1], HWC RGB
            or HW gray (or torch CHW / 1CHW); the luma is BT.601 studio swing (:func:`rgb_to_y`).
        edge_fraction: the share of ``ref``'s pixels counted as edges, in (0, 1]; 1.0 counts every pixel
            with a gradient. (At 1.0 a monotone edge spread by blur keeps its summed slope: the measure needs
            the edge pixels alone.)
        crop_border: pixels removed on every edge before measuring.

    Returns:
        The ratio (a Python float, >= 0; 1.0 for identical images).

    Raises:
        ValueError: shapes differ, a batch of several images, ``edge_fraction`` outside (0, 1], or ``ref``
            without any gradient (a constant image).
    """
    if isinstance(edge_fraction, bool) or not isinstance(edge_fraction, (int, float)) or not 0 < edge_fraction <= 1:
        raise ValueError(f"edge_fraction: expected a number in (0, 1], got {edge_fraction!r}")
    a, b = prepare_pair(img, ref, crop_border, y_channel=True)  # (N, H, W, 1) Y levels
    if a.shape[0] != 1:
        raise ValueError(f"edge_sharpness_ratio: expected single images, got a batch of {a.shape[0]}")
    ga, gb = sobel(a[0, ..., 0]), sobel(b[0, ..., 0])
    if float(gb.max()) <= 1e-9:
        raise ValueError("edge_sharpness_ratio: the reference image is constant (no edges)")
    edges = (gb >= np.quantile(gb, 1.0 - edge_fraction)) & (gb > 0)   # flat pixels are never edges
    return float(ga[edges].mean() / gb[edges].mean())


# --- lab 06 (issue 20) ---
# Measures of an inpainting + colorization result where the task happens (the holes, the colour), and the
# DACON competition's own score (write-up 002).

#: DACON "image colorization and missing-region restoration" (2024): score = 0.2 SSIM (whole) + 0.4 SSIM (masked
#: pixels) + 0.4 hue-histogram similarity (the evaluation code the organisers published with the competition, as
#: reproduced in participants' public repositories; write-up 002 does not state it)
DACON_WEIGHTS = {"SSIM whole": 0.2, "SSIM mask": 0.4, "hist sim": 0.4}


def _single_levels(img1: Any, img2: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two single RGB-or-gray images -> (H, W, C) float64 8-bit levels, same shape (as :func:`psnr`)."""
    a, b = prepare_pair(img1, img2, 0, False)
    if a.shape[0] != 1:
        raise ValueError(f"{name}: expected single images, got a batch of {a.shape[0]}")
    return a[0], b[0]


def masked_psnr(img1: Any, img2: Any, mask: Any, *, y_channel: bool = False) -> float:
    """PSNR in dB over the pixels where ``mask`` is set (e.g. the missing region of an inpainting input).

    :func:`psnr`'s convention (8-bit levels, float inputs rounded, MSE in float64, ``10 log10(255^2 / MSE)``),
    with the MSE averaged over the masked pixels (all channels, or the BT.601 studio-swing Y with
    ``y_channel``) only, so the pixels the model was given do not dilute it.

    Args:
        img1, img2: single images as :func:`psnr` (numpy HW / HWC, torch HW / CHW / 1CHW; uint8 or float [0, 1]).
        mask: (H, W) numpy or torch (also HW1 / 1HW / 11HW); True / nonzero / > 0.5 marks the region.
        y_channel: compare the luma only.

    Returns: a Python float in dB; ``float('inf')`` when the images agree on every masked pixel.

    Raises:
        ValueError: different shapes, a batch, a mask of another size, or an empty mask.
    """
    a, b = prepare_pair(img1, img2, 0, y_channel)
    if a.shape[0] != 1:
        raise ValueError(f"masked_psnr: expected single images, got a batch of {a.shape[0]}")
    m = mask_hw(mask, a.shape[1:3])
    if not m.any():
        raise ValueError("masked_psnr: the mask is empty (nothing to score)")
    mse = float(np.mean((a[0][m] - b[0][m]) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def chroma_error(img1: Any, img2: Any, mask: Any = None) -> float:
    """Mean chroma error: the mean distance between the two images' colours in CIELAB's a*b* plane.

    Both images are taken as 8-bit sRGB (float inputs rounded as in :func:`psnr`), converted with
    ``skimage.color.rgb2lab`` (D65 white), and per pixel ``sqrt((a1 - a2)^2 + (b1 - b2)^2)`` is averaged
    (over the pixels where ``mask`` is set, if given). Lightness L* is left out: the measure sees the colour
    only, so a result with the right luma but no colour (a gray image) scores the target's mean chroma, and
    one with a uniform colour cast scores the cast's size. It is the chroma part of CIE 1976 Delta E*ab.

    Args:
        img1, img2: single RGB images (numpy HWC / torch CHW / 1CHW; uint8 or float [0, 1]), same shape.
        mask: optional (H, W) region (as :func:`masked_psnr`); None: the whole image.

    Returns: a Python float >= 0 in CIELAB units (0.0 for identical colours; about 2.3 is a "just noticeable" step).

    Raises:
        ValueError: different shapes, a batch, images that are not 3-channel RGB, a bad or empty mask.
    """
    from skimage.color import rgb2lab

    a, b = _single_levels(img1, img2, "chroma_error")
    if a.shape[-1] != 3:
        raise ValueError(f"chroma_error needs RGB images (3 channels), got {a.shape[-1]} channels")
    lab1, lab2 = rgb2lab(a / 255.0), rgb2lab(b / 255.0)
    dist = np.sqrt(((lab1[..., 1:] - lab2[..., 1:]) ** 2).sum(-1))
    if mask is not None:
        m = mask_hw(mask, a.shape[:2])
        if not m.any():
            raise ValueError("chroma_error: the mask is empty (nothing to score)")
        dist = dist[m]
    return float(dist.mean())


def _uniform_ssim(x: np.ndarray, y: np.ndarray, data_range: float, win: int = 7) -> float:
    """scikit-image ``structural_similarity`` with its defaults (uniform ``win`` window per axis, sample
    covariance, K1 0.01, K2 0.03, the map cropped by ``(win - 1) // 2``), for one channel of any ndim."""
    from scipy.ndimage import uniform_filter

    np_ = win**x.ndim
    cov_norm = np_ / (np_ - 1)
    ux, uy = uniform_filter(x, win), uniform_filter(y, win)
    vx = cov_norm * (uniform_filter(x * x, win) - ux * ux)
    vy = cov_norm * (uniform_filter(y * y, win) - uy * uy)
    vxy = cov_norm * (uniform_filter(x * y, win) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[tuple(slice(pad, n - pad) for n in s.shape)].mean())


def hue_levels(levels: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit ``cvtColor(RGB2HSV)`` hue, 0..179 (degrees / 2), with its integer arithmetic
    (``hdiv = round(180 * 2^12 / (6 diff))``, ``h = (numerator * hdiv + 2^11) >> 12``, ``+180`` if negative);
    0 for grays."""
    lv = levels.astype(np.int64)
    r, g, b = lv[..., 0], lv[..., 1], lv[..., 2]
    v, mn = lv.max(-1), lv.min(-1)
    diff = v - mn
    hdiv = np.where(diff == 0, 0, np.round((180 << 12) / (6.0 * np.maximum(diff, 1)))).astype(np.int64)
    num = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (num * hdiv + (1 << 11)) >> 12
    return np.where(h < 0, h + 180, h)


def _correlation(h1: np.ndarray, h2: np.ndarray) -> float:
    d1, d2 = h1 - h1.mean(), h2 - h2.mean()
    den = math.sqrt(float((d1 * d1).sum() * (d2 * d2).sum()))
    return float((d1 * d2).sum() / den) if den > 0 else float(np.array_equal(h1, h2))


def dacon_inpainting_score(pred: Any, gt: Any, mask: Any) -> dict[str, float]:
    """The DACON colorization + missing-region restoration competition's score (write-up 002) and its three parts.

    As the organisers' evaluation code computes them, on 8-bit RGB (float inputs rounded as in :func:`psnr`):

    - ``"SSIM whole"``: scikit-image ``structural_similarity(gt, pred, channel_axis=-1, data_range=pred.max() -
      pred.min())``: a uniform 7x7 window per RGB channel, averaged (not :func:`ssim`'s Gaussian BasicSR
      convention; a constant ``pred`` is given ``data_range`` 1 instead of the competition's division by zero);
    - ``"SSIM mask"``: the same function on the masked pixels only, taken out as a list ``(N, 3)`` in raster order
      (so its window runs along that list, 7 consecutive missing pixels at a time; needs N >= 7);
    - ``"hist sim"``: the correlation (OpenCV ``compareHist``, ``HISTCMP_CORREL``) of the 180-bin hue histograms
      (OpenCV 8-bit HSV) of the two whole images;
    - ``"score"``: ``0.2 SSIM whole + 0.4 SSIM mask + 0.4 hist sim`` (:data:`DACON_WEIGHTS`); higher is better,
      1.0 for identical images.

    Source: the competition's evaluation code (DACON, 2024), as used in participants' public repositories;
    the formula is not in write-up 002.

    Args:
        pred, gt: single RGB images (numpy HWC / torch CHW; uint8 or float [0, 1]), same shape, at least 7x7.
        mask: (H, W) region of the missing pixels (as :func:`masked_psnr`), at least 7 pixels.

    Returns: ``{"SSIM whole", "SSIM mask", "hist sim", "score"}``, Python floats.

    Raises:
        ValueError: different shapes, a batch, not RGB, an image under 7x7, a mask of another size or under 7 pixels.
    """
    p, g = _single_levels(pred, gt, "dacon_inpainting_score")
    if p.shape[-1] != 3:
        raise ValueError(f"dacon_inpainting_score needs RGB images (3 channels), got {p.shape[-1]} channels")
    if min(p.shape[:2]) < 7:
        raise ValueError(f"dacon_inpainting_score needs images of at least 7x7, got {p.shape[0]}x{p.shape[1]}")
    m = mask_hw(mask, p.shape[:2])
    if m.sum() < 7:
        raise ValueError(f"dacon_inpainting_score: the mask has {int(m.sum())} pixels, at least 7 are needed")
    dr = float(p.max() - p.min()) or 1.0
    whole = float(np.mean([_uniform_ssim(g[..., c], p[..., c], dr) for c in range(3)]))
    gm, pm = g[m], p[m]
    masked = float(np.mean([_uniform_ssim(gm[:, c], pm[:, c], dr) for c in range(3)]))
    hp = np.bincount(hue_levels(p).astype(np.int64).ravel(), minlength=180).astype(np.float64)
    hg = np.bincount(hue_levels(g).astype(np.int64).ravel(), minlength=180).astype(np.float64)
    hist = _correlation(hg, hp)
    parts = {"SSIM whole": whole, "SSIM mask": masked, "hist sim": hist}
    parts["score"] = float(sum(DACON_WEIGHTS[k] * v for k, v in parts.items()))
    return parts
