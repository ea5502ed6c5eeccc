"""labkit.files: atomic writes with the user's permissions, and the leftovers of killed writes."""

from __future__ import annotations

import os
import stat

import pytest

from labkit import files, report


@pytest.fixture
def umask():
    def set_umask(value: int) -> None:
        os.umask(value)
    old = os.umask(0o022)
    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_umasks_permissions(tmp_path, umask, mask, mode):
    """mkstemp alone gives 0600, which broke shared runs folders (metrics.json, run_summary.json, checkpoints)."""
    umask(mask)
    for path in (files.atomic_write_text(tmp_path / "a.txt", "x"),
                 report.write_json_atomic(tmp_path / "metrics.json", {"psnr": 30.0})):
        assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "shared.json"
    path.write_text("{}")
    path.chmod(0o640)
    report.write_json_atomic(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and '"a": 1' in path.read_text()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = files.atomic_write_text(tmp_path / "last.pth", "old")

    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="No space"):
        files.atomic_write(path, fail)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["last.pth"]


def test_remove_stale_temp_clears_only_the_named_targets(tmp_path):
    for name in (".last.pth.ab12cd.tmp", ".best.pth.x9.tmp", ".metrics.json.q1.tmp", "notes.tmp", "last.pth"):
        (tmp_path / name).write_text("x")
    removed = files.remove_stale_temp(tmp_path, ("last.pth", "best.pth"))
    assert sorted(p.name for p in removed) == [".best.pth.x9.tmp", ".last.pth.ab12cd.tmp"]
    assert [p.name for p in files.remove_stale_temp(tmp_path)] == [".metrics.json.q1.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pth", "notes.tmp"]
    assert files.remove_stale_temp(tmp_path / "missing") == []
