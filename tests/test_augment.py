"""Tests for labkit.data.augment: paired albumentations ops stay consistent between lq and gt."""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np
import pytest

from labkit.data.augment import (
    AdaptiveAugment,
    PairedAugment,
    flare_001_transforms,
    nafnet_004_transforms,
    sr_000_transforms,
)


def block_mean(x: np.ndarray, s: int) -> np.ndarray:
    """s x s average pooling (commutes exactly with flips, transposes and 90-degree rotations)."""
    h, w = x.shape[:2]
    return x.reshape(h // s, s, w // s, s, *x.shape[2:]).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def random_gt(h: int = 48, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def smooth_gt(h: int = 128, w: int = 96) -> np.ndarray:
    """Smooth content whose mirror extension (about the image edges) is smooth too.

    Cosines of pi * k * (x + 0.5) / W are even about both pixel edges, so the ``BORDER_REFLECT``
    fill continues them smoothly and interpolation errors stay small everywhere.
    """
    y, x = np.mgrid[0:h, 0:w]
    u, v = np.pi * (x + 0.5) / w, np.pi * (y + 0.5) / h
    return np.stack(
        [
            0.5 + 0.2 * np.cos(2 * u) + 0.2 * np.cos(v),
            0.5 + 0.3 * np.cos(u) * np.cos(2 * v),
            0.5 + 0.2 * np.cos(3 * u) + 0.1 * np.cos(3 * v),
        ],
        axis=-1,
    ).astype(np.float32)


@pytest.mark.parametrize("scale", [2, 4])
def test_right_angle_ops_keep_sr_pair_exact(scale):
    gt = random_gt(16 * scale, 8 * scale)
    lq = block_mean(gt, scale)
    transforms = sr_000_transforms(p=0.5, shift_scale_rotate=False)
    assert not any(isinstance(t, A.Affine) for t in transforms)
    aug = PairedAugment(transforms, scale=scale, seed=0)
    seen = set()
    for _ in range(60):
        lq2, gt2 = aug(lq, gt)
        assert gt2.shape[0] == lq2.shape[0] * scale and gt2.shape[1] == lq2.shape[1] * scale
        np.testing.assert_allclose(lq2, block_mean(gt2, scale), atol=1e-6)
        seen.add(gt2.tobytes())
    assert len(seen) >= 6  # many different members of the D4 group were drawn
    # a deliberately wrong pair is far from consistent: the test can fail
    lq2, gt2 = aug(lq, gt)
    assert np.abs(lq2[:, ::-1] - block_mean(gt2, scale)).max() > 0.1


def _replay_for_lq(node: dict, scale: int) -> None:
    """An albumentations replay record made on gt, rewritten for lq: the affine matrix conjugated by the
    pixel-centre map x_gt = s x_lq + (s - 1) / 2, the shapes divided by s (written out here independently)."""
    for child in node.get("transforms") or []:
        _replay_for_lq(child, scale)
    params = node.get("params") or {}
    if "matrix" in params:
        o = (scale - 1) / 2
        to_gt = np.array([[scale, 0, o], [0, scale, o], [0, 0, 1.0]])
        params["matrix"] = np.linalg.inv(to_gt) @ params["matrix"] @ to_gt
    for key in ("shape", "output_shape"):
        if key in params:
            params[key] = (params[key][0] // scale, params[key][1] // scale) + tuple(params[key][2:])


@pytest.mark.parametrize("scale", [2, 4])
def test_lq_gets_albumentations_own_replay_bit_for_bit(scale):
    """lq gets exactly what albumentations' ``ReplayCompose.replay`` of gt's draws gives (containers,
    Affine and colour ops included), without rebuilding the pipeline at every call."""
    def ops():
        return sr_000_transforms(p=0.5) + [
            A.OneOf([A.HorizontalFlip(), A.Affine(rotate=(-10, 10), border_mode=cv2.BORDER_REFLECT)], p=0.5),
            A.Sequential([A.ColorJitter(p=0.5), A.Transpose(p=0.5)], p=0.7), A.RandomGamma(p=0.5)]

    gt = random_gt(12 * scale, 8 * scale)
    lq = block_mean(gt, scale)
    aug = PairedAugment(ops(), scale=scale, seed=5)
    replay = A.ReplayCompose(ops())
    replay.set_random_state(np.random.default_rng(5), random.Random(5))
    changed = 0
    for _ in range(60):
        a_lq, a_gt = aug(lq, gt)
        out = replay(image=gt)
        _replay_for_lq(out["replay"], scale)
        b_lq = A.ReplayCompose.replay(out["replay"], image=lq)["image"]
        assert np.array_equal(a_gt, np.clip(out["image"], 0, 1)) and np.array_equal(a_lq, np.clip(b_lq, 0, 1))
        changed += not np.array_equal(a_gt, gt)
    assert changed > 30


def test_affine_keeps_sr_pair_consistent():
    scale = 4
    gt = smooth_gt()
    lq = block_mean(gt, scale)
    affine = A.Affine(
        translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), rotate=(-45, 45), keep_ratio=True,
        border_mode=cv2.BORDER_REFLECT, p=1.0,
    )
    aug = PairedAugment([affine], scale=scale, seed=3)
    changed = 0
    for _ in range(20):
        lq2, gt2 = aug(lq, gt)
        changed += not np.allclose(gt2, gt, atol=1e-3)
        assert np.abs(lq2 - block_mean(gt2, scale)).max() < 0.02
    assert changed == 20
    # drawing the same op independently at the lq size (a naive pairing) is not consistent
    lq_alone = A.Compose([A.Affine(translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), rotate=(-45, 45), p=1.0)], seed=9)
    assert np.abs(lq_alone(image=lq)["image"] - block_mean(gt2, scale)).max() > 0.05


def test_sr_000_pipeline_pair_consistent_and_range_kept():
    scale = 4
    gt = smooth_gt()
    lq = block_mean(gt, scale)
    aug = PairedAugment(sr_000_transforms(p=0.5), scale=scale, seed=1)
    for _ in range(30):
        lq2, gt2 = aug(lq, gt)
        assert lq2.dtype == gt2.dtype == np.float32
        assert 0.0 <= min(lq2.min(), gt2.min()) and max(lq2.max(), gt2.max()) <= 1.0
        assert np.abs(lq2 - block_mean(gt2, scale)).max() < 0.02


def test_scale1_pairs_apply_identical_ops_including_color():
    gt = random_gt(40, 40, seed=2)
    lq = gt * 0.5  # any pixel-wise linear relation survives identical geometric ops
    aug = PairedAugment(sr_000_transforms(p=0.5), scale=1, seed=0)
    for _ in range(20):
        lq2, gt2 = aug(lq, gt)
        np.testing.assert_allclose(lq2, 0.5 * gt2, atol=1e-5)
    flare = PairedAugment(flare_001_transforms(p_geometric=0.5, p_color=1.0), scale=1, seed=0)
    for _ in range(20):
        a, b = flare(gt, gt.copy())
        assert np.array_equal(a, b)  # ColorJitter drew once for both
        assert not np.array_equal(a, gt)


def test_color_jitter_replays_on_sr_pair():
    scale = 2
    gt = 0.25 + 0.5 * random_gt(32, 32, seed=4)  # stay away from clipping
    lq = block_mean(gt, scale)
    jitter = A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.0, p=1.0)
    aug = PairedAugment([jitter], scale=scale, seed=5)
    for _ in range(10):
        lq2, gt2 = aug(lq, gt)
        assert not np.allclose(gt2, gt, atol=1e-3)
        np.testing.assert_allclose(lq2, block_mean(gt2, scale), atol=1e-4)  # linear colour ops commute


def test_same_seed_reproduces_and_seeds_differ():
    gt = random_gt(32, 32, seed=6)
    lq = block_mean(gt, 2)
    outs = []
    for seed in (11, 11, 12):
        aug = PairedAugment(sr_000_transforms(), scale=2, seed=seed)
        outs.append([aug(lq, gt) for _ in range(8)])
    for (l1, g1), (l2, g2) in zip(outs[0], outs[1]):
        assert np.array_equal(l1, l2) and np.array_equal(g1, g2)
    assert any(not np.array_equal(g1, g3) for (_, g1), (_, g3) in zip(outs[0], outs[2]))


def test_seeded_transforms_draw_independently():
    # albumentations 2.0.8 Compose(seed=...) would make both flips fire together every time
    gt = random_gt(8, 8, seed=7)
    aug = PairedAugment(nafnet_004_transforms(p=0.5), scale=1, seed=0)
    kinds = set()
    for _ in range(60):
        _, g = aug(gt, gt)
        for name, ref in (("id", gt), ("h", gt[:, ::-1]), ("v", gt[::-1]), ("hv", gt[::-1, ::-1])):
            if np.array_equal(g, ref):
                kinds.add(name)
    assert kinds == {"id", "h", "v", "hv"}


def test_dtype_uint8_and_float64_kept():
    gt = (random_gt(16, 16, seed=8) * 255).astype(np.uint8)
    aug = PairedAugment(nafnet_004_transforms(p=1.0), scale=1, seed=0)
    lq2, gt2 = aug(gt, gt)
    assert gt2.dtype == np.uint8 and np.array_equal(gt2, gt[::-1, ::-1])
    g64 = random_gt(16, 16, seed=9).astype(np.float64)
    _, out = PairedAugment(nafnet_004_transforms(p=1.0), scale=1, seed=0)(g64, g64)
    assert out.dtype == np.float64


def test_errors():
    gt = random_gt(32, 32)
    with pytest.raises(ValueError, match="gt shape"):
        PairedAugment(nafnet_004_transforms(), scale=4, seed=0)(gt[:7, :8], gt)
    with pytest.raises(ValueError, match="RandomCrop"):
        PairedAugment([A.RandomCrop(8, 8)], scale=2)
    with pytest.raises(ValueError, match="Resize"):
        PairedAugment(flare_001_transforms(resize=16), scale=2)
    with pytest.raises(ValueError, match="scale"):
        PairedAugment([], scale=0)
    with pytest.raises(TypeError):
        PairedAugment([], scale=1)(gt.tolist(), gt)


def test_flare_resize_scale1():
    gt = random_gt(32, 32, seed=10)
    lq2, gt2 = PairedAugment(flare_001_transforms(resize=16), seed=0)(gt, gt)
    assert lq2.shape == gt2.shape == (16, 16, 3)


def test_adaptive_augment_switches_on_at_start_epoch():
    gt = random_gt(16, 16, seed=11)
    inner = PairedAugment(nafnet_004_transforms(p=1.0), scale=1, seed=0)  # always flips
    aug = AdaptiveAugment(inner, start_epoch=2)
    for epoch in (0, 1):
        aug.set_epoch(epoch)
        assert not aug.active
        lq2, gt2 = aug(gt, gt)
        assert lq2 is gt and gt2 is gt
    for epoch in (2, 5):
        aug.set_epoch(epoch)
        assert aug.active
        _, gt2 = aug(gt, gt)
        assert np.array_equal(gt2, gt[::-1, ::-1])
    with pytest.raises(ValueError):
        AdaptiveAugment(inner, start_epoch=-1)
