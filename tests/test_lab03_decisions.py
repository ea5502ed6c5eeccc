"""Lab 03 (issue 20): the course checkpoint's run, random-crop patches, and the seam error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labkit import course, labs, profiles, region_metrics
from labkit.data import pairing, tiling
from labkit.labs import lab03


def _pairs(n: int = 2, lh: int = 16, lw: int = 20, scale: int = 4):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        gt = rng.random((lh * scale, lw * scale, 3), dtype=np.float32)
        lq = gt.reshape(lh, scale, lw, scale, 3).mean(axis=(1, 3))
        out.append((f"p{i}", lq, gt))
    return out


# ------------------------------------------------------------------ course checkpoint 03_rrdb_pretrain


def test_the_course_checkpoint_is_declared_and_trains_the_small_rrdb_without_validation(tmp_path):
    spec = lab03.COURSE_CHECKPOINTS[lab03.PRETRAIN_CHECKPOINT]
    assert spec.lab == "03" and spec.overrides["net"] == "pretrain" and spec.seed == 42
    assert lab03.PRETRAIN_CHECKPOINT in course.specs()
    cfg, opts = labs.split_overrides("03", "smoke", {"net": "pretrain"})
    r = labs.build_recipe("03", cfg, opts, work_dir=tmp_path)
    pre = cfg["pretrain"]
    assert r.val_set is None                       # no best.pth: the course export keeps the last weights
    assert r.fit_kwargs["steps"] == pre["steps"] and r.fit_kwargs["batch_size"] == pre["batch_size"]
    assert r.fit_kwargs["scheduler_interval"] == "step" and r.fit_kwargs["loss"] == pre["loss"]
    assert isinstance(r.fit_kwargs["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    assert r.fit_kwargs["optimizer"].param_groups[0]["lr"] == pre["lr"]
    # the same architecture as the notebook's fine-tuned model, under the 2 MB limit once saved
    small = lab03.make_model(cfg)
    assert [tuple(p.shape) for p in r.model.parameters()] == [tuple(p.shape) for p in small.parameters()]
    assert 4 * sum(p.numel() for p in small.parameters()) < course.MAX_BYTES
    # an epoch is pretrain.steps / pretrain.epochs batches of the training photos (rocket validates elsewhere)
    assert len(r.train_set) // pre["batch_size"] == pre["steps"] // pre["epochs"]


def test_pretrain_needs_the_small_model():
    cfg, opts = labs.split_overrides("03", "full", {"net": "pretrain"})
    with pytest.raises(ValueError, match="small RRDB"):
        lab03.build_training(cfg, opts, None)
    cfg, opts = labs.split_overrides("03", "smoke", {"net": "esrgan"})
    with pytest.raises(ValueError, match="'rrdbnet' or 'pretrain'"):
        lab03.build_training(cfg, opts, None)


def test_the_shipped_checkpoint_loads_into_the_notebooks_model():
    if lab03.PRETRAIN_CHECKPOINT not in course.manifest():
        pytest.skip("03_rrdb_pretrain not built in this checkout")
    net = lab03.make_model(profiles.get("03", "smoke"))
    course.load(lab03.PRETRAIN_CHECKPOINT, net)     # sha256 checked, strict
    entry = course.manifest()[lab03.PRETRAIN_CHECKPOINT]
    assert entry["bytes"] <= course.MAX_BYTES and entry["overrides"]["net"] == "pretrain"


# ------------------------------------------------------------------ random crops vs grid patches


def test_random_patches_match_the_grid_in_count_and_size_and_are_seeded(tmp_path):
    pairs = _pairs()
    cfg = {**profiles.get("03", "smoke"), "patches": "random"}
    lab03.export_train_patches(pairs, tmp_path / "r", cfg, seed=3)
    lab03.export_train_patches(pairs, tmp_path / "g", {**cfg, "patches": "grid"})
    rnd = pairing.PairedFolderDataset(tmp_path / "r" / "lq", tmp_path / "r" / "gt", scale=4)
    grid = pairing.PairedFolderDataset(tmp_path / "g" / "lq", tmp_path / "g" / "gt", scale=4)
    assert len(rnd) == len(grid) == 16 * len(pairs)
    assert rnd[0]["lq"].shape == grid[0]["lq"].shape and rnd[0]["gt"].shape == grid[0]["gt"].shape
    # aligned: each HR crop is the crop of the HR at 4x the LR position (the LR is the HR's 4x4 mean here)
    item = rnd[5]
    down = torch.nn.functional.avg_pool2d(item["gt"][None], 4)[0]
    assert torch.allclose(down, item["lq"], atol=1.5 / 255)
    lab03.export_train_patches(pairs, tmp_path / "r2", cfg, seed=3)
    lab03.export_train_patches(pairs, tmp_path / "r3", cfg, seed=4)
    same = pairing.PairedFolderDataset(tmp_path / "r2" / "lq", tmp_path / "r2" / "gt", scale=4)
    other = pairing.PairedFolderDataset(tmp_path / "r3" / "lq", tmp_path / "r3" / "gt", scale=4)
    assert all(torch.equal(rnd[i]["lq"], same[i]["lq"]) for i in range(len(rnd)))
    assert any(not torch.equal(rnd[i]["lq"], other[i]["lq"]) for i in range(len(rnd)))
    with pytest.raises(ValueError, match="'grid' or 'random'"):
        lab03.export_train_patches(pairs, tmp_path / "x", {**cfg, "patches": "hsv"})


def test_labkit_train_03_takes_random_patches(tmp_path):
    cfg, opts = labs.split_overrides("03", "smoke", {"pretrained": "scratch", "max_images": 2, "patches": "random"})
    r = labs.build_recipe("03", cfg, opts, work_dir=tmp_path)
    assert len(r.train_set) == 16 * 2
    assert any(p.name.startswith("patches_") and "random16" in p.name for p in tmp_path.iterdir())


# ------------------------------------------------------------------ seam error and the 49 windows


def test_seam_error_sees_a_seam_and_only_a_seam():
    rng = np.random.default_rng(1)
    ref = rng.random((64, 80, 3)).astype(np.float32)
    noisy = np.clip(ref + rng.normal(0, 0.02, ref.shape), 0, 1).astype(np.float32)
    flat = region_metrics.seam_error(noisy, ref, [32], [40], band=4)
    assert abs(flat["seam"]) < 1.0 and flat["border"] > 0 and flat["interior"] > 0
    seam = noisy.copy()
    seam[30:34] = np.clip(seam[30:34] + 0.2, 0, 1)          # a bright line where two tiles meet
    e = region_metrics.seam_error(seam, ref, [32], [40], band=4)
    assert e["seam"] > 10 and math.isclose(e["seam"], e["border"] - e["interior"])
    assert region_metrics.seam_error(ref, ref, [32], [40])["seam"] == 0.0
    with pytest.raises(ValueError, match="interior borders"):
        region_metrics.seam_error(ref, ref, [64], [])
    with pytest.raises(ValueError, match="band"):
        region_metrics.seam_error(ref, ref, [32], [], band=0)


@pytest.mark.parametrize("h,w", [(75, 112), (100, 150), (150, 128), (512, 512)])
def test_a_quarter_window_at_half_stride_gives_the_write_ups_49(h, w):
    # the notebook's tiling: an even window of a quarter of each side, stride half of it -> 7 x 7 = 49
    ph, pw = (2 * math.ceil(n / 8) for n in (h, w))
    img = np.zeros((h, w, 3), np.float32)
    _, positions = tiling.extract_patches(img, (ph, pw), (ph // 2, pw // 2))
    assert len(positions) == 49
    _, tiles = tiling.extract_patches(img, (ph, pw), (ph, pw))
    assert len(tiles) == 16


def test_hann_stitching_of_exact_patches_is_exact_and_smooths_disagreeing_ones():
    rng = np.random.default_rng(2)
    img = rng.random((40, 48, 3)).astype(np.float32)
    patches, positions = tiling.extract_patches(img, (10, 12), (5, 6))
    for blend in ("mean", "hann"):
        assert np.allclose(tiling.stitch(patches, positions, img.shape, blend=blend), img, atol=1e-6)
    # patches that each carry their own offset: blending leaves smaller jumps between neighbours than overwriting
    biased = patches + rng.normal(0, 0.1, (len(patches), 1, 1, 1)).astype(np.float32)
    jumps = {}
    for blend in ("none", "mean", "hann"):
        out = tiling.stitch(biased, positions, img.shape, blend=blend) - img
        jumps[blend] = float(np.abs(np.diff(out, axis=0)).mean() + np.abs(np.diff(out, axis=1)).mean())
    assert max(jumps["hann"], jumps["mean"]) < jumps["none"]
