"""Issue 5 (write-up 001): the flare generator, the contest layout, k-fold, parallel patching,
adaptive augmentation by epoch count, and patch inference with/without padded-patch skipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit import infer, io as lio
from labkit.data import augment, flare, flare_synth, pairing, patch_export, patch_select, splitting, tiling


def _photo(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0.1, 0.6, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    return np.clip(base + 0.05 * rng.standard_normal((h, w, 3)).astype(np.float32), 0, 1)


# ------------------------------------------------------------------ add_flare


def test_flare_is_seeded_in_range_and_brightens():
    img = _photo()
    a, layer_a = flare_synth.add_flare(img, 3)
    b, layer_b = flare_synth.add_flare(img, np.random.default_rng(3))
    c, _ = flare_synth.add_flare(img, 4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(layer_a, layer_b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == img.shape
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert layer_a.min() >= 0.0 and layer_a.shape == img.shape
    assert np.all(a >= img - 1e-6)            # light is only added
    assert (a - img).mean() > 0.01


def test_flare_source_where_asked_and_saturates():
    img = _photo(80, 120)
    out, layer = flare_synth.add_flare(img, 0, position=(0.25, 0.75), num_ghosts=0)
    peak = np.unravel_index(np.argmax(layer[..., 1]), layer.shape[:2])
    assert abs(peak[0] - 0.25 * 79) <= 1 and abs(peak[1] - 0.75 * 119) <= 1
    assert out[peak].min() > 0.99             # the source clips to white
    # the glow falls off with distance from the source
    assert layer[peak[0], peak[1] - 10, 1] > layer[peak[0], 5, 1]


def test_flare_strength_orders_the_damage_and_uint8_kept():
    img = _photo()
    weak, _ = flare_synth.add_flare(img, 1, strength=0.1, veil=0.0)
    strong, _ = flare_synth.add_flare(img, 1, strength=1.5, veil=0.0)
    assert np.abs(strong - img).mean() > np.abs(weak - img).mean()
    u8 = (img * 255).round().astype(np.uint8)
    out, _ = flare_synth.add_flare(u8, 1)
    assert out.dtype == np.uint8 and out.shape == u8.shape


def test_flare_bad_input():
    with pytest.raises(ValueError, match="img"):
        flare_synth.add_flare(np.zeros((8, 8), np.float32), 0)
    with pytest.raises(ValueError, match="strength"):
        flare_synth.add_flare(_photo(), 0, strength=(1.0, 0.5))
    with pytest.raises(ValueError, match="position"):
        flare_synth.add_flare(_photo(), 0, position=(1.5, 0.2))
    with pytest.raises(TypeError):
        flare_synth.add_flare([[0.0]], 0)


# ------------------------------------------------------------------ make_patch_pairs


def _pairs(n=3):
    out = []
    for i in range(n):
        gt = _photo(100, 140, seed=i)
        lq, _ = flare_synth.add_flare(gt, i, position=(0.3, 0.3))
        out.append((f"img{i}", lq, gt))
    return out


def test_patch_selection_keeps_what_the_threshold_says():
    pairs = _pairs(2)
    res = patch_export.make_patch_pairs(pairs, img_size=32, stride=16, v_threshold=100)
    # recompute the rule on every padded window of the inputs
    expected_lq, expected_gt = [], []
    for _, lq, gt in pairs:
        p, _, _ = tiling.padded_patches(lq, 32, 16)
        q, _, _ = tiling.padded_patches(gt, 32, 16)
        bright = (p.max(axis=-1) > patch_select.V_MIN_001).sum(axis=(1, 2))
        expected_lq.append(p[bright >= 100])
        expected_gt.append(q[bright >= 100])
    np.testing.assert_array_equal(res["lq"], np.concatenate(expected_lq))
    np.testing.assert_array_equal(res["gt"], np.concatenate(expected_gt))
    assert res["n_selected"] == len(res["lq"]) < res["n_base"] == len(res["scores"])
    kept = np.asarray(res["scores"]) >= 100
    assert kept.sum() == res["n_selected"]
    everything = patch_export.make_patch_pairs(pairs, img_size=32, stride=16, v_threshold=None)
    assert len(everything["lq"]) == everything["n_base"]


def test_parallel_extraction_matches_serial_and_larger_patches_are_resized():
    pairs = _pairs(3)
    kw = dict(img_size=32, stride=16, v_threshold=50, larger_sizes=(64,), max_larger_per_image=3, seed=7)
    serial = patch_export.make_patch_pairs(pairs, process_num=1, **kw)
    parallel = patch_export.make_patch_pairs(pairs, process_num=2, **kw)
    np.testing.assert_array_equal(serial["lq"], parallel["lq"])
    np.testing.assert_array_equal(serial["gt"], parallel["gt"])
    assert serial["boxes"] == parallel["boxes"]
    big = [b for b in serial["boxes"] if b[3] == 64]
    assert len(big) == 3 * 3 and serial["lq"].shape[1:] == (32, 32, 3)
    i = serial["boxes"].index(big[0])
    name, y, x, s = big[0]
    src = dict((n, g) for n, _, g in pairs)[name]
    np.testing.assert_allclose(serial["gt"][i], patch_select.resize_down(src[y:y + s, x:x + s], 32), atol=1e-6)
    with pytest.raises(ValueError, match="process_num"):
        patch_export.make_patch_pairs(pairs, process_num=0)


def test_patch_pairs_from_files_to_folder(tmp_path):
    pairs = []
    for name, lq, gt in _pairs(2):
        pairs.append((name, lio.write_image(tmp_path / "in" / f"{name}.png", lq),
                      lio.write_image(tmp_path / "gt" / f"{name}.png", gt)))
    res = patch_export.make_patch_pairs(pairs, img_size=32, stride=32, v_threshold=None, save_dir=tmp_path / "p")
    assert "lq" not in res and len(res["files"]) == res["n_base"]
    ds = pairing.PairedFolderDataset(tmp_path / "p" / "input", tmp_path / "p" / "label")
    assert len(ds) == len(res["files"]) and ds[0]["lq"].shape == (3, 32, 32)


# ------------------------------------------------------------------ contest layout, k-fold


def test_flare_pairs_contest_layout_and_errors(tmp_path):
    root = tmp_path / "dacon"
    rows = ["img_id,input_img,label_img"]
    for i in range(3):
        lio.write_image(root / "train_input_img" / f"train_input_{10000 + i}.png", _photo(16, 24, i))
        lio.write_image(root / "train_label_img" / f"train_label_{10000 + i}.png", _photo(16, 24, i))
        rows.append(f"{10000 + i},train_input_{10000 + i}.png,train_label_{10000 + i}.png")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    pairs = flare.flare_pairs(root)
    assert [p[0] for p in pairs] == ["10000", "10001", "10002"]
    assert pairs[1][1].name == "train_input_10001.png" and pairs[1][2].name == "train_label_10001.png"
    item = flare.FlarePairDataset(pairs)[0]
    assert item["lq"].shape == (3, 16, 24) and item["name"] == "10000"
    (root / "train_label_img" / "train_label_10002.png").unlink()
    with pytest.raises(FileNotFoundError, match="line 4"):
        flare.flare_pairs(root)
    with pytest.raises(FileNotFoundError, match="no flare dataset layout"):
        flare.flare_pairs(tmp_path)


def test_flare_pairs_flare7k_layout(tmp_path):
    for i in range(2):
        lio.write_image(tmp_path / "input" / f"{i:05d}.png", _photo(16, 16, i))
        lio.write_image(tmp_path / "gt" / f"{i:05d}.png", _photo(16, 16, i))
    assert [p[0] for p in flare.flare_pairs(tmp_path)] == ["00000", "00001"]


def test_kfold_split_partitions():
    vals = []
    for k in range(10):
        train, valid = splitting.kfold_split(95, folds=10, valid_fold=k, seed=1)
        assert not set(train) & set(valid) and sorted(train + valid) == list(range(95))
        assert len(valid) in (9, 10)
        vals += valid
    assert sorted(vals) == list(range(95))                 # each index validates exactly once
    assert splitting.kfold_split(20, 4, 0, seed=1) == splitting.kfold_split(20, 4, 0, seed=1)
    with pytest.raises(ValueError, match="valid_fold"):
        splitting.kfold_split(10, 5, 5)
    with pytest.raises(ValueError, match="folds"):
        splitting.kfold_split(3, 5, 0)


# ------------------------------------------------------------------ adaptive augmentation by count


def test_epoch_counting_adaptive_augment_switches_on_at_start_epoch():
    calls = []

    def flip(lq, gt):
        calls.append(1)
        return lq[:, ::-1], gt[:, ::-1]

    aug = augment.EpochCountingAdaptiveAugment(flip, start_epoch=2, epoch_length=3)
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    applied = [aug(x, x)[0] is not x for _ in range(9)]
    assert applied == [False] * 6 + [True] * 3 and len(calls) == 3
    aug.set_epoch(0)
    assert aug(x, x)[0] is x
    with pytest.raises(ValueError, match="epoch_length"):
        augment.EpochCountingAdaptiveAugment(flip, start_epoch=1, epoch_length=0)


# ------------------------------------------------------------------ patch inference


class _Shift(torch.nn.Module):
    """A position-independent 'model': out = 0.5 * x + 0.25 (so stitching errors would show)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return [x, 0.5 * x + 0.25 + 0 * self.w]


class _BorderSensitive(torch.nn.Module):
    """Output = input + a patch-wide mean term: padded (black) windows pull it down."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + 0.5 * (x.mean(dim=(1, 2, 3), keepdim=True) - 0.5) + 0 * self.w


@pytest.mark.parametrize("shape,p,s", [((70, 90, 3), 32, 16), ((64, 64, 3), 32, 32), ((20, 50, 3), 32, 8)])
def test_skip_padded_inference_covers_every_pixel(shape, p, s):
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    for skip in (False, True):
        out, info = infer.padded_patch_predict(_Shift(), img, patch_size=p, stride=s, skip_padding=skip, batch_size=5)
        assert out.shape == img.shape
        np.testing.assert_allclose(out, 0.5 * img + 0.25, atol=1e-6)   # every pixel restored exactly once-averaged
    _, plain = infer.padded_patch_predict(_Shift(), img, patch_size=p, stride=s, skip_padding=False)
    _, skip = infer.padded_patch_predict(_Shift(), img, patch_size=p, stride=s, skip_padding=True)
    assert plain["patches"] == plain["patches_total"] and skip["patches"] <= plain["patches"]
    if shape[0] % s == 0 and p > s:
        assert skip["patches"] < plain["patches"]


def test_skipping_padded_patches_helps_a_border_sensitive_model():
    img = np.full((64, 96, 3), 0.5, np.float32)
    plain, _ = infer.padded_patch_predict(_BorderSensitive(), img, patch_size=32, stride=8, skip_padding=False)
    skip, _ = infer.padded_patch_predict(_BorderSensitive(), img, patch_size=32, stride=8, skip_padding=True)
    assert np.abs(skip - img).mean() < np.abs(plain - img).mean()


# ------------------------------------------------------------------ the lab's profile


def test_profile_04_full_is_the_writeup_recipe_and_smoke_scales_it():
    from labkit import models, profiles

    full, smoke = profiles.get("04", "full"), profiles.get("04", "smoke")
    assert (full["patch_size"], full["stride"], full["hsv_threshold"]) == (256, 128, 1000)
    assert tuple(full["larger_sizes"]) == (512, 768, 1024) and (full["folds"], full["valid_fold"]) == (10, 0)
    assert full["hinet"] == models.hinet.CONFIGS["hinet_gopro"]        # the write-up fine-tuned HINet-GoPro
    # the smoke threshold keeps the same fraction of bright pixels per window (1000 / 256^2)
    assert abs(smoke["hsv_threshold"] - 1000 * (smoke["patch_size"] / 256) ** 2) < 1
    assert smoke["stride"] * 2 == smoke["patch_size"]
