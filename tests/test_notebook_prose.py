"""The notebooks' prose carries no number of a run: results are printed by code (:mod:`labkit.lessons`).

Markdown keeps the why, the write-ups' reasoning and the published numbers (:mod:`labkit.references`); a
number that a run measured (a PSNR, a gain, an SSIM, a time) is printed from the run's values, so that it
cannot disagree with the outputs beside it. The scan reads each committed notebook: every decimal number
and every duration in a markdown cell that also appears in the notebook's outputs (or its headline) is a
number of a run typed by hand, unless it is a published number. The generated README table and
``docs/references.md`` must be up to date (``labkit docs``).
"""

from __future__ import annotations

import json
import re

import pytest

from labkit import docs, drift, env, profiles, references

NOTEBOOK_DIR = env.REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
#: A decimal number (not part of a version like 2.14.1 or of a word).
DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?![\w]|\.\d)")
#: A duration: "281 s", "about 3 min", "~1.5 h".
DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(s|sec|seconds|min|minutes|h|hours)\b")
PUBLISHED = {p.value for p in references.PUBLISHED.values()}
SPREAD = drift.load_spread(NOTEBOOK_DIR)


def _numbers(value):
    if isinstance(value, dict):
        return {n for v in value.values() for n in _numbers(v)}
    if isinstance(value, (list, tuple)):
        return {n for v in value for n in _numbers(v)}
    return {abs(float(value))} if drift.is_number(value) else set()


#: Settings, not results: every number of every lab's profiles (betas 0.9 / 0.99, dropout 0.5, lr ...).
SETTINGS = _numbers(profiles.PROFILES) | _numbers(profiles.NAFNET_VARIANT_SPECS)


def _cells(nb_path):
    return json.loads(nb_path.read_text(encoding="utf-8"))["cells"]


def _output_text(cells) -> str:
    parts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def measured_values(nb_path) -> list[float]:
    """Every headline value of the notebook's runs (the committed one, and those of seeds and other machines in
    the spread file), and the difference of every two of them within a run (the gains a lesson quotes)."""
    runs = [drift.committed_headline(nb_path),
            *SPREAD.get("notebooks", {}).get(nb_path.stem, {}).get("runs", {}).values()]
    values = []
    for run in runs:
        numbers = [float(v) for v in run.values() if drift.is_number(v)]
        values += numbers + [a - b for a in numbers for b in numbers if a != b]
    return values


def run_numbers_in_markdown(nb_path) -> list[str]:
    """``"c12: 27.32"`` for every number of a run found in a markdown cell of ``nb_path``."""
    cells = _cells(nb_path)
    outputs = _output_text(cells)
    printed = set(DECIMAL.findall(outputs)) | {m.group(0) for m in DURATION.finditer(outputs)}
    headline = measured_values(nb_path)
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"`[^`]*`", "", "".join(cell["source"]))   # inline code: formulas and settings
        for token in DECIMAL.findall(text):
            decimals = len(token.split(".")[1])
            value = float(token)
            if abs(value) in PUBLISHED or abs(value) in SETTINGS or value.is_integer():
                continue   # published, a setting, or a reference point such as 1.0 (the real photo's edge energy)
            if token.lstrip("+") in {p.lstrip("+") for p in printed} or any(
                    round(abs(float(h)), decimals) == abs(value) for h in headline):
                found.append(f"c{i}: {token}")
        for m in DURATION.finditer(text):
            if float(m.group(1)) not in PUBLISHED:
                found.append(f"c{i}: {m.group(0)} (a duration of a run)")
    return found


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_no_markdown_cell_types_a_number_of_the_run(nb_path):
    found = run_numbers_in_markdown(nb_path)
    assert not found, (f"{nb_path.name}: markdown cells carry numbers measured by a run; print them from the run "
                       f"(labkit.lessons) or, if published, add them to labkit/references.py: {found}")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_no_notebook_cites_a_file_outside_the_repository(nb_path):
    text = "".join("".join(c["source"]) for c in _cells(nb_path))
    assert "REFERENCE.md" not in text and "../shared" not in text, nb_path.name


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_notebook_states_its_lessons_from_the_run_and_prints_its_seed_table(nb_path):
    text = "".join("".join(c["source"]) for c in _cells(nb_path) if c["cell_type"] == "code")
    assert "lessons.Lessons(" in text and "print_seed_table(" in text, nb_path.name


def test_the_scan_finds_a_typed_number_and_spares_a_published_one(tmp_path):
    nb = json.loads(NOTEBOOKS[2].read_text(encoding="utf-8"))
    headline = drift.committed_headline(NOTEBOOKS[2])
    key = next(k for k, v in headline.items()
               if isinstance(v, float) and "(dB)" in k and round(v, 2) not in PUBLISHED | SETTINGS
               and round(v, 2) != round(v))   # the scan spares whole numbers by design
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": [
        f"This run reached {headline[key]:.2f} dB in about 5 min; the paper reports "
        f"{references.value('RRDB (DF2K) x4 Set5 PSNR-Y'):.2f} dB."]})
    path = tmp_path / NOTEBOOKS[2].name
    path.write_text(json.dumps(nb), encoding="utf-8")
    found = run_numbers_in_markdown(path)
    assert any(f"{headline[key]:.2f}" in f for f in found) and any("5 min" in f for f in found)
    assert not any(f"{references.value('RRDB (DF2K) x4 Set5 PSNR-Y'):.2f}" in f for f in found)


def test_the_readme_course_table_and_references_file_are_generated_and_up_to_date():
    stale = docs.update(env.REPO_ROOT, check=True)
    assert not stale, f"out of date: {stale}; run `labkit docs` and commit"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_published_numbers_are_printed_from_the_references_table_not_typed_in_code(nb_path):
    typed = []
    for i, cell in enumerate(_cells(nb_path)):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            typed += [f"c{i}: {t}" for t in DECIMAL.findall(source)
                      if abs(float(t)) in PUBLISHED and abs(float(t)) not in SETTINGS and not float(t).is_integer()]
    assert not typed, f"{nb_path.name}: published numbers typed in code; use labkit.references: {typed}"
