"""Drift: does a fresh run print the numbers the committed notebooks show, within what a machine moves?

Every notebook's last cell prints a ``headline: {json}`` line (:func:`labkit.report.save_metrics`), which
is committed with the notebook. On one machine the same seed prints the same numbers, bit for bit
(:func:`labkit.env.seed_everything`). On another CPU it need not: ATen, oneDNN and MKL pick their kernels
by instruction set at run time (AVX2, AVX-512, AMX ...), float sums then add in another order, and
training turns a last-bit difference into a different model; an adversarial game amplifies it as much as
a change of seed does. So each headline number is compared within a tolerance derived from how much it
was *measured* to move, recorded in the committed spread file (``notebooks/results/spread.json``):

- per notebook, the headline of each measured run: the committed one (``committed/seed42``), seed 42
  under every instruction-set configuration (:data:`ISA_CONFIGS`, the kernels forced with
  ``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA`` and ``MKL_CBWR``), seeds 42, 0 and 1 under the native
  one, and runs recorded on other machines, each configuration with its CPU and source;
- per headline key, the rule :func:`derive_rule` derived from them:

  ``value``
      ``|fresh - committed| <= max(floor, MARGIN * isa_range)``: three times the range across
      instruction sets and machines, never below the key's floor (:func:`floor`: the rounding of the
      printed number plus a hair). A few configurations under-estimate the range of all CPUs: left out
      one at a time, 4 of the 12 measured runs fell outside the rule derived from the others (labs 03,
      05 and 06, each time the only other machine of a key was the one left out). A new kind of machine
      is measured with ``labkit spread measure`` and added with ``labkit spread build``.
  ``band``
      the key moves across instruction sets as much as across seeds (``isa_range >= AMPLIFIED *
      seed_range``): its exact value is chance, so it is only checked to lie in the band of every
      measured run, widened by half its width on each side (:data:`BAND_WIDEN`). Its lesson is asserted
      by direction in the notebook, or stated as no effect, never read from its value.
  ``none``
      a time, speed or cost: machine-dependent by nature, not compared.

``labkit spread measure --isa NAME --seed S`` makes one measured run (every notebook, the smoke profile)
under ``runs/spread/<NAME>-seed<S>/``; ``labkit spread build`` turns the runs into the spread file.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from labkit import report

#: The committed spread file, relative to the notebooks folder.
SPREAD_FILE = Path("results") / "spread.json"
#: The seeds every notebook is measured with (42: the write-ups' seed, the committed run).
SEEDS = (42, 0, 1)
#: The configuration that lets each library choose its kernels (the machine's own instruction set).
NATIVE = "native"
#: The name of the committed notebooks' own run (seed 42, on the machine that executed them).
COMMITTED = "committed"
#: Instruction-set configurations: the environment of the process that starts the notebook kernels.
#: ``native`` lets each library choose; the others force a lower instruction set (each names what it
#: forces), so that one machine shows how much the numbers move when the kernels change. AVX-512 and AMX
#: exist only on CPUs that have them: on those, ``avx512`` forces AVX-512 without AMX.
ISA_CONFIGS: dict[str, dict[str, str]] = {
    NATIVE: {},
    "avx2-cbwr": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "avx": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX", "MKL_CBWR": "AVX"},
    "sse41": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "SSE4_2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AVX512"},
}
#: Tolerance of a ``value`` key: this many times its range across instruction sets (at least its floor).
MARGIN = 3.0
#: A key whose range across instruction sets reaches this share of its range across seeds is ``band``.
AMPLIFIED = 0.5
#: A ``band`` is the range of every measured run, widened on each side by this share of its width.
BAND_WIDEN = 0.5

_TIME_PATTERNS = (r"\btimes?\b", r"\bcost\b", r"\bseconds?\b", r"\bspeed\b", r"\bthroughput\b",
                  r"\(s\)", r"\(ms\)", r"\bs$", r"\bms$", r"/s\b")
#: The floor of a key's tolerance: (patterns searched in the lower-cased key, absolute floor); first match
#: wins; a time key (a word, or a unit: ``(s)``, a trailing `` s``, ``ms``, ``/s``) has None: never compared.
#: dB values print with 2 decimals, SSIM and similarities with 4: a floor of two units of the last digit.
FLOORS: tuple[tuple[tuple[str, ...], float | None], ...] = (
    (_TIME_PATTERNS, None),
    ((r"\(db\)",), 0.02),
    ((r"\bssim\b", r"\bsimilarity\b", r"\bhist sim\b", r"\bmargin\b", r"\bgap\b"), 0.002),
)
#: Floor of any other number (counts, ratios), relative to the committed value.
FLOOR_RELATIVE = 0.02


def floor(key: str, committed: float) -> float | None:
    """The smallest allowed ``|fresh - committed|`` for headline ``key`` (None: a time, not compared).

    Examples: ``"HINet PSNR (dB)"`` -> 0.02; ``"HINet SSIM"`` -> 0.002; ``"plain time (s)"``, ``"skip s"``,
    ``"steps/s"`` -> None; ``"plain patches"`` with committed 330 -> 6.6 (2 %).
    """
    low = key.lower().strip()
    for patterns, tol in FLOORS:
        if any(re.search(p, low) for p in patterns):
            return tol
    return FLOOR_RELATIVE * max(abs(committed), 1e-12)


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool (a headline value that can be compared)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _span(values: Sequence[float]) -> float:
    return float(max(values) - min(values)) if values else 0.0


def derive_rule(key: str, committed: Any, isa_values: Sequence[Any], seed_values: Sequence[Any]) -> dict[str, Any]:
    """The drift rule of one headline key from its measured values (see the module docstring).

    Args:
        key: the headline key (its words pick the floor and exempt times).
        committed: the committed (native, seed 42) value.
        isa_values: the key's seed-42 values under every instruction-set configuration and recorded machine.
        seed_values: its values under the native configuration for each seed.

    Returns:
        ``{"check": "value"|"band"|"none"|"equal", "tolerance"?, "band"?, "isa_range", "seed_range"}``
        (``equal``: a label every run agrees on, compared as it is; a label the runs disagree on is
        ``none``, with the values seen in ``differs``).
    """
    if not is_number(committed):   # a label (a winner, a setting): equal, unless the runs disagree on it
        agree = all(v == committed for v in [*isa_values, *seed_values])
        return {"check": "equal"} if agree else {"check": "none", "differs": sorted({str(v) for v in [committed, *isa_values, *seed_values]})}
    low = floor(key, float(committed))
    isa = [float(v) for v in isa_values if is_number(v)]
    seeds = [float(v) for v in seed_values if is_number(v)]
    isa_range, seed_range = _span(isa), _span(seeds)
    rule: dict[str, Any] = {"isa_range": round(isa_range, 6), "seed_range": round(seed_range, 6)}
    if low is None:
        return {"check": "none", **rule}
    if isa_range > low and isa_range >= AMPLIFIED * seed_range:
        every = isa + seeds + [float(committed)]
        lo, hi = min(every), max(every)
        widen = max(BAND_WIDEN * (hi - lo), low)
        return {"check": "band", "band": [round(lo - widen, 6), round(hi + widen, 6)], **rule}
    return {"check": "value", "tolerance": round(max(low, MARGIN * isa_range), 6), **rule}


def derive_rules(committed: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rules for every key of ``committed`` from ``runs`` (``{"<config>/seed<S>": headline}``).

    The instruction-set values of a key are its seed-42 runs: the committed one, every configuration's
    and every recorded machine's. Its seed values are the native runs of each seed on the machine that
    measured them (the committed value stands in for seed 42 when that machine did not run it).
    """
    rules = {}
    for key, value in committed.items():
        isa = [value] + [h[key] for name, h in runs.items() if name.endswith("/seed42") and key in h]
        seeds = [h[key] for name, h in runs.items() if name.startswith(f"{NATIVE}/") and key in h]
        if f"{NATIVE}/seed42" not in runs:
            seeds.append(value)
        rules[key] = derive_rule(key, value, isa, seeds)
    return rules


def load_spread(notebooks: str | os.PathLike) -> dict[str, Any]:
    """The committed spread file of a notebooks folder (``{}`` when there is none).

    Raises:
        ValueError: the file is not valid JSON (the message names it).
    """
    path = Path(notebooks) / SPREAD_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rebuild it with `labkit spread build`") from exc


def rules_for(spread: Mapping[str, Any], notebook: str) -> dict[str, dict[str, Any]]:
    """The per-key rules the spread file holds for ``notebook`` (``{}``: none measured)."""
    return dict(spread.get("notebooks", {}).get(notebook, {}).get("rules", {}))


def committed_headline(notebook: str | os.PathLike) -> dict[str, Any]:
    """The headline a committed notebook printed (its ``headline: {json}`` output line).

    Raises:
        FileNotFoundError: no such notebook file.
        ValueError: the notebook holds no headline line (not executed, or from before the line existed).
    """
    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in reversed(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for line in text.splitlines():
                if line.startswith(report.HEADLINE_PREFIX):
                    return json.loads(line[len(report.HEADLINE_PREFIX):])
    raise ValueError(f"{path} has no '{report.HEADLINE_PREFIX.strip()}' output line: re-run it (labkit run) and commit it")


def compare_one(key: str, old: Any, new: Any, rule: Mapping[str, Any] | None) -> dict[str, Any]:
    """One comparison row: ``key, committed, fresh, check, tolerance, band, ok``.

    Without a measured ``rule`` (a key the spread file does not know yet) a number is compared within
    its :func:`floor`; a string must be equal.
    """
    row: dict[str, Any] = {"key": key, "committed": old, "fresh": new, "check": None, "tolerance": None}
    if rule is not None and rule.get("check") == "none":
        row.update(check="none", ok=True)
        return row
    if not (is_number(old) and is_number(new)):
        row.update(check="equal", ok=old == new)
        return row
    rule = dict(rule or {"check": "value", "tolerance": floor(key, float(old))})
    if rule.get("tolerance") is None and rule["check"] == "value":
        rule["check"] = "none"
    row["check"] = rule["check"]
    if rule["check"] == "none":
        row["ok"] = True
    elif rule["check"] == "band":
        lo, hi = rule["band"]
        row.update(band=[lo, hi], ok=lo - 1e-12 <= float(new) <= hi + 1e-12)
    else:
        row.update(tolerance=rule["tolerance"], ok=abs(float(new) - float(old)) <= rule["tolerance"] + 1e-12)
    return row


def compare_headlines(committed: Mapping[str, Any], fresh: Mapping[str, Any],
                      rules: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per committed headline key (:func:`compare_one`); a key missing from ``fresh`` is not ok."""
    rows = []
    for key, old in committed.items():
        if key not in fresh:
            rows.append({"key": key, "committed": old, "fresh": None, "check": "missing", "tolerance": None, "ok": False})
        else:
            rows.append(compare_one(key, old, fresh[key], (rules or {}).get(key)))
    return rows


def check_drift(runs: str | os.PathLike, notebooks: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Compare every ``<runs>/<notebook>/metrics.json`` with the committed ``<notebooks>/<notebook>.ipynb``,
    under the rules of ``<notebooks>/results/spread.json``.

    Returns ``{notebook: rows of compare_headlines}`` for the notebooks that have both a fresh run and
    a committed notebook (sweep runs, ``name@key=value``, are skipped).
    """
    spread = load_spread(notebooks)
    results = {}
    for rec in report.collect(runs):
        name = rec.get("notebook", "")
        nb = Path(notebooks) / f"{name}.ipynb"
        if "@" in str(rec.get("run", "")) or not nb.is_file():
            continue
        results[name] = compare_headlines(committed_headline(nb), rec.get("headline", {}), rules_for(spread, name))
    return results


def format_row(row: Mapping[str, Any]) -> str:
    """One line of ``labkit drift``'s listing: the values and the rule they were held to."""
    mark = "  " if row["ok"] else "!!"
    rule = {"none": "not compared", "equal": "equal", "missing": "missing from the fresh run",
            "band": f"band {row.get('band')}"}.get(row["check"], f"tolerance {row.get('tolerance')}")
    return f"  {mark} {row['key']}: committed {row['committed']!r}, fresh {row['fresh']!r} ({rule})"


# ----------------------------------------------------------------------------- measuring the spread


def run_dir_name(isa: str, seed: int) -> str:
    """The folder of one measured run under ``runs/spread/``: ``<isa>-seed<seed>``."""
    return f"{isa}-seed{seed}"


def isa_environment(isa: str) -> dict[str, str]:
    """The environment variables that force configuration ``isa`` (see :data:`ISA_CONFIGS`).

    Raises:
        ValueError: unknown configuration (the message lists the known ones).
    """
    if isa not in ISA_CONFIGS:
        raise ValueError(f"unknown --isa {isa!r}; known: {', '.join(ISA_CONFIGS)}")
    return dict(ISA_CONFIGS[isa])


def describe_machine(env_vars: Mapping[str, str]) -> dict[str, Any]:
    """The CPU and the kernels a process started with ``env_vars`` gets (model, torch's CPU capability)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in info:
        model += f" (family {info['cpu family']}, model {info.get('model', '?')})"
    flags = set(info.get("flags", "").split())
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env={**os.environ, **env_vars}, capture_output=True, text=True, check=False)
    return {"cpu": model, "cores": os.cpu_count(),
            "isa_flags": [f for f in ("sse4_1", "avx", "avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
            "aten_capability": probe.stdout.strip() or probe.stderr.strip()[-200:], "env": dict(env_vars)}


def collect_runs(root: str | os.PathLike) -> dict[str, dict[str, dict[str, Any]]]:
    """``{notebook: {"<isa>/seed<S>": headline}}`` from ``<root>/<isa>-seed<S>/<notebook>/metrics.json``."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for run in sorted(Path(root).glob("*-seed*")):
        isa, _, seed = run.name.rpartition("-seed")
        for rec in report.collect(run):
            if "@" in str(rec.get("run", "")):
                continue
            found.setdefault(rec["notebook"], {})[f"{isa}/seed{seed}"] = rec.get("headline", {})
    return found


def build_spread(notebooks: str | os.PathLike, runs_root: str | os.PathLike,
                 previous: Mapping[str, Any] | None = None, fresh: Sequence[str] = ()) -> dict[str, Any]:
    """The spread file's content: every committed notebook's measured runs and derived rules.

    Runs come from ``runs_root`` (:func:`collect_runs`) and, for the ones not measured there, from
    ``previous`` (the file as it was: runs recorded on other machines are kept), except for the notebooks
    named in ``fresh`` (their code changed: their previous runs measured another notebook and are dropped).
    ``committed/seed42`` is the committed headline itself. Each notebook records ``native_cpu``: the CPU its
    ``native`` runs were measured on (the runs of different notebooks may come from different machines).
    """
    previous = previous or {}
    kept = {k: v for k, v in previous.items()
            if k not in ("about", "margin", "amplified", "band_widen", "seeds", "configs", "notebooks")}
    out: dict[str, Any] = {
        **kept,   # notes the file carries (e.g. "pinning": what was tried and why it was not kept)
        "about": ("How much each headline moves across instruction sets and seeds; labkit.drift derives "
                  "each key's drift rule from it. Remade by `labkit spread measure` + `labkit spread build`."),
        "margin": MARGIN, "amplified": AMPLIFIED, "band_widen": BAND_WIDEN, "seeds": list(SEEDS),
        "configs": {**previous.get("configs", {})},
        "notebooks": {},
    }
    measured = collect_runs(runs_root)
    old_native = previous.get("configs", {}).get(NATIVE, {}).get("cpu")
    for info in sorted(Path(runs_root).glob("*-seed*/machine.json")):
        out["configs"][info.parent.name.rpartition("-seed")[0]] = json.loads(info.read_text(encoding="utf-8"))
    new_native = out["configs"].get(NATIVE, {}).get("cpu")
    dropped = {str(name)[:2] for name in fresh}
    for nb in sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb")):
        committed = committed_headline(nb)
        before = {} if nb.stem[:2] in dropped else previous.get("notebooks", {}).get(nb.stem, {})
        runs = {**before.get("runs", {}), **measured.get(nb.stem, {})}
        runs[f"{COMMITTED}/seed42"] = committed
        native_measured = any(name.startswith(f"{NATIVE}/") for name in measured.get(nb.stem, {}))
        native_cpu = new_native if native_measured else before.get("native_cpu", old_native)
        out["notebooks"][nb.stem] = {"runs": dict(sorted(runs.items())), "native_cpu": native_cpu,
                                     "rules": derive_rules(committed, runs)}
    return out


def spread_summary(spread: Mapping[str, Any], notebook: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for a notebook to print: per key, its range across instruction sets and seeds and its check."""
    rules = rules_for(spread, notebook)
    rows = []
    for key in keys:
        rule = rules.get(key, {})
        rows.append({"headline": key, "across instruction sets": rule.get("isa_range"),
                     "across seeds": rule.get("seed_range"),
                     "drift check": {"band": f"band {rule.get('band')}", "value": f"± {rule.get('tolerance')}",
                                     "none": "not compared (a time)", "equal": "equal"}
                     .get(rule.get("check"), "not measured")})
    return rows


def effect_across_runs(spread: Mapping[str, Any], notebook: str, minuend: str, subtrahend: str | None = None,
                       this_run: float | None = None) -> dict[str, float]:
    """``headline[minuend] - headline[subtrahend]`` (or ``headline[minuend]`` alone) in every measured run of
    ``notebook`` that has the keys.

    What a lesson "A beats B" rests on: it holds at this scale only if the difference keeps its sign in
    every run (seeds and instruction sets). With ``this_run`` (the value a notebook just computed), the
    notebook's own committed run (``committed/seed42``, ``native/seed42``) is replaced by it, so that a
    notebook prints the same list whether or not its own run is already in the file. ``{}`` when the
    spread file has no such run and no ``this_run`` is given.
    """
    runs = spread.get("notebooks", {}).get(notebook, {}).get("runs", {})
    own = (f"{COMMITTED}/seed42", f"{NATIVE}/seed42") if this_run is not None else ()
    effects, seen = {}, []
    for name, h in runs.items():
        keys = [minuend] + ([subtrahend] if subtrahend else [])
        if name in own or not all(is_number(h.get(k)) for k in keys) or h in seen:
            continue   # the committed run is also the native seed-42 run on the machine that committed it
        seen.append(h)
        effects[name] = round(float(h[minuend]) - (float(h[subtrahend]) if subtrahend else 0.0), 6)
    if this_run is not None:
        effects["this run"] = round(float(this_run), 6)
    return effects


def effect_verdict(effects: Mapping[str, float]) -> str:
    """``"holds in every run"``, ``"no effect at this scale"`` (the sign changes between runs), or
    ``"not measured"`` (fewer than two runs: nothing to compare)."""
    if len(effects) < 2:
        return "not measured"
    values = list(effects.values())
    if all(v > 0 for v in values) or all(v < 0 for v in values):
        return "holds in every run"
    return "no effect at this scale"
