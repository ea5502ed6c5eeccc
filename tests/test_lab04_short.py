"""Lab 04's course checkpoint and short epochs (issue 20): the spec and file, the loader, the smoke build."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit import course, profiles
from labkit.data import pairing
from labkit.labs import lab04


def _cfg(**over):
    cfg = profiles.get("04", "smoke")
    cfg.update(over)
    return cfg


def test_the_course_checkpoint_is_declared_committed_and_loads():
    spec = lab04.COURSE_CHECKPOINTS["04_hinet"]
    assert spec.lab == "04" and spec.seed == 42
    assert profiles.get("04", "smoke")["course"] == "04_hinet"
    assert profiles.get("04", "full")["course"] is None            # the full profile never needs it
    file = course.verify("04_hinet")
    assert file.stat().st_size < course.MAX_BYTES
    entry = course.manifest()["04_hinet"]
    assert entry["command"] == "labkit course build 04_hinet" and entry["seed"] == 42
    net = course.load("04_hinet", lab04.make_model(profiles.get("04", "smoke")))
    assert sum(p.numel() for p in net.parameters()) == entry["parameters"]


def test_make_loader_draws_iters_per_epoch_batches_seeded():
    ds = pairing.ArrayPairDataset(np.random.rand(40, 8, 8, 3).astype(np.float32), np.random.rand(40, 8, 8, 3).astype(np.float32), scale=1)
    cfg = _cfg(iters_per_epoch=3, batch_size=4)
    a = [b["lq"] for b in lab04.make_loader(ds, cfg, seed=5)]
    b = [b["lq"] for b in lab04.make_loader(ds, cfg, seed=5)]
    assert len(a) == 3 and all(x.shape[0] == 4 for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # more samples than the set: drawn with replacement
    assert len(list(lab04.make_loader(ds, _cfg(iters_per_epoch=20, batch_size=4), seed=0))) == 20
    # None: one pass over the set
    assert len(list(lab04.make_loader(ds, _cfg(iters_per_epoch=None, batch_size=4), seed=0))) == 10


def test_the_smoke_build_draws_iters_per_epoch_batches_as_the_notebook(tmp_path):
    from labkit import labs
    over = {"process_num": 1, "hinet": {"wf": 4, "depth": 3, "hin_position_left": 0, "hin_position_right": 2}}
    r = labs.build_recipe("04", *labs.split_overrides("04", "smoke", over), work_dir=tmp_path)
    loader = r.train_set
    assert isinstance(loader, torch.utils.data.DataLoader)
    cfg = profiles.get("04", "smoke")
    assert len(loader) == cfg["iters_per_epoch"] and loader.batch_size == cfg["batch_size"]
    assert loader.augment is loader.dataset.augment and loader.augment.start_epoch == cfg["aug_start_epoch"]


def test_flare_windows_keeps_the_windows_that_carry_the_flare():
    gt = np.zeros((4, 8, 8, 3), np.float32)
    lq = gt + np.array([0.0, 0.01, 0.03, 0.2], np.float32)[:, None, None, None]   # mean |lq - gt| per window
    made = {"lq": lq, "gt": gt, "boxes": [(0, 0, 8, 8), (0, 8, 8, 8), (8, 0, 8, 8), (8, 8, 8, 8)]}
    assert lab04.flare_windows(made, None) is made                      # None: the recipe's windows, unchanged
    kept = lab04.flare_windows(made, 0.02)
    assert np.array_equal(kept["lq"], lq[2:]) and np.array_equal(kept["gt"], gt[2:]) and kept["boxes"] == made["boxes"][2:]
    with pytest.raises(ValueError, match="flare_windows"):
        lab04.flare_windows(made, 0.5)
    assert profiles.get("04", "smoke")["flare_windows"] is None and lab04.COURSE_CHECKPOINTS["04_hinet"].overrides["flare_windows"] == 0.02
