"""Every real dataset layout (labkit/layouts.py fixtures) loads through its loader, and every broken
variant fails with an error that names the path and the expected layout (data/README.md#...)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from labkit import layouts
from labkit.data import dacon_sr, flare, gopro, inpainting, pairing, sidd, sr
from labkit.data.degrade import bicubic_downsample

# ------------------------------------------------------------------------------------------ loads


@pytest.mark.parametrize("split, n, first", [("train", 3, "0001"), ("valid", 2, "0801")])
def test_div2k_loads(div2k_root, split, n, first):
    gt_root, lq_root = sr.div2k_paths(div2k_root, 4, split=split)
    assert gt_root == div2k_root / f"DIV2K_{split}_HR" and lq_root == div2k_root / f"DIV2K_{split}_LR_bicubic" / "X4"
    ds = pairing.PairedFolderDataset(lq_root, gt_root, scale=4)
    item = ds[0]
    assert len(ds) == n and item["name"] == first
    assert item["gt"].shape == (3, 48, 64) and item["lq"].shape == (3, 12, 16)
    # the LR file is MATLAB bicubic of the HR file, 8-bit rounded (the "BI" degradation)
    lr = np.clip(bicubic_downsample(item["gt"].permute(1, 2, 0).numpy(), 4), 0, 1)
    assert np.abs(lr - item["lq"].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6


def test_div2k_short_form_and_crops(tmp_path):
    root = layouts.make_div2k(tmp_path, short=True, n_train=2)
    gt_root, lq_root = sr.div2k_paths(root, 4)
    assert (gt_root.name, lq_root.parent.name) == ("HR", "LR_bicubic")
    ds = pairing.PairedFolderDataset(lq_root, gt_root, scale=4, gt_size=32)
    assert ds[1]["gt"].shape == (3, 32, 32) and ds[1]["lq"].shape == (3, 8, 8)


def test_sr_benchmark_layouts(set5_root, set5_hr_only, tmp_path):
    hr, lr = sr.sr_benchmark_paths(set5_root, 4)
    assert hr == set5_root / "HR" and lr == set5_root / "LR_bicubic" / "X4"
    assert sorted(p.stem for p in hr.iterdir()) == ["baby", "bird", "butterfly", "head", "woman"]
    assert (lr / "babyx4.png").is_file()
    assert sr.sr_benchmark_paths(set5_root, 2) == (set5_root / "HR", None)  # no X2: LR made on the fly
    assert sr.sr_benchmark_paths(set5_hr_only, 4) == (set5_hr_only / "HR", None)
    assert sr.sr_benchmark_paths(set5_root / "HR", 4) == (set5_root / "HR", None)  # a flat HR folder
    flat = tmp_path / "Set5"  # BasicSR's datasets/Set5: GTmod12 + LRbicx4 (same names)
    shutil.copytree(set5_root / "HR", flat / "GTmod12")
    shutil.copytree(set5_root / "LR_bicubic" / "X4", flat / "LRbicx4")
    assert sr.sr_benchmark_paths(flat, 4) == (flat / "GTmod12", flat / "LRbicx4")


def test_dacon_sr_loads(dacon_sr_root):
    paths = dacon_sr.dacon_sr_paths(dacon_sr_root)
    assert set(paths) == {"train_lr", "train_hr", "test_lr"}
    ds = pairing.PairedFolderDataset(paths["train_lr"], paths["train_hr"], scale=4)
    assert len(ds) == 3 and ds[2]["gt"].shape == (3, 64, 64) and ds[2]["lq"].shape == (3, 16, 16)
    assert len(list(paths["test_lr"].glob("*.png"))) == 2


def test_lg_flare_loads(lg_flare_root):
    pairs = flare.flare_pairs(lg_flare_root)
    assert [p[0] for p in pairs] == ["10000", "10001", "10002"]
    item = flare.FlarePairDataset(pairs)[1]
    assert item["lq"].shape == item["gt"].shape == (3, 48, 64)
    assert (item["lq"] - item["gt"]).mean() > 0.005  # the flare adds light
    assert len(list((lg_flare_root / "test_input_img").glob("test_input_*.png"))) == 2


def test_flare7k_loads(flare7k_root):
    pairs = flare.flare_pairs(flare7k_root)
    assert [(n, a.name, b.name) for n, a, b in pairs][0] == ("000000", "input_000000.png", "gt_000000.png")
    assert len(pairs) == 3 and flare.FlarePairDataset(pairs)[2]["gt"].shape == (3, 48, 64)


def test_sidd_npy_loads(sidd_npy_root):
    noisy, gt = sidd.load_sidd_npy(sidd_npy_root)
    assert noisy.shape == gt.shape == (4, 256, 256, 3) and noisy.dtype == np.uint8
    assert 2.0 < np.abs(noisy.astype(float) - gt).mean() < 30.0  # real-looking noise, not a copy
    splits = sidd.sidd_npy_splits(sidd_npy_root, counts=(2, 1, 1))
    assert [len(splits[k][0]) for k in ("train", "val", "test")] == [2, 1, 1]
    assert np.array_equal(splits["val"][1][0], gt[2])


def test_sidd_medium_loads(sidd_medium_root, tmp_path):
    pairs = sidd.sidd_medium_pairs(sidd_medium_root)
    assert [(n.name, g.name) for n, g in pairs][:2] == [("0001_NOISY_SRGB_010.PNG", "0001_GT_SRGB_010.PNG"),
                                                       ("0001_NOISY_SRGB_011.PNG", "0001_GT_SRGB_011.PNG")]
    assert len(pairs) == 4 and sidd.sidd_medium_pairs(sidd_medium_root / "Data") == pairs
    item = pairing.PairListDataset(pairs, gt_size=32)[3]
    assert item["lq"].shape == (3, 32, 32) and item["name"] == "0002_001_S6_00100_00020_3200_N_0002_GT_SRGB_011"
    flat = layouts.make_sidd_medium(tmp_path, flat=True)
    assert [n.name for n, _ in sidd.sidd_medium_pairs(flat)] == ["0001_010.png", "0001_011.png",
                                                                 "0002_010.png", "0002_011.png"]


@pytest.mark.parametrize("which", ["gopro_root", "gopro_flat_root"])
def test_gopro_loads(request, which):
    root = request.getfixturevalue(which)
    pairs = gopro.gopro_pairs(root, "train")
    assert [n for n, _, _ in pairs] == ["GOPR0372_07_00_000047", "GOPR0372_07_00_000048",
                                       "GOPR0374_11_00_000047", "GOPR0374_11_00_000048"]
    assert all(b.parent.name == "blur" and s.parent.name == "sharp" and b.name == s.name for _, b, s in pairs)
    sets = gopro.gopro_splits(root, gt_size=32)
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (4, 2, 2)
    item = sets["test"][0]
    assert item["gt"].shape == (3, 48, 64) and item["name"] == "GOPR0410_11_00_000047"
    assert sets["train"][0]["lq"].shape == (3, 32, 32)
    assert (item["lq"] - item["gt"]).abs().mean() > 0.005  # blurred


def test_gopro_paths_points_to_pairs_for_the_official_layout(gopro_root, gopro_flat_root):
    assert gopro.gopro_paths(gopro_flat_root, "test")[0] == gopro_flat_root / "Gopro" / "test" / "blur"
    with pytest.raises(FileNotFoundError, match="per-sequence layout .*gopro_pairs"):
        gopro.gopro_paths(gopro_root, "train")


def test_dacon_inpainting_loads(dacon_inpainting_root):
    train = inpainting.DaconInpaintingDataset(dacon_inpainting_root, "train")
    val = inpainting.DaconInpaintingDataset(dacon_inpainting_root, "val")
    assert (len(train), len(val)) == (4, 1)
    item = train[0]
    assert item["lq"].shape == (2, 64, 64) and item["gt"].shape == (3, 64, 64)
    assert 0.1 < item["mask"].mean() < 0.4  # the ~20 % mask is recovered from the pair
    test = inpainting.DaconInpaintingDataset(dacon_inpainting_root, "test", with_mask=False)
    assert len(test) == 2 and test[1]["lq"].shape == (1, 64, 64) and test[1]["name"] == "TEST_001"


# ------------------------------------------------------------------------------------------ broken layouts


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _rm(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def _rename(path: Path, name: str) -> None:
    path.rename(path.with_name(name))


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, arr)


def _csv_header(path: Path, old: str, new: str) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace(old, new)] + lines[1:]) + "\n")


def _div2k_pairs(r):
    gt, lq = sr.div2k_paths(r, 4)
    return pairing.PairedFolderDataset(lq, gt, scale=4)


def _dacon_sr_pairs(r):
    p = dacon_sr.dacon_sr_paths(r)
    return pairing.PairedFolderDataset(p["train_lr"], p["train_hr"], scale=4)


BROKEN = {
    # name: (fixture, break(root), load(root), exception, substrings the message must hold ({root} = the copy))
    "div2k missing LR folder": (
        "div2k_root", lambda r: _rm(r / "DIV2K_train_LR_bicubic"), _div2k_pairs, FileNotFoundError,
        ["{root}/DIV2K_train_LR_bicubic/X4", "found {root}/DIV2K_train_HR", "0001x4.png", "data/README.md#div2k"]),
    "div2k LR of another scale": (
        "div2k_root", lambda r: _rename(r / "DIV2K_train_LR_bicubic" / "X4", "X3"), _div2k_pairs, FileNotFoundError,
        ["LR scales present: X3", "data/README.md#div2k"]),
    "div2k mismatched LR name": (
        "div2k_root", lambda r: _rename(r / "DIV2K_train_LR_bicubic" / "X4" / "0002x4.png", "0002_x4.png"),
        _div2k_pairs, ValueError,
        ["expected {root}/DIV2K_train_LR_bicubic/X4/0002x4.png (or 0002.png) for {root}/DIV2K_train_HR/0002.png",
         "0002_x4.png", "data/README.md#paired-folders"]),
    "set5 empty": (
        "set5_root", lambda r: [_rm(r / "HR"), _rm(r / "LR_bicubic")],
        lambda r: sr.sr_benchmark_paths(r, 4), ValueError,
        ["{root}", "HR/*.png", "LR_bicubic/X4/*x4.png", "data/README.md#sr-benchmarks"]),
    "dacon sr missing test/lr": (
        "dacon_sr_root", lambda r: _rm(r / "test" / "lr"), _dacon_sr_pairs, FileNotFoundError,
        ["missing {root}/test/lr", "train/lr/*.png", "data/README.md#dacon-sr"]),
    "dacon sr hr without lr": (
        "dacon_sr_root", lambda r: _rm(r / "train" / "lr" / "0001.png"), _dacon_sr_pairs, ValueError,
        ["expected {root}/train/lr/0001x4.png (or 0001.png) for {root}/train/hr/0001.png"]),
    "lg flare csv column": (
        "lg_flare_root", lambda r: _csv_header(r / "train.csv", "label_img", "gt_img"), flare.flare_pairs, ValueError,
        ["{root}/train.csv", "img_id,input_img,label_img", "data/README.md#lg-flare-contest"]),
    "lg flare missing label": (
        "lg_flare_root", lambda r: _rm(r / "train_label_img" / "train_label_10001.png"), flare.flare_pairs,
        FileNotFoundError,
        ["{root}/train.csv line 3", "{root}/train_label_img/train_label_10001.png", "data/README.md#lg-flare-contest"]),
    "lg flare no layout": (
        "lg_flare_root", lambda r: _rm(r / "train.csv"), flare.flare_pairs, FileNotFoundError,
        ["{root}", "train.csv with train_input_img/", "input/ and gt/", "data/README.md#flare7k"]),
    "flare7k unpaired": (
        "flare7k_root", lambda r: _rm(r / "gt" / "gt_000001.png"), flare.flare_pairs, ValueError,
        ["{root}/input/input_000001.png has no partner, expected {root}/gt/gt_000001.png", "data/README.md#flare7k"]),
    "sidd npy dtype": (
        "sidd_npy_root", lambda r: _save(r / "gt_images_256.npy", np.zeros((4, 256, 256, 3), np.float32)),
        sidd.load_sidd_npy, ValueError,
        ["{root}/gt_images_256.npy", "expected dtype uint8", "float32", "data/README.md#sidd-arrays"]),
    "sidd npy shape": (
        "sidd_npy_root", lambda r: _save(r / "noisy_images_256.npy", np.zeros((4, 128, 128, 3), np.uint8)),
        sidd.load_sidd_npy, ValueError,
        ["{root}/noisy_images_256.npy", "(N, 256, 256, 3)", "(4, 128, 128, 3)", "data/README.md#sidd-arrays"]),
    "sidd npy missing": (
        "sidd_npy_root", lambda r: _rm(r / "gt_images_256.npy"), sidd.load_sidd_npy, FileNotFoundError,
        ["{root}/gt_images_256.npy", "noisy_images_256.npy", "uint8 N x 256 x 256 x 3", "data/README.md#sidd-arrays"]),
    "sidd npy counts differ": (
        "sidd_npy_root", lambda r: _save(r / "gt_images_256.npy", np.zeros((3, 256, 256, 3), np.uint8)),
        sidd.load_sidd_npy, ValueError, ["{root}/noisy_images_256.npy holds 4", "holds 3", "#sidd-arrays"]),
    "sidd medium missing gt": (
        "sidd_medium_root", lambda r: _rm(r / "Data" / "0002_001_S6_00100_00020_3200_N" / "0002_GT_SRGB_010.PNG"),
        sidd.sidd_medium_pairs, ValueError,
        ["expected {root}/Data/0002_001_S6_00100_00020_3200_N/0002_GT_SRGB_010.PNG", "data/README.md#sidd-medium"]),
    "sidd medium no layout": (
        "sidd_medium_root", lambda r: _rename(r / "Data", "Scenes"), sidd.sidd_medium_pairs, FileNotFoundError,
        ["{root}", "Data/<scene>/0001_NOISY_SRGB_010.PNG", "NOISY/ + GT/", "data/README.md#sidd-medium"]),
    "gopro missing sharp frame": (
        "gopro_root", lambda r: _rm(r / "train" / "GOPR0374_11_00" / "sharp" / "000048.png"),
        lambda r: gopro.gopro_splits(r), ValueError,
        ["{root}/train/GOPR0374_11_00/blur/000048.png has no partner",
         "expected {root}/train/GOPR0374_11_00/sharp/000048.png", "data/README.md#gopro"]),
    "gopro flat missing test": (
        "gopro_flat_root", lambda r: _rm(r / "Gopro" / "test"), lambda r: gopro.gopro_splits(r), FileNotFoundError,
        ["{root}/Gopro/test/blur", "test/blur and test/sharp", "data/README.md#gopro"]),
    "inpainting csv column": (
        "dacon_inpainting_root", lambda r: _csv_header(r / "train.csv", "gt_image_path", "gt_path"),
        inpainting.DaconInpaintingDataset, ValueError,
        ["{root}/train.csv", "['gt_image_path']", "ID,input_image_path,gt_image_path", "#dacon-inpainting"]),
    "inpainting missing gt": (
        "dacon_inpainting_root", lambda r: _rm(r / "train_gt" / "TRAIN_00003.png"),
        inpainting.DaconInpaintingDataset, FileNotFoundError,
        ["{root}/train.csv line 5", "gt_image_path file not found: {root}/train_gt/TRAIN_00003.png",
         "data/README.md#dacon-inpainting"]),
    "inpainting missing csv": (
        "dacon_inpainting_root", lambda r: _rm(r / "train.csv"), inpainting.DaconInpaintingDataset, FileNotFoundError,
        ["{root}/train.csv not found", "ID, input_image_path, gt_image_path", "train_input/ and train_gt/"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_layout_names_path_and_layout(request, tmp_path, case):
    fixture, breaks, load, exc, parts = BROKEN[case]
    root = _copy(request.getfixturevalue(fixture), tmp_path)
    breaks(root)
    with pytest.raises(exc) as info:
        load(root)
    msg = str(info.value)
    for part in parts:
        assert part.format(root=root) in msg, f"{case}: {part.format(root=root)!r} not in {msg!r}"


def test_every_anchor_exists_in_the_readme():
    """The errors point at data/README.md#<anchor>: each anchor is a heading there (GitHub slugs)."""
    import re

    readme = Path(__file__).resolve().parents[1] / pairing.README
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.+)$", readme.read_text(encoding="utf-8"), flags=re.M)}
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(Path(pairing.__file__).parent.glob("*.py")))
    used = set(re.findall(r"\bsee\('([a-z0-9-]+)'\)", source))
    assert used and used <= slugs, f"anchors without a heading: {sorted(used - slugs)}"

