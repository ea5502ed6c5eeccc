"""`labkit run` / `labkit report`: selection, parameters, failure reporting (papermill), report.md."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import cli, report


def make_nb(path: Path, body: str) -> Path:
    nb = new_notebook()
    params = new_code_cell("profile = None\nout_dir = None\nvalue = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_parse_parameter_literals_and_strings():
    assert cli.parse_parameter("epochs=3") == ("epochs", 3)
    assert cli.parse_parameter("lr=1e-4") == ("lr", 1e-4)
    assert cli.parse_parameter("data_root=/data/DIV2K") == ("data_root", "/data/DIV2K")
    assert cli.parse_parameter("data_root=None") == ("data_root", None)
    assert cli.parse_parameter("flag=true") == ("flag", True)
    with pytest.raises(ValueError, match="key=value"):
        cli.parse_parameter("epochs")


def test_select_notebooks_by_number_and_name(tmp_path):
    for stem in ("01_data", "02_sr", "10_more"):
        (tmp_path / f"{stem}.ipynb").write_text("{}")
    available = cli.discover_notebooks(tmp_path)
    assert [p.stem for p in cli.select_notebooks(["2"], available)] == ["02_sr"]
    assert [p.stem for p in cli.select_notebooks(["02_sr.ipynb", "01"], available)] == ["02_sr", "01_data"]
    assert len(cli.select_notebooks([], available)) == 3
    with pytest.raises(ValueError, match="matches no notebook.*01_data"):
        cli.select_notebooks(["07"], available)


def test_discover_fails_clearly_on_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        cli.discover_notebooks(tmp_path)


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
