"""lessons.effect_when_measured (issue 20, lab 04): a new comparison before and after the spread file measured it."""

from __future__ import annotations

import pytest

from labkit import lessons


def _spread(a: float, b: float) -> dict:
    return {"notebooks": {"nb": {"runs": {"native/seed0": {"A (dB)": a, "B (dB)": b},
                                          "native/seed1": {"A (dB)": a + 0.5, "B (dB)": b}}}}}


def test_unmeasured_keys_state_this_run_only_and_assert_nothing(capsys):
    lesson = lessons.Lessons("nb", check=True, spread={})
    assert lessons.effect_when_measured(lesson, "A minus B", "A (dB)", "B (dB)", this_run=-1.0, expect=">", says="A wins") is False
    out = capsys.readouterr().out
    assert "not yet measured over seeds" in out and "opposite sign" in out
    assert lessons.effect_when_measured(lesson, "A minus B", "A (dB)", "B (dB)", this_run=1.0, expect=">", says="A wins") is False
    assert "this run alone: A wins" in capsys.readouterr().out


def test_measured_keys_go_through_lessons_effect():
    lesson = lessons.Lessons("nb", check=True, spread=_spread(2.0, 1.0))
    assert lessons.effect_when_measured(lesson, "A minus B", "A (dB)", "B (dB)", this_run=1.0, expect=">", says="A wins")
    with pytest.raises(AssertionError, match="lesson not reproduced"):
        lessons.effect_when_measured(lesson, "A minus B", "A (dB)", "B (dB)", this_run=-1.0, expect=">", says="A wins")


def test_bad_expect():
    with pytest.raises(ValueError):
        lessons.effect_when_measured(lessons.Lessons("nb", spread={}), "x", "A (dB)", None, this_run=1.0, expect="=", says="")
