"""`labkit run` / `labkit report`: selection, parameters, failure reporting (papermill), report.md."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import cli, profiles, report, runner


def make_nb(path: Path, body: str) -> Path:
    nb = new_notebook()
    params = new_code_cell("profile = None\nout_dir = None\nvalue = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_parse_parameter_literals_and_strings():
    assert profiles.parse_parameter("epochs=3") == ("epochs", 3)
    assert profiles.parse_parameter("lr=1e-4") == ("lr", 1e-4)
    assert profiles.parse_parameter("data_root=/data/DIV2K") == ("data_root", "/data/DIV2K")
    assert profiles.parse_parameter("data_root=None") == ("data_root", None)
    assert profiles.parse_parameter("flag=true") == ("flag", True)
    with pytest.raises(ValueError, match="key=value"):
        profiles.parse_parameter("epochs")


def test_select_notebooks_by_number_and_name(tmp_path):
    for stem in ("01_data", "02_sr", "10_more"):
        (tmp_path / f"{stem}.ipynb").write_text("{}")
    available = runner.discover_notebooks(tmp_path)
    assert [p.stem for p in runner.select_notebooks(["2"], available)] == ["02_sr"]
    assert [p.stem for p in runner.select_notebooks(["02_sr.ipynb", "01"], available)] == ["02_sr", "01_data"]
    assert len(runner.select_notebooks([], available)) == 3
    with pytest.raises(ValueError, match="matches no notebook.*01_data"):
        runner.select_notebooks(["07"], available)


def test_discover_fails_clearly_on_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        runner.discover_notebooks(tmp_path)


def test_report_renders_headlines_and_tables(tmp_path):
    report.save_metrics(tmp_path / "02_sr", notebook="02_sr", profile="smoke", title="SR",
                        headline={"EDSR PSNR-Y (dB)": 27.123, "gain (dB)": 0.512},
                        tables={"held-out": [{"method": "bicubic", "PSNR-Y": 26.6}, {"method": "EDSR", "PSNR-Y": 27.1}]},
                        notes=["Y, crop=4"])
    path = report.write_report(tmp_path)
    text = path.read_text()
    assert "| EDSR PSNR-Y (dB) | gain (dB) |" in text
    assert "| 27.12 | 0.5120 |" in text
    assert "| EDSR | 27.10 |" in text and "- Y, crop=4" in text
    (tmp_path / "03_bad").mkdir()
    (tmp_path / "03_bad" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="03_bad"):
        report.collect(tmp_path)


@pytest.mark.notebook
def test_labkit_run_reports_failing_cell_and_runs_the_rest(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "01_fails.ipynb", "raise RuntimeError('boom in the lesson')")
    make_nb(nbs / "02_works.ipynb", (
        "from labkit import report\n"
        "report.save_metrics(out_dir, notebook='02_works', profile=profile, title='t', headline={'value': value})"))
    out = tmp_path / "out"
    code = cli.main(["--notebooks-dir", str(nbs), "run", "--out", str(out), "-p", "value=41"])
    captured = capsys.readouterr()
    assert code == 1
    assert "01_fails" in captured.err and "RuntimeError: boom in the lesson" in captured.err
    assert "cell" in captured.err
    # the second notebook still ran, with the -p override, and the report has it
    metrics = json.loads((out / "02_works" / "metrics.json").read_text())
    assert metrics["headline"] == {"value": 41} and metrics["profile"] == "smoke"
    summary = json.loads((out / "run_summary.json").read_text())
    assert [r["status"] for r in summary["notebooks"]] == ["failed", "ok"]
    assert "| 41 |" in (out / "report.md").read_text()


# --- sweeps (issue 6: `labkit run 05 --sweep ...`) -------------------------------------------------


def test_parse_sweep_values_and_product():
    assert runner.parse_sweep([]) == []
    assert runner.parse_sweep(["variant=baseline,x12"]) == [{"variant": "baseline"}, {"variant": "x12"}]
    combos = runner.parse_sweep(["variant=a,b", "epochs=1,2"])
    assert combos == [{"variant": "a", "epochs": 1}, {"variant": "a", "epochs": 2},
                      {"variant": "b", "epochs": 1}, {"variant": "b", "epochs": 2}]
    assert runner.sweep_label({"variant": "x12", "lr": 1e-4}) == "variant=x12,lr=0.0001"
    with pytest.raises(ValueError, match="KEY=V1,V2"):
        runner.parse_sweep(["variant"])
    with pytest.raises(ValueError, match="no values"):
        runner.parse_sweep(["variant=,"])
    with pytest.raises(ValueError, match="twice"):
        runner.parse_sweep(["a=1", "a=2"])


def test_sweep_table_and_plot_in_report(tmp_path):
    for i, (variant, psnr, gap) in enumerate((("baseline", 30.1, 2.5), ("x12", 31.4, 0.8))):
        report.save_metrics(tmp_path / f"05_nb@variant={variant}", notebook="05_nb", profile="smoke", title="t",
                            headline={"h": 1}, sweep_row={"PSNR (dB)": psnr, "SSIM": 0.9, "parameters": 1000,
                                                          "train-val gap (dB)": gap})
        path = tmp_path / f"05_nb@variant={variant}" / "metrics.json"
        rec = json.loads(path.read_text())
        rec.update(sweep={"variant": variant}, run_seconds=10.0 + i, created=f"2026-01-01T00:00:0{i}")
        path.write_text(json.dumps(rec))
    report.save_metrics(tmp_path / "02_other", notebook="02_other", profile="smoke", title="o", headline={"x": 2})
    tables = report.sweep_tables(report.collect(tmp_path))
    assert list(tables) == ["05_nb"]
    assert [r["variant"] for r in tables["05_nb"]] == ["baseline", "x12"]
    assert tables["05_nb"][1]["PSNR (dB)"] == 31.4 and tables["05_nb"][1]["run s"] == 11.0
    text = report.write_report(tmp_path).read_text()
    assert "## Sweep: 05_nb" in text
    assert "| variant | PSNR (dB) | SSIM | parameters | train-val gap (dB) | run s |" in text
    assert "| x12 | 31.40 | 0.9000 | 1,000 | 0.8000 | 11.00 |" in text
    assert "![sweep 05_nb](sweep_05_nb.png)" in text and (tmp_path / "sweep_05_nb.png").stat().st_size > 1000
    assert "**05_nb@variant=x12**" in text  # headlines name each run


def test_sweep_needs_exactly_one_notebook(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "01_a.ipynb", "pass")
    make_nb(nbs / "02_b.ipynb", "pass")
    with pytest.raises(SystemExit):
        cli.main(["--notebooks-dir", str(nbs), "run", "--out", str(tmp_path / "o"), "--sweep", "value=1,2"])


@pytest.mark.notebook
def test_labkit_run_sweep_runs_each_value_into_its_own_folder(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "05_study.ipynb", (
        "from labkit import report\n"
        "report.save_metrics(out_dir, notebook='05_study', profile=profile, title='t', headline={'value': value},\n"
        "                    sweep_row={'PSNR (dB)': 30.0 + value, 'train-val gap (dB)': 1.0 / value})"))
    out = tmp_path / "out"
    code = cli.main(["--notebooks-dir", str(nbs), "run", "05", "--out", str(out), "--sweep", "value=1,4"])
    assert code == 0, capsys.readouterr()
    for v in (1, 4):
        rec = json.loads((out / f"05_study@value={v}" / "metrics.json").read_text())
        assert rec["headline"] == {"value": v} and rec["sweep"] == {"value": v} and rec["run_seconds"] > 0
        assert (out / f"05_study@value={v}.ipynb").exists()
    text = (out / "report.md").read_text()
    assert "## Sweep: 05_study" in text and "| 4 | 34.00 | 0.2500 |" in text
    summary = json.loads((out / "run_summary.json").read_text())
    assert [r["notebook"] for r in summary["notebooks"]] == ["05_study@value=1", "05_study@value=4"]


def test_runner_plans_jobs_and_merges_run_summaries(tmp_path):
    nbs = [tmp_path / "01_a.ipynb", tmp_path / "05_b.ipynb"]
    jobs = runner.plan_jobs(nbs, {nb: {"seed": 1} for nb in nbs}, [])
    assert [(j.name, j.params, j.sweep) for j in jobs] == [("01_a", {"seed": 1}, None), ("05_b", {"seed": 1}, None)]
    jobs = runner.plan_jobs(nbs[1:], {nbs[1]: {"seed": 1}}, runner.parse_sweep(["variant=x,y"]))
    assert [(j.name, j.params, j.sweep) for j in jobs] == [
        ("05_b@variant=x", {"seed": 1, "variant": "x"}, {"variant": "x"}),
        ("05_b@variant=y", {"seed": 1, "variant": "y"}, {"variant": "y"})]
    with pytest.raises(ValueError, match="exactly one"):
        runner.plan_jobs(nbs, {}, [{"variant": "x"}])
    # a second run into the same folder keeps the first run's other notebooks and replaces its own
    runner.write_run_summary(tmp_path, "smoke", {}, [], [runner.NotebookResult("01_a", "failed", 1.0, "x", "boom"),
                                                         runner.NotebookResult("02_c", "ok", 2.0, "y")])
    path = runner.write_run_summary(tmp_path, "smoke", {}, [], [runner.NotebookResult("01_a", "ok", 3.0, "x")])
    rows = json.loads(path.read_text())["notebooks"]
    assert [(r["notebook"], r["status"]) for r in rows] == [("01_a", "ok"), ("02_c", "ok")]
