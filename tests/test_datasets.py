"""Tests for labkit.data.sr and labkit.data.pairing: on-the-fly SR pairs, paired folders, DIV2K layouts, array pairs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from labkit.data.pairing import ArrayPairDataset, PairedFolderDataset, paired_random_crop
from labkit.data.sr import SRFolderDataset, div2k_paths, sr_pairs
from labkit.data.degrade import bicubic_downsample
from labkit.io import read_image

RNG = np.random.default_rng(7)


def _smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A textured uint8 test image (random low-frequency colour field plus fine noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((h // 8 + 2, w // 8 + 2, 3))
    img = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
    img = 0.8 * img + 0.2 * rng.random((h, w, 3))
    return np.round(img * 255).astype(np.uint8)


def _save(path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def read_image_like(u8: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [0,1], as read_image would return it."""
    return u8.astype(np.float32) / 255.0


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy().transpose(1, 2, 0)


@pytest.fixture()
def hr_folder(tmp_path):
    folder = tmp_path / "hr"
    for i, (h, w) in enumerate([(48, 64), (64, 56), (40, 40)]):
        _save(folder / f"img{i}.png", _smooth_image(h, w, i))
    return folder


# ------------------------------------------------------------------ SRFolderDataset


def test_sr_folder_whole_images_match_bicubic(hr_folder):
    ds = SRFolderDataset(hr_folder, scale=4)
    assert len(ds) == 3
    item = ds[1]
    assert set(item) == {"lq", "gt", "name"} and item["name"] == "img1"
    assert item["gt"].dtype == torch.float32 and item["gt"].shape == (3, 64, 56)
    assert item["lq"].shape == (3, 16, 14)
    gt = read_image(hr_folder / "img1.png")
    np.testing.assert_array_equal(_np(item["gt"]), gt)
    expected = np.clip(bicubic_downsample(gt, 4), 0, 1)
    np.testing.assert_allclose(_np(item["lq"]), expected, atol=1e-6)
    # the cached second read gives the same pair
    again = ds[1]
    assert torch.equal(again["lq"], item["lq"]) and torch.equal(again["gt"], item["gt"])


def test_sr_folder_repeat_and_cache_off(hr_folder):
    ds = SRFolderDataset(hr_folder, scale=2, repeat=5, cache=False)
    assert len(ds) == 15
    assert ds[4]["name"] == ds[1]["name"] == "img1"
    with pytest.raises(IndexError):
        ds[15]


def _locate(full: np.ndarray, patch: np.ndarray, step: int) -> tuple[int, int]:
    """Find where ``patch`` sits in ``full`` (searching a grid of ``step``); exact match."""
    ph, pw = patch.shape[:2]
    hits = [
        (y, x)
        for y in range(0, full.shape[0] - ph + 1, step)
        for x in range(0, full.shape[1] - pw + 1, step)
        if np.array_equal(full[y : y + ph, x : x + pw], patch)
    ]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_crops_are_aligned(scale):
    gt_full = read_image_like(_smooth_image(96, 120, scale))
    ds = SRFolderDataset.from_arrays([("pic", gt_full)], scale, gt_size=12 * scale, repeat=6)
    lq_full = np.clip(bicubic_downsample(gt_full, scale), 0, 1)
    torch.manual_seed(0)
    for k in range(len(ds)):
        item = ds[k]
        gt, lq = _np(item["gt"]), _np(item["lq"])
        assert gt.shape == (12 * scale, 12 * scale, 3) and lq.shape == (12, 12, 3)
        # the GT patch starts on the LR grid (whole-pixel alignment) ...
        y, x = _locate(gt_full, gt, 1)
        assert y % scale == 0 and x % scale == 0
        # ... and the LR patch is exactly that region of the downsampled whole image
        ly, lx = y // scale, x // scale
        np.testing.assert_allclose(lq, lq_full[ly : ly + 12, lx : lx + 12], atol=1e-6)
        # away from the patch edges it also equals the downsampled GT patch
        own = np.clip(bicubic_downsample(gt, scale), 0, 1)
        np.testing.assert_allclose(lq[3:-3, 3:-3], own[3:-3, 3:-3], atol=1e-6)


def test_seeded_crops_reproducible_with_dataloader():
    items = [(f"p{i}", read_image_like(_smooth_image(64, 64, 10 + i))) for i in range(3)]
    ds = SRFolderDataset.from_arrays(items, 2, gt_size=16, repeat=4)

    def run(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [b["gt"] for b in DataLoader(ds, batch_size=4, shuffle=True, num_workers=0)]

    a, b, c = run(3), run(3), run(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_sr_non_divisible_raises_naming_file(tmp_path):
    folder = tmp_path / "odd"
    _save(folder / "good.png", _smooth_image(32, 32, 1))
    _save(folder / "odd_one.png", _smooth_image(33, 32, 2))
    with pytest.raises(ValueError, match=r"odd_one\.png.*33x32"):
        SRFolderDataset(folder, scale=4)


def test_sr_crop_to_scale_warns_once(tmp_path):
    folder = tmp_path / "odd"
    for i, (h, w) in enumerate([(33, 32), (34, 35), (30, 31), (32, 32)]):
        _save(folder / f"f{i}.png", _smooth_image(h, w, i))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = SRFolderDataset(folder, scale=4, crop_to_scale=True)
    ours = [w for w in rec if "crop_to_scale" in str(w.message)]
    assert len(ours) == 1
    assert "3 of 4" in str(ours[0].message)
    assert [tuple(ds[i]["gt"].shape[1:]) for i in range(4)] == [(32, 32), (32, 32), (28, 28), (32, 32)]
    # bottom/right cropped: the top-left corner is kept
    np.testing.assert_array_equal(_np(ds[1]["gt"]), read_image(folder / "f1.png")[:32, :32])


def test_sr_argument_errors(hr_folder, tmp_path):
    with pytest.raises(ValueError, match="multiple of scale"):
        SRFolderDataset(hr_folder, scale=4, gt_size=30)
    with pytest.raises(ValueError, match=r"img2\.png.*gt_size 48"):
        SRFolderDataset(hr_folder, scale=4, gt_size=48)  # img2 is 40x40
    with pytest.raises(ValueError, match="scale"):
        SRFolderDataset(hr_folder, scale=0)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(ValueError, match="nothing"):
        SRFolderDataset(empty, scale=2)


def test_sr_augment_applied_after_crop_and_checked():
    items = [("a", read_image_like(_smooth_image(32, 32, 3)))]
    flip = SRFolderDataset.from_arrays(items, 2, augment=lambda lq, gt: (lq[:, ::-1], gt[:, ::-1]))
    plain = SRFolderDataset.from_arrays(items, 2)
    torch.testing.assert_close(flip[0]["gt"], plain[0]["gt"].flip(-1))
    torch.testing.assert_close(flip[0]["lq"], plain[0]["lq"].flip(-1))
    broken = SRFolderDataset.from_arrays(items, 2, augment=lambda lq, gt: (lq, gt[:8]))
    with pytest.raises(ValueError, match="augment"):
        broken[0]


# ------------------------------------------------------------------ PairedFolderDataset


def _div2k_like(root, names, scale=2, hr=(24, 20)):
    gt_dir, lq_dir = root / "HR", root / "LR_bicubic" / f"X{scale}"
    for i, n in enumerate(names):
        gt = _smooth_image(*hr, i)
        _save(gt_dir / f"{n}.png", gt)
        _save(lq_dir / f"{n}x{scale}.png", bicubic_downsample(gt, scale))
    return gt_dir, lq_dir


def test_paired_div2k_names_match(tmp_path):
    gt_dir, lq_dir = _div2k_like(tmp_path, ["0001", "0002", "0003"], scale=2)
    ds = PairedFolderDataset(lq_dir, gt_dir, scale=2)
    assert len(ds) == 3
    item = ds[2]
    assert item["name"] == "0003"
    assert item["gt"].shape == (3, 24, 20) and item["lq"].shape == (3, 12, 10)
    np.testing.assert_array_equal(_np(item["lq"]), read_image(lq_dir / "0003x2.png"))
    np.testing.assert_array_equal(_np(item["gt"]), read_image(gt_dir / "0003.png"))
    torch.manual_seed(1)
    crop = PairedFolderDataset(lq_dir, gt_dir, scale=2, gt_size=8)[0]
    assert crop["gt"].shape == (3, 8, 8) and crop["lq"].shape == (3, 4, 4)


def test_paired_cache_gives_the_same_items_without_reading_again(tmp_path):
    gt_dir, lq_dir = _div2k_like(tmp_path, ["0001", "0002"], scale=2)
    plain = PairedFolderDataset(lq_dir, gt_dir, scale=2, gt_size=8, repeat=3)
    cached = PairedFolderDataset(lq_dir, gt_dir, scale=2, gt_size=8, repeat=3, cache=True)
    torch.manual_seed(4)
    first = [plain[k] for k in range(len(plain))]
    torch.manual_seed(4)
    second = [cached[k] for k in range(len(cached))]
    for a, b in zip(first, second):
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"]) and a["name"] == b["name"]
    for f in [*gt_dir.iterdir(), *lq_dir.iterdir()]:
        f.unlink()   # every pair was read once: the cache serves them now, the plain dataset cannot
    torch.manual_seed(4)
    again = [cached[k] for k in range(len(cached))]
    assert all(torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"]) for a, b in zip(again, second))
    with pytest.raises(FileNotFoundError):
        plain[0]


def test_paired_missing_partner_named(tmp_path):
    gt_dir, lq_dir = _div2k_like(tmp_path, ["0001", "0002"], scale=2)
    _save(gt_dir / "0007.png", _smooth_image(24, 20, 9))
    with pytest.raises(ValueError, match=r"0007\.png") as e:
        PairedFolderDataset(lq_dir, gt_dir, scale=2)
    assert "1 in all" in str(e.value)
    _save(lq_dir / "0099x2.png", _smooth_image(12, 10, 9))
    with pytest.raises(ValueError, match=r"0099x2\.png"):
        PairedFolderDataset(lq_dir, gt_dir, scale=2)


def test_paired_many_orphans_listed_with_count(tmp_path):
    gt_dir, lq_dir = _div2k_like(tmp_path, ["0001"], scale=2)
    for i in range(10, 18):
        _save(gt_dir / f"{i:04d}.png", _smooth_image(8, 8, i))
    with pytest.raises(ValueError, match="8 in all"):
        PairedFolderDataset(lq_dir, gt_dir, scale=2)


def test_paired_size_mismatch_names_both(tmp_path):
    gt_dir, lq_dir = _div2k_like(tmp_path, ["0001"], scale=2)
    _save(lq_dir / "0001x2.png", _smooth_image(11, 10, 0))  # should be 12x10
    ds = PairedFolderDataset(lq_dir, gt_dir, scale=2)  # names fine: construction succeeds
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert "0001x2.png" in msg and "0001.png" in msg and "24x20" in msg and "11x10" in msg


def test_paired_empty_folder(tmp_path):
    gt_dir, _ = _div2k_like(tmp_path, ["0001"], scale=2)
    empty = tmp_path / "empty_lq"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty_lq"):
        PairedFolderDataset(empty, gt_dir, scale=2)


# ------------------------------------------------------------------ div2k_paths


def test_div2k_paths_layouts(tmp_path):
    official = tmp_path / "official"
    (official / "DIV2K_train_HR").mkdir(parents=True)
    (official / "DIV2K_train_LR_bicubic" / "X4").mkdir(parents=True)
    assert div2k_paths(official, 4, "train") == (
        official / "DIV2K_train_HR",
        official / "DIV2K_train_LR_bicubic" / "X4",
    )
    simple = tmp_path / "simple"
    gt_dir, lq_dir = _div2k_like(simple, ["0001"], scale=2)
    assert div2k_paths(simple, 2) == (gt_dir, lq_dir)
    PairedFolderDataset(*reversed(div2k_paths(simple, 2)), scale=2)  # usable as is


def test_div2k_paths_missing(tmp_path):
    root = tmp_path / "div2k"
    (root / "DIV2K_valid_HR").mkdir(parents=True)
    (root / "DIV2K_valid_LR_bicubic" / "X2").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as e:
        div2k_paths(root, 4, "valid")
    msg = str(e.value)
    assert "DIV2K_valid_LR_bicubic" in msg and "X4" in msg and "X2" in msg
    with pytest.raises(FileNotFoundError, match="nowhere"):
        div2k_paths(tmp_path / "nowhere", 4)
    with pytest.raises(ValueError, match="split"):
        div2k_paths(root, 2, "test")


# ------------------------------------------------------------------ paired_random_crop


def test_paired_random_crop_semantics_and_errors():
    lq = np.arange(10 * 8).reshape(10, 8, 1).astype(np.float32)
    gt = np.repeat(np.repeat(lq, 3, axis=0), 3, axis=1)  # nearest x3: every gt pixel knows its lq pixel
    for seed in range(5):
        lp, gp = paired_random_crop(lq, gt, 12, 3, np.random.default_rng(seed))
        assert lp.shape == (4, 4, 1) and gp.shape == (12, 12, 1)
        np.testing.assert_array_equal(gp[::3, ::3], lp)
    with pytest.raises(ValueError, match=r"30x24.*10x8"):
        paired_random_crop(lq, gt[:, :24][:30], 12, 4, 0)  # wrong scale
    with pytest.raises(ValueError, match="10x8"):
        paired_random_crop(lq, gt, 27, 3, 0)  # 9x9 lq patch does not fit in 10x8
    with pytest.raises(ValueError, match="multiple"):
        paired_random_crop(lq, gt, 10, 3, 0)


# ------------------------------------------------------------------ ArrayPairDataset, sr_pairs


def test_array_pair_dataset_uint8_and_float():
    gt = RNG.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    lq = gt[:, ::2, ::2]
    ds = ArrayPairDataset(lq, gt, scale=2)
    assert len(ds) == 4
    item = ds[3]
    assert item["lq"].shape == (3, 4, 4) and item["gt"].dtype == torch.float32
    np.testing.assert_allclose(_np(item["gt"]), gt[3] / 255.0, atol=1e-7)
    assert item["name"] == "000003"
    fl = ArrayPairDataset([gt[0] / 255.0], [gt[0] / 255.0], names=["only"])
    assert fl[0]["name"] == "only"
    with pytest.raises(ValueError, match="pair 1"):
        ArrayPairDataset([lq[0], lq[1][:3]], [gt[0], gt[1]], scale=2)
    with pytest.raises(ValueError, match="3 lq"):
        ArrayPairDataset(lq[:3], gt)


def test_sr_pairs_crop_and_downsample():
    img = _smooth_image(30, 41, 5)
    (name, lq, gt), = sr_pairs([("odd", img)], 4)
    assert name == "odd" and gt.shape == (28, 40, 3) and lq.shape == (7, 10, 3)
    assert gt.dtype == np.float32 and lq.dtype == np.float32
    np.testing.assert_allclose(gt, img[:28, :40] / 255.0, atol=1e-7)
    np.testing.assert_allclose(lq, np.clip(bicubic_downsample(gt, 4), 0, 1), atol=1e-6)


def test_array_pairs_augment_without_scale():
    """scale=None skips the size check (the precedence bug made it a TypeError)."""
    import numpy as np
    from labkit.data.pairing import ArrayPairDataset
    a = np.zeros((8, 6, 3), np.float32)
    ds = ArrayPairDataset([a], [a + 0.5], augment=lambda lq, gt: (lq[:, ::-1], gt[:4]))
    item = ds[0]
    assert tuple(item["lq"].shape) == (3, 8, 6) and tuple(item["gt"].shape) == (3, 4, 6)
