"""Tests for labkit.data.tiling, labkit.data.patch_select and labkit.data.patch_export (patch grids,
windows, stitching, 001 selection/skipping, 004 splits)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2hsv

from labkit.data import patch_export, patch_select, tiling


def _img(h: int, w: int, c: int | None = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if c is None else (h, w, c)
    return rng.random(shape, dtype=np.float32)


# ------------------------------------------------------------------ window_starts / grids


@pytest.mark.parametrize("length,patch,stride", [(512, 128, 64), (100, 32, 32), (100, 32, 20), (7, 7, 3), (300, 256, 128)])
def test_window_starts_cover_and_end_flush(length, patch, stride):
    starts = tiling.window_starts(length, patch, stride)
    assert starts[0] == 0
    assert starts[-1] == length - patch
    assert all(0 <= b - a <= stride for a, b in zip(starts, starts[1:]))
    covered = np.zeros(length, dtype=bool)
    for s in starts:
        covered[s:s + patch] = True
    assert covered.all()


def test_window_starts_known_values_and_errors():
    assert tiling.window_starts(512, 128, 64) == [0, 64, 128, 192, 256, 320, 384]
    assert tiling.window_starts(100, 32, 32) == [0, 32, 64, 68]
    with pytest.raises(ValueError, match="larger"):
        tiling.window_starts(100, 128, 64)
    with pytest.raises(ValueError, match="stride"):
        tiling.window_starts(100, 32, 0)
    with pytest.raises(ValueError, match="stride"):
        tiling.window_starts(100, 32, 33)


def test_000_test_patches_are_49():
    patches, positions = tiling.extract_patches(_img(512, 512), 128, 64)
    assert patches.shape == (49, 128, 128, 3)
    assert len(positions) == 49 and len(set(positions)) == 49


def test_grid_split_16_tiles_back_exactly():
    img = _img(64, 48)
    tiles = tiling.grid_split(img, 4, 4)
    assert len(tiles) == 16 and all(t.shape == (16, 12, 3) for t in tiles)
    assert np.array_equal(tiles[5], img[16:32, 12:24])  # row 1, col 1
    assert np.array_equal(tiling.grid_merge(tiles, 4, 4), img)


def test_grid_split_not_divisible_names_shape():
    with pytest.raises(ValueError, match=r"\(30, 48, 3\)"):
        tiling.grid_split(_img(30, 48), 4, 4)


def test_lq_and_gt_grids_correspond():
    gt = _img(64, 64)
    lq = gt.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3))
    for lt, gtile in zip(tiling.grid_split(lq, 4, 4), tiling.grid_split(gt, 4, 4)):
        assert np.allclose(lt, gtile.reshape(4, 4, 4, 4, 3).mean(axis=(1, 3)))


# ------------------------------------------------------------------ stitching


@pytest.mark.parametrize("blend", ["none", "mean", "hann"])
@pytest.mark.parametrize("c", [3, 1, None])
def test_stitch_of_extract_is_identity(blend, c):
    img = _img(70, 53, c, seed=1)
    patches, positions = tiling.extract_patches(img, 24, 10)
    out = tiling.stitch(patches, positions, img.shape, blend=blend)
    assert out.shape == img.shape and out.dtype == np.float32
    if blend == "hann":
        np.testing.assert_allclose(out, img, atol=1e-6)
    else:
        assert np.array_equal(out, img)


def test_stitch_blends_differ_on_inconsistent_patches():
    img = np.zeros((32, 32), np.float32)
    patches, positions = tiling.extract_patches(img, 16, 8)
    patches = patches + np.arange(len(patches), dtype=np.float32)[:, None, None]  # every patch its own value
    none = tiling.stitch(patches, positions, img.shape, blend="none")
    mean = tiling.stitch(patches, positions, img.shape, blend="mean")
    assert none[12, 12] == 4.0  # the last of the four patches (0, 1, 3, 4) over (12, 12)
    assert mean[12, 12] == pytest.approx((0 + 1 + 3 + 4) / 4)  # average of patches 0, 1, 3, 4


def test_stitch_with_scale():
    lq = _img(40, 40, seed=2)
    gt = np.repeat(np.repeat(lq, 2, axis=0), 2, axis=1)
    patches, positions = tiling.extract_patches(lq, 16, 12)
    up = np.repeat(np.repeat(patches, 2, axis=1), 2, axis=2)
    out = tiling.stitch(up, positions, gt.shape, blend="mean", scale=2)
    assert np.array_equal(out, gt)


def test_stitch_raises_on_uncovered_pixels_and_outside_patches():
    img = _img(32, 32)
    patches, positions = tiling.extract_patches(img, 16, 16)
    with pytest.raises(ValueError, match="covered by no patch"):
        tiling.stitch(patches[:3], positions[:3], img.shape)
    with pytest.raises(ValueError, match="covered by no patch"):
        tiling.stitch(patches[:3], positions[:3], img.shape, blend="none")
    with pytest.raises(ValueError, match="outside"):
        tiling.stitch(patches, positions, (24, 32, 3))
    with pytest.raises(ValueError, match="blend"):
        tiling.stitch(patches, positions, img.shape, blend="max")


def test_hann_window_positive_and_peaked():
    w = tiling.hann_window(16, 10, floor=0.01)
    assert w.shape == (16, 10) and w.min() > 0 and w.max() <= 1
    assert w[8, 5] > w[0, 0]


# ------------------------------------------------------------------ 001 padded patches / skip rule


@pytest.mark.parametrize("h,w,p,s", [(300, 420, 256, 128), (200, 150, 64, 16), (100, 70, 128, 64), (256, 512, 256, 64)])
def test_padded_patches_and_skip_rule_keep_coverage(h, w, p, s):
    img = _img(h, w, seed=3) + 0.01  # strictly positive, so padding is recognisable
    patches, positions, frac = tiling.padded_patches(img, p, s)
    assert patches.shape[1:] == (p, p, 3)
    # padding fraction is the fraction of exact zeros
    zeros = (patches == 0).all(axis=-1).mean(axis=(1, 2))
    np.testing.assert_allclose(frac, zeros)
    keep = tiling.skip_padded(positions, frac, img.shape, p, s)
    assert len(keep) < len(positions)  # the padded tail is dropped
    assert set(np.flatnonzero(frac == 0)) <= set(keep.tolist())  # no unpadded patch lost
    covered = np.zeros((h, w), bool)
    for i in keep:
        y, x = positions[i]
        covered[y:y + p, x:x + p] = True
    assert covered.all()
    # stitching the kept patches (cropped to the image) reproduces the image
    out = np.zeros_like(img)
    for i in keep:
        y, x = positions[i]
        out[y:y + p, x:x + p] = patches[i][: h - y, : w - x]
    assert np.array_equal(out, img)


def test_skip_rule_matches_official_inference_starts():
    # 001's test.py: starts range(0, ceil((L - p) / s) * s + 1, s) on each axis
    h, w, p, s = 2448, 3264, 256, 64
    _, positions, frac = tiling.padded_patches(np.zeros((h, w), np.float32), p, s)
    keep = tiling.skip_padded(positions, frac, (h, w), p, s)
    ys = range(0, int(np.ceil((h - p) / s)) * s + 1, s)
    xs = range(0, int(np.ceil((w - p) / s)) * s + 1, s)
    assert sorted(positions[i] for i in keep) == [(y, x) for y in ys for x in xs]


def test_skip_padded_checks_its_inputs():
    _, positions, frac = tiling.padded_patches(_img(100, 100), 64, 32)
    with pytest.raises(ValueError, match="pad fraction"):
        tiling.skip_padded(positions, frac, (120, 100), 64, 32)


# ------------------------------------------------------------------ 001 HSV selection


def test_hsv_selection_on_constructed_patches():
    n_bright = [0, 999, 1000, 1001, 4096]
    batch = np.full((len(n_bright), 64, 64, 3), 0.3, np.float32)
    for i, n in enumerate(n_bright):
        flat = batch[i].reshape(-1, 3)
        flat[:n, i % 3] = 0.95  # bright in one channel only: V = max(R, G, B)
    keep, scores = patch_select.hsv_value_select(batch, threshold=1000)
    assert scores.tolist() == n_bright
    assert keep.tolist() == [False, False, True, True, True]
    # V is skimage's HSV value
    v = rgb2hsv(batch[3])[..., 2]
    assert scores[3] == np.count_nonzero(v > patch_select.V_MIN_001)


def test_hsv_selection_matches_8bit_rule():
    # the official rule counts 8-bit V > 200: level 200 does not count, 201 does
    patch = np.zeros((10, 10, 3), np.uint8)
    patch[0, :5] = 200
    patch[1, :7] = 201
    keep_u8, scores_u8 = patch_select.hsv_value_select([patch], threshold=7)
    keep_f, scores_f = patch_select.hsv_value_select([patch.astype(np.float32) / 255.0], threshold=7)
    assert scores_u8.tolist() == scores_f.tolist() == [7]
    assert keep_u8.tolist() == keep_f.tolist() == [True]


# ------------------------------------------------------------------ 001 larger patches


def test_resize_down_and_multi_scale():
    img = _img(600, 700, seed=4)
    small = patch_select.resize_down(img[:512, :512], 256)
    assert small.shape == (256, 256, 3) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0
    with pytest.raises(ValueError, match="larger"):
        patch_select.resize_down(img[:100, :100], 256)

    patches, boxes = patch_select.multi_scale_patches(img, sizes=(256, 512), out_size=128, stride_ratio=0.5, return_boxes=True)
    assert patches.shape[1:] == (128, 128, 3)
    sizes = [b[2] for b in boxes]
    assert len(patches) == len(boxes) and set(sizes) == {256, 512}
    # 256 windows stride 128 on 600 x 700: 4 x 5; 512 windows stride 256: 2 x 2
    assert sizes.count(256) == 20 and sizes.count(512) == 4
    # the target is cut at the same places
    y, x, s = boxes[-1]
    np.testing.assert_allclose(patch_select.patches_from_boxes(img, [boxes[-1]], 128)[0], patch_select.resize_down(img[y:y + s, x:x + s], 128))


def test_multi_scale_subsampling_is_seeded():
    img = _img(300, 300, seed=5)
    a, boxes_a = patch_select.multi_scale_patches(img, sizes=(64, 128), out_size=64, rng=7, max_per_size=3, return_boxes=True)
    b, boxes_b = patch_select.multi_scale_patches(img, sizes=(64, 128), out_size=64, rng=7, max_per_size=3, return_boxes=True)
    assert boxes_a == boxes_b and len(boxes_a) == 6 and np.array_equal(a, b)
    plain = patch_select.multi_scale_patches(img, sizes=(64, 128), out_size=64, rng=7, max_per_size=3)
    assert isinstance(plain, np.ndarray) and np.array_equal(plain, a)
    with pytest.raises(ValueError, match="fits"):
        patch_select.multi_scale_patches(_img(50, 50), sizes=(64,), out_size=64)


# ------------------------------------------------------------------ 004


def test_split_2x2_flips_and_x12():
    img = _img(20, 30, seed=6)
    tiles = patch_select.split_2x2(img)
    assert len(tiles) == 4 and tiles[1].shape == (10, 15, 3)
    assert np.array_equal(tiling.grid_merge(tiles, 2, 2), img)
    orig, hflip, vflip = patch_select.flips_x3(img)
    assert np.array_equal(orig, img)
    assert np.array_equal(hflip[:, 0], img[:, -1]) and np.array_equal(vflip[0], img[-1])
    x12 = patch_select.x12_patches(img)
    assert len(x12) == 12
    assert np.array_equal(x12[4], img[:10, ::-1][:, :15])  # top-left tile of the horizontal flip


def test_random_crop_pairs_and_seed():
    noisy, clean = _img(40, 50, seed=7), _img(40, 50, seed=8)
    a = patch_select.random_crop((noisy, clean), 16, rng=3)
    b = patch_select.random_crop([noisy, clean], 16, rng=np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # both crops come from the same place
    ys, xs = np.argwhere(noisy == a[0][0, 0, 0])[0][:2]
    assert np.array_equal(clean[ys:ys + 16, xs:xs + 16], a[1])
    with pytest.raises(ValueError, match="larger"):
        patch_select.random_crop(noisy, 64)


# ------------------------------------------------------------------ make_patch_pairs in processes


def test_parallel_patch_pairs_equal_serial_with_uint8_and_an_image_without_patches():
    bright = (_img(70, 90, seed=1) * 255).astype(np.uint8)
    dark = np.zeros((64, 64, 3), np.uint8)  # nothing passes the selection, no larger size fits
    pairs = [("a", bright, bright[::-1].copy()), ("dark", dark, dark), ("b", bright[:, ::-1].copy(), bright)]
    kw = dict(img_size=32, stride=16, v_threshold=200, larger_sizes=(66,), max_larger_per_image=2)
    serial = patch_export.make_patch_pairs(pairs, process_num=1, **kw)
    for workers in (2, 5):  # more workers than pairs is allowed
        parallel = patch_export.make_patch_pairs(iter(pairs), process_num=workers, **kw)
        assert parallel["lq"].dtype == np.uint8 and parallel["lq"].shape[1:] == (32, 32, 3)
        for key in ("lq", "gt", "scores"):
            np.testing.assert_array_equal(parallel[key], serial[key])
        assert parallel["boxes"] == serial["boxes"] and parallel["n_base"] == serial["n_base"]
    assert not any(b[0] == "dark" for b in serial["boxes"]) and serial["n_base"] == 30 + 16 + 30
    with pytest.raises(ValueError, match="no patch passed"):
        patch_export.make_patch_pairs([("dark", dark, dark)], process_num=2, img_size=32, stride=16, v_threshold=200)
