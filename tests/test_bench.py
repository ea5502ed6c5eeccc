"""A fast smoke test of the benchmark suite's machinery (the suite itself is not part of CI)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from benchmarks import suite
from benchmarks.suite import QUICK, alternating_ratios, best_times, run_suite, write_results
from labkit import cli, env


def test_best_times_alternates_and_keeps_the_minimum():
    order = []
    t = best_times({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=False)
    assert order == ["a", "b"] * 3 and set(t) == {"a", "b"} and all(v >= 0 for v in t.values())


def test_quick_suite_writes_json_and_markdown(tmp_path):
    result = run_suite(QUICK, ["trainer", "cpu", "data", "gpu"])
    json_path, md_path = write_results(result, tmp_path)
    data = json.loads(json_path.read_text())
    names = [r["benchmark"] for r in data["results"]]
    assert any(n.startswith("fit vs bare loop") for n in names)
    assert any("channels_last vs fp32" in n for n in names) and any("bf16 autocast" in n for n in names)
    assert any("padded_patch_predict" in n for n in names)
    for r in data["results"]:
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
    padded = next(r for r in data["results"] if "padded_patch_predict" in r["benchmark"])
    assert padded["window_ratio"] > 1  # skipping runs fewer windows
    if not torch.cuda.is_available():
        assert any("GPU section skipped" in n for n in data["notes"])
    md = md_path.read_text()
    assert md.count("\n| ") == len(data["results"]) + 1  # header + one row per result (separator has no space)


def test_labkit_bench_runs_the_suite_in_the_checkout_as_a_subprocess(monkeypatch, tmp_path):
    """`labkit bench` never imports benchmarks/: it runs `python -m benchmarks` with cwd = the checkout root."""
    calls = []
    monkeypatch.setattr(cli.subprocess, "run", lambda argv, cwd: calls.append((argv, cwd)) or
                        subprocess.CompletedProcess(argv, 3))
    assert cli.main(["bench", "--quick", "--out", str(tmp_path / "b"), "--threads", "2", "--section", "data"]) == 3
    (argv, cwd), = calls
    assert argv == [sys.executable, "-m", "benchmarks", "--out", str((tmp_path / "b").resolve()), "--quick",
                    "--threads", "2", "--section=data"]
    assert cwd == env.REPO_ROOT


def test_labkit_bench_without_the_benchmarks_folder_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "BENCHMARKS_DIR", tmp_path / "benchmarks")
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--quick"])
    assert exc.value.code == 2
    assert str(tmp_path / "benchmarks") in capsys.readouterr().err


def test_labkit_bench_works_from_outside_the_checkout(tmp_path):
    """As the console script does: labkit imported, the working folder elsewhere, benchmarks not importable
    in the labkit process (``sys.modules['benchmarks'] = None`` makes any import of it fail)."""
    code = "import sys; sys.modules['benchmarks'] = None; from labkit.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "bench", "--quick", "--section", "data", "--out",
                           str(tmp_path / "bench")], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(env.REPO_ROOT)})
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert any("padded_patch_predict" in r["benchmark"] for r in data["results"])


def test_alternating_ratios_time_both_sides_each_round():
    import time
    calls = []
    ratios = alternating_ratios(lambda: calls.append("a") or time.sleep(0.02), lambda: calls.append("b") or time.sleep(0.01), 3)
    assert calls == ["a", "b"] * 4    # one untimed call of each, then three rounds
    assert len(ratios) == 3 and all(1.3 < r < 3.5 for r in ratios)


def test_trainer_bench_runs_fit_on_the_bare_loops_device(monkeypatch):
    """On a CUDA machine fit used to get device=None (CUDA) while the bare loop ran on the CPU."""
    monkeypatch.setattr(suite.torch.cuda, "is_available", lambda: True)   # what a GPU machine answers
    monkeypatch.setattr(suite, "bench_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, closure=None: None)   # Adam asks CUDA when it is "there"
    seen = []
    monkeypatch.setattr(suite, "fit", lambda *a, **k: seen.append(k["device"]))   # records where fit would train
    (row,) = suite.bench_trainer(QUICK, 1)
    assert seen and all(d is not None and torch.device(d) == torch.device("cpu") for d in seen)
    assert row["device"] == "cpu" and "round_spread" in row


class _FakeCuda:
    """A stand-in for torch.cuda's memory counters: allocations accumulate, the peak resets to what is held."""

    def __init__(self):
        self.held, self.peak = 0, 0

    def alloc(self, n):
        self.held += n
        self.peak = max(self.peak, self.held)

    def synchronize(self):
        pass

    def reset_peak_memory_stats(self):
        self.peak = self.held

    def max_memory_allocated(self):
        return self.peak


def test_gpu_peak_memory_is_each_variants_own():
    """Measured one after the other, a small variant after a big one reports its own peak, not the big one's."""
    cuda = _FakeCuda()

    def big():
        cuda.alloc(512 * 2**20)
        cuda.held -= 512 * 2**20          # freed when the variant is dropped
    assert suite.peak_memory_mb(big, cuda) == 512
    assert suite.peak_memory_mb(lambda: cuda.alloc(64 * 2**20), cuda) == 64


def test_a_failed_gpu_variant_is_reported_and_the_others_kept():
    c = QUICK["gpu"]
    rows = suite.gpu_variant_rows("rrdb", {"bf16": 1.0, "bf16+channels_last": 0.5}, {"bf16": 10.0, "bf16+channels_last": 9.0},
                                  {"fp32": "OutOfMemoryError: CUDA out of memory"}, c)
    by = {r["benchmark"]: r for r in rows}
    assert "OutOfMemoryError" in by["rrdb: fp32"]["error"]
    assert by["rrdb: bf16 vs fp32"]["peak_mb"] == 10.0 and by["rrdb: bf16+channels_last vs fp32"]["steps_per_s"] > 0
    assert by["rrdb: bf16+channels_last+compile"]["error"] == "not run"
    ok = suite.gpu_variant_rows("rrdb", {k: 1.0 for k in suite.GPU_VARIANTS}, {k: 1.0 for k in suite.GPU_VARIANTS}, {}, c)
    assert [r["ratio"] for r in ok] == [1.0] * 4
