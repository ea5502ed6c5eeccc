"""``scripts/gpu_check.sh`` on a machine without CUDA: a skip notice and exit status 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labkit import env, gpucheck


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip path needs a machine without CUDA")
def test_gpu_check_script_skips_without_cuda(tmp_path):
    script = env.REPO_ROOT / "scripts" / "gpu_check.sh"
    proc = subprocess.run(["bash", str(script), "--out", str(tmp_path / "gc")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert gpucheck.SKIP_NOTICE in proc.stdout
    assert not (tmp_path / "gc").exists()            # nothing was run


def test_gpu_check_stats_cell_reads_histories(tmp_path, monkeypatch):
    """The cell appended to each notebook finds Histories (also in dicts) and flags a NaN loss."""
    from labkit.train import History

    monkeypatch.setenv("LABKIT_GPU_STATS", str(tmp_path / "s.json"))
    ns = {"history": History(epochs=[{"epoch": 1, "step": 4, "train_loss": 0.5, "seconds": 2.0, "train_seconds": 1.5}]),
          "histories": {"x": History(epochs=[{"epoch": 1, "step": 2, "train_loss": float("nan"), "seconds": 1.0}])}}
    exec(gpucheck.STATS_CELL, ns)
    import json
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["runs"]["history"] == {"steps": 4, "seconds": 2.0, "train_seconds": 1.5, "first_losses": [0.5],
                                        "nan": False}
    assert stats["runs"]["histories[x]"]["nan"] is True


def test_gpu_check_data_layouts_build_on_cpu(tmp_path):
    """make_data (run first on the GPU) needs no GPU: every lab's layout at full-profile size, from labkit.layouts."""
    params = gpucheck.make_data(tmp_path)
    assert sorted(params) == ["01", "02", "03", "04", "05", "06"]
    for lab, p in params.items():
        assert Path(p["data_root"]).exists(), lab
    assert Path(params["03"]["pretrained"]).is_file() and Path(params["05"]["gopro_root"]).is_dir()


def test_gpu_check_stats_cell_counts_an_aliased_history_once(tmp_path, monkeypatch):
    """Notebook 02 leaves `h` pointing at the SRGAN History also kept in `histories`: one training, counted once."""
    from labkit.train import History

    monkeypatch.setenv("LABKIT_GPU_STATS", str(tmp_path / "s.json"))
    srgan = History(epochs=[{"epoch": 1, "step": 10, "train_loss": 0.5, "seconds": 3.0}])
    ns = {"histories": {"srgan": srgan, "edsr": History(epochs=[{"epoch": 1, "step": 10, "train_loss": 0.4, "seconds": 3.0}])},
          "h": srgan, "curves": srgan}
    exec(gpucheck.STATS_CELL, ns)
    import json
    runs = json.loads((tmp_path / "s.json").read_text())["runs"]
    assert len(runs) == 2 and sum(r["steps"] for r in runs.values()) == 20


def test_gpu_check_twice_into_one_folder_trains_twice(tmp_path, monkeypatch):
    """Each check gets a new run folder: a second check with the same --steps must not find the first's checkpoints."""
    import argparse

    monkeypatch.setattr(gpucheck.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpucheck, "make_data", lambda root: {f"0{i}": {} for i in range(1, 7)})
    folders = []

    def fake_run(copy, out_root, profile, params, progress):
        folders.append(Path(out_root))
        assert not any(Path(out_root).glob("*/last.pth")), "a fresh check must find no checkpoints"
        (Path(out_root) / copy.stem).mkdir(parents=True, exist_ok=True)
        (Path(out_root) / copy.stem / "last.pth").write_bytes(b"x")   # what a finished training leaves
        Path(os.environ["LABKIT_GPU_STATS"]).write_text('{"runs": {}, "peak_mem_gb": 0.0, "device": "fake"}')
        return argparse.Namespace(status="ok", seconds=1.0, error=None)

    monkeypatch.setattr(gpucheck.runner, "run_notebook", fake_run)
    args = argparse.Namespace(steps=5, labs=["04"], out=str(tmp_path / "gc"), require_cuda=False)
    assert gpucheck.run_gpu_check(args) == 0
    assert gpucheck.run_gpu_check(args) == 0
    assert len(folders) == 2 and folders[0] != folders[1]
    assert (tmp_path / "gc" / "gpu_check.json").is_file() and (folders[1] / "gpu_check.json").is_file()


def test_gpu_check_require_cuda_fails_without_a_visible_gpu(tmp_path, capsys):
    import argparse
    args = argparse.Namespace(steps=5, labs=["04"], out=str(tmp_path / "gc"), require_cuda=True)
    assert gpucheck.run_gpu_check(args) == 1
    assert gpucheck.SKIP_NOTICE in capsys.readouterr().out


def test_fit_records_the_training_batches_seconds_apart_from_validation():
    """train_seconds (the GPU check's train-only steps/s) excludes the epoch's validation; seconds includes it."""
    import time
    import torch
    from torch import nn
    from labkit.train import fit

    class SlowVal(nn.Module):          # an identity model whose evaluation-mode forward takes 0.2 s
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            if not self.training:
                time.sleep(0.2)
            return x * self.w

    data = [(torch.rand(3, 8, 8), torch.rand(3, 8, 8)) for _ in range(4)]
    net = SlowVal()
    h = fit(net, data, data[:2], loss=nn.L1Loss(), optimizer=torch.optim.SGD(net.parameters(), lr=0.0), epochs=1,
            batch_size=2, progress=False, log=None)
    row = h.epochs[0]
    assert 0 <= row["train_seconds"] < row["seconds"] and row["seconds"] - row["train_seconds"] >= 0.35
