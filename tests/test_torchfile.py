"""labkit.torchfile.read_torch_file: every unreadable weights file is a WeightsError that names the file and
says what it is not, never advising weights_only=False (issue 18)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from labkit import weights
from labkit.torchfile import WeightsError, read_torch_file, torch_file_kind


class _Evil:
    """Runs a (harmless) function when unpickled without weights_only."""

    def __reduce__(self):
        return (os.getcwd, ())


def _good(path, legacy=False):
    torch.save({"w": torch.arange(2000.0)}, path, _use_new_zipfile_serialization=not legacy)
    return path


def _make(kind, d):
    path = d / f"{kind}.pth"
    if kind == "random":
        path.write_bytes(bytes(range(7, 256)) * 16)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("truncated", "truncated_legacy"):
        data = _good(d / "good.pth", legacy=kind.endswith("legacy")).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "malicious":
        torch.save({"w": torch.zeros(2), "x": _Evil()}, path)
    elif kind == "plain_pickle":
        path.write_bytes(pickle.dumps({"x": _Evil()}, protocol=4))
    elif kind == "html":
        path.write_bytes(b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>")
    return path


CASES = {
    "random": ("not_checkpoint", "is not a PyTorch checkpoint (neither a zip archive nor a legacy pickle file)"),
    "empty": ("empty", "is empty (0 bytes)"),
    "truncated": ("corrupt", "is truncated or corrupt (zip archive"),
    "truncated_legacy": ("corrupt", "is truncated or corrupt (legacy pickle file"),
    "malicious": ("unsafe", "was refused for safety: it holds Python objects other than tensors and plain "
                            "containers (it names posix.getcwd; loaded with weights_only=True); re-save the state "
                            "dict with torch.save(model.state_dict(), path) from code you trust"),
    "plain_pickle": ("not_checkpoint", "a plain Python pickle (pickle.dump)"),
    "html": ("not_checkpoint", "HTML page"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_file_says_what_it_is_not(tmp_path, kind):
    path = _make(kind, tmp_path)
    want_kind, phrase = CASES[kind]
    for load in (lambda: read_torch_file(path), lambda: weights.load_weights(torch.nn.Linear(2, 2), path)):
        with pytest.raises(WeightsError) as err:
            load()
        msg = str(err.value)
        assert isinstance(err.value, ValueError) and err.value.kind == want_kind
        assert msg.startswith(f"weights file {path} ") and phrase in msg
        assert "weights_only=False" not in msg and "set to `False`" not in msg
        chained = err.value.__cause__
        assert chained is None or "weights_only" not in str(chained)   # not even in a --debug traceback


def test_reader_names_what_the_file_is_for_and_loads_good_files(tmp_path):
    assert torch.equal(read_torch_file(_good(tmp_path / "a.pth"))["w"], torch.arange(2000.0))
    assert torch.equal(read_torch_file(_good(tmp_path / "b.pth", legacy=True))["w"], torch.arange(2000.0))
    with pytest.raises(WeightsError, match=f"training checkpoint {tmp_path / 'empty.pth'} is empty"):
        read_torch_file(_make("empty", tmp_path), what="training checkpoint")
    with pytest.raises(FileNotFoundError, match="not found"):
        read_torch_file(tmp_path / "nowhere.pth")
    with pytest.raises(weights.WeightsNotFoundError, match="is a folder, not a file"):
        read_torch_file(tmp_path)


def test_file_kind_from_the_first_bytes(tmp_path):
    assert torch_file_kind(_good(tmp_path / "z.pth").read_bytes()[:14]) == "zip"
    assert torch_file_kind(_good(tmp_path / "l.pth", legacy=True).read_bytes()[:14]) == "legacy"
    assert torch_file_kind(pickle.dumps(1, protocol=4)) == "pickle"
    assert torch_file_kind(b"\x00\x01") == "other" and torch_file_kind(b"  <html>") == "html"


def test_a_training_checkpoint_gets_its_own_way_on(tmp_path):
    data = _good(tmp_path / "last.pth").read_bytes()
    (tmp_path / "last.pth").write_bytes(data[:100])
    with pytest.raises(WeightsError) as err:
        read_torch_file(tmp_path / "last.pth", what="training checkpoint", again="delete it or pass --no-resume")
    assert str(err.value).startswith(f"training checkpoint {tmp_path / 'last.pth'} is truncated or corrupt (zip archive")
    assert str(err.value).endswith("; delete it or pass --no-resume") and err.value.kind == "corrupt"
