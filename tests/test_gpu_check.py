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
    ns = {"history": History(epochs=[{"epoch": 1, "step": 4, "train_loss": 0.5, "seconds": 2.0}]),
          "histories": {"x": History(epochs=[{"epoch": 1, "step": 2, "train_loss": float("nan"), "seconds": 1.0}])}}
    exec(gpucheck.STATS_CELL, ns)
    import json
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["runs"]["history"] == {"steps": 4, "seconds": 2.0, "first_losses": [0.5], "nan": False}
    assert stats["runs"]["histories[x]"]["nan"] is True


def test_gpu_check_data_layouts_build_on_cpu(tmp_path):
    """make_data (run first on the GPU) needs no GPU: every lab's layout at full-profile size, from labkit.layouts."""
    params = gpucheck.make_data(tmp_path)
    assert sorted(params) == ["01", "02", "03", "04", "05", "06"]
    for lab, p in params.items():
        assert Path(p["data_root"]).exists(), lab
    assert Path(params["03"]["pretrained"]).is_file() and Path(params["05"]["gopro_root"]).is_dir()
