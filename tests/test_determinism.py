"""Reproducible runs: the same seed gives bit-identical weights in fresh processes, with the real data
pipeline (random crops, MATLAB-bicubic LR, albumentations through PairedAugment), and a run resumed
from its checkpoint ends where an uninterrupted one does."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import env
from labkit.data import augment, sample

REPO = Path(__file__).resolve().parent.parent

#: One short SR training with everything a notebook uses: seed_everything, SRFolderDataset crops,
#: PairedAugment(seed=None) with the 000 pipeline (flips, transpose, rot90, ShiftScaleRotate), EDSR,
#: Adam, StepLR, 2 DataLoader workers, fit with checkpoints. Writes the final weights to argv[1].
TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from labkit import env, models, train
    from labkit.data import augment, sr, sample
    env.seed_everything(7)
    photos = [(n, im[:96, :96]) for n, im in sample.sample_images("train")[:3]]
    aug = augment.PairedAugment(augment.sr_000_transforms(p=0.5), scale=4)
    data = sr.SRFolderDataset.from_arrays(photos, scale=4, gt_size=32, augment=aug, repeat=8)
    model = models.EDSR(num_feat=8, num_block=1, upscale=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, num_workers=int(sys.argv[2]),
                                         worker_init_fn=env.seed_worker)
    train.fit(model, loader, loss={"l1": 2.0, "l2": 1.0}, optimizer=opt,
              scheduler=torch.optim.lr_scheduler.StepLR(opt, 1, 0.5), epochs=2, seed=7, progress=False, log=None,
              checkpoint_dir=sys.argv[3] if len(sys.argv) > 3 else None)
    torch.save(model.state_dict(), sys.argv[1])
    """
)


def _train_in_fresh_process(tmp_path: Path, name: str, workers: int) -> dict:
    out = tmp_path / f"{name}.pth"
    env_vars = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(out), str(workers)], check=True, env=env_vars,
                   cwd=tmp_path, timeout=300)
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("workers", [0, 2])
def test_two_fresh_processes_train_bit_identical_weights(tmp_path, workers):
    a = _train_in_fresh_process(tmp_path, "a", workers)
    b = _train_in_fresh_process(tmp_path, "b", workers)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between two runs with the same seed"
    # and the run did train: the weights moved away from a fresh model's with the same seed
    env.seed_everything(7)
    from labkit import models
    fresh = models.EDSR(num_feat=8, num_block=1, upscale=4).state_dict()
    assert not torch.equal(fresh["conv_first.weight"], a["conv_first.weight"])


def test_paired_augment_follows_torch_seed_and_resumes_with_its_state():
    aug = augment.PairedAugment(augment.sr_000_transforms(p=0.5), scale=4)
    gt = sample.load_sample("astronaut")[:64, :64]
    lq = np.ascontiguousarray(gt[::4, ::4])
    torch.manual_seed(3)
    first = [aug(lq, gt)[1] for _ in range(6)]
    torch.manual_seed(3)
    again = [aug(lq, gt)[1] for _ in range(3)]
    state = torch.get_rng_state()          # what fit's checkpoint saves
    torch.manual_seed(99)                  # a restart scrambles the RNG ...
    torch.set_rng_state(state)             # ... and resume restores it
    again += [aug(lq, gt)[1] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert len({x.tobytes() for x in first}) > 1, "the six draws should not all be the same augmentation"


def test_resumed_run_with_real_augmentation_equals_uninterrupted(tmp_path):
    """2 epochs, a restart in a new process, then the 3rd == 3 straight epochs (crops + albumentations)."""
    script = TRAIN_SCRIPT.replace("epochs=2", "epochs=int(sys.argv[4])")
    env_vars = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(out, ckdir, epochs):
        subprocess.run([sys.executable, "-c", script, str(out), "0", str(ckdir), str(epochs)], check=True,
                       env=env_vars, cwd=tmp_path, timeout=300)
        return torch.load(out, weights_only=True)

    straight = run(tmp_path / "straight.pth", tmp_path / "ck_straight", 3)
    run(tmp_path / "part.pth", tmp_path / "ck_resume", 2)
    resumed = run(tmp_path / "resumed.pth", tmp_path / "ck_resume", 3)
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), f"{k} differs after resume"


def test_seed_everything_fixes_threads_and_deterministic_mode(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LABKIT_NUM_THREADS", "1")
        env.seed_everything(0)
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        monkeypatch.setenv("LABKIT_DETERMINISTIC", "0")
        env.seed_everything(0)
        assert not torch.are_deterministic_algorithms_enabled()
        monkeypatch.setenv("LABKIT_NUM_THREADS", "two")
        with pytest.raises(ValueError, match="LABKIT_NUM_THREADS"):
            env.seed_everything(0)
        monkeypatch.delenv("LABKIT_NUM_THREADS")
        assert env.num_threads() == min(env.DEFAULT_NUM_THREADS, env.available_cores())
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(True, warn_only=True)
