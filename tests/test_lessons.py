"""labkit.lessons (a lesson printed from the run, checked over seeds, asserted), labkit.references (the published
numbers) and labkit.docs (the generated course table)."""

from __future__ import annotations

import json

import pytest

from labkit import docs, drift, env, lessons, references

NB = "99_demo"


def _spread(*effects: float, key_a: str = "A (dB)", key_b: str = "B (dB)") -> dict:
    """A spread file whose runs of notebook 99 have ``A - B`` equal to each of ``effects``."""
    names = ["committed/seed42", "native/seed0", "native/seed1", "avx/seed42", "xeon/seed42"]
    runs = {name: {key_a: 20.0 + e, key_b: 20.0} for name, e in zip(names, effects)}
    return {"notebooks": {NB: {"runs": runs}}}


def test_a_lesson_that_held_in_every_run_is_stated_and_asserted(capsys):
    lesson = lessons.Lessons(NB, check=True, spread=_spread(0.5, 0.4, 0.6, 0.45))
    assert lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=0.52, expect=">", says="A beats B")
    out = capsys.readouterr().out
    # the committed run is this notebook's own: left out, replaced by this run
    assert "+0.52 dB in this run; +0.40 to +0.60 dB over 3 other measured runs" in out and "-> A beats B" in out
    with pytest.raises(AssertionError, match="lesson not reproduced: A minus B is -0.10 dB"):
        lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=-0.1, expect=">", says="A beats B")


def test_a_lesson_whose_sign_changed_between_runs_says_no_effect_and_asserts_nothing(capsys):
    lesson = lessons.Lessons(NB, check=True, spread=_spread(0.5, -0.2, 0.3))
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=0.5, expect=">", says="A beats B")
    assert "no effect at this scale (the sign changes between runs)" in capsys.readouterr().out
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=-0.5, expect=">", says="A beats B",
                             otherwise="not repeatable here")
    assert "not repeatable here" in capsys.readouterr().out
    lesson = lessons.Lessons(NB, check=True, spread=_spread(0.5, -0.2, -0.3))
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=-0.5, expect=">", says="A beats B")
    assert "(the opposite sign in every measured run)" in capsys.readouterr().out
    lesson = lessons.Lessons(NB, check=True, spread=_spread(0.0, 0.0, 0.0))
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=0.0, expect=">", says="A beats B")
    assert "(exactly zero in every measured run)" in capsys.readouterr().out


def test_a_comparison_not_yet_measured_over_seeds_is_this_runs_alone_and_asserts_nothing(capsys):
    """New headline keys: the spread measurement itself runs the notebook with seeds 0 and 1, so an unmeasured
    comparison must not fail a seed whose sign differs (it used to count "no run" as "held in every run")."""
    lesson = lessons.Lessons(NB, check=True, spread=_spread(0.5))   # only this notebook's own committed run
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=-0.3, expect=">", says="A beats B",
                             otherwise="B holds its own")
    out = capsys.readouterr().out
    assert "not yet measured over seeds" in out and "this run alone shows the opposite sign: B holds its own" in out
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=0.3, expect=">", says="A beats B")
    assert "-> this run alone: A beats B" in capsys.readouterr().out


def test_an_unchecked_run_prints_the_lesson_but_does_not_assert(capsys):
    assert lessons.checked("smoke", None) and not lessons.checked("smoke", 2) and not lessons.checked("full")
    assert not lessons.checked("smoke", None, "data/DIV2K") and not lessons.checked("smoke", lr=1e-3)
    assert lessons.checked("smoke", lr=None, epochs=None)
    lesson = lessons.Lessons(NB, check=False, spread=_spread(0.5, 0.4, 0.6))
    assert not lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=-0.3, expect=">", says="A beats B")
    out = capsys.readouterr().out
    assert "NOT in this run" in out and "not asserted" in out
    with pytest.raises(ValueError, match="expect must be"):
        lesson.effect("A minus B", "A (dB)", "B (dB)", this_run=1.0, expect="up", says="x")


def test_a_claim_prints_what_the_numbers_support_and_asserts_a_required_one(capsys):
    lesson = lessons.Lessons(NB, check=True, spread={})
    assert lesson.claim(0.04 < 0.5 * 2.3, says="the cast explains little", otherwise="the cast explains most")
    assert capsys.readouterr().out.strip() == "the cast explains little"
    assert not lesson.claim(False, says="x", otherwise="y", required=False)
    with pytest.raises(AssertionError, match="expected 'x', measured 'y'"):
        lesson.claim(False, says="x", otherwise="y")


def test_the_seed_table_puts_this_run_beside_seeds_0_and_1_and_leaves_times_out(capsys):
    spread = _spread(0.0, 0.2, 0.4)
    for name, run in spread["notebooks"][NB]["runs"].items():
        run["train time (s)"] = 10.0
    lesson = lessons.Lessons(NB, spread=spread)
    rows = lesson.seed_table({"A (dB)": 20.1, "B (dB)": 20.0, "train time (s)": 99.0, "winner": "A"})
    assert [r["headline"] for r in rows] == ["A (dB)", "B (dB)"]
    assert rows[0] == {"headline": "A (dB)", "seed 42": 20.1, "seed 0": 20.2, "seed 1": 20.4, "range": 0.3}
    assert rows[1]["range"] == 0
    lessons.print_seed_table(rows)
    out = capsys.readouterr().out
    assert "1 of 2 numbers moved with the seed" in out and "A (dB) (range 0.3)" in out
    lessons.print_seed_table(lesson.seed_table({"B (dB)": 20.0}))
    assert "no number here moved with the seed" in capsys.readouterr().out


def test_every_published_number_names_its_metric_dataset_and_source():
    assert len(references.PUBLISHED) > 60
    for p in references.PUBLISHED.values():
        assert p.metric and p.dataset and p.source, p.key
    # the official figures the labs compare against, as published
    assert references.value("RRDB (DF2K) x4 Set5 PSNR-Y") == 32.73
    assert references.value("bicubic x4 Set5 PSNR-Y") == 28.42
    assert references.value("NAFNet width 64 GoPro PSNR (TLC)") == 33.71
    assert "Set5" in references.text("SwinIR (DF2K) x4 Set5 PSNR-Y")
    with pytest.raises(KeyError, match="did you mean 'RRDB \\(DF2K\\) x4 Set5 PSNR-Y'"):
        references.get("RRDB x4 Set5 PSNR-Y")


def test_the_references_file_is_the_table(tmp_path):
    text = references.markdown()
    for p in references.PUBLISHED.values():
        assert f"| {p.key} | {p.value:g}" in text


def test_the_course_table_is_computed_from_the_spread_file_and_keeps_the_badges(tmp_path):
    readme = (env.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    urls = docs.badges(readme)
    assert len(urls) == 6
    table = docs.course_table(env.REPO_ROOT / "notebooks", urls)
    spread = drift.load_spread(env.REPO_ROOT / "notebooks")
    effect = docs.COURSE["03_rrdb_plus_best"].effects[0]
    values = docs.seed_values(spread, "03_rrdb_plus_best", effect)
    assert values and docs.effect_text(values, effect) in table
    assert all(url in table for url in urls.values())
    flips = docs.effect_text([-0.07, 0.77], docs.Effect("deblurring", "x"))
    assert flips == "deblurring -0.07 to +0.77 dB (sign changes: no effect)"
    with pytest.raises(ValueError, match="no course-table markers"):
        docs.render_readme("# no table here", table)


def test_docs_check_reports_a_stale_readme(tmp_path):
    (tmp_path / "notebooks" / "results").mkdir(parents=True)
    for nb in (env.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        (tmp_path / "notebooks" / nb.name).write_bytes(nb.read_bytes())
    spread = env.REPO_ROOT / "notebooks" / drift.SPREAD_FILE
    (tmp_path / "notebooks" / drift.SPREAD_FILE).write_bytes(spread.read_bytes())
    readme = (env.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme.replace("| 03 |", "| 03 edited |").replace(
        "RRDB - bicubic (Y)", "RRDB - bicubic (Y, typed)"), encoding="utf-8")
    assert docs.update(tmp_path, check=True) == ["README.md", str(docs.REFERENCES_FILE)]
    assert docs.update(tmp_path) == ["README.md", str(docs.REFERENCES_FILE)]
    assert docs.update(tmp_path, check=True) == []
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == readme
    json.loads((tmp_path / "notebooks" / drift.SPREAD_FILE).read_text())
