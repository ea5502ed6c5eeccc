"""A fast smoke test of the benchmark suite's machinery (the suite itself is not part of CI)."""

from __future__ import annotations

import json
import math

import torch

from benchmarks.suite import QUICK, best_times, run_suite, write_results


def test_best_times_alternates_and_keeps_the_minimum():
    order = []
    t = best_times({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=False)
    assert order == ["a", "b"] * 3 and set(t) == {"a", "b"} and all(v >= 0 for v in t.values())


def test_quick_suite_writes_json_and_markdown(tmp_path):
    result = run_suite(QUICK, ["trainer", "data", "gpu"])
    json_path, md_path = write_results(result, tmp_path)
    data = json.loads(json_path.read_text())
    names = [r["benchmark"] for r in data["results"]]
    assert any(n.startswith("fit vs bare loop") for n in names)
    assert any("padded_patch_predict" in n for n in names)
    for r in data["results"]:
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
    padded = next(r for r in data["results"] if "padded_patch_predict" in r["benchmark"])
    assert padded["window_ratio"] > 1  # skipping runs fewer windows
    if not torch.cuda.is_available():
        assert any("GPU section skipped" in n for n in data["notes"])
    md = md_path.read_text()
    assert md.count("\n| ") == len(data["results"]) + 1  # header + one row per result (separator has no space)
