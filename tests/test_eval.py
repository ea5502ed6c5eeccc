"""labkit.evaluate / `labkit eval`: the BasicSR protocol on Set5-style folders (labkit/layouts.py fixtures)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import labkit.evaluate as ev
from labkit import layouts
from labkit.cli import main
from labkit.data.degrade import bicubic_downsample, bicubic_upsample, crop_to_multiple
from labkit.infer import predict
from labkit.io import read_image, write_image
from labkit.metrics import psnr, ssim
from labkit.models import RRDBNet


def _by_hand(folder, scale=4, lr_files=True):
    """Bicubic PSNR/SSIM-Y computed directly with labkit.metrics, the protocol spelled out."""
    out = {}
    for hr_path in sorted((folder / "HR").glob("*.png")):
        gt = read_image(hr_path)
        if lr_files:
            lr = read_image(folder / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
            gt = gt[: lr.shape[0] * scale, : lr.shape[1] * scale]
        else:
            gt = crop_to_multiple(gt, scale)
            lr = np.round(np.clip(bicubic_downsample(gt, scale), 0, 1) * 255) / 255
        sr = np.clip(bicubic_upsample(lr.astype(np.float32), scale), 0, 1)
        out[hr_path.stem] = (psnr(sr, gt, crop_border=scale, y_channel=True), ssim(sr, gt, crop_border=scale, y_channel=True))
    return out


@pytest.mark.parametrize("which, lr_files", [("set5_root", True), ("set5_hr_only", False)])
def test_bicubic_matches_the_protocol_by_hand(request, which, lr_files):
    folder = request.getfixturevalue(which)
    res = ev.evaluate_sr("bicubic", folder, scale=4, progress=False)
    hand = _by_hand(folder, lr_files=lr_files)
    assert [r["name"] for r in res["images"]] == sorted(hand) == ["baby", "bird", "butterfly", "head", "woman"]
    for r in res["images"]:
        assert r["psnr"] == pytest.approx(hand[r["name"]][0], abs=1e-9)
        assert r["ssim"] == pytest.approx(hand[r["name"]][1], abs=1e-12)
    assert res["psnr"] == pytest.approx(np.mean([v[0] for v in hand.values()]))
    assert res["images"][1]["size"] == [48, 64]  # bird is 51x66: cropped to a multiple of 4
    assert res["set"] == "Set5" and res["published"] == {"method": "bicubic", "psnr": 28.42, "ssim": 0.8104}
    assert ("files" in res["lr"]) == lr_files


def test_lr_files_and_on_the_fly_lr_agree(set5_root, set5_hr_only):
    """The fixture's LR files were made as the benchmarks' (mod-crop, MATLAB bicubic, 8-bit): same scores."""
    a = ev.evaluate_sr("bicubic", set5_root, scale=4, progress=False)
    b = ev.evaluate_sr("bicubic", set5_hr_only, scale=4, progress=False)
    assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-9) and a["ssim"] == pytest.approx(b["ssim"], abs=1e-12)


def test_table_states_the_convention_and_the_published_numbers(set5_root):
    text = ev.format_table(ev.evaluate_sr("bicubic", set5_root, scale=4, progress=False))
    assert "on Y (ITU-R BT.601 studio swing" in text and "crop_border = 4" in text and "8-bit" in text
    assert "published: bicubic" in text and "28.42" in text and "0.8104" in text
    assert text.count("\n") >= 5 + 5  # header lines + one row per image + mean + published


def _small_rrdb():
    """A random small RRDBNet whose output is not clamped flat: conv_last's bias lifts it to ~0.5."""
    torch.manual_seed(0)
    model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=4).eval()
    with torch.no_grad():
        model.conv_last.bias.fill_(0.5)
    return model


@pytest.fixture(scope="module")
def big_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big") / "Big"
    write_image(folder / "HR" / "photo.png", layouts.photo(0, 384, 512))  # LR 96 x 128
    return folder


def test_tiled_equals_untiled(big_set, monkeypatch):
    model = _small_rrdb()
    whole = ev.evaluate_sr(model, big_set, scale=4, tile=0, progress=False)
    monkeypatch.setattr(ev, "AUTO_TILE_PIXELS", 64 * 64)  # 96 x 128 LR is now "large": tiled automatically
    monkeypatch.setattr(ev, "AUTO_TILE", 48)
    tiled = ev.evaluate_sr(model, big_set, scale=4, overlap=32, progress=False)
    assert tiled["images"][0]["tiled"] and not whole["images"][0]["tiled"]
    assert tiled["psnr"] == pytest.approx(whole["psnr"], abs=0.01)
    assert tiled["ssim"] == pytest.approx(whole["ssim"], abs=1e-3)
    lr = np.round(bicubic_downsample(read_image(big_set / "HR" / "photo.png"), 4).clip(0, 1) * 255) / 255
    a = predict(model, lr.astype(np.float32), scale=4)
    b = predict(model, lr.astype(np.float32), scale=4, tile=48, overlap=32)
    seams = predict(model, lr.astype(np.float32), scale=4, tile=48, overlap=0)
    assert a.shape == b.shape == (384, 512, 3) and a.std() > 0.005  # a real, varying output
    assert np.abs(a - b).max() < 1e-4  # the small net's receptive field fits in overlap // 2
    assert np.abs(a - seams).max() > 1e-2  # without overlap the tiles' borders show: the check can fail


def test_cli_end_to_end(set5_root, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "bicubic", "--data", str(set5_root), "--scale", "4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SR evaluation: bicubic on Set5 x4, 5 images" in text and "crop_border = 4" in text
    saved = json.loads(out.read_text())
    assert saved["psnr"] == pytest.approx(ev.evaluate_sr("bicubic", set5_root, scale=4, progress=False)["psnr"])
    assert len(saved["images"]) == 5


def test_cli_model_by_name_with_weights(set5_root, tmp_path, capsys):
    from labkit.weights import save_state_dict

    torch.manual_seed(1)
    model = ev.load_sr_model("rrdbnet_x4", 4)
    with torch.no_grad():
        model.conv_last.bias.fill_(0.5)  # an output that is not clamped flat, so the weights show in the score
    path = save_state_dict(model, tmp_path / "rrdb.pth")
    assert main(["eval", "--model", "rrdbnet_x4", "--weights", str(path), "--data", str(set5_root),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert f"rrdbnet_x4 (weights {path})" in text and "published: RRDB (DF2K)" in text and "32.73" in text
    direct = ev.evaluate_sr(model, set5_root, scale=4, progress=False)
    mean = float(text.split("\nmean")[1].split()[0])
    assert mean == pytest.approx(direct["psnr"], abs=0.005)  # the file's weights were used
    fresh = ev.evaluate_sr("rrdbnet_x4", set5_root, scale=4, progress=False)  # random weights: another score
    assert abs(fresh["psnr"] - direct["psnr"]) > 0.1


def test_bad_folder_and_bad_arguments(set5_root, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}.*sr-benchmarks"):
        ev.evaluate_sr("bicubic", tmp_path / "nowhere", scale=4, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "bicubic", "--data", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and str(tmp_path / "empty") in err and "HR/*.png" in err and "#sr-benchmarks" in err
    broken = tmp_path / "Set5"
    shutil.copytree(set5_root, broken)
    (broken / "LR_bicubic" / "X4" / "headx4.png").unlink()
    with pytest.raises(ValueError, match=f"expected {broken}/LR_bicubic/X4/headx4.png .* for {broken}/HR/head.png"):
        ev.evaluate_sr("bicubic", broken, scale=4, progress=False)
    with pytest.raises(SystemExit):
        main(["eval", "--model", "no_such_net", "--data", str(set5_root)])
    assert "unknown model 'no_such_net'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="x4 configuration but --scale is 2"):
        ev.evaluate_sr("rrdbnet_x4", set5_root, scale=2, progress=False)
    with pytest.raises(ValueError, match="output .* is not x4"):
        ev.evaluate_sr(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2), set5_root, scale=4, progress=False)


@pytest.mark.parametrize("strip", [7, 16, 1000])
def test_strip_metrics_equal_labkit_metrics(monkeypatch, strip):
    """y_psnr_ssim (strips, for 4K images) gives labkit.metrics' numbers; strips of 7 rows are narrower than the window."""
    gt = layouts.photo(3, 101, 90)
    sr = np.clip(gt + np.random.default_rng(0).normal(0, 0.05, gt.shape), 0, 1).astype(np.float32)
    monkeypatch.setattr(ev, "STRIP_ROWS", strip)
    p, s = ev.y_psnr_ssim(sr, gt, 4)
    assert p == pytest.approx(psnr(sr, gt, crop_border=4, y_channel=True), abs=1e-9)
    assert s == pytest.approx(ssim(sr, gt, crop_border=4, y_channel=True), abs=1e-12)
    assert ev.y_psnr_ssim(gt, gt, 0)[0] == float("inf")
    with pytest.raises(ValueError, match="11x11"):
        ev.y_psnr_ssim(sr[:18], gt[:18], 4)


def test_lr_file_of_the_wrong_size_is_refused_naming_both_files(set5_root, tmp_path, capsys):
    """The training loaders' rule (GT = scale x LR) after BasicSR's mod-crop: bird's 51x66 HR pairs with a 12x16
    LR (its remainder of 3 rows / 2 columns is cropped); an LR 2 px narrower is an error, not a silent crop."""
    broken = tmp_path / "Set5"
    shutil.copytree(set5_root, broken)
    lr_path = broken / "LR_bicubic" / "X4" / "birdx4.png"
    write_image(lr_path, read_image(lr_path)[:, :-2])
    hr_path = broken / "HR" / "bird.png"
    with pytest.raises(ValueError) as err:
        ev.evaluate_sr("bicubic", broken, scale=4, progress=False)
    assert str(err.value).startswith(f"size mismatch: HR '{hr_path}' is 51x66 but LR '{lr_path}' is 12x14 (HxW); "
                                     "with scale 4 the LR should be 12x16")
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "bicubic", "--data", str(broken), "--scale", "4"])
    assert info.value.code == 2 and f"LR '{lr_path}' is 12x14" in capsys.readouterr().err
    ev.check_eval_sizes(hr_path, (51, 66), lr_path, (12, 16), 4)   # the mod-crop remainder is fine
    with pytest.raises(ValueError, match="LR should be 12x16"):
        ev.check_eval_sizes(hr_path, (51, 66), lr_path, (13, 17), 4)  # larger than HR / 4: refused as before


def test_too_small_image_is_named_with_its_size_and_the_minimum(set5_hr_only, tmp_path, capsys):
    assert [ev.min_eval_size(s) for s in (2, 3, 4)] == [16, 18, 20]
    folder = tmp_path / "tiny"
    shutil.copytree(set5_hr_only, folder)
    dot = folder / "HR" / "dot.png"
    write_image(dot, np.full((3, 3, 3), 0.5, np.float32))
    with pytest.raises(ValueError, match=f"^{dot} is 3x3 \\(HxW\\): too small to evaluate at x4; it needs at least 20x20"):
        ev.evaluate_sr("bicubic", folder, scale=4, progress=False)
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "bicubic", "--data", str(folder), "--scale", "4"])
    assert info.value.code == 2 and f"{dot} is 3x3" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    write_image(dot, rng.random((20, 20, 3)).astype(np.float32))      # the minimum is measured
    assert len(ev.evaluate_sr("bicubic", folder, scale=4, progress=False)["images"]) == 6
    write_image(dot, rng.random((19, 40, 3)).astype(np.float32))      # 16 rows after the mod-crop: 8 after the border
    with pytest.raises(ValueError, match="is 19x40 .* at least 20x20"):
        ev.evaluate_sr("bicubic", folder, scale=4, progress=False)


@pytest.mark.parametrize("case", ["random", "typo"])
def test_cli_bad_weights_is_one_clear_error(set5_root, tmp_path, capsys, case):
    bad = tmp_path / "w.pth"
    bad.write_bytes(bytes(range(256)) * 4)
    arg, phrase = {"random": (str(bad), f"weights file {bad} is not a PyTorch checkpoint"),
                   "typo": ("rrdb_psnr", "did you mean 'rrdb_psnr_x4'?")}[case]
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "rrdbnet_x4", "--weights", arg, "--data", str(set5_root), "--device", "cpu"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and phrase in err and "weights_only=False" not in err and "Traceback" not in err
