"""Lab 04's in-region metrics (labkit.metrics, issue 20): the flare mask, PSNR inside it, the grid-seam error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labkit import metrics, region_metrics
from labkit.data import flare_synth


def _photo(h: int = 64, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0.1, 0.6, size=(h, w, 3)).astype(np.float32)


def test_flare_mask_thresholds_the_layers_largest_channel():
    layer = np.zeros((4, 5, 3), np.float32)
    layer[1, 2] = (0.0, 0.05, 0.0)     # one channel over the threshold is enough
    layer[3, 4] = (0.02, 0.02, 0.02)   # under it
    m = region_metrics.flare_mask(layer, threshold=0.03)
    assert m.dtype == bool and m.shape == (4, 5)
    assert m[1, 2] and m.sum() == 1
    assert region_metrics.flare_mask(layer[..., 1], threshold=0.03).sum() == 1   # HW works too


def test_flare_mask_of_a_synthetic_flare_covers_the_source_and_not_the_whole_frame():
    im = _photo(96, 128)
    flared, layer = flare_synth.add_flare(im, 3, position=(0.5, 0.5), veil=0.0)
    m = region_metrics.flare_mask(layer)
    assert m[48, 64]                                  # the source
    assert 0 < m.mean() < 1
    # outside the mask the flare changed the photo by little, inside by much more
    diff = np.abs(flared - im).max(axis=-1)
    assert diff[m].mean() > 2 * diff[~m].mean()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_flare_mask_rejects_bad_thresholds(bad):
    with pytest.raises(ValueError, match="threshold"):
        region_metrics.flare_mask(np.zeros((4, 4, 3), np.float32), threshold=bad)


def test_flare_mask_rejects_bad_inputs():
    with pytest.raises(TypeError):
        region_metrics.flare_mask([[0.0]])
    with pytest.raises(ValueError, match="HW"):
        region_metrics.flare_mask(np.zeros((1, 4, 4, 3), np.float32))


def test_masked_psnr_on_a_flare_region_counts_only_the_region():
    a = _photo()
    b = a.copy()
    mask = np.zeros(a.shape[:2], bool)
    mask[10:20, 10:30] = True
    b[~mask] = 0.0                                    # damage outside only
    assert region_metrics.masked_psnr(b, a, mask) == float("inf")
    c = a.copy()
    c[mask] = np.clip(c[mask] + 10 / 255, 0, 1)      # +10 levels inside
    ref = 10 * math.log10(255.0**2 / 100.0)
    assert region_metrics.masked_psnr(c, a, mask) == pytest.approx(ref, abs=0.05)
    # whole-image PSNR over an all-True mask equals metrics.psnr
    full = np.ones(a.shape[:2], bool)
    assert region_metrics.masked_psnr(c, a, full) == pytest.approx(metrics.psnr(c, a), abs=1e-9)


def test_masked_psnr_on_a_flare_region_accepts_torch_and_uint8():
    a = _photo()
    b = np.clip(a + 0.02, 0, 1)
    mask = np.zeros(a.shape[:2], np.float32)
    mask[5:40, 5:40] = 1.0
    v = region_metrics.masked_psnr(b, a, mask)
    u8 = lambda x: np.round(x * 255).astype(np.uint8)   # noqa: E731
    assert region_metrics.masked_psnr(u8(b), u8(a), mask > 0) == pytest.approx(v)
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)   # noqa: E731
    assert region_metrics.masked_psnr(t(b), t(a), torch.from_numpy(mask)) == pytest.approx(v)


def test_masked_psnr_on_a_flare_region_errors():
    a = _photo()
    with pytest.raises(ValueError, match="empty"):
        region_metrics.masked_psnr(a, a, np.zeros(a.shape[:2], bool))
    with pytest.raises(ValueError, match="mask"):
        region_metrics.masked_psnr(a, a, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="same shape"):
        region_metrics.masked_psnr(a, a[:10], np.ones(a.shape[:2], bool))


def test_grid_seam_error_sees_a_grid_and_not_a_uniform_error():
    ref = _photo(96, 96)
    uniform = np.clip(ref + 4 / 255, 0, 1)
    u = region_metrics.grid_seam_error(uniform, ref, 24)
    assert u["border"] == pytest.approx(u["interior"]) and u["seam"] == pytest.approx(0, abs=1e-9)
    seams = ref.copy()
    for k in (24, 48, 72):                            # a bright line at every window border
        seams[k, :] = np.clip(seams[k, :] + 20 / 255, 0, 1)
        seams[:, k] = np.clip(seams[:, k] + 20 / 255, 0, 1)
    s = region_metrics.grid_seam_error(seams, ref, 24)
    assert s["interior"] == 0 and s["border"] > 5 and s["seam"] == s["border"]
    # the same lines off the grid do not count as seams of a 32 px grid: error at 24/48/72 lies in its interior
    o = region_metrics.grid_seam_error(seams, ref, 32)
    assert o["interior"] > 0


def test_grid_seam_error_band_geometry():
    ref = np.zeros((40, 40, 3), np.float32)
    img = ref.copy()
    img[19, 5] = img[20, 5] = 1.0                     # width 1: rows 19 and 20 are the band of the line at 20
    img[30, 30] = 1.0                                 # interior
    s = region_metrics.grid_seam_error(img, ref, 20)
    band_pixels = 2 * 40 * 2 - 4                      # rows 19,20 and cols 19,20 (the 2x2 overlap once)
    assert s["border"] == pytest.approx(2 * 255 / band_pixels)
    assert s["interior"] == pytest.approx(255 / (40 * 40 - band_pixels))


@pytest.mark.parametrize("period,width", [(2, 1), (0, 1), (10, 0), (True, 1)])
def test_grid_seam_error_rejects_bad_grids(period, width):
    a = _photo()
    with pytest.raises(ValueError):
        region_metrics.grid_seam_error(a, a, period, width=width)


def test_grid_seam_error_needs_a_grid_line():
    a = _photo(16, 16)
    with pytest.raises(ValueError, match="no grid line"):
        region_metrics.grid_seam_error(a, a, 40)
