"""Test-session settings, inherited by the notebook kernels that nbval and papermill start."""

import os
import tempfile

# Headless runs: plain-text progress bars instead of ipywidgets (no front end to talk to).
os.environ.setdefault("LABKIT_PROGRESS", "text")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LABKIT_PROFILE", "smoke")
# OpenMP threads sleep instead of spinning while they wait (labkit.env.PASSIVE_OPENMP); same numbers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The instruction set is deliberately not pinned (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA / MKL_CBWR): pinned to AVX2,
# an AMD and an Intel machine still printed different numbers. The drift check holds each headline to the spread
# measured across instruction sets instead (labkit.drift, notebooks/results/spread.json, its "pinning" entry).
# No TensorBoard event files in the test session's runs (labkit.train.runlog; ~10 % of a small fit's time): the CSV log
# is still written, and tests/test_runlog.py switches TensorBoard on explicitly to test it.
os.environ.setdefault("LABKIT_TENSORBOARD", "0")
# Notebook runs under test write to a scratch folder, never into the user's runs/.
os.environ.setdefault("LABKIT_RUNS", tempfile.mkdtemp(prefix="labkit-test-runs-"))


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: runs after nbval has executed the notebooks (drift checks)")


def pytest_collection_modifyitems(session, config, items):
    """Tests marked ``after_notebooks`` run last, once nbval has executed (and measured) the notebooks."""
    late = [item for item in items if item.get_closest_marker("after_notebooks")]
    items[:] = [item for item in items if not item.get_closest_marker("after_notebooks")] + late


def pytest_terminal_summary(terminalreporter):
    """The smoke suite's time per notebook (nbval: the sum of its cells' call times), for the time budget."""
    seconds: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for rep in reports:
            path = getattr(rep, "nodeid", "").split("::")[0]
            if path.endswith(".ipynb") and getattr(rep, "when", "") == "call":
                seconds[path] = seconds.get(path, 0.0) + rep.duration
    if seconds:
        terminalreporter.write_sep("=", "notebook time (nbval, sum of cell calls)")
        for path, s in sorted(seconds.items()):
            terminalreporter.write_line(f"{path}: {s:.0f} s")
        terminalreporter.write_line(f"all notebooks: {sum(seconds.values()):.0f} s ({sum(seconds.values()) / 60:.1f} min)")
