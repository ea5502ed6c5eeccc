"""Command line: ``labkit run``, ``labkit list``, ``labkit report``, ``labkit drift``, ``labkit spread``, ``labkit train``,
``labkit bench``, ``labkit eval``, ``labkit gpu-check``.

``labkit drift`` compares a run folder's headline numbers with the outputs committed in the notebooks
(:func:`labkit.drift.check_drift`) and exits 1 if any moved by more than the rule measured for it
(``notebooks/results/spread.json``). ``labkit spread measure --isa NAME --seed S`` runs every notebook
with the kernels forced to one instruction set and one seed; ``labkit spread build`` turns those runs into
the spread file.

``labkit train NN --profile smoke|full -p key=value [--out DIR]`` trains one lab from its profile
(:mod:`labkit.labs`); under ``torchrun`` it is data-parallel. ``labkit bench`` runs the
benchmark suite (``benchmarks/``).

``labkit run [NB ...] --profile smoke|full -p key=value --out DIR`` executes the course notebooks
headlessly with papermill, one after the other, each into ``DIR/<notebook>.ipynb`` with its run
folder ``DIR/<notebook>/`` (metrics.json, figures, checkpoints), then writes ``DIR/report.md``.
A failing notebook is reported (its name, the failing cell and the error) and the others still
run; the command then exits with status 1.

``labkit run 05 --sweep variant=baseline,x12,x12_dropout`` runs one notebook once per value (a
papermill run each, with ``-p variant=<value>`` on top of the other ``-p`` parameters), each into its
own ``DIR/<notebook>@variant=<value>.ipynb`` and run folder ``DIR/<notebook>@variant=<value>/``.
Several ``--sweep`` options run every combination. Each run's ``metrics.json`` gets a ``sweep`` entry
(the swept values) and ``run_seconds``; ``report.md`` then has a comparison table and plot per swept
notebook (:func:`labkit.report.sweep_tables`).
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from labkit import drift, env, report

NOTEBOOKS_DIR = env.REPO_ROOT / "notebooks"


@dataclass
class NotebookResult:
    """What happened to one notebook in ``labkit run``."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    output: str
    error: str = ""


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


def parse_parameter(text: str) -> tuple[str, Any]:
    """Parse one ``-p key=value``; the value is a Python literal if it parses as one, else a string.

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"-p expects key=value with a Python identifier as key, got {text!r}")
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
    return key, value


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
    import papermill as pm

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


def cmd_run(args: argparse.Namespace) -> int:
    available = discover_notebooks(Path(args.notebooks_dir))
    chosen = select_notebooks(args.notebook, available)
    params = dict(parse_parameter(p) for p in args.param)
    combos = parse_sweep(args.sweep)
    if combos and len(chosen) != 1:
        raise ValueError(f"--sweep runs one notebook; name exactly one (got {len(chosen)}: "
                         f"{', '.join(p.stem for p in chosen)})")
    # jobs: (notebook, run name, parameters, swept values or None)
    jobs = [(nb, nb.stem, params, None) for nb in chosen] if not combos else [
        (chosen[0], f"{chosen[0].stem}@{sweep_label(c)}", {**params, **c}, c) for c in combos]
    out_root = Path(args.out) if args.out else env.runs_dir() / args.profile
    out_root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LABKIT_PROFILE", args.profile)
    os.environ.setdefault("LABKIT_PROGRESS", "text")  # headless: no widget front end for tqdm
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the kernels' OpenMP threads: see env.PASSIVE_OPENMP
    progress = sys.stderr.isatty()

    results: list[NotebookResult] = []
    total = time.perf_counter()
    for i, (nb, name, run_params, swept) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {name} (profile {args.profile}) ...", flush=True)
        res = run_notebook(nb, out_root, args.profile, run_params, progress=progress, name=name)
        if swept is not None:
            _mark_sweep(out_root / name, swept, res.seconds)
        results.append(res)
        line = f"[{i}/{len(jobs)}] {name}: {res.status} in {res.seconds:.0f} s -> {res.output}"
        if res.error:
            line += f"\n      FAILED at {res.error}"
        print(line, flush=True)

    summary = {
        "profile": args.profile,
        "parameters": params,
        **({"sweep": [dict(c) for c in combos]} if combos else {}),
        "notebooks": [
            {"notebook": r.notebook, "status": r.status, "seconds": round(r.seconds, 1), "error": r.error}
            for r in results
        ],
    }
    # Merge with earlier runs into the same folder so `labkit run 01` then `labkit run 02` report both.
    summary_path = out_root / report.RUN_SUMMARY_FILE
    if summary_path.exists():
        try:
            old = json.loads(summary_path.read_text(encoding="utf-8"))
            fresh = {r["notebook"] for r in summary["notebooks"]}
            kept = [r for r in old.get("notebooks", []) if r.get("notebook") not in fresh]
            summary["notebooks"] = sorted(kept + summary["notebooks"], key=lambda r: r["notebook"])
        except (ValueError, OSError):
            pass
    report.write_json_atomic(summary_path, summary)
    path = report.write_report(out_root)
    failed = [r for r in results if r.status != "ok"]
    print(f"done in {time.perf_counter() - total:.0f} s: {len(results) - len(failed)} ok, {len(failed)} failed; report: {path}")
    for r in failed:
        print(f"  {r.notebook}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    for nb in discover_notebooks(Path(args.notebooks_dir)):
        print(nb.stem)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    root = Path(args.out) if args.out else env.runs_dir() / args.profile
    if not root.exists():
        print(f"no run folder {root}: run `labkit run --profile {args.profile}` first", file=sys.stderr)
        return 1
    path = report.write_report(root)
    print(path.read_text(encoding="utf-8"))
    print(f"written: {path}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    root = Path(args.out) if args.out else env.runs_dir() / args.profile
    results = drift.check_drift(root, Path(args.notebooks_dir))
    if not results:
        print(f"no run of a committed notebook under {root}: run `labkit run --profile {args.profile}` first",
              file=sys.stderr)
        return 1
    drifted = 0
    for name, rows in results.items():
        bad = [r for r in rows if not r["ok"]]
        drifted += bool(bad)
        print(f"{name}: {'DRIFT' if bad else 'ok'} ({len(rows) - len(bad)}/{len(rows)} headline values within "
              f"their measured spread)")
        for r in rows:
            print(drift.format_row(r))
    return 1 if drifted else 0


def cmd_spread_measure(args: argparse.Namespace) -> int:
    """Every chosen notebook, smoke profile, under one instruction-set configuration and one seed."""
    forced = drift.isa_environment(args.isa)
    os.environ.update(forced)   # inherited by the notebook kernels papermill starts
    out = Path(args.out or env.runs_dir() / "spread") / drift.run_dir_name(args.isa, args.seed)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json_atomic(out / "machine.json", drift.describe_machine(forced))
    run_args = argparse.Namespace(notebooks_dir=args.notebooks_dir, notebook=args.notebook, profile="smoke",
                                  param=[f"seed={args.seed}"], sweep=[], out=str(out))
    return cmd_run(run_args)


def cmd_spread_show(args: argparse.Namespace) -> int:
    nb_dir = Path(args.notebooks_dir)
    spread = drift.load_spread(nb_dir)
    if not spread:
        print(f"no {nb_dir / drift.SPREAD_FILE}: measure with `labkit spread measure`, then `labkit spread build`",
              file=sys.stderr)
        return 1
    for nb in select_notebooks(args.notebook, discover_notebooks(nb_dir)):
        rules = drift.rules_for(spread, nb.stem)
        runs = spread["notebooks"].get(nb.stem, {}).get("runs", {})
        print(f"## {nb.stem} ({len(runs)} runs: {', '.join(runs)})\n")
        print(report.markdown_table(drift.spread_summary(spread, nb.stem, list(rules))) + "\n")
    return 0


def cmd_spread_build(args: argparse.Namespace) -> int:
    nb_dir = Path(args.notebooks_dir)
    path = nb_dir / drift.SPREAD_FILE
    spread = drift.build_spread(nb_dir, Path(args.runs or env.runs_dir() / "spread"), drift.load_spread(nb_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    report.write_json_atomic(path, spread)
    for name, entry in spread["notebooks"].items():
        checks = [r["check"] for r in entry["rules"].values()]
        print(f"{name}: {len(entry['runs'])} runs; " + ", ".join(f"{checks.count(c)} {c}" for c in sorted(set(checks))))
    print(f"written: {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from labkit import labs   # torch and the models: imported only to train

    return labs.train_from_args(args)


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from benchmarks.suite import main as bench_main
    except ImportError as exc:
        raise FileNotFoundError(f"labkit bench needs the repository's benchmarks/ folder on the path "
                                f"(run it from the checkout): {exc}") from exc
    return bench_main((["--out", args.out] if args.out else []) + (["--quick"] if args.quick else []))


def cmd_eval(args: argparse.Namespace) -> int:
    """``labkit eval``: score an SR model on a benchmark folder (:func:`labkit.evaluate.evaluate_sr`)."""
    from labkit.evaluate import evaluate_sr, format_table

    try:
        result = evaluate_sr(args.model, args.data, scale=args.scale, weights=args.weights, tile=args.tile,
                             self_ensemble=args.self_ensemble, device=args.device, progress=sys.stderr.isatty())
    except KeyError as exc:  # unknown model name: a usage error like the others
        raise ValueError(exc.args[0]) from None
    print(format_table(result))
    if args.json:
        print(f"written: {report.write_json_atomic(Path(args.json), result)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description="Run and report the restoration-lab notebooks.")
    parser.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help="folder of NN_slug.ipynb notebooks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks headlessly with papermill, then write report.md")
    run.add_argument("notebook", nargs="*", help="notebooks by number (01) or name; default: all")
    run.add_argument("--profile", choices=env.PROFILES, default="smoke", help="smoke (CPU, minutes) or full (GPU)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameters-cell value (Python literal or string); repeatable")
    run.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                     help="run the (one) notebook once per value of a parameter, each into <out>/<notebook>@KEY=V/; "
                          "repeatable (every combination); report.md compares the runs")
    run.add_argument("--out", help="output folder (default runs/<profile>/)")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="list the notebooks")
    lst.set_defaults(func=cmd_list)

    rep = sub.add_parser("report", help="collect runs/<profile>/*/metrics.json into report.md")
    rep.add_argument("--profile", choices=env.PROFILES, default="smoke")
    rep.add_argument("--out", help="run folder (default runs/<profile>/)")
    rep.set_defaults(func=cmd_report)

    dft = sub.add_parser("drift", help="compare runs/<profile>/*/metrics.json headlines with the committed notebooks' outputs")
    dft.add_argument("--profile", choices=env.PROFILES, default="smoke")
    dft.add_argument("--out", help="run folder (default runs/<profile>/)")
    dft.set_defaults(func=cmd_drift)
    spr = sub.add_parser("spread", help="measure how much the headlines move across instruction sets and seeds")
    spr_sub = spr.add_subparsers(dest="spread_command", required=True)
    sm = spr_sub.add_parser("measure", help="run the notebooks (smoke) with the kernels forced to one instruction set")
    sm.add_argument("notebook", nargs="*", help="notebooks by number (01) or name; default: all")
    sm.add_argument("--isa", default=drift.NATIVE, help=f"one of {', '.join(drift.ISA_CONFIGS)} (default native)")
    sm.add_argument("--seed", type=int, default=42)
    sm.add_argument("--out", help="folder of the measured runs (default runs/spread/)")
    sm.set_defaults(func=cmd_spread_measure)
    sb = spr_sub.add_parser("build", help="write notebooks/results/spread.json from the measured runs")
    sb.add_argument("--runs", help="folder of the measured runs (default runs/spread/)")
    sb.set_defaults(func=cmd_spread_build)
    ss = spr_sub.add_parser("show", help="print each headline's range across instruction sets and seeds, and its check")
    ss.add_argument("notebook", nargs="*", help="notebooks by number (01) or name; default: all")
    ss.set_defaults(func=cmd_spread_show)
    from labkit import labs   # the arguments python -m labkit.labs takes too
    tr = sub.add_parser("train", help="train one lab from its profile (the script torchrun launches)")
    labs.add_train_arguments(tr)
    tr.set_defaults(func=cmd_train)

    be = sub.add_parser("bench", help="the benchmark suite: one JSON and one Markdown table of ratios")
    be.add_argument("--out", help="output folder (default runs/bench/)")
    be.add_argument("--quick", action="store_true", help="the smallest sizes and one repeat (seconds)")
    be.set_defaults(func=cmd_bench)
    ev = sub.add_parser("eval", help="score an SR model on a benchmark folder (PSNR/SSIM on Y, crop = scale)")
    ev.add_argument("--model", required=True, help="'bicubic', a configuration (rrdbnet_x4, swinir_classical_x4, "
                                                   "edsr_large_x4...) or an architecture (rrdbnet, edsr...)")
    ev.add_argument("--weights", help="checkpoint: a path, URL or named weights (e.g. rrdb_psnr_x4)")
    ev.add_argument("--data", required=True, help="a set's folder: Set5/ with HR/ (+ LR_bicubic/X4/), or HR images")
    ev.add_argument("--scale", type=int, default=4, help="SR factor, also the border cropped (default 4)")
    ev.add_argument("--tile", type=int, default=None,
                    help="LR tile side for tiled inference; default: 128 for LR images above 256x256 px; 0: never")
    ev.add_argument("--self-ensemble", action="store_true", help="x8 geometric self-ensemble (EDSR+, SwinIR+)")
    ev.add_argument("--device", default=None, help="cpu, cuda, mps (default: auto)")
    ev.add_argument("--json", help="also write the per-image results to this JSON file")
    ev.set_defaults(func=cmd_eval)

    gc = sub.add_parser("gpu-check", help="every lab's full profile for a few hundred steps on CUDA: steps/s, "
                                          "peak memory, first losses into one JSON (skips without CUDA)")
    from labkit import gpucheck
    gpucheck.add_arguments(gc)
    gc.set_defaults(func=gpucheck.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labkit`` console script and ``python -m labkit``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
        return 2  # unreachable: parser.error exits


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
