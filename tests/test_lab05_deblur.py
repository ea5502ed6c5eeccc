"""Lab 05's deblurring run (``labkit train 05 -p net=deblur``) and its course checkpoint ``05_deblur``."""

from __future__ import annotations

import pytest
import torch

from labkit import course, labs, region_metrics
from labkit.data import sample
from labkit.labs import lab05


def test_the_deblur_recipe_is_the_smoke_gopro_nafnet_under_the_course_size_limit(tmp_path):
    cfg, opts = labs.split_overrides("05", "smoke", {"net": "deblur"})
    r = labs.build_recipe("05", cfg, opts, work_dir=tmp_path)
    dcfg = cfg["deblur"]
    assert r.name == "nafnet deblur"
    params = sum(p.numel() for p in r.model.parameters())
    assert params * 4 < course.MAX_BYTES                       # float32 weights fit in a course checkpoint
    assert r.fit_kwargs["steps"] == dcfg["epochs"] * dcfg["iters_per_epoch"]
    assert len(r.train_set) == dcfg["batch_size"] * dcfg["iters_per_epoch"]
    item = r.train_set[0]
    assert tuple(item["lq"].shape) == tuple(item["gt"].shape) == (3, dcfg["gt_size"], dcfg["gt_size"])
    val = r.val_set[0]
    assert tuple(val["gt"].shape) == (3, 2 * dcfg["gt_size"], 2 * dcfg["gt_size"])
    # the validation pairs are blurred: sharper ground truth than input
    lq, gt = val["lq"].permute(1, 2, 0).numpy(), val["gt"].permute(1, 2, 0).numpy()
    assert region_metrics.edge_sharpness_ratio(lq, gt) < 0.9


def test_bundled_sets_reject_an_unknown_net():
    with pytest.raises(ValueError, match="deblur"):
        lab05.make_bundled_sets(labs.split_overrides("05", "smoke", {})[0], sample.sample_images("train"), 42, net="denoise")
    cfg, opts = labs.split_overrides("05", "smoke", {"net": "edsr"})
    with pytest.raises(ValueError, match="net must be"):
        labs.build_recipe("05", cfg, opts)


def test_the_course_spec_trains_the_deblur_net_longer_with_the_same_network():
    spec = lab05.COURSE_CHECKPOINTS["05_deblur"]
    smoke = labs.split_overrides("05", "smoke", {})[0]["deblur"]
    assert spec.lab == "05" and spec.overrides["net"] == "deblur" and spec.seed == 42
    assert set(spec.overrides) == {"net", "seed", "deblur_epochs"}            # the same network, data and lr: only longer
    cfg, opts = labs.split_overrides("05", "smoke", dict(spec.overrides))
    r = labs.build_recipe("05", cfg, opts, work_dir=None)
    assert r.fit_kwargs["steps"] == lab05.COURSE_DEBLUR_STEPS > smoke["epochs"] * smoke["iters_per_epoch"]


def test_the_committed_checkpoint_loads_into_the_notebooks_network():
    if "05_deblur" not in course.manifest():
        pytest.skip("05_deblur not built yet: labkit course build 05_deblur")
    cfg = labs.split_overrides("05", "smoke", {})[0]
    net = lab05.make_model(cfg, cfg["deblur"]["arch"], width=cfg["deblur"]["width"])
    course.load("05_deblur", net)
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 64, 64))).all()
