"""Degradations: MATLAB-equivalent bicubic resizing (the SR degradation), mod-crop, grayscale.

The super-resolution benchmarks (DIV2K, Set5, Set14, B100, Urban100) and the official SR models
trained on them (EDSR, ESRGAN/RRDB, SwinIR) make their low-resolution inputs with MATLAB's
``imresize(img, 1/scale, 'bicubic')``: Keys' cubic kernel with a = -0.5, widened by ``1/scale``
when downscaling (antialiasing), MATLAB's pixel-centre index mapping and symmetric (mirror)
boundary handling. :func:`imresize` re-implements that algorithm (MATLAB ``imresize.m``, its
functions ``contributions`` and ``cubic``; BasicSR ports it as ``basicsr/utils/matlab_functions.py``)
from its published description, in numpy float64.

Other resizers are *different degradations*: ``torch.nn.functional.interpolate(mode='bicubic')``
uses a = -0.75 and no antialiasing by default; with ``antialias=True`` it uses a = -0.5 and the
widened kernel but renormalises at the borders instead of mirroring, so it agrees with MATLAB in
the interior (to float32 rounding) and differs by up to ~0.05 (about 12 levels) in the outer
two output pixels. A model evaluated on inputs made by a
different resizer loses a fraction of a dB (see REFERENCE.md, "Metric conventions").

Image conventions (see CONVENTIONS.md): numpy images are HW or HWC (float in [0,1], or uint8 in
[0,255]); torch images are HW, CHW or NCHW.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

__all__ = [
    "imresize", "bicubic_downsample", "bicubic_upsample", "crop_to_multiple", "to_grayscale", "MASK_KINDS",
    "random_mask", "inpainting_input", "mask_from_pair", "add_flare", "poisson_gaussian_noise",
    "trajectory_kernel", "motion_blur",
]


# ----------------------------------------------------------------------------------------------
# MATLAB imresize (bicubic)
# ----------------------------------------------------------------------------------------------


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (Keys 1981; MATLAB ``cubic``).

    ``f(t) = 1.5|t|^3 - 2.5|t|^2 + 1`` for ``|t| <= 1``, ``-0.5|t|^3 + 2.5|t|^2 - 4|t| + 2`` for
    ``1 < |t| <= 2`` and 0 beyond. It interpolates (f(0) = 1, f(+-1) = f(+-2) = 0) and reproduces
    polynomials up to degree 2 on a unit grid.
    """
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return inner + outer


def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """1-D resampling weights and source indices, as MATLAB's ``contributions``.

    Returns ``(weights, indices)``, both of shape ``(out_len, P)``: output pixel ``i`` (0-based) is
    ``sum_p weights[i, p] * input[indices[i, p]]``. Indices are 0-based and already folded back
    into ``[0, in_len)`` by symmetric reflection (the edge pixel repeated: ..., 1, 0, 0, 1, ...).
    """
    if scale < 1.0 and antialias:
        # Stretch the kernel by 1/scale: interpolation and low-pass filtering in one kernel.
        kernel_width = 4.0 / scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)

    else:
        kernel_width = 4.0
        kernel = _cubic

    # MATLAB's 1-based output coordinates and the inverse map: output pixel centre x maps to
    # input coordinate u so that 0.5 -> 0.5 and 0.5 + scale -> 1.5 (pixel edges line up).
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Symmetric boundary: MATLAB indexes aux = [1..n, n..1] with mod(idx - 1, 2n).
    period = 2 * in_len
    folded = np.mod(idx.astype(np.int64) - 1, period)
    folded = np.where(folded >= in_len, period - 1 - folded, folded)

    # Drop taps that are zero for every output pixel (MATLAB does the same; saves work).
    keep = np.any(weights != 0.0, axis=0)
    return weights[:, keep], folded[:, keep]


def _resize_axis_numpy(x: np.ndarray, weights: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    """Apply 1-D weights along ``axis`` of a float64 array (separable pass)."""
    x = np.moveaxis(x, axis, 0)
    shape = (weights.shape[0],) + (1,) * (x.ndim - 1)
    out = np.zeros((weights.shape[0],) + x.shape[1:], dtype=np.float64)
    for p in range(weights.shape[1]):
        out += weights[:, p].reshape(shape) * x[indices[:, p]]
    return np.moveaxis(out, 0, axis)


def _resize_axis_torch(
    x: torch.Tensor, weights: np.ndarray, indices: np.ndarray, dim: int
) -> torch.Tensor:
    """Torch version of :func:`_resize_axis_numpy` (keeps device, dtype and autograd)."""
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    idx = torch.as_tensor(indices, dtype=torch.long, device=x.device)
    dim = dim % x.ndim
    shape = [1] * x.ndim
    shape[dim] = weights.shape[0]
    out = None
    for p in range(weights.shape[1]):
        term = w[:, p].reshape(shape) * x.index_select(dim, idx[:, p])
        out = term if out is None else out + term
    assert out is not None
    return out


def _spatial_axes(img: Any) -> tuple[int, int]:
    """(height axis, width axis) for a numpy HW/HWC array or a torch HW/CHW/NCHW tensor."""
    if isinstance(img, torch.Tensor):
        if img.ndim not in (2, 3, 4):
            raise ValueError(
                f"img: expected a torch tensor HW, CHW or NCHW, got shape {tuple(img.shape)}"
            )
        return img.ndim - 2, img.ndim - 1
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"img: expected a numpy array HW or HWC, got shape {img.shape}")
        return 0, 1
    raise TypeError(f"img: expected a numpy array or a torch tensor, got {type(img).__name__}")


def _check_dtype(img: np.ndarray | torch.Tensor) -> None:
    if isinstance(img, torch.Tensor):
        ok = img.dtype.is_floating_point or img.dtype == torch.uint8
    else:
        ok = np.issubdtype(img.dtype, np.floating) or img.dtype == np.uint8
    if not ok:
        raise TypeError(f"img: expected a float or uint8 image, got dtype {img.dtype}")


def imresize(
    img: np.ndarray | torch.Tensor,
    scale: float | None = None,
    *,
    output_shape: Sequence[int] | None = None,
    antialias: bool = True,
) -> np.ndarray | torch.Tensor:
    """Resize like MATLAB ``imresize(img, scale, 'bicubic')`` (or ``imresize(img, [h w])``).

    Algorithm (MATLAB ``imresize.m``; also ported in BasicSR ``basicsr/utils/matlab_functions.py``):
    Keys' cubic kernel with a = -0.5; when shrinking (scale < 1) and ``antialias`` the kernel is
    widened to ``scale * cubic(scale * t)`` (support ``4 / scale`` input pixels); output pixel
    ``x`` (1-based) samples input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``; weights are
    normalised to sum to 1; indices outside the image are mirrored (symmetric padding). The two
    axes are resized separably, the axis with the smaller scale first (as MATLAB).

    Args:
        img: numpy HW or HWC (float, any range; or uint8 [0,255]), or a torch tensor HW, CHW or
            NCHW (float or uint8). Only the two spatial axes are resized.
        scale: one factor for both axes (> 0); the output size is ``ceil(scale * size)`` as in
            MATLAB. Give exactly one of ``scale`` and ``output_shape``.
        output_shape: ``(out_h, out_w)`` in pixels; each axis then uses ``out / in`` as its scale.
        antialias: widen the kernel when shrinking (MATLAB's default ``'Antialiasing', true``).

    Returns:
        The same kind of object: numpy float input -> float32 (computed in float64, *not* clipped:
        bicubic overshoot may leave [0,1]); numpy uint8 -> uint8, rounded and clipped once at the
        end; torch float -> the input's dtype/device (differentiable, computed in at least float32);
        torch uint8 -> uint8.

    Raises:
        ValueError: both or neither of ``scale``/``output_shape``, a non-positive or non-finite
            scale, a bad ``output_shape``, a bad number of dimensions, or an empty result.
        TypeError: not a numpy array / torch tensor, or a dtype other than float/uint8.
    """
    h_axis, w_axis = _spatial_axes(img)
    _check_dtype(img)
    in_h, in_w = int(img.shape[h_axis]), int(img.shape[w_axis])
    if in_h == 0 or in_w == 0:
        raise ValueError(f"img: cannot resize an empty image of shape {tuple(img.shape)}")

    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of `scale` and `output_shape`")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise ValueError(f"scale: expected a positive number, got {scale!r}")
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale: must be a finite number > 0, got {scale!r}")
        out_h, out_w = math.ceil(scale * in_h), math.ceil(scale * in_w)
        scales = (scale, scale)
    else:
        try:
            out_h, out_w = (int(v) for v in output_shape)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(
                f"output_shape: expected (out_h, out_w) as two positive ints, got {output_shape!r}"
            ) from None
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"output_shape: both sizes must be > 0, got {output_shape!r}")
        scales = (out_h / in_h, out_w / in_w)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"imresize: scale {scale} gives an empty output from shape {tuple(img.shape)}")

    passes = [
        (h_axis, in_h, out_h, scales[0]),
        (w_axis, in_w, out_w, scales[1]),
    ]
    passes.sort(key=lambda p: p[3])  # MATLAB: the dimension with the smallest scale first (stable)

    if isinstance(img, torch.Tensor):
        is_uint8 = img.dtype == torch.uint8
        work_dtype = torch.float32 if (is_uint8 or img.dtype in (torch.float16, torch.bfloat16)) else img.dtype
        x_t = img.to(work_dtype)
        for axis, n_in, n_out, s in passes:
            w, idx = _contributions(n_in, n_out, s, antialias)
            x_t = _resize_axis_torch(x_t, w, idx, axis)
        if is_uint8:
            return x_t.round().clamp(0, 255).to(torch.uint8)
        return x_t.to(img.dtype)

    is_uint8 = img.dtype == np.uint8
    x = img.astype(np.float64)
    for axis, n_in, n_out, s in passes:
        w, idx = _contributions(n_in, n_out, s, antialias)
        x = _resize_axis_numpy(x, w, idx, axis)
    if is_uint8:
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# SR degradations
# ----------------------------------------------------------------------------------------------


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale: expected an integer >= 1, got {scale!r}")
    return int(scale)


def bicubic_downsample(img: np.ndarray | torch.Tensor, scale: int) -> np.ndarray | torch.Tensor:
    """Shrink by an integer factor exactly as MATLAB ``imresize(img, 1/scale, 'bicubic')``.

    This is the "BI" degradation of the SR benchmarks: DIV2K's official LR images and the training
    pairs of EDSR, ESRGAN/RRDB and SwinIR (classical SR) were made this way (Keys cubic a = -0.5
    with antialiasing). See :func:`imresize` for the algorithm.

    Args:
        img: numpy HW/HWC (float [0,1] or uint8) or torch HW/CHW/NCHW; H and W divisible by scale.
        scale: integer factor >= 1 (2, 3, 4 ...).

    Returns:
        The same kind and dtype rules as :func:`imresize`, spatial size ``(H / scale, W / scale)``.

    Raises:
        ValueError: ``scale`` not an integer >= 1, or H or W not divisible by ``scale`` (crop the
            ground truth first with :func:`crop_to_multiple`, as BasicSR's ``mod_crop``).
    """
    scale = _check_scale(scale)
    h_axis, w_axis = _spatial_axes(img)
    h, w = int(img.shape[h_axis]), int(img.shape[w_axis])
    if h % scale or w % scale:
        raise ValueError(
            f"bicubic_downsample: image of shape {tuple(img.shape)} (H={h}, W={w}) is not divisible "
            f"by scale {scale}; crop it first with crop_to_multiple(img, {scale})"
        )
    # output_shape gives per-axis scale (H/s)/H = 1/s exactly, without floating ceil surprises.
    return imresize(img, output_shape=(h // scale, w // scale))


def bicubic_upsample(img: np.ndarray | torch.Tensor, scale: int) -> np.ndarray | torch.Tensor:
    """Enlarge by an integer factor as MATLAB ``imresize(img, scale, 'bicubic')``.

    The "Bicubic" row of SR result tables (e.g. Set5 x4: 28.42 dB on Y) is this upsampling of the
    :func:`bicubic_downsample` output, measured against the ground truth.

    Args:
        img: numpy HW/HWC (float [0,1] or uint8) or torch HW/CHW/NCHW.
        scale: integer factor >= 1.

    Returns:
        Same kind/dtype rules as :func:`imresize`, spatial size ``(H * scale, W * scale)``.

    Raises:
        ValueError: ``scale`` not an integer >= 1.
    """
    scale = _check_scale(scale)
    h_axis, w_axis = _spatial_axes(img)
    h, w = int(img.shape[h_axis]), int(img.shape[w_axis])
    return imresize(img, output_shape=(h * scale, w * scale))


def crop_to_multiple(img: np.ndarray | torch.Tensor, scale: int) -> np.ndarray | torch.Tensor:
    """Crop the bottom/right so that H and W are multiples of ``scale`` (BasicSR ``mod_crop``).

    Args:
        img: numpy HW/HWC or torch HW/CHW/NCHW, any dtype.
        scale: integer >= 1.

    Returns:
        A view (numpy) / slice (torch) of shape ``(H - H % scale, W - W % scale)`` spatially.

    Raises:
        ValueError: ``scale`` not an integer >= 1, or the image is smaller than ``scale``.
    """
    scale = _check_scale(scale)
    h_axis, w_axis = _spatial_axes(img)
    h, w = int(img.shape[h_axis]), int(img.shape[w_axis])
    new_h, new_w = h - h % scale, w - w % scale
    if new_h == 0 or new_w == 0:
        raise ValueError(
            f"crop_to_multiple: image of shape {tuple(img.shape)} is smaller than scale {scale}"
        )
    if h_axis == 0:
        return img[:new_h, :new_w]
    return img[..., :new_h, :new_w]


def to_grayscale(img: np.ndarray | torch.Tensor, *, keep_channels: bool = True) -> np.ndarray | torch.Tensor:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (full range, as PIL ``convert('L')``/OpenCV).

    Args:
        img: numpy HWC RGB (float [0,1] or uint8) or torch CHW/NCHW RGB (float or uint8).
        keep_channels: True -> the luma replicated to 3 channels (same shape as the input, handy
            as a colorization input for RGB models); False -> numpy HW / torch 1HW or N1HW.

    Returns:
        Same kind and dtype as the input (uint8 rounded); float stays in the input's range.

    Raises:
        ValueError: the channel axis does not hold 3 channels.
        TypeError: not a numpy array / torch tensor, or not float/uint8.
    """
    coeffs = (0.299, 0.587, 0.114)
    if not isinstance(img, (np.ndarray, torch.Tensor)):
        raise TypeError(f"img: expected a numpy array or a torch tensor, got {type(img).__name__}")
    _check_dtype(img)
    if isinstance(img, torch.Tensor):
        if img.ndim not in (3, 4) or img.shape[-3] != 3:
            raise ValueError(f"img: expected a torch tensor CHW/NCHW with 3 channels, got {tuple(img.shape)}")
        x = img.to(torch.float32) if img.dtype in (torch.uint8, torch.float16, torch.bfloat16) else img
        r, g, b = x.unbind(dim=-3)
        y = (coeffs[0] * r + coeffs[1] * g + coeffs[2] * b).unsqueeze(-3)
        if keep_channels:
            y = y.expand_as(x).contiguous()
        return y.round().clamp(0, 255).to(torch.uint8) if img.dtype == torch.uint8 else y.to(img.dtype)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img: expected a numpy HWC array with 3 channels, got shape {img.shape}")
    y = img.astype(np.float64) @ np.asarray(coeffs)
    if keep_channels:
        y = np.repeat(y[..., None], 3, axis=2)
    if img.dtype == np.uint8:
        return np.clip(np.round(y), 0, 255).astype(np.uint8)
    return y.astype(img.dtype)


# ----------------------------------------------------------------------------------------------
# Inpainting masks and inputs (notebook 06, write-up 002)
# ----------------------------------------------------------------------------------------------

MASK_KINDS = ("strokes", "boxes")


def _stroke(mask: np.ndarray, rng: np.random.Generator, target: int) -> None:
    """Draw one free-form stroke (a thick random polyline) until ``target`` pixels are covered."""
    from skimage.draw import disk

    h, w = mask.shape
    side = min(h, w)
    radius = float(rng.uniform(max(1.5, side / 48), max(2.5, side / 16)))
    r, c = float(rng.uniform(0, h)), float(rng.uniform(0, w))
    angle = float(rng.uniform(0, 2 * np.pi))
    for _ in range(int(rng.integers(3, 9))):
        angle += float(rng.uniform(-np.pi / 2, np.pi / 2))
        length = float(rng.uniform(side / 12, side / 4))
        steps = max(1, int(length / max(1.0, radius / 2)))
        for _ in range(steps):
            r = float(np.clip(r + np.sin(angle) * length / steps, 0, h - 1))
            c = float(np.clip(c + np.cos(angle) * length / steps, 0, w - 1))
            rr, cc = disk((r, c), radius, shape=mask.shape)
            mask[rr, cc] = True
            if mask.sum() >= target:
                return


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


def inpainting_input(img: np.ndarray, mask: np.ndarray, *, fill: float = 0.0, with_mask: bool = True) -> np.ndarray:
    """The 002 task's input: the grayscale photo with the masked pixels replaced by ``fill``.

    Args:
        img: HWC RGB numpy image (uint8, or float in [0, 1]).
        mask: bool / {0, 1} array (H, W), True = missing.
        fill: the value of the missing pixels in the grayscale channel, in [0, 1].
        with_mask: append the mask as a second channel (the generator's ``num_in_ch=2`` input).

    Returns: float32 (H, W, 2) ``[gray, mask]`` or (H, W, 1), values in [0, 1]. Gray is BT.601
    full-range luma (:func:`to_grayscale`).

    Raises: ValueError: a mask of another size, ``fill`` outside [0, 1]; as :func:`to_grayscale`.
    """
    if not 0.0 <= fill <= 1.0:
        raise ValueError(f"inpainting_input: fill must be in [0, 1], got {fill!r}")
    gray = to_grayscale(np.asarray(img), keep_channels=False)
    gray = gray.astype(np.float32) / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    m = np.asarray(mask)
    if m.shape != gray.shape:
        raise ValueError(f"inpainting_input: mask of shape {m.shape} does not fit the image of size {gray.shape}")
    m = m.astype(bool)
    gray = np.where(m, np.float32(fill), gray)
    chans = [gray, m.astype(np.float32)] if with_mask else [gray]
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
    from scipy import ndimage

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


# 001: light scatter (lens flare), a documented synthetic generator
# ----------------------------------------------------------------------------------------------

#: Display gamma used to go between sRGB-encoded images and (approximately) linear light.
FLARE_GAMMA = 2.2


def _flare_range(value: Any, name: str) -> tuple[float, float]:
    if isinstance(value, (int, float, np.integer, np.floating)):
        lo = hi = float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}") from None
    if not (0.0 <= lo <= hi) or not math.isfinite(hi):
        raise ValueError(f"{name} must satisfy 0 <= low <= high, got {value!r}")
    return lo, hi


def add_flare(
    img: np.ndarray,
    rng: np.random.Generator | int | None = None,
    *,
    strength: float | tuple[float, float] = (0.3, 0.8),
    position: tuple[float, float] | None = None,
    source_radius: float | tuple[float, float] = (0.01, 0.025),
    glow_radius: float | tuple[float, float] = (0.08, 0.2),
    num_streaks: int | tuple[int, int] = (4, 8),
    num_ghosts: int | tuple[int, int] = (2, 5),
    veil: float | tuple[float, float] = (0.0, 0.004),
) -> tuple[np.ndarray, np.ndarray]:
    """Add a synthetic light-scatter (lens flare) to a photo; the lab's stand-in for 001's inputs.

    Physical model (in approximately linear light, ``sRGB ** 2.2``): a bright light source in the
    scene scatters inside the lens, and the sensor records ``scene + flare`` then saturates
    (clip at 1) before the camera encodes to sRGB again (``** (1/2.2)``). The flare layer is a sum
    of, each tinted by the source's colour (warm white to slightly blue, random):

    - **source**: a saturating core, ``A * exp(-(r / r_s)^2)`` with ``A >> 1`` (clips to white);
    - **veiling glow**: the scattered light's wide point-spread tail, ``a / (1 + (r / r_g)^2)^1.5``,
      plus an optional uniform **veil** (scattered light spread over the whole frame, lowering
      contrast everywhere);
    - **streaks**: thin rays through the source at random angles (diffraction by the aperture
      blades / scratches), ``exp(-d_perp / w) * exp(-d_along / L)``;
    - **ghosts**: inter-reflections between lens elements, soft disks of random size and tint
      placed on the line from the source through the image centre (the optical axis), on both
      sides of it, weaker than the glow.

    Sizes are fractions of the image diagonal, so the look does not depend on resolution. This
    is in the spirit of Flare7K (Dai et al., NeurIPS 2022), which adds real/simulated flare
    layers to clean photos in linear space; the DACON contest of write-up 001 photographed
    real scenes with and without the flare.

    Args:
        img: HWC RGB image, float in [0, 1] or uint8.
        rng: numpy Generator, int seed or None; the same seed gives the same flare.
        strength: overall flare amplitude (glow amplitude in linear light), number or
            ``(low, high)`` range drawn uniformly. ~1 is a strong flare.
        position: ``(y, x)`` of the source as fractions of height/width in [0, 1], or None
            (uniform over the frame).
        source_radius, glow_radius: radius of the source core and of the glow, fractions of the
            diagonal (number or range).
        num_streaks, num_ghosts: how many streaks / ghosts (int or inclusive ``(low, high)``).
        veil: uniform veiling-glare level in linear light (number or range).

    Returns:
        ``(flared, flare_layer)``: ``flared`` in img's dtype and range (float32 in [0, 1] for
        float input), the same shape as ``img``; ``flare_layer``, float32 HWC >= 0, the added
        light in linear units (before the clip) - handy for masks and statistics.

    Raises:
        ValueError: an image that is not HWC RGB, or bad ranges (named).
        TypeError: an unsupported dtype.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"img: expected a numpy array, got {type(img).__name__}")
    _check_dtype(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img: expected an HWC RGB array, got shape {img.shape}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    s_lo, s_hi = _flare_range(strength, "strength")
    rs_lo, rs_hi = _flare_range(source_radius, "source_radius")
    rg_lo, rg_hi = _flare_range(glow_radius, "glow_radius")
    v_lo, v_hi = _flare_range(veil, "veil")
    ns_lo, ns_hi = (int(num_streaks), int(num_streaks)) if np.isscalar(num_streaks) else map(int, num_streaks)
    ng_lo, ng_hi = (int(num_ghosts), int(num_ghosts)) if np.isscalar(num_ghosts) else map(int, num_ghosts)
    if not (0 <= ns_lo <= ns_hi) or not (0 <= ng_lo <= ng_hi):
        raise ValueError(f"num_streaks / num_ghosts must be >= 0 with low <= high, got {num_streaks}, {num_ghosts}")
    if position is not None:
        py, px = (float(v) for v in position)
        if not (0.0 <= py <= 1.0 and 0.0 <= px <= 1.0):
            raise ValueError(f"position must be (y, x) fractions in [0, 1], got {position!r}")
    else:
        py, px = gen.uniform(0.05, 0.95, size=2)

    h, w = img.shape[:2]
    diag = math.hypot(h, w)
    cy, cx = py * (h - 1), px * (w - 1)
    amp = gen.uniform(s_lo, s_hi)
    r_s = gen.uniform(rs_lo, rs_hi) * diag
    r_g = gen.uniform(rg_lo, rg_hi) * diag
    # the source's colour: warm white (street lamps) to cool white (LEDs), never saturated
    warmth = gen.uniform(-1.0, 1.0)
    tint = np.array([1.0 + 0.15 * warmth, 1.0, 1.0 - 0.2 * warmth], dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    r2 = dy * dy + dx * dx

    mono = 20.0 * np.exp(-r2 / (r_s * r_s))                          # source core, saturates
    mono += amp * (1.0 + r2 / (r_g * r_g)) ** -1.5                    # veiling glow (PSF tail)
    mono += gen.uniform(v_lo, v_hi)                                   # uniform veil
    for _ in range(int(gen.integers(ns_lo, ns_hi + 1))):              # streaks
        theta = gen.uniform(0.0, math.pi)
        c, s = math.cos(theta), math.sin(theta)
        perp = np.abs(dx * s - dy * c)
        along = np.abs(dx * c + dy * s)
        width = gen.uniform(0.6, 2.0) * max(1.0, diag / 1000.0)
        length = gen.uniform(0.1, 0.35) * diag
        mono += amp * gen.uniform(0.3, 0.8) * np.exp(-perp / width) * np.exp(-along / length)
    layer = mono[..., None] * tint

    ay, ax = (h - 1) / 2.0, (w - 1) / 2.0                             # optical axis
    for _ in range(int(gen.integers(ng_lo, ng_hi + 1))):              # ghosts
        t = gen.choice([-1.0, 1.0]) * gen.uniform(0.2, 1.2)
        gy, gx = ay + t * (cy - ay) * -1.0, ax + t * (cx - ax) * -1.0
        radius = gen.uniform(0.02, 0.08) * diag
        dist = np.sqrt((yy - gy) ** 2 + (xx - gx) ** 2)
        disk = 1.0 / (1.0 + np.exp((dist - radius) / (0.15 * radius)))  # soft-edged disk
        ghost_tint = gen.uniform(0.3, 1.0, size=3).astype(np.float32)
        layer += (amp * gen.uniform(0.05, 0.2)) * disk[..., None] * ghost_tint
    layer = layer.astype(np.float32)

    is_uint8 = img.dtype == np.uint8
    base = img.astype(np.float32) / 255.0 if is_uint8 else np.clip(img.astype(np.float32), 0.0, 1.0)
    linear = base ** FLARE_GAMMA + layer
    flared = np.clip(linear, 0.0, 1.0) ** (1.0 / FLARE_GAMMA)
    if is_uint8:
        return np.round(flared * 255.0).astype(np.uint8), layer
    return flared.astype(np.float32), layer
# 004 (NAFNet): realistic synthetic noise and motion blur for the bundled photos
# ----------------------------------------------------------------------------------------------


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
    import cv2

    x = _float_image(img, "img")
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd sides, got shape {k.shape}")
    if (k < 0).any() or k.sum() <= 0:
        raise ValueError("kernel must be non-negative with a positive sum")
    k = (k / k.sum()).astype(np.float32)
    out = cv2.filter2D(np.ascontiguousarray(x), -1, k, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(out.reshape(x.shape), 0.0, 1.0).astype(np.float32)
