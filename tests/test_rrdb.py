"""RRDB+ (issue 4): RRDBNet's official layout and counts, the three checkpoint layouts, the x8
ensemble and tiling on RRDBNet, the 000 data helpers and the competition submission."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from labkit import models, weights
from labkit.data import dacon_sr, pairing, patch_export, tiling
from labkit.infer import count_parameters, dihedral_predictions, self_ensemble, tiled
from labkit.io import read_image, write_image
from labkit.submission import SubmissionError, check_submission, write_submission
from labkit.weights import load_weights, rrdb_layout, rrdb_to_basicsr


# ------------------------------------------------------------------------------ architecture


@pytest.mark.parametrize("name,count", [("rrdbnet_x4", 16_697_987), ("rrdbnet_x2", 16_703_171)])
def test_rrdbnet_parameter_counts_match_reference(name, count):
    net = models.build(name)
    assert count_parameters(net) == count
    assert len(net.state_dict()) == 702  # REFERENCE.md: 702 tensors, every conv with a bias


def basicsr_keys(num_block: int) -> list[str]:
    """BasicSR rrdbnet_arch.py's key names, written out from the official layout."""
    keys = ["conv_first.weight", "conv_first.bias"]
    for i in range(num_block):
        for r in (1, 2, 3):
            keys += [f"body.{i}.rdb{r}.conv{c}.{p}" for c in range(1, 6) for p in ("weight", "bias")]
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        keys += [f"{name}.weight", f"{name}.bias"]
    return keys


def test_rrdbnet_has_the_basicsr_keys_and_unshuffle_channels():
    assert list(models.build("rrdbnet_x4").state_dict()) == basicsr_keys(23)
    assert models.build("rrdbnet_x2").conv_first.in_channels == 12
    assert models.build("rrdbnet_x1").conv_first.in_channels == 48


@pytest.mark.parametrize("scale,size", [(4, (13, 17)), (2, (14, 18)), (1, (16, 20))])
def test_rrdbnet_output_shapes(scale, size):
    net = models.RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, size[0] * scale, size[1] * scale)


def test_rrdbnet_rejects_bad_scale_and_indivisible_input():
    with pytest.raises(ValueError, match="scale"):
        models.RRDBNet(scale=3)
    net = models.RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.rand(1, 3, 15, 16))


# ------------------------------------------------------------------------------ key layouts


def _small(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.RRDBNet(scale=4, num_feat=8, num_block=2, num_grow_ch=4).eval()


def _to_esrgan_by_hand(sd: dict) -> dict:
    """The ESRGAN repository's RRDBNet_arch.py names (RRDB_PSNR_x4.pth), spelled out independently."""
    top = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":  # body.i.rdbk.convj.w -> RRDB_trunk.i.RDBk.convj.w
            out[f"RRDB_trunk.{parts[1]}.RDB{parts[2][-1]}.{parts[3]}.{parts[4]}"] = v
        else:
            out[f"{top.get(parts[0], parts[0])}.{parts[1]}"] = v
    return out


def _to_old_by_hand(sd: dict, num_block: int) -> dict:
    """The oldest ESRGAN files: one ``model`` Sequential (architecture.py)."""
    top = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}", "conv_up1": "model.3",
           "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            out[f"model.1.sub.{parts[1]}.RDB{parts[2][-1]}.{parts[3]}.0.{parts[4]}"] = v
        else:
            out[f"{top[parts[0]]}.{parts[1]}"] = v
    return out


@pytest.mark.parametrize("layout", ["basicsr_params", "basicsr_params_ema", "esrgan", "esrgan_old"])
def test_every_rrdb_layout_loads_strictly_and_gives_identical_outputs(tmp_path, layout):
    src, dst = _small(0), _small(1)
    sd = src.state_dict()
    obj = {
        "basicsr_params": {"params": sd},
        "basicsr_params_ema": {"params_ema": sd, "params": _small(7).state_dict()},
        "esrgan": _to_esrgan_by_hand(sd),
        "esrgan_old": _to_old_by_hand(sd, num_block=2),
    }[layout]
    path = tmp_path / f"{layout}.pth"
    torch.save(obj, path)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert not torch.equal(src(x), dst(x))
        load_weights(dst, path, strict=True, converters=[rrdb_to_basicsr])
        assert torch.equal(src(x), dst(x))


@pytest.mark.parametrize("layout,wrap", [("esrgan", None), ("esrgan_old", None), ("esrgan", "params"),
                                         ("esrgan_old", "params_ema"), ("esrgan", "module")])
def test_official_rrdb_layouts_load_with_no_converter(tmp_path, layout, wrap):
    """Issue 11: RRDBNet recognises its official layouts (``official_layouts``), no converters= needed."""
    src, dst = _small(0), _small(1)
    sd = src.state_dict()
    official = _to_esrgan_by_hand(sd) if layout == "esrgan" else _to_old_by_hand(sd, num_block=2)
    obj = {None: official, "params": {"params": official},
           "params_ema": {"params_ema": official, "params": _to_old_by_hand(_small(7).state_dict(), 2)},
           "module": {f"module.{k}": v for k, v in official.items()}}[wrap]
    path = tmp_path / f"{layout}.pth"
    torch.save(obj, path)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert not torch.equal(src(x), dst(x))
        assert load_weights(dst, path) is dst  # strict=True is the default
        assert torch.equal(src(x), dst(x))


def test_full_size_rrdb_psnr_x4_in_esrgan_layout_loads_in_one_line(tmp_path):
    """The issue's done-when, literally: the ESRGAN repository's RRDB_PSNR_x4.pth layout, (64, 23, 32)."""
    from labkit.models import RRDBNet

    torch.manual_seed(0)
    src = RRDBNet(num_feat=64, num_block=23, num_grow_ch=32, scale=4)
    path = tmp_path / "RRDB_PSNR_x4.pth"
    torch.save(_to_esrgan_by_hand(src.state_dict()), path)
    assert "RRDB_trunk.22.RDB3.conv5.weight" in torch.load(path, weights_only=True)
    dst = weights.load_weights(RRDBNet(num_feat=64, num_block=23, num_grow_ch=32, scale=4), str(path))
    ref = src.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in dst.state_dict().items())


def test_truncated_esrgan_file_names_the_closest_layout_and_missing_keys(tmp_path):
    official = _to_esrgan_by_hand(_small(0).state_dict())
    truncated = {k: v for k, v in official.items() if not k.startswith("RRDB_trunk.1.")}  # one block lost
    path = tmp_path / "RRDB_truncated.pth"
    torch.save(truncated, path)
    with pytest.raises(weights.WeightsMismatchError) as err:
        load_weights(_small(1), path)
    msg = str(err.value)
    assert err.value.closest == "esrgan"
    assert "closest: 'esrgan' layout" in msg and "RRDBNet" in msg and str(path) in msg
    assert "missing keys (30): body.1.rdb1.conv1.weight" in msg  # 3 RDBs x 5 convs x (weight, bias)
    # an extra key in an otherwise ESRGAN file: still the ESRGAN layout, the key listed as unexpected
    extra = {**official, "extra_conv.weight": torch.zeros(1)}
    torch.save(extra, path)
    with pytest.raises(weights.WeightsMismatchError, match=r"(?s)closest: 'esrgan'.*unexpected keys \(1\): extra_conv"):
        load_weights(_small(1), path)
    # strict=False loads the ESRGAN dict's known keys and ignores the extra one
    dst = load_weights(_small(1), path, strict=False)
    assert torch.equal(dst.conv_body.weight, official["trunk_conv.weight"])


def test_swinir_state_dict_into_rrdbnet_is_none_of_its_layouts(tmp_path):
    swinir = models.SwinIR(upscale=4, img_size=16, window_size=4, depths=[2], embed_dim=16, num_heads=[2])
    path = tmp_path / "swinir_x4.pth"
    torch.save({"params": swinir.state_dict()}, path)
    with pytest.raises(weights.WeightsMismatchError) as err:
        load_weights(_small(0), path)
    msg = str(err.value)
    assert "none of RRDBNet's known layouts (own, esrgan, esrgan_old)" in msg and str(path) in msg
    assert "fewer than half the keys match" in msg and "patch_embed" in msg
    # a model of another configuration: the layout is recognised, the shapes are what differs
    path = tmp_path / "wide.pth"
    torch.save(_to_esrgan_by_hand(models.RRDBNet(num_feat=16, num_block=2, num_grow_ch=4).state_dict()), path)
    with pytest.raises(weights.WeightsMismatchError, match=r"'esrgan' layout but shapes differ(?s:.*)conv_first.weight"):
        load_weights(_small(0), path)


def test_rrdb_to_basicsr_with_a_layout_can_keep_unknown_keys():
    sd = _small(0).state_dict()
    official = {**_to_esrgan_by_hand(sd), "extra.weight": torch.zeros(1)}
    out = rrdb_to_basicsr(official, "esrgan", keep_unknown=True)
    assert out == {**sd, "extra.weight": official["extra.weight"]}
    assert rrdb_to_basicsr(sd, "esrgan_old", keep_unknown=True) == sd  # another layout passes through
    with pytest.raises(ValueError, match="extra.weight"):
        rrdb_to_basicsr(official, "esrgan")
    with pytest.raises(ValueError, match="layout must be"):
        rrdb_to_basicsr(sd, "keras")


def test_rrdb_from_basicsr_inverts_the_converter():
    sd = _small(0).state_dict()
    assert weights.rrdb_from_basicsr(sd, "esrgan") == _to_esrgan_by_hand(sd)
    assert weights.rrdb_from_basicsr(sd, "esrgan_old") == _to_old_by_hand(sd, 2)
    for layout in ("esrgan", "esrgan_old"):
        other = weights.rrdb_from_basicsr(sd, layout)
        assert rrdb_layout(other) == layout
        assert rrdb_to_basicsr(other) == sd


def test_rrdb_converter_errors_name_the_problem():
    with pytest.raises(ValueError, match="not an RRDBNet state dict"):
        rrdb_to_basicsr({"encoder.weight": torch.zeros(1)})
    bad = _to_esrgan_by_hand(_small(0).state_dict())
    bad["extra_conv.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="extra_conv.weight"):
        rrdb_to_basicsr(bad)
    with pytest.raises(ValueError, match="layout"):
        weights.rrdb_from_basicsr(_small(0).state_dict(), "keras")


def test_named_rrdb_weights_resolve_and_need_gdown_for_drive(tmp_path, monkeypatch):
    url, sha = weights.resolve_weights("rrdb_psnr_x4")
    assert "drive.google.com" in url and sha == "150ff491"
    assert weights._cache_name(url) == "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "gdown", None)  # import gdown -> ImportError
    with pytest.raises(RuntimeError, match="gdown"):
        load_weights(_small(0), "rrdb_psnr_x4")
    assert not list(tmp_path.rglob("*.pth"))


# ------------------------------------------------------------------------------ test time on RRDBNet


def test_self_ensemble_is_the_mean_of_the_eight_dihedral_predictions():
    net = _small(3)
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        eight = list(dihedral_predictions(net, x))
        ens = self_ensemble(net, x)
        plain = net(x)
    assert len(eight) == 8 and all(y.shape == (1, 3, 40, 56) for y in eight)
    assert torch.allclose(eight[0], plain)
    assert torch.allclose(ens, torch.stack(eight).mean(0), atol=1e-6)
    # a trained RRDB is not equivariant: the 8 views differ, which is what the ensemble averages out
    assert (torch.stack(eight).std(0).mean() > 1e-4).item()


def test_tiled_rrdb_matches_the_whole_image_within_tolerance():
    net = _small(4)
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        whole = net(x)
        tiles = tiled(net, x, scale=4, tile=16, overlap=8)  # 000's proportions: 49 windows, stride = tile/2
        ens_tiled = self_ensemble(net, x, tile=16, overlap=8, scale=4)
        ens_whole = self_ensemble(net, x)
    assert tiles.shape == whole.shape
    assert (tiles - whole).abs().mean().item() < 1e-3
    assert (ens_tiled - ens_whole).abs().mean().item() < 1e-3


# ------------------------------------------------------------------------------ 000 data


def test_export_grid_patches_writes_sixteen_aligned_pairs(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.random((68, 64, 3)).astype(np.float32)
    lq = gt[::4, ::4]  # 17 x 16: the LR is cropped to 16 x 16 for the 4 x 4 grid, the GT to 64 x 64
    lq_dir, gt_dir = patch_export.export_grid_patches([("im", lq, gt)], tmp_path / "p", rows=4, cols=4, scale=4)
    names = sorted(p.name for p in lq_dir.iterdir())
    assert len(names) == 16 and names[0] == "im_00.png" and names[-1] == "im_33.png"
    ds = pairing.PairedFolderDataset(lq_dir, gt_dir, scale=4)
    assert len(ds) == 16 and tuple(ds[0]["gt"].shape) == (3, 16, 16) and tuple(ds[0]["lq"].shape) == (3, 4, 4)
    tiles = [read_image(gt_dir / f"im_{r}{c}.png") for r in range(4) for c in range(4)]
    np.testing.assert_allclose(tiling.grid_merge(tiles, 4, 4), np.round(gt[:64] * 255) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="not 4 x LR"):
        patch_export.export_grid_patches([("bad", lq, gt[:60])], tmp_path / "q", scale=4)



def test_export_random_patches_are_aligned_cell_sized_crops_drawn_from_the_seed(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.random((64, 64, 3)).astype(np.float32)
    lq = gt[::4, ::4]                                    # 16 x 16: cells of 4 x 4 LR / 16 x 16 GT
    lq_dir, gt_dir = patch_export.export_random_patches([("im", lq, gt)], tmp_path / "a", count=16, scale=4, seed=3)
    names = sorted(p.name for p in gt_dir.iterdir())
    assert len(names) == 16 and names[0] == "im_r00.png" and names[-1] == "im_r15.png"
    for name in names:
        a, b = read_image(lq_dir / name), read_image(gt_dir / name)
        assert a.shape == (4, 4, 3) and b.shape == (16, 16, 3)
        np.testing.assert_allclose(b[::4, ::4], a, atol=1e-6)   # the GT patch sits over its LR patch
    again = patch_export.export_random_patches([("im", lq, gt)], tmp_path / "b", count=16, scale=4, seed=3)[1]
    other = patch_export.export_random_patches([("im", lq, gt)], tmp_path / "c", count=16, scale=4, seed=4)[1]
    same = [np.array_equal(read_image(gt_dir / n), read_image(again / n)) for n in names]
    moved = [np.array_equal(read_image(gt_dir / n), read_image(other / n)) for n in names]
    assert all(same) and not all(moved)
    with pytest.raises(ValueError, match="not 4 x LR"):
        patch_export.export_random_patches([("bad", lq, gt[:60])], tmp_path / "q", count=1, scale=4)

def test_dacon_sr_paths_checks_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        dacon_sr.dacon_sr_paths(tmp_path / "nope")
    (tmp_path / "train" / "lr").mkdir(parents=True)
    (tmp_path / "train" / "hr").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="test/lr"):
        dacon_sr.dacon_sr_paths(tmp_path)
    (tmp_path / "test" / "lr").mkdir(parents=True)
    assert set(dacon_sr.dacon_sr_paths(tmp_path)) == {"train_lr", "train_hr", "test_lr"}


# ------------------------------------------------------------------------------ submission


def test_submission_round_trip_and_checks(tmp_path):
    inputs = tmp_path / "test_lr"
    rng = np.random.default_rng(1)
    for n in ("0000", "0001"):
        write_image(inputs / f"{n}.png", rng.random((5, 6, 3)).astype(np.float32))
    preds = {f"{n}.png": rng.random((20, 24, 3)).astype(np.float32) for n in ("0000", "0001")}
    z = write_submission(preds.items(), tmp_path / "sub.zip")
    info = check_submission(z, inputs, scale=4)
    assert info["files"] == 2 and info["size"] == (20, 24)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == ["0000.png", "0001.png"]
        zf.extract("0001.png", tmp_path / "x")
    np.testing.assert_array_equal(read_image(tmp_path / "x" / "0001.png"), np.round(preds["0001.png"] * 255) / 255)
    # wrong size and missing names are caught, naming the file
    write_submission([("0000.png", np.zeros((20, 20, 3), np.float32)), ("0001", np.zeros((20, 24, 3)))],
                     tmp_path / "bad.zip")
    with pytest.raises(SubmissionError, match="0000.png is 20x20, expected 20x24"):
        check_submission(tmp_path / "bad.zip", inputs, scale=4)
    write_submission([("0000.png", np.zeros((20, 24, 3), np.float32))], tmp_path / "short.zip")
    with pytest.raises(SubmissionError, match="1 inputs without a prediction"):
        check_submission(tmp_path / "short.zip", inputs, scale=4)


def test_write_submission_leaves_nothing_on_error(tmp_path):
    with pytest.raises(ValueError, match="two predictions named"):
        write_submission([("a.png", np.zeros((4, 4, 3))), ("a", np.zeros((4, 4, 3)))], tmp_path / "s.zip")
    with pytest.raises(ValueError, match="no predictions"):
        write_submission([], tmp_path / "s.zip")
    assert list(tmp_path.iterdir()) == []
