"""The notebook runner behind ``labkit run`` (and ``labkit spread measure``, ``labkit gpu-check``).

Finds the course notebooks (``NN_slug.ipynb``), resolves names such as ``01`` or ``02_sr_trials``,
parses ``-p key=value`` parameters and ``--sweep KEY=V1,V2`` options, and executes each notebook
headlessly with papermill into ``<out>/<notebook>.ipynb`` with its run folder ``<out>/<notebook>/``
(:func:`run_notebook`). :func:`run_and_report` is the whole ``labkit run``: every notebook one after
the other (a failing one is reported with its failing cell and the others still run), then
``run_summary.json`` (merged with earlier runs into the same folder) and ``report.md``.

A sweep runs one notebook once per combination of values, each into
``<out>/<notebook>@KEY=V/``; its ``metrics.json`` gets a ``sweep`` entry and ``run_seconds``
(:func:`labkit.report.sweep_tables` compares them).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from labkit import env, report
from labkit.parameters import check_run_parameters
from labkit.profiles import parse_parameter

NOTEBOOKS_DIR = env.REPO_ROOT / "notebooks"


@dataclass
class NotebookResult:
    """What happened to one notebook run."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    output: str
    error: str = ""


@dataclass
class NotebookJob:
    """One planned notebook run: the notebook, its run name, its parameters and the swept values (or None)."""

    notebook: Path
    name: str
    params: dict[str, Any]
    sweep: dict[str, Any] | None = None


def discover_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course notebooks ``NN_slug.ipynb`` in ``folder``, in order.

    Raises:
        FileNotFoundError: the folder does not exist or holds no numbered notebook.
    """
    paths = sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (NN_slug.ipynb) found in {folder}")
    return paths


def select_notebooks(names: Sequence[str], available: Sequence[Path]) -> list[Path]:
    """Resolve names such as ``01``, ``1``, ``02_sr_trials`` or a file name to notebook paths.

    Raises:
        ValueError: a name matches no notebook, or more than one (the message lists the choices).
    """
    if not names:
        return list(available)
    chosen: list[Path] = []
    for name in names:
        key = Path(name).name.removesuffix(".ipynb")
        if key.isdigit():
            key = f"{int(key):02d}_"
        matches = [p for p in available if p.stem == key or p.stem.startswith(key)]
        if len(matches) != 1:
            listing = ", ".join(p.stem for p in available)
            what = "matches no notebook" if not matches else "is ambiguous"
            raise ValueError(f"notebook {name!r} {what}; choose from: {listing}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def parse_sweep(texts: Sequence[str]) -> list[dict[str, Any]]:
    """Parse ``--sweep KEY=V1,V2,...`` options into the list of parameter combinations.

    Each value is parsed like ``-p`` (:func:`parse_parameter`); several options give their product,
    in order. ``[]`` -> ``[]`` (no sweep).

    Raises:
        ValueError: no ``=``, a bad key, an empty value list, or a key swept twice.
    """
    axes: list[tuple[str, list[Any]]] = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--sweep expects KEY=V1,V2,... with a Python identifier as key, got {text!r}")
        values = [parse_parameter(f"{key}={v}")[1] for v in raw.split(",") if v.strip()]
        if not values:
            raise ValueError(f"--sweep {key}: no values given in {text!r}")
        if key in dict(axes):
            raise ValueError(f"--sweep {key} given twice")
        axes.append((key, values))
    if not axes:
        return []
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def sweep_label(values: dict[str, Any]) -> str:
    """The folder suffix of one sweep run: ``{'variant': 'x12'} -> 'variant=x12'`` (file-name safe)."""
    parts = []
    for k, v in values.items():
        text = "".join(c if c.isalnum() or c in "._-" else "-" for c in str(v))
        parts.append(f"{k}={text}")
    return ",".join(parts)


def plan_jobs(chosen: Sequence[Path], params: Mapping[Path, dict[str, Any]],
              combos: Sequence[dict[str, Any]]) -> list[NotebookJob]:
    """One job per notebook, or, with sweep combinations, one job per combination of the (one) notebook.

    ``params``: each notebook's parameters, keyed by its path (what
    :func:`labkit.parameters.check_run_parameters` returns); a notebook not in it gets none.

    Raises:
        ValueError: a sweep with other than exactly one notebook.
    """
    if not combos:
        return [NotebookJob(nb, nb.stem, dict(params.get(nb, {}))) for nb in chosen]
    if len(chosen) != 1:
        raise ValueError(f"--sweep runs one notebook; name exactly one (got {len(chosen)}: "
                         f"{', '.join(p.stem for p in chosen)})")
    nb = chosen[0]
    return [NotebookJob(nb, f"{nb.stem}@{sweep_label(c)}", {**params.get(nb, {}), **c}, c) for c in combos]


def _failure_message(exc: BaseException) -> str:
    """Name the failing cell for papermill errors; fall back to the exception text."""
    cell = getattr(exc, "cell_index", None)
    count = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell {cell}" if cell is not None else "setup"
    if count is not None:
        where += f" (In [{count}])"
    return f"{where}: {ename}: {evalue}".strip()


def _mark_sweep(out_dir: Path, values: dict[str, Any], seconds: float) -> None:
    """Add the swept values and the run time to a sweep run's metrics.json (if it wrote one)."""
    path = out_dir / report.METRICS_FILE
    if not path.exists():
        return
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return
    record["sweep"] = dict(values)
    record["run_seconds"] = round(seconds, 1)
    report.write_json_atomic(path, record)


def run_notebook(nb: Path, out_root: Path, profile: str, params: dict[str, Any], *, progress: bool,
                 name: str | None = None) -> NotebookResult:
    """Execute one notebook with papermill into ``out_root``; never raises for notebook errors.

    ``name`` (default the notebook's stem) names the executed copy ``<name>.ipynb`` and the run
    folder ``<name>/``.
    """
    import papermill as pm  # papermill (nbformat, jsonschema) takes seconds to import: only for notebook runs

    name = name or nb.stem
    out_dir = out_root / name
    out_nb = out_root / f"{name}.ipynb"
    parameters = {"profile": profile, "out_dir": str(out_dir.resolve()), **params}
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(out_nb),
            parameters=parameters,
            cwd=str(nb.parent),
            progress_bar=progress,
            log_output=False,
            kernel_name="python3",
        )
    except Exception as exc:  # papermill wraps every cell error; report it, run the rest
        return NotebookResult(name, "failed", time.perf_counter() - start, str(out_nb), _failure_message(exc))
    return NotebookResult(name, "ok", time.perf_counter() - start, str(out_nb))


def headless_environment(profile: str) -> None:
    """Set (unless already set) the variables the notebook kernels inherit in a headless run."""
    os.environ.setdefault("LABKIT_PROFILE", profile)
    os.environ.setdefault("LABKIT_PROGRESS", "text")  # headless: no widget front end for tqdm
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the kernels' OpenMP threads: see env.PASSIVE_OPENMP


def run_jobs(jobs: Sequence[NotebookJob], out_root: Path, profile: str) -> list[NotebookResult]:
    """Run the jobs one after the other, printing one line before and after each; the results in order."""
    progress = sys.stderr.isatty()
    results: list[NotebookResult] = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.name} (profile {profile}) ...", flush=True)
        res = run_notebook(job.notebook, out_root, profile, job.params, progress=progress, name=job.name)
        if job.sweep is not None:
            _mark_sweep(out_root / job.name, job.sweep, res.seconds)
        results.append(res)
        line = f"[{i}/{len(jobs)}] {job.name}: {res.status} in {res.seconds:.0f} s -> {res.output}"
        if res.error:
            line += f"\n      FAILED at {res.error}"
        print(line, flush=True)
    return results


def write_run_summary(out_root: Path, profile: str, params: dict[str, Any], combos: Sequence[dict[str, Any]],
                      results: Sequence[NotebookResult]) -> Path:
    """Write ``run_summary.json``, merged with earlier runs into the same folder (so that
    ``labkit run 01`` then ``labkit run 02`` report both); returns its path."""
    summary = {
        "profile": profile,
        "parameters": params,
        **({"sweep": [dict(c) for c in combos]} if combos else {}),
        "notebooks": [
            {"notebook": r.notebook, "status": r.status, "seconds": round(r.seconds, 1), "error": r.error}
            for r in results
        ],
    }
    summary_path = out_root / report.RUN_SUMMARY_FILE
    if summary_path.exists():
        try:
            old = json.loads(summary_path.read_text(encoding="utf-8"))
            fresh = {r["notebook"] for r in summary["notebooks"]}
            kept = [r for r in old.get("notebooks", []) if r.get("notebook") not in fresh]
            summary["notebooks"] = sorted(kept + summary["notebooks"], key=lambda r: r["notebook"])
        except (ValueError, OSError):
            pass
    return report.write_json_atomic(summary_path, summary)


def run_and_report(notebooks_dir: Path, names: Sequence[str], *, profile: str, params: Sequence[str] = (),
                   sweep: Sequence[str] = (), out: str | os.PathLike | None = None) -> list[NotebookResult]:
    """``labkit run``: run the named notebooks (default all) of ``notebooks_dir`` into ``out`` (default
    ``runs/<profile>/``), then write ``run_summary.json`` and ``report.md``; print a summary line and
    each failure (on stderr). ``params`` / ``sweep`` are the ``-p`` / ``--sweep`` texts.

    Returns:
        The results, in run order (a failed notebook does not raise).

    Raises:
        ValueError / FileNotFoundError: a bad notebook name, parameter or sweep, or no notebook folder, all
            found before any kernel starts (:func:`labkit.parameters.check_run_parameters`: an unknown ``-p``
            key, a value of the wrong type or range).
    """
    chosen = select_notebooks(names, discover_notebooks(Path(notebooks_dir)))
    parameters = dict(parse_parameter(p) for p in params)
    combos = parse_sweep(sweep)
    jobs = plan_jobs(chosen, check_run_parameters(chosen, parameters, combos), combos)
    out_root = Path(out) if out else env.runs_dir() / profile
    out_root.mkdir(parents=True, exist_ok=True)
    headless_environment(profile)

    start = time.perf_counter()
    results = run_jobs(jobs, out_root, profile)
    write_run_summary(out_root, profile, parameters, combos, results)
    path = report.write_report(out_root)
    failed = [r for r in results if r.status != "ok"]
    print(f"done in {time.perf_counter() - start:.0f} s: {len(results) - len(failed)} ok, {len(failed)} failed; "
          f"report: {path}")
    for r in failed:
        print(f"  {r.notebook}: {r.error}", file=sys.stderr)
    return results
