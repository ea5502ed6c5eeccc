"""Lab 02's write-up 003 set-up (SwinIR x2) and the SRGAN stage's losses with and without VGG19."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labkit import labs, losses, profiles
from labkit.data import degrade, sample
from labkit.labs import lab02


def test_swinir_x2_is_003s_set_up_in_both_profiles():
    for profile in ("smoke", "full"):
        cfg = profiles.get("02", profile)
        m = cfg["swinir_x2"]["model"]
        assert cfg["swinir_x2"]["scale"] == 2
        assert (m["window_size"], m["resi_connection"]) == (4, "3conv")
        assert m["drop_rate"] == m["attn_drop_rate"] == m["drop_path_rate"] == 0.1
    full = profiles.get("02", "full")["swinir_x2"]
    assert (full["model"]["embed_dim"], full["model"]["depths"], full["batch_size"], full["gt_size"] // 2) == \
        (180, (6, 6, 6, 6), 8, 64)                      # 003's table: embed 180, [6]*4, batch 8, img_size 64


def test_swinir_x2_model_doubles_the_input_and_has_3conv_residuals():
    cfg = profiles.get("02", "smoke")
    net = lab02.make_model("swinir_x2", cfg).eval()
    assert net.upscale == 2 and net.window_size == 4
    conv_after_body = net.conv_after_body
    assert isinstance(conv_after_body, nn.Sequential) and len([c for c in conv_after_body if isinstance(c, nn.Conv2d)]) == 3
    with torch.no_grad():
        y = net(torch.rand(1, 3, 12, 20))               # not a multiple of the window: padded inside
    assert y.shape == (1, 3, 24, 40)
    with pytest.raises(ValueError, match="swinir_x2"):
        lab02.make_model("swinir_x3", cfg)


def test_x2_sets_are_matlab_bicubic_pairs_of_the_profile_patch():
    cfg = profiles.get("02", "smoke")
    train_photos, val_photos = lab02.split_photos(sample.sample_images("train"), cfg["val_names"])
    torch.manual_seed(0)
    train, val = lab02.make_x2_sets(train_photos, val_photos, None, cfg, None)
    item = train[0]
    g = cfg["swinir_x2"]["gt_size"]
    assert item["gt"].shape == (3, g, g) and item["lq"].shape == (3, g // 2, g // 2)
    lq = degrade.bicubic_downsample(item["gt"].permute(1, 2, 0).numpy(), 2)
    # the dataset downsamples the crop with a margin, so only the interior matches a crop-alone downsampling
    assert np.abs(lq[2:-2, 2:-2] - item["lq"].permute(1, 2, 0).numpy()[2:-2, 2:-2]).max() < 1e-4
    assert len(train) * 1 >= cfg["swinir_x2"]["iters_per_epoch"] * cfg["swinir_x2"]["batch_size"] - len(train_photos)
    v = val[0]
    assert v["gt"].shape[1] == 2 * v["lq"].shape[1] and v["gt"].shape[2] == 2 * v["lq"].shape[2]


def test_labkit_train_02_builds_003s_x2_run():
    r = labs.build_recipe("02", *labs.split_overrides("02", "smoke", {"net": "swinir_x2"}), work_dir=None)
    x2 = profiles.get("02", "smoke")["swinir_x2"]
    assert r.name == "swinir_x2" and r.model.upscale == 2
    assert r.fit_kwargs["val_crop_border"] == 2 and r.fit_kwargs["batch_size"] == x2["batch_size"]
    assert r.fit_kwargs["epochs"] == x2["epochs"]
    assert r.fit_kwargs["optimizer"].param_groups[0]["lr"] == x2["lr"]
    assert r.train_set[0]["lq"].shape[-1] == x2["gt_size"] // 2


def test_srgan_without_vgg_is_srgan_mse_and_with_vgg_is_basicsr(monkeypatch):
    for profile in ("smoke", "full"):
        g = profiles.get("02", profile)["gan"]
        terms, adv = lab02.gan_losses(g, perceptual=False)
        assert list(terms) == ["pix"] and adv == 1e-3                 # Ledig et al. 2017, eq. 3
        assert terms["pix"][0] == 1.0 and isinstance(terms["pix"][1], nn.MSELoss)
    monkeypatch.setattr(losses, "PerceptualLoss", lambda layers: ("vgg19", layers))   # no weights needed here
    terms, adv = lab02.gan_losses(profiles.get("02", "full")["gan"], perceptual=True)
    assert adv == 5e-3 and terms["pix"][0] == 1e-2 and isinstance(terms["pix"][1], nn.L1Loss)
    assert terms["percep"] == (1.0, ("vgg19", {"conv5_4": 1.0}))   # BasicSR train_SRGAN_x4
