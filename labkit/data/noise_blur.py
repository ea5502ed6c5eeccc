"""Synthetic camera noise and motion blur (write-up 004, notebook 05) for the bundled photos.

- :func:`poisson_gaussian_noise`: signal-dependent Poisson-Gaussian noise (a stand-in for SIDD);
- :func:`trajectory_kernel` + :func:`motion_blur`: random camera-shake kernels and their blur (a
  stand-in for GoPro).

Use them with :class:`labkit.data.pairing.DegradedCropDataset`. The real data is read by
:mod:`labkit.data.sidd` and :mod:`labkit.data.gopro`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["poisson_gaussian_noise", "trajectory_kernel", "motion_blur"]


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int, a numpy Generator or None, got {type(seed).__name__}")
    return np.random.default_rng(seed)


def _float_image(img: Any, name: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be an HW or HWC image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 [0,255] or float [0,1], got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def poisson_gaussian_noise(
    img: Any, *, shot_noise: float = 0.01, read_noise: float = 0.02, seed: Any = None
) -> np.ndarray:
    """Signal-dependent camera noise, the Poisson-Gaussian model (Foi et al., IEEE TIP 2008).

    Each pixel value ``x`` in [0, 1] becomes ``shot_noise * Poisson(x / shot_noise) + N(0, read_noise^2)``,
    clipped to [0, 1]: photon (shot) noise whose variance grows with brightness (``shot_noise * x``) plus
    signal-independent read noise. Real sensor noise as in SIDD is of this kind before the camera's
    processing (demosaicing, tone curve), which also correlates it spatially; this simple model is
    independent per pixel and channel.

    Args:
        img: HW or HWC image, uint8 [0, 255] or float [0, 1].
        shot_noise: ``a``, the Poisson scale (gain per photo-electron, in [0, 1] units); 0 turns it off.
        read_noise: ``b``, the standard deviation of the Gaussian part (in [0, 1] units); 0 turns it off.
        seed: int, numpy Generator or None (fresh entropy). The same seed gives the same noise.

    Returns: float32 array of the image's shape in [0, 1].

    Raises:
        ValueError: a negative ``shot_noise`` / ``read_noise`` or a bad image shape.
        TypeError: an unsupported dtype or seed.
    """
    x = np.clip(_float_image(img, "img"), 0.0, 1.0)
    if not shot_noise >= 0 or not read_noise >= 0:
        raise ValueError(f"shot_noise and read_noise must be >= 0, got {shot_noise!r} and {read_noise!r}")
    rng = _rng(seed)
    y = x.astype(np.float64)
    if shot_noise > 0:
        y = rng.poisson(y / shot_noise) * shot_noise
    if read_noise > 0:
        y = y + rng.normal(0.0, read_noise, size=x.shape)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def trajectory_kernel(
    size: int = 21, *, length: float | None = None, anxiety: float = 0.005, samples: int = 2000, seed: Any = None
) -> np.ndarray:
    """A motion-blur kernel from a random camera trajectory (after Boracchi & Foi, IEEE TIP 2012).

    The camera moves at constant speed during the exposure while its heading drifts smoothly
    (a Gaussian random walk of the angle whose total standard deviation, the curviness, is drawn in
    [0, 3] rad) and, with probability ``anxiety`` per sample, turns abruptly by 90 to 180 degrees
    (a shake). The path is scaled to ``length`` pixels, centred, and rasterised onto a
    ``size x size`` grid with bilinear weights (the fraction of the exposure spent at each offset),
    then normalised to sum to 1.

    Args:
        size: odd kernel side in pixels (>= 3).
        length: path length in pixels (default: a random value in [size/3, 0.9 (size - 1)]); the
            kernel's extent is at most this, less when the path curls.
        anxiety: probability per sample of an abrupt shake (camera-shake intensity).
        samples: trajectory samples (the exposure's time resolution).
        seed: int, numpy Generator or None (fresh entropy). The same seed gives the same kernel.

    Returns: float32 (size, size) kernel, non-negative, sum 1.

    Raises:
        ValueError: an even or too small ``size``, ``length`` not in (0, size - 1], bad ``samples``
            or ``anxiety``.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 3, got {size!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"samples must be an int >= 2, got {samples!r}")
    if not 0.0 <= anxiety <= 1.0:
        raise ValueError(f"anxiety must be in [0, 1], got {anxiety!r}")
    rng = _rng(seed)
    if length is None:
        length = float(rng.uniform(size / 3, 0.9 * (size - 1)))
    if not 0 < length <= size - 1:
        raise ValueError(f"length must be in (0, size - 1] = (0, {size - 1}], got {length!r}")
    curviness = rng.uniform(0.0, 3.0)
    turns = rng.normal(0.0, curviness / np.sqrt(samples), size=samples - 1)
    shakes = rng.uniform(size=samples - 1) < anxiety
    turns[shakes] += rng.choice([-1.0, 1.0], size=int(shakes.sum())) * rng.uniform(np.pi / 2, np.pi, size=int(shakes.sum()))
    heading = rng.uniform(0, 2 * np.pi) + np.concatenate([[0.0], np.cumsum(turns)])
    step = length / (samples - 1)
    pts = np.zeros((samples, 2))
    pts[1:, 0] = np.cumsum(step * np.sin(heading[:-1]))
    pts[1:, 1] = np.cumsum(step * np.cos(heading[:-1]))
    pts = pts - (pts.max(0) + pts.min(0)) / 2 + (size - 1) / 2  # centre the path in the kernel
    kernel = np.zeros((size, size), dtype=np.float64)
    y0, x0 = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    fy, fx = pts[:, 0] - y0, pts[:, 1] - x0
    for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
        yy, xx = np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)
        np.add.at(kernel, (yy, xx), w)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(img: Any, kernel: Any) -> np.ndarray:
    """Convolve an image with a blur kernel (e.g. :func:`trajectory_kernel`), reflect-101 borders.

    A spatially uniform blur: the camera moves, the scene does not. GoPro's blurred frames average
    successive sharp video frames, so they also contain object motion and depth-dependent blur
    (Nah et al., CVPR 2017); this is the simpler camera-shake model.

    Args:
        img: HW or HWC image, uint8 [0, 255] or float [0, 1].
        kernel: 2-D non-negative kernel summing to 1 (it is renormalised), odd sides.

    Returns: float32 array of the image's shape in [0, 1].

    Raises:
        ValueError: a kernel that is not 2-D with odd sides, negative, or sums to 0.
    """
    import cv2  # local: OpenCV is slow to import; keeps `import labkit` light

    x = _float_image(img, "img")
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd sides, got shape {k.shape}")
    if (k < 0).any() or k.sum() <= 0:
        raise ValueError("kernel must be non-negative with a positive sum")
    k = (k / k.sum()).astype(np.float32)
    out = cv2.filter2D(np.ascontiguousarray(x), -1, k, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(out.reshape(x.shape), 0.0, 1.0).astype(np.float32)
