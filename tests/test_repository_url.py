"""One configurable repository URL: Colab badges and install cells follow ``pyproject.toml``."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("set_repository", ROOT / "scripts" / "set_repository.py")
set_repository = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(set_repository)


def _copy_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    return root


def test_the_checkout_agrees_with_pyproject():
    assert set_repository.main(["--check"]) == 0
    repository, branch = set_repository.settings()
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = "".join("".join(c["source"]) for c in json.loads(nb_path.read_text(encoding="utf-8"))["cells"][:2])
        assert set_repository.badge_url(repository, branch, nb_path.name) in text, nb_path.name   # its own file
        assert f'REPOSITORY = "{repository}"' in text and f'BRANCH = "{branch}"' in text, nb_path.name


def test_a_fork_changes_two_lines_and_every_badge_and_install_cell_follows(tmp_path):
    root = _copy_checkout(tmp_path)
    py = root / "pyproject.toml"
    text = py.read_text(encoding="utf-8")
    text = text.replace('Repository = "https://github.com/restoration-lab/restoration-lab"',
                        'Repository = "https://github.com/someone/my-fork"')
    py.write_text(text.replace('colab_branch = "main"', 'colab_branch = "dev"'), encoding="utf-8")
    assert set_repository.main(["--check", "--root", str(root)]) == 1
    changed = set_repository.apply(root)
    assert len(changed) == 7 and "README.md" in changed            # six notebooks and the README
    for nb_path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = nb_path.read_text(encoding="utf-8")
        assert "restoration-lab/restoration-lab" not in text, nb_path.name
        assert f"github/someone/my-fork/blob/dev/notebooks/{nb_path.name}" in text
        assert 'REPOSITORY = \\"https://github.com/someone/my-fork\\"' in text and 'BRANCH = \\"dev\\"' in text
        json.loads(text)                                           # still a valid notebook
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert readme.count("colab.research.google.com/github/someone/my-fork/blob/dev/notebooks/") == 6
    assert set_repository.apply(root, check=True) == []            # idempotent


def test_a_repository_colab_cannot_open_is_refused_with_the_file_named(tmp_path):
    root = _copy_checkout(tmp_path)
    py = root / "pyproject.toml"
    py.write_text(py.read_text(encoding="utf-8").replace("https://github.com/restoration-lab/restoration-lab",
                                                         "https://gitlab.com/x/y"), encoding="utf-8")
    with pytest.raises(ValueError, match="pyproject.toml.*github"):
        set_repository.settings(root)
