"""Drift: the numbers a fresh smoke run prints must match what the committed notebooks show, within the
spread measured for each of them across instruction sets and seeds (``notebooks/results/spread.json``).

In CI, nbval executes every committed notebook with the smoke profile; each writes its metrics.json
under ``$LABKIT_RUNS/smoke/`` (a scratch folder set by the root conftest). The first test runs after
them (``after_notebooks``) and compares each headline with the ``headline:`` line committed in the
notebook, under the rules of :mod:`labkit.drift`. The other tests check the rules, the spread file, and
that the check passes on runs recorded under other instruction sets and fails on a deliberate change.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from labkit import cli, drift, env, report

NOTEBOOK_DIR = env.REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SPREAD = drift.load_spread(NOTEBOOK_DIR)
#: A deliberate recipe change, run once and recorded: lab 04 with its learning rate halved (`labkit spread
#: measure`-style smoke run, `-p lr=...`); the drift check must flag it.
INJECTED = env.REPO_ROOT / "tests" / "data" / "drift_injected_04_lr_halved.json"


@pytest.mark.after_notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_fresh_smoke_run_matches_the_committed_notebook(notebook):
    fresh = env.runs_dir() / "smoke" / notebook.stem / report.METRICS_FILE
    if not fresh.is_file():
        pytest.skip(f"{notebook.stem} was not executed in this session (nbval runs it in CI: `make test`)")
    rows = drift.compare_headlines(drift.committed_headline(notebook), json.loads(fresh.read_text())["headline"],
                                   drift.rules_for(SPREAD, notebook.stem))
    bad = [r for r in rows if not r["ok"]]
    assert not bad, f"{notebook.name}: a fresh run drifted from the committed outputs: {bad}"


def test_every_committed_notebook_prints_its_headline():
    for nb in NOTEBOOKS:
        headline = drift.committed_headline(nb)
        assert headline and all(isinstance(k, str) for k in headline), nb.name


# ----------------------------------------------------------------------------- the spread file


def test_the_spread_file_has_a_rule_for_every_committed_headline_key():
    assert SPREAD, f"{NOTEBOOK_DIR / drift.SPREAD_FILE} is missing: `labkit spread build`"
    for nb in NOTEBOOKS:
        entry = SPREAD["notebooks"][nb.stem]
        committed = drift.committed_headline(nb)
        assert set(entry["rules"]) == set(committed), nb.name
        # its committed run is the committed notebook itself: the file cannot go stale silently
        assert entry["runs"][f"{drift.COMMITTED}/seed42"] == committed, nb.name


def test_the_spread_file_measured_seeds_and_instruction_sets():
    """Each notebook was measured with several seeds and on more than one instruction set / machine."""
    for nb in NOTEBOOKS:
        runs = SPREAD["notebooks"][nb.stem]["runs"]
        committed = runs[f"{drift.COMMITTED}/seed42"]
        assert {f"{drift.NATIVE}/seed{s}" for s in drift.SEEDS[:2]} <= set(runs), nb.name
        # the committed run's own configuration: native here, when the native seed-42 run is the committed one
        own = {drift.COMMITTED} | ({drift.NATIVE} if runs.get(f"{drift.NATIVE}/seed42") == committed else set())
        others = [name for name in runs if name.endswith("/seed42") and name.split("/")[0] not in own]
        assert others, f"{nb.name}: no seed-42 run under another instruction set or machine"
        for name in others:
            config = name.split("/")[0]
            assert config in SPREAD["configs"] or config == drift.NATIVE, (nb.name, name)


def test_the_rules_are_the_ones_derived_from_the_recorded_runs():
    for nb in NOTEBOOKS:
        entry = SPREAD["notebooks"][nb.stem]
        assert drift.derive_rules(drift.committed_headline(nb), entry["runs"]) == entry["rules"], nb.name


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_runs_recorded_under_other_instruction_sets_pass_the_drift_check(notebook):
    """The check passes on every recorded seed-42 run from another instruction set or machine."""
    entry = SPREAD["notebooks"][notebook.stem]
    committed = drift.committed_headline(notebook)
    others = {name: h for name, h in entry["runs"].items()
              if name.endswith("/seed42") and name != f"{drift.COMMITTED}/seed42"}
    assert others
    for name, headline in others.items():
        rows = drift.compare_headlines({k: v for k, v in committed.items() if k in headline}, headline,
                                       entry["rules"])
        assert all(r["ok"] for r in rows), (name, [r for r in rows if not r["ok"]])


def test_a_deliberate_recipe_change_fails_the_drift_check():
    """Lab 04 run with its learning rate halved (recorded once): some headline leaves its measured spread."""
    recorded = json.loads(INJECTED.read_text(encoding="utf-8"))
    nb = NOTEBOOK_DIR / f"{recorded['notebook']}.ipynb"
    rows = drift.compare_headlines(drift.committed_headline(nb), recorded["headline"],
                                   drift.rules_for(SPREAD, recorded["notebook"]))
    assert [r["key"] for r in rows if not r["ok"]], rows


# ----------------------------------------------------------------------------- the rules


def test_derive_rule_value_band_none_equal():
    # a stable key: machines move it far less than seeds -> value within MARGIN x its machine range
    stable = drift.derive_rule("EDSR PSNR-Y (dB)", 28.70, [28.70, 28.72, 28.69], [28.70, 28.62, 28.66])
    assert stable["check"] == "value" and stable["tolerance"] == pytest.approx(drift.MARGIN * 0.03)
    # a key that does not move across machines at all keeps its floor
    exact = drift.derive_rule("input SSIM", 0.66, [0.66, 0.66], [0.66, 0.64, 0.65])
    assert exact == {"check": "value", "tolerance": 0.002, "isa_range": 0.0, "seed_range": pytest.approx(0.02)}
    # an amplified key: a machine moves it as much as a seed does -> band of every run, widened by half
    chaotic = drift.derive_rule("SRGAN PSNR-Y (dB)", 25.0, [25.0, 27.0], [25.0, 23.0, 27.0])
    assert chaotic["check"] == "band" and chaotic["band"] == [21.0, 29.0]
    assert drift.derive_rule("plain time (s)", 3.0, [3.0, 9.0], [3.0])["check"] == "none"
    assert drift.derive_rule("weights", "scratch", ["scratch"], ["scratch"])["check"] == "equal"
    # a winner that changes between runs is chance: not compared
    winner = drift.derive_rule("best variant", "crop_2x2", ["crop_2x2"], ["arch", "crop_2x2"])
    assert winner == {"check": "none", "differs": ["arch", "crop_2x2"]}


def test_compare_headlines_under_rules():
    committed = {"RRDB PSNR-Y (dB)": 28.50, "SRGAN PSNR-Y (dB)": 25.0, "x8 ensemble cost (x time)": 7.4,
                 "weights": "scratch", "patches kept": 40, "new key (dB)": 30.0}
    rules = {"RRDB PSNR-Y (dB)": {"check": "value", "tolerance": 0.06},
             "SRGAN PSNR-Y (dB)": {"check": "band", "band": [21.0, 29.0]},
             "x8 ensemble cost (x time)": {"check": "none"}}
    assert all(r["ok"] for r in drift.compare_headlines(committed, dict(committed), rules))
    moved = {**committed, "RRDB PSNR-Y (dB)": 28.57, "SRGAN PSNR-Y (dB)": 28.0, "x8 ensemble cost (x time)": 3.0,
             "new key (dB)": 30.03}
    rows = {r["key"]: r for r in drift.compare_headlines(committed, moved, rules)}
    assert not rows["RRDB PSNR-Y (dB)"]["ok"] and rows["RRDB PSNR-Y (dB)"]["tolerance"] == 0.06
    assert rows["SRGAN PSNR-Y (dB)"]["ok"] and rows["SRGAN PSNR-Y (dB)"]["check"] == "band"
    assert rows["x8 ensemble cost (x time)"]["ok"]
    assert not rows["new key (dB)"]["ok"]          # no rule measured: held to its floor (0.02 dB)
    out_of_band = drift.compare_headlines(committed, {**committed, "SRGAN PSNR-Y (dB)": 20.9}, rules)
    assert not out_of_band[1]["ok"]
    assert not drift.compare_headlines(committed, {**committed, "weights": "pretrained"}, rules)[3]["ok"]
    assert drift.compare_headlines(committed, {**committed, "weights": "pretrained"},
                                   {**rules, "weights": {"check": "none"}})[3]["ok"]
    assert not drift.compare_headlines(committed, {**committed, "patches kept": 41})[4]["ok"]   # 2 % floor: 0.8
    missing = {k: v for k, v in committed.items() if k != "SRGAN PSNR-Y (dB)"}
    assert not drift.compare_headlines(committed, missing, rules)[1]["ok"]


@pytest.mark.parametrize("key, committed, expected", [
    ("plain s", 3.17, None),                    # CI failed on these two: wall-clock seconds, no parens
    ("skip s", 2.54, None),
    ("plain time (s)", 3.17, None),
    ("fit time (ms)", 12.0, None),
    ("train steps/s", 40.0, None),
    ("x8 ensemble cost (x time)", 7.5, None),
    ("HINet PSNR (dB)", 17.86, 0.02),
    ("HINet SSIM", 0.85, 0.002),
    ("plain ssim", 0.85, 0.002),                 # " s" inside a word is not a unit
    ("baseline hist sim", 0.46, 0.002),
    ("GAN + GP (002 recipe) D margin", 0.003, 0.002),
    ("skip patches", 270, 5.4),
    ("stride", 48, 0.96),
])
def test_floor_by_key(key, committed, expected):
    tolerance = drift.floor(key, committed)
    if expected is None:
        assert tolerance is None
    else:
        assert tolerance == pytest.approx(expected)


def test_committed_time_keys_are_never_compared():
    """Every committed headline key that carries a time unit or word is exempt (a slower CI machine is not drift)."""
    import re
    timing = re.compile(r"(\btimes?\b|seconds?|\(m?s\)|\bm?s$|/s\b|\bspeed\b)")
    for nb in NOTEBOOKS:
        rules = drift.rules_for(SPREAD, nb.stem)
        for key, value in drift.committed_headline(nb).items():
            if isinstance(value, (int, float)) and timing.search(key.lower()):
                assert drift.floor(key, float(value)) is None and rules[key]["check"] == "none", (nb.name, key)


def test_effect_across_runs_and_verdict():
    spread = {"notebooks": {"06": {"runs": {"a/seed42": {"x": 0.5, "y": 0.1}, "a/seed0": {"x": 0.4, "y": 0.2},
                                            "b/seed42": {"x": 0.1}, "c/seed42": {"x": 0.5, "y": 0.1}}}}}
    effects = drift.effect_across_runs(spread, "06", "x", "y")
    assert effects == {"a/seed42": pytest.approx(0.4), "a/seed0": pytest.approx(0.2)}
    assert drift.effect_verdict(effects) == "holds in every run"
    assert drift.effect_verdict({**effects, "c/seed1": -0.01}) == "no effect at this scale"
    assert drift.effect_verdict({}) == "not measured" and drift.effect_verdict({"this run": 0.3}) == "not measured"
    # a notebook's own run replaces the committed one; one key alone is its own effect
    spread["notebooks"]["06"]["runs"]["committed/seed42"] = {"x": 9.0, "y": 0.0}
    assert drift.effect_across_runs(spread, "06", "x", "y", this_run=-1.0)["this run"] == -1.0
    assert "committed/seed42" not in drift.effect_across_runs(spread, "06", "x", "y", this_run=-1.0)
    assert drift.effect_across_runs(spread, "06", "x")["b/seed42"] == pytest.approx(0.1)


# ----------------------------------------------------------------------------- the commands


def _demo_notebook(folder, source):
    cell = {"cell_type": "code", "source": source, "metadata": {}, "execution_count": None, "outputs": []}
    params = {"cell_type": "code", "source": "seed = 42\n", "metadata": {"tags": ["parameters"]},
              "execution_count": None, "outputs": []}
    nb = {"cells": [params, cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "01_demo.ipynb").write_text(json.dumps(nb))


def test_labkit_drift_command(tmp_path, capsys):
    nb_dir, runs = tmp_path / "notebooks", tmp_path / "runs"
    nb_dir.mkdir()
    headline = {"A PSNR (dB)": 30.0, "label": "x"}
    cell = {"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout",
                         "text": ["saved\n", report.HEADLINE_PREFIX + json.dumps(headline) + "\n"]}]}
    (nb_dir / "01_demo.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    report.save_metrics(runs / "01_demo", notebook="01_demo", profile="smoke", title="t", headline=headline)
    assert capsys.readouterr().out.startswith(report.HEADLINE_PREFIX)
    assert drift.committed_headline(nb_dir / "01_demo.ipynb") == headline
    assert cli.main(["--notebooks-dir", str(nb_dir), "drift", "--out", str(runs)]) == 0
    report.save_metrics(runs / "01_demo", notebook="01_demo", profile="smoke", title="t",
                        headline={**headline, "A PSNR (dB)": 29.5}, echo=False)
    assert cli.main(["--notebooks-dir", str(nb_dir), "drift", "--out", str(runs)]) == 1
    assert "DRIFT" in capsys.readouterr().out
    # with a spread file that measured this key moving by 0.3 dB across machines, 29.5 passes
    (nb_dir / "results").mkdir()
    (nb_dir / drift.SPREAD_FILE).write_text(json.dumps({"notebooks": {"01_demo": {"rules": {
        "A PSNR (dB)": {"check": "value", "tolerance": 0.6}}}}}))
    assert cli.main(["--notebooks-dir", str(nb_dir), "drift", "--out", str(runs)]) == 0
    assert "tolerance 0.6" in capsys.readouterr().out


def test_spread_measure_forces_the_kernels_and_build_writes_the_rules(tmp_path, capsys):
    """`labkit spread measure --isa avx` reaches the notebook kernel's environment; `build` derives the rules."""
    nb_dir, runs = tmp_path / "notebooks", tmp_path / "spread"
    _demo_notebook(nb_dir, "import os, tempfile, torch\nfrom labkit import report\n"
                           "report.save_metrics(tempfile.mkdtemp(), notebook='01_demo', profile='smoke', title='t', headline={\n"
                           "    'capability': torch.backends.cpu.get_cpu_capability(),\n"
                           "    'MKL_CBWR': os.environ.get('MKL_CBWR', ''), 'A PSNR (dB)': 30.0 + seed / 100})\n")
    code = ("import sys; from labkit import cli; sys.exit(cli.main(sys.argv[1:]))")
    for isa, seed in (("avx", 42), ("native", 0)):
        done = subprocess.run([sys.executable, "-c", code, "--notebooks-dir", str(nb_dir), "spread", "measure",
                               "--isa", isa, "--seed", str(seed), "--out", str(runs)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    forced = json.loads((runs / "avx-seed42" / "machine.json").read_text())
    assert forced["env"]["MKL_CBWR"] == "AVX" and forced["aten_capability"] == "DEFAULT"
    assert "Traceback" not in (runs / "avx-seed42" / "01_demo.ipynb").read_text()
    executed = json.loads((runs / "avx-seed42" / "01_demo.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for o in executed["cells"][-1]["outputs"])
    assert '"MKL_CBWR": "AVX"' in printed and '"capability": "DEFAULT"' in printed
    with pytest.raises(ValueError, match="unknown --isa"):
        drift.isa_environment("avx1024")


def test_spread_build_from_measured_runs(tmp_path, capsys):
    nb_dir, runs = tmp_path / "notebooks", tmp_path / "spread"
    nb_dir.mkdir()
    committed = {"A PSNR (dB)": 30.0, "B SSIM": 0.8, "train time (s)": 3.0}
    cell = {"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout",
                         "text": [report.HEADLINE_PREFIX + json.dumps(committed) + "\n"]}]}
    (nb_dir / "01_demo.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    for run, a, b in (("avx-seed42", 30.01, 0.8), ("native-seed0", 29.8, 0.79), ("native-seed1", 30.2, 0.81)):
        report.save_metrics(runs / run / "01_demo", notebook="01_demo", profile="smoke", title="t",
                            headline={"A PSNR (dB)": a, "B SSIM": b, "train time (s)": 9.0}, echo=False)
    (runs / "avx-seed42" / "machine.json").write_text(json.dumps({"cpu": "test", "env": {"MKL_CBWR": "AVX"}}))
    assert cli.main(["--notebooks-dir", str(nb_dir), "spread", "build", "--runs", str(runs)]) == 0
    spread = drift.load_spread(nb_dir)
    rules = drift.rules_for(spread, "01_demo")
    assert rules["A PSNR (dB)"] == {"check": "value", "tolerance": pytest.approx(max(0.02, drift.MARGIN * 0.01)),
                                    "isa_range": pytest.approx(0.01),
                                    "seed_range": pytest.approx(0.4)}
    assert rules["B SSIM"]["check"] == "value" and rules["train time (s)"]["check"] == "none"
    assert spread["configs"]["avx"]["env"] == {"MKL_CBWR": "AVX"}
    assert set(spread["notebooks"]["01_demo"]["runs"]) == {"avx/seed42", "native/seed0", "native/seed1",
                                                           "committed/seed42"}
    capsys.readouterr()
    assert cli.main(["--notebooks-dir", str(nb_dir), "spread", "show"]) == 0
    shown = capsys.readouterr().out
    assert f"| A PSNR (dB) | 0.0100 | 0.4000 | ± {max(0.02, drift.MARGIN * 0.01):g} |" in shown
    assert "| train time (s) | 6.00 | 6.00 | not compared (a time) |" in shown


def test_spread_build_fresh_drops_a_changed_notebooks_old_runs_and_names_its_native_cpu(tmp_path):
    nb_dir, runs = tmp_path / "notebooks", tmp_path / "spread"
    nb_dir.mkdir()
    for stem in ("01_demo", "02_other"):
        cell = {"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                "outputs": [{"output_type": "stream", "name": "stdout",
                             "text": [report.HEADLINE_PREFIX + json.dumps({"A PSNR (dB)": 30.0}) + "\n"]}]}
        (nb_dir / f"{stem}.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    old_run = {"A PSNR (dB)": 10.0}   # measured before the notebooks changed, on another machine
    previous = {"configs": {"native": {"cpu": "old cpu"}},
                "notebooks": {stem: {"runs": {"native/seed0": old_run, "xeon/seed42": old_run}} for stem in ("01_demo", "02_other")}}
    report.save_metrics(runs / "native-seed1" / "01_demo", notebook="01_demo", profile="smoke", title="t",
                        headline={"A PSNR (dB)": 30.1}, echo=False)
    (runs / "native-seed1" / "machine.json").write_text(json.dumps({"cpu": "new cpu", "env": {}}))
    spread = drift.build_spread(nb_dir, runs, previous, fresh=["01"])
    demo, other = spread["notebooks"]["01_demo"], spread["notebooks"]["02_other"]
    assert set(demo["runs"]) == {"native/seed1", "committed/seed42"} and demo["native_cpu"] == "new cpu"
    assert set(other["runs"]) == {"native/seed0", "xeon/seed42", "committed/seed42"} and other["native_cpu"] == "old cpu"
