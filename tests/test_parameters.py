"""labkit.parameters: the one set of rules behind `labkit run -p`, `labkit train -p` and the notebooks' own check."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import labs, parameters, runner
from labkit.parameters import ParameterError

COURSE = runner.discover_notebooks()


@pytest.mark.parametrize("nb", COURSE, ids=lambda p: p.stem[:2])
def test_every_course_parameter_is_checked(nb):
    """A parameter with neither a rule nor a typed default would take any value unchecked."""
    declared = parameters.declared_parameters(nb)
    assert {"profile", "seed", "out_dir", "device"} <= set(declared)
    unchecked = [k for k, v in declared.items() if k not in parameters.RULES and v is None]
    assert not unchecked


@pytest.mark.parametrize("nb", COURSE, ids=lambda p: p.stem[:2])
def test_every_notebook_checks_its_own_parameters(nb):
    """The derived cell (right after the parameters cell) runs the same check as `labkit run -p`."""
    cells = nbformat.read(nb, as_version=4).cells
    i = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assert "parameters.check_namespace(globals())" in cells[i + 1].source


@pytest.mark.parametrize("name, value, expected", [
    ("max_steps", "abc", "max_steps='abc': expected an integer >= 1 (or None)"),
    ("max_steps", -5, "max_steps=-5: expected an integer >= 1"),
    ("max_steps", 2.5, "expected an integer"),
    ("seed", None, "seed=None: expected an integer >= 0"),
    ("lr", 0, "lr=0: expected a number > 0"),
    ("mask_fraction", 1.5, "<= 1"),
    ("profile", "fast", "one of 'smoke', 'full'"),
    ("device", "gpu", "a device"),
    ("variant", "x13", "'x12'"),
    ("deblur", "yes", "True or False"),
])
def test_bad_values_name_the_parameter(name, value, expected):
    with pytest.raises(ParameterError) as info:
        parameters.check_value(name, value)
    assert expected in str(info.value)


def test_good_values_pass_unchanged(tmp_path):
    for name, value in [("max_steps", None), ("max_steps", 3), ("lr", 1e-4), ("lr", 1), ("device", "cuda:1"),
                        ("profile", "full"), ("data_root", str(tmp_path)), ("variant", "x12"), ("seed", 0)]:
        assert parameters.check_value(name, value) == value


def test_data_root_must_be_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ParameterError, match="is a file, not a folder"):
        parameters.check_value("data_root", str(tmp_path / "f"))
    with pytest.raises(ParameterError, match=f"{tmp_path / 'nope'} does not exist.*data/README.md"):
        parameters.check_value("data_root", str(tmp_path / "nope"))


def _nb(path: Path, params: str) -> Path:
    nb = new_notebook()
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, path)
    return path


def test_run_parameters_go_to_the_notebooks_that_declare_them(tmp_path):
    a = _nb(tmp_path / "01_a.ipynb", "profile = None\nseed = 42\nwidth: int = 8")
    b = _nb(tmp_path / "02_b.ipynb", "profile = None\nseed = 42\nmax_steps = None  # a cap")
    assert parameters.declared_parameters(a) == {"profile": None, "seed": 42, "width": 8}
    per = parameters.check_run_parameters([a, b], {"seed": 1, "max_steps": 2})
    assert per == {a: {"seed": 1}, b: {"seed": 1, "max_steps": 2}}
    with pytest.raises(ParameterError, match=r"unknown parameter 'max_step' \(did you mean 'max_steps'\?\); valid: "
                                             r"max_steps, profile, seed, width"):
        parameters.check_run_parameters([a, b], {"max_step": 2})
    with pytest.raises(ParameterError, match="width='wide': expected an integer"):   # the default's type
        parameters.check_run_parameters([a], {"width": "wide"})
    with pytest.raises(ParameterError, match="--sweep: unknown parameter 'lr'"):
        parameters.check_run_parameters([b], {}, [{"lr": 1e-3}])
    with pytest.raises(ParameterError, match="max_steps=0"):
        parameters.check_run_parameters([b], {}, [{"max_steps": 4}, {"max_steps": 0}])


def test_a_notebook_without_parameters_cell_is_named(tmp_path):
    nb = tmp_path / "01_x.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), nb)
    with pytest.raises(ValueError, match=f"{nb}: no cell tagged 'parameters'"):
        parameters.declared_parameters(nb)


def test_check_namespace_is_the_notebooks_check():
    parameters.check_namespace({"seed": 3, "max_steps": None, "np": object()})
    with pytest.raises(ParameterError, match="parameters cell: max_steps=0"):
        parameters.check_namespace({"seed": 3, "max_steps": 0})


def test_train_overrides_are_checked_against_the_profile():
    cfg, opts = labs.split_overrides("02", "smoke", {"lr": 1, "max_steps": 3, "val_names": ["rocket"]})
    assert cfg["lr"] == 1 and opts["max_steps"] == 3 and cfg["val_names"] == ("rocket",)
    for overrides, words in [({"max_step": 2}, "did you mean 'max_steps'"), ({"epochs": "five"}, "epochs='five'"),
                             ({"edsr": 3}, "expected a dict"), ({"lr_gamma": "half"}, "lr_gamma='half'")]:
        with pytest.raises(ParameterError, match=words):
            labs.split_overrides("02", "smoke", overrides)
