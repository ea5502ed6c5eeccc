"""`labkit run` is atomic (issue 18): a failed or killed rerun keeps the last good notebook, metrics and
report numbers, leaves its partial run beside them, and is reported as failed (cell) / interrupted.

The CLI runs in a subprocess (`python -m labkit`) on a tiny notebook; each papermill run costs a
kernel start (a few seconds), so the main scenario is one test that chains the runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import files, report, runfolder, runner

REPO = Path(__file__).resolve().parents[1]
NAME = "01_tiny"

PARAMS = "profile = None\nout_dir = None\nseed = 42\nsleep = 0.0\nfail = False"
SLEEP = """\
import os, time
from pathlib import Path
Path(out_dir).mkdir(parents=True, exist_ok=True)
Path(out_dir, 'sleeping').write_text(str(os.getpid()))  # the test waits for this (and the kernel's pid)
time.sleep(sleep)"""
FAIL = "if fail:\n    raise RuntimeError('asked to fail')"
METRICS = ("from labkit import report\n"
           "report.save_metrics(out_dir, notebook='01_tiny', profile=profile, title='tiny',\n"
           "                    headline={'PSNR (dB)': 30.0 + seed / 100, 'slept': sleep})")


def make_notebooks(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = new_notebook()
    params = new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(SLEEP), new_code_cell(FAIL), new_code_cell(METRICS)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{NAME}.ipynb")
    return folder


def labkit(nbs: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "labkit", "--notebooks-dir", str(nbs), *args]


ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run_cli(nbs: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(labkit(nbs, *args), env=ENV, capture_output=True, text=True, timeout=120)


def run_and_kill(nbs: Path, out: Path, sig: int, *args: str) -> tuple[int, str]:
    """Start `labkit run`, wait until the notebook is inside its sleep cell, send ``sig``; (exit code, stderr)."""
    marker = out / f"{NAME}.partial" / "sleeping"
    if marker.exists():
        marker.unlink()
    proc = subprocess.Popen(labkit(nbs, "run", "01", "--out", str(out), *args), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the notebook never reached its sleep cell"
        time.sleep(0.1)
    kernel_pid = int(marker.read_text() or 0)
    assert (out / f"{NAME}.partial.ipynb").exists()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    _wait_gone(kernel_pid)
    return proc.returncode, err


def _wait_gone(pid: int) -> None:
    """The orphaned kernel of a SIGKILLed run exits by itself (ipykernel's parent poller); make sure of it."""
    deadline = time.monotonic() + 10
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    if pid:
        os.kill(pid, signal.SIGKILL)


def entry(out: Path) -> dict:
    rows = json.loads((out / "run_summary.json").read_text())["notebooks"]
    return next(r for r in rows if r["notebook"] == NAME)


def good_state(out: Path) -> tuple[bytes, bytes]:
    return (out / f"{NAME}.ipynb").read_bytes(), (out / NAME / "metrics.json").read_bytes()


@pytest.mark.notebook
def test_failed_and_killed_reruns_keep_the_last_good_result(tmp_path):
    nbs, out = make_notebooks(tmp_path / "nbs"), tmp_path / "R"

    done = run_cli(nbs, "run", "01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    good = good_state(out)
    assert json.loads(good[1])["headline"] == {"PSNR (dB)": 30.42, "slept": 0.0}
    assert entry(out)["status"] == "ok" and entry(out)["parameters"] == {}
    assert not (out / f"{NAME}.partial").exists() and not (out / f"{NAME}.partial.ipynb").exists()

    # SIGTERM mid-notebook: exit 143, one line, no traceback; the good result and its numbers stay
    code, err = run_and_kill(nbs, out, signal.SIGTERM, "-p", "sleep=30")
    assert code == 143, err
    assert "Traceback" not in err and "interrupted by SIGTERM during 01_tiny" in err
    assert good_state(out) == good
    e = entry(out)
    assert e["status"] == "interrupted" and e["error"] == "SIGTERM" and e["parameters"] == {"sleep": 30}
    assert e["last_ok"]["parameters"] == {} and e["last_ok"]["profile"] == "smoke"
    text = (out / "report.md").read_text()
    assert "| 30.42 | 0.0000 |" in text and "interrupted (SIGTERM)" in text and "last ok run" in text
    assert (out / f"{NAME}.partial.ipynb").exists()
    (out / f"{NAME}.partial" / "left_by_test.txt").write_text("resume me")

    # SIGKILL (cannot be caught) with the same parameters: the partial folder was reused, not emptied
    code, _ = run_and_kill(nbs, out, signal.SIGKILL, "-p", "sleep=30")
    assert code == -signal.SIGKILL
    assert (out / f"{NAME}.partial" / "left_by_test.txt").read_text() == "resume me"
    assert good_state(out) == good
    assert entry(out)["status"] == "running"  # what the killed process left...
    shown = run_cli(nbs, "report", "--out", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "interrupted (process gone)" in shown.stdout and "| 30.42 | 0.0000 |" in shown.stdout
    assert entry(out)["status"] == "interrupted"  # ...settled by `labkit report`

    # a failing rerun with other parameters: exit 1, the good result stays, the partial folder was emptied
    # (cell 3 of the executed notebook: papermill inserts its injected-parameters cell after cell 0)
    failed = run_cli(nbs, "run", "01", "--out", str(out), "-p", "fail=True")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr and "RuntimeError: asked to fail" in failed.stderr
    assert good_state(out) == good
    assert not (out / f"{NAME}.partial" / "left_by_test.txt").exists()
    e = entry(out)
    assert e["status"] == "failed" and e["cell"] == 3 and "asked to fail" in e["error"]
    assert e["last_ok"]["parameters"] == {}
    text = (out / "report.md").read_text()
    assert "failed at cell 3" in text and "| 30.42 | 0.0000 |" in text and f"{NAME}.partial.ipynb" in text


def test_only_failed_runs_report_the_attempted_profile(tmp_path):
    failed = runner.NotebookResult(NAME, "failed", 3.0, str(tmp_path / f"{NAME}.partial.ipynb"),
                                   "cell 2 (In [3]): RuntimeError: boom", cell=2, started="2026-12-02T10:00:00",
                                   finished="2026-12-02T10:00:03")
    runner.write_run_summary(tmp_path, "full", {"seed": 1}, [], [failed])
    text = report.write_report(tmp_path).read_text()
    assert "Profile: none finished ok (attempted: full)" in text
    assert "failed at cell 2" in text and "seed=1" in text and "none (no ok run yet)" in text
    assert "Profile: none." not in text


def _result_files(root: Path, tag: str) -> None:
    (root / NAME).mkdir(parents=True, exist_ok=True)
    (root / NAME / "metrics.json").write_text(tag)
    (root / f"{NAME}.ipynb").write_text(tag)


def _state(root: Path) -> tuple[str, str]:
    return (root / NAME / "metrics.json").read_text(), (root / f"{NAME}.ipynb").read_text()


@pytest.mark.parametrize("steps_done", range(6))
def test_a_swap_cut_short_at_any_step_is_finished(tmp_path, steps_done):
    """Kill the replacement after each of its steps: the next start ends with the new result, whole."""
    paths = runfolder.run_paths(tmp_path, NAME)
    _result_files(tmp_path, "old")
    paths.partial_folder.mkdir()
    (paths.partial_folder / "metrics.json").write_text("new")
    paths.partial_notebook.write_text("new")
    steps = [lambda: runfolder.begin_swap(paths, {"notebook": NAME, "status": "ok"}),
             lambda: os.replace(paths.folder, paths.aside_folder),
             lambda: os.replace(paths.partial_folder, paths.folder),
             lambda: os.replace(paths.notebook, paths.aside_notebook),
             lambda: os.replace(paths.partial_notebook, paths.notebook)]
    for step in steps[:steps_done]:
        step()
    if steps_done == 0:  # killed before the marker: the attempt was not committed, the old result stays
        assert runfolder.finish_swap(paths) is None and _state(tmp_path) == ("old", "old")
        return
    assert runfolder.pending_swaps(tmp_path) == [NAME]
    assert runfolder.finish_swap(paths) == {"notebook": NAME, "status": "ok"}
    assert _state(tmp_path) == ("new", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME, f"{NAME}.ipynb"]


def test_report_settles_dead_running_entries_and_skips_partial_folders(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runner.save_entries(tmp_path, [{"notebook": NAME, "status": "running", "started": "2026-12-02T10:00:00",
                                    "profile": "smoke", "parameters": {}, **runfolder.process_identity(),
                                    "pid": dead.pid}])
    report.save_metrics(tmp_path / f"{NAME}.partial", notebook=NAME, profile="smoke", title="t", headline={"x": 1})
    assert report.collect(tmp_path) == []
    text = report.write_report(tmp_path).read_text()
    assert "interrupted (process gone)" in text
    assert entry(tmp_path)["status"] == "interrupted"
    # a live one (this process) stays running, and a second `labkit run` of it is refused
    runner.save_entries(tmp_path, [{"notebook": NAME, "status": "running", **runfolder.process_identity(),
                                    "pid": os.getppid(), "pid_start": None}])
    assert "running (pid" in report.write_report(tmp_path).read_text()
    job = runner.NotebookJob(Path(f"{NAME}.ipynb"), NAME, {})
    with pytest.raises(ValueError, match="is being run into .* use --out DIR"):
        runner.check_not_running(tmp_path, [job])


def test_a_rerun_with_the_good_results_settings_starts_from_its_checkpoints(tmp_path):
    """A finished run's trainings resume instead of training again (hard links: replaced, never written in place)."""
    paths = runfolder.run_paths(tmp_path, "02_x")
    ck = paths.folder / runfolder.CHECKPOINTS / "edsr"
    ck.mkdir(parents=True)
    (ck / "last.pth").write_bytes(b"weights")
    (ck / "history.json").write_text("{}")
    (paths.folder / runfolder.ATTEMPT_FILE).write_text(json.dumps({"profile": "smoke", "parameters": {"seed": 1}}))
    assert runfolder.prepare_partial(paths, "smoke", {"seed": 1}) is False
    shared = paths.partial_folder / runfolder.CHECKPOINTS / "edsr"
    assert (shared / "last.pth").stat().st_ino == (ck / "last.pth").stat().st_ino
    assert (shared / "history.json").read_text() == "{}" and not (shared / "history.json").samefile(ck / "history.json")
    # a checkpoint saved by the new attempt replaces the link: the good result's file does not change
    files.atomic_write(shared / "last.pth", lambda f: f.write(b"new weights"))
    assert (ck / "last.pth").read_bytes() == b"weights"
    # other settings: a fresh folder, nothing shared
    assert runfolder.prepare_partial(paths, "smoke", {"seed": 2}) is False
    assert not (paths.partial_folder / runfolder.CHECKPOINTS).exists()
