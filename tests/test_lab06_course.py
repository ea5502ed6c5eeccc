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
