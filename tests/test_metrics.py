"""Tests for labkit.metrics: BasicSR/MATLAB PSNR and SSIM conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from labkit.data.degrade import bicubic_downsample, bicubic_upsample
from labkit.metrics import psnr, psnr_tensor, rgb_to_y, ssim


@pytest.fixture(scope="module")
def sr_pair() -> tuple[np.ndarray, np.ndarray]:
    """A realistic (gt, restored) pair, both float32 HWC [0,1]: a real photo and its x4
    bicubic down/up round trip (the 'bicubic' baseline of SR tables). 256x256 to stay fast."""
    gt = data.astronaut()[128:384, 128:384].astype(np.float32) / 255.0
    sr = np.clip(bicubic_upsample(bicubic_downsample(gt, 4), 4), 0.0, 1.0)
    return gt, sr


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x.astype(np.float64), 0, 1) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------


def test_psnr_matches_skimage_on_uint8(sr_pair):
    gt, sr = (_u8(x) for x in sr_pair)
    assert psnr(gt, sr) == pytest.approx(peak_signal_noise_ratio(gt, sr, data_range=255), abs=1e-10)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)


def test_psnr_identical_is_inf():
    a = np.full((8, 8, 3), 0.3, np.float32)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a, y_channel=True) == float("inf")


def test_y_psnr_hand_computed_on_constant_images():
    # Constant images: every pixel has the same Y difference, so MSE = dY^2 exactly.
    # Studio-swing BT.601 (MATLAB rgb2ycbcr): Y = 16 + 65.481 R + 128.553 G + 24.966 B, RGB in [0,1].
    c1 = (10, 20, 30)
    c2 = (200, 100, 50)
    img1 = np.empty((6, 7, 3), np.uint8)
    img1[:] = c1
    img2 = np.empty((6, 7, 3), np.uint8)
    img2[:] = c2
    y1 = 16 + (65.481 * c1[0] + 128.553 * c1[1] + 24.966 * c1[2]) / 255
    y2 = 16 + (65.481 * c2[0] + 128.553 * c2[1] + 24.966 * c2[2]) / 255
    expected = 10 * math.log10(255**2 / (y1 - y2) ** 2)
    assert psnr(img1, img2, y_channel=True) == pytest.approx(expected, abs=1e-9)
    # RGB PSNR of the same pair: MSE is the mean of the three squared channel differences.
    mse_rgb = ((c1[0] - c2[0]) ** 2 + (c1[1] - c2[1]) ** 2 + (c1[2] - c2[2]) ** 2) / 3
    assert psnr(img1, img2) == pytest.approx(10 * math.log10(255**2 / mse_rgb), abs=1e-9)


def test_rgb_to_y_studio_swing_range():
    black = np.zeros((2, 2, 3), np.uint8)
    white = np.full((2, 2, 3), 255, np.uint8)
    assert rgb_to_y(black) == pytest.approx(np.full((2, 2), 16.0))
    assert rgb_to_y(white) == pytest.approx(np.full((2, 2), 235.0))
    red = np.zeros((1, 1, 3), np.float32)
    red[..., 0] = 1.0
    assert rgb_to_y(red)[0, 0] == pytest.approx(16 + 65.481)
    assert rgb_to_y(white).dtype == np.float64 and rgb_to_y(white).shape == (2, 2)
    # uint8 and float [0,1] inputs give the same Y
    rng = np.random.default_rng(1)
    u = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(u), rgb_to_y(u.astype(np.float64) / 255), atol=1e-9)
    with pytest.raises(ValueError):
        rgb_to_y(np.zeros((4, 4), np.float32))


def test_studio_y_reads_exactly_1_32_db_above_full_range_y(sr_pair):
    # Studio Y = 16 + 219 * L and full-range Y = 255 * L with L = 0.299 R + 0.587 G + 0.114 B
    # (65.481 = 219 * 0.299, 128.553 = 219 * 0.587, 24.966 = 219 * 0.114), so the Y differences
    # scale by 219/255 and PSNR_studio - PSNR_full = 20 log10(255 / 219) = 1.3216 dB exactly.
    gt, sr = (_u8(x) for x in sr_pair)
    lum = np.array([0.299, 0.587, 0.114])
    yf_gt = gt.astype(np.float64) @ lum
    yf_sr = sr.astype(np.float64) @ lum
    full = 10 * math.log10(255**2 / np.mean((yf_gt - yf_sr) ** 2))
    studio = psnr(gt, sr, y_channel=True)
    assert studio - full == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)
    assert 20 * math.log10(255 / 219) == pytest.approx(1.32, abs=0.005)


def test_crop_border_excludes_the_edges():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = a.copy()
    border = 4
    inner = b[border:-border, border:-border].copy()
    b[:] = 255 - b  # corrupt everything ...
    b[border:-border, border:-border] = inner  # ... except the interior
    assert psnr(a, b, crop_border=border) == float("inf")
    assert ssim(a, b, crop_border=border) == pytest.approx(1.0)
    p0 = psnr(a, b)
    p3 = psnr(a, b, crop_border=3)
    assert math.isfinite(p0) and math.isfinite(p3) and p3 > p0
    with pytest.raises(ValueError):
        psnr(a, b, crop_border=16)
    with pytest.raises(ValueError):
        psnr(a, b, crop_border=-1)


def test_float_and_uint8_inputs_agree(sr_pair):
    gt, sr = sr_pair
    gt8, sr8 = _u8(gt), _u8(sr)
    assert psnr(gt, sr) == psnr(gt8, sr8)
    assert psnr(gt, sr, crop_border=4, y_channel=True) == psnr(gt8, sr8, crop_border=4, y_channel=True)
    assert ssim(gt, sr) == ssim(gt8, sr8)
    # float values are rounded to 8-bit levels first: a perturbation under half a level is invisible
    rng = np.random.default_rng(3)
    wiggle = rng.uniform(-0.4, 0.4, sr8.shape) / 255
    assert psnr(gt, sr8 / 255.0 + wiggle) == psnr(gt8, sr8)
    # ... and out-of-range floats are clipped to [0,1]
    over = sr8 / 255.0
    over[over == 1.0] = 1.7
    over[over == 0.0] = -0.2
    assert psnr(gt, over) == psnr(gt8, sr8)


def test_grayscale_hw_inputs():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    b = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    assert psnr(a, b, y_channel=True) == psnr(a, b)  # no colour: Y is the image itself
    assert psnr(a, b) == psnr(a[..., None], b[..., None])


def test_torch_chw_and_nchw_agree_with_numpy(sr_pair):
    gt, sr = sr_pair
    t_gt = torch.from_numpy(gt).permute(2, 0, 1)
    t_sr = torch.from_numpy(sr).permute(2, 0, 1)
    assert psnr(t_gt, t_sr) == psnr(gt, sr)
    assert psnr(t_gt, t_sr, crop_border=4, y_channel=True) == psnr(gt, sr, crop_border=4, y_channel=True)
    assert ssim(t_gt, t_sr, y_channel=True) == ssim(gt, sr, y_channel=True)
    # NCHW: the mean of per-image values (not one pooled MSE)
    gt2, sr2 = gt[::-1].copy(), np.clip(sr[::-1] + 0.05, 0, 1)
    batch_gt = torch.stack([t_gt, torch.from_numpy(gt2).permute(2, 0, 1)])
    batch_sr = torch.stack([t_sr, torch.from_numpy(sr2).permute(2, 0, 1)])
    expected = (psnr(gt, sr) + psnr(gt2, sr2)) / 2
    assert psnr(batch_gt, batch_sr) == pytest.approx(expected, abs=1e-12)
    assert ssim(batch_gt, batch_sr) == pytest.approx((ssim(gt, sr) + ssim(gt2, sr2)) / 2, abs=1e-12)
    # a tensor that requires grad is fine
    assert psnr(t_gt.clone().requires_grad_(True), t_sr) == psnr(gt, sr)


def test_shape_mismatch_raises_naming_both_shapes():
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.zeros((16, 15, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(16, 15, 3\)"):
        psnr(a, b)
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(16, 15, 3\)"):
        ssim(a, b)
    with pytest.raises(ValueError, match="same shape"):
        psnr_tensor(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(TypeError):
        psnr(a.astype(np.int32), a.astype(np.int32))
    with pytest.raises(TypeError):
        psnr([[0]], [[0]])
    with pytest.raises(ValueError):
        psnr(np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8), y_channel=True)


# ----------------------------------------------------------------------------------------------
# SSIM
# ----------------------------------------------------------------------------------------------


def _skimage_ssim(a: np.ndarray, b: np.ndarray, **kw) -> float:
    # skimage's Gaussian SSIM: truncate=3.5 and sigma 1.5 give radius int(3.5*1.5+0.5) = 5, an 11x11
    # window as BasicSR (cv2.getGaussianKernel(11, 1.5)); it filters with padding but then drops a
    # 5-pixel rim (win_size 11) before averaging, which is exactly the 'valid' region. Both normalise
    # the truncated Gaussian to sum 1, so the two agree to rounding error.
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **kw
    )


def test_ssim_matches_skimage_rgb_and_y(sr_pair):
    gt, sr = (_u8(x) for x in sr_pair)
    ref = _skimage_ssim(gt, sr, channel_axis=-1)
    assert ssim(gt, sr) == pytest.approx(ref, abs=1e-9)  # measured: agree to ~1e-14
    assert 0.5 < ref < 0.99  # a realistic, non-trivial pair
    ref_y = _skimage_ssim(rgb_to_y(gt), rgb_to_y(sr))
    assert ssim(gt, sr, y_channel=True) == pytest.approx(ref_y, abs=1e-9)
    ref_crop = _skimage_ssim(gt[4:-4, 4:-4], sr[4:-4, 4:-4], channel_axis=-1)
    assert ssim(gt, sr, crop_border=4) == pytest.approx(ref_crop, abs=1e-9)


def test_ssim_identical_and_too_small():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < 0.95
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:10], a[:10])


# ----------------------------------------------------------------------------------------------
# psnr_tensor
# ----------------------------------------------------------------------------------------------


def test_psnr_tensor_close_to_psnr(sr_pair):
    gt, sr = sr_pair
    t_gt = torch.from_numpy(gt).permute(2, 0, 1)[None]
    t_sr = torch.from_numpy(sr).permute(2, 0, 1)[None]
    fast = psnr_tensor(t_sr, t_gt)
    assert fast.ndim == 0 and fast.dtype == torch.float32
    assert abs(fast.item() - psnr(sr, gt)) < 0.05
    fast_y = psnr_tensor(t_sr, t_gt, crop_border=4, y_channel=True).item()
    assert abs(fast_y - psnr(sr, gt, crop_border=4, y_channel=True)) < 0.05
    # batch mean of per-image PSNR; CHW accepted
    batch = psnr_tensor(torch.cat([t_sr, t_gt]), torch.cat([t_gt, t_gt * 0.9]))
    expected = (psnr_tensor(t_sr[0], t_gt[0]) + psnr_tensor(t_gt[0], t_gt[0] * 0.9)) / 2
    assert batch.item() == pytest.approx(expected.item(), rel=1e-6)
    assert psnr_tensor(t_gt, t_gt).item() == float("inf")
    with pytest.raises(TypeError):
        psnr_tensor(t_gt.to(torch.uint8), t_gt.to(torch.uint8))


def test_gradient_energy_ratio_orders_blur_and_sharpening():
    from scipy.ndimage import gaussian_filter
    from skimage import data

    from labkit.metrics import gradient_energy_ratio

    hr = data.astronaut()[:128, :128].astype(np.float32) / 255
    blurred = gaussian_filter(hr, sigma=(2.0, 2.0, 0))
    sharpened = np.clip(hr + 1.0 * (hr - blurred), 0, 1)
    assert gradient_energy_ratio(hr, hr) == pytest.approx(1.0)
    assert gradient_energy_ratio(blurred, hr) < 0.8
    assert gradient_energy_ratio(sharpened, hr) > 1.1
    with pytest.raises(ValueError, match="constant"):
        gradient_energy_ratio(hr, np.full_like(hr, 0.5))
