"""Tests for labkit.data.degrade: MATLAB-equivalent bicubic resizing and helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from labkit.data.degrade import bicubic_downsample, bicubic_upsample, crop_to_multiple, imresize, to_grayscale


def _psnr01(a: np.ndarray, b: np.ndarray) -> float:
    """Plain float PSNR for data range 1 (no rounding): compares two resizers, not pictures."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut().astype(np.float32) / 255.0  # 512x512x3, a real photo


def _torch_resize(img: np.ndarray, scale: int, antialias: bool) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    out = F.interpolate(t, scale_factor=1 / scale, mode="bicubic", antialias=antialias, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------------------------
# agreement with torch's antialiased bicubic (same kernel; only the borders differ)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
def test_downsample_close_to_torch_antialias(astronaut, scale):
    ours = bicubic_downsample(astronaut, scale)
    assert ours.shape == (512 // scale, 512 // scale, 3) and ours.dtype == np.float32
    aa = _torch_resize(astronaut, scale, antialias=True)
    # Measured on this 512x512 photo: 66.6 dB at x2, 58.4 dB at x4 over the whole image. torch
    # renormalises its kernel at the borders where MATLAB mirrors the image, so all of the
    # difference sits in the outer 2 output pixels; inside them the two agree to float32 rounding.
    assert _psnr01(ours, aa) > 55.0
    np.testing.assert_allclose(ours[2:-2, 2:-2], aa[2:-2, 2:-2], atol=1e-5)
    assert np.abs(ours - aa).max() > 1e-3  # the borders do differ (mirror vs renormalise)
    # torch's default (a = -0.75, no antialiasing) is a different degradation: 34.6 / 27.3 dB away.
    plain = _torch_resize(astronaut, scale, antialias=False)
    assert _psnr01(ours, plain) < 45.0


def test_matches_octave_imresize_without_antialiasing():
    # Octave (image package, MATLAB-compatible imresize):
    #   img = transpose(reshape(0:15, 4, 4));  imresize(img, 0.5, 'bicubic', 'AntiAliasing', false)
    #   -> [2.1875 4.3125; 10.6875 12.8125]
    # By hand: u = 2x - 0.5 = 1.5 for x = 1; taps at 0..3 (1-based) with Keys weights
    # (-0.0625, 0.5625, 0.5625, -0.0625); pixel 0 mirrors to pixel 1, so a row 0,1,2,3 gives
    # 0.4375 (not 0.5, the edge is mirrored) and the column adds 4 * 0.4375.
    img = np.arange(16, dtype=np.float64).reshape(4, 4)
    out = imresize(img, 0.5, antialias=False)
    np.testing.assert_allclose(out, [[2.1875, 4.3125], [10.6875, 12.8125]], atol=1e-6)
    # With antialiasing (MATLAB's default) the wider kernel gives a different result.
    assert np.abs(imresize(img, 0.5) - out).max() > 0.05


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_linear_ramp_stays_linear_with_matlab_index_mapping(scale):
    # Cubic convolution reproduces linear functions, so away from the mirrored edges the resized
    # ramp f(i) = i (1-based pixel index) must equal MATLAB's source coordinate
    # u(x) = x / scale + 0.5 * (1 - 1/scale) exactly: this checks kernel and index mapping together.
    n = 48
    ramp = np.arange(1, n + 1, dtype=np.float64)[None, :]  # 1 x n image
    out_n = round(n * scale)
    out = imresize(ramp, output_shape=(1, out_n))[0].astype(np.float64)
    x = np.arange(1, out_n + 1)
    u = x / scale + 0.5 * (1 - 1 / scale)
    half_support = (2 / scale if scale < 1 else 2) + 1  # input pixels reached by the kernel
    interior = (u - half_support >= 1) & (u + half_support <= n)
    assert interior.sum() >= out_n // 2
    np.testing.assert_allclose(out[interior], u[interior], atol=1e-4)  # float32 output
    assert np.all(np.abs(np.diff(out[interior], 2)) < 1e-4)


@pytest.mark.parametrize("scale", [2, 4])
def test_edges_are_handled_by_symmetric_reflection(scale):
    # MATLAB pads with the mirror image, edge pixel repeated (..., s1, s0 | s0, s1, ...). So resizing
    # a signal must equal the middle part of resizing [mirror(s), s, mirror(s)], where the kernel
    # sees real data instead of padding. Edge replication or renormalisation (torch) would fail.
    rng = np.random.default_rng(0)
    n = 16
    s = rng.uniform(0, 1, (1, n))
    extended = np.concatenate([s[:, ::-1], s, s[:, ::-1]], axis=1)
    for factor in (1 / scale, scale):
        out_n = round(n * factor)
        direct = imresize(s, output_shape=(1, out_n))
        via_mirror = imresize(extended, output_shape=(1, 3 * out_n))[:, out_n : 2 * out_n]
        np.testing.assert_allclose(direct, via_mirror, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# behaviour
# ----------------------------------------------------------------------------------------------


def test_downsample_rejects_non_divisible_shape():
    img = np.zeros((30, 32, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(30, 32, 3\).*crop_to_multiple"):
        bicubic_downsample(img, 4)
    assert bicubic_downsample(crop_to_multiple(img, 4), 4).shape == (7, 8, 3)
    with pytest.raises(ValueError):
        bicubic_downsample(img, 0)
    with pytest.raises(ValueError):
        bicubic_downsample(img, 2.5)


def test_uint8_in_uint8_out():
    u8 = data.astronaut()
    out = bicubic_downsample(u8, 4)
    assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
    ref = np.round(np.clip(bicubic_downsample(u8.astype(np.float64) / 255, 4).astype(np.float64), 0, 1) * 255)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # same up to float32 rounding at .5 ties
    up = bicubic_upsample(out, 2)
    assert up.dtype == np.uint8 and up.shape == (256, 256, 3)


def test_constant_image_stays_constant():
    img = np.full((24, 36, 3), 0.37, np.float32)
    for out in (bicubic_downsample(img, 3), bicubic_upsample(img, 3), imresize(img, 0.7)):
        np.testing.assert_allclose(out, 0.37, atol=1e-6)
    u8 = np.full((16, 16), 200, np.uint8)
    assert np.all(bicubic_downsample(u8, 4) == 200)


def test_upsample_shape_and_interpolation(astronaut):
    small = astronaut[:40, :50]
    up = bicubic_upsample(small, 3)
    assert up.shape == (120, 150, 3) and up.dtype == np.float32
    # At x3 the output pixels 2, 5, 8, ... (1-based) sit exactly on the input pixel centres
    # (u = x/3 + 1/3 is an integer), and the cubic kernel interpolates: the input comes back.
    np.testing.assert_allclose(up[1::3, 1::3], small, atol=1e-6)
    gray = bicubic_upsample(small[..., 0], 2)
    assert gray.shape == (80, 100)


def test_torch_tensors_match_numpy(astronaut):
    img = astronaut[:64, :96]
    expected = bicubic_downsample(img, 4)
    chw = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    out = bicubic_downsample(chw, 4)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 16, 24) and out.dtype == torch.float32
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    nchw = torch.stack([chw, chw.flip(-1)])
    out_b = bicubic_downsample(nchw, 4)
    assert out_b.shape == (2, 3, 16, 24)
    np.testing.assert_allclose(out_b[1].permute(1, 2, 0).numpy(), expected[:, ::-1], atol=1e-5)
    up = bicubic_upsample(out_b, 4)
    assert up.shape == (2, 3, 64, 96)
    # differentiable: gradients flow back to the input
    x = chw.clone().requires_grad_(True)
    bicubic_downsample(x, 2).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    u8 = (chw * 255).round().to(torch.uint8)
    assert bicubic_downsample(u8, 2).dtype == torch.uint8


def test_imresize_argument_validation():
    img = np.zeros((8, 8, 3), np.float32)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            imresize(img, bad)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img, 0.5, output_shape=(4, 4))
    with pytest.raises(ValueError, match="output_shape"):
        imresize(img, output_shape=(4, 0))
    with pytest.raises(ValueError, match="output_shape"):
        imresize(img, output_shape=(4,))
    with pytest.raises(TypeError):
        imresize(img.astype(np.int16), 0.5)
    with pytest.raises(TypeError):
        imresize([[0.0]], 0.5)
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 4, 4, 3), np.float32), 0.5)
    assert imresize(img, 0.3).shape == (3, 3, 3)  # ceil(0.3 * 8) as MATLAB
    assert imresize(img, output_shape=(5, 11)).shape == (5, 11, 3)


def test_crop_to_multiple():
    img = np.arange(13 * 17 * 3).reshape(13, 17, 3)
    out = crop_to_multiple(img, 4)
    assert out.shape == (12, 16, 3)
    np.testing.assert_array_equal(out, img[:12, :16])
    t = torch.zeros(2, 3, 13, 17)
    assert crop_to_multiple(t, 4).shape == (2, 3, 12, 16)
    assert crop_to_multiple(img, 1).shape == img.shape
    with pytest.raises(ValueError):
        crop_to_multiple(img[:3], 4)


def test_to_grayscale():
    img = np.zeros((2, 3, 3), np.float32)
    img[..., 0] = 1.0  # pure red
    g = to_grayscale(img)
    assert g.shape == (2, 3, 3) and g.dtype == np.float32
    np.testing.assert_allclose(g, 0.299, atol=1e-6)
    assert to_grayscale(img, keep_channels=False).shape == (2, 3)
    u8 = np.full((2, 2, 3), (255, 255, 0), np.uint8)  # yellow
    assert np.all(to_grayscale(u8) == round(255 * (0.299 + 0.587)))
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    tg = to_grayscale(t, keep_channels=False)
    assert tg.shape == (1, 1, 2, 3)
    np.testing.assert_allclose(tg.numpy(), 0.299, atol=1e-6)
    with pytest.raises(ValueError):
        to_grayscale(np.zeros((4, 4), np.float32))
