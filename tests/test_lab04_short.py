"""Lab 04's course checkpoint and short runs (issue 20): the spec, the loader, the random-window control, train_short."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit import course, profiles
from labkit.data import augment, pairing
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


def _pairs():
    rng = np.random.default_rng(0)
    return [(f"p{i}", rng.random((48, 64, 3)).astype(np.float32), rng.random((48, 64, 3)).astype(np.float32)) for i in range(2)]


def test_random_windows_draws_n_of_every_window_seeded():
    cfg = _cfg(patch_size=16, stride=16, process_num=1)
    r = lab04.random_windows(_pairs(), 7, cfg, seed=3)
    assert r["lq"].shape == (7, 16, 16, 3) and len(r["boxes"]) == 7
    assert len({tuple(b) for b in r["boxes"]}) == 7                 # without replacement
    again = lab04.random_windows(_pairs(), 7, cfg, seed=3)
    assert r["boxes"] == again["boxes"] and np.array_equal(r["lq"], again["lq"])
    assert lab04.random_windows(_pairs(), 7, cfg, seed=4)["boxes"] != r["boxes"]
    with pytest.raises(ValueError, match="random windows"):
        lab04.random_windows(_pairs(), 10_000, cfg, seed=0)


@pytest.mark.parametrize("aug_start", [0, 1, None])
def test_train_short_trains_the_budget_and_keeps_the_last_epoch(aug_start):
    cfg = _cfg(hinet=dict(wf=4, depth=2, hin_position_left=0, hin_position_right=1), batch_size=2)
    rng = np.random.default_rng(0)
    ds = pairing.ArrayPairDataset(rng.random((8, 16, 16, 3)).astype(np.float32), rng.random((8, 16, 16, 3)).astype(np.float32), scale=1)
    torch.manual_seed(0)
    net = lab04.make_model(cfg)
    run = dict(epochs=2, iters_per_epoch=2, lr=1e-3, aug_start_epoch=1)
    h = lab04.train_short(net, ds, cfg, run, seed=0, aug_start=aug_start, val_set=ds, log=None)
    assert [r["epoch"] for r in h.epochs] == [1, 2]
    if aug_start is None:
        assert ds.augment is None
    else:
        assert isinstance(ds.augment, augment.AdaptiveAugment) and ds.augment.start_epoch == aug_start
    # the last weights are kept, whatever the best validation epoch was: a second identical run ends identically
    torch.manual_seed(0)
    net2 = lab04.make_model(cfg)
    lab04.train_short(net2, ds, cfg, run, seed=0, aug_start=aug_start, val_set=None, log=None)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
