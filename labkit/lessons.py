"""Lessons a notebook states from its own numbers: printed from this run, checked over seeds, asserted.

A notebook's markdown keeps the why (the write-up's reasoning, the published numbers); every sentence
that states a *result of this run* (a gain, an ordering, a winner, "sharper", "explains") is printed by a
code cell from this run's values, through this module, so it cannot go stale. Whether a lesson holds is
decided from the committed spread file (``notebooks/results/spread.json``, :mod:`labkit.drift`): the same
notebook's headline under seeds 0 and 1 and under other instruction sets and machines.

- :meth:`Lessons.effect`: a difference of two headline keys (``A - B``) against its expected sign. If the
  sign held in every measured run, the lesson is stated and this run must agree (``AssertionError``
  otherwise: the notebook fails loudly instead of teaching something false). If the sign changed between
  measured runs, the notebook prints "no effect at this scale" with the runs, and asserts nothing.
- :meth:`Lessons.claim`: a direction measured in this run only (not a headline key), e.g. "the cast
  accounts for less than half of the gap": the sentence printed is the one the numbers support, and a
  claim the lesson relies on is asserted.
- :meth:`Lessons.seed_table`: the headline of this run beside seeds 0 and 1 (from the spread file), and
  the range of each key.

Lessons are asserted only at the budget and on the data the spread file measured (the smoke profile, no
``max_steps``, the bundled photos): :func:`checked`. Otherwise (``-p max_steps=2``, the full profile, a
``data_root``) they are printed with "(not asserted: ...)" instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from labkit import drift, env

#: The profile the spread file measures, and so the only one whose lessons are asserted.
MEASURED_PROFILE = "smoke"
#: The seeds of the spread table (42: the write-ups' seed, this run).
TABLE_SEEDS = (42, 0, 1)


def checked(profile: str, max_steps: int | None = None, data_root: str | os.PathLike | None = None,
            **overrides: Any) -> bool:
    """Whether a run's lessons are asserted: only with the settings the spread file measured.

    Args:
        profile: the run's profile (``"smoke"`` or ``"full"``).
        max_steps: the run's ``max_steps`` override (None: the profile's own budget).
        data_root: the run's dataset folder (None: the bundled photos, which the spread file measured).
        **overrides: the notebook's other recipe parameters (``epochs=epochs, lr=lr, ...``): None is the
            profile's value; any other value is a recipe the spread file did not measure.
    """
    return (profile == MEASURED_PROFILE and max_steps is None and data_root is None
            and all(v is None for v in overrides.values()))


def _fmt(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


@dataclass
class Lessons:
    """The lessons of one notebook run.

    Args:
        notebook: the notebook's name as in the spread file (e.g. ``"03_rrdb_plus_best"``).
        check: assert the lessons (:func:`checked` of the run's profile and ``max_steps``).
        notebooks_dir: the folder holding ``results/spread.json`` (default: the repository's notebooks).
        spread: the spread file's content (default: loaded from ``notebooks_dir``; ``{}`` when missing).
    """

    notebook: str
    check: bool = True
    notebooks_dir: str | os.PathLike | None = None
    spread: Mapping[str, Any] | None = None
    stated: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.spread is None:
            self.spread = drift.load_spread(self.notebooks_dir or env.notebooks_dir())

    # ------------------------------------------------------------------ measured over seeds

    def measured_runs(self, minuend: str, subtrahend: str | None = None) -> dict[str, float]:
        """``minuend - subtrahend`` in every run the spread file measured, this notebook's own seed-42 run
        left out (``{"native/seed0": 1.23, ...}``)."""
        every = drift.effect_across_runs(self.spread, self.notebook, minuend, subtrahend, this_run=0.0)
        every.pop("this run", None)
        return every

    def effect(self, what: str, minuend: str, subtrahend: str | None, *, this_run: float, expect: str,
               says: str, otherwise: str = "", unit: str = "dB", digits: int = 2) -> bool:
        """State the lesson "``minuend - subtrahend`` has the sign ``expect``", from this run and the spread.

        Args:
            what: the effect in words (e.g. ``"fine-tuned RRDB minus bicubic, PSNR-Y"``).
            minuend, subtrahend: headline keys (``subtrahend`` None: the key's value itself is the effect).
            this_run: the effect in this run (the same difference, from this run's values).
            expect: ``">"`` (the effect is positive) or ``"<"`` (negative).
            says: the lesson printed when the sign held in every measured run.
            otherwise: what is printed when it did not (default: "no effect at this scale").
            unit: printed after the numbers.
            digits: decimals printed.

        Returns:
            True when the lesson is stated (its sign held in every measured run and in this one). A comparison
            the spread file has not measured yet (new keys) prints this run's sign as "this run alone", is not
            stated and asserts nothing: the spread measurement itself runs the notebook with other seeds.

        Raises:
            ValueError: ``expect`` is not ``">"`` or ``"<"``.
            AssertionError: the sign held in every measured run but not in this one, and the lesson is checked.
        """
        if expect not in (">", "<"):
            raise ValueError(f"expect must be '>' or '<', got {expect!r}")
        sign = 1.0 if expect == ">" else -1.0
        runs = self.measured_runs(minuend, subtrahend)
        values = list(runs.values())
        held = bool(values) and all(sign * v > 0 for v in values)   # no measured run: nothing held yet
        here = sign * this_run > 0
        spread_text = (f"{_fmt(min(values), digits)} to {_fmt(max(values), digits)} {unit} over {len(values)} "
                       f"other measured run{'s' if len(values) != 1 else ''} (seeds, instruction sets)"
                       if values else "not yet measured over seeds")
        print(f"{what}: {_fmt(this_run, digits)} {unit} in this run; {spread_text}")
        stated = held and here
        if not values:   # a new comparison, before `labkit spread measure` ran it with other seeds
            print(f"  -> this run alone: {says}" if here else
                  f"  -> this run alone shows the opposite sign: {otherwise or 'no effect at this scale'}")
        elif stated:
            print(f"  -> {says}")
        elif held:
            print(f"  -> NOT in this run, although it held in every measured run: {says}")
        else:
            opposite = bool(values) and all(sign * v < 0 for v in values)
            zero = bool(values) and all(v == 0 for v in values)
            signs = ("exactly zero in every measured run" if zero
                     else "the opposite sign in every measured run" if opposite
                     else "the sign changes between runs")
            print(f"  -> {otherwise or 'no effect at this scale'} ({signs})")
        self.stated.append({"what": what, "this_run": this_run, "runs": runs, "stated": stated})
        if self.check and held and not here:
            raise AssertionError(
                f"lesson not reproduced: {what} is {_fmt(this_run, digits)} {unit} in this run, but had the "
                f"sign '{expect} 0' in every measured run ({spread_text}); do not teach it from this run: "
                f"compare it with `labkit drift` and re-measure with `labkit spread measure`")
        if not self.check:
            print("  (not asserted: the spread file measured the smoke profile's budget on the bundled photos, not this run's)")
        return stated

    # ------------------------------------------------------------------ measured in this run only

    def claim(self, holds: bool, says: str, otherwise: str, *, required: bool = True) -> bool:
        """Print ``says`` if ``holds`` (a direction computed from this run's values), else ``otherwise``.

        Args:
            holds: the direction, computed from this run's numbers.
            says, otherwise: the sentence for each case (written with this run's numbers in them).
            required: the lesson relies on it: assert ``holds`` when the run is checked.

        Raises:
            AssertionError: ``required``, checked, and ``holds`` is False.
        """
        print(says if holds else otherwise)
        self.stated.append({"what": says, "stated": bool(holds)})
        if required and self.check and not holds:
            raise AssertionError(f"lesson not reproduced in this run: expected '{says}', measured '{otherwise}'")
        return bool(holds)

    # ------------------------------------------------------------------ the seed table

    def seed_table(self, headline: Mapping[str, Any], keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Rows ``{"headline", "seed 42", "seed 0", "seed 1", "range"}``: this run (as seed 42) beside the
        native runs of seeds 0 and 1 in the spread file (None where a seed was not measured).

        Times (keys the drift check never compares) are left out: they measure the machine.
        """
        runs = self.spread.get("notebooks", {}).get(self.notebook, {}).get("runs", {})
        rows = []
        for key in keys or list(headline):
            value = headline.get(key)
            if not drift.is_number(value) or drift.floor(key, float(value)) is None:
                continue
            row: dict[str, Any] = {"headline": key, "seed 42": value}
            for seed in TABLE_SEEDS[1:]:
                row[f"seed {seed}"] = runs.get(f"{drift.NATIVE}/seed{seed}", {}).get(key)
            known = [v for k, v in row.items() if k.startswith("seed ") and drift.is_number(v)]
            row["range"] = round(max(known) - min(known), 6) if len(known) > 1 else None
            rows.append(row)
        return rows


def print_seed_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """Print :meth:`Lessons.seed_table` rows as an aligned text table, then which keys moved and by how much."""
    header = ["headline", *[f"seed {s}" for s in TABLE_SEEDS], "range"]
    cells = [[_cell(r.get(h)) for h in header] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    moved = [r for r in rows if r.get("range")]
    missing = sorted({h for r in rows for h in header[2:-1] if r.get(h) is None})
    if not moved:
        print("no number here moved with the seed" + (f" (not measured: {', '.join(missing)})" if missing else ""))
    else:
        biggest = max(moved, key=lambda r: abs(r["range"]) / max(abs(r["seed 42"]), 1e-12))
        print(f"{len(moved)} of {len(rows)} numbers moved with the seed; relatively the most: "
              f"{biggest['headline']} (range {_cell(biggest['range'])})"
              + (f"; not measured: {', '.join(missing)}" if missing else ""))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:.2f}"
    return str(value)
