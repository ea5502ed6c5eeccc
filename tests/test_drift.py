"""Drift: the numbers a fresh smoke run prints must match what the committed notebooks show.

In CI, nbval executes every committed notebook with the smoke profile; each writes its metrics.json
under ``$LABKIT_RUNS/smoke/`` (a scratch folder set by the root conftest). The test below runs after
them (``after_notebooks``) and compares each headline with the ``headline:`` line committed in the
notebook, within :data:`labkit.report.DRIFT_TOLERANCES`. The unit tests check the comparison itself.
"""

from __future__ import annotations

import json

import pytest

from labkit import cli, env, report

NOTEBOOKS = sorted(p for p in (env.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.after_notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_fresh_smoke_run_matches_the_committed_notebook(notebook):
    fresh = env.runs_dir() / "smoke" / notebook.stem / report.METRICS_FILE
    if not fresh.is_file():
        pytest.skip(f"{notebook.stem} was not executed in this session (nbval runs it in CI: `make test`)")
    rows = report.compare_headlines(report.committed_headline(notebook),
                                    json.loads(fresh.read_text())["headline"])
    bad = [r for r in rows if not r["ok"]]
    assert not bad, f"{notebook.name}: a fresh run drifted from the committed outputs: {bad}"


def test_every_committed_notebook_prints_its_headline():
    for nb in NOTEBOOKS:
        headline = report.committed_headline(nb)
        assert headline and all(isinstance(k, str) for k in headline), nb.name


def test_compare_headlines_tolerances():
    committed = {"RRDB PSNR-Y (dB)": 28.50, "RRDB SSIM-Y": 0.80, "x8 ensemble cost (x time)": 7.4,
                 "weights": "scratch", "patches kept": 40}
    same = report.compare_headlines(committed, dict(committed))
    assert all(r["ok"] for r in same)
    moved = {**committed, "RRDB PSNR-Y (dB)": 28.80, "x8 ensemble cost (x time)": 3.0}
    rows = {r["key"]: r for r in report.compare_headlines(committed, moved)}
    assert not rows["RRDB PSNR-Y (dB)"]["ok"] and rows["RRDB PSNR-Y (dB)"]["tolerance"] == 0.15
    assert rows["x8 ensemble cost (x time)"]["ok"] and rows["x8 ensemble cost (x time)"]["tolerance"] is None
    assert not report.compare_headlines(committed, {**committed, "weights": "pretrained"})[3]["ok"]
    assert not report.compare_headlines(committed, {**committed, "patches kept": 43})[4]["ok"]
    assert report.compare_headlines(committed, {**committed, "patches kept": 41})[4]["ok"]
    missing = {k: v for k, v in committed.items() if k != "RRDB SSIM-Y"}
    assert not report.compare_headlines(committed, missing)[1]["ok"]


def test_labkit_drift_command(tmp_path, capsys):
    nb_dir, runs = tmp_path / "notebooks", tmp_path / "runs"
    nb_dir.mkdir()
    headline = {"A PSNR (dB)": 30.0, "label": "x"}
    cell = {"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout",
                         "text": ["saved\n", report.HEADLINE_PREFIX + json.dumps(headline) + "\n"]}]}
    (nb_dir / "01_demo.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    report.save_metrics(runs / "01_demo", notebook="01_demo", profile="smoke", title="t", headline=headline)
    assert capsys.readouterr().out.startswith(report.HEADLINE_PREFIX)
    assert report.committed_headline(nb_dir / "01_demo.ipynb") == headline
    assert cli.main(["--notebooks-dir", str(nb_dir), "drift", "--out", str(runs)]) == 0
    report.save_metrics(runs / "01_demo", notebook="01_demo", profile="smoke", title="t",
                        headline={**headline, "A PSNR (dB)": 29.5}, echo=False)
    assert cli.main(["--notebooks-dir", str(nb_dir), "drift", "--out", str(runs)]) == 1
    assert "DRIFT" in capsys.readouterr().out


@pytest.mark.parametrize("key, committed, expected", [
    ("plain s", 3.17, None),                    # CI failed on these two: wall-clock seconds, no parens
    ("skip s", 2.54, None),
    ("plain time (s)", 3.17, None),
    ("fit time (ms)", 12.0, None),
    ("train steps/s", 40.0, None),
    ("x8 ensemble cost (x time)", 7.5, None),
    ("HINet PSNR (dB)", 17.86, 0.15),
    ("HINet SSIM", 0.85, 0.01),
    ("plain ssim", 0.85, 0.01),                  # " s" inside a word is not a unit
    ("baseline hist sim", 0.46, 0.01),
    ("skip patches", 270, 13.5),
    ("stride", 48, 2.4),
])
def test_drift_tolerance_by_key(key, committed, expected):
    tolerance = report.drift_tolerance(key, committed)
    if expected is None:
        assert tolerance is None
    else:
        assert tolerance == pytest.approx(expected)


def test_committed_time_keys_are_never_compared():
    """Every committed headline key that carries a time unit or word is exempt (a slower CI machine is not drift)."""
    import re
    timing = re.compile(r"(\btimes?\b|seconds?|\(m?s\)|\bm?s$|/s\b|\bspeed\b)")
    for nb in NOTEBOOKS:
        for key, value in report.committed_headline(nb).items():
            if isinstance(value, (int, float)) and timing.search(key.lower()):
                assert report.drift_tolerance(key, float(value)) is None, (nb.name, key)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_notebook_reports_its_spread_over_seeds(notebook):
    """The "How much these numbers move between seeds" cell has a filled table whose ranges add up."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    spread = [("".join(c["source"])) for c in cells
              if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("### How much these numbers move")]
    assert len(spread) == 1, notebook.name
    rows = [line for line in spread[0].splitlines() if line.startswith("| ") and not line.startswith("| headline")]
    assert rows, f"{notebook.name}: the spread table has no rows"
    for row in rows:
        cells_ = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells_) == 5, (notebook.name, row)
        values = [float(c) for c in cells_[1:]]
        seeds, rng = values[:3], values[3]
        assert abs((max(seeds) - min(seeds)) - rng) <= 0.011, (notebook.name, row)
