"""Lab 04 with fewer training photos than folds: as many folds as photos, said in one line (issue 18)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labkit import layouts, profiles
from labkit.data import sample, splitting
from labkit.labs import lab04

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _four():
    cfg = {**profiles.get("04_hinet_flare_removal", "full"), "flares_per_photo": 1}
    return (*lab04.flare_photo_pairs(sample.sample_images("train")[:4], cfg, np.random.default_rng(0)), cfg)


def _pairs(n):
    """The first ``n`` bundled photos with one flare each (one pair per photo) and lab 04's full profile."""
    pairs, groups, cfg = _four()
    return pairs[:n], groups[:n], dict(cfg)


def test_four_bundled_photos_for_ten_folds_use_four_folds(capsys):
    pairs, groups, cfg = _pairs(4)
    assert cfg["folds"] == 10 and len(groups) == 4
    train, valid, valid_idx = lab04.split_by_photo(pairs, groups, cfg, seed=42)
    assert capsys.readouterr().out == "lab 04: 4 training images for 10 folds: using 4 folds (fold 0 validates)\n"
    assert (len(train), len(valid)) == (3, 1)
    assert ([p[0] for p in valid], valid_idx) == ([pairs[valid_idx[0]][0]], splitting.kfold_split(4, 4, 0, seed=42)[1])
    assert not {p[0] for p in train} & {p[0] for p in valid}


def test_enough_photos_split_as_before_without_a_line(capsys):
    pairs, groups, cfg = _pairs(4)
    for folds in (2, 3, 4):
        train, valid, valid_idx = lab04.split_by_photo(pairs, groups, {**cfg, "folds": folds}, seed=7)
        want_train, want_valid = splitting.kfold_split(4, folds=folds, valid_fold=0, seed=7)
        assert valid_idx == want_valid and [p[0] for p in train] == [pairs[i][0] for i in want_train]
    assert capsys.readouterr().out == ""


def test_one_photo_or_a_bad_valid_fold_is_a_clear_error():
    pairs, groups, cfg = _pairs(4)
    with pytest.raises(ValueError, match=r"1 training image\(s\) from data_root=/x \(max_images=1\).*-p max_images"):
        lab04.split_by_photo(pairs[:1], groups[:1], cfg, 42, source="data_root=/x (max_images=1)")
    with pytest.raises(ValueError, match=r"valid_fold=5 but the split has 4 folds .* -p valid_fold=0..3"):
        lab04.split_by_photo(pairs, groups, {**cfg, "valid_fold": 5}, 42)


def test_labkit_train_04_with_four_images(tmp_path):
    root = layouts.make_lg_flare(tmp_path / "lg", n_train=6, n_test=1, size=(128, 160))
    cmd = [sys.executable, "-m", "labkit", "train", "04", "--profile", "smoke", "-p", f"data_root={root}",
           "-p", "max_images=4", "-p", "folds=10", "-p", "max_steps=2", "-p", "hsv_threshold=0",
           "-p", "hinet={'wf': 4, 'depth': 3, 'hin_position_left': 0, 'hin_position_right': 2}",
           "--out", str(tmp_path / "t04"), "--no-resume"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "lab 04: 4 training images for 10 folds: using 4 folds (fold 0 validates)" in res.stdout
