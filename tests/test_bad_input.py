"""Bad input, as a new user types it: the real CLI in a subprocess ends with a short message, no traceback.

Each case of issue 18's table runs ``python -m labkit ...`` and asserts the exit status, that no traceback is
printed, and that the message names the file or the parameter (and, where there is one, the way on).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labkit import layouts
from labkit.io import read_image, write_image

REPO = Path(__file__).resolve().parents[1]


def labkit(*argv: str, cwd: Path, timeout: float = 300, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "LABKIT_DEBUG": "", **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "labkit", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The bad files of the table, made once."""
    root = tmp_path_factory.mktemp("bad")
    f = {"root": root, "set5": layouts.make_sr_benchmark(root / "bench", "Set5")}
    (root / "random.pth").write_bytes(os.urandom(4096))
    (root / "empty.pth").write_bytes(b"")
    torch.save({"params": _Evil()}, root / "evil.pth")   # a checkpoint that would run a shell command
    torch.save({"w": torch.zeros(64, 64)}, root / "good.pth")
    data = (root / "good.pth").read_bytes()
    (root / "truncated.pth").write_bytes(data[: len(data) // 2])
    narrow = root / "narrow" / "Set5"                      # bird's LR 2 px narrower than HR / 4
    shutil.copytree(f["set5"], narrow)
    lr_path = narrow / "LR_bicubic" / "X4" / "birdx4.png"
    write_image(lr_path, read_image(lr_path)[:, :-2])
    tiny = root / "tiny" / "HR"
    write_image(tiny / "dot.png", read_image(f["set5"] / "HR" / "baby.png")[:3, :3])
    (root / "a_file").write_text("not a folder")
    (root / "cut_run").mkdir()
    (root / "cut_run" / "last.pth").write_bytes(data[: len(data) // 3])   # a last.pth cut short
    for name in ("random", "empty", "evil", "truncated"):
        f[name] = root / f"{name}.pth"
    f.update(narrow=narrow, tiny=tiny.parent, a_file=root / "a_file")
    return f


def _bench_args(f, weights: str) -> list[str]:
    return ["eval", "--model", "rrdbnet_x4", "--weights", weights, "--data", str(f["set5"])]


# case id -> (argv from the files, expected exit status, words the message must hold)
CASES = {
    "unknown key (run)": (lambda f: ["run", "02", "-p", "max_step=2"], 2, ["'max_step'", "did you mean 'max_steps'"]),
    "unknown key (train)": (lambda f: ["train", "02", "-p", "max_step=2"], 2, ["'max_step'", "did you mean 'max_steps'"]),
    "bad type (run)": (lambda f: ["run", "02", "-p", "max_steps=abc"], 2, ["max_steps='abc'", "integer"]),
    "bad type (train)": (lambda f: ["train", "02", "-p", "max_steps=abc"], 2, ["max_steps='abc'", "integer"]),
    "negative steps": (lambda f: ["run", "02", "-p", "max_steps=-5"], 2, ["max_steps=-5", ">= 1"]),
    "missing data_root": (lambda f: ["train", "02", "-p", f"data_root={f['root'] / 'nope'}"], 2, ["data_root", "nope"]),
    "random-bytes weights": (lambda f: _bench_args(f, str(f["random"])), 2, ["random.pth", "not a PyTorch checkpoint"]),
    "0-byte weights": (lambda f: _bench_args(f, str(f["empty"])), 2, ["empty.pth", "empty"]),
    "truncated weights": (lambda f: _bench_args(f, str(f["truncated"])), 2, ["truncated.pth", "truncated"]),
    "malicious pickle": (lambda f: _bench_args(f, str(f["evil"])), 2, ["evil.pth", "refused for safety"]),
    "weights name typo": (lambda f: _bench_args(f, "rrdb_psnr"), 2, ["rrdb_psnr", "rrdb_psnr_x4"]),
    "truncated last.pth": (lambda f: ["train", "02", "-p", "net=edsr", "-p", "max_steps=1", "--out",
                                      str(f["root"] / "cut_run")], 1, ["cut_run/last.pth", "truncated", "--no-resume"]),
    "--out under a file": (lambda f: ["run", "01", "--out", str(f["a_file"] / "out")], 1, ["a_file", "--out"]),
    "tiny image in eval": (lambda f: ["eval", "--model", "bicubic", "--data", str(f["tiny"])], 2, ["dot.png", "3x3"]),
    "LR of the wrong size in eval": (lambda f: ["eval", "--model", "bicubic", "--data", str(f["narrow"])], 2,
                                     ["birdx4.png", "bird.png"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_short_message(case, files):
    argv, status, words = CASES[case]
    res = labkit(*argv(files), cwd=files["root"])
    err = res.stderr
    assert res.returncode == status, (res.returncode, res.stdout[-1500:], err[-3000:])
    assert "Traceback" not in err + res.stdout, err[-3000:]
    assert "weights_only=False" not in err and "weights_only set to False" not in err
    lines = err.strip().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"labkit {argv(files)[0]}: error: "))
    message = "\n".join(lines[first:])
    assert all(w in message for w in words), err[-3000:]
    assert len(lines) - first <= 3, err      # the message: at most three lines, at the end


def test_read_only_out_is_one_line(tmp_path):
    """``--out`` in a folder that cannot be written. As root (permissions do not apply), the permission error
    is injected into the real CLI at the first folder it makes there."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    out = ro / "out"
    if os.geteuid() == 0:
        driver = ("import errno, pathlib, sys\n"
                  "mkdir = pathlib.Path.mkdir\n"
                  "def refuse(self, *a, **k):\n"
                  f"    if str(self).startswith({str(ro)!r}):\n"
                  "        raise PermissionError(errno.EACCES, 'Permission denied', str(self))\n"
                  "    return mkdir(self, *a, **k)\n"
                  "pathlib.Path.mkdir = refuse\n"
                  "from labkit.cli import main\n"
                  "sys.exit(main(sys.argv[1:]))\n")
        argv = [sys.executable, "-c", driver]
    else:
        argv = [sys.executable, "-m", "labkit"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "LABKIT_DEBUG": ""}
    res = subprocess.run([*argv, "run", "01", "--out", str(out)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    ro.chmod(0o755)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert str(out) in res.stderr and "permission denied" in res.stderr and "--out" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    res = labkit("run", "02", "-p", "max_steps=abc", cwd=tmp_path, extra_env={"LABKIT_DEBUG": "1"})
    assert res.returncode == 2 and "Traceback" in res.stderr and "ParameterError" in res.stderr
