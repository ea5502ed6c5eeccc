"""Lab 06's course checkpoint (issue 20): the generator-only run of ``labkit train 06`` and the committed file."""

import pytest
import torch

from labkit import course, labs, losses, profiles
from labkit.labs import lab06


def test_net_generator_trains_the_generator_alone_with_the_content_loss(tmp_path):
    cfg, opts = labs.split_overrides("06", "smoke", {"net": "generator"})
    r = labs.build_recipe("06", cfg, opts, work_dir=tmp_path)
    assert r.discriminator is None and isinstance(r.model, torch.nn.Module)
    loss = r.fit_kwargs["loss"]
    assert isinstance(loss, losses.WeightedSum)
    assert "L1" in repr(loss) and "SSIM" in repr(loss)
    assert "L1" in repr(lab06.make_content_loss(cfg, ssim=False)) and "SSIM" not in repr(lab06.make_content_loss(cfg, ssim=False))
    with pytest.raises(ValueError, match="generator"):
        labs.build_recipe("06", *labs.split_overrides("06", "smoke", {"net": "nope"}), work_dir=tmp_path)


def test_the_course_checkpoint_is_the_smoke_generator_trained_with_the_content_loss():
    spec = lab06.COURSE_CHECKPOINTS["06_generator"]
    assert spec.lab == "06" and spec.overrides["net"] == "generator" and spec.seed == 42
    entry = course.manifest()["06_generator"]
    assert entry["command"] == course.command("06_generator") and entry["bytes"] <= course.MAX_BYTES
    net = lab06.make_generator(profiles.get("06", "smoke"))   # the notebook's smoke generator loads it (strict)
    course.load("06_generator", net)
    assert entry["parameters"] == sum(p.numel() for p in net.parameters())


def test_the_smoke_input_is_faded_and_the_competition_data_stays_gray(capsys):
    smoke, full = profiles.get("06", "smoke"), profiles.get("06", "full")
    assert smoke["chroma_kept"] == 0.25 and full["chroma_kept"] == 0.0
    assert lab06.input_channels(smoke) == 4 and lab06.input_channels(full) == 2
    assert lab06.make_generator(smoke).num_in_ch == 4
    assert lab06.make_discriminator(smoke).model[0].in_channels == 4 + 3
    item = lab06.make_photo_train_set(smoke)[0]
    assert item["lq"].shape[0] == 4 and lab06.input_image(item["lq"]).shape == (48, 48, 3)
    gray = lab06.for_data(smoke, "some/dacon/folder")
    assert gray["chroma_kept"] == 0.0 and smoke["chroma_kept"] == 0.25 and "chroma_kept 0.25 -> 0" in capsys.readouterr().out
    assert lab06.for_data(smoke, None) is smoke
    assert lab06.input_image(torch.rand(2, 8, 8)).shape == (8, 8, 3)
