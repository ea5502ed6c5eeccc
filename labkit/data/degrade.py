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

Other degradations: inpainting masks (:mod:`labkit.data.masks`), synthetic flare
(:mod:`labkit.data.flare_synth`), camera noise and motion blur (:mod:`labkit.data.noise_blur`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["imresize", "bicubic_downsample", "bicubic_upsample", "crop_to_multiple", "to_grayscale", "check_dtype"]


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


def check_dtype(img: np.ndarray | torch.Tensor) -> None:
    """TypeError unless ``img`` is float or uint8 (numpy or torch): the dtypes the resizers accept."""
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
    check_dtype(img)
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
    check_dtype(img)
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
