"""labkit installed as a package (the notebooks' Colab cell: ``pip install git+...``, not editable) behaves like one.

The wheel is built from a copy of the checkout and installed with ``pip --target`` into a temporary folder that
goes first on ``PYTHONPATH``; everything then runs from another working folder. Nothing may be written inside the
installed package: runs and data default to the working folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import env

REPO = env.REPO_ROOT


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A non-editable install of this checkout's labkit (a built wheel, installed with --target)."""
    if env.checkout_root() is None:
        pytest.skip("needs a checkout to build the wheel from")
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"
    shutil.copytree(REPO / "labkit", src / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, timeout=600, cwd=tmp)
    wheel = next((tmp / "dist").glob("labkit-*.whl"))
    site = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, timeout=600, cwd=tmp)
    return site


def _run(args: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("LABKIT_RUNS", "LABKIT_DATA")}
    environ.update(PYTHONPATH=str(site), MPLBACKEND="Agg", LABKIT_PROFILE="smoke")
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=900)


def test_installed_labkit_knows_it_is_no_checkout_and_uses_the_working_folder(installed, tmp_path):
    code = ("import labkit, labkit.env as e; print(labkit.__file__); print(e.checkout_root()); "
            "print(e.runs_dir()); print(e.data_dir()); print(e.notebooks_dir())")
    res = _run([sys.executable, "-c", code], tmp_path, installed)
    assert res.returncode == 0, res.stderr[-2000:]
    where, checkout, runs, data, notebooks = res.stdout.split("\n")[:5]
    assert Path(where).is_relative_to(installed) and checkout == "None"
    assert (runs, data, notebooks) == (str(tmp_path / "runs"), str(tmp_path / "data"), str(tmp_path / "notebooks"))
    # without notebooks beside it, the CLI says where it looked and how to get them
    res = _run([sys.executable, "-m", "labkit", "list"], tmp_path, installed)
    assert res.returncode != 0 and str(tmp_path / "notebooks") in res.stderr
    assert "git clone https://github.com/" in res.stderr and "--notebooks-dir" in res.stderr


@pytest.mark.notebook
def test_a_notebook_run_with_installed_labkit_writes_under_the_working_folder(installed, tmp_path):
    before = _files(installed)
    (tmp_path / "notebooks").mkdir()
    shutil.copy2(REPO / "notebooks" / "01_data_and_patching.ipynb", tmp_path / "notebooks")
    res = _run([sys.executable, "-m", "labkit", "run", "01"], tmp_path, installed)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert (tmp_path / "runs" / "smoke" / "01_data_and_patching" / "metrics.json").is_file()
    assert (tmp_path / "runs" / "smoke" / "report.md").is_file()
    assert _files(installed) == before                          # nothing written inside the installed package
