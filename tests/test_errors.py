"""labkit.errors: what the command line says for the operating system's errors, and its exit statuses."""

from __future__ import annotations

import errno

import pytest

from labkit import errors
from labkit.parameters import ParameterError
from labkit.train import CheckpointError, SettingsChangedError
from labkit.weights import WeightsError


@pytest.mark.parametrize("exc, words", [
    (PermissionError(errno.EACCES, "Permission denied", "/runs/x"), ["permission denied: /runs/x", "--out DIR"]),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"), ["permission denied: /mnt/ro/out", "--out DIR"]),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/last.pth"),
     ["no space left on the device while writing /runs/last.pth", "free some space or choose another --out DIR"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/a_file/out"), ["/a_file/out", "a file is in the way"]),
    (FileNotFoundError("weights file x.pth not found"), ["weights file x.pth not found"]),
    (KeyError("unknown model 'rrdb'"), ["unknown model 'rrdb'"]),
])
def test_describe_names_the_file_and_the_way_on(exc, words):
    text = errors.describe(exc)
    assert all(w in text for w in words) and "\n" not in text and "Errno" not in text


def test_exit_status_bad_input_2_else_1():
    assert errors.exit_status(ParameterError("-p x")) == 2
    assert errors.exit_status(WeightsError("w")) == 2          # a bad file given as input
    assert errors.exit_status(FileNotFoundError("no data")) == 2
    assert errors.exit_status(CheckpointError("c")) == 1       # a run's own state
    assert errors.exit_status(SettingsChangedError("last.pth", {"cfg.lr": (5e-4, 2e-3)})) == 1
    assert errors.exit_status(OSError(errno.ENOSPC, "full", "/x")) == 1
    assert all(isinstance(e, errors.EXPECTED) for e in (CheckpointError("c"), WeightsError("w"), OSError()))
    assert not isinstance(RuntimeError("a bug"), errors.EXPECTED)   # a bug keeps its traceback
