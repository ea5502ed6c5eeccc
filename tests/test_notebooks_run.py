"""Drive the real `labkit run` (papermill) on notebook 01, as the README's main job does."""

from __future__ import annotations

import json

import pytest

from labkit import cli


@pytest.mark.notebook
def test_labkit_run_executes_notebook_01(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "smoke"
    assert cli.main(["run", "01", "--profile", "smoke", "--out", str(out)]) == 0
    executed = out / "01_data_and_patching.ipynb"
    assert executed.exists()
    metrics = json.loads((out / "01_data_and_patching" / "metrics.json").read_text())
    assert metrics["profile"] == "smoke"
    # the lesson's measured facts, not just "it ran"
    assert metrics["headline"]["torch antialias vs MATLAB LR (dB)"] > 50
    assert metrics["headline"]["overlapping+hann vs whole (dB)"] > metrics["headline"]["naive tiling vs whole (dB)"]
    assert list((out / "01_data_and_patching" / "figures").glob("*.png"))
    assert "01_data_and_patching" in (out / "report.md").read_text()
