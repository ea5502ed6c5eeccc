"""Command line: ``labkit run``, ``labkit list``, ``labkit report``, ``labkit drift``, ``labkit spread``, ``labkit train``,
``labkit course``, ``labkit bench``, ``labkit eval``, ``labkit gpu-check``, ``labkit data``.

``labkit data list | get NAME [--root DIR] [--mirror URL] | check NAME DIR`` lists, fetches (resumed, sha256-checked,
safely extracted) and checks the datasets of data/README.md and the official checkpoints (:mod:`labkit.catalog`,
:mod:`labkit.fetch`).

``labkit drift`` compares a run folder's headline numbers with the outputs committed in the notebooks
(:func:`labkit.drift.check_drift`) and exits 1 if any moved by more than the rule measured for it
(``notebooks/results/spread.json``). ``labkit spread measure --isa NAME --seed S`` runs every notebook
with the kernels forced to one instruction set and one seed; ``labkit spread build`` turns those runs into
the spread file.

``labkit train NN --profile smoke|full -p key=value [--out DIR]`` trains one lab from its profile
(:mod:`labkit.labs`); under ``torchrun`` it is data-parallel. ``labkit bench`` runs the
benchmark suite (``python -m benchmarks`` in the checkout root, a subprocess: labkit never imports
``benchmarks/``).

Every expected failure (:data:`labkit.errors.EXPECTED`: a bad ``-p`` key or value, weights file,
checkpoint or data layout, permission denied, disk full) ends in :func:`main` as one line
``labkit <command>: error: <what, which file or parameter, what to do>`` and exit status 2 (bad input)
or 1, without a traceback (``--debug`` or ``LABKIT_DEBUG=1`` prints it); Ctrl-C ends with 130.

This module is the argument parser and one small ``cmd_*`` function per command; the work is in
the modules they call (:mod:`labkit.runner`, :mod:`labkit.report`, :mod:`labkit.drift`,
:mod:`labkit.evaluate`, :mod:`labkit.gpucheck`).

``labkit run [NB ...] --profile smoke|full -p key=value --out DIR`` (:mod:`labkit.runner`) executes the course notebooks
headlessly with papermill, one after the other, each into ``DIR/<notebook>.ipynb`` with its run
folder ``DIR/<notebook>/`` (metrics.json, figures, checkpoints), then writes ``DIR/report.md``. Each
runs into ``DIR/<notebook>.partial.ipynb`` and ``.partial/`` first and replaces the previous result only
when it finished (:mod:`labkit.runfolder`); every ``-p`` is checked before a kernel starts
(:mod:`labkit.parameters`).
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
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Sequence

from labkit import drift, env, errors, gpucheck, report, runner

BENCHMARKS_DIR = env.REPO_ROOT / "benchmarks"

def cmd_run(args: argparse.Namespace) -> int:
    """``labkit run``: :func:`labkit.runner.run_and_report`; exit status 1 if any notebook failed."""
    results = runner.run_and_report(Path(args.notebooks_dir), args.notebook, profile=args.profile,
                                    params=args.param, sweep=args.sweep, out=args.out)
    return 1 if any(r.status != "ok" for r in results) else 0


def cmd_list(args: argparse.Namespace) -> int:
    for nb in runner.discover_notebooks(Path(args.notebooks_dir)):
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
    results = runner.run_and_report(Path(args.notebooks_dir), args.notebook, profile="smoke",
                                    params=[f"seed={args.seed}"], out=out)
    return 1 if any(r.status != "ok" for r in results) else 0


def cmd_spread_show(args: argparse.Namespace) -> int:
    nb_dir = Path(args.notebooks_dir)
    spread = drift.load_spread(nb_dir)
    if not spread:
        print(f"no {nb_dir / drift.SPREAD_FILE}: measure with `labkit spread measure`, then `labkit spread build`",
              file=sys.stderr)
        return 1
    for nb in runner.select_notebooks(args.notebook, runner.discover_notebooks(nb_dir)):
        rules = drift.rules_for(spread, nb.stem)
        runs = spread["notebooks"].get(nb.stem, {}).get("runs", {})
        print(f"## {nb.stem} ({len(runs)} runs: {', '.join(runs)})\n")
        print(report.markdown_table(drift.spread_summary(spread, nb.stem, list(rules))) + "\n")
    return 0


def cmd_spread_build(args: argparse.Namespace) -> int:
    nb_dir = Path(args.notebooks_dir)
    path = nb_dir / drift.SPREAD_FILE
    spread = drift.build_spread(nb_dir, Path(args.runs or env.runs_dir() / "spread"), drift.load_spread(nb_dir),
                                fresh=args.fresh)
    path.parent.mkdir(parents=True, exist_ok=True)
    report.write_json_atomic(path, spread)
    for name, entry in spread["notebooks"].items():
        checks = [r["check"] for r in entry["rules"].values()]
        print(f"{name}: {len(entry['runs'])} runs; " + ", ".join(f"{checks.count(c)} {c}" for c in sorted(set(checks))))
    print(f"written: {path}")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from labkit import docs
    root = Path(args.notebooks_dir).resolve().parent
    stale = docs.update(root, check=args.check)
    if args.check:
        print(f"{len(stale)} generated file(s) out of date" + (f": {', '.join(stale)} (run `labkit docs`)" if stale else ""))
        return 1 if stale else 0
    print(f"wrote {', '.join(stale)}" if stale else "README.md course table and docs/references.md are up to date")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from labkit import labs   # torch and the models: imported only to train

    return labs.train_from_args(args)


def cmd_course(args: argparse.Namespace) -> int:
    """``labkit course list | build NAME... | build --all``: the course checkpoints (:mod:`labkit.course`)."""
    from labkit import course

    if args.action == "build":
        names = sorted(course.specs()) if args.all else args.names
        if not names:
            raise ValueError("labkit course build: name a course checkpoint (see `labkit course list`) or pass --all")
        for name in names:
            entry = course.build(name, work_dir=args.work_dir)
            print(f"wrote {course.path(name)} ({entry['bytes']} bytes, sha256 {entry['sha256'][:16]}..., "
                  f"{entry['seconds']:.0f} s) and its manifest entry")
        return 0
    rows = course.listing()
    for row in rows:
        size = f"{row['bytes'] / 1e6:.2f} MB" if row["bytes"] else "-"
        print(f"{row['name']:<22} lab {row['lab']}  {size:>8}  seed {row['seed']:<3} {row['status']}\n"
              f"{'':<22} {row['description']}\n{'':<22} remake: {row['command']}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def cmd_bench(args: argparse.Namespace) -> int:
    """``labkit bench``: ``python -m benchmarks`` in the checkout root, as a subprocess.

    The suite lives beside the package (``benchmarks/``), never inside it: labkit does not import it.
    A console script does not put the working folder on ``sys.path``, hence the subprocess with
    ``cwd`` = the checkout root.
    """
    if not (BENCHMARKS_DIR / "suite.py").is_file():
        raise FileNotFoundError(f"labkit bench runs the benchmark suite of a repository checkout, and there is no "
                                f"{BENCHMARKS_DIR} (labkit installed without its checkout?): clone the repository "
                                f"and run `pip install -e .` there")
    argv = [sys.executable, "-m", "benchmarks"]
    out = Path(args.out) if args.out else env.runs_dir() / "bench"   # resolved here: the suite runs in REPO_ROOT
    argv += ["--out", str(out.resolve())] + (["--quick"] if args.quick else [])
    argv += (["--threads", str(args.threads)] if args.threads else [])
    argv += [f"--section={s}" for s in args.section or []]
    return subprocess.run(argv, cwd=env.REPO_ROOT).returncode


def cmd_eval(args: argparse.Namespace) -> int:
    """``labkit eval``: score an SR model on a benchmark folder (:func:`labkit.evaluate.evaluate_sr`)."""
    from labkit.evaluate import evaluate_sr, format_table  # models, scipy: loaded only by `labkit eval`

    result = evaluate_sr(args.model, args.data, scale=args.scale, weights=args.weights, tile=args.tile,
                         self_ensemble=args.self_ensemble, device=args.device, progress=sys.stderr.isatty())
    print(format_table(result))
    if args.json:
        print(f"written: {report.write_json_atomic(Path(args.json), result)}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``labkit data list | get | check`` (:mod:`labkit.catalog`)."""
    from labkit import catalog

    if args.data_command == "list":
        print(catalog.format_listing())
        return 0
    if args.data_command == "get":
        catalog.get(args.name, args.root, mirror=args.mirror, progress=not args.no_progress,
                    delete_archives=args.delete_archives)
        return 0
    print(f"{args.name}: layout check of {args.dir}")
    for line in catalog.check(args.name, args.dir):
        print(f"  {line}")
    return 0


def add_data_arguments(sub: argparse._SubParsersAction) -> None:
    """The ``labkit data`` subcommand and its ``list`` / ``get`` / ``check`` actions."""
    da = sub.add_parser("data", help="list, download (resumed, sha256-checked) and check the datasets of data/README.md")
    da_sub = da.add_subparsers(dest="data_command", required=True)
    da_sub.add_parser("list", help="every dataset and checkpoint: size, terms, source, access, checksum")
    dg = da_sub.add_parser("get", help="download, verify, extract and check one entry (or print its manual steps)")
    dg.add_argument("name", help="an entry of `labkit data list`")
    dg.add_argument("--root", help="folder to download and extract into (default: $LABKIT_DATA or data/; "
                                   "weights: torch's hub cache)")
    dg.add_argument("--mirror", help="base URL serving the same file names (default: $LABKIT_MIRROR)")
    dg.add_argument("--no-progress", action="store_true", help="no progress bar")
    dg.add_argument("--delete-archives", action="store_true", help="remove each archive once extracted")
    dk = da_sub.add_parser("check", help="run the loader's layout check on a folder and print what it found")
    dk.add_argument("name", help="an entry of `labkit data list`")
    dk.add_argument("dir", help="the dataset folder (the data_root a notebook takes)")
    da.set_defaults(func=cmd_data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description="Run and report the restoration-lab notebooks.")
    parser.add_argument("--notebooks-dir", default=None,
                        help="folder of NN_slug.ipynb notebooks (default: the checkout's notebooks/; labkit installed "
                             "as a package: ./notebooks)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (also: LABKIT_DEBUG=1)")
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
    sb.add_argument("--fresh", nargs="*", default=[], metavar="NB",
                    help="notebooks (01, 02_...) whose code changed: drop their previous runs, keep only the ones "
                         "measured in --runs")
    sb.set_defaults(func=cmd_spread_build)
    ss = spr_sub.add_parser("show", help="print each headline's range across instruction sets and seeds, and its check")
    ss.add_argument("notebook", nargs="*", help="notebooks by number (01) or name; default: all")
    ss.set_defaults(func=cmd_spread_show)
    dc = sub.add_parser("docs", help="regenerate README.md's course table and docs/references.md from the committed "
                                     "notebooks, spread file and labkit.references")
    dc.add_argument("--check", action="store_true", help="change nothing; exit 1 if a generated file is out of date")
    dc.set_defaults(func=cmd_docs)
    from labkit import labs   # the arguments python -m labkit.labs takes too
    tr = sub.add_parser("train", help="train one lab from its profile (the script torchrun launches)")
    labs.add_train_arguments(tr)
    tr.set_defaults(func=cmd_train)

    co = sub.add_parser("course", help="the course checkpoints: small pretrainings shipped in git (list, build)")
    co.add_argument("action", choices=["list", "build"])
    co.add_argument("names", nargs="*", help="course checkpoints to build (see `labkit course list`)")
    co.add_argument("--all", action="store_true", help="build every course checkpoint")
    co.add_argument("--work-dir", help="training folder (default: a temporary one; an existing run there resumes)")
    co.set_defaults(func=cmd_course)

    be = sub.add_parser("bench", help="the benchmark suite: one JSON and one Markdown table of ratios")
    be.add_argument("--out", help="output folder (default runs/bench/)")
    be.add_argument("--quick", action="store_true", help="the smallest sizes and one repeat (seconds)")
    be.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    be.add_argument("--section", action="append", choices=["trainer", "cpu", "inference", "data", "gpu"],
                    help="run only these sections (repeatable)")
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
    gpucheck.add_gpu_check_arguments(gc)
    gc.set_defaults(func=gpucheck.run_gpu_check)
    add_data_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labkit`` console script and ``python -m labkit``.

    Every expected failure (:data:`labkit.errors.EXPECTED`: a bad parameter, file, checkpoint or weights
    file, permission denied, disk full...) ends with one message on stderr, ``labkit <command>: error: ...``,
    and exit status 2 (bad input) or 1, without a traceback; ``--debug`` or ``LABKIT_DEBUG=1`` prints it.
    Ctrl-C ends with status 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.notebooks_dir is None:
        args.notebooks_dir = str(env.notebooks_dir())
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"labkit {args.command}: interrupted (rerun the same command to go on: training resumes from its "
              f"last checkpoint)", file=sys.stderr)
        raise SystemExit(130) from None
    except errors.EXPECTED as exc:
        if args.debug or os.environ.get("LABKIT_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        print(f"labkit {args.command}: error: {errors.describe(exc)}", file=sys.stderr)
        raise SystemExit(errors.exit_status(exc)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
