"""Synthetic lens flare (write-up 001, notebook 04): the lab's stand-in for the flare contest's inputs.

:func:`add_flare` adds a documented light-scatter model (source, veiling glow, streaks, ghosts) to a
photo in approximately linear light (:data:`FLARE_GAMMA`). The real data (the LG flare contest,
Flare7K; data/README.md, sections "LG flare contest" and "Flare7K") is read by :mod:`labkit.data.flare`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.data.degrade import check_dtype

__all__ = ["FLARE_GAMMA", "add_flare"]


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
    check_dtype(img)
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
