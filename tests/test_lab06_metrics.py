"""Lab 06's in-region measures (issue 20): masked PSNR, chroma error, the DACON competition score."""

import math

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb

from labkit import metrics, region_metrics


def _photo(seed=0, h=48, w=64):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def _flat_lab(L, a, b, h=16, w=16):
    """A uniform 8-bit sRGB image of the CIELAB colour (L, a, b)."""
    rgb = lab2rgb(np.array([[[L, a, b]]], dtype=np.float64))[0, 0]
    return np.broadcast_to(np.round(rgb * 255).astype(np.uint8), (h, w, 3)).copy()


def test_masked_psnr_identical_is_inf():
    img = _photo()
    mask = np.zeros(img.shape[:2], bool); mask[5:20, 10:30] = True
    assert region_metrics.masked_psnr(img, img, mask) == math.inf


def test_masked_psnr_only_sees_the_region():
    gt = _photo()
    pred = gt.copy()
    mask = np.zeros(gt.shape[:2], bool); mask[:, :32] = True
    pred[:, 32:] = 0                                  # damage outside the mask: not seen
    assert region_metrics.masked_psnr(pred, gt, mask) == math.inf
    gt2 = np.minimum(gt, 245)
    pred = (gt2.astype(np.int64) + 10 * mask[..., None]).astype(np.uint8)   # +10 inside: MSE 100
    assert region_metrics.masked_psnr(pred, gt2, mask) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)
    assert region_metrics.masked_psnr(pred, gt2, ~mask) == math.inf


def test_masked_psnr_accepts_torch_and_rejects_bad_masks():
    gt = _photo()
    t = torch.from_numpy(gt).permute(2, 0, 1).float() / 255
    mask = np.zeros(gt.shape[:2], bool); mask[3:9, 3:9] = True
    assert region_metrics.masked_psnr(t, gt, torch.from_numpy(mask)[None].float()) == math.inf
    with pytest.raises(ValueError, match="empty"):
        region_metrics.masked_psnr(gt, gt, np.zeros(gt.shape[:2], bool))
    with pytest.raises(ValueError):
        region_metrics.masked_psnr(gt, gt, np.ones((4, 4), bool))


def test_chroma_error_identical_is_zero_and_ignores_lightness():
    img = _photo()
    assert region_metrics.chroma_error(img, img) == 0.0
    gray_dark, gray_light = _flat_lab(30, 0, 0), _flat_lab(80, 0, 0)
    assert region_metrics.chroma_error(gray_dark, gray_light) == pytest.approx(0.0, abs=0.05)


def test_chroma_error_constant_shift_is_known():
    base, shifted = _flat_lab(60, 0, 0), _flat_lab(60, 20, 0)      # a* shifted by 20
    assert region_metrics.chroma_error(shifted, base) == pytest.approx(20.0, abs=0.6)   # 8-bit rounding
    a, b = _flat_lab(60, 10, 10), _flat_lab(60, 10 + 12, 10 - 16)  # (12, -16): distance 20
    assert region_metrics.chroma_error(a, b) == pytest.approx(20.0, abs=0.6)


def test_chroma_error_mask_restricts_the_region():
    gt = _flat_lab(60, 0, 0, 16, 32)
    pred = gt.copy()
    pred[:, 16:] = _flat_lab(60, 30, 0, 16, 16)
    mask = np.zeros((16, 32), bool); mask[:, :16] = True
    assert region_metrics.chroma_error(pred, gt, mask) == 0.0
    inside = region_metrics.chroma_error(pred, gt, ~mask)
    assert inside == pytest.approx(30.0, abs=0.8)
    assert region_metrics.chroma_error(pred, gt) == pytest.approx(inside / 2, rel=1e-9)
    with pytest.raises(ValueError, match="empty"):
        region_metrics.chroma_error(pred, gt, np.zeros((16, 32), bool))
    with pytest.raises(ValueError, match="RGB"):
        region_metrics.chroma_error(gt[..., 0], gt[..., 0])


def test_dacon_score_identical_is_one():
    img = _photo()
    mask = np.zeros(img.shape[:2], bool); mask[10:30, 10:40] = True
    s = region_metrics.dacon_inpainting_score(img, img, mask)
    assert s == pytest.approx({"SSIM whole": 1.0, "SSIM mask": 1.0, "hist sim": 1.0, "score": 1.0})
    assert sum(region_metrics.DACON_WEIGHTS.values()) == pytest.approx(1.0)


def test_dacon_score_matches_scikit_image_and_its_weights():
    from skimage.metrics import structural_similarity
    gt = _photo(1)
    rng = np.random.default_rng(2)
    pred = np.clip(gt.astype(int) + rng.integers(-30, 30, gt.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(gt.shape[:2], bool); mask[8:24, 16:48] = True
    s = region_metrics.dacon_inpainting_score(pred, gt, mask)
    dr = float(pred.max() - pred.min())
    assert s["SSIM whole"] == pytest.approx(structural_similarity(gt, pred, channel_axis=-1, data_range=dr), abs=1e-12)
    assert s["SSIM mask"] == pytest.approx(structural_similarity(gt[mask], pred[mask], channel_axis=-1, data_range=dr), abs=1e-12)
    assert s["score"] == pytest.approx(0.2 * s["SSIM whole"] + 0.4 * s["SSIM mask"] + 0.4 * s["hist sim"])


def test_dacon_hue_is_opencvs():
    cv2 = pytest.importorskip("cv2")
    img = _photo(3, 40, 40)
    ours = region_metrics.hue_levels(img.astype(np.float64))
    assert np.array_equal(ours, cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[..., 0])


def test_dacon_score_gray_output_loses_the_hue_part():
    gt = _flat_lab(60, 40, 20, 32, 32)
    gt[:16] = _flat_lab(60, -30, 30, 16, 32)           # two hues
    gray = np.repeat(np.round(gt.mean(-1, keepdims=True)).astype(np.uint8), 3, -1)
    mask = np.zeros((32, 32), bool); mask[8:24, 8:24] = True
    assert region_metrics.dacon_inpainting_score(gray, gt, mask)["hist sim"] < 0.5
    with pytest.raises(ValueError, match="at least 7"):
        region_metrics.dacon_inpainting_score(gt, gt, np.zeros((32, 32), bool))
