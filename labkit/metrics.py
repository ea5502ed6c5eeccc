"""Image-quality metrics with the conventions of the SR / restoration papers.

Convention (BasicSR ``basicsr/metrics/psnr_ssim.py``, which reproduces the MATLAB evaluation
scripts of the SR papers, e.g. EDSR's and SwinIR's):

* images are compared as 8-bit pictures: values on the [0,255] scale, float inputs in [0,1]
  clipped, multiplied by 255 and *rounded* first (what BasicSR's ``tensor2img`` does before
  saving/measuring), so a number equals the one measured on the saved PNG;
* ``crop_border`` pixels are removed from every edge (SR papers use crop = scale);
* optionally only the luma is compared: MATLAB ``rgb2ycbcr`` (ITU-R BT.601, *studio swing*)
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with RGB in [0,1], so Y lies in [16, 235]; it is not
  rounded (BasicSR keeps it in float);
* PSNR: MSE in float64, ``10 log10(255^2 / MSE)``, averaged per image (never one pooled MSE);
* SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  L = 255, 'valid' filtering (no padding), mean of the SSIM map, per RGB channel then averaged
  (or on Y).

Full-range luma (0.299 R + 0.587 G + 0.114 B on [0,255], e.g. kornia's ``rgb_to_grayscale``) gives
PSNR values exactly ``20 log10(255/219) = 1.32 dB`` lower than studio-swing Y; always say which
convention a number uses. Restoration papers (SIDD, GoPro) report RGB PSNR with no crop.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.ndimage import correlate1d
from skimage.filters import sobel

__all__ = [
    "psnr", "ssim", "rgb_to_y", "psnr_tensor", "gradient_energy_ratio", "masked_ssim", "histogram_similarity",
    "gaussian_window_1d", "ssim_channels", "prepare_pair", "mask_hw",
]

# MATLAB rgb2ycbcr / BT.601 studio-swing luma, for RGB in [0,1] -> Y on the [0,255] scale.
_Y_COEFFS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0


# ----------------------------------------------------------------------------------------------
# input normalisation
# ----------------------------------------------------------------------------------------------


def _to_levels(img: Any, name: str) -> np.ndarray:
    """Any supported image -> float64 array (N, H, W, C) of 8-bit levels (integers in [0,255]).

    numpy HW / HWC (uint8, or float in [0,1]); torch HW / CHW / NCHW (uint8, or float in [0,1]).
    Float values are clipped to [0,1], scaled by 255 and rounded half-to-even (numpy/torch round).
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 2:
            t = t[None, None]
        elif t.ndim == 3:
            t = t[None]
        elif t.ndim != 4:
            raise ValueError(f"{name}: expected a torch tensor HW, CHW or NCHW, got shape {tuple(img.shape)}")
        arr = t.permute(0, 2, 3, 1).to(torch.float64 if t.dtype.is_floating_point else t.dtype).numpy()
    elif isinstance(img, np.ndarray):
        if img.ndim == 2:
            arr = img[None, :, :, None]
        elif img.ndim == 3:
            arr = img[None]
        else:
            raise ValueError(f"{name}: expected a numpy array HW or HWC, got shape {img.shape}")
    else:
        raise TypeError(f"{name}: expected a numpy array or a torch tensor, got {type(img).__name__}")

    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        return np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0)
    raise TypeError(f"{name}: expected uint8 [0,255] or float [0,1] values, got dtype {arr.dtype}")


def prepare_pair(img1: Any, img2: Any, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """The checks and conversion every metric shares: two images (see :func:`psnr`) -> two (N, H, W, C) float64
    arrays of 8-bit levels (C = 1 with ``y_channel``), ``crop_border`` px removed on each edge.

    Raises:
        ValueError: a bad ``crop_border``, different shapes, a crop larger than the image. TypeError: see :func:`psnr`.
    """
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border: expected an integer >= 0, got {crop_border!r}")
    a = _to_levels(img1, "img1")
    b = _to_levels(img2, "img2")
    if a.shape != b.shape:
        raise ValueError(
            f"img1 and img2 must have the same shape, got {tuple(img1.shape)} and {tuple(img2.shape)}"
        )
    if crop_border:
        h, w = a.shape[1:3]
        if 2 * crop_border >= h or 2 * crop_border >= w:
            raise ValueError(f"crop_border={crop_border} leaves nothing of an image of size {h}x{w}")
        a = a[:, crop_border:-crop_border, crop_border:-crop_border]
        b = b[:, crop_border:-crop_border, crop_border:-crop_border]
    if y_channel and a.shape[-1] != 1:
        if a.shape[-1] != 3:
            raise ValueError(f"y_channel=True needs RGB images (3 channels), got {a.shape[-1]} channels")
        a = _levels_to_y(a)[..., None]
        b = _levels_to_y(b)[..., None]
    return a, b


def _levels_to_y(levels: np.ndarray) -> np.ndarray:
    """RGB levels on [0,255] (..., 3) -> studio-swing Y on [16,235], float64 (..., )."""
    return levels @ (_Y_COEFFS / 255.0) + _Y_OFFSET


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma of an RGB image, ITU-R BT.601 studio swing (MATLAB ``rgb2ycbcr``, BasicSR ``rgb2ycbcr``).

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0,1]; the result is on the 0-255
    scale, in [16, 235] for inputs in range. Computed in float64 and not rounded (as BasicSR's
    ``to_y_channel``); float inputs are taken as they are (not clipped or quantised).

    Args:
        img: numpy HWC RGB, float in [0,1] or uint8 in [0,255].

    Returns:
        float64 array HW on the [0,255] scale.

    Raises:
        TypeError: not a numpy array, or neither float nor uint8.
        ValueError: not HWC with 3 channels.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"img: expected a numpy array, got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img: expected an HWC RGB array with 3 channels, got shape {img.shape}")
    if img.dtype == np.uint8:
        return _levels_to_y(img.astype(np.float64))
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float64) @ _Y_COEFFS + _Y_OFFSET
    raise TypeError(f"img: expected uint8 or float values, got dtype {img.dtype}")


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------


def psnr(img1: Any, img2: Any, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB, BasicSR / MATLAB convention (``calculate_psnr``).

    ``10 log10(255^2 / MSE)`` with the MSE in float64 on 8-bit levels; see the module docstring
    for the full convention (float inputs rounded to 8 bits first, crop on every edge, studio-swing
    Y). For a batch the per-image PSNRs are averaged.

    Args:
        img1, img2: the same kind of image each: numpy HW/HWC uint8 [0,255] or float [0,1], or
            torch HW/CHW/NCHW uint8 or float [0,1] (gradients are ignored). numpy and torch inputs
            may be mixed; their canonical (H, W, C) shapes must agree.
        crop_border: pixels removed from each of the four edges before measuring (SR: = scale).
        y_channel: compare only the BT.601 studio-swing luma (needs 3-channel RGB; a grayscale
            input is compared as it is).

    Returns:
        PSNR in dB as a Python float; ``float('inf')`` for identical images.

    Raises:
        ValueError: different shapes (both are named), a bad ``crop_border`` (negative, or larger
            than the image), ``y_channel`` with a channel count other than 1 or 3, a bad ndim.
        TypeError: not numpy/torch, or a dtype other than uint8/float.
    """
    a, b = prepare_pair(img1, img2, crop_border, y_channel)
    values = []
    for x, y in zip(a, b):
        mse = float(np.mean((x - y) ** 2))
        values.append(float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse))
    return float(np.mean(values))


def psnr_tensor(
    pred: torch.Tensor, target: torch.Tensor, *, crop_border: int = 0, y_channel: bool = False
) -> torch.Tensor:
    """Fast PSNR (dB) for validation loops: torch, on the tensors' device, without gradients.

    Same convention as :func:`psnr` (crop on every edge, studio-swing Y ``16 + 65.481 R +
    128.553 G + 24.966 B``, ``10 log10(255^2 / MSE)`` per image, then the batch mean) except that
    it **skips the 8-bit rounding**: values are clipped to [0,1] and scaled by 255 but not rounded,
    and it computes in float32 (Apple MPS has no float64). It can therefore differ from
    :func:`psnr` by a few hundredths of a dB; report final numbers with :func:`psnr`.

    Args:
        pred, target: float tensors CHW or NCHW in [0,1], same shape.
        crop_border: pixels removed from every edge.
        y_channel: compare the luma only (needs 3 channels).

    Returns:
        A 0-d float32 tensor on the input's device (``inf`` if an image is identical).

    Raises:
        TypeError: not float tensors.
        ValueError: different shapes, ndim other than 3/4, a bad ``crop_border``, ``y_channel``
            without 3 channels.
    """
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a float torch tensor, got {type(t).__name__}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name}: expected a float torch tensor in [0,1], got dtype {t.dtype}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.ndim not in (3, 4):
        raise ValueError(f"pred: expected CHW or NCHW, got shape {tuple(pred.shape)}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border: expected an integer >= 0, got {crop_border!r}")
    with torch.no_grad():
        x = pred.detach().float()
        y = target.detach().float()
        if x.ndim == 3:
            x, y = x[None], y[None]
        if crop_border:
            h, w = x.shape[-2:]
            if 2 * crop_border >= h or 2 * crop_border >= w:
                raise ValueError(f"crop_border={crop_border} leaves nothing of an image of size {h}x{w}")
            x = x[..., crop_border:-crop_border, crop_border:-crop_border]
            y = y[..., crop_border:-crop_border, crop_border:-crop_border]
        x = x.clamp(0, 1)
        y = y.clamp(0, 1)
        if y_channel:
            if x.shape[1] != 3:
                raise ValueError(f"y_channel=True needs 3 channels, got {x.shape[1]}")
            coeffs = torch.tensor(_Y_COEFFS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * coeffs).sum(1, keepdim=True) + _Y_OFFSET
            y = (y * coeffs).sum(1, keepdim=True) + _Y_OFFSET
        else:
            x = x * 255.0
            y = y * 255.0
        mse = ((x - y) ** 2).flatten(1).mean(dim=1)
        return (10.0 * torch.log10(255.0**2 / mse)).mean()


# ----------------------------------------------------------------------------------------------
# SSIM
# ----------------------------------------------------------------------------------------------


def gaussian_window_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian taps (the same values as OpenCV ``getGaussianKernel(11, 1.5)``): SSIM's window."""
    r = (size - 1) / 2.0
    t = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(t**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of (H, W, C) with ``outer(g, g)`` -> (H-k+1, W-k+1, C)."""
    r = g.size // 2
    # Filter the full image (the boundary mode only touches the rim), then keep the 'valid' part.
    x = correlate1d(correlate1d(x, g, axis=0), g, axis=1)
    return x[r:-r, r:-r]


def ssim_channels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each channel of two (H, W, C) float64 level arrays -> (C,) (BasicSR ``_ssim``).

    The core of :func:`ssim`; :mod:`labkit.evaluate` calls it strip by strip on 4K images.
    """
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    g = gaussian_window_1d()
    mu1 = _filter_valid(a, g)
    mu2 = _filter_valid(b, g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, g) - mu1_sq
    sigma2_sq = _filter_valid(b * b, g) - mu2_sq
    sigma12 = _filter_valid(a * b, g) - mu12
    ssim_map = ((2 * mu12 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean(axis=(0, 1))


def ssim(img1: Any, img2: Any, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity, BasicSR / MATLAB convention (``calculate_ssim`` / ``_ssim``).

    Wang et al., "Image quality assessment: from error visibility to structural similarity", TIP
    2004, as the SR papers evaluate it: 8-bit levels (float inputs rounded first), an 11x11
    Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering (the 5-pixel
    rim where the window does not fit is not scored), the mean of the SSIM map per channel, then
    the mean over RGB channels (or on the studio-swing Y with ``y_channel``). For a batch the
    per-image values are averaged. Equals scikit-image's ``structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``.

    Args:
        img1, img2: as :func:`psnr`.
        crop_border: pixels removed from every edge first.
        y_channel: compare the luma only.

    Returns:
        SSIM as a Python float (1.0 for identical images).

    Raises:
        ValueError: as :func:`psnr`, or an image smaller than 11x11 after cropping.
        TypeError: as :func:`psnr`.
    """
    a, b = prepare_pair(img1, img2, crop_border, y_channel)
    h, w = a.shape[1:3]
    if h < 11 or w < 11:
        raise ValueError(f"ssim needs images of at least 11x11 after cropping, got {h}x{w}")
    return float(np.mean([ssim_channels(x, y).mean() for x, y in zip(a, b)]))


def gradient_energy_ratio(img: Any, ref: Any, *, crop_border: int = 0) -> float:
    """Edge energy of ``img`` relative to ``ref``: mean Sobel gradient magnitude on Y, img / ref.

    A simple full-reference sharpness measure for the perception-distortion lesson (Blau &
    Michaeli, CVPR 2018): 1.0 means as much edge/texture energy as the reference, below 1 means
    smoother (bicubic, PSNR-optimised networks, which average plausible textures), above 1 means
    more edges than the reference (GAN-hallucinated or over-sharpened texture). It is not a
    perceptual-quality metric such as LPIPS (that needs downloaded network weights); it measures
    only how much high-frequency content there is, which is what the trade-off moves.

    Args:
        img, ref: same conventions as :func:`psnr` (uint8 or float [0,1] HWC RGB, or tensors).
        crop_border: pixels removed on every edge before measuring.

    Returns:
        The ratio (float, >= 0).

    Raises:
        ValueError: shapes differ, or ``ref`` has no gradient at all (a constant image).
    """
    a, b = prepare_pair(img, ref, crop_border, y_channel=True)  # (N, H, W, 1) Y levels
    ga = float(np.mean([sobel(x[..., 0]).mean() for x in a]))
    gb = float(np.mean([sobel(x[..., 0]).mean() for x in b]))
    if gb <= 1e-9:
        raise ValueError("gradient_energy_ratio: the reference image is constant (no gradient)")
    return ga / gb


# ----------------------------------------------------------------------------------------------
# inpainting / colorization (notebook 06, write-up 002)
# ----------------------------------------------------------------------------------------------


def mask_hw(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    """A mask (numpy HW / HW1, torch HW / 1HW / 11HW; nonzero or > 0.5 = inside) -> bool (H, W).

    Raises:
        TypeError: neither numpy nor torch. ValueError: not a single-channel mask of size ``shape``.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask: expected a numpy array or a torch tensor, got {type(mask).__name__}")
    m = np.squeeze(mask)
    if m.ndim != 2 or m.shape != tuple(shape):
        raise ValueError(f"mask: expected a single-channel mask of size {tuple(shape)}, got shape {mask.shape}")
    return m > 0.5 if m.dtype.kind == "f" else m.astype(bool)


def masked_ssim(img1: Any, img2: Any, mask: Any, *, y_channel: bool = False) -> float:
    """SSIM restricted to a region: the mean of the SSIM map over the pixels where ``mask`` is set.

    The SSIM map is :func:`ssim`'s (8-bit levels, 11x11 Gaussian window, sigma 1.5, 'valid'
    filtering, per RGB channel then averaged, or on Y): a map value belongs to the centre pixel of
    its window, so the mask is cropped by the window's 5-pixel rim. Used for the missing regions
    of an inpainting task (write-up 002: "SSIM inside the mask"); every window that touches the
    region sees some of its surroundings, which is what makes the fill's fit to its context count.

    Args:
        img1, img2: single images as :func:`ssim` (HWC numpy / CHW torch, uint8 or float [0, 1]).
        mask: (H, W) numpy or torch (also HW1 / 1HW / 11HW); True / nonzero / > 0.5 marks the region.
        y_channel: compare the luma only.

    Returns: a Python float in [-1, 1] (1.0 for identical images).

    Raises:
        ValueError: shapes differ, a batch of several images, a mask of another size, or a mask
            with no pixel inside the scored area (names which).
    """
    a, b = prepare_pair(img1, img2, 0, y_channel)
    if a.shape[0] != 1:
        raise ValueError(f"masked_ssim: expected single images, got a batch of {a.shape[0]}")
    h, w = a.shape[1:3]
    if h < 11 or w < 11:
        raise ValueError(f"masked_ssim needs images of at least 11x11, got {h}x{w}")
    m = mask_hw(mask, (h, w))[5:-5, 5:-5]
    if not m.any():
        raise ValueError("masked_ssim: the mask has no pixel at least 5 px from the border (nothing to score)")
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    g = gaussian_window_1d()
    x, y = a[0], b[0]
    mu1, mu2 = _filter_valid(x, g), _filter_valid(y, g)
    s1 = _filter_valid(x * x, g) - mu1**2
    s2 = _filter_valid(y * y, g) - mu2**2
    s12 = _filter_valid(x * y, g) - mu1 * mu2
    smap = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(smap[m].mean())


def histogram_similarity(img1: Any, img2: Any, *, bins: int = 256) -> float:
    """Colour-histogram similarity: the correlation of the per-channel histograms, RGB averaged.

    Each channel's histogram (``bins`` equal bins over the 8-bit levels 0..255, float inputs
    rounded as in :func:`psnr`) of ``img1`` is compared with ``img2``'s by Pearson correlation,
    OpenCV's ``compareHist(..., HISTCMP_CORREL)``; the result is the mean over the channels. It is
    1.0 for identical colour distributions whatever the pixel positions, and it is what punishes
    a colorization that leaves a photo gray (its three channel histograms coincide). A pair of
    perfectly flat histograms (no variance) counts as 1.0 if they are equal, else 0.0.

    Args:
        img1, img2: single images as :func:`ssim` (same shape).
        bins: number of bins per channel (2..256).

    Returns: a Python float in [-1, 1].

    Raises:
        ValueError: different shapes, a batch, or a bad ``bins``.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 2 <= bins <= 256:
        raise ValueError(f"bins: expected an int in 2..256, got {bins!r}")
    a, b = prepare_pair(img1, img2, 0, False)
    if a.shape[0] != 1:
        raise ValueError(f"histogram_similarity: expected single images, got a batch of {a.shape[0]}")
    scores = []
    for ch in range(a.shape[-1]):
        h1 = np.histogram(a[0, ..., ch], bins=bins, range=(0, 256))[0].astype(np.float64)
        h2 = np.histogram(b[0, ..., ch], bins=bins, range=(0, 256))[0].astype(np.float64)
        d1, d2 = h1 - h1.mean(), h2 - h2.mean()
        den = math.sqrt(float((d1 * d1).sum() * (d2 * d2).sum()))
        scores.append(float((d1 * d2).sum() / den) if den > 0 else float(np.array_equal(h1, h2)))
    return float(np.mean(scores))
