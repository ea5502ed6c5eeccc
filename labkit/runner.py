"""The notebook runner behind ``labkit run`` (and ``labkit spread measure``, ``labkit gpu-check``).

Finds the course notebooks (``NN_slug.ipynb``), resolves names such as ``01`` or ``02_sr_trials``,
parses ``-p key=value`` parameters and ``--sweep KEY=V1,V2`` options, and executes each notebook
headlessly with papermill into ``<out>/<notebook>.partial.ipynb`` with the run folder
``<out>/<notebook>.partial/``; only a run that finished replaces the result ``<out>/<notebook>.ipynb`` and
``<out>/<notebook>/`` (:mod:`labkit.runfolder`; :func:`run_notebook`). :func:`run_and_report` is the whole
``labkit run``: every notebook one after the other (a failing one is reported with its failing cell and
the others still run), then ``run_summary.json`` (merged with earlier runs into the same folder) and
``report.md``. Each attempt is entered in ``run_summary.json`` as ``running`` (with this process's pid)
before it starts and with its outcome after (ok / failed / interrupted, times, settings, ``last_ok``).
SIGINT, SIGTERM and SIGHUP stop the run cleanly: the attempt is recorded as interrupted, report.md is
written and the process exits with 128 + the signal number (130 / 143 / 129).

A sweep runs one notebook once per combination of values, each into
``<out>/<notebook>@KEY=V/``; its ``metrics.json`` gets a ``sweep`` entry and ``run_seconds``
(:func:`labkit.report.sweep_tables` compares them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from labkit import env, report, runfolder
from labkit.files import remove_stale_temp
from labkit.parameters import check_run_parameters
from labkit.profiles import parse_parameter

#: how to get the notebooks when there are none, for the error messages
GET_NOTEBOOKS = ("clone the repository (git clone {url}) and run labkit inside it, or pass --notebooks-dir "
                 "with the folder holding the NN_*.ipynb notebooks")


@dataclass
class NotebookResult:
    """What happened to one notebook attempt.

    ``status`` is ``ok``, ``failed`` (``error`` names the failing cell, ``cell`` its index) or ``interrupted``
    (``error`` names the signal); ``output`` is the executed notebook (the partial one unless ok);
    ``started`` / ``finished`` are ISO times; ``profile`` / ``parameters`` are the attempt's settings.
    """

    notebook: str
    status: str
    seconds: float
    output: str
    error: str = ""
    cell: int | None = None
    started: str = ""
    finished: str = ""
    profile: str = ""
    parameters: dict[str, Any] | None = None


class RunInterrupted(KeyboardInterrupt):
    """A notebook run stopped by a signal (SIGINT, SIGTERM, SIGHUP); ``result`` is the interrupted attempt."""

    def __init__(self, signum: int, result: NotebookResult | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.result = result


@dataclass
class NotebookJob:
    """One planned notebook run: the notebook, its run name, its parameters and the swept values (or None)."""

    notebook: Path
    name: str
    params: dict[str, Any]
    sweep: dict[str, Any] | None = None


def discover_notebooks(folder: Path | None = None) -> list[Path]:
    """The course notebooks ``NN_slug.ipynb`` in ``folder`` (default :func:`labkit.env.notebooks_dir`), in order.

    Raises:
        FileNotFoundError: the folder does not exist or holds no numbered notebook (the message says how
            to get them).
    """
    folder = env.notebooks_dir() if folder is None else Path(folder)
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (NN_slug.ipynb) found in {folder}: "
                                + GET_NOTEBOOKS.format(url=_repository_url()))
    return paths


def _repository_url() -> str:
    from importlib.metadata import PackageNotFoundError, metadata
    try:
        for entry in metadata("labkit").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() in ("repository", "homepage", "source"):
                return url.strip()
    except PackageNotFoundError:
        pass
    return "<the repository>"


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


def now_iso() -> str:
    """The local time as ISO text to the second, e.g. ``2026-12-02T13:50:07``."""
    return dt.datetime.now().isoformat(timespec="seconds")


#: The notebook kernel's own output (its log lines, fd-level writes), kept in the run folder instead of the terminal.
KERNEL_LOG = "kernel.log"


def kernel_manager_logging_to(log: Any) -> type:
    """jupyter_client's ``AsyncKernelManager`` with the kernel process's stdout and stderr sent to ``log`` (a file).

    A kernel stopped mid-cell (``labkit run`` interrupted) logs a traceback of its own; this keeps it,
    and the kernel's start-up warnings, out of the terminal (papermill passes ``kernel_manager_class``
    on to nbclient; ``_async_launch_kernel`` is the documented hook for launching differently).
    """
    from jupyter_client import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def execute_attempt(nb: Path, paths: runfolder.RunPaths, profile: str, params: dict[str, Any], *,
                    progress: bool, sweep: dict[str, Any] | None = None) -> NotebookResult:
    """Execute ``nb`` with papermill into the partial notebook and folder of ``paths``; nothing is promoted.

    The partial folder is reused or emptied (:func:`labkit.runfolder.prepare_partial`) and passed as
    the ``out_dir`` parameter; the kernel process's own output goes to :data:`KERNEL_LOG` there. A sweep run's metrics.json gets its ``sweep`` entry and ``run_seconds``.

    Returns:
        The attempt, ``ok`` or ``failed`` (with the failing cell): notebook errors never raise.

    Raises:
        RunInterrupted: a signal or Ctrl-C stopped it (``result`` holds the ``interrupted`` attempt).
        OSError: the partial folder cannot be made.
    """
    import papermill as pm  # papermill (nbformat, jsonschema) takes seconds to import: only for notebook runs

    started, start = now_iso(), time.perf_counter()
    runfolder.prepare_partial(paths, profile, params)
    parameters = {"profile": profile, "out_dir": str(paths.partial_folder.resolve()), **params}
    common = dict(notebook=paths.name, started=started, profile=profile, parameters=dict(params))
    try:
        with open(paths.partial_folder / KERNEL_LOG, "ab") as log:
            pm.execute_notebook(str(nb), str(paths.partial_notebook), parameters=parameters, cwd=str(nb.parent),
                                progress_bar=progress, log_output=False, kernel_name="python3",
                                kernel_manager_class=kernel_manager_logging_to(log))
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        result = NotebookResult(status="interrupted", seconds=time.perf_counter() - start, finished=now_iso(),
                                output=str(paths.partial_notebook), error=signal.Signals(signum).name, **common)
        raise RunInterrupted(signum, result) from None
    except Exception as exc:  # papermill wraps every cell error; report it, run the rest
        return NotebookResult(status="failed", seconds=time.perf_counter() - start, finished=now_iso(),
                              output=str(paths.partial_notebook), error=_failure_message(exc),
                              cell=getattr(exc, "cell_index", None), **common)
    seconds = time.perf_counter() - start
    if sweep is not None:
        _mark_sweep(paths.partial_folder, sweep, seconds)
    return NotebookResult(status="ok", seconds=seconds, finished=now_iso(), output=str(paths.notebook), **common)


def run_notebook(nb: Path, out_root: Path, profile: str, params: dict[str, Any], *, progress: bool,
                 name: str | None = None) -> NotebookResult:
    """Execute one notebook into ``out_root`` (:func:`execute_attempt`), and promote it if it finished.

    ``name`` (default the notebook's stem) names the result ``<name>.ipynb`` / ``<name>/``; the attempt
    runs in ``<name>.partial.ipynb`` / ``<name>.partial/`` and replaces the result only when ok
    (:func:`labkit.runfolder.promote`); a failed one stays beside it. Never raises for notebook errors.

    Raises:
        RunInterrupted: see :func:`execute_attempt`.
    """
    paths = runfolder.run_paths(out_root, name or nb.stem)
    runfolder.finish_swap(paths)
    result = execute_attempt(nb, paths, profile, params, progress=progress)
    if result.status == "ok":
        runfolder.promote(paths, summary_entry(result))
    return result


def headless_environment(profile: str) -> None:
    """Set (unless already set) the variables the notebook kernels inherit in a headless run."""
    os.environ.setdefault("LABKIT_PROFILE", profile)
    os.environ.setdefault("LABKIT_PROGRESS", "text")  # headless: no widget front end for tqdm
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the kernels' OpenMP threads: see env.PASSIVE_OPENMP


@contextmanager
def kernel_roots() -> Iterator[None]:
    """While notebooks run, their kernels inherit ``LABKIT_RUNS`` / ``LABKIT_DATA`` as this process resolved them.

    A kernel starts in the notebooks' folder; an installed labkit (no checkout) resolves its default roots from
    the working folder (:func:`labkit.env.home_dir`), which the kernel's is not. Variables already set win;
    the ones set here are removed afterwards.
    """
    added = {k: str(v().resolve()) for k, v in (("LABKIT_RUNS", env.runs_dir), ("LABKIT_DATA", env.data_dir))
             if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextmanager
def interrupt_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`RunInterrupted` (as Ctrl-C raises KeyboardInterrupt).

    The previous handlers (SIGINT's too, which :func:`ignore_signals` may change) are restored on exit.
    Outside the main thread, or where a signal does not exist, nothing is installed.
    """
    def handler(signum: int, frame: Any) -> None:
        raise RunInterrupted(signum)

    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        try:
            previous[sig] = signal.getsignal(sig)
            if name != "SIGINT":
                signal.signal(sig, handler)
        except (TypeError, ValueError, OSError):
            previous.pop(sig, None)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def ignore_signals() -> None:
    """Ignore SIGINT, SIGTERM and SIGHUP: the few writes that record an interruption are not interrupted."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        try:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        except (AttributeError, ValueError, OSError):
            pass


def summary_entry(result: NotebookResult, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``run_summary.json`` entry of an attempt; ``previous`` (the notebook's earlier entry) gives ``last_ok``.

    Keys: notebook, status, error and cell (failed / interrupted), started, finished (ISO), seconds,
    profile, parameters, partial (the kept partial notebook, unless ok) and, when the attempt is not
    ok but an earlier one was, ``last_ok`` (that one's finished, seconds, profile, parameters).
    """
    entry: dict[str, Any] = {"notebook": result.notebook, "status": result.status}
    if result.error:
        entry["error"] = result.error
    if result.cell is not None:
        entry["cell"] = result.cell
    entry.update(started=result.started, finished=result.finished, seconds=round(result.seconds, 1),
                 profile=result.profile, parameters=dict(result.parameters or {}))
    if result.status != "ok":
        entry["partial"] = Path(result.output).name
        last_ok = last_ok_of(previous)
        if last_ok:
            entry["last_ok"] = last_ok
    return entry


def last_ok_of(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``last_ok`` record an entry passes on: itself if ok, else its own ``last_ok`` (or None)."""
    if not entry:
        return None
    if entry.get("status") == "ok":
        return {k: entry[k] for k in ("finished", "seconds", "profile", "parameters") if k in entry}
    return entry.get("last_ok")


def running_entry(job: NotebookJob, profile: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The ``running`` entry written before a notebook starts: settings, start time and this process's pid."""
    entry = {"notebook": job.name, "status": "running", "started": now_iso(), "profile": profile,
             "parameters": dict(job.params), "partial": f"{job.name}{runfolder.PARTIAL}.ipynb",
             **runfolder.process_identity()}
    last_ok = last_ok_of(previous)
    if last_ok:
        entry["last_ok"] = last_ok
    return entry


def _previous_entries(out_root: Path) -> dict[str, dict[str, Any]]:
    summary = report.read_run_summary(out_root) or {}
    return {e["notebook"]: e for e in summary.get("notebooks", []) if isinstance(e, dict) and "notebook" in e}


def save_entries(out_root: Path, entries: Sequence[dict[str, Any]], header: dict[str, Any] | None = None) -> Path:
    """Merge ``entries`` (replacing the same notebooks') into ``run_summary.json`` and write it atomically."""
    summary = report.read_run_summary(out_root) or {}
    merged = {e["notebook"]: e for e in summary.get("notebooks", []) if isinstance(e, dict) and "notebook" in e}
    merged.update({e["notebook"]: e for e in entries})
    summary = {**{k: v for k, v in summary.items() if k not in ("notebooks", "sweep")}, **(header or {})}
    summary["notebooks"] = [merged[k] for k in sorted(merged)]
    return report.write_json_atomic(out_root / report.RUN_SUMMARY_FILE, summary)


def write_run_summary(out_root: Path, profile: str, params: dict[str, Any], combos: Sequence[dict[str, Any]],
                      results: Sequence[NotebookResult]) -> Path:
    """Write ``run_summary.json``, merged with earlier runs into the same folder (so that
    ``labkit run 01`` then ``labkit run 02`` report both); returns its path.

    ``profile`` / ``params`` / ``combos`` are this ``labkit run``'s (the top-level keys); each result
    becomes its notebook's entry (:func:`summary_entry`; a result without its own profile or parameters
    gets these), replacing the earlier entry but keeping its ``last_ok``.

    Raises:
        ValueError: the existing run_summary.json is not valid JSON (the message names it).
    """
    previous = _previous_entries(out_root)
    entries = []
    for r in results:
        if not r.profile or r.parameters is None:
            r = NotebookResult(**{**r.__dict__, "profile": r.profile or profile,
                                  "parameters": dict(params) if r.parameters is None else r.parameters})
        entries.append(summary_entry(r, previous.get(r.notebook)))
    header = {"profile": profile, "parameters": params, **({"sweep": [dict(c) for c in combos]} if combos else {})}
    return save_entries(out_root, entries, header)


def check_not_running(out_root: Path, jobs: Sequence[NotebookJob]) -> None:
    """Refuse to start a notebook that another live ``labkit run`` on this machine is running into the same
    folder (a ``running`` entry from another host cannot be checked, e.g. a Colab runtime that went away:
    it does not block).

    Raises:
        ValueError: names the notebook, the process and the folder, and the ways on.
    """
    previous = _previous_entries(out_root)
    for job in jobs:
        entry = previous.get(job.name, {})
        if (entry.get("status") == "running" and entry.get("pid") != os.getpid() and runfolder.on_this_host(entry)
                and runfolder.process_alive(entry)):
            raise ValueError(f"{job.name} is being run into {out_root} by process {entry.get('pid')} (started "
                             f"{entry.get('started')}, see {out_root / report.RUN_SUMMARY_FILE}): wait for it, "
                             f"stop it, or use --out DIR")


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the block runs (POSIX); they arrive when it ends."""
    sigs = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, ValueError, OSError):
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _attempt(job: NotebookJob, paths: runfolder.RunPaths, profile: str, progress: bool,
             previous: dict[str, Any] | None, header: dict[str, Any]) -> NotebookResult:
    """Record ``job`` as running, then execute it (:func:`execute_attempt`); an interruption is recorded.

    Raises:
        RunInterrupted: with the ``interrupted`` attempt as ``result`` (written to run_summary.json).
    """
    started, start = now_iso(), time.perf_counter()
    try:
        save_entries(paths.root, [running_entry(job, profile, previous)], header)
        return execute_attempt(job.notebook, paths, profile, job.params, progress=progress, sweep=job.sweep)
    except KeyboardInterrupt as exc:
        ignore_signals()
        signum = getattr(exc, "signum", signal.SIGINT)
        result = getattr(exc, "result", None) or NotebookResult(
            job.name, "interrupted", time.perf_counter() - start, str(paths.partial_notebook),
            error=signal.Signals(signum).name, started=started, finished=now_iso(), profile=profile,
            parameters=dict(job.params))
        save_entries(paths.root, [summary_entry(result, previous)], header)
        raise RunInterrupted(signum, result) from None


def run_jobs(jobs: Sequence[NotebookJob], out_root: Path, profile: str, *, params: dict[str, Any] | None = None,
             combos: Sequence[dict[str, Any]] = ()) -> list[NotebookResult]:
    """Run the jobs one after the other, printing one line before and after each; the results in order.

    Each attempt is recorded in ``run_summary.json`` as ``running`` before it starts and with its
    outcome after; an ok one then replaces the previous result (:func:`labkit.runfolder.promote`:
    the marker, the ok entry and the renames, with signals held back meanwhile).

    Raises:
        RunInterrupted: a signal stopped a notebook (its ``interrupted`` entry is written first; ``result``
            holds it) or came between two notebooks (``result`` None).
    """
    progress = sys.stderr.isatty()
    header = {"profile": profile, "parameters": dict(params or {}),
              **({"sweep": [dict(c) for c in combos]} if combos else {})}
    results: list[NotebookResult] = []
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {job.name} (profile {profile}) ...", flush=True)
        paths = runfolder.run_paths(out_root, job.name)
        previous = _previous_entries(out_root).get(job.name)
        res = _attempt(job, paths, profile, progress, previous, header)
        entry = summary_entry(res, previous)
        with signals_blocked():
            if res.status == "ok":
                runfolder.begin_swap(paths, entry)
            save_entries(out_root, [entry], header)
            runfolder.finish_swap(paths)
        results.append(res)
        line = f"[{i}/{len(jobs)}] {job.name}: {res.status} in {res.seconds:.0f} s -> {res.output}"
        if res.error:
            line += f"\n      FAILED at {res.error} (the previous result is kept)"
        print(line, flush=True)
    return results


def _interrupted(out_root: Path, exc: KeyboardInterrupt, start: float) -> SystemExit:
    """Record an interrupted ``labkit run`` (report.md), print one line; the SystemExit to raise (128 + signal)."""
    path = report.write_report(out_root)
    signum = getattr(exc, "signum", signal.SIGINT)
    res = getattr(exc, "result", None)
    where = (f" during {res.notebook} after {res.seconds:.0f} s; the previous result is kept, the partial run is "
             f"{res.output}" if res else "")
    print(f"interrupted by {signal.Signals(signum).name}{where}; report: {path} "
          f"(total {time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return SystemExit(128 + int(signum))


def run_and_report(notebooks_dir: Path, names: Sequence[str], *, profile: str, params: Sequence[str] = (),
                   sweep: Sequence[str] = (), out: str | os.PathLike | None = None) -> list[NotebookResult]:
    """``labkit run``: run the named notebooks (default all) of ``notebooks_dir`` into ``out`` (default
    ``runs/<profile>/``), then write ``run_summary.json`` and ``report.md``; print a summary line and
    each failure (on stderr). ``params`` / ``sweep`` are the ``-p`` / ``--sweep`` texts.

    Each notebook runs into ``<name>.partial.ipynb`` / ``<name>.partial/`` and replaces ``<name>.ipynb`` /
    ``<name>/`` only when it finished (:mod:`labkit.runfolder`): a failed or interrupted run keeps the
    last good result.

    Returns:
        The results, in run order (a failed notebook does not raise).

    Raises:
        ValueError / FileNotFoundError: a bad notebook name, parameter or sweep, or no notebook folder, all
            found before any kernel starts (:func:`labkit.parameters.check_run_parameters`: an unknown ``-p``
            key, a value of the wrong type or range); a notebook that another live ``labkit run`` is running
            into the same folder.
        SystemExit: 130 / 143 / 129 after SIGINT / SIGTERM / SIGHUP (the run is recorded as interrupted).
    """
    chosen = select_notebooks(names, discover_notebooks(Path(notebooks_dir)))
    parameters = dict(parse_parameter(p) for p in params)
    combos = parse_sweep(sweep)
    jobs = plan_jobs(chosen, check_run_parameters(chosen, parameters, combos), combos)
    out_root = Path(out) if out else env.runs_dir() / profile
    out_root.mkdir(parents=True, exist_ok=True)
    headless_environment(profile)
    report.settle_run_folder(out_root)  # finish interrupted swaps; dead `running` entries -> interrupted
    check_not_running(out_root, jobs)
    remove_stale_temp(out_root, (report.RUN_SUMMARY_FILE, report.REPORT_FILE))

    start = time.perf_counter()
    with interrupt_signals(), kernel_roots():
        try:
            results = run_jobs(jobs, out_root, profile, params=parameters, combos=combos)
        except KeyboardInterrupt as exc:  # RunInterrupted too
            ignore_signals()
            raise _interrupted(out_root, exc, start) from None
    path = report.write_report(out_root)
    failed = [r for r in results if r.status != "ok"]
    print(f"done in {time.perf_counter() - start:.0f} s: {len(results) - len(failed)} ok, {len(failed)} failed; "
          f"report: {path}")
    for r in failed:
        print(f"  {r.notebook}: {r.error}", file=sys.stderr)
    return results
